"""Plain documents (maps of text, numbers, lists) describing jobs, results and data: what the
client operations hand the ``ucp`` command, which prints them as tables or, with ``--json``, as
they are (their shapes are documented in ``docs/client.md``).

Messages from the network name jobs by UUID ("job 3d84987e-... it runs after failed"); a job of
this client is named the way ``ucp`` names it, ``name (short id)`` (:class:`JobNames`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ..ucp import DataFreeSpaceReply, JobStatus, JobStatusEntry, NodeEntry, ResultStatus, Role
from .collect import Collected, result_summary
from .data import DataPage, ReplicaEntry
from .jobs import CancelOutcome, SubmitReport
from .journal import JobEntry

__all__ = [
    "JobNames",
    "cancel_document",
    "collected_document",
    "entry_state",
    "foreign_document",
    "job_document",
    "listing_document",
    "node_document",
    "replicas_document",
    "space_document",
    "submit_document",
]

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


class JobNames:
    """The labels (``name (short id)``) of this client's jobs, to put into messages instead of
    their UUIDs."""

    def __init__(self, entries: Iterable[JobEntry]) -> None:
        self._labels = {str(entry.job_id): entry.label for entry in entries}

    def label(self, job_id: uuid.UUID | str) -> str:
        """The job's label, or its UUID if it is not one of this client's."""
        text = str(job_id)
        return self._labels.get(text, text)

    def humanize(self, text: str) -> str:
        """``text`` with the UUIDs of this client's jobs replaced by their labels (a job's
        label in quotes: ``job 'first (ec60f0e3)' it runs after failed``)."""
        return _UUID.sub(lambda m: _quoted(self._labels.get(m.group(0)), m.group(0)), text)


def _quoted(label: str | None, fallback: str) -> str:
    return fallback if label is None else f"'{label}'"


def _state_name(state: JobStatus | int) -> str:
    return state.name.lower() if isinstance(state, JobStatus) else f"state {state}"


def entry_state(entry: JobEntry) -> str:
    """One word for where a job stands in the journal."""
    if entry.result is not None:
        return "done" if entry.result.ok else "failed"
    if entry.state is not None:
        return _state_name(entry.state)
    if entry.accepted_by is not None:
        return "accepted"
    return "sent" if entry.broker is not None else "outbox"


def _detail(entry: JobEntry, names: JobNames) -> str:
    result = entry.result
    if result is not None and not result.ok:
        status = (
            result.status.name.lower().replace("_", " ")
            if isinstance(result.status, ResultStatus)
            else str(result.status)
        )
        text = result.message or status
        if result.exit_code is not None:
            text += f" (exit code {result.exit_code})"
        return names.humanize(text)
    if entry.state is None and entry.broker is None:
        return "queued in the client's outbox: no broker known yet"
    if entry.state is None and entry.accepted_by is None:
        return f"waiting for {entry.broker}"
    return names.humanize(entry.detail)


def _tail(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def job_document(entry: JobEntry, names: JobNames) -> dict[str, Any]:
    """A job of this client: name, UUID, plan, state and its detail, where it went, its
    result."""
    result = entry.result
    return {
        "name": entry.name,
        "job_id": str(entry.job_id),
        "short_id": entry.short_id,
        "label": entry.label,
        "plan": entry.plan,
        "state": entry_state(entry),
        "state_code": None if entry.state is None else int(entry.state),
        "detail": _detail(entry, names),
        "summary": names.humanize(result_summary(entry)),
        "updated_at": entry.state_at,
        "submitted_at": entry.submitted_at,
        "broker": entry.broker,
        "accepted_by": entry.accepted_by,
        "moved_at": entry.moved_at,
        "warning": entry.warning,
        "executor": entry.executor,
        "result": None
        if result is None
        else {
            "ok": result.ok,
            "status": int(result.status),
            "exit_code": result.exit_code,
            "message": names.humanize(result.message),
            "published": list(result.published),
            "from": entry.result_from,
        },
        "collected_to": entry.collected_to,
    }


def foreign_document(status: JobStatusEntry, names: JobNames) -> dict[str, Any]:
    """A job the broker knows that is not in this client's journal (another client's, or one
    submitted from another home)."""
    return {
        "name": status.name or "?",
        "job_id": str(status.job_id),
        "short_id": str(status.job_id)[:8],
        "label": f"{status.name or '?'} ({str(status.job_id)[:8]})",
        "plan": None,
        "state": _state_name(status.state),
        "state_code": int(status.state),
        "detail": names.humanize(status.detail),
        "summary": names.humanize(status.detail) or _state_name(status.state),
        "updated_at": status.updated_at,
        "submitted_at": None,
        "broker": None,
        "accepted_by": None,
        "warning": "",
        "executor": status.executor,
        "client": status.client,
        "result": None,
        "collected_to": None,
    }


def node_document(node: NodeEntry) -> dict[str, Any]:
    """A node the broker knows."""
    return {
        "node": node.node,
        "roles": [role.name.lower() for role in Role if role in node.roles and role.name],
        "last_seen": node.last_seen,
        "running_jobs": node.running_jobs,
        "max_jobs": node.max_jobs,
        "memory": None if node.capabilities is None else node.capabilities.memory,
    }


def submit_document(report: SubmitReport, plan: str, home: str) -> dict[str, Any]:
    """What a submission did."""
    return {
        "plan": plan,
        "home": home,
        "outcome": report.outcome.value,
        "broker": report.broker,
        "uploads": report.uploads,
        "uploads_confirmed": report.uploads_confirmed,
        "jobs": [
            {
                "name": job.name,
                "job_id": str(job.job_id),
                "short_id": str(job.job_id)[:8],
                "accepted": job.accepted,
                "rejected": job.rejected,
                "warning": job.warning,
            }
            for job in report.jobs
        ],
    }


def collected_document(item: Collected, names: JobNames) -> dict[str, Any]:
    """A job as ``collect`` found it: the job, what was unpacked where, the ends of its
    output."""
    document = job_document(item.entry, names)
    result = item.entry.result
    document.update(
        {
            "collect": item.state.value,
            "directory": None if item.directory is None else str(item.directory),
            "files": list(item.files),
            "skipped": list(item.skipped),
            "stdout_tail": None if result is None else _tail(result.stdout_tail),
            "stderr_tail": None if result is None else _tail(result.stderr_tail),
        }
    )
    return document


def cancel_document(outcomes: Sequence[CancelOutcome], names: JobNames) -> dict[str, Any]:
    """What a cancel did to each job."""
    jobs = []
    for outcome in outcomes:
        document = job_document(outcome.entry, names)
        document["cancelled"] = outcome.cancelled
        document["known"] = outcome.known
        jobs.append(document)
    return {"jobs": jobs}


def listing_document(page: DataPage) -> dict[str, Any]:
    """A page of a data listing."""
    return {
        "entries": [
            {
                "name": e.name,
                "size": e.size,
                "written_at": e.written_at,
                "job_id": None if e.job_id is None else str(e.job_id),
                "holder": e.holder,
            }
            for e in page.entries
        ],
        "next_page": page.next_page,
        "datastores": page.datastores,
    }


def replicas_document(entries: Sequence[ReplicaEntry], datastores: int) -> dict[str, Any]:
    """Where each datum lives (``ucp data ls --replicas``), and how many datastores answered."""
    return {
        "entries": [
            {
                "name": e.name,
                "size": e.size,
                "written_at": e.written_at,
                "replicas": e.replicas,
                "holders": list(e.holders),
                "stale": list(e.stale),
                "meets_factor": e.meets_factor,
            }
            for e in entries
        ],
        "datastores": datastores,
    }


def space_document(replies: Sequence[DataFreeSpaceReply]) -> dict[str, Any]:
    """Every datastore's room."""
    return {
        "datastores": [
            {
                "node": reply.node,
                "free": reply.free,
                "used": reply.used,
                "items": reply.items,
                "quota": reply.quota,
            }
            for reply in replies
        ]
    }
