"""What the broker remembers about one job (:class:`JobRecord`) and about a job another broker
owns (:class:`ForeignJob`).

A record is immutable; every change makes a new one (``dataclasses.replace``), which the broker
writes to its journal before it tells anybody. The record keeps the whole submission (the job and
its inline data) so the job can be dispatched again after a restart, and the first result, so the
result can be delivered again if the broker stopped half-way through delivering it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...ucp.job import JobInfo
from ...ucp.messages import JobResult, JobStatus, JobStatusEntry, JobSubmission, SyncedJob
from ...ucp.names import DataName

__all__ = ["ForeignJob", "JobRecord", "job_status"]


def job_status(code: JobStatus | int) -> JobStatus | int:
    """``code`` as a :class:`JobStatus` if it is one this version knows, else the plain int."""
    try:
        return JobStatus(code)
    except ValueError:
        return code


def _is_final(state: JobStatus | int) -> bool:
    return isinstance(state, JobStatus) and state.final


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job this broker owns (it accepted the submission)."""

    submission: JobSubmission
    """The submission as it arrived: the job and its inline data."""
    client: str
    """The submitter (the submission bundle's source EID)."""
    sequence: int
    """Order of acceptance at this broker (jobs are scheduled oldest first)."""
    state: JobStatus | int
    """Where the job is in its life."""
    submitted_at: float
    """When the broker accepted it (the broker's clock)."""
    updated_at: float
    """When the state last changed."""
    detail: str = ""
    """One line about the state (why queued, why rejected, the failure text)."""
    attempts: int = 0
    """How often it has been dispatched."""
    executor: str | None = None
    """The executor node it was last dispatched to (node ID)."""
    dispatched_at: float | None = None
    """When it was last dispatched."""
    started_at: float | None = None
    """When its executor reported it running."""
    finished_at: float | None = None
    """When it reached a final state."""
    result: JobResult | None = None
    """The first result that arrived (the one that counts)."""
    result_ref: DataName | None = None
    """Where the result is kept in the datastores (``<job-uuid>/result``)."""
    result_delivered: bool = False
    """Whether the result has been handed on (stored, forwarded, dependents released); a result
    that arrived but was not handed on before a crash is handed on after the restart."""
    taken_from: str | None = None
    """The broker (EID) this one took the job over from, when it did (docs/disruption.md)."""

    @property
    def job(self) -> JobInfo:
        """The job as submitted (``submission.job``)."""
        return self.submission.job

    @property
    def job_id(self) -> uuid.UUID:
        """The job's UUID, given by its client: the record's key in the journal and in
        broker syncs."""
        return self.submission.job.job_id

    @property
    def final(self) -> bool:
        """Whether the job will not change state again."""
        return _is_final(self.state)

    @property
    def result_address(self) -> str:
        """Where results and state updates go: the job's result address, else the client."""
        return self.job.result_address or self.client

    def status_entry(self) -> JobStatusEntry:
        """The record as status replies and broker syncs carry it."""
        return JobStatusEntry(
            job_id=self.job_id,
            state=self.state,
            updated_at=self.updated_at,
            name=self.job.name,
            detail=self.detail,
            client=self.client,
            executor=self.executor,
            attempts=self.attempts,
            result_ref=self.result_ref,
        )

    def synced(self) -> SyncedJob:
        """The record as a broker sync carries it: while it is not final with the job and its
        inline data, so that another broker can run it if this one is lost."""
        if self.final:
            return SyncedJob(status=self.status_entry(), taken_from=self.taken_from)
        return SyncedJob(
            status=self.status_entry(),
            job=self.job,
            inline_data=self.submission.inline_data,
            taken_from=self.taken_from,
        )


@dataclass(frozen=True, slots=True)
class ForeignJob:
    """A job another broker owns, as its latest broker sync described it."""

    broker: str
    """The owning broker (EID)."""
    status: JobStatusEntry
    """Its state there."""
    job: JobInfo | None = None
    """The job, while it is not final (for a takeover if that broker disappears)."""
    inline_data: Mapping[DataName, bytes] = field(default_factory=dict)
    """The submission's inline data, while it is not final."""
    taken_from: str | None = None
    """The broker the owner took the job over from, if it did."""

    @property
    def final(self) -> bool:
        """Whether the job will not change state again."""
        return _is_final(self.status.state)
