"""WebAssembly job runtime: per-job overhead of a warm worker pool; cold vs cached compile.

Per-job overhead: one warm worker (``WorkerPool(1, cache_dir)``), the module already compiled,
jobs run one after another, each in a fresh job directory made before the clock starts. The
figure is the latency of ``await pool.execute(spec)`` as the caller sees it (pipe round trip,
CBOR both ways, module from the worker's memory, a fresh store with WASI, stdout and stderr files
created, instantiate, run, outcome back). Two modules: ``empty`` (``_start`` returns at once) and
``hello`` (one fd_write each to stdout and stderr). Beside it: the same job in-process
(``JobSandbox.run_job``, no process boundary), and the pool's own share (pool latency minus the
load+run time the worker measured). Target (docs: shared/design/anchors.md): a millisecond or so.

Compile: a synthetic module of ``--functions`` arithmetic functions. Cold compile
(``wasmtime.Module(engine, wasm)``), then a cache miss (compile, serialise, write), a cache hit
from disk in a fresh engine (read, CRC-32C check, ``Module.deserialize_file``, link), a hit in
memory, and for reference a bare ``Module.deserialize_file`` without the integrity check.

Engine settings on a real guest (section 3): the audio classifier (``ucp_dtn/workloads``, the
committed ``classifier.wasm``) on ``--classifier-seconds`` of generated audio read on stdin,
under wasmtime-py directly with each combination of fuel metering (``f``) and epoch
interruption (``e``), then through ``JobSandbox`` in-process (a job without a fuel budget with
the executor's settings, no epoch interruption; the same with epoch interruption, the executor's
settings before 2026-12-07 night and ``JobSandbox()``'s default; and under
``FuelMetering.ALWAYS``, the older default) and through a one-worker ``WorkerPool`` with the
executor's settings. Every configuration runs once per round, rounds alternate
``--classifier-repeats`` times, so a disturbance of the shared machine hits them all alike; the
table gives the median wall time, the median CPU time of this process (the pool's work is in its
worker, so that row has none) and the ratio to plain wasmtime with nothing on (f0e0).

The machine is shared: medians and p99 of many runs, best-of for the compile figures.
Run: ``.venv/bin/python bench/wasm_runtime.py [--jobs 2000] [--functions 1500]
[--classifier-seconds 600] [--classifier-repeats 5] [--only-classifier]``. Exits 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio
import wasmtime

from ucp_dtn.ucp.runtime import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TABLE_ELEMENTS_LIMIT,
    FuelMetering,
    JobSandbox,
    ModuleSource,
    RunSpec,
    SandboxConfig,
    WorkerPool,
    module_digest,
)
from ucp_dtn.workloads import classifier_wasm_path, generate_scene

EMPTY = '(module (memory (export "memory") 1) (func (export "_start")))'
HELLO = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hello, world\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 13))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
TARGET_OVERHEAD_MS = 1.0


def synthetic_module(functions: int) -> bytes:
    """A module with many small arithmetic functions (work for the compiler, not the guest)."""
    parts = ['(module (memory (export "memory") 1)']
    for index in range(functions):
        body = " ".join(
            f"(local.set $x (i32.add (i32.mul (local.get $x) (i32.const {k + index}))"
            f" (i32.xor (local.get $x) (i32.const {k * 7 + 1}))))"
            for k in range(12)
        )
        parts.append(
            f"(func $f{index} (param $x i32) (result i32) {body}"
            " (if (i32.gt_u (local.get $x) (i32.const 1000))"
            " (then (local.set $x (i32.div_u (local.get $x) (i32.const 3)))))"
            " (local.get $x))"
        )
    parts.append(f'(func (export "_start") (drop (call $f0 (i32.const {functions}))))')
    parts.append(")")
    return bytes(wasmtime.wat2wasm("\n".join(parts)))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def job_dirs(root: Path, name: str, count: int) -> list[Path]:
    dirs = []
    for index in range(count):
        path = root / f"{name}-{index}"
        path.mkdir()
        dirs.append(path)
    return dirs


async def pool_latencies(
    module: bytes, dirs: list[Path], cache_dir: Path
) -> tuple[list[float], list[float], float]:
    """(execute latencies, worker load+run times, pool start seconds)."""
    pool = WorkerPool(1, cache_dir)
    latencies: list[float] = []
    inner: list[float] = []
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        await nursery.start(pool.run)
        start_time = time.perf_counter() - started
        await pool.execute(RunSpec(module, dirs[0]))  # compile and warm up
        for job_dir in dirs[1:]:
            spec = RunSpec(module, job_dir)
            began = time.perf_counter()
            outcome = await pool.execute(spec)
            latencies.append(time.perf_counter() - began)
            assert outcome.ok and outcome.module_source is ModuleSource.MEMORY, outcome
            inner.append(outcome.load_time + outcome.run_time)
        nursery.cancel_scope.cancel()
    return latencies, inner, start_time


def in_process_latencies(module: bytes, dirs: list[Path]) -> list[float]:
    sandbox = JobSandbox(None)
    try:
        sandbox.run_job(RunSpec(module, dirs[0]))
        latencies = []
        for job_dir in dirs[1:]:
            spec = RunSpec(module, job_dir)
            began = time.perf_counter()
            outcome = sandbox.run_job(spec)
            latencies.append(time.perf_counter() - began)
            assert outcome.ok, outcome
        return latencies
    finally:
        sandbox.close()


def best_of(repeats: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(repeats))


def compile_figures(wasm: bytes, root: Path) -> list[tuple[str, float]]:
    digest = module_digest(wasm)
    figures: list[tuple[str, float]] = []
    # The settings of a sandbox's engine for jobs without a fuel budget (what JobSandbox() below
    # compiles for): epoch interruption, no fuel metering.
    engine_config = wasmtime.Config()
    engine_config.consume_fuel = False
    engine_config.epoch_interruption = True
    engine = wasmtime.Engine(engine_config)

    def cold() -> float:
        began = time.perf_counter()
        wasmtime.Module(engine, wasm)
        return time.perf_counter() - began

    figures.append(("cold compile (wasmtime.Module)", best_of(3, cold)))

    counter = iter(range(1_000_000))

    def miss() -> float:
        sandbox = JobSandbox(root / f"miss-{next(counter)}")
        try:
            began = time.perf_counter()
            _, source = sandbox.load(digest, wasm)
            elapsed = time.perf_counter() - began
            assert source is ModuleSource.COMPILED
            return elapsed
        finally:
            sandbox.close()

    figures.append(("cache miss: compile + serialise + write", best_of(3, miss)))

    cache_dir = root / "hit"
    JobSandbox(cache_dir).load(digest, wasm)
    sandboxes = [JobSandbox(cache_dir) for _ in range(20)]  # fresh engines: nothing in memory

    def disk_hit(sandbox: JobSandbox) -> float:
        began = time.perf_counter()
        _, source = sandbox.load(digest, None)
        elapsed = time.perf_counter() - began
        assert source is ModuleSource.DISK
        return elapsed

    disk = [disk_hit(sandbox) for sandbox in sandboxes]
    figures.append(("cache hit from disk (verified load + link)", statistics.median(disk)))

    def memory_hit() -> float:
        began = time.perf_counter()
        _, source = sandboxes[0].load(digest, None)
        elapsed = time.perf_counter() - began
        assert source is ModuleSource.MEMORY
        return elapsed

    figures.append(("cache hit in memory", statistics.median(memory_hit() for _ in range(200))))
    for sandbox in sandboxes:
        sandbox.close()

    raw = root / "raw.cwasm"
    raw.write_bytes(wasmtime.Module(engine, wasm).serialize())

    def raw_load() -> float:
        began = time.perf_counter()
        wasmtime.Module.deserialize_file(engine, str(raw))
        return time.perf_counter() - began

    figures.append(
        (
            "  reference: bare Module.deserialize_file",
            statistics.median(raw_load() for _ in range(20)),
        )
    )
    return figures


# ------------------------------------------------------------------ 3. engine settings, classifier

UNLIMITED_FUEL = 2**64 - 1


class PlainWasmtime:
    """The classifier under wasmtime-py directly: one engine, the module compiled beforehand
    (``compile_s`` says how long that took). With neither ``fuel`` nor ``epoch`` it is a default
    engine with nothing on, and its stores have no limits either; with one of them the stores
    get the executor's limits too (``bench/jobs.py`` uses this class for its baselines)."""

    def __init__(self, wasm: bytes, *, fuel: bool, epoch: bool) -> None:
        config = wasmtime.Config()
        config.consume_fuel = fuel
        config.epoch_interruption = epoch
        self.fuel, self.epoch = fuel, epoch
        self.engine = wasmtime.Engine(config)
        began = time.perf_counter()
        self.module = wasmtime.Module(self.engine, wasm)
        self.compile_s = time.perf_counter() - began
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def run(self, audio: Path, stdout: Path, stderr: Path) -> None:
        """Run the module once on ``audio``; its output streams to the two files."""
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["classifier.wasm"]
        wasi.stdin_file = str(audio)
        wasi.stdout_file = str(stdout)
        wasi.stderr_file = str(stderr)
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasi)
        if self.fuel or self.epoch:  # the executor's limits go with its settings
            store.set_limits(
                memory_size=DEFAULT_MEMORY_LIMIT, table_elements=DEFAULT_TABLE_ELEMENTS_LIMIT
            )
        if self.fuel:
            store.set_fuel(UNLIMITED_FUEL)
        if self.epoch:
            store.set_epoch_deadline(1)
        start = self.linker.instantiate(store, self.module).exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise


async def classifier_engine_rows(
    seconds: float, repeats: int, root: Path
) -> list[tuple[str, list[float], list[float]]]:
    """(label, wall seconds, CPU seconds of this process) per configuration, rounds alternating."""
    scene = generate_scene(1, seconds)
    audio = root / "audio.pcm"
    audio.write_bytes(scene.pcm)
    wasm = classifier_wasm_path().read_bytes()
    digest = module_digest(wasm)
    plain = {
        f"plain wasmtime f{int(fuel)}e{int(epoch)}": PlainWasmtime(wasm, fuel=fuel, epoch=epoch)
        for fuel in (False, True)
        for epoch in (False, True)
    }
    sandboxes = {
        "JobSandbox, no fuel budget, executor's (f0e0)": JobSandbox(
            None, SandboxConfig(epoch_interruption=False)
        ),
        "JobSandbox, no fuel budget, default (f0e1)": JobSandbox(None),
        "JobSandbox, FuelMetering.ALWAYS (f1e1)": JobSandbox(
            None, SandboxConfig(fuel_metering=FuelMetering.ALWAYS)
        ),
    }
    for sandbox in sandboxes.values():
        sandbox.load(digest, wasm)
    pool_label = "WorkerPool(1).execute, executor's (f0e0)"
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    counter = iter(range(1_000_000))

    def fresh_dir() -> Path:
        path = root / f"classify-{next(counter)}"
        path.mkdir()
        return path

    def record(label: str, began: float, began_cpu: float) -> None:
        wall.setdefault(label, []).append(time.perf_counter() - began)
        cpu.setdefault(label, []).append(time.process_time() - began_cpu)

    pool = WorkerPool(1, root / "classifier-cache", config=SandboxConfig(epoch_interruption=False))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            warm = await pool.execute(RunSpec(wasm, fresh_dir(), stdin_path=audio))
            assert warm.ok, warm
            for _ in range(repeats):
                for label, runner in plain.items():
                    job_dir = fresh_dir()
                    began, began_cpu = time.perf_counter(), time.process_time()
                    runner.run(audio, job_dir / "stdout", job_dir / "stderr")
                    record(label, began, began_cpu)
                for label, sandbox in sandboxes.items():
                    spec = RunSpec(wasm, fresh_dir(), stdin_path=audio)
                    began, began_cpu = time.perf_counter(), time.process_time()
                    outcome = sandbox.run_job(spec)
                    record(label, began, began_cpu)
                    assert outcome.ok, outcome
                spec = RunSpec(wasm, fresh_dir(), stdin_path=audio)
                began = time.perf_counter()
                outcome = await pool.execute(spec)
                wall.setdefault(pool_label, []).append(time.perf_counter() - began)
                assert outcome.ok and outcome.fuel_consumed is None, outcome
            nursery.cancel_scope.cancel()
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    return [(label, wall[label], cpu.get(label, [])) for label in wall]


def print_classifier_rows(seconds: float, rows: list[tuple[str, list[float], list[float]]]) -> None:
    load = os.getloadavg()
    print(
        f"engine settings: audio classifier on {seconds:g} s of audio, {len(rows[0][1])} rounds,"
        f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    header = f"{'':48} {'wall':>8} {'cpu':>8} {'wall/f0e0':>10} {'cpu/f0e0':>9}"
    print(header)
    print("-" * len(header))
    reference = next(row for row in rows if row[0] == "plain wasmtime f0e0")
    wall_ref, cpu_ref = statistics.median(reference[1]), statistics.median(reference[2])
    for label, wall, cpu in rows:
        wall_m = statistics.median(wall)
        if cpu:
            cpu_m = statistics.median(cpu)
            cpu_cells = f"{cpu_m:7.3f}s", f"{cpu_m / cpu_ref:8.3f}x"
        else:
            cpu_cells = f"{'-':>8}", f"{'-':>9}"
        print(f"{label:48} {wall_m:7.3f}s {cpu_cells[0]} {wall_m / wall_ref:9.3f}x {cpu_cells[1]}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per latency measurement")
    parser.add_argument("--functions", type=int, default=1500, help="size of the compile module")
    parser.add_argument(
        "--classifier-seconds", type=float, default=600.0, help="audio for section 3 (600)"
    )
    parser.add_argument("--classifier-repeats", type=int, default=5, help="rounds of section 3 (5)")
    parser.add_argument(
        "--only-classifier", action="store_true", help="run section 3 (engine settings) only"
    )
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"wasmtime-py {wasmtime.__dict__.get('__version__', '')}".rstrip(), end="")
    from importlib.metadata import version

    print(f" {version('wasmtime')}; {args.jobs} jobs per row\n")
    modules = {
        "empty": bytes(wasmtime.wat2wasm(EMPTY)),
        "hello": bytes(wasmtime.wat2wasm(HELLO)),
    }
    with tempfile.TemporaryDirectory(prefix="wasm-bench-") as tmp:
        root = Path(tmp)
        if args.only_classifier:
            engine_rows = trio.run(
                classifier_engine_rows, args.classifier_seconds, args.classifier_repeats, root
            )
            print_classifier_rows(args.classifier_seconds, engine_rows)
            return
        header = f"{'per-job latency':44} {'median':>9} {'p99':>9}"
        print(header)
        print("-" * len(header))
        met = True
        for name, module in modules.items():
            dirs = job_dirs(root, f"pool-{name}", args.jobs + 1)
            latencies, inner, start_time = trio.run(
                pool_latencies, module, dirs, root / f"cache-{name}"
            )
            overhead = [total - work for total, work in zip(latencies, inner, strict=True)]
            in_process = in_process_latencies(module, job_dirs(root, f"in-{name}", args.jobs + 1))
            rows = [
                (f"warm pool, {name}: execute()", latencies),
                ("  of which the guest's load + run", inner),
                ("  of which pipe, CBOR, files, WASI, store", overhead),
                (f"in-process JobSandbox.run_job, {name}", in_process),
            ]
            for label, samples in rows:
                print(
                    f"{label:44} {statistics.median(samples) * 1e3:7.3f}ms"
                    f" {percentile(samples, 0.99) * 1e3:7.3f}ms"
                )
            met = met and statistics.median(latencies) * 1e3 <= TARGET_OVERHEAD_MS
        print(f"{'pool start (1 worker, to ready)':44} {start_time * 1e3:7.1f}ms")
        print(
            f"\ntarget: warm-pool median <= {TARGET_OVERHEAD_MS:g} ms per trivial job:"
            f" {'met' if met else 'NOT met'}\n"
        )

        wasm = synthetic_module(args.functions)
        header = f"compile: {len(wasm) / 1024:.0f} KiB module, {args.functions} functions"
        print(f"{header:52} {'time':>9}")
        print("-" * 62)
        figures = compile_figures(wasm, root)
        for label, seconds in figures:
            print(f"{label:52} {seconds * 1e3:7.2f}ms")
        cold = figures[0][1]
        disk = figures[2][1]
        print(f"\ncached load is {cold / disk:.0f}x faster than compiling\n")
        engine_rows = trio.run(
            classifier_engine_rows, args.classifier_seconds, args.classifier_repeats, root
        )
        print_classifier_rows(args.classifier_seconds, engine_rows)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
