"""Submitting a plan's jobs and following them: uploading their inputs, submitting them,
following their states, taking in their results, cancelling them (:func:`cancel_jobs`) and
reading their output while they run (:func:`job_output`).

:func:`submit_plan` records the plan's jobs in the journal, then sends — uploads first, each a
``data-put`` with custody, then one ``job-submit`` with custody per job, in the plan's
topological order — and waits (``wait_s``) for the broker's ``job-accepted`` for every job.
While the broker is reachable it waits for the datastores to confirm the uploads before it
submits, so that no job is dispatched before its inputs are stored. When no broker is
reachable the messages stay queued (bundles in the client's store, or the journal's outbox if no
broker was ever known) and leave with the next command that reaches one.

:func:`wait_for_jobs` follows jobs until each is *settled* — its result is in the journal or it
was rejected — from the ``job-state`` and ``job-result`` bundles the broker sends the client,
asking the broker's status now and then, and fetching from the datastores
(``<job-uuid>/result``) the result of a job the broker reports finished when its bundle does
not come.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from ..agent.progress import wait_while_arriving
from ..roles import Incoming
from ..ucp import (
    DataPut,
    DataReply,
    DataStatus,
    ExecutionPlan,
    JobCancel,
    JobCancelReply,
    JobLogQuery,
    JobLogReply,
    JobResult,
    JobStatus,
    JobSubmission,
    MessageDecodeError,
    job_result_name,
)
from ..ucp.messages import UcpMessage
from .data import get_data
from .errors import ClientError, NoReply
from .journal import JobEntry
from .node import JobEvent
from .session import ClientSession
from .stranded import move_stranded

__all__ = [
    "CancelOutcome",
    "SubmitOutcome",
    "SubmitReport",
    "SubmittedJob",
    "cancel_jobs",
    "fetch_archive",
    "fetch_result",
    "job_output",
    "submit_plan",
    "wait_for_jobs",
]

logger = logging.getLogger(__name__)

_POLL_S = 5.0
_RESULT_GRACE_S = 2.0


class SubmitOutcome(enum.Enum):
    """How far a submission got before ``ucp submit`` returned."""

    ACCEPTED = "accepted"
    """The broker accepted every job."""
    SENT = "sent"
    """A broker was reachable and the bundles left, but not every job was accepted in time."""
    QUEUED = "queued"
    """No broker was reachable: the bundles wait in the client's store (or outbox)."""


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    """One job of a submission."""

    name: str
    """Its name in the plan."""
    job_id: uuid.UUID
    """The UUID the client gave it: ``ucp status``, ``ucp collect`` and the broker know it by
    this."""
    accepted: bool
    """Whether the broker accepted it before the command returned."""
    warning: str = ""
    """What the broker warned about when it accepted it (e.g. no node known at its result
    address)."""
    rejected: str | None = None
    """Why the broker rejected it, if it answered so before the command returned."""


@dataclass(frozen=True, slots=True)
class SubmitReport:
    """What :func:`submit_plan` did."""

    outcome: SubmitOutcome
    """How far it got."""
    jobs: tuple[SubmittedJob, ...]
    """The jobs, in submission order."""
    broker: str | None
    """The broker the messages are addressed to (``None``: in the outbox until one is
    found)."""
    uploads: int
    """Named data sent with ``data-put`` before the jobs (the plan's uploads)."""
    uploads_confirmed: int
    """Uploads a datastore confirmed before the jobs were submitted."""


def _uploads(plan: ExecutionPlan, session: ClientSession) -> list[DataPut]:
    now = time.time()
    puts = []
    for upload in plan.uploads:
        job_id = None if upload.job is None else plan.job(upload.job).info.job_id
        try:
            data = upload.read()
        except OSError as exc:
            raise ClientError(f"cannot read {upload.file}: {exc.strerror or exc}") from None
        puts.append(
            DataPut(
                request_id=session.new_request_id(),
                name=upload.name,
                data=data,
                written_at=now,
                job_id=job_id,
                replicas=upload.replicas,
            )
        )
    return puts


async def _confirm_uploads(
    session: ClientSession, puts: Sequence[DataPut], replies: trio.MemoryReceiveChannel[Incoming]
) -> int:
    """Wait for the datastores' answers to ``puts``; the number confirmed."""
    waiting = {put.request_id: put for put in puts}
    confirmed = 0
    while waiting:
        # Large uploads take long on a slow link: wait while octets leave or arrive.
        incoming = await wait_while_arriving(
            replies.receive, session.settings.wait_s, session.activity
        )
        if incoming is None:
            break
        reply = incoming.message
        if not isinstance(reply, DataReply):
            continue
        put = waiting.pop(reply.request_id, None)
        if put is None:
            continue
        if reply.status in (DataStatus.OK, DataStatus.STALE):
            confirmed += 1
        else:
            raise ClientError(
                f"upload of {put.name!r} refused by {incoming.source}: "
                f"{_status(reply.status)} {reply.detail}".strip()
            )
    return confirmed


def _status(status: DataStatus | int) -> str:
    return status.name.lower().replace("_", " ") if isinstance(status, DataStatus) else str(status)


async def submit_plan(session: ClientSession, plan: ExecutionPlan) -> SubmitReport:
    """Submit every job of ``plan`` (see the module docstring)."""
    await session.journal.add_jobs(
        str(plan.source), [(job.name, job.info.job_id) for job in plan.jobs], broker=None
    )
    puts = await trio.to_thread.run_sync(_uploads, plan, session)
    broker = await session.find_broker()
    confirmed = 0
    if puts:
        with session.replies([put.request_id for put in puts]) as replies:
            await session.post(list(puts))
            if broker is not None:
                confirmed = await _confirm_uploads(session, puts, replies)
    # In a trusted mesh each job carries the client's certificate: its result is sealed to it.
    key = session.client.result_key()
    submissions = [
        JobSubmission(
            job=job.info if key is None else dataclasses.replace(job.info, result_key=key),
            inline_data=job.inline_data,
        )
        for job in plan.jobs
    ]
    # Kept until the result is here: sent again if its broker is lost (:mod:`.stranded`).
    await session.journal.keep_submissions(submissions)
    messages: list[UcpMessage] = list(submissions)
    addressed = await session.post(messages)
    job_ids = [job.info.job_id for job in plan.jobs]
    if addressed is not None:
        await session.journal.set_broker(job_ids, str(addressed))
    answered: dict[uuid.UUID, JobEntry] = {}
    if broker is not None:
        answered = await _wait_answered(session, job_ids, session.settings.wait_s)
    # A job whose result came before (or instead of) its job-accepted was taken all the same.
    accepted = {
        job_id: entry
        for job_id, entry in answered.items()
        if entry.accepted_by is not None or entry.result is not None
    }
    rejected = {
        job_id: entry.detail or "rejected"
        for job_id, entry in answered.items()
        if job_id not in accepted
    }
    if broker is None:
        outcome = SubmitOutcome.QUEUED
    elif len(accepted) == len(job_ids):
        outcome = SubmitOutcome.ACCEPTED
    else:
        outcome = SubmitOutcome.SENT
    return SubmitReport(
        outcome=outcome,
        jobs=tuple(
            SubmittedJob(
                job.name,
                job.info.job_id,
                job.info.job_id in accepted,
                accepted[job.info.job_id].warning if job.info.job_id in accepted else "",
                rejected.get(job.info.job_id),
            )
            for job in plan.jobs
        ),
        broker=None if addressed is None else str(addressed),
        uploads=len(puts),
        uploads_confirmed=confirmed,
    )


async def _wait_answered(
    session: ClientSession, job_ids: Sequence[uuid.UUID], wait_s: float
) -> dict[uuid.UUID, JobEntry]:
    """Wait until the broker accepted or rejected each job (``job-accepted``, or a
    ``job-state`` saying rejected/cancelled) or ``wait_s`` passed with nothing arriving; the
    entries answered, by job. A rejection ends the wait for that job at once: nothing more will
    come for it."""
    accepted: dict[uuid.UUID, JobEntry] = {}
    wanted = set(job_ids)
    changed: set[uuid.UUID] = set()

    def note(event: JobEvent) -> None:
        if event.entry.job_id in wanted:
            changed.add(event.entry.job_id)

    # As wait_for_jobs: read again, in one call, only the jobs heard about since the last look.
    session.client.watch(note)
    try:
        reread = list(job_ids)
        while True:
            change = session.next_change()
            reread.extend(changed)
            changed.clear()
            for job_id, entry in (await session.journal.get_many(reread)).items():
                if entry.accepted_by is not None or entry.settled:
                    accepted[job_id] = entry
            reread = []
            if len(accepted) == len(job_ids):
                break
            # The submissions may queue behind large uploads: wait while those move.
            if await wait_while_arriving(_waiter(change), wait_s, session.activity) is None:
                break
    finally:
        session.client.unwatch(note)
    return accepted


def _waiter(event: trio.Event) -> Callable[[], Awaitable[bool]]:
    async def wait() -> bool:
        await event.wait()
        return True

    return wait


async def fetch_result(session: ClientSession, job_id: uuid.UUID) -> JobEntry | None:
    """Fetch the job's result from the datastores (``<job-uuid>/result``) and keep it in the
    journal; the entry, or ``None`` if no datastore has it (yet)."""
    name = job_result_name(job_id)
    items = await get_data(session, name, first_answer=True)
    for item in items:
        if item.name != name:
            continue
        try:
            result = JobResult.from_cbor(item.data)
        except MessageDecodeError as exc:
            raise ClientError(f"the stored result {name!r} is not a job result: {exc}") from None
        if result.job_id != job_id:
            raise ClientError(f"the stored result {name!r} is about job {result.job_id}")
        await session.note_result(result)
        return await session.journal.get(job_id)
    return None


async def fetch_archive(session: ClientSession, result: JobResult) -> bytes | None:
    """The result's archive: inline, or fetched from the datastores when it was stored as
    named data; ``None`` if the result has none."""
    if result.archive is not None:
        return result.archive
    if result.archive_ref is None:
        return None
    for item in await get_data(session, result.archive_ref, first_answer=True):
        if item.name == result.archive_ref:
            return session.client.open_archive(item.data)
    raise ClientError(f"the results archive {result.archive_ref!r} is not in any datastore")


async def refresh(
    session: ClientSession, entries: Sequence[JobEntry], *, fetch_results: bool = True
) -> list[JobEntry]:
    """Ask the broker about the unsettled ``entries`` and fetch the results of the finished
    ones whose result bundle has not come; the entries as the journal knows them after."""
    unsettled = [entry.job_id for entry in entries if not entry.settled]
    if unsettled:
        reply = await session.status(tuple(unsettled))
        # A job no broker knows may be stranded with a lost one: send it again here.
        await move_stranded(session, unsettled, reply)
    # One journal read for all of them (a thread call per job was O(N) calls per poll).
    now_known = await session.journal.get_many([entry.job_id for entry in entries])
    fresh = []
    for entry in entries:
        current = now_known.get(entry.job_id) or entry
        if (
            fetch_results
            and current.result is None
            and current.state in (JobStatus.DONE, JobStatus.FAILED)
        ):
            current = await fetch_result(session, entry.job_id) or current
        fresh.append(current)
    return fresh


async def wait_for_jobs(
    session: ClientSession,
    job_ids: Sequence[uuid.UUID],
    *,
    timeout_s: float = math.inf,
    poll_s: float = _POLL_S,
) -> list[JobEntry]:
    """Follow the jobs until every one is settled (result here, or rejected) or ``timeout_s``
    passed; the entries as the journal knows them then. Progress goes to the session's
    listeners (:meth:`ClientSession.watch`)."""
    deadline = trio.current_time() + timeout_s
    next_poll = trio.current_time() + _RESULT_GRACE_S
    wanted = set(job_ids)
    heard: dict[uuid.UUID, JobEntry] = {}

    def note(event: JobEvent) -> None:
        if event.entry.job_id in wanted:
            heard[event.entry.job_id] = event.entry

    # An event carries the job as the journal holds it after the change, so what the client
    # hears needs no journal read: the journal is read at the start, after a status poll and
    # at the end (re-reading the jobs heard about at every wake-up was a worker-thread round
    # trip per batch of messages). Settling goes one way only (a result or a final state
    # stays), so an event can settle a job but never make a settled one wait again.
    session.client.watch(note)
    try:
        known: dict[uuid.UUID, JobEntry] = {}
        unsettled: set[uuid.UUID] = set()  # of the known ones: kept up to date, not re-scanned
        reread = list(job_ids)
        while True:
            change = session.next_change()
            if reread:
                for job_id, entry in (await session.journal.get_many(reread)).items():
                    # An event heard during the read may be newer; settled wins either way.
                    if job_id not in heard or not heard[job_id].settled:
                        heard[job_id] = entry
                reread = []
            for job_id, entry in heard.items():
                known[job_id] = entry
                if entry.settled:
                    unsettled.discard(job_id)
                else:
                    unsettled.add(job_id)
            heard.clear()
            now = trio.current_time()
            if not unsettled or now >= deadline:
                final = await session.journal.get_many(list(job_ids))
                return [final[i] for i in job_ids if i in final]
            if now >= next_poll:
                next_poll = now + poll_s
                if await session.find_broker(0) is not None:
                    try:
                        # Only the unsettled ones: the poll is about what has not come.
                        await refresh(session, [known[i] for i in unsettled])
                    except NoReply as exc:
                        logger.info("status poll: %s", exc)
                    reread = [i for i in job_ids if i not in known or i in unsettled]
                    continue
            with trio.move_on_at(min(deadline, next_poll)):
                await change.wait()
    finally:
        session.client.unwatch(note)


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What :func:`cancel_jobs` did to one job."""

    entry: JobEntry
    """The job as the journal knows it after the cancel."""
    cancelled: bool
    """This call cancelled it (it was not final yet)."""
    known: bool
    """The broker (or, for a job still in the outbox, the journal) had it; false: the broker
    does not know the job (its submission has not arrived, or another broker has it)."""


async def cancel_jobs(
    session: ClientSession, entries: Sequence[JobEntry], *, reason: str = ""
) -> list[CancelOutcome]:
    """Cancel jobs of this client: one still in the outbox (never sent) is taken out of it;
    the others are cancelled at the broker (which must be reachable), which stops them at their
    executor if they run. A job already final stays as it is."""
    outcomes: dict[uuid.UUID, CancelOutcome] = {}
    remote: list[JobEntry] = []
    detail = reason or "cancelled by its client"
    for entry in entries:
        if entry.final:
            outcomes[entry.job_id] = CancelOutcome(entry, cancelled=False, known=True)
        elif entry.broker is None and await session.journal.drop_from_outbox(entry.job_id):
            updated = await session.journal.update_state(
                entry.job_id, JobStatus.CANCELLED, time.time(), detail=detail
            )
            outcomes[entry.job_id] = CancelOutcome(updated or entry, cancelled=True, known=True)
        else:
            remote.append(entry)
    if remote:
        request = JobCancel(
            request_id=session.new_request_id(),
            job_ids=tuple(entry.job_id for entry in remote),
            reason=reason,
        )
        (incoming,) = await session.request(request)
        reply = incoming.message
        if not isinstance(reply, JobCancelReply):
            raise NoReply(f"the broker answered a cancel with {reply.KIND}")
        before = {entry.job_id: entry for entry in remote}
        await session.note_status(reply.jobs)
        for status in reply.jobs:
            old = before.get(status.job_id)
            if old is None:
                continue
            now = await session.journal.get(status.job_id) or old
            cancelled = status.state == JobStatus.CANCELLED and not old.final
            outcomes[status.job_id] = CancelOutcome(now, cancelled=cancelled, known=True)
        for job_id in reply.unknown:
            if job_id in before:
                outcomes[job_id] = CancelOutcome(before[job_id], cancelled=False, known=False)
    return [outcomes[entry.job_id] for entry in entries if entry.job_id in outcomes]


async def job_output(
    session: ClientSession, job_id: uuid.UUID, *, stdout_from: int = 0, stderr_from: int = 0
) -> JobLogReply:
    """What the broker holds of the job's output (the newest part of each stream, from the
    offsets given)."""
    query = JobLogQuery(
        request_id=session.new_request_id(),
        job_id=job_id,
        stdout_from=stdout_from,
        stderr_from=stderr_from,
    )
    (incoming,) = await session.request(query)
    reply = incoming.message
    if not isinstance(reply, JobLogReply):
        raise NoReply(f"the broker answered a log query with {reply.KIND}")
    return reply
