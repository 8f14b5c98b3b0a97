"""A warm pool of worker processes that run jobs for trio code.

Theory of operation
-------------------
:meth:`WorkerPool.run` starts ``size`` worker processes (``python -c <launcher>`` running
``ucp_dtn.ucp.runtime._worker``); each imports wasmtime and builds its engine once (a second one,
metering fuel, on its first job with a fuel budget: see ``FuelMetering``), then waits on its
stdin. :meth:`WorkerPool.execute` takes an idle worker, sends it the run, and waits — on
trio's process pipes, so the event loop never blocks — for the outcome:

* the pool hashes the wasm bytes (SHA-256) and sends only the hash when it has seen that module
  load before; the worker then loads it from its memory or the shared cache directory, or asks
  for the bytes ("need-wasm") if the cache lost it;
* compiling a module the cache lacks has its own limit, ``load_timeout``: the worker reports
  "compiling", and the job's wall-clock limit restarts when it reports "started";
* the pool enforces the job's wall-clock limit by killing the worker. With
  :attr:`SandboxConfig.epoch_interruption` off (what the executor runs: its guests run about
  20% faster without the epoch checks) the kill comes at ``spec.timeout`` after the start and
  is *the* enforcement; the outcome is TIMEOUT with the same message the epoch trap gives
  ("wall-clock limit of 2 s exceeded"). With it on, the worker's own epoch deadline normally
  ends the guest and reports TIMEOUT itself, and the kill comes ``kill_grace`` later for a
  guest stuck in a host call ("...; the worker was killed");
* a worker that dies mid-job (crash, OOM killer, ``kill -9``) yields WORKER_CRASHED;
* a caller cancelled mid-job gets its Cancelled, and the worker is killed (its state is unknown).

A killed or dead worker is replaced in the background, so the pool returns to ``size`` workers.
Shutdown is cancellation of :meth:`run`: every worker is killed and pending or later
:meth:`execute` calls raise :class:`PoolClosedError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import subprocess
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from . import _wire
from .cache import module_digest
from .errors import PoolClosedError, WorkerStartError
from .spec import ModuleSource, RunOutcome, RunSpec, RunStatus, SandboxConfig

__all__ = ["PoolStatistics", "WorkerPool"]

logger = logging.getLogger(__name__)

# Hash modules larger than this in a thread rather than on the event loop.
_HASH_IN_THREAD = 1 << 20
# Digests the pool remembers as loadable without sending the bytes.
_KNOWN_DIGESTS = 4096
_READ_SIZE = 1 << 16
# A worker needs only this package's own modules (and wasmtime, cbor2), not trio nor whatever
# ucp_dtn and ucp_dtn.ucp import at package level. The launcher registers the three parent
# packages as bare namespace modules pointing at the same directories as ours, so the worker
# imports the same files without running the packages' __init__ (a faster start, and no way for
# an import cycle up there to break the workers).
_PACKAGE_DIR = Path(__file__).resolve().parent
_PARENT_PACKAGES = [
    ("ucp_dtn", str(_PACKAGE_DIR.parents[1])),
    ("ucp_dtn.ucp", str(_PACKAGE_DIR.parent)),
    ("ucp_dtn.ucp.runtime", str(_PACKAGE_DIR)),
]
_LAUNCHER = (
    "import sys, types\n"
    f"for name, path in {_PARENT_PACKAGES!r}:\n"
    "    package = types.ModuleType(name)\n"
    "    package.__path__ = [path]\n"
    "    sys.modules[name] = package\n"
    "from ucp_dtn.ucp.runtime._worker import main\n"
    "main()\n"
)


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of a :class:`WorkerPool`."""

    size: int
    """Workers the pool keeps running."""
    alive: int
    """Worker processes currently up (fewer than size while replacements start)."""
    idle: int
    """Workers waiting for a job."""
    busy: int
    """Workers handling a job (loading or running it)."""
    running: int
    """Jobs whose guest has started."""
    jobs: int
    """Jobs finished with an outcome (any status)."""
    failed_jobs: int
    """Finished jobs whose status was not OK."""
    workers_started: int
    """Worker processes started, replacements included."""
    workers_killed: int
    """Workers the pool killed (overstayed limit, cancelled job, protocol error)."""
    workers_crashed: int
    """Workers that died by themselves or were killed from outside."""
    modules_compiled: int
    """Jobs whose module had to be compiled."""
    modules_from_disk: int
    """Jobs whose module came from the cache directory."""
    modules_from_memory: int
    """Jobs whose module the worker still held in memory."""
    worker_pids: tuple[int, ...]
    """Process IDs of the live workers."""
    busy_pids: tuple[int, ...]
    """Process IDs of the workers handling a job."""


class _WorkerGone(Exception):
    """The worker's pipe closed."""


class _Worker:
    """One worker process and its end of the frame protocol."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.busy = False
        self.running = False
        self._decoder = _wire.FrameDecoder()
        self._pending: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            await self.process.stdin.send_all(_wire.encode_frame(message))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _WorkerGone from exc

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while not self._pending:
            try:
                data = await self.process.stdout.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _WorkerGone from exc
            if not data:
                raise _WorkerGone
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    async def exit_status(self) -> str:
        """How the process ended (waits a moment for it, then kills it)."""
        with trio.move_on_after(1.0):
            await self.process.wait()
        if self.process.returncode is None:
            await self.close()
            return "stopped answering and was killed"
        code = self.process.returncode
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"died from {signal.Signals(-code).name}"
            return f"died from signal {-code}"
        return f"exited with status {code}"

    async def close(self) -> None:
        """Kill the process and reap it (shielded: also used while being cancelled)."""
        with trio.CancelScope(shield=True):
            with contextlib.suppress(OSError):
                self.process.kill()
            await self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    await stream.aclose()


class WorkerPool:
    """Runs jobs in a warm pool of worker processes; trio-facing, nothing blocks the event loop.

    Start it with ``await nursery.start(pool.run)``; then ``await pool.execute(spec)`` from any
    number of tasks (they queue for idle workers). Cancel :meth:`run` to shut down.
    """

    def __init__(
        self,
        size: int | None = None,
        cache_dir: Path | None = None,
        *,
        config: SandboxConfig | None = None,
        kill_grace: float = 1.0,
        load_timeout: float = 120.0,
        start_timeout: float = 60.0,
    ) -> None:
        """A pool of ``size`` workers (default: one per CPU) caching compiled modules in
        ``cache_dir`` (None: each worker keeps its own in-memory cache only).

        ``kill_grace`` is how long past a job's timeout the pool waits for the worker to report
        before killing it when ``config`` has epoch interruption on (the worker's epoch deadline
        should have ended the guest; without epoch interruption the kill comes at the timeout
        itself); ``load_timeout`` bounds getting a module ready (compiling); ``start_timeout``
        bounds a worker's start.
        """
        if size is None:
            size = os.cpu_count() or 1
        if size < 1:
            raise ValueError(f"a pool needs at least one worker, not {size}")
        self.size = size
        """Workers the pool keeps running."""
        self.cache_dir = cache_dir
        """Shared compiled-module cache directory."""
        self.config = config if config is not None else SandboxConfig()
        """Engine settings of every worker."""
        # The worker interrupts its own guest at the limit only with epoch interruption;
        # without it the kill at the limit is the enforcement, and waiting longer would let a
        # guest run past its limit.
        self._kill_after = kill_grace if self.config.epoch_interruption else 0.0
        self._load_timeout = load_timeout
        self._start_timeout = start_timeout
        self._workers: set[_Worker] = set()
        self._idle_send, self._idle_receive = trio.open_memory_channel[_Worker](math.inf)
        self._nursery: trio.Nursery | None = None
        self._running = False
        self._closing = False
        self._known: OrderedDict[bytes, None] = OrderedDict()
        self._jobs = 0
        self._failed_jobs = 0
        self._workers_started = 0
        self._workers_killed = 0
        self._workers_crashed = 0
        self._sources = dict.fromkeys(ModuleSource, 0)

    def statistics(self) -> PoolStatistics:
        """Counters and the current state of the workers."""
        busy = [worker for worker in self._workers if worker.busy]
        return PoolStatistics(
            size=self.size,
            alive=len(self._workers),
            idle=len(self._workers) - len(busy),
            busy=len(busy),
            running=sum(1 for worker in busy if worker.running),
            jobs=self._jobs,
            failed_jobs=self._failed_jobs,
            workers_started=self._workers_started,
            workers_killed=self._workers_killed,
            workers_crashed=self._workers_crashed,
            modules_compiled=self._sources[ModuleSource.COMPILED],
            modules_from_disk=self._sources[ModuleSource.DISK],
            modules_from_memory=self._sources[ModuleSource.MEMORY],
            worker_pids=tuple(sorted(worker.pid for worker in self._workers)),
            busy_pids=tuple(sorted(worker.pid for worker in busy)),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the workers, report started, and keep the pool full until cancelled."""
        if self._running or self._closing:
            raise RuntimeError("a WorkerPool runs once")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                async with trio.open_nursery() as starting:
                    for _ in range(self.size):
                        starting.start_soon(self._start_worker)
                self._running = True
                logger.info("wasm worker pool up: %d workers, cache %s", self.size, self.cache_dir)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._running = False
            self._closing = True
            self._idle_send.close()
            for worker in list(self._workers):
                self._workers.discard(worker)
                await worker.close()

    async def execute(self, spec: RunSpec) -> RunOutcome:
        """Run ``spec`` in a worker and return how it ended.

        Raises :class:`PoolClosedError` if the pool is not running, ValueError if ``spec`` asks
        for fuel without fuel metering. Failures of the job itself are outcomes, not exceptions.
        """
        if not self._running:
            raise PoolClosedError("the worker pool is not running")
        self.config.meters(spec)  # ValueError: a fuel budget that cannot be metered
        if len(spec.wasm) > _HASH_IN_THREAD:
            digest = await trio.to_thread.run_sync(module_digest, spec.wasm)
        else:
            digest = module_digest(spec.wasm)
        worker = await self._acquire()
        reusable = False
        worker.busy = True
        try:
            outcome, reusable = await self._run_on(worker, spec, digest)
        except trio.Cancelled:
            self._workers_killed += 1  # cancelled mid-job: its state is unknown, it goes
            raise
        finally:
            worker.busy = worker.running = False
            if reusable and not self._closing:
                self._idle_send.send_nowait(worker)
            else:
                await self._retire(worker)
        self._jobs += 1
        self._sources[outcome.module_source] += 1
        if not outcome.ok:
            self._failed_jobs += 1
        return outcome

    async def _acquire(self) -> _Worker:
        """The next idle worker that is still alive."""
        while True:
            try:
                worker = await self._idle_receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise PoolClosedError("the worker pool shut down") from None
            if worker.process.poll() is None:
                return worker
            # Died while idle (OOM killer, kill from outside): no job was lost, just replace it.
            self._workers_crashed += 1
            logger.warning("idle wasm worker %d %s", worker.pid, await worker.exit_status())
            await self._retire(worker)

    async def _retire(self, worker: _Worker) -> None:
        """Kill ``worker`` and, unless shutting down, start a replacement in the background."""
        if worker not in self._workers:
            return  # shutdown got there first
        self._workers.discard(worker)
        await worker.close()
        if not self._closing and self._nursery is not None:
            self._nursery.start_soon(self._replace_worker)

    async def _run_on(
        self, worker: _Worker, spec: RunSpec, digest: bytes
    ) -> tuple[RunOutcome, bool]:
        """(outcome, whether the worker may run another job)."""
        message: dict[str, Any] = {
            "t": "run",
            "spec": _wire.spec_to_wire(spec),
            "digest": digest,
            "wasm": None if digest in self._known else spec.wasm,
        }
        compiling = False
        try:
            await worker.send(message)
            worker.running = True
            deadline = trio.current_time() + spec.timeout + self._kill_after
            while True:
                with trio.move_on_at(deadline) as waiting:
                    reply = await worker.receive()
                if waiting.cancelled_caught:
                    self._workers_killed += 1
                    if compiling:
                        why = f"compiling the module took longer than {self._load_timeout:g} s"
                    else:
                        why = f"wall-clock limit of {spec.timeout:g} s exceeded"
                    logger.info("killing wasm worker %d: %s", worker.pid, why)
                    if not compiling and not self.config.epoch_interruption:
                        # The kill is how limits end here: say what the epoch trap would say.
                        return _host_outcome(spec, RunStatus.TIMEOUT, why), False
                    return _host_outcome(
                        spec, RunStatus.TIMEOUT, f"{why}; the worker was killed"
                    ), False
                kind = reply["t"]
                if kind == "done":
                    outcome = _wire.outcome_from_wire(reply["outcome"])
                    break
                if kind == "need-wasm" and message["wasm"] is None:
                    message["wasm"] = spec.wasm
                    await worker.send(message)
                elif kind == "compiling" and not compiling:
                    compiling = True
                    worker.running = False
                    deadline = trio.current_time() + self._load_timeout
                elif kind == "started" and compiling:
                    compiling = False
                    worker.running = True
                    deadline = trio.current_time() + spec.timeout + self._kill_after
                else:
                    raise _wire.WireError(f"unexpected message {kind!r}")
        except _WorkerGone:
            if self._closing:
                raise PoolClosedError("the worker pool shut down") from None
            self._workers_crashed += 1
            how = await worker.exit_status()
            logger.warning("wasm worker %d %s during a job", worker.pid, how)
            return _host_outcome(
                spec, RunStatus.WORKER_CRASHED, f"worker process {worker.pid} {how}"
            ), False
        except (_wire.WireError, KeyError, TypeError) as exc:
            self._workers_killed += 1
            logger.error("wasm worker %d broke the protocol: %s", worker.pid, exc)
            return _host_outcome(
                spec, RunStatus.WORKER_CRASHED, f"worker process {worker.pid} misbehaved: {exc}"
            ), False
        if outcome.module_source is not ModuleSource.NONE:
            self._known[digest] = None
            self._known.move_to_end(digest)
            if len(self._known) > _KNOWN_DIGESTS:
                self._known.popitem(last=False)
        return outcome, True

    def _worker_command(self) -> list[str]:
        settings = dataclasses.asdict(self.config)
        settings["cache_dir"] = None if self.cache_dir is None else os.fspath(self.cache_dir)
        return [sys.executable, "-c", _LAUNCHER, json.dumps(settings)]

    async def _start_worker(self) -> None:
        try:
            process = await trio.lowlevel.open_process(
                self._worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        except OSError as exc:
            raise WorkerStartError(f"cannot start a worker process: {exc}") from exc
        worker = _Worker(process)
        try:
            with trio.fail_after(self._start_timeout):
                hello = await worker.receive()
            if hello["t"] != "ready":
                raise _wire.WireError(f"expected 'ready', got {hello['t']!r}")
        except BaseException as exc:
            await worker.close()
            if isinstance(exc, trio.TooSlowError | _WorkerGone | _wire.WireError):
                raise WorkerStartError(f"worker process {worker.pid} did not start") from exc
            raise
        self._workers_started += 1
        if self._closing:
            await worker.close()
            return
        self._workers.add(worker)
        logger.debug("wasm worker %d ready (wasmtime %s)", worker.pid, hello.get("wasmtime"))
        self._idle_send.send_nowait(worker)

    async def _replace_worker(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._start_worker()
            except WorkerStartError as exc:
                logger.error("%s; retrying in %.1f s", exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                return


def _host_outcome(spec: RunSpec, status: RunStatus, message: str) -> RunOutcome:
    """An outcome the pool writes itself (the worker could not): with what output exists."""
    paths = (spec.resolved_stdout_path(), spec.resolved_stderr_path())
    sizes = []
    for path in paths:
        try:
            sizes.append(os.lstat(path).st_size)
        except OSError:
            sizes.append(-1)
    return RunOutcome(
        status=status,
        exit_code=None,
        message=message,
        stdout_path=paths[0] if sizes[0] >= 0 else None,
        stderr_path=paths[1] if sizes[1] >= 0 else None,
        stdout_bytes=max(sizes[0], 0),
        stderr_bytes=max(sizes[1], 0),
    )
