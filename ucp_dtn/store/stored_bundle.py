"""What the store knows about a bundle besides its bytes, and what it reports about itself.

The agent decodes a bundle once, at the edge, and hands the store the raw bytes together with a
:class:`StoredBundle` describing them. The store never parses bundle bytes: it only keeps them and
answers questions about the metadata ("what waits for ``dtn://shelter-3/``?", "what has expired?",
"whose custody retransmission timer is due?"). Metadata changes go through
:func:`dataclasses.replace` and :meth:`BundleStore.update`; the bytes never change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BundleState", "StoredBundle", "StoreStatistics"]

_EMPTY_EXTRA: Mapping[str, str] = MappingProxyType({})


class BundleState(enum.IntEnum):
    """Why the agent still keeps a bundle. Stored as an integer: never renumber a member.

    Typical life: received → ``PENDING_FORWARD`` (or ``PENDING_DELIVERY`` when the destination is a
    local endpoint) → sent → deleted; or, when this node is custodian, sent → ``CUSTODY_WAIT``
    until a custody signal releases it (delete) or its retry timer fires (back to
    ``PENDING_FORWARD``).
    """

    PENDING_FORWARD = 1
    """Waiting to be sent to a next hop towards a remote destination."""
    PENDING_DELIVERY = 2
    """The destination is an endpoint of this node; waiting for the application to take it."""
    CUSTODY_WAIT = 3
    """Sent while we are custodian; kept until the next custodian accepts custody
    (draft-ietf-dtn-bibect) or ``next_retry_at`` passes and it is sent again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBundle:
    """Metadata of one stored bundle, as given by the agent (the store does not parse bundles)."""

    key: str
    """Stable text form of the bundle ID (source, creation timestamp, sequence number, fragment
    offset/length); unique in a store. Chosen by the agent."""
    destination: str
    """Destination EID as text, e.g. ``"dtn://shelter-3/ucp/broker"`` or ``"ipn:5.1"``."""
    source: str
    """Source node EID as text."""
    size: int
    """Length of the raw bundle bytes; must equal ``len(raw)`` on :meth:`BundleStore.put`.
    Never changes."""
    received_at: float
    """When this node accepted the bundle (unix seconds)."""
    expires_at: float
    """Creation time + lifetime (unix seconds); at or after this instant the bundle is expired."""
    state: BundleState = BundleState.PENDING_FORWARD
    """Why the bundle is still kept."""
    custody: bool = False
    """Whether this node is the bundle's custodian (it must not drop the bundle until relieved)."""
    next_retry_at: float | None = None
    """When to retransmit a custodial bundle if no custody signal came (unix seconds); ``None``
    when no retransmission is scheduled."""
    attempts: int = 0
    """How many times the agent has tried to forward or deliver the bundle."""
    forwarded_to: frozenset[str] = frozenset()
    """Node IDs this copy has already been sent to (routing uses it to avoid echoing)."""
    extra: Mapping[str, str] = field(default_factory=lambda: _EMPTY_EXTRA, hash=False)
    """Free-form annotations of the agent (e.g. previous node, report-to). Stored as given;
    read-only once the record is built."""

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("StoredBundle.key must not be empty")
        if self.size < 0:
            raise ValueError(f"StoredBundle.size must be >= 0, got {self.size}")
        if self.attempts < 0:
            raise ValueError(f"StoredBundle.attempts must be >= 0, got {self.attempts}")
        if not isinstance(self.forwarded_to, frozenset):
            object.__setattr__(self, "forwarded_to", frozenset(self.forwarded_to))
        if not isinstance(self.extra, MappingProxyType):
            extra = dict(self.extra)
            object.__setattr__(self, "extra", MappingProxyType(extra) if extra else _EMPTY_EXTRA)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    """A snapshot of a store's contents and counters (see :meth:`BundleStore.statistics`)."""

    bundles: int
    """Number of bundles stored (durably, for a persistent store)."""
    bytes: int
    """Sum of the stored bundles' sizes."""
    reserved_bytes: int
    """Bytes promised to reservations and to puts still in progress."""
    quota_bytes: int
    """Most bytes the store accepts (``bytes + reserved_bytes`` never exceeds it)."""
    quota_bundles: int | None
    """Most bundles the store accepts, or ``None`` for no count limit."""
    by_state: Mapping[BundleState, int]
    """Number of stored bundles in each state (every state present, possibly 0)."""
    puts: int
    """Bundles stored since the store was opened."""
    duplicates: int
    """Puts that found the key already stored (nothing written)."""
    updates: int
    """Metadata updates since the store was opened."""
    deletes: int
    """Bundles deleted since the store was opened."""
    refused: int
    """Puts and reservations refused with :class:`StoreFullError` since the store was opened."""
    commits: int
    """Durable transactions committed since open (one per group of concurrent operations);
    0 for a memory store."""

    @property
    def free_bytes(self) -> int:
        """Bytes that can still be reserved or put."""
        return max(0, self.quota_bytes - self.bytes - self.reserved_bytes)
