"""The messages between nodes and brokers: heartbeats, status queries and replies, and the
brokers' sync (``heartbeat``, ``status-query``, ``status-reply``, ``broker-sync``). The wire format
and the catalogue of every kind are in :mod:`ucp_dtn.ucp.messages`, which re-exports these
classes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, ClassVar

from ucp_dtn.wire_schema import Wire

from .capabilities import Capabilities
from .message_base import (
    DataEntry,
    JobStatus,
    JobStatusEntry,
    NodeEntry,
    Role,
    SyncedJob,
    UcpMessage,
)

__all__ = [
    "BrokerSync",
    "Heartbeat",
    "StatusQuery",
    "StatusReply",
]

# -- nodes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat(UcpMessage):
    """A node is alive (``heartbeat``): its roles, resources and work."""

    _EIDS = ("node", "broker")

    KIND: ClassVar[str] = "heartbeat"
    node: str
    """The node ID (EID)."""
    roles: Role
    """The roles the node runs now (a node may add the broker role by promotion)."""
    sequence: int
    """Increases with every heartbeat of this node; older ones are stale."""
    sent_at: float
    """When it was sent (the node's clock)."""
    interval: float
    """Seconds until the next one; a receiver may forget the node after a few missed."""
    capabilities: Capabilities | None = None
    """Its resources (executors)."""
    running_jobs: Annotated[tuple[uuid.UUID, ...], Wire(key="running")] = ()
    """Jobs it runs now."""
    max_jobs: int = 0
    """Jobs it runs at most at once (0: not an executor)."""
    broker: str | None = None
    """The broker it is attached to (EID), if any."""
    store_free: int | None = None
    """Free bytes of its datastore (datastores)."""
    store_used: int | None = None
    """Bytes its datastore holds (datastores)."""
    started: tuple[uuid.UUID, ...] = ()
    """Executors: the jobs of :attr:`running_jobs` that hold a slot (have started). A broker
    marks a job it dispatched here RUNNING when it is listed, so an executor need not send a
    ``job-state`` for a short job (:mod:`ucp_dtn.roles.executor`)."""

    @property
    def load(self) -> float:
        """Fraction of its job slots in use (0 when it has none)."""
        return len(self.running_jobs) / self.max_jobs if self.max_jobs else 0.0


# -- status and brokers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusQuery(UcpMessage):
    """Ask a broker about jobs and nodes (``status-query``)."""

    _EIDS = ("client", "reply_to")
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "status-query"
    request_id: int
    """The requester's id, echoed in the reply."""
    job_ids: tuple[uuid.UUID, ...] = ()
    """These jobs; empty: every job (of :attr:`client`, if given)."""
    client: str | None = None
    """Only jobs submitted by this EID."""
    include_nodes: Annotated[bool, Wire(key="nodes")] = False
    """Also list the nodes the broker knows."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""
    states: tuple[JobStatus | int, ...] = ()
    """Only jobs in one of these states; empty: in any state."""
    limit: int = 0
    """At most this many jobs, the most recently changed first; 0: all of them."""


@dataclass(frozen=True, slots=True)
class StatusReply(UcpMessage):
    """A broker's answer to ``status-query`` (``status-reply``)."""

    _EIDS = ("broker",)

    KIND: ClassVar[str] = "status-reply"
    request_id: int
    """The ``request_id`` of the ``status-query`` this answers."""
    broker: str
    """The answering broker (EID)."""
    jobs: Annotated[tuple[JobStatusEntry, ...], Wire(always=True)] = ()
    """The jobs asked for that it knows."""
    nodes: Annotated[tuple[NodeEntry, ...], Wire(always=True)] = ()
    """The nodes it knows, if asked."""
    more: int = 0
    """Jobs that matched the query but were left out by its ``limit``."""


@dataclass(frozen=True, slots=True)
class BrokerSync(UcpMessage):
    """One broker's job and data metadata for another (``broker-sync``), so that either can
    answer for both and take over the other's jobs."""

    _EIDS = ("broker",)

    KIND: ClassVar[str] = "broker-sync"
    broker: str
    """The sending broker (EID)."""
    sequence: int
    """Increases with every sync of this broker; older ones are stale."""
    sent_at: float
    """When it was sent (the broker's clock)."""
    full: Annotated[bool, Wire(always=True)] = False
    """Everything it knows (else only what changed since the previous sync)."""
    jobs: Annotated[tuple[SyncedJob, ...], Wire(always=True)] = ()
    """Jobs the sending broker owns: every non-final one with its JobInfo (so another broker
    can take it over), final ones without."""
    data: Annotated[tuple[DataEntry, ...], Wire(always=True)] = ()
    """Named data and where it is held."""
