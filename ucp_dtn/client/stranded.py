"""Jobs stranded with a lost broker: the client sends a job again, to the broker it reaches
now, when the broker that accepted it was lost before it told any other broker about it.

Theory of operation
-------------------
A broker that accepts a job tells the other brokers at its next sync tick; from then on any of
them can take the job over when that broker is lost (docs/disruption.md). A broker lost in
between — killed, powered off, carried out of the mesh, its disk gone — leaves a job that only
its client knows, although the client was told "accepted". No broker can repair that: the
others never heard of the job. The client can, since it keeps each submission in its journal
(as sent, inline data included) until the job's result is here or it was collected.

Whenever the client asks a broker about its unsettled jobs (``ucp status``, ``ucp collect``,
the polls of ``ucp run``: :func:`~.jobs.wait_for_jobs`), :func:`move_stranded` looks at the
jobs the answer did not list. Such a job is *stranded* (:func:`stranded`, sans-IO) when

* the broker that answered does not know it — neither as its own nor from another broker's
  sync;
* it is with another broker: the one that last accepted it, else the one it was sent to;
* it was sent there at least ``resubmit_after_s`` ago (the client's clock; from the
  submission, or from the last move) — long past that broker's next sync;
* nothing more will come for it otherwise: no result here, not rejected, cancelled, done or
  failed (the result of a finished job is fetched from the datastores instead);
* and its submission is still kept.

Then the client asks the broker holding the job directly (a status query for those jobs,
waiting ``request_timeout_s``). If it answers and knows the job, the job stays with it (the
broker reached now is simply not its peer). Otherwise — no answer, or an answer without the
job (a broker that came back without its disk) — the client sends the kept submission, with
custody, to the broker that answered, marked ``moved_from`` the silent one, notes the move in
the journal (``broker``, ``moved_at``; ``accepted_by`` waits for the new broker's
``job-accepted``) and tells its listeners (one line per job: ``ucp`` prints it).

Why this never loses or doubles a job or a result: the job keeps its UUID, so a broker that
knows it answers the submission as a duplicate; an executor that already ran it answers a
second dispatch from its journal; the client keeps the first result that arrives and drops
later ones. Should the silent broker come back with the job, the two brokers own it both for a
moment and exactly one keeps it — the new one, which records the job as taken over from the
old (:func:`~ucp_dtn.roles.broker.redeploy.keeps_job`) — so the job is dispatched once unless
the old broker dispatched it before it was lost, or it was only cut off (then the job may run
twice, and the first result wins, as for a redeployed job).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from ..ucp import JobStatus, StatusQuery, StatusReply
from .errors import NoReply
from .journal import JobEntry
from .node import JobEvent
from .session import ClientSession

__all__ = ["MovedJob", "holder", "move_stranded", "stranded"]

logger = logging.getLogger(__name__)

_FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class MovedJob:
    """A job the client sent to another broker (:func:`move_stranded`)."""

    entry: JobEntry
    """The job as the journal knows it after the move."""
    from_broker: str
    """The broker that held it and did not answer (EID text)."""
    to_broker: str
    """The broker it was sent to now (EID text)."""
    silent_s: float
    """Seconds since it was sent to ``from_broker`` (the client's clock)."""

    @property
    def line(self) -> str:
        """What ``ucp`` says about the move, in one line."""
        return (
            f"{self.entry.label}: moved to {self.to_broker}: {self.from_broker} accepted it "
            f"{self.silent_s:.0f} s ago, does not answer, and no other broker knows the job"
        )


def holder(entry: JobEntry) -> str | None:
    """The broker a job is with, as far as the client knows: the one that last accepted it,
    else the one its submission was sent to (``None``: still in the outbox)."""
    return entry.accepted_by or entry.broker


def stranded(
    entries: Iterable[JobEntry],
    known: Collection[uuid.UUID],
    answering: str,
    now: float,
    after_s: float,
) -> list[JobEntry]:
    """The jobs of ``entries`` that may be stranded (see the module docstring): not in
    ``known`` (what the broker ``answering`` listed), with another broker, sent there at least
    ``after_s`` before ``now`` (the client's clock), and still waiting for anything. Pure; an
    ``after_s`` of 0 means never."""
    if after_s <= 0:
        return []
    found = []
    for entry in entries:
        with_broker = holder(entry)
        if with_broker is None or with_broker == answering or entry.job_id in known:
            continue
        if entry.settled or entry.state in _FINISHED:
            continue
        sent_at = max(entry.submitted_at, entry.moved_at or entry.submitted_at)
        if now - sent_at >= after_s:
            found.append(entry)
    return found


async def move_stranded(
    session: ClientSession, asked: Sequence[uuid.UUID], reply: StatusReply
) -> list[MovedJob]:
    """After the broker that sent ``reply`` was asked about the jobs ``asked``: send the
    stranded ones to it (see the module docstring); the jobs moved."""
    after_s = session.settings.resubmit_after_s
    listed = {job.job_id for job in reply.jobs}
    missing = [job_id for job_id in asked if job_id not in listed]
    if after_s <= 0 or not missing:
        return []
    answering = reply.broker
    now = session.journal.now()
    entries = await session.journal.get_many(missing)
    candidates = stranded(entries.values(), listed, answering, now, after_s)
    if not candidates:
        return []
    # Only jobs that can move are worth asking about (a journal older than kept submissions
    # has none: its jobs would be asked about at every poll, to no end).
    kept = await session.journal.submissions([entry.job_id for entry in candidates])
    by_holder: dict[str, list[JobEntry]] = {}
    for entry in candidates:
        if entry.job_id in kept:
            by_holder.setdefault(holder(entry) or "", []).append(entry)
    moved: list[MovedJob] = []
    for silent, jobs in by_holder.items():
        still_there = await _known_by(session, silent, [entry.job_id for entry in jobs])
        for entry in jobs:
            if entry.job_id in still_there:
                continue
            again = dataclasses.replace(kept[entry.job_id], moved_from=silent)
            await session.mailbox.send(
                answering, again, custody=True, lifetime_s=session.settings.lifetime_s
            )
            session.client.sent_with_custody = True
            after = await session.journal.move(entry.job_id, answering) or entry
            sent_at = max(entry.submitted_at, entry.moved_at or entry.submitted_at)
            move = MovedJob(after, silent, answering, now - sent_at)
            logger.warning("%s", move.line)
            session.client.notify(JobEvent(after, again))
            moved.append(move)
    return moved


async def _known_by(
    session: ClientSession, broker: str, job_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """The jobs of ``job_ids`` that ``broker`` says it knows; empty if it does not answer
    within the request timeout."""
    query = StatusQuery(request_id=session.new_request_id(), job_ids=tuple(job_ids))
    try:
        replies = await session.request(query, destination=broker)
    except NoReply as exc:
        logger.info("jobs with %s: %s", broker, exc)
        return set()
    found: set[uuid.UUID] = set()
    for incoming in replies:
        answer = incoming.message
        if isinstance(answer, StatusReply):
            found.update(job.job_id for job in answer.jobs if job.job_id in job_ids)
    return found
