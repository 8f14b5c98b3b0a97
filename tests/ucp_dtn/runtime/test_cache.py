"""The compiled-module cache: memory, disk, integrity of cache files, recompilation."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from crc32c import crc32c

from ucp_dtn.ucp.runtime import (
    InvalidModuleError,
    JobSandbox,
    ModuleNotCachedError,
    ModuleSource,
    RunSpec,
    RunStatus,
    SandboxConfig,
    module_digest,
)
from ucp_dtn.ucp.runtime.cache import summarize_wasmtime_error

from .wat import wasm


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    path = tmp_path / "job"
    path.mkdir()
    return path


@pytest.fixture
def sandboxes(cache_dir: Path) -> Iterator[list[JobSandbox]]:
    """Closes the sandboxes a test makes."""
    made: list[JobSandbox] = []
    yield made
    for box in made:
        box.close()


def new_sandbox(
    made: list[JobSandbox], cache_dir: Path | None, config: SandboxConfig | None = None
) -> JobSandbox:
    box = JobSandbox(cache_dir, config)
    made.append(box)
    return box


def cache_file(box: JobSandbox, module: bytes) -> Path:
    path = box.cache.path_for(module_digest(module))
    assert path is not None
    return path


def test_compile_then_memory_then_disk(
    sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path
) -> None:
    first = new_sandbox(sandboxes, cache_dir)
    spec = RunSpec(wasm("hello"), job_dir)
    assert first.run_job(spec).module_source is ModuleSource.COMPILED
    assert cache_file(first, spec.wasm).is_file()
    assert first.run_job(spec).module_source is ModuleSource.MEMORY
    # A fresh engine (another worker process, or the node after a restart) loads from disk.
    second = new_sandbox(sandboxes, cache_dir)
    outcome = second.run_job(spec)
    assert outcome.ok
    assert outcome.module_source is ModuleSource.DISK
    assert (job_dir / "stdout").read_bytes() == b"hello, world\n"
    assert (second.cache.disk_hits, second.cache.compiles) == (1, 0)
    assert (first.cache.memory_hits, first.cache.compiles) == (1, 1)


def test_the_key_is_the_content(
    sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path
) -> None:
    box = new_sandbox(sandboxes, cache_dir)
    assert box.run_job(RunSpec(wasm("exit", EXIT_CODE="3"), job_dir)).exit_code == 3
    outcome = box.run_job(RunSpec(wasm("exit", EXIT_CODE="4"), job_dir))
    assert (outcome.exit_code, outcome.module_source) == (4, ModuleSource.COMPILED)
    assert len(list(cache_dir.glob("*.cwasm"))) == 2


def corrupt_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # somewhere in the compiled code
    path.write_bytes(bytes(data))


def corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage" * 1000)


def corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def corrupt_delete_module(path: Path) -> None:
    path.unlink()


def corrupt_garbage_check(path: Path) -> None:
    path.with_suffix(".check").write_bytes(b"\x01" * 20)


def corrupt_checksummed_garbage(path: Path) -> None:
    """A module file with a matching check file, which wasmtime refuses (as it refuses a module
    serialised by another wasmtime version): only wasmtime's own checks catch it."""
    payload = b"\x7fELF" + bytes(1000)
    path.write_bytes(payload)
    path.with_suffix(".check").write_bytes(
        b"UCPCWCK1" + struct.pack(">QI", len(payload), crc32c(payload))
    )


def delete_check(path: Path) -> None:
    """A module file without its check (a writer died in between): never trusted."""
    path.with_suffix(".check").unlink()


@pytest.mark.parametrize(
    ("corrupt", "rejected"),
    [
        (corrupt_flip, 1),
        (corrupt_truncate, 1),
        (corrupt_garbage, 1),
        (corrupt_empty, 1),
        (corrupt_delete_module, 1),
        (corrupt_garbage_check, 1),
        (corrupt_checksummed_garbage, 1),
        (delete_check, 0),
    ],
)
def test_a_corrupted_cache_file_is_recompiled(
    sandboxes: list[JobSandbox],
    cache_dir: Path,
    job_dir: Path,
    corrupt: Callable[[Path], None],
    rejected: int,
) -> None:
    first = new_sandbox(sandboxes, cache_dir)
    spec = RunSpec(wasm("hello"), job_dir)
    assert first.run_job(spec).ok
    path = cache_file(first, spec.wasm)
    good = path.read_bytes()
    good_check = path.with_suffix(".check").read_bytes()
    corrupt(path)
    second = new_sandbox(sandboxes, cache_dir)
    outcome = second.run_job(spec)
    assert outcome.ok
    assert outcome.module_source is ModuleSource.COMPILED
    assert second.cache.rejected_files == rejected
    assert (job_dir / "stdout").read_bytes() == b"hello, world\n"
    assert path.read_bytes() == good  # rewritten
    assert path.with_suffix(".check").read_bytes() == good_check
    assert new_sandbox(sandboxes, cache_dir).load(module_digest(spec.wasm), None)[1] is (
        ModuleSource.DISK
    )


def test_cache_files(sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path) -> None:
    box = new_sandbox(sandboxes, cache_dir)
    module = wasm("hello")
    box.run_job(RunSpec(module, job_dir))
    path = cache_file(box, module)
    assert path.name.startswith(module_digest(module).hex() + "-w")
    assert path.name.endswith(".cwasm")
    assert sorted(p.name for p in cache_dir.iterdir()) == [
        path.with_suffix(".check").name,
        path.name,
    ]
    magic, length, crc = struct.unpack(">8sQI", path.with_suffix(".check").read_bytes())
    assert (magic, length, crc) == (b"UCPCWCK1", path.stat().st_size, crc32c(path.read_bytes()))


def test_digest_alone_needs_a_cache_hit(sandboxes: list[JobSandbox], cache_dir: Path) -> None:
    box = new_sandbox(sandboxes, cache_dir)
    module = wasm("hello")
    with pytest.raises(ModuleNotCachedError, match=module_digest(module).hex()):
        box.load(module_digest(module), None)
    loaded, source = box.load(module_digest(module), module)
    assert source is ModuleSource.COMPILED
    assert loaded.digest == module_digest(module)
    assert new_sandbox(sandboxes, cache_dir).load(module_digest(module), None)[1] is (
        ModuleSource.DISK
    )


def test_on_compile_is_called_only_when_compiling(
    sandboxes: list[JobSandbox], cache_dir: Path
) -> None:
    box = new_sandbox(sandboxes, cache_dir)
    calls: list[str] = []
    module = wasm("hello")
    box.load(module_digest(module), module, on_compile=lambda: calls.append("compile"))
    box.load(module_digest(module), module, on_compile=lambda: calls.append("compile"))
    assert calls == ["compile"]


def test_without_a_cache_directory(sandboxes: list[JobSandbox], job_dir: Path) -> None:
    box = new_sandbox(sandboxes, None)
    spec = RunSpec(wasm("hello"), job_dir)
    assert box.run_job(spec).module_source is ModuleSource.COMPILED
    assert box.run_job(spec).module_source is ModuleSource.MEMORY
    assert box.cache.path_for(module_digest(spec.wasm)) is None


def test_least_recently_used_modules_leave_memory(
    sandboxes: list[JobSandbox], job_dir: Path
) -> None:
    box = new_sandbox(sandboxes, None, SandboxConfig(resident_modules=2))
    a, b, c = (RunSpec(wasm("exit", EXIT_CODE=str(n)), job_dir) for n in (0, 1, 2))
    for spec in (a, b, a, c):
        box.run_job(spec)
    assert box.run_job(a).module_source is ModuleSource.MEMORY
    assert box.run_job(b).module_source is ModuleSource.COMPILED  # evicted by c


def test_engines_with_other_settings_do_not_share_files(
    sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path
) -> None:
    spec = RunSpec(wasm("hello"), job_dir)
    new_sandbox(sandboxes, cache_dir).run_job(spec)
    other = new_sandbox(sandboxes, cache_dir, SandboxConfig(epoch_interruption=False))
    outcome = other.run_job(spec)
    assert outcome.ok
    assert outcome.module_source is ModuleSource.COMPILED
    assert other.cache.rejected_files == 0
    assert len(list(cache_dir.glob("*.cwasm"))) == 2


def test_metered_and_unmetered_copies_are_cached_apart(
    sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path
) -> None:
    plain = RunSpec(wasm("hello"), job_dir)
    budgeted = RunSpec(wasm("hello"), job_dir, fuel=1_000_000)
    first = new_sandbox(sandboxes, cache_dir)
    assert first.metered_cache is None  # the metering engine starts with the first budget
    assert first.run_job(plain).module_source is ModuleSource.COMPILED
    assert first.run_job(budgeted).module_source is ModuleSource.COMPILED  # its own compile
    assert first.metered_cache is not None
    digest = module_digest(plain.wasm)
    unmetered_file, metered_file = (
        first.cache.path_for(digest),
        first.metered_cache.path_for(digest),
    )
    assert unmetered_file is not None and metered_file is not None
    assert unmetered_file.name.endswith("-f0e1sd.cwasm")
    assert metered_file.name.endswith("-f1e1sd.cwasm")
    assert sorted(cache_dir.glob("*.cwasm")) == sorted([unmetered_file, metered_file])
    # A fresh sandbox (another worker) finds each copy for its own engine, and never the other.
    second = new_sandbox(sandboxes, cache_dir)
    metered = second.run_job(budgeted)
    assert (metered.module_source, metered.fuel_consumed is not None) == (ModuleSource.DISK, True)
    unmetered = second.run_job(plain)
    assert (unmetered.module_source, unmetered.fuel_consumed) == (ModuleSource.DISK, None)
    assert second.metered_cache is not None
    assert second.cache.rejected_files == second.metered_cache.rejected_files == 0
    assert (second.cache.compiles, second.metered_cache.compiles) == (0, 0)


def test_invalid_module_is_never_cached(
    sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path
) -> None:
    box = new_sandbox(sandboxes, cache_dir)
    module = b"\0asm\x01\0\0\0\x01\xff"
    assert box.run_job(RunSpec(module, job_dir)).status is RunStatus.INVALID_MODULE
    with pytest.raises(InvalidModuleError, match="failed to parse"):
        box.load(module_digest(module), module)
    assert list(cache_dir.glob("*.cwasm")) == []


def test_unlinkable_module_is_never_cached(
    sandboxes: list[JobSandbox], cache_dir: Path, job_dir: Path
) -> None:
    from .wat import wat

    box = new_sandbox(sandboxes, cache_dir)
    module = wat('(module (import "env" "f" (func)) (func (export "_start")))')
    assert box.run_job(RunSpec(module, job_dir)).status is RunStatus.INVALID_MODULE
    assert list(cache_dir.glob("*.cwasm")) == []


def test_unwritable_cache_directory_still_runs(
    sandboxes: list[JobSandbox], tmp_path: Path, job_dir: Path
) -> None:
    cache_dir = tmp_path / "cache"
    box = new_sandbox(sandboxes, cache_dir)
    cache_dir.rmdir()
    cache_dir.write_text("not a directory")
    outcome = box.run_job(RunSpec(wasm("hello"), job_dir))
    assert outcome.ok
    assert outcome.module_source is ModuleSource.COMPILED


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        (
            "failed to parse WebAssembly module\n\nCaused by:\n    unexpected end-of-file"
            " (at offset 0xa)\n",
            "failed to parse WebAssembly module: unexpected end-of-file (at offset 0xa)",
        ),
        (
            "error while executing at wasm backtrace:\n    0:     0x31 - <unknown>!f\n\n"
            "Caused by:\n    wasm trap: wasm `unreachable` instruction executed\n",
            "wasm trap: wasm `unreachable` instruction executed",
        ),
        (
            "unknown import: `env::f` has not been defined",
            "unknown import: `env::f` has not been defined",
        ),
        ("", "unknown wasmtime error"),
    ],
)
def test_one_line_error_summary(text: str, summary: str) -> None:
    assert summarize_wasmtime_error(text) == summary
