"""WorkerPool: jobs in real worker processes; limits, kills, crashes, recovery, the cache protocol.

These tests start real processes (each worker imports wasmtime, about half a second), so they use
the real clock, small pools and trio.fail_after around everything that waits on a worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from ucp_dtn.ucp.runtime import (
    FuelMetering,
    ModuleSource,
    PoolClosedError,
    RunOutcome,
    RunSpec,
    RunStatus,
    SandboxConfig,
    WorkerPool,
    WorkerStartError,
    module_digest,
)

from .wat import wasm, wat

LIMIT = 60  # seconds any one test may wait on workers (a slow, shared machine)


@asynccontextmanager
async def running_pool(
    size: int, cache_dir: Path | None, **options: Any
) -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(size, cache_dir, **options)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(LIMIT):
            await nursery.start(pool.run)
        yield pool
        nursery.cancel_scope.cancel()


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    path = tmp_path / "job"
    path.mkdir()
    return path


async def wait_for(predicate: Any) -> None:
    with trio.fail_after(LIMIT):
        while not predicate():
            await trio.sleep(0.01)


async def test_runs_a_job_in_a_worker(tmp_path: Path, job_dir: Path) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        with trio.fail_after(LIMIT):
            outcome = await pool.execute(RunSpec(wasm("echo"), job_dir, args=("x",), stdin=b"in"))
        assert outcome.ok, outcome
        assert (job_dir / "stdout").read_bytes() == b"job.wasm\0x\0||in"
        stats = pool.statistics()
        assert (stats.size, stats.alive, stats.idle, stats.busy, stats.jobs) == (1, 1, 1, 0, 1)
        assert stats.worker_pids[0] != os.getpid()


async def test_concurrent_jobs_share_the_workers(tmp_path: Path) -> None:
    outcomes: dict[int, RunOutcome] = {}

    async def one(pool: WorkerPool, index: int) -> None:
        job = tmp_path / f"job{index}"
        job.mkdir()
        outcomes[index] = await pool.execute(RunSpec(wasm("echo"), job, args=(str(index),)))

    async with running_pool(2, tmp_path / "cache") as pool:
        with trio.fail_after(LIMIT):
            async with trio.open_nursery() as nursery:
                for index in range(8):
                    nursery.start_soon(one, pool, index)
        assert pool.statistics().jobs == 8
    for index in range(8):
        assert outcomes[index].ok
        stdout = (tmp_path / f"job{index}" / "stdout").read_bytes()
        assert stdout == b"job.wasm\0" + str(index).encode() + b"\0||"


async def test_limits_end_jobs_without_killing_the_worker(tmp_path: Path, job_dir: Path) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        pids = pool.statistics().worker_pids
        with trio.fail_after(LIMIT):
            by_fuel = await pool.execute(RunSpec(wasm("loop"), job_dir, fuel=100_000))
            by_epoch = await pool.execute(RunSpec(wasm("loop"), job_dir, timeout=0.2))
            by_memory = await pool.execute(RunSpec(wasm("grow"), job_dir, memory_limit=1 << 20))
            trapped = await pool.execute(RunSpec(wasm("trap"), job_dir))
            exited = await pool.execute(RunSpec(wasm("exit", EXIT_CODE="42"), job_dir))
        assert by_fuel.status is RunStatus.OUT_OF_FUEL
        assert by_epoch.status is RunStatus.TIMEOUT
        assert by_epoch.message == "wall-clock limit of 0.2 s exceeded"  # the worker's own report
        assert by_memory.status is RunStatus.MEMORY_LIMIT
        assert (trapped.status, trapped.message) == (
            RunStatus.TRAP,
            "wasm trap: integer divide by zero",
        )
        assert (exited.status, exited.exit_code) == (RunStatus.EXIT, 42)
        stats = pool.statistics()
        assert stats.worker_pids == pids
        assert (stats.jobs, stats.failed_jobs, stats.workers_killed) == (5, 5, 0)


@pytest.mark.parametrize(
    ("module", "config", "message"),
    [
        # blocked in a host call: the epoch cannot interrupt it, the kill kill_grace later does
        ("sleep", SandboxConfig(), "wall-clock limit of 0.2 s exceeded; the worker was killed"),
        # without epoch interruption the kill at the limit is the enforcement, and the job
        # is reported as the epoch trap would report it
        ("loop", SandboxConfig(epoch_interruption=False), "wall-clock limit of 0.2 s exceeded"),
        ("sleep", SandboxConfig(epoch_interruption=False), "wall-clock limit of 0.2 s exceeded"),
    ],
)
async def test_overstaying_worker_is_killed_and_replaced(
    tmp_path: Path, job_dir: Path, module: str, config: SandboxConfig, message: str
) -> None:
    async with running_pool(1, tmp_path / "cache", config=config, kill_grace=0.1) as pool:
        with trio.fail_after(LIMIT):
            await pool.execute(RunSpec(wasm("hello"), job_dir))  # cached: no compile phase
            pids = pool.statistics().worker_pids
            outcome = await pool.execute(RunSpec(wasm(module), job_dir, timeout=0.2))
            assert outcome.status is RunStatus.TIMEOUT
            assert outcome.message == message
            assert outcome.stdout_path == job_dir / "stdout"
            after = await pool.execute(RunSpec(wasm("hello"), job_dir))
        assert after.ok
        stats = pool.statistics()
        assert stats.workers_killed == 1
        assert stats.alive == 1
        assert stats.worker_pids != pids
        assert stats.workers_started == 2


async def test_pool_without_epoch_stops_an_endless_loop_at_its_limit(
    tmp_path: Path, job_dir: Path
) -> None:
    """The executor's pool: no epoch interruption in the workers, the kill is the limit.

    The grace is longer than the test may wait: only a kill at the limit itself (not limit +
    grace) ends the loop in time. The next job runs on a fresh worker.
    """
    config = SandboxConfig(epoch_interruption=False)
    async with running_pool(1, tmp_path / "cache", config=config, kill_grace=10 * LIMIT) as pool:
        with trio.fail_after(LIMIT):
            await pool.execute(RunSpec(wasm("hello"), job_dir))  # compiled: no compile phase
            (first,) = pool.statistics().worker_pids
            stopped = await pool.execute(RunSpec(wasm("loop"), job_dir, timeout=0.3))
            after = await pool.execute(RunSpec(wasm("echo"), job_dir, args=("next",)))
        assert (stopped.status, stopped.message) == (
            RunStatus.TIMEOUT,
            "wall-clock limit of 0.3 s exceeded",
        )
        assert stopped.trap_code is None and stopped.fuel_consumed is None
        assert after.ok, after
        assert (job_dir / "stdout").read_bytes() == b"job.wasm\0next\0||"
        stats = pool.statistics()
        (second,) = stats.worker_pids
        assert second != first
        assert (stats.workers_started, stats.workers_killed, stats.workers_crashed) == (2, 1, 0)
        assert (stats.jobs, stats.failed_jobs, stats.alive) == (3, 1, 1)


async def test_worker_killed_mid_job_is_reported_and_replaced(
    tmp_path: Path, job_dir: Path
) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        done = trio.Event()
        outcomes: list[RunOutcome] = []

        async def run_forever() -> None:
            outcomes.append(await pool.execute(RunSpec(wasm("loop"), job_dir, timeout=600)))
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_forever)
            await wait_for(lambda: pool.statistics().running == 1)
            (victim,) = pool.statistics().busy_pids
            os.kill(victim, signal.SIGKILL)
            with trio.fail_after(LIMIT):
                await done.wait()
        (outcome,) = outcomes
        assert outcome.status is RunStatus.WORKER_CRASHED
        assert not outcome.ok
        assert outcome.message == f"worker process {victim} died from SIGKILL"
        with trio.fail_after(LIMIT):
            assert (await pool.execute(RunSpec(wasm("hello"), job_dir))).ok
        stats = pool.statistics()
        assert victim not in stats.worker_pids
        assert (stats.workers_crashed, stats.alive) == (1, 1)


def is_zombie(pid: int) -> bool:
    """Dead and waiting to be reaped: the process is a zombie and none of its threads (a worker
    has one watching its parent) is still exiting, so that ``waitpid`` reports it."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    threads = os.listdir(f"/proc/{pid}/task")
    return stat.rsplit(")", 1)[1].split()[0] == "Z" and len(threads) <= 1


async def test_idle_worker_that_died_is_replaced_before_it_gets_a_job(
    tmp_path: Path, job_dir: Path
) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        (victim,) = pool.statistics().worker_pids
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: is_zombie(victim))
        with trio.fail_after(LIMIT):
            outcome = await pool.execute(RunSpec(wasm("hello"), job_dir))
        assert outcome.ok, outcome
        stats = pool.statistics()
        assert victim not in stats.worker_pids
        assert (stats.workers_crashed, stats.jobs, stats.failed_jobs) == (1, 1, 0)


async def test_files_the_job_writes_are_bounded(tmp_path: Path, job_dir: Path) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        with trio.fail_after(LIMIT):
            limited = await pool.execute(
                RunSpec(wasm("write_big"), job_dir, file_size_limit=1024 * 1024)
            )
            assert (limited.status, limited.exit_code) == (RunStatus.EXIT, 22)  # WASI fbig
            assert (job_dir / "big.bin").stat().st_size == 1024 * 1024
            unlimited = await pool.execute(RunSpec(wasm("write_big"), job_dir))
            assert unlimited.ok
            assert (job_dir / "big.bin").stat().st_size == 2 * 1024 * 1024
            # The limit applies while the guest runs, not while the worker compiles and caches.
            blob = "x" * 200_000
            big = wat(f'(module (memory 4) (data (i32.const 0) "{blob}") (func (export "_start")))')
            outcome = await pool.execute(RunSpec(big, job_dir, file_size_limit=10))
            assert outcome.ok
            assert outcome.module_source is ModuleSource.COMPILED
    (cached,) = (tmp_path / "cache").glob(module_digest(big).hex() + "*.cwasm")
    assert cached.stat().st_size > 200_000


async def test_cancelled_caller_gets_cancelled_and_the_worker_is_replaced(
    tmp_path: Path, job_dir: Path
) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        pids = pool.statistics().worker_pids
        with trio.fail_after(LIMIT):
            await pool.execute(RunSpec(wasm("loop"), job_dir, fuel=10))  # compile it first
        with trio.move_on_after(0.3) as scope:
            await pool.execute(RunSpec(wasm("loop"), job_dir, timeout=600))
        assert scope.cancelled_caught
        with trio.fail_after(LIMIT):
            assert (await pool.execute(RunSpec(wasm("hello"), job_dir))).ok
        stats = pool.statistics()
        assert stats.worker_pids != pids
        assert stats.jobs == 2  # the cancelled one has no outcome
        assert stats.workers_killed == 1


async def test_invalid_module_keeps_the_worker(tmp_path: Path, job_dir: Path) -> None:
    async with running_pool(1, tmp_path / "cache") as pool:
        pids = pool.statistics().worker_pids
        with trio.fail_after(LIMIT):
            outcome = await pool.execute(RunSpec(b"\0asm\x01\0\0\0\x01", job_dir))
            assert outcome.status is RunStatus.INVALID_MODULE
            assert outcome.message.startswith("failed to parse WebAssembly module: ")
            assert (await pool.execute(RunSpec(wasm("hello"), job_dir))).ok
        assert pool.statistics().worker_pids == pids


async def test_module_cache_through_the_pool(tmp_path: Path, job_dir: Path) -> None:
    cache_dir = tmp_path / "cache"
    spec = RunSpec(wasm("hello"), job_dir)
    async with running_pool(2, cache_dir) as pool:
        with trio.fail_after(LIMIT):
            # Idle workers are handed out in FIFO order: A, B, then A again.
            first = await pool.execute(spec)  # A compiles
            second = await pool.execute(spec)  # B gets the digest only and loads the file
            third = await pool.execute(spec)  # A still holds it in memory
        assert [o.module_source for o in (first, second, third)] == [
            ModuleSource.COMPILED,
            ModuleSource.DISK,
            ModuleSource.MEMORY,
        ]
        assert all(o.ok for o in (first, second, third))
        stats = pool.statistics()
        assert (stats.modules_compiled, stats.modules_from_disk, stats.modules_from_memory) == (
            1,
            1,
            1,
        )
    async with running_pool(1, cache_dir) as pool:  # a restarted node
        with trio.fail_after(LIMIT):
            assert (await pool.execute(spec)).module_source is ModuleSource.DISK


async def test_worker_asks_for_the_bytes_when_the_cache_lost_them(
    tmp_path: Path, job_dir: Path
) -> None:
    cache_dir = tmp_path / "cache"
    spec = RunSpec(wasm("hello"), job_dir)
    async with running_pool(2, cache_dir) as pool:
        with trio.fail_after(LIMIT):
            assert (await pool.execute(spec)).module_source is ModuleSource.COMPILED  # on A
            for path in cache_dir.glob("*.cwasm"):
                path.unlink()
            outcome = await pool.execute(spec)  # on B: digest only → "need-wasm" → bytes
        assert outcome.ok
        assert outcome.module_source is ModuleSource.COMPILED


async def test_large_module(tmp_path: Path, job_dir: Path) -> None:
    blob = "x" * (1_200_000)  # hashed in a thread, sent in a big frame
    module = wat(f'(module (memory 20) (data (i32.const 0) "{blob}") (func (export "_start")))')
    assert len(module) > 1 << 20
    async with running_pool(1, None) as pool:
        with trio.fail_after(LIMIT):
            outcome = await pool.execute(RunSpec(module, job_dir))
    assert outcome.ok
    assert outcome.module_source is ModuleSource.COMPILED
    assert module_digest(module)  # sanity: hashable in-process too


async def test_execute_needs_a_running_pool(tmp_path: Path, job_dir: Path) -> None:
    pool = WorkerPool(1, tmp_path / "cache")
    with pytest.raises(PoolClosedError, match="not running"):
        await pool.execute(RunSpec(wasm("hello"), job_dir))
    async with trio.open_nursery() as nursery:
        with trio.fail_after(LIMIT):
            await nursery.start(pool.run)
        nursery.cancel_scope.cancel()
    assert pool.statistics().alive == 0
    with pytest.raises(PoolClosedError):
        await pool.execute(RunSpec(wasm("hello"), job_dir))
    with pytest.raises(RuntimeError, match="runs once"):
        await pool.run()


async def test_shutdown_during_a_job(tmp_path: Path, job_dir: Path) -> None:
    errors: list[BaseException] = []
    pool = WorkerPool(1, tmp_path / "cache")

    async def job() -> None:
        try:
            await pool.execute(RunSpec(wasm("loop"), job_dir, timeout=600))
        except PoolClosedError as exc:
            errors.append(exc)

    async with trio.open_nursery() as outer, trio.open_nursery() as pool_nursery:
        with trio.fail_after(LIMIT):
            await pool_nursery.start(pool.run)
        outer.start_soon(job)
        outer.start_soon(job)  # waits for the one worker
        await wait_for(lambda: pool.statistics().running == 1)
        pool_nursery.cancel_scope.cancel()
    assert len(errors) == 2
    assert pool.statistics().alive == 0


async def test_one_worker_runs_metered_and_unmetered_jobs(job_dir: Path) -> None:
    # No cache directory: the worker holds each engine's copy in memory only, so the budgeted
    # job, whose digest the pool already knows, makes the worker ask for the bytes again.
    async with running_pool(1, None) as pool:
        with trio.fail_after(LIMIT):
            plain = await pool.execute(RunSpec(wasm("hello"), job_dir))
            budgeted = await pool.execute(RunSpec(wasm("hello"), job_dir, fuel=10**6))
            starved = await pool.execute(RunSpec(wasm("loop"), job_dir, fuel=10_000))
            again = await pool.execute(RunSpec(wasm("hello"), job_dir))
            metered_again = await pool.execute(RunSpec(wasm("hello"), job_dir, fuel=10**6))
        assert (plain.ok, plain.fuel_consumed, plain.module_source) == (
            True,
            None,
            ModuleSource.COMPILED,
        )
        assert budgeted.ok and budgeted.module_source is ModuleSource.COMPILED
        assert budgeted.fuel_consumed is not None and budgeted.fuel_consumed > 0
        assert (starved.status, starved.fuel_consumed) == (RunStatus.OUT_OF_FUEL, 10_000)
        assert (again.fuel_consumed, again.module_source) == (None, ModuleSource.MEMORY)
        assert metered_again.module_source is ModuleSource.MEMORY
        assert metered_again.fuel_consumed == budgeted.fuel_consumed
        assert pool.statistics().workers_started == 1


async def test_metering_every_job_crosses_to_the_workers(tmp_path: Path, job_dir: Path) -> None:
    config = SandboxConfig(fuel_metering=FuelMetering.ALWAYS)
    async with running_pool(1, tmp_path / "cache", config=config) as pool:
        with trio.fail_after(LIMIT):
            outcome = await pool.execute(RunSpec(wasm("hello"), job_dir))
        assert outcome.ok
        assert outcome.fuel_consumed is not None and outcome.fuel_consumed > 0
    files = list((tmp_path / "cache").glob("*.cwasm"))
    assert len(files) == 1 and files[0].name.endswith("-f1e1sd.cwasm")


async def test_fuel_needs_fuel_metering(tmp_path: Path, job_dir: Path) -> None:
    config = SandboxConfig(fuel_metering=FuelMetering.NEVER)
    async with running_pool(1, tmp_path / "cache", config=config) as pool:
        with pytest.raises(ValueError, match="fuel budget needs"):
            await pool.execute(RunSpec(wasm("hello"), job_dir, fuel=10))
        with trio.fail_after(LIMIT):
            outcome = await pool.execute(RunSpec(wasm("hello"), job_dir))
        assert outcome.ok
        assert outcome.fuel_consumed is None


async def test_worker_that_cannot_start(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache directory should be")
    pool = WorkerPool(1, not_a_directory / "sub")
    with trio.fail_after(LIMIT), pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
    assert caught.group_contains(WorkerStartError, match="did not start")


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        WorkerPool(0)


_ORPHAN_PARENT = """
import sys
from pathlib import Path
import trio
from ucp_dtn.ucp.runtime import RunSpec, WorkerPool
sys.path.insert(0, sys.argv[2])
from wat import wasm

async def main() -> None:
    pool = WorkerPool(1, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        nursery.start_soon(pool.execute, RunSpec(wasm("loop"), Path(sys.argv[1]), timeout=600))
        while pool.statistics().running != 1:
            await trio.sleep(0.01)
        print(pool.statistics().busy_pids[0], flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


def _alive(pid: int) -> bool:
    try:
        return not is_zombie(pid)
    except FileNotFoundError:
        return False


async def test_a_worker_dies_with_its_parent_even_mid_job(job_dir: Path) -> None:
    # The pool's process is killed outright (kill -9 of a node): its worker, busy with a guest
    # that never ends, must not go on running it.
    parent = await trio.lowlevel.open_process(
        [sys.executable, "-c", _ORPHAN_PARENT, str(job_dir), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        with trio.fail_after(LIMIT):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await parent.stdout.receive_some(64)
                assert chunk, "the parent ended before its worker ran the job"
                line += chunk
        worker = int(line)
        assert _alive(worker)
    finally:
        parent.kill()
        await parent.wait()
    with trio.fail_after(10):
        while _alive(worker):
            await trio.sleep(0.02)
