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

__all__ = ["HandlerParts", "PartsHandler"]


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


class PartsHandler:
    """Base of the broker's message handlers: the :class:`HandlerParts` they act through, as
    attributes of their own (``settings``, ``_jobs``, ``_send``...)."""

    def __init__(self, parts: HandlerParts) -> None:
        self.settings = parts.settings
        self._jobs = parts.jobs
        self._registry = parts.registry
        self._outputs = parts.outputs
        self._scheduler = parts.scheduler
        self._send = parts.send
        self._save = parts.save
        self._announce = parts.announce
        self._ignore = parts.ignore
        self._next_request_id = parts.next_request_id
        self._clock = parts.clock
        self._counts = parts.counts
