"""The executor role: runs the jobs brokers dispatch to it and reports how they ended.

Theory of operation
-------------------
The role lives on ``…/ucp/executor`` of its node and does four things:

* **Heartbeats** — every ``heartbeat_interval_s`` it tells every broker it knows (the
  :class:`~ucp_dtn.roles.directory.BrokerDirectory`, plus the brokers whose jobs it is running)
  that it is alive: its capabilities (psutil, with the node's configured overrides), how many
  jobs it takes at once and which it runs. Without custody, lifetime three intervals: a stale
  heartbeat is worthless. Its ``roles`` is ``EXECUTOR`` alone (a datastore on the same node
  sends its own), and its sequence is the clock in milliseconds, so it keeps growing across
  restarts (:mod:`ucp_dtn.roles.heartbeats` sends them).
* **Dispatches** — a ``job-dispatch`` is recorded durably in the :class:`JobJournal` before its
  bundle is confirmed; a job the journal already knows is a duplicate and is answered from it
  (``job-state`` running, or its recorded result again) instead of running twice.
* **Jobs** — each job runs in its own task; at most ``max_jobs`` at once hold a slot (the worker
  pool has as many workers), and at most :data:`PREPARED_PER_SLOT` times as many are between
  arrival and result. The job fetches its named data through its broker (:mod:`.inputs`;
  values already in the input cache, :mod:`.input_cache`, are not sent again) and builds its
  job directory (:mod:`.jobdir`) before it takes a slot; with the slot it runs in the
  :class:`~ucp_dtn.ucp.runtime.WorkerPool` under its limits (defaults: 60 s, 256 MiB, no fuel
  budget) and reports ``running`` to the broker if it still runs
  :data:`RUNNING_REPORT_DELAY_S` later (the heartbeats list every job that started: a short
  job's result says the rest); after giving the slot back it collects the results archive and
  the named results (:mod:`.results`) — all of that is :class:`~.execution.JobRunner`'s. So
  the slots run jobs back to back while the others prepare and pack (trivial jobs: ~13 ms of
  a ~20 ms job were preparing and packing, on threads). Then it publishes the named results
  (``data-put`` with custody, waiting a while for the datastores' answers so that a later job
  of a pipeline finds them; :mod:`.outcome`), and sends the ``job-result`` with custody to
  the broker — the archive inline up to ``inline_limit_bytes``, else stored as
  ``<job-uuid>/archive`` and referenced. "Its broker" is the one that dispatched the job
  while the node's role directory lists it as reachable, else the nearest broker it lists (a
  lost broker's jobs report to its successor,
  :meth:`~ucp_dtn.roles.directory.BrokerDirectory.report_to`).
* **Output** — while a job runs, what it writes to stdout and stderr goes to its broker every
  :attr:`ExecutorRole.output_interval_s` (``--output-interval``, 1 s; only when there is new
  output, 16 KiB per stream at most) as ``job-output`` (:mod:`.output`), for ``ucp logs``;
  the end of both streams follows once the run ends, before the result.
* **Cancels** — a ``job-cancel`` from the broker stops the job wherever it is (waiting for a
  slot, fetching, running: its worker is killed); the job ends with a CANCELLED result, which
  the broker, having cancelled it already, drops. A cancel for a job not seen yet is recorded,
  so that its dispatch, should it come later, is answered with that result instead of a run.
* **Restarts** — jobs recorded but unfinished run again; results recorded but not sent are
  sent. Job directories are removed once the result is out; those of the last few failed jobs
  are kept for a look (a bounded number).

Only exit status 0 is success: a limit hit, a trap, a missing input, a result that could not
be published all end as a failed ``job-result`` whose message says which.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ...agent import AgentError, BundleNode
from ...store import StoreError
from ...store.sqlite_files import make_private_directory
from ...ucp.capabilities import Capabilities
from ...ucp.messages import (
    DataGetReply,
    DataReply,
    JobCancel,
    JobDispatch,
    JobResult,
    JobState,
    JobStatus,
    ResultStatus,
    Role,
    UcpMessage,
)
from ...ucp.runtime import PoolClosedError, SandboxConfig, WorkerPool
from ..directory import BrokerDirectory
from ..endpoints import RoleName, role_endpoint
from ..heartbeats import HeartbeatDetails, HeartbeatSender
from ..mailbox import Incoming, Mailbox
from ..node_stop import NodeStopGuard
from ..settings import RoleSettings
from .execution import TAIL_BYTES as TAIL_BYTES  # importable from here, as before
from .execution import JobRun, JobRunner
from .input_cache import InputCache
from .inputs import DataFetcher
from .jobdir import JobDirectory
from .journal import JobJournal, JournalEntry, JournalState
from .outcome import JobResultMaker
from .publish import DataPublisher

__all__ = ["ExecutorRole", "ExecutorStatistics"]

logger = logging.getLogger(__name__)

KEEP_FAILED_DIRS = 8
"""Job directories of failed jobs kept for inspection (the oldest go first)."""
KEEP_FINISHED_JOBS = 1000
"""Finished jobs the journal remembers for deduplication (besides the age limit)."""
PREPARED_PER_SLOT = 2
"""Jobs between arrival and published result per slot: a slot holds a job's run alone, and
the others fetch their data, build their directories or pack their results meanwhile (this
bounds the disk their inputs take while they wait for a slot)."""

RUNNING_REPORT_DELAY_S = 0.5
"""A job that holds a slot this long is reported ``running`` to its broker at once; a shorter
one is not (its result follows), and the next heartbeat lists it as started anyway."""
RESULT_LINGER_S = 0.01
"""How long a result may wait for others to the same broker while more jobs of this executor
are in flight (running or waiting for a slot): short jobs finish a few ms apart, and results
that share a bundle share its store write, its custody signal and the broker's round. The last
job in flight sends at once and takes the waiting ones with it."""
_PRUNE_EVERY = 50
_BATCH_MESSAGES = 64
"""Most messages taken from the mailbox together (dispatches recorded as one group)."""


@dataclass(frozen=True, slots=True)
class ExecutorStatistics:
    """Counters of an executor role."""

    max_jobs: int
    """Jobs it runs at once."""
    active: int
    """Jobs accepted and not finished (waiting for a slot, fetching, running, publishing)."""
    running: int
    """Jobs holding a slot right now."""
    received: int
    """Dispatches of new jobs."""
    duplicates: int
    """Dispatches of jobs already known here (answered, not run again)."""
    resumed: int
    """Jobs taken up again from the journal after a restart."""
    finished: int
    """Jobs finished with a result (any status)."""
    succeeded: int
    """Finished jobs whose result is OK."""
    failed: int
    """Finished jobs whose result is not OK."""
    input_failures: int
    """Jobs failed because named data was missing or could not be fetched."""
    data_requests: int
    """``data-get`` requests sent (pages and retries included)."""
    bytes_fetched: int
    """Content bytes of fetched named data (not counting values the input cache served)."""
    input_cache_hits: int
    """Data served from the input cache instead of fetched (:mod:`.input_cache`)."""
    input_cache_bytes_saved: int
    """Content bytes served from the input cache instead of fetched."""
    input_cache_size: int
    """Bytes the input cache holds now."""
    data_published: int
    """Named results (and large archives) handed to the network with ``data-put``."""
    publish_failures: int
    """``data-put`` requests a datastore refused."""
    results_sent: int
    """``job-result`` messages sent (resent ones included)."""
    cancelled: int
    """Jobs stopped by a ``job-cancel``."""
    heartbeats_sent: int
    """Heartbeat messages sent (one per broker per interval)."""


@dataclass(slots=True)
class _ActiveJob:
    dispatch: JobDispatch
    running: bool = False
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    """Cancelled by a ``job-cancel``: covers everything from the wait for a slot to
    publishing."""
    cancelled: str | None = None
    """Why it was cancelled, once it was."""


class ExecutorRole:
    """The executor of one node; ``await nursery.start(role.run)``, cancel to stop."""

    def __init__(
        self,
        node: BundleNode,
        settings: RoleSettings,
        *,
        clock: Callable[[], float] = time.time,
        pool: WorkerPool | None = None,
    ) -> None:
        """``pool``: a running :class:`WorkerPool` to use (the caller runs it); ``None``: the
        role runs its own, ``max_jobs`` workers caching compiled modules in
        ``<workdir>/executor/modules``."""
        self.node = node
        self.settings = settings
        self.endpoint = role_endpoint(node.node_id, RoleName.EXECUTOR)
        """Where brokers reach this role."""
        self.mailbox = Mailbox(node, self.endpoint)
        """The role's mailbox on :attr:`endpoint`: dispatches and data replies arrive here,
        heartbeats, job states and results leave from it."""
        self.directory = BrokerDirectory(node, settings)
        """The brokers it heartbeats to."""
        self.max_jobs = settings.max_jobs or os.cpu_count() or 1
        """Jobs run at once: ``settings.max_jobs`` (``--max-jobs``), else the CPU core count;
        the worker pool has as many workers."""
        self._clock = clock
        self._given_pool = pool
        self._journal: JobJournal | None = None
        self._base: Path | None = None
        self._slots: trio.CapacityLimiter | None = None
        self._preparing: trio.CapacityLimiter | None = None
        self._active: dict[uuid.UUID, _ActiveJob] = {}
        self._failed_dirs: collections.deque[Path] = collections.deque()
        self._nursery: trio.Nursery | None = None
        self._informative_lifetime = max(
            3 * settings.heartbeat_interval_s, settings.request_timeout_s
        )
        self._input_cache = InputCache(Path("inputs"), 0)  # the real one once running
        self._fetcher = DataFetcher(
            self.mailbox,
            timeout_s=settings.request_timeout_s,
            retry_delay_s=min(settings.heartbeat_interval_s, 5.0),
            lifetime_s=self._informative_lifetime,
            reroute=self.directory.report_to,
        )
        self._publisher = DataPublisher(
            self.mailbox,
            timeout_s=settings.request_timeout_s,
            lifetime_s=settings.result_lifetime_s,
            clock=clock,
        )
        self._heartbeats = HeartbeatSender(
            node.node_id,
            Role.EXECUTOR,
            settings,
            self.directory,
            self._send,
            self._heartbeat_details,
            clock=clock,
        )
        self._result_maker = JobResultMaker(
            self._publisher,
            self.mailbox,
            executor=str(self.endpoint),
            report_to=self.directory.report_to,
            inline_limit_bytes=settings.inline_limit_bytes,
        )
        self._runner = JobRunner(
            self._fetcher,
            executor=str(self.endpoint),
            report_to=self.directory.report_to,
            send=self._send,
            lifetime_s=self._informative_lifetime,
            output_interval_s=settings.output_interval_s,
            clock=clock,
            pool=pool,
            cache=self._input_cache,
        )
        self._received = 0
        self._duplicates = 0
        self._resumed = 0
        self._finished = 0
        self._succeeded = 0
        self._results_sent = 0
        self._cancelled = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the journal, start the worker pool and the mailbox, take up unfinished jobs,
        then serve dispatches and send heartbeats until cancelled."""
        temporary = self.settings.workdir is None
        if self.settings.workdir is None:
            base = Path(tempfile.mkdtemp(prefix="ucp-executor-"))
        else:
            base = self.settings.workdir / "executor"
            await trio.to_thread.run_sync(make_private_directory, base)
        self._base = base
        self._slots = trio.CapacityLimiter(self.max_jobs)
        self._preparing = trio.CapacityLimiter(PREPARED_PER_SLOT * self.max_jobs)
        cache = InputCache(base / "inputs", self.settings.input_cache_bytes)
        await trio.to_thread.run_sync(cache.open)
        self._input_cache = cache
        self._fetcher.cache = cache
        self._runner.cache = cache
        try:
            journal = await JobJournal.open(None if temporary else base / "journal.sqlite")
            self._journal = journal
            try:
                with NodeStopGuard(f"executor {self.endpoint}") as guard:
                    async with trio.open_nursery() as nursery:
                        if self._given_pool is None:
                            # Without epoch interruption (the default) the pool's kill at a
                            # job's time limit is what enforces it; guests run ~20% faster.
                            config = SandboxConfig(
                                epoch_interruption=self.settings.epoch_interruption
                            )
                            pool = WorkerPool(self.max_jobs, base / "modules", config=config)
                            await nursery.start(pool.run)
                            self._runner.pool = pool
                        await nursery.start(self.mailbox.run)
                        self._nursery = nursery
                        await self._resume(nursery)
                        nursery.start_soon(self._heartbeats.run)
                        nursery.start_soon(self._serve, nursery)
                        logger.info(
                            "executor %s up: %d jobs at once, work in %s",
                            self.endpoint,
                            self.max_jobs,
                            base,
                        )
                        guard.serving = True
                        task_status.started()
            finally:
                self._nursery = None
                self._active.clear()
                await journal.aclose()
        finally:
            if temporary:
                shutil.rmtree(base, ignore_errors=True)

    @property
    def pool(self) -> WorkerPool | None:
        """The worker pool jobs run in (the one given, or the executor's own once it runs:
        compiled without epoch interruption unless :attr:`RoleSettings.epoch_interruption
        <ucp_dtn.roles.settings.RoleSettings.epoch_interruption>`)."""
        return self._runner.pool

    def statistics(self) -> ExecutorStatistics:
        """A snapshot of the counters."""
        cache = self._input_cache.statistics()
        return ExecutorStatistics(
            max_jobs=self.max_jobs,
            active=len(self._active),
            running=sum(1 for job in self._active.values() if job.running),
            received=self._received,
            duplicates=self._duplicates,
            resumed=self._resumed,
            finished=self._finished,
            succeeded=self._succeeded,
            failed=self._finished - self._succeeded,
            input_failures=self._runner.input_failures,
            data_requests=self._fetcher.requests,
            bytes_fetched=self._fetcher.bytes,
            input_cache_hits=cache.hits,
            input_cache_bytes_saved=cache.bytes_saved,
            input_cache_size=cache.size,
            data_published=self._publisher.published,
            publish_failures=self._publisher.refused,
            results_sent=self._results_sent,
            cancelled=self._cancelled,
            heartbeats_sent=self._heartbeats.sent,
        )

    @property
    def output_interval_s(self) -> float:
        """How often a running job's new output goes to its broker (``job-output``; 0:
        never while it runs); ``settings.output_interval_s`` (``--output-interval``)."""
        return self._runner.output_interval_s

    @output_interval_s.setter
    def output_interval_s(self, seconds: float) -> None:
        self._runner.output_interval_s = seconds

    @property
    def _jobs_dir(self) -> Path:
        assert self._base is not None
        return self._base / "jobs"

    def _journal_open(self) -> JobJournal:
        assert self._journal is not None, "the executor is not running"
        return self._journal

    async def _resume(self, nursery: trio.Nursery) -> None:
        journal = self._journal_open()
        await journal.prune(
            finished_before=self._clock() - self.settings.result_lifetime_s,
            keep=KEEP_FINISHED_JOBS,
        )
        entries = await journal.unfinished()
        keep = {str(entry.job_id) for entry in entries}
        await trio.to_thread.run_sync(_remove_stale_dirs, self._jobs_dir, keep)
        for entry in entries:
            if entry.state is JournalState.RECEIVED and entry.dispatch is not None:
                logger.info("resuming job %s after a restart", entry.job_id)
                self._resumed += 1
                self._start(nursery, entry.dispatch)
            elif entry.result is not None and entry.dispatch is not None:
                nursery.start_soon(self._deliver, entry.dispatch, entry.result)

    # -- messages ---------------------------------------------------------------------------

    async def _serve(self, nursery: trio.Nursery) -> None:
        while True:
            first = await self.mailbox.receive()
            batch = [first, *self.mailbox.receive_ready(_BATCH_MESSAGES - 1)]
            messages = [incoming.message for incoming in batch]
            # A job also cancelled in this batch is left to the one-by-one handling.
            cancelled = {
                job_id
                for message in messages
                if isinstance(message, JobCancel)
                for job_id in message.job_ids
            }
            recorded = await self._record_dispatches(
                [
                    message
                    for message in messages
                    if isinstance(message, JobDispatch) and message.job.job_id not in cancelled
                ]
            )
            for incoming in batch:
                await self._handle(nursery, incoming, recorded)

    async def _record_dispatches(
        self, dispatches: list[JobDispatch]
    ) -> dict[uuid.UUID, JournalEntry | None]:
        """Record the new jobs of dispatches that came together (a batch bundle's), their
        journal writes committing as one group; what the journal knew of each."""
        new: dict[uuid.UUID, JobDispatch] = {}
        for dispatch in dispatches:
            job_id = dispatch.job.job_id
            if job_id not in self._active and job_id not in new:
                new[job_id] = dispatch
        recorded: dict[uuid.UUID, JournalEntry | None] = {}
        if len(new) < 2:
            return recorded
        journal = self._journal_open()

        async def record(dispatch: JobDispatch) -> None:
            recorded[dispatch.job.job_id] = await journal.add(dispatch, self._clock())

        async with trio.open_nursery() as recording:
            for dispatch in new.values():
                recording.start_soon(record, dispatch)
        return recorded

    async def _handle(
        self,
        nursery: trio.Nursery,
        incoming: Incoming,
        recorded: dict[uuid.UUID, JournalEntry | None],
    ) -> None:
        message = incoming.message
        if isinstance(message, JobDispatch):
            await self._on_dispatch(nursery, message, recorded)
        elif isinstance(message, DataGetReply):
            if not self._fetcher.deliver(incoming):
                logger.debug("%s: dropping a late data-get-reply", self.endpoint)
        elif isinstance(message, DataReply):
            if not self._publisher.deliver(message):
                logger.debug("%s: dropping a late data-reply", self.endpoint)
        elif isinstance(message, JobCancel):
            await self._on_cancel(message)
        else:
            # Nothing this role takes (a reply nobody waits for, a message for a broker).
            logger.debug(
                "%s: ignoring a %s from %s",
                self.endpoint,
                type(message).__name__,
                incoming.source,
            )
        await incoming.done()

    async def _on_dispatch(
        self,
        nursery: trio.Nursery,
        dispatch: JobDispatch,
        recorded: dict[uuid.UUID, JournalEntry | None],
    ) -> None:
        job_id = dispatch.job.job_id
        active = self._active.get(job_id)
        if active is None:
            if job_id in recorded:  # recorded with the others of its batch
                known = recorded.pop(job_id)
            else:
                known = await self._journal_open().add(dispatch, self._clock())
            if known is not None and known.state is JournalState.RECEIVED:
                # Recorded but not running here (its run was interrupted): run it now.
                logger.info("job %s dispatched again while interrupted: running it", job_id)
                self._duplicates += 1
                self._start(nursery, known.dispatch or dispatch)
                return
            if known is None:
                self._received += 1
                logger.info(
                    "job %s (%s) from %s, attempt %d",
                    job_id,
                    dispatch.job.name or "unnamed",
                    dispatch.broker,
                    dispatch.attempt,
                )
                self._start(nursery, dispatch)
                return
        else:
            known = None
        self._duplicates += 1
        logger.info(
            "job %s dispatched again by %s: answering, not rerunning", job_id, dispatch.broker
        )
        if known is not None and known.result is not None:
            await self._send_result(dispatch.broker, known.result)
        else:
            attempt = active.dispatch.attempt if active is not None else dispatch.attempt
            await self._send_state(dispatch.broker, job_id, attempt)

    async def _on_cancel(self, message: JobCancel) -> None:
        reason = message.reason or "cancelled"
        for job_id in message.job_ids:
            active = self._active.get(job_id)
            if active is not None:
                if active.cancelled is None:
                    logger.info("job %s cancelled: %s", job_id, reason)
                    active.cancelled = reason
                    active.scope.cancel()
                continue
            # Not here (yet): a dispatch that comes later is answered with this result.
            result = JobResult(
                job_id=job_id,
                executor=str(self.endpoint),
                status=ResultStatus.CANCELLED,
                message=reason,
                started_at=self._clock(),
                finished_at=self._clock(),
            )
            if await self._journal_open().add_cancelled(result, self._clock()):
                logger.info("job %s cancelled before it arrived: %s", job_id, reason)

    async def _send(
        self,
        destination: str,
        message: UcpMessage,
        *,
        custody: bool = False,
        lifetime_s: float | None = None,
        linger_s: float = 0.0,
    ) -> bool:
        """Hand ``message`` to the agent; False (logged) if it refused."""
        try:
            await self.mailbox.send(
                destination, message, custody=custody, lifetime_s=lifetime_s, linger_s=linger_s
            )
        except (AgentError, StoreError, ValueError) as exc:
            logger.warning(
                "%s: cannot send a %s to %s: %s",
                self.endpoint,
                type(message).__name__,
                destination,
                exc,
            )
            return False
        return True

    async def _send_state(self, broker: str, job_id: uuid.UUID, attempt: int) -> None:
        state = JobState(
            job_id=job_id,
            state=JobStatus.RUNNING,
            at=self._clock(),
            executor=str(self.endpoint),
            attempt=attempt,
        )
        await self._send(broker, state, lifetime_s=self._informative_lifetime)

    async def _report_running(self, scope: trio.CancelScope, dispatch: JobDispatch) -> None:
        """Tell the job's broker it runs, after :data:`RUNNING_REPORT_DELAY_S` (the job's end
        cancels ``scope`` before that for a short job)."""
        with scope:
            await trio.sleep(RUNNING_REPORT_DELAY_S)
            broker = self.directory.report_to(dispatch.broker)
            await self._send_state(broker, dispatch.job.job_id, dispatch.attempt)

    def _nursery_or_fail(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the executor is not running")
        return self._nursery

    async def _send_result(self, broker: str, result: JobResult) -> bool:
        # Another job still in flight here will have a result soon: this one may wait for it.
        others = any(job_id != result.job_id for job_id in self._active)
        sent = await self._send(
            broker,
            result,
            custody=True,
            lifetime_s=self.settings.result_lifetime_s,
            linger_s=RESULT_LINGER_S if others else 0.0,
        )
        if sent:
            self._results_sent += 1
        return sent

    # -- heartbeats -------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities | None:
        """The capabilities announced in the latest heartbeat (``None`` before the first)."""
        return self._heartbeats.capabilities

    async def send_heartbeat(self) -> int:
        """Send one heartbeat to every known broker now; returns how many were sent."""
        return await self._heartbeats.send_now()

    async def _heartbeat_details(self) -> HeartbeatDetails:
        """The jobs and slots for the next heartbeat; the brokers of running jobs hear it too."""
        return HeartbeatDetails(
            running_jobs=tuple(sorted(self._active, key=str)),
            started=tuple(sorted((i for i, j in self._active.items() if j.running), key=str)),
            max_jobs=self.max_jobs,
            extra_brokers=tuple(
                sorted(
                    {self.directory.report_to(job.dispatch.broker) for job in self._active.values()}
                )
            ),
        )

    # -- one job ----------------------------------------------------------------------------

    def _start(self, nursery: trio.Nursery, dispatch: JobDispatch) -> None:
        self._active[dispatch.job.job_id] = _ActiveJob(dispatch)
        nursery.start_soon(self._job, dispatch)

    async def _job(self, dispatch: JobDispatch) -> None:
        job = dispatch.job
        active = self._active[job.job_id]
        tree = JobDirectory(self._jobs_dir / str(job.job_id))
        arrived = trio.current_time()
        assert self._slots is not None
        result: JobResult | None = None

        @asynccontextmanager
        async def hold_slot() -> AsyncIterator[None]:
            assert self._slots is not None
            async with self._slots:
                active.running = True
                # "running" goes to the broker only if the job still runs a moment later: a
                # short job's result says it all, and the heartbeats list what started.
                report = trio.CancelScope()
                self._nursery_or_fail().start_soon(self._report_running, report, dispatch)
                try:
                    yield
                finally:
                    report.cancel()
                    active.running = False

        with active.scope:
            try:
                # A slot is held by the run alone: the jobs after it fetch their data and
                # build their directories meanwhile (at most as many as there are slots).
                assert self._preparing is not None
                async with self._preparing:
                    waited = trio.current_time() - arrived
                    run = await self._runner.execute(dispatch, tree, hold_slot)
                run.timings["queued"] = waited + run.timings.get("queued", 0.0)
                result = await self._result_maker.publish(dispatch, tree, run)
            except PoolClosedError:
                # Shutting down (or the pool is gone): the job stays recorded and runs again at
                # the next start.
                logger.warning("job %s interrupted: the worker pool is not running", job.job_id)
                self._active.pop(job.job_id, None)
                return
            except Exception as exc:
                logger.exception("job %s: executor error", job.job_id)
                result = self._result_maker.result(
                    dispatch, JobRun(ResultStatus.EXECUTOR_ERROR, message=f"executor error: {exc}")
                )
        if active.cancelled is not None:
            self._cancelled += 1
            result = self._result_maker.result(
                dispatch, JobRun(ResultStatus.CANCELLED, message=active.cancelled)
            )
        assert result is not None
        self._finished += 1
        if result.ok:
            self._succeeded += 1
        logger.info(
            "job %s finished: %s%s",
            job.job_id,
            _status_name(result.status),
            f" ({result.message})" if result.message else "",
        )
        await self._journal_open().finish(result, self._clock())
        await self._deliver(dispatch, result)
        await self._forget_directory(tree, keep=not result.ok and active.cancelled is None)

    async def _deliver(self, dispatch: JobDispatch, result: JobResult) -> None:
        """Send a recorded result, mark it sent, and forget the job."""
        await self._send_result(self.directory.report_to(dispatch.broker), result)
        journal = self._journal_open()
        # The mark rides with the next job's journal write; the last job in flight writes it.
        journal.mark_sent_soon(result.job_id)
        self._active.pop(result.job_id, None)
        if not self._active:
            await journal.flush_sent()
        if self._results_sent % _PRUNE_EVERY == 0:
            await journal.prune(
                finished_before=self._clock() - self.settings.result_lifetime_s,
                keep=KEEP_FINISHED_JOBS,
            )

    async def _forget_directory(self, tree: JobDirectory, *, keep: bool) -> None:
        if keep:
            self._failed_dirs.append(tree.root)
            if len(self._failed_dirs) <= KEEP_FAILED_DIRS:
                return
            tree = JobDirectory(self._failed_dirs.popleft())
        try:
            await trio.to_thread.run_sync(tree.remove)
        except OSError as exc:
            logger.warning("cannot remove %s: %s", tree.root, exc)


def _status_name(status: ResultStatus | int) -> str:
    try:
        return ResultStatus(status).name.lower()
    except ValueError:
        return f"status {status}"


def _remove_stale_dirs(jobs_dir: Path, keep: set[str]) -> None:
    """Remove job directories of jobs that are not being resumed."""
    if not jobs_dir.is_dir():
        return
    for child in jobs_dir.iterdir():
        if child.name in keep:
            continue
        JobDirectory(child).remove()
