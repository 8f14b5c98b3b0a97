"""JobSandbox in this process: WASI I/O, the job directory as the only view of the host, limits
and how each kind of ending is reported."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ucp_dtn.ucp.runtime import (
    FuelMetering,
    JobSandbox,
    ModuleSource,
    RunSpec,
    RunStatus,
    SandboxConfig,
    module_digest,
)

from .wat import wasm, wat

# WASI errno values (wasi_snapshot_preview1 `errno`).
ENOENT = 44
ENOTDIR = 54
EPERM = 63
ENOTCAPABLE = 76
SECRET = "TOP SECRET: the node's private key"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobSandbox]:
    box = JobSandbox(tmp_path_factory.mktemp("cache"))
    yield box
    box.close()


@pytest.fixture
def fresh_sandbox() -> Iterator[JobSandbox]:
    """A sandbox of its own (no cache directory), for tests that count what it started."""
    box = JobSandbox(None)
    yield box
    box.close()


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    """A job directory with one file inside, and a secret file next to it."""
    path = tmp_path / "job"
    path.mkdir()
    (path / "inside.txt").write_text("inside the job directory\n")
    (tmp_path / "secret.txt").write_text(SECRET)
    return path


def test_hello_world_goes_to_stdout_and_stderr_files(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("hello"), job_dir))
    assert outcome.ok
    assert (outcome.status, outcome.exit_code, outcome.message) == (RunStatus.OK, 0, "")
    assert outcome.stdout_path == job_dir / "stdout"
    assert outcome.stderr_path == job_dir / "stderr"
    assert (job_dir / "stdout").read_bytes() == b"hello, world\n"
    assert (job_dir / "stderr").read_bytes() == b"hello, stderr\n"
    assert (outcome.stdout_bytes, outcome.stderr_bytes) == (13, 14)
    assert not outcome.stdout_truncated
    assert outcome.fuel_consumed is None  # no fuel budget: not metered
    assert outcome.memory_bytes == 65536


def test_args_env_and_stdin_reach_the_guest(sandbox: JobSandbox, job_dir: Path) -> None:
    spec = RunSpec(
        wasm("echo"),
        job_dir,
        args=("first", "with space", ""),
        env=(("LANG", "C"), ("EMPTY", ""), ("EQ", "a=b")),
        stdin=b"line one\nline two\n" * 1000,
        program_name="echo.wasm",
    )
    outcome = sandbox.run_job(spec)
    assert outcome.ok, outcome
    argv, environ, stdin = (job_dir / "stdout").read_bytes().split(b"|", 2)
    assert argv == b"echo.wasm\0first\0with space\0\0"
    assert environ == b"LANG=C\0EMPTY=\0EQ=a=b\0"  # nothing of the host's environment
    assert stdin == b"line one\nline two\n" * 1000


def test_stdin_from_a_host_file(sandbox: JobSandbox, job_dir: Path, tmp_path: Path) -> None:
    stdin = tmp_path / "input.bin"
    stdin.write_bytes(bytes(range(256)))
    outcome = sandbox.run_job(RunSpec(wasm("echo"), job_dir, stdin_path=stdin))
    assert outcome.ok
    assert (job_dir / "stdout").read_bytes().split(b"|", 2)[2] == bytes(range(256))


def test_no_stdin_reads_end_of_file(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("echo"), job_dir))
    assert outcome.ok
    assert (job_dir / "stdout").read_bytes() == b"job.wasm\0||"


def test_guest_writes_a_file_into_its_job_directory(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("write_file"), job_dir))
    assert outcome.ok, outcome
    assert (job_dir / "out.txt").read_text() == "written by the job\n"


def test_read_only_job_directory_refuses_writes(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("write_file"), job_dir, job_dir_writable=False))
    assert outcome.status is RunStatus.EXIT
    assert outcome.exit_code in (EPERM, ENOTCAPABLE)
    assert not (job_dir / "out.txt").exists()


@pytest.mark.parametrize("preopen_fd", ["3", "4"], ids=["root", "dot"])
@pytest.mark.parametrize("path", ["inside.txt", "./inside.txt", "sub/../inside.txt"])
def test_files_inside_the_job_directory_are_readable(
    sandbox: JobSandbox, job_dir: Path, preopen_fd: str, path: str
) -> None:
    (job_dir / "sub").mkdir()
    spec = RunSpec(wasm("read_file", PREOPEN_FD=preopen_fd), job_dir, args=(path,))
    outcome = sandbox.run_job(spec)
    assert outcome.ok, outcome
    assert (job_dir / "stdout").read_text() == "inside the job directory\n"


@pytest.mark.parametrize("preopen_fd", ["3", "4"], ids=["root", "dot"])
@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "sub/../../secret.txt",
        "/../secret.txt",
        "ABSOLUTE",  # the secret's absolute host path
        "link-relative",  # symlink in the job directory to ../secret.txt
        "link-absolute",  # symlink in the job directory to the absolute host path
        "link-dir/secret.txt",  # symlink in the job directory to the directory above
        "/etc/passwd",
    ],
)
def test_nothing_outside_the_job_directory_is_reachable(
    sandbox: JobSandbox, job_dir: Path, preopen_fd: str, path: str
) -> None:
    secret = job_dir.parent / "secret.txt"
    (job_dir / "sub").mkdir()
    (job_dir / "link-relative").symlink_to("../secret.txt")
    (job_dir / "link-absolute").symlink_to(secret)
    (job_dir / "link-dir").symlink_to("..")
    if path == "ABSOLUTE":
        path = str(secret)
    spec = RunSpec(wasm("read_file", PREOPEN_FD=preopen_fd), job_dir, args=(path,))
    outcome = sandbox.run_job(spec)
    assert outcome.status is RunStatus.EXIT, outcome
    assert outcome.exit_code in (EPERM, ENOTCAPABLE, ENOENT, ENOTDIR)
    assert SECRET not in (job_dir / "stdout").read_text()
    assert outcome.stdout_bytes == 0


def test_stdout_never_follows_a_symlink_out_of_the_job_directory(
    sandbox: JobSandbox, job_dir: Path
) -> None:
    outside = job_dir.parent / "outside.txt"
    outside.write_text("untouched")
    (job_dir / "stdout").symlink_to(outside)
    outcome = sandbox.run_job(RunSpec(wasm("hello"), job_dir))
    assert outcome.ok
    assert outside.read_text() == "untouched"
    assert not (job_dir / "stdout").is_symlink()
    assert (job_dir / "stdout").read_bytes() == b"hello, world\n"


def test_stdout_is_bounded(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("spew"), job_dir, stdout_limit=100_000))
    assert outcome.ok  # the guest saw its writes succeed
    assert outcome.stdout_truncated
    assert outcome.stdout_bytes == 100_000
    assert (job_dir / "stdout").read_bytes() == b"x" * 100_000


def test_output_paths_outside_the_job_directory(
    sandbox: JobSandbox, job_dir: Path, tmp_path: Path
) -> None:
    spec = RunSpec(
        wasm("hello"),
        job_dir,
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        stderr_limit=5,
    )
    outcome = sandbox.run_job(spec)
    assert outcome.ok
    assert (tmp_path / "out.log").read_bytes() == b"hello, world\n"
    assert (tmp_path / "err.log").read_bytes() == b"hello"
    assert outcome.stderr_truncated and not outcome.stdout_truncated
    assert not (job_dir / "stdout").exists()


@pytest.mark.parametrize(("code", "status"), [(0, RunStatus.OK), (1, RunStatus.EXIT)])
def test_exit_code_propagates(
    sandbox: JobSandbox, job_dir: Path, code: int, status: RunStatus
) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("exit", EXIT_CODE=str(code)), job_dir))
    assert (outcome.status, outcome.exit_code) == (status, code)
    assert outcome.ok is (code == 0)


def test_exit_code_42(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("exit", EXIT_CODE="42"), job_dir))
    assert (outcome.status, outcome.exit_code) == (RunStatus.EXIT, 42)
    assert outcome.message == "exited with status 42"


def test_exit_status_out_of_range_is_a_trap(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("exit", EXIT_CODE="300"), job_dir))
    assert outcome.status is RunStatus.TRAP
    assert outcome.exit_code is None
    assert "invalid exit status" in outcome.message


def test_trap_reports_the_trap_text(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("trap"), job_dir))
    assert outcome.status is RunStatus.TRAP
    assert not outcome.ok
    assert outcome.message == "wasm trap: integer divide by zero"
    assert outcome.trap_code == "INTEGER_DIVISION_BY_ZERO"
    assert "wasm backtrace" in outcome.detail
    assert "\n" not in outcome.message


def test_trap_in_the_start_function(sandbox: JobSandbox, job_dir: Path) -> None:
    module = wat('(module (func $s unreachable) (start $s) (func (export "_start")))')
    outcome = sandbox.run_job(RunSpec(module, job_dir))
    assert (outcome.status, outcome.trap_code) == (RunStatus.TRAP, "UNREACHABLE")


def test_stack_overflow_is_a_trap(sandbox: JobSandbox, job_dir: Path) -> None:
    module = wat('(module (func $f (export "_start") (call $f)))')
    outcome = sandbox.run_job(RunSpec(module, job_dir))
    assert (outcome.status, outcome.trap_code) == (RunStatus.TRAP, "STACK_OVERFLOW")


def test_infinite_loop_runs_out_of_fuel(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("loop"), job_dir, fuel=1_000_000))
    assert outcome.status is RunStatus.OUT_OF_FUEL
    assert not outcome.ok
    assert outcome.fuel_consumed == 1_000_000
    assert outcome.trap_code == "OUT_OF_FUEL"
    assert outcome.message == "fuel budget of 1000000 exhausted"


def test_infinite_loop_hits_the_epoch_deadline(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("loop"), job_dir, timeout=0.05))
    assert outcome.status is RunStatus.TIMEOUT
    assert not outcome.ok
    assert outcome.trap_code == "INTERRUPT"
    assert outcome.message == "wall-clock limit of 0.05 s exceeded"


def test_a_timeout_does_not_leak_into_the_next_run(sandbox: JobSandbox, job_dir: Path) -> None:
    assert sandbox.run_job(RunSpec(wasm("loop"), job_dir, timeout=0.05)).status is (
        RunStatus.TIMEOUT
    )
    for _ in range(3):
        assert sandbox.run_job(RunSpec(wasm("hello"), job_dir, timeout=0.2)).ok


def test_unbounded_memory_grow_stops_at_the_memory_limit(
    sandbox: JobSandbox, job_dir: Path
) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("grow"), job_dir, memory_limit=4 * 1024 * 1024))
    assert outcome.status is RunStatus.MEMORY_LIMIT
    assert not outcome.ok
    assert outcome.memory_bytes == 4 * 1024 * 1024
    assert "linear memory at its limit" in outcome.message
    assert "unreachable" in outcome.message


def test_module_needing_more_memory_than_allowed_is_refused(
    sandbox: JobSandbox, job_dir: Path
) -> None:
    module = wat('(module (memory 100) (func (export "_start")))')  # 6.25 MiB
    outcome = sandbox.run_job(RunSpec(module, job_dir, memory_limit=1024 * 1024))
    assert outcome.status is RunStatus.MEMORY_LIMIT
    assert "memory minimum size of 100 pages exceeds memory limits" in outcome.message


def test_table_limit(sandbox: JobSandbox, job_dir: Path) -> None:
    module = wat('(module (table 5000 funcref) (func (export "_start")))')
    outcome = sandbox.run_job(RunSpec(module, job_dir, table_elements_limit=1000))
    assert outcome.status is RunStatus.MEMORY_LIMIT
    assert "table" in outcome.message
    assert sandbox.run_job(RunSpec(module, job_dir, table_elements_limit=5000)).ok


def test_a_second_memory_is_refused(sandbox: JobSandbox, job_dir: Path) -> None:
    module = wat('(module (memory 1) (memory 1) (func (export "_start")))')
    outcome = sandbox.run_job(RunSpec(module, job_dir))
    assert outcome.status is RunStatus.MEMORY_LIMIT
    assert "memory count" in outcome.message


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (b"", "not a WebAssembly binary"),
        (b"\x7fELF\x02\x01\x01", "not a WebAssembly binary"),
        (b'(module (func (export "_start")))', "not a WebAssembly binary"),  # WAT text
        (b"\0asm\x01\0\0\0\x01\xff", "failed to parse WebAssembly module"),
        (b"\0asm\x02\0\0\0", "failed to parse WebAssembly module"),
        (wat('(module (func (export "_start") (result i32) (i32.const 0)))')[:-3], "failed"),
        (
            wat('(module (import "env" "system" (func)) (func (export "_start")))'),
            "unknown import: `env::system` has not been defined",
        ),
    ],
    ids=["empty", "elf", "wat-text", "bad-section", "bad-version", "truncated", "non-wasi"],
)
def test_invalid_modules(sandbox: JobSandbox, job_dir: Path, module: bytes, message: str) -> None:
    outcome = sandbox.run_job(RunSpec(module, job_dir))
    assert outcome.status is RunStatus.INVALID_MODULE
    assert message in outcome.message
    assert "\n" not in outcome.message
    assert outcome.module_source is ModuleSource.NONE
    assert not (job_dir / "stdout").exists()  # nothing ran


@pytest.mark.parametrize(
    "module",
    [
        wat("(module)"),
        wat('(module (func (export "_start") (param i32)))'),
        wat('(module (memory (export "_start") 1))'),
    ],
    ids=["no-entry", "entry-with-params", "entry-not-a-function"],
)
def test_module_without_a_usable_entry(sandbox: JobSandbox, job_dir: Path, module: bytes) -> None:
    outcome = sandbox.run_job(RunSpec(module, job_dir))
    assert outcome.status is RunStatus.INVALID_MODULE
    assert "'_start'" in outcome.message


def test_other_entry_point(sandbox: JobSandbox, job_dir: Path) -> None:
    module = wat('(module (func (export "main")))')
    assert sandbox.run_job(RunSpec(module, job_dir, entry="main")).ok


def test_missing_job_directory(sandbox: JobSandbox, tmp_path: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("hello"), tmp_path / "missing"))
    assert outcome.status is RunStatus.SETUP_FAILED
    assert "does not exist" in outcome.message


def test_missing_stdin_file(sandbox: JobSandbox, job_dir: Path) -> None:
    outcome = sandbox.run_job(RunSpec(wasm("echo"), job_dir, stdin_path=job_dir / "nope"))
    assert outcome.status is RunStatus.SETUP_FAILED
    assert "stdin" in outcome.message


def test_stdout_path_that_is_a_directory(sandbox: JobSandbox, job_dir: Path) -> None:
    (job_dir / "stdout").mkdir()
    outcome = sandbox.run_job(RunSpec(wasm("hello"), job_dir))
    assert outcome.status is RunStatus.SETUP_FAILED


def test_stdin_temporary_file_is_removed(
    sandbox: JobSandbox, job_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    assert sandbox.run_job(RunSpec(wasm("echo"), job_dir, stdin=b"abc")).ok
    assert os.listdir(scratch) == []


def test_fuel_needs_fuel_metering(job_dir: Path) -> None:
    config = SandboxConfig(fuel_metering=FuelMetering.NEVER, epoch_interruption=False)
    box = JobSandbox(None, config)
    try:
        with pytest.raises(ValueError, match="fuel budget needs"):
            box.run_job(RunSpec(wasm("hello"), job_dir, fuel=1000))
        with pytest.raises(ValueError, match="fuel budget needs"):
            box.load(b"\0" * 32, wasm("hello"), fuel_budget=True)
        outcome = box.run_job(RunSpec(wasm("hello"), job_dir))
        assert outcome.ok
        assert outcome.fuel_consumed is None
        assert box.metered_cache is None
    finally:
        box.close()


def test_without_a_fuel_budget_the_run_is_not_metered_and_still_times_out(
    fresh_sandbox: JobSandbox, job_dir: Path
) -> None:
    sandbox = fresh_sandbox
    outcome = sandbox.run_job(RunSpec(wasm("loop"), job_dir, timeout=0.05))
    assert (outcome.status, outcome.trap_code) == (RunStatus.TIMEOUT, "INTERRUPT")
    assert outcome.fuel_consumed is None
    assert sandbox.metered_cache is None  # the metering engine was never even started
    assert sandbox.cache.compiles == 1


def test_a_fuel_budget_runs_on_the_metering_engine(
    fresh_sandbox: JobSandbox, job_dir: Path
) -> None:
    sandbox = fresh_sandbox
    assert sandbox.run_job(RunSpec(wasm("loop"), job_dir, fuel=10_000)).status is (
        RunStatus.OUT_OF_FUEL
    )
    assert sandbox.metered_cache is not None
    assert (sandbox.cache.compiles, sandbox.metered_cache.compiles) == (0, 1)
    # The metering engine has its own epoch watchdog: a large budget still stops at the deadline.
    timed_out = sandbox.run_job(RunSpec(wasm("loop"), job_dir, fuel=10**18, timeout=0.05))
    assert (timed_out.status, timed_out.trap_code) == (RunStatus.TIMEOUT, "INTERRUPT")
    # Both engines live side by side; the unmetered one is not disturbed by the other's epoch.
    assert sandbox.run_job(RunSpec(wasm("hello"), job_dir, timeout=5)).ok
    assert sandbox.run_job(RunSpec(wasm("hello"), job_dir, fuel=10**6, timeout=5)).ok


def test_metering_every_run_reports_the_same_fuel_as_a_budget(job_dir: Path) -> None:
    always = JobSandbox(None, SandboxConfig(fuel_metering="always"))  # type: ignore[arg-type]
    on_demand = JobSandbox(None, SandboxConfig())
    try:
        assert always.config.fuel_metering is FuelMetering.ALWAYS
        unbudgeted = always.run_job(RunSpec(wasm("hello"), job_dir))
        budgeted = on_demand.run_job(RunSpec(wasm("hello"), job_dir, fuel=10**6))
        assert unbudgeted.ok and budgeted.ok
        assert unbudgeted.fuel_consumed is not None and unbudgeted.fuel_consumed > 0
        assert unbudgeted.fuel_consumed == budgeted.fuel_consumed
        assert always.metered_cache is always.cache  # one engine, metering everything
    finally:
        always.close()
        on_demand.close()


def test_a_module_loaded_for_the_other_engine_is_refused(
    sandbox: JobSandbox, job_dir: Path
) -> None:
    module = wasm("hello")
    unmetered, _ = sandbox.load(module_digest(module), module)
    metered, _ = sandbox.load(module_digest(module), module, fuel_budget=True)
    with pytest.raises(ValueError, match="loaded for the engine of runs without fuel metering"):
        sandbox.run_loaded(RunSpec(module, job_dir, fuel=1000), unmetered)
    with pytest.raises(ValueError, match="loaded for the engine of runs with fuel metering"):
        sandbox.run_loaded(RunSpec(module, job_dir), metered)
    assert sandbox.run_loaded(RunSpec(module, job_dir, fuel=10**6), metered).ok


def test_fuel_metering_must_be_a_known_mode() -> None:
    with pytest.raises(ValueError, match="'sometimes' is not a valid FuelMetering"):
        SandboxConfig(fuel_metering="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"args": ("a\0b",)}, "NUL"),
        ({"env": (("A=B", "1"),)}, "invalid environment variable name"),
        ({"env": (("", "1"),)}, "invalid environment variable name"),
        ({"stdin": b"x", "stdin_path": Path("/x")}, "not both"),
        ({"fuel": 0}, "fuel must be positive"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"memory_limit": -1}, "memory_limit must not be negative"),
        ({"entry": ""}, "entry must name"),
        ({"stderr_path": Path("/j/stdout")}, "different files"),
    ],
)
def test_spec_validation(changes: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RunSpec(b"\0asm\x01\0\0\0", Path("/j"), **changes)  # type: ignore[arg-type]


def test_spec_normalises_paths_and_sequences() -> None:
    spec = RunSpec(
        bytearray(b"\0asm"),  # type: ignore[arg-type]
        "/j",  # type: ignore[arg-type]
        args=["a"],  # type: ignore[arg-type]
        env=[["K", "V"]],  # type: ignore[list-item]
    )
    assert spec.wasm == b"\0asm" and isinstance(spec.wasm, bytes)
    assert spec.job_dir == Path("/j")
    assert spec.args == ("a",)
    assert spec.env == (("K", "V"),)
    assert spec.resolved_stdout_path() == Path("/j/stdout")
