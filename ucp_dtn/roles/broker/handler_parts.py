"""What the broker's message handlers share: its job book, registry, scheduler and callbacks.

:class:`~.executor_reports.ExecutorReports` and :class:`~.client_requests.ClientRequests` act
on the same broker state through the same callbacks; the broker builds one
:class:`HandlerParts` and gives it to both instead of a long argument list to each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..mailbox import Incoming
from ..settings import RoleSettings
from .job_records import JobRecord
from .jobs import JobBook
from .outputs import JobOutputs
from .registry import NodeRegistry
from .relay import SendMessage
from .scheduling import JobScheduler

__all__ = ["HandlerParts"]


@dataclass(frozen=True, slots=True)
class HandlerParts:
    """The broker state and callbacks its message handlers act through (the broker's lock is
    held while they run)."""

    settings: RoleSettings
    """The broker's settings."""
    jobs: JobBook
    """Every job this broker knows."""
    registry: NodeRegistry
    """Executors, datastores and brokers known from heartbeats."""
    outputs: JobOutputs
    """Jobs' output so far (``ucp logs``)."""
    scheduler: JobScheduler
    """Dispatches queued jobs."""
    send: SendMessage
    """Sends a UCP message (in a handling round: with the round's others)."""
    save: Callable[[JobRecord], Awaitable[None]]
    """Journals a job record."""
    announce: Callable[[JobRecord], Awaitable[None]]
    """Tells a job's result address about its state."""
    ignore: Callable[[Incoming, str], None]
    """Counts and logs a message the broker does not act on."""
    next_request_id: Callable[[], int]
    """A fresh request ID of the broker's mailbox."""
    clock: Callable[[], float]
    """The broker's clock."""
    counts: dict[str, int]
    """The broker's counters."""
