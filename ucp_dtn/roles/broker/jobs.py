"""The broker's jobs in memory (sans-IO): its own records, jobs other brokers told it about, and
which jobs wait for which.

The :class:`JobBook` mirrors the journal (the broker writes a record to the journal first, then
:meth:`JobBook.put` s it). It answers the scheduling question of a plan's dependencies — may
this queued job run yet? (:meth:`JobBook.verdict`): a job is runnable when every job of its
``after`` list is DONE; when one of them FAILED or was REJECTED or CANCELLED, the job is
rejected naming it;
otherwise it waits. An ``after`` job this broker does not own may be known from another
broker's sync and counts the same. Every change gets a change number so that a broker sync can
carry only what changed.

A job can be owned by two brokers at once: one took it over while the other was away, and the
other came back (:mod:`.redeploy` decides which keeps it). :meth:`JobBook.merge_foreign` hands
such *contested* jobs back to the broker instead of taking them in.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ...ucp.messages import JobStatus, JobStatusEntry, SyncedJob
from .job_records import ForeignJob, JobRecord

__all__ = ["JobBook", "Readiness", "Verdict"]


class Readiness(enum.Enum):
    """What a queued job's ``after`` jobs allow."""

    READY = "ready"
    """Every ``after`` job is done: it may be dispatched."""
    WAIT = "wait"
    """Some ``after`` job is not final yet (or not known yet)."""
    REJECT = "reject"
    """An ``after`` job failed or was rejected: it never runs."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of :meth:`JobBook.verdict`."""

    readiness: Readiness
    """Whether the job may run."""
    reason: str = ""
    """Why it waits or is rejected (one line)."""


_READY = Verdict(Readiness.READY)


class JobBook:
    """Jobs the broker owns and jobs it heard of (see the module docstring)."""

    def __init__(self) -> None:
        self._own: dict[uuid.UUID, JobRecord] = {}
        self._foreign: dict[uuid.UUID, ForeignJob] = {}
        self._dependents: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._queued: set[uuid.UUID] = set()
        self._changed: dict[uuid.UUID, int] = {}
        self._change = 0
        self._next_sequence = 1

    # -- own jobs -----------------------------------------------------------------------------

    def get(self, job_id: uuid.UUID) -> JobRecord | None:
        """This broker's record of ``job_id``."""
        return self._own.get(job_id)

    def put(self, record: JobRecord) -> None:
        """Add or replace a record (already written to the journal)."""
        job_id = record.job_id
        if job_id not in self._own:
            for dependency in record.job.after:
                self._dependents.setdefault(dependency, set()).add(job_id)
        self._own[job_id] = record
        if record.state == JobStatus.QUEUED:
            self._queued.add(job_id)
        else:
            self._queued.discard(job_id)
        self._foreign.pop(job_id, None)
        self._next_sequence = max(self._next_sequence, record.sequence + 1)
        self._change += 1
        self._changed[job_id] = self._change

    def next_sequence(self) -> int:
        """The acceptance number for the next new job."""
        return self._next_sequence

    def records(self) -> list[JobRecord]:
        """Every own record, oldest first."""
        return sorted(self._own.values(), key=lambda r: r.sequence)

    def queued(self) -> list[JobRecord]:
        """Own jobs in state QUEUED, oldest first."""
        return sorted((self._own[j] for j in self._queued), key=lambda r: r.sequence)

    def undelivered(self) -> list[JobRecord]:
        """Own jobs with a result that was not handed on yet (after a crash)."""
        return [r for r in self.records() if r.result is not None and not r.result_delivered]

    def dependents(self, job_id: uuid.UUID) -> list[JobRecord]:
        """Own queued jobs waiting for ``job_id``."""
        found = (self._own.get(j) for j in self._dependents.get(job_id, ()))
        return sorted(
            (r for r in found if r is not None and r.state == JobStatus.QUEUED),
            key=lambda r: r.sequence,
        )

    def verdict(self, record: JobRecord) -> Verdict:
        """May ``record`` run yet, as far as its ``after`` jobs go?"""
        waiting: str | None = None
        for dependency in record.job.after:
            state = self.state_of(dependency)
            if state == JobStatus.DONE:
                continue
            if state == JobStatus.FAILED:
                return Verdict(Readiness.REJECT, f"job {dependency} it runs after failed")
            if state == JobStatus.REJECTED:
                return Verdict(Readiness.REJECT, f"job {dependency} it runs after was rejected")
            if state == JobStatus.CANCELLED:
                return Verdict(Readiness.REJECT, f"job {dependency} it runs after was cancelled")
            if waiting is None:
                waiting = (
                    f"waiting for job {dependency} (not known here yet)"
                    if state is None
                    else f"waiting for job {dependency}"
                )
        return _READY if waiting is None else Verdict(Readiness.WAIT, waiting)

    def state_of(self, job_id: uuid.UUID) -> JobStatus | int | None:
        """The state of a job, own or foreign; ``None`` if unknown."""
        record = self._own.get(job_id)
        if record is not None:
            return record.state
        foreign = self._foreign.get(job_id)
        return None if foreign is None else foreign.status.state

    def drop(self, job_id: uuid.UUID) -> JobRecord | None:
        """Stop owning ``job_id`` (another broker keeps it); returns the record it had."""
        record = self._own.pop(job_id, None)
        self._queued.discard(job_id)
        self._changed.pop(job_id, None)
        return record

    # -- other brokers' jobs ------------------------------------------------------------------

    def merge_foreign(
        self, broker: str, jobs: Iterable[SyncedJob]
    ) -> tuple[list[uuid.UUID], list[SyncedJob]]:
        """Take in jobs from ``broker``'s sync (a newer entry replaces an older one). Returns
        the jobs that became final here, whose dependents may move, and the *contested* ones:
        jobs this broker owns too, left alone here for the broker to settle."""
        became_final: list[uuid.UUID] = []
        contested: list[SyncedJob] = []
        for synced in jobs:
            job_id = synced.status.job_id
            if job_id in self._own:
                contested.append(synced)
                continue
            if self.take_foreign(broker, synced):
                became_final.append(job_id)
        return became_final, contested

    def take_foreign(self, broker: str, synced: SyncedJob) -> bool:
        """Note one job of ``broker``'s sync (unless an entry heard before is newer); whether it
        became final here."""
        status = synced.status
        job_id = status.job_id
        known = self._foreign.get(job_id)
        if known is not None and known.status.updated_at > status.updated_at:
            return False
        inline = synced.inline_data
        if not inline and known is not None and synced.job is not None:
            inline = known.inline_data  # an entry without it keeps what came before
        entry = ForeignJob(
            broker=broker,
            status=status,
            job=synced.job,
            inline_data=inline,
            taken_from=synced.taken_from,
        )
        self._foreign[job_id] = entry
        return entry.final and (known is None or not known.final)

    def foreign(self, job_id: uuid.UUID) -> ForeignJob | None:
        """What another broker said about ``job_id``."""
        return self._foreign.get(job_id)

    def foreign_jobs(self) -> list[ForeignJob]:
        """Every job known from other brokers, in no particular order."""
        return list(self._foreign.values())

    # -- reporting ----------------------------------------------------------------------------

    def entries(
        self, job_ids: Iterable[uuid.UUID] = (), *, client: str | None = None
    ) -> tuple[JobStatusEntry, ...]:
        """Status entries: of ``job_ids`` (those known), else of every job (of ``client``)."""
        wanted = list(dict.fromkeys(job_ids))
        if wanted:
            found: list[JobStatusEntry] = []
            for job_id in wanted:
                record = self._own.get(job_id)
                if record is not None:
                    found.append(record.status_entry())
                elif job_id in self._foreign:
                    found.append(self._foreign[job_id].status)
            return tuple(found)
        entries = [r.status_entry() for r in self.records()]
        entries.extend(f.status for f in self._foreign.values())
        if client is not None:
            entries = [e for e in entries if e.client == client]
        return tuple(entries)

    @property
    def change_mark(self) -> int:
        """The number of the latest change (for :meth:`changed_since`)."""
        return self._change

    def changed_since(self, mark: int) -> list[JobRecord]:
        """Own records changed after ``mark``, oldest first."""
        changed = (self._own[j] for j, change in self._changed.items() if change > mark)
        return sorted(changed, key=lambda r: r.sequence)

    def counts(self) -> Counter[JobStatus | int]:
        """Own jobs per state."""
        return Counter(r.state for r in self._own.values())

    @property
    def foreign_count(self) -> int:
        """Jobs known from other brokers."""
        return len(self._foreign)

    def __len__(self) -> int:
        return len(self._own)
