"""The broker's job table as the dashboard shows it, kept up to date incrementally.

Theory of operation
-------------------
:class:`JobTable` follows one broker through :meth:`BrokerRole.jobs_changed_since`: each
:meth:`JobTable.refresh` asks only for the records changed since the last mark, turns them into
:class:`JobRow` values and replaces the old rows. A broker that restarted (its mark went back)
or was replaced (a promotion) is read again from the start. The first time a job is seen in a
final state its run time and queueing time go into two :class:`Histogram` s, once per job for
the life of the daemon, which ``/metrics`` exposes as Prometheus histograms.

Nothing here blocks, sends or reads the broker's internals; time comes from the records.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bpv7 import BPv7Error

from ..roles.endpoints import node_of
from ..ucp.messages import JobStatus

if TYPE_CHECKING:
    from ..roles.broker import BrokerRole, JobRecord

__all__ = [
    "JOB_STATES",
    "RUN_TIME_BUCKETS",
    "WAIT_TIME_BUCKETS",
    "Histogram",
    "JobRow",
    "JobTable",
    "state_name",
]

JOB_STATES = tuple(status.name.lower() for status in JobStatus)
"""Every job state name, in life order: queued, dispatched, running, done, failed, rejected."""

RUN_TIME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    900.0, 3600.0)  # fmt: skip
"""Upper bounds (seconds) of the job run-time histogram: a trivial module to an hour's work."""
WAIT_TIME_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0, 86400.0)
"""Upper bounds (seconds) of the submission-to-start histogram (minutes to days in a DTN)."""


def state_name(state: JobStatus | int) -> str:
    """``done``, ``queued``...; a code this version does not know as its number."""
    return state.name.lower() if isinstance(state, JobStatus) else str(int(state))


def _node_text(endpoint: str | None) -> str | None:
    if endpoint is None:
        return None
    try:
        return str(node_of(endpoint))
    except BPv7Error:
        return endpoint


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job of the broker's table, as the page and the JSON API show it."""

    job_id: str
    """The job's UUID."""
    name: str
    """Its name in the plan (may be empty)."""
    state: str
    """``queued``, ``dispatched``, ``running``, ``done``, ``failed`` or ``rejected``."""
    client: str
    """Who submitted it (EID)."""
    executor: str | None
    """The node it was last dispatched to (node ID), if any."""
    attempts: int
    """How often it has been dispatched."""
    submitted_at: float
    """When the broker accepted it (unix seconds, the broker's clock)."""
    dispatched_at: float | None
    """When it was last dispatched."""
    started_at: float | None
    """When its executor reported it running."""
    finished_at: float | None
    """When it reached a final state."""
    updated_at: float
    """When its state last changed."""
    run_s: float | None
    """Seconds from start (or, when no start was reported, dispatch) to finish; ``None`` until
    it finished, and for rejected jobs."""
    detail: str
    """One line about the state (why queued, the failure...)."""

    @classmethod
    def of(cls, record: JobRecord) -> JobRow:
        """The row of a broker's record."""
        return cls(
            job_id=str(record.job_id),
            name=record.job.name,
            state=state_name(record.state),
            client=record.client,
            executor=_node_text(record.executor),
            attempts=record.attempts,
            submitted_at=record.submitted_at,
            dispatched_at=record.dispatched_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            updated_at=record.updated_at,
            run_s=_run_time(record),
            detail=record.detail,
        )

    @property
    def final(self) -> bool:
        """Whether the job will not change state again."""
        return self.state in ("done", "failed", "rejected")


def _run_time(record: JobRecord) -> float | None:
    if record.state not in (JobStatus.DONE, JobStatus.FAILED) or record.finished_at is None:
        return None
    began = record.started_at if record.started_at is not None else record.dispatched_at
    return None if began is None else max(0.0, record.finished_at - began)


def _wait_time(record: JobRecord) -> float | None:
    began = record.started_at if record.started_at is not None else record.dispatched_at
    return None if began is None else max(0.0, began - record.submitted_at)


class Histogram:
    """Observations counted into fixed buckets (Prometheus' cumulative form on demand)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        """Upper bounds of the buckets, ascending (``+Inf`` is implicit)."""
        self._counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        """Observations."""
        self.sum = 0.0
        """Their sum."""

    def observe(self, value: float) -> None:
        """Count ``value`` (a bucket's bound is inclusive, as in Prometheus)."""
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(bound, observations <= bound)`` per bucket, ``+Inf`` last."""
        running = 0
        result = []
        for bound, count in zip((*self.bounds, float("inf")), self._counts, strict=True):
            running += count
            result.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return result


class JobTable:
    """The rows of one broker's jobs, refreshed from its changes (see the module docstring)."""

    def __init__(self) -> None:
        self._rows: dict[str, JobRow] = {}
        self._broker: object | None = None
        self._mark = 0
        self._finals_seen: set[uuid.UUID] = set()
        self.run_time = Histogram(RUN_TIME_BUCKETS)
        """Run times of finished jobs (done or failed), seconds."""
        self.wait_time = Histogram(WAIT_TIME_BUCKETS)
        """Submission to start (or dispatch) of finished jobs, seconds."""

    def refresh(self, broker: BrokerRole | None) -> None:
        """Take in what changed at ``broker`` since the last call (``None``: no broker; the
        table empties, the histograms keep their counts)."""
        if broker is None:
            self._rows.clear()
            self._broker, self._mark = None, 0
            return
        if broker is not self._broker:
            self._rows.clear()
            self._broker, self._mark = broker, 0
        mark, changed = broker.jobs_changed_since(self._mark)
        if mark < self._mark:  # the broker's job book was replaced: read it all again
            self._rows.clear()
            mark, changed = broker.jobs_changed_since(0)
        self._mark = mark
        self._take(changed)

    def _take(self, records: Iterable[JobRecord]) -> None:
        for record in records:
            row = JobRow.of(record)
            self._rows[row.job_id] = row
            if row.final and record.job_id not in self._finals_seen:
                self._finals_seen.add(record.job_id)
                if row.run_s is not None:
                    self.run_time.observe(row.run_s)
                wait = _wait_time(record)
                if wait is not None and row.state != "rejected":
                    self.wait_time.observe(wait)

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, job_id: str) -> JobRow | None:
        """The row of ``job_id`` (its UUID as text)."""
        return self._rows.get(job_id)

    def counts(self) -> dict[str, int]:
        """Jobs per state (every known state present)."""
        counts = dict.fromkeys(JOB_STATES, 0)
        for row in self._rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def select(
        self,
        *,
        states: Iterable[str] = (),
        executor: str | None = None,
        text: str | None = None,
        limit: int | None = None,
    ) -> list[JobRow]:
        """Rows matching every filter given, most recently changed first: ``states`` (any
        of), ``executor`` (node ID, exactly), ``text`` (in the name, job ID, client, executor
        or detail, ignoring case); at most ``limit`` rows."""
        wanted = frozenset(states)
        needle = text.lower() if text else None
        rows = sorted(self._rows.values(), key=lambda r: (r.updated_at, r.job_id), reverse=True)
        selected = []
        for row in rows:
            if wanted and row.state not in wanted:
                continue
            if executor is not None and row.executor != executor:
                continue
            if needle is not None and not _mentions(row, needle):
                continue
            selected.append(row)
            if limit is not None and len(selected) >= limit:
                break
        return selected


def _mentions(row: JobRow, needle: str) -> bool:
    return any(
        needle in value.lower()
        for value in (row.name, row.job_id, row.client, row.executor or "", row.detail)
    )
