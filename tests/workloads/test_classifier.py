"""The committed audio-classifier module (workloads/classifier/classifier.wasm) under the job
runtime: it labels generated audio as the generator says, reads raw PCM and WAV, refuses bad
input with a clear message and exit status, matches a native build, and build.sh reproduces it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from ucp_dtn.ucp.runtime import JobSandbox, RunOutcome, RunSpec, RunStatus, WorkerPool
from ucp_dtn.workloads import (
    CLASSIFIER_LABELS,
    Scene,
    SoundKind,
    classifier_wasm_path,
    generate_scene,
    parse_classifier_output,
    score_labels,
)

CLASSIFIER = Path(__file__).resolve().parents[2] / "workloads" / "classifier"
WASM = classifier_wasm_path()
EXIT_USAGE, EXIT_INPUT, EXIT_IO = 2, 3, 4


@pytest.fixture(scope="module")
def wasm() -> bytes:
    return WASM.read_bytes()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobSandbox]:
    box = JobSandbox(tmp_path_factory.mktemp("modules"))
    yield box
    box.close()


@pytest.fixture(scope="module")
def scene() -> Scene:
    """90 s with every kind of sound (seed 1)."""
    return generate_scene(1, 90.0)


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    path = tmp_path / "job"
    path.mkdir()
    return path


def run(sandbox: JobSandbox, wasm: bytes, job_dir: Path, **spec: object) -> RunOutcome:
    return sandbox.run_job(RunSpec(wasm, job_dir, timeout=60.0, **spec))  # type: ignore[arg-type]


def test_labels_match_the_generated_scene(
    sandbox: JobSandbox, wasm: bytes, job_dir: Path, scene: Scene
) -> None:
    assert {segment.kind for segment in scene.segments} == set(SoundKind)
    outcome = run(sandbox, wasm, job_dir, stdin=scene.pcm)
    assert outcome.ok, outcome
    report = parse_classifier_output((job_dir / "stdout").read_text())
    expected = scene.expected_labels()
    assert (report.rate, report.samples, report.window_s, report.hop_s) == (
        16000,
        1_440_000,
        1,
        0.5,
    )
    assert len(report.windows) == len(expected) == 179
    assert [t for t, _ in report.windows] == [0.5 * n for n in range(179)]
    score = score_labels(expected, report.labels)
    assert score.compared == 156
    assert score.accuracy >= 0.9, score.confusions
    assert (job_dir / "stderr").read_bytes() == b""


@pytest.mark.parametrize("seed", [2, 3])
def test_labels_match_other_scenes_and_sample_rates(
    sandbox: JobSandbox, wasm: bytes, job_dir: Path, seed: int
) -> None:
    scene = generate_scene(seed, 40.0, rate=8000 * seed)  # 16 kHz and 24 kHz
    (job_dir / "audio.pcm").write_bytes(scene.pcm)
    outcome = run(sandbox, wasm, job_dir, args=("--rate", str(scene.rate), "audio.pcm"))
    assert outcome.ok, outcome
    report = parse_classifier_output((job_dir / "stdout").read_text())
    assert report.rate == scene.rate
    score = score_labels(scene.expected_labels(), report.labels)
    assert score.compared >= 60
    assert score.accuracy >= 0.9, score.confusions


def test_wav_file_gives_the_same_labels_as_raw_pcm(
    sandbox: JobSandbox, wasm: bytes, job_dir: Path
) -> None:
    scene = generate_scene(4, 20.0, rate=22050)
    (job_dir / "audio.wav").write_bytes(scene.wav())
    outcome = run(sandbox, wasm, job_dir, args=("audio.wav",))
    assert outcome.ok, outcome
    from_wav = (job_dir / "stdout").read_text()
    outcome = run(sandbox, wasm, job_dir, stdin=scene.pcm, args=("--rate=22050",))
    assert outcome.ok, outcome
    assert (job_dir / "stdout").read_text() == from_wav
    assert parse_classifier_output(from_wav).rate == 22050


def test_window_and_hop_options(sandbox: JobSandbox, wasm: bytes, job_dir: Path) -> None:
    scene = generate_scene(5, 30.0)
    args = ("--window-ms", "2000", "--hop-ms=1000", "--features")
    outcome = run(sandbox, wasm, job_dir, stdin=scene.pcm, args=args)
    assert outcome.ok, outcome
    text = (job_dir / "stdout").read_text()
    assert "centroid=" in text.splitlines()[0]
    report = parse_classifier_output(text)
    assert (report.window_s, report.hop_s, len(report.windows)) == (2.0, 1.0, 29)
    score = score_labels(scene.expected_labels(2.0, 1.0), report.labels)
    assert score.compared >= 15
    assert score.accuracy >= 0.9, score.confusions


def test_long_window_at_a_high_rate(sandbox: JobSandbox, wasm: bytes, job_dir: Path) -> None:
    # 192000 Hz * 12000 ms overflows a 32-bit long (wasm32's): the window must still be 12 s
    args = ("--rate", "192000", "--window-ms", "12000", "--hop-ms", "12000")
    outcome = run(sandbox, wasm, job_dir, stdin=b"\0" * (2 * 192000 * 13), args=args)
    assert outcome.ok, outcome
    report = parse_classifier_output((job_dir / "stdout").read_text())
    assert (report.rate, report.window_s, report.labels) == (192000, 12.0, ["silence"])


def wav_with(fmt: bytes, data: bytes = b"\0\0" * 20000) -> bytes:
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    body += b"data" + len(data).to_bytes(4, "little") + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def pcm_format(channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    return b"".join(
        value.to_bytes(size, "little")
        for value, size in (
            (1, 2),
            (channels, 2),
            (rate, 4),
            (rate * block, 4),
            (block, 2),
            (bits, 2),
        )
    )


@pytest.mark.parametrize(
    ("stdin", "args", "status", "message"),
    [
        (b"", (), EXIT_INPUT, "no audio samples in stdin (empty input)"),
        (b"\x01\x00\x02", (), EXIT_INPUT, "middle of a sample: 3 bytes of 16-bit PCM (odd)"),
        (b"\0" * 32001, (), EXIT_INPUT, "32001 bytes of 16-bit PCM (odd)"),
        (
            b"\0" * 3000,
            (),
            EXIT_INPUT,
            "shorter than one window (1500 samples, one window is 16000)",
        ),
        (wav_with(pcm_format(2, 16000, 16)), (), EXIT_INPUT, "only 16-bit mono PCM"),
        (wav_with(pcm_format(1, 16000, 8)), (), EXIT_INPUT, "only 16-bit mono PCM"),
        (wav_with(pcm_format(1, 100, 16)), (), EXIT_INPUT, "sample rate outside"),
        (wav_with(pcm_format(1, 16000, 16))[:30], (), EXIT_INPUT, "ends in its fmt chunk"),
        (wav_with(pcm_format(1, 16000, 16))[:36], (), EXIT_INPUT, "without a data chunk"),
        (wav_with(pcm_format(1, 16000, 16), b"\0" * 32001), (), EXIT_INPUT, "(odd)"),
        (b"\0" * 32000, ("--rate", "44.1k"), EXIT_USAGE, "--rate needs a whole number"),
        (b"\0" * 32000, ("--hop-ms", "3000"), EXIT_USAGE, "must not exceed --window-ms"),
        (b"\0" * 32000, ("--window-ms",), EXIT_USAGE, "--window-ms needs a value"),
        (b"\0" * 32000, ("--loud",), EXIT_USAGE, "unknown option '--loud'"),
        (b"\0" * 32000, ("a.pcm", "b.pcm"), EXIT_USAGE, "at most one input file"),
        (b"", ("missing.pcm",), EXIT_IO, "cannot open missing.pcm"),
    ],
)
def test_bad_input_gives_a_message_and_exit_status(
    sandbox: JobSandbox,
    wasm: bytes,
    job_dir: Path,
    stdin: bytes,
    args: tuple[str, ...],
    status: int,
    message: str,
) -> None:
    outcome = run(sandbox, wasm, job_dir, stdin=stdin, args=args)
    assert (outcome.status, outcome.exit_code) == (RunStatus.EXIT, status)
    stderr = (job_dir / "stderr").read_text()
    assert stderr.startswith("classifier: ") and message in stderr
    # windows before a late error (an odd last byte) stay printed, but never the summary
    assert "#" not in (job_dir / "stdout").read_text()


def test_silent_wav_of_unknown_length_is_read_to_the_end(
    sandbox: JobSandbox, wasm: bytes, job_dir: Path
) -> None:
    # streaming writers put 0 or 0xFFFFFFFF as the data size; extra chunks before it are skipped
    wav = wav_with(pcm_format(1, 16000, 16), b"\0" * 64000)
    wav = wav[:12] + b"LIST" + (3).to_bytes(4, "little") + b"abc\0" + wav[12:]
    data_at = wav.index(b"data")
    wav = wav[: data_at + 4] + b"\xff\xff\xff\xff" + wav[data_at + 8 :]
    outcome = run(sandbox, wasm, job_dir, stdin=wav)
    assert outcome.ok, outcome
    report = parse_classifier_output((job_dir / "stdout").read_text())
    assert report.labels == ["silence"] * 3
    assert report.counts == dict.fromkeys(CLASSIFIER_LABELS, 0) | {"silence": 3}


async def test_runs_in_the_executors_worker_pool(tmp_path: Path, wasm: bytes, scene: Scene) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "stdin").write_bytes(scene.pcm)
    pool = WorkerPool(1, tmp_path / "modules")
    async with trio.open_nursery() as nursery:
        with trio.fail_after(120):
            await nursery.start(pool.run)
            outcome = await pool.execute(
                RunSpec(wasm, job_dir, stdin_path=job_dir / "stdin", memory_limit=16 << 20)
            )
        nursery.cancel_scope.cancel()
    assert outcome.ok, outcome
    report = parse_classifier_output((job_dir / "stdout").read_text())
    assert score_labels(scene.expected_labels(), report.labels).accuracy >= 0.9


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_native_build_prints_the_same(
    sandbox: JobSandbox, wasm: bytes, job_dir: Path, tmp_path: Path, scene: Scene
) -> None:
    binary = tmp_path / "classifier"
    subprocess.run(
        ["gcc", "-std=c11", "-O2", "-ffp-contract=off", "-o", str(binary),
         str(CLASSIFIER / "classifier.c"), "-lm"],
        check=True, timeout=120,
    )  # fmt: skip
    native = subprocess.run(
        [str(binary), "--features"], input=scene.pcm, capture_output=True, check=True, timeout=60
    )
    outcome = run(sandbox, wasm, job_dir, stdin=scene.pcm, args=("--features",))
    assert outcome.ok, outcome
    assert (job_dir / "stdout").read_bytes() == native.stdout


BUILT_WITH = "Debian clang version 14.0.6"
"""The compiler that built the committed module (Debian 12's clang 14); another version may emit
other bytes."""


def toolchain_problem() -> str | None:
    """Why build.sh cannot be expected to reproduce the module here, or None."""
    if shutil.which("clang") is None:
        return "clang is not installed"
    if not Path("/usr/lib/wasm32-wasi/libc.a").is_file() or not any(
        Path("/usr/lib").glob("llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a")
    ):
        return "no wasm32-wasi sysroot (apt-get install lld wasi-libc libclang-rt-14-dev-wasm32)"
    version = subprocess.run(["clang", "--version"], capture_output=True, text=True, check=False)
    if not version.stdout.startswith(BUILT_WITH):
        return f"the committed module was built with {BUILT_WITH}, not {version.stdout[:60]!r}"
    return None


@pytest.mark.skipif(toolchain_problem() is not None, reason=str(toolchain_problem()))
def test_build_script_reproduces_the_committed_module(tmp_path: Path) -> None:
    built = tmp_path / "classifier.wasm"
    subprocess.run(["sh", str(CLASSIFIER / "build.sh"), str(built)], check=True, timeout=300)
    assert built.read_bytes() == WASM.read_bytes()
