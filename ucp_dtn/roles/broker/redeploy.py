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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from ...ucp.messages import JobStatus, JobSubmission
from ..endpoints import node_of
from .job_records import ForeignJob, JobRecord, job_status

__all__ = ["adopted", "is_current", "requeue", "stranded_jobs"]

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


def adopted(foreign: ForeignJob, sequence: int) -> JobRecord | None:
    """This broker's record for a job another broker owned, as its last sync described it;
    ``None`` when that job is final or the sync did not carry the job or its client. The
    record has no inline data (syncs do not carry it): a job taken over while queued runs
    without it, so only jobs already dispatched are taken over this way."""
    status = foreign.status
    if foreign.final or foreign.job is None or status.client is None:
        return None
    return JobRecord(
        submission=JobSubmission(job=foreign.job),
        client=status.client,
        sequence=sequence,
        state=job_status(status.state),
        submitted_at=status.updated_at,
        updated_at=status.updated_at,
        detail=f"taken over from {foreign.broker}",
        attempts=status.attempts,
        executor=status.executor,
    )
