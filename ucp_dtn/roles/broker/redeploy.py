"""Which jobs a broker takes back from a lost executor, and what their records become (sans-IO).

Theory of operation
-------------------
A job DISPATCHED to or RUNNING on an executor is *stranded* when that executor is not live in
the broker's registry (no heartbeat for ``executor_timeout_s``) and neither the job's state
nor the broker's serving has changed for that long either. The second condition covers a broker
that has just (re)started and heard from nobody yet: it gives every executor one timeout to
send a heartbeat before its jobs are taken back. A stranded job goes back to QUEUED
(:func:`requeue`), keeping its attempt count; the broker's next scheduling round dispatches it
to another capable executor as attempt ``n+1`` — or, with no capable executor, it waits QUEUED
like any new job.

If the lost executor comes back and reports, the first result for the job wins whichever
attempt produced it; later results are dropped and counted (``late_results``). A ``running``
report from an executor the job is no longer dispatched to is ignored (:func:`is_current`).

Takeover: a broker that gets a result or a ``running`` report for a job another broker owns
(known from that broker's syncs, :class:`~.job_records.ForeignJob`) — because the executor's
broker is gone and it reports to the nearest live one — makes the job its own
(:func:`adopted`) and handles the message as for any own job: the result reaches the client.
A broker also takes over, without waiting for a report, every job a lost broker had not
finished — queued ones included, since syncs carry their inline data — once that broker has
been gone long enough (:func:`orphaned_jobs`); the broker that waits least is the one with the
smallest node ID, and each further one waits a sync round more, so the first takeover reaches
the others in a sync before they would act.

Two owners: a broker that comes back finds its own jobs in another broker's syncs. Exactly one
keeps each (:func:`keeps_job`): the one whose record is final; else the one that took the job
over from the other (when both records name the same client); else the smaller broker EID.
The other drops its record.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable

from ...ucp.messages import JobStatus, JobSubmission, SyncedJob
from ..endpoints import node_of
from .job_records import ForeignJob, JobRecord, job_status

__all__ = [
    "RestartHold",
    "adopted",
    "is_current",
    "keeps_job",
    "orphaned_jobs",
    "requeue",
    "stranded_jobs",
    "takeover_wait",
]

_BUSY = (JobStatus.DISPATCHED, JobStatus.RUNNING)


def stranded_jobs(
    records: Iterable[JobRecord],
    is_live: Callable[[str], bool],
    now: float,
    timeout_s: float,
    *,
    serving_since: float = float("-inf"),
) -> list[JobRecord]:
    """The busy jobs of ``records`` whose executor node is not live (``is_live(node_id)``) and
    which have not changed state for ``timeout_s`` (nor has the broker served for less, since
    ``serving_since``); in the order given."""
    found: list[JobRecord] = []
    for record in records:
        if record.state not in _BUSY or record.executor is None or record.result is not None:
            continue
        if now - max(record.updated_at, serving_since) < timeout_s:
            continue
        if not is_live(str(node_of(record.executor))):
            found.append(record)
    return found


def requeue(record: JobRecord, now: float) -> JobRecord:
    """``record`` taken back from its lost executor: QUEUED again, saying why."""
    return dataclasses.replace(
        record,
        state=JobStatus.QUEUED,
        updated_at=now,
        detail=f"executor {record.executor} lost during attempt {record.attempts}: redeploying",
    )


def is_current(record: JobRecord, executor_node: str) -> bool:
    """Whether ``executor_node`` (node ID text) is the executor ``record`` was last dispatched
    to (a job never dispatched has none: anybody counts)."""
    return record.executor is None or str(node_of(record.executor)) == executor_node


def adopted(foreign: ForeignJob, sequence: int, now: float | None = None) -> JobRecord | None:
    """This broker's record for a job another broker owned, as its last sync described it
    (the job with its inline data, its state, attempts and executor); ``None`` when that job is
    final or the sync did not carry the job or its client. ``now`` (default: the synced time)
    becomes the record's update time."""
    status = foreign.status
    if foreign.final or foreign.job is None or status.client is None:
        return None
    return JobRecord(
        submission=JobSubmission(job=foreign.job, inline_data=foreign.inline_data),
        client=status.client,
        sequence=sequence,
        state=job_status(status.state),
        submitted_at=status.updated_at,
        updated_at=status.updated_at if now is None else now,
        detail=f"taken over from {foreign.broker}",
        attempts=status.attempts,
        executor=status.executor,
        taken_from=foreign.broker,
    )


def orphaned_jobs(
    foreign: Iterable[ForeignJob], gone_for: Callable[[str], float], wait_s: float
) -> list[ForeignJob]:
    """The jobs of ``foreign`` a broker may take over now: not final, with their job, and
    owned by a broker gone for longer than ``wait_s`` (``gone_for(broker)``: seconds since it
    was last reachable or heard, 0 while it is)."""
    return [
        job
        for job in foreign
        if not job.final and job.job is not None and gone_for(job.broker) > wait_s
    ]


def keeps_job(own: JobRecord, own_broker: str, other: SyncedJob, other_broker: str) -> bool:
    """Whether this broker (``own_broker``) keeps a job that ``other_broker``'s sync lists as
    its own too (see the module docstring)."""
    other_final = isinstance(other.status.state, JobStatus) and other.status.state.final
    if own.final != other_final:
        return own.final
    # A "taken over from you" counts only between records of the same client: a job its client
    # moved (``moved_from``) says so in its own words, and another client reusing the job's
    # UUID must not make the broker holding the real job give it up.
    if other.status.client == own.client:
        if other.taken_from == own_broker:
            return False
        if own.taken_from == other_broker:
            return True
    return own_broker < other_broker


def takeover_wait(
    live_brokers: Iterable[str], own_node: str, broker_timeout_s: float, round_s: float
) -> float:
    """How long a lost broker must have been gone before this one (node ID ``own_node``) takes
    its jobs over: ``broker_timeout_s``, plus one sync round (``round_s``) per live broker with
    a smaller node ID (those take over first, and their syncs say so in time)."""
    rank = sorted(set(live_brokers) | {own_node}).index(own_node)
    return broker_timeout_s + rank * round_s


class RestartHold:
    """The queued jobs a restarted broker holds back until the brokers it had syncs from have
    synced again — one of them may have taken those jobs over meanwhile — or until the hold's
    time is up (a broker that is gone for good does not hold them for ever)."""

    def __init__(self, queued: Iterable[uuid.UUID], brokers: Iterable[str], until: float) -> None:
        self.awaited = set(brokers)
        """Brokers whose sync has not come yet."""
        self.until = until
        """When the hold ends anyway (trio's clock)."""
        self._held = set(queued) if self.awaited else set()

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, job_id: uuid.UUID) -> bool:
        """Whether ``job_id`` may not be dispatched yet."""
        return job_id in self._held

    def heard(self, broker: str) -> None:
        """A sync from ``broker`` came."""
        self.awaited.discard(broker)

    def discard(self, job_id: uuid.UUID) -> None:
        """``job_id`` is no longer this broker's."""
        self._held.discard(job_id)

    def release(self, now: float) -> int:
        """End the hold if every awaited sync came or its time is up; how many jobs it
        released."""
        if not self._held or (self.awaited and now < self.until):
            return 0
        released = len(self._held)
        self._held.clear()
        return released
