"""The broker role: job queue, executor matching, data relay and broker peering.

Theory of operation
-------------------
The broker is one mailbox (``…/ucp/broker``) and one consumer task: every message is handled
to the end — state written to the journal, answers and relays handed to the agent — before the
next, and only then confirmed to the agent (:meth:`Incoming.done`), so a crash at any point
leaves the message in the node's store to be handled again after the restart. A timer task
(under the same lock) expires silent nodes, relays queued data requests, retries scheduling and
sends broker syncs.

A job's life at the broker::

    submit ──► QUEUED ──(after jobs DONE, capable executor with a free slot)──► DISPATCHED
                 │                                                                │
                 └─(an after job FAILED/REJECTED/CANCELLED)──► REJECTED  RUNNING ◄──(executor)
                                                                      │
                                  first JobResult (any non-final state) ▼
                                                               DONE / FAILED

    job-cancel from its client, in any non-final state ──► CANCELLED

A cancelled job is final at once: a queued one is never dispatched, the executor of a
dispatched or running one gets a ``job-cancel`` (with custody) and stops it, and the result it
may still send is dropped like any late result; jobs that run after it are rejected. While a
job runs, the ``job-output`` its executor sends is kept (the newest part of each stream,
:mod:`.outputs`) for ``job-log`` queries.

Every state change is written to the journal first, then announced to the job's result
address with a ``JobState``. Jobs travel to the other brokers in broker syncs (:mod:`.sync`);
when a broker is lost, another takes its unfinished jobs over — queued ones included — and
tells each client with a ``JobAccepted`` (:mod:`.redeploy`). A broker that restarts after having
had peers holds back the jobs it had queued until their syncs say which jobs they took over
(or two sync rounds passed). A dispatch is sent before it is recorded: a crash in between
dispatches the job again after the restart, which is harmless (the first result wins). A result
is recorded (with ``result_delivered`` false) before it is stored in a datastore as
``<job-uuid>/result``, forwarded to the result address and released to dependent jobs; a restart
finishes the delivery of a recorded but undelivered result.

This module is the wiring and the message dispatch, with submission intake, heartbeats and
broker syncs; the rest is delegated: :mod:`.scheduling` dispatches and rejects queued jobs,
:mod:`.executor_reports` takes executors' reports and delivers results, :mod:`.client_requests`
answers status, log and cancel requests and checks clients in a trusted mesh, :mod:`.relay`
relays data requests, :mod:`.sync` and :mod:`.succession` deal with the other brokers and
:mod:`.replica_keeper` keeps replica copies.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import trio

from bpv7 import BPv7Error, EndpointID, parse_eid

from ...agent import AgentError, BundleNode, NodeNotRunningError
from ...store import StoreFullError
from ...ucp.errors import UcpUsageError
from ...ucp.messages import (
    BrokerSync,
    DataDelete,
    DataEntry,
    DataFreeSpace,
    DataGet,
    DataHeld,
    DataList,
    DataPut,
    DataReply,
    DataStatus,
    Heartbeat,
    JobAccepted,
    JobCancel,
    JobLogQuery,
    JobOutput,
    JobResult,
    JobState,
    JobStatus,
    JobSubmission,
    Role,
    StatusQuery,
    UcpMessage,
)
from ..directory import BrokerDirectory
from ..endpoints import RoleName, node_of, role_endpoint
from ..mailbox import Incoming, Mailbox, MailboxStatistics
from ..node_stop import NodeStopGuard
from ..settings import RoleSettings
from .client_requests import REPLY_LIFETIME_S, ClientRequests
from .client_view import result_address_warning
from .executor_reports import ExecutorReports
from .handler_parts import HandlerParts
from .handling_round import ROUND_KINDS, ROUND_MESSAGES, HandlingRound
from .job_records import JobRecord
from .jobs import JobBook
from .journal import AsyncJournal
from .name_cache import NameCache
from .outputs import JobOutputs
from .placement import InputPlacement
from .redeploy import requeue, stranded_jobs
from .registry import MemberInfo, NodeRegistry
from .relay import DataRelay, with_reply_to
from .replica_keeper import ReplicaKeeper
from .scheduling import JobScheduler
from .statistics import BrokerStatistics
from .succession import Succession
from .sync import BrokerPeering

__all__ = ["BrokerRole"]

logger = logging.getLogger(__name__)

_STATE_LIFETIME_S = 3600.0
"""Lifetime of non-final job state updates (the final one lives as long as results)."""


class BrokerRole:
    """The broker of one node (see the module docstring).

    ``await nursery.start(broker.run)`` opens the journal (``settings.workdir / "broker"``, or
    memory), starts the mailbox and returns once the broker serves; cancelling stops it with
    its state on disk.
    """

    def __init__(
        self,
        node: BundleNode,
        settings: RoleSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.settings = settings
        self.endpoint: EndpointID = role_endpoint(node.node_id, RoleName.BROKER)
        """The broker's endpoint (``…/ucp/broker``)."""
        self._clock = clock
        self._lock = trio.Lock()
        self._registry = NodeRegistry(
            settings.executor_timeout_s,
            dispatch_ahead=settings.dispatch_ahead,
            ahead_time_s=settings.dispatch_ahead_time_s,
        )
        self._jobs = JobBook()
        self._names = NameCache()
        self._placement = InputPlacement(self._names)
        self._outputs = JobOutputs()
        self._mailbox: Mailbox | None = None
        self._counted_mailbox: Mailbox | None = None
        """The mailbox of the latest run (its counters stay readable after it ended)."""
        self._round: HandlingRound | None = None
        """The round being handled, which collects job writes and sends (else they happen at
        once)."""
        self._rounds = 0
        self._serving_since = float("inf")
        self._journal: AsyncJournal | None = None
        self._relay: DataRelay | None = None
        self._replicas: ReplicaKeeper | None = None
        self._succession: Succession | None = None
        self._scheduler: JobScheduler | None = None
        self._reports: ExecutorReports | None = None
        self._requests: ClientRequests | None = None
        self._peering_directory = BrokerDirectory(node, settings)
        self._peering = BrokerPeering(str(self.endpoint), self._peering_directory, settings, clock)
        self._counts = dict.fromkeys(
            (
                "submissions",
                "duplicates",
                "dispatches",
                "results",
                "late_results",
                "redeployments",
                "orphan_results",
                "status_queries",
                "cancelled",
                "ignored",
            ),
            0,
        )

    # -- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (see the class docstring)."""
        directory = None if self.settings.workdir is None else self.settings.workdir / "broker"
        journal = await AsyncJournal.open(directory)
        try:
            contents = await journal.load()
            self._registry = NodeRegistry(
                self.settings.executor_timeout_s,
                dispatch_ahead=self.settings.dispatch_ahead,
                ahead_time_s=self.settings.dispatch_ahead_time_s,
            )
            self._jobs = JobBook()
            for record in contents.jobs:
                self._jobs.put(record)
            self._names = NameCache()
            self._names.load(contents.names)
            self._journal = journal
            self._relay = DataRelay(
                self._registry, self._names, self.settings, journal, self._send, self._clock
            )
            self._relay.pending.extend(contents.pending)
            self._relay.defer_names = self._defer_names
            self._peering.reset(self._jobs, self._names)
            succession = Succession(
                str(self.endpoint),
                self.settings,
                self._jobs,
                journal,
                self._peering,
                self._peering_directory,
                self._send,
                self._save,
                self._announce,
                self._clock,
            )
            succession.start(contents.brokers)
            succession.serving(self._clock())
            self._succession = succession
            mailbox = Mailbox(self.node, self.endpoint)
            self._counted_mailbox = mailbox
            replicas = ReplicaKeeper(
                self.node,
                self.endpoint,
                self.settings,
                self._registry,
                journal,
                mailbox,
                self._send,
                self._clock,
                self._lock,
            )
            replicas.load(contents.datastores)
            self._placement = InputPlacement(self._names, replicas.planner.holders)
            self._relay.replicas = replicas
            self._replicas = replicas
            self._scheduler = JobScheduler(
                str(self.endpoint),
                self.settings,
                self._jobs,
                self._registry,
                self._placement,
                succession,
                self._send,
                self._save,
                self._announce,
                self._clock,
                self._counts,
                each_job=self._next_handler,
            )
            parts = HandlerParts(
                self.settings,
                self._jobs,
                self._registry,
                self._outputs,
                self._scheduler,
                self._send,
                self._save,
                self._announce,
                self._ignore,
                mailbox.next_request_id,
                self._clock,
                self._counts,
            )
            self._reports = reports = ExecutorReports(parts, succession, self._relay)
            self._requests = ClientRequests(parts, str(self.endpoint), str(self.node.node_id))
            with NodeStopGuard(f"broker {self.endpoint}") as guard:
                async with trio.open_nursery() as nursery:
                    await nursery.start(mailbox.run)
                    self._mailbox = mailbox
                    async with self._lock:
                        for record in self._jobs.undelivered():
                            await reports.deliver_result(record)
                        await self._schedule_in_round()
                    logger.info(
                        "broker %s serving: %d jobs (%d queued), %d data requests waiting",
                        self.endpoint,
                        len(self._jobs),
                        len(self._jobs.queued()),
                        len(self._relay.pending),
                    )
                    self._serving_since = self._clock()
                    succession.serving(self._serving_since)
                    nursery.start_soon(self._serve, mailbox)
                    nursery.start_soon(self._tick)
                    nursery.start_soon(replicas.run_audits)
                    guard.serving = True
                    task_status.started()
        finally:
            self._mailbox = None
            self._journal = None
            self._replicas = None
            await journal.aclose()

    async def _serve(self, mailbox: Mailbox) -> None:
        while True:
            first = await mailbox.receive()
            batch = [first, *mailbox.receive_ready(ROUND_MESSAGES - 1)]
            async with self._lock:
                confirm = await self._handle_batch(batch)
            for incoming in confirm:
                await incoming.done()

    async def _handle_batch(self, batch: list[Incoming]) -> list[Incoming]:
        """Handle the messages that were waiting together: runs of the job flow's kinds in
        one round (:mod:`.handling_round`), the others alone; returns those to confirm."""
        try:
            return await self._handle_rounds(batch)
        finally:
            # A handler that raised leaves no pass held back for good: the next one runs it.
            self._scheduler_or_fail().stop_deferring()

    async def _handle_rounds(self, batch: list[Incoming]) -> list[Incoming]:
        confirm: list[Incoming] = []
        in_round: list[Incoming] = []
        handling_round = HandlingRound()
        for incoming in batch:
            if isinstance(incoming.message, ROUND_KINDS):
                handling_round.begin_message()
                self._round = handling_round
                # The passes over the queue that the round's handlers ask for (one per
                # result, submission, heartbeat) become one, run at the end of the round.
                self._scheduler_or_fail().defer()
                try:
                    if await self._handle(incoming):
                        in_round.append(incoming)
                finally:
                    self._round = None
                continue
            confirm += await self._end_round(handling_round, in_round)
            in_round = []
            if await self._handle(incoming):
                confirm.append(incoming)
        confirm += await self._end_round(handling_round, in_round)
        return confirm

    def _next_handler(self) -> None:
        # In a round, what follows is a handler of its own (JobScheduler's each_job).
        if self._round is not None:
            self._round.begin_message()

    async def _schedule_in_round(self, candidates: list[JobRecord] | None = None) -> None:
        """A scheduling pass outside a round of messages (the periodic tick, a broker sync,
        the start) as a round of its own: its dispatches to one executor leave in one bundle
        and its records in one transaction (sent one by one, each dispatch waited for its own
        bundle to be stored: a pass that topped up an executor's queue with 50 jobs sent 50
        bundles)."""
        handling_round = HandlingRound()
        handling_round.begin_message()
        self._round = handling_round
        try:
            await self._scheduler_or_fail().schedule(candidates)
        finally:
            self._round = None
        await self._end_round(handling_round, [])

    async def _schedule_deferred(self, handling_round: HandlingRound) -> None:
        """The round's one pass over the queue, as the round's last handler (its dispatches
        and records join the round's transaction and bundles)."""
        handling_round.begin_message()
        self._round = handling_round
        try:
            await self._scheduler_or_fail().run_deferred()
        finally:
            self._round = None

    async def _end_round(
        self, handling_round: HandlingRound, handled: list[Incoming]
    ) -> list[Incoming]:
        """Make the round's effects durable; the messages to confirm (none if that failed)."""
        await self._schedule_deferred(handling_round)
        if handling_round.empty:
            return handled
        mailbox = self._mailbox
        if mailbox is None:
            raise RuntimeError("the broker is not running")
        try:
            await handling_round.flush(self._journal_or_fail().put_round, mailbox.send_many)
        except StoreFullError as exc:
            logger.error("broker: node store full, %d messages wait: %s", len(handled), exc)
            return []
        except NodeNotRunningError:
            raise
        except (AgentError, BPv7Error, ValueError) as exc:
            self._counts["ignored"] += 1
            logger.warning("broker: a round of %d messages: cannot send: %s", len(handled), exc)
        self._rounds += 1
        logger.debug("broker: a round of %d messages", len(handled))
        return handled

    async def _tick(self) -> None:
        settings = self.settings
        interval = min(settings.heartbeat_interval_s, settings.executor_timeout_s / 3)
        while True:
            await trio.sleep(interval)
            async with self._lock:
                now = self._clock()
                gone = self._registry.expire(now)
                for entry in gone:
                    logger.info("%s %s went silent", _role_name(entry.role), entry.node)
                try:
                    await self._replicas_or_fail().datastores_gone(gone)
                    succession = self._succession_or_fail()
                    succession.release_held()
                    taken = await succession.take_over_orphans(now)
                    if taken:
                        await self._schedule_in_round(taken)
                    await self._redeploy(now)
                    await self._relay_or_fail().flush()
                    await self._schedule_in_round()
                    await self._peering.maybe_sync(self._send, self._registry, now)
                    await self._replicas_or_fail().tick(now)
                except StoreFullError as exc:
                    logger.error("broker: node store full, retrying later: %s", exc)

    async def _redeploy(self, now: float) -> None:
        """Queue again the jobs of executors gone silent (see :mod:`.redeploy`); the
        scheduling round that follows dispatches them elsewhere."""
        stranded = stranded_jobs(
            self._jobs.records(),
            lambda node: self._registry.get(node, Role.EXECUTOR, now) is not None,
            now,
            self.settings.executor_timeout_s,
            serving_since=self._serving_since,
        )
        for record in stranded:
            self._registry.note_finished(_node(record.executor or ""), record.job_id)
            record = requeue(record, now)
            await self._save(record)
            self._counts["redeployments"] += 1
            logger.warning("job %s: %s", record.job_id, record.detail)
            await self._announce(record)

    # -- handling messages --------------------------------------------------------------------

    async def _handle(self, incoming: Incoming) -> bool:
        """Act on one message; ``False`` leaves it unconfirmed (retried after a restart)."""
        message = incoming.message
        try:
            if isinstance(message, JobSubmission):
                if not await self._requests_or_fail().refused_submitter(incoming, message):
                    await self._on_submission(incoming, message)
            elif isinstance(message, JobState):
                await self._reports_or_fail().on_job_state(incoming, message)
            elif isinstance(message, JobResult):
                await self._reports_or_fail().on_result(message)
            elif isinstance(message, Heartbeat):
                await self._on_heartbeat(message)
            elif isinstance(message, DataPut | DataGet | DataList | DataDelete | DataFreeSpace):
                if message.reply_to is not None:
                    parse_eid(message.reply_to)
                if not await self._requests_or_fail().refused_job_data(incoming, message):
                    await self._relay_or_fail().relay(with_reply_to(message, str(incoming.source)))
            elif isinstance(message, DataReply):
                self._on_data_reply(incoming, message)
            elif isinstance(message, DataHeld):
                await self._replicas_or_fail().held(message)
            elif isinstance(message, StatusQuery):
                await self._requests_or_fail().on_status_query(incoming, message)
            elif isinstance(message, BrokerSync):
                await self._on_sync(incoming, message)
            elif isinstance(message, JobCancel):
                await self._requests_or_fail().on_cancel(incoming, message)
            elif isinstance(message, JobOutput):
                self._reports_or_fail().on_output(incoming, message)
            elif isinstance(message, JobLogQuery):
                await self._requests_or_fail().on_log_query(incoming, message)
            else:
                self._ignore(incoming, "a broker does not take this kind of message")
        except StoreFullError as exc:
            logger.error(
                "broker: node store full, %s from %s waits: %s", message.KIND, incoming.source, exc
            )
            return False
        except NodeNotRunningError:
            raise
        except (AgentError, BPv7Error, UcpUsageError, ValueError) as exc:
            self._ignore(incoming, str(exc))
        return True

    def _ignore(self, incoming: Incoming, why: str) -> None:
        self._counts["ignored"] += 1
        logger.warning(
            "broker: ignoring %s from %s: %s", incoming.message.KIND, incoming.source, why
        )

    async def _on_submission(self, incoming: Incoming, message: JobSubmission) -> None:
        job = message.job
        accepted = JobAccepted(
            job_id=job.job_id,
            broker=str(self.endpoint),
            warning=result_address_warning(
                job.result_address,
                incoming.source,
                self.node.node_id,
                self.node.routes(),
                self.settings.result_lifetime_s,
            ),
        )
        if self._jobs.get(job.job_id) is not None:
            self._counts["duplicates"] += 1
            logger.info("job %s submitted again by %s", job.job_id, incoming.source)
            await self._send(
                incoming.source,
                dataclasses.replace(accepted, duplicate=True),
                lifetime_s=REPLY_LIFETIME_S,
            )
            return
        now = self._clock()
        record = JobRecord(
            submission=message,
            client=str(incoming.source),
            sequence=self._jobs.next_sequence(),
            state=JobStatus.QUEUED,
            submitted_at=now,
            updated_at=now,
            detail="queued",
            # A job its client moved here from a broker lost before any other heard of it
            # (docs/disruption.md): this broker keeps it should that one come back.
            taken_from=message.moved_from,
        )
        await self._save(record)
        self._counts["submissions"] += 1
        self._peering.soon()
        if message.moved_from is None:
            logger.info("job %s (%s) accepted from %s", job.job_id, job.name, incoming.source)
        else:
            logger.info(
                "job %s (%s) accepted from %s, moved here from broker %s by its client",
                job.job_id,
                job.name,
                incoming.source,
                message.moved_from,
            )
        await self._send(incoming.source, accepted, lifetime_s=REPLY_LIFETIME_S)
        # Only the new job and the jobs waiting for it can have become runnable.
        await self._scheduler_or_fail().schedule([record, *self._jobs.dependents(record.job_id)])
        # A job dispatched (or rejected) at once was announced so: "queued" only if it waits.
        current = self._jobs.get(record.job_id)
        if current is not None and current.state == JobStatus.QUEUED:
            await self._announce(current)

    async def _on_heartbeat(self, message: Heartbeat) -> None:
        now = self._clock()
        new = self._registry.observe(message, now)
        if new:
            logger.info(
                "%s %s appeared", "/".join(sorted(_role_name(r) for r in new)), message.node
            )
        if message.roles & Role.DATASTORE:
            node = _node(message.node)
            await self._replicas_or_fail().heartbeat(node, Role.DATASTORE in new, now)
            await self._relay_or_fail().flush()
        if message.roles & Role.EXECUTOR:
            # Its heartbeat lists the jobs that started there (short ones send no job-state).
            await self._reports_or_fail().on_started(message.node, message.started)
            await self._scheduler_or_fail().schedule()

    def _on_data_reply(self, incoming: Incoming, message: DataReply) -> None:
        # Replies to the broker's own result puts.
        if message.status in (DataStatus.OK, DataStatus.STALE):
            logger.debug("datastore %s stored request %d", incoming.source, message.request_id)
        else:
            logger.warning(
                "datastore %s answered request %d with %r: %s",
                incoming.source,
                message.request_id,
                message.status,
                message.detail,
            )

    async def _on_sync(self, incoming: Incoming, message: BrokerSync) -> None:
        merged = self._peering.accept(message)
        if merged is None:
            self._ignore(incoming, "stale or own broker sync")
            return
        if merged.names:
            await self._journal_or_fail().put_names(merged.names)
        handed_back = await self._succession_or_fail().synced(
            merged.sender, merged.contested, full=merged.full
        )
        failed = [
            job_id
            for job_id in [*merged.became_final, *handed_back]
            if self._jobs.state_of(job_id)
            in (JobStatus.FAILED, JobStatus.REJECTED, JobStatus.CANCELLED)
        ]
        await self._scheduler_or_fail().reject_dependents(failed)
        await self._schedule_in_round()

    # -- plumbing -----------------------------------------------------------------------------

    def _defer_names(self, entries: list[DataEntry]) -> bool:
        if self._round is None:
            return False
        self._round.write_names(entries)
        return True

    async def _save(self, record: JobRecord) -> None:
        if self._round is not None:
            self._round.write(record)
        else:
            await self._journal_or_fail().put_jobs([record])
        self._jobs.put(record)

    async def _announce(self, record: JobRecord) -> None:
        """Tell the job's result address about its (new) state."""
        update = JobState(
            job_id=record.job_id,
            state=record.state,
            at=record.updated_at,
            detail=record.detail,
            executor=record.executor,
            attempt=record.attempts,
        )
        lifetime = self.settings.result_lifetime_s if record.final else _STATE_LIFETIME_S
        await self._send(record.result_address, update, lifetime_s=lifetime)

    async def _send(
        self,
        destination: str | EndpointID,
        message: UcpMessage,
        *,
        custody: bool = False,
        lifetime_s: float | None = None,
    ) -> None:
        if self._mailbox is None:
            raise RuntimeError("the broker is not running")
        if self._round is not None:
            self._round.send(destination, message, custody=custody, lifetime_s=lifetime_s)
            return
        await self._mailbox.send(destination, message, custody=custody, lifetime_s=lifetime_s)

    def _journal_or_fail(self) -> AsyncJournal:
        return _running(self._journal)

    def _relay_or_fail(self) -> DataRelay:
        return _running(self._relay)

    def _succession_or_fail(self) -> Succession:
        return _running(self._succession)

    def _scheduler_or_fail(self) -> JobScheduler:
        return _running(self._scheduler)

    def _reports_or_fail(self) -> ExecutorReports:
        return _running(self._reports)

    def _requests_or_fail(self) -> ClientRequests:
        return _running(self._requests)

    def _replicas_or_fail(self) -> ReplicaKeeper:
        return _running(self._replicas)

    # -- reporting ----------------------------------------------------------------------------

    def jobs_changed_since(self, mark: int) -> tuple[int, list[JobRecord]]:
        """``(latest mark, own job records changed after mark)``, oldest first: a reader keeps
        the mark and asks again for what changed (``mark=0``: every job). A latest mark below
        the one asked for means the job book was replaced (the role restarted): read again
        from 0. Records are immutable; nothing here changes the broker."""
        jobs = self._jobs
        return jobs.change_mark, jobs.changed_since(mark)

    def members(self) -> tuple[MemberInfo, ...]:
        """The live executors, datastores and brokers known from heartbeats, with their
        capabilities, load and free space."""
        return self._registry.members(self._clock())

    def statistics(self) -> BrokerStatistics:
        """What the broker holds and has done (works before and after ``run`` too)."""
        now = self._clock()
        states = self._jobs.counts()
        relay = self._relay
        counts = self._counts
        mailbox = (
            self._counted_mailbox.statistics()
            if self._counted_mailbox is not None
            else MailboxStatistics(0, 0, 0, 0, 0, 0)
        )
        return BrokerStatistics(
            jobs=len(self._jobs),
            queued=states[JobStatus.QUEUED],
            dispatched=states[JobStatus.DISPATCHED],
            running=states[JobStatus.RUNNING],
            done=states[JobStatus.DONE],
            failed=states[JobStatus.FAILED],
            rejected=states[JobStatus.REJECTED],
            cancelled=states[JobStatus.CANCELLED],
            foreign_jobs=self._jobs.foreign_count,
            executors=self._registry.count(Role.EXECUTOR, now),
            datastores=self._registry.count(Role.DATASTORE, now),
            peer_brokers=len(self._peering.known_peers(self._registry, now)),
            submissions=counts["submissions"],
            duplicates=counts["duplicates"],
            dispatches=counts["dispatches"],
            results=counts["results"],
            late_results=counts["late_results"],
            redeployments=counts["redeployments"],
            takeovers=0 if self._succession is None else self._succession.takeovers,
            orphan_results=counts["orphan_results"],
            data_relayed=0 if relay is None else relay.relayed,
            data_queued=0 if relay is None else len(relay.pending),
            names_cached=len(self._names),
            status_queries=counts["status_queries"],
            syncs_sent=self._peering.sent,
            syncs_received=self._peering.received,
            ignored=counts["ignored"],
            messages_received=mailbox.received,
            bundles_received=mailbox.bundles_received,
            messages_sent=mailbox.sent,
            bundles_sent=mailbox.bundles_sent,
            rounds=self._rounds,
            scheduling_passes=0 if self._scheduler is None else self._scheduler.passes,
            replication=None if self._replicas is None else self._replicas.statistics(),
        )


def _node(endpoint: str) -> str:
    return str(node_of(endpoint))


def _role_name(role: Role) -> str:
    return (role.name or str(int(role))).lower()


_Part = TypeVar("_Part")


def _running(part: _Part | None) -> _Part:
    """``part`` of a running broker (set by :meth:`BrokerRole.run`), or RuntimeError."""
    if part is None:
        raise RuntimeError("the broker is not running")
    return part
