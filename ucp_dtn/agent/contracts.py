"""What the parts of the agent need from each other: small protocols instead of the whole core.

Theory of operation
-------------------
:class:`~ucp_dtn.agent.core.AgentCore` holds the agent's shared state and steps; reception,
custody, status reports, the janitor and the sessions (:mod:`.neighbours`) each work on part of
it. Each of them declares here, as a :class:`typing.Protocol`, exactly what it uses — and
imports only this module, never the core or each other. The core satisfies the protocols
structurally; :class:`~ucp_dtn.agent.node.BundleNode` wires the parts together. So:

* the agent's modules import each other without cycles (``tests/ucp_dtn/test_import_graph.py``
  checks it, counting type-only imports too), and
* a part's whole dependency on the rest is written down in one place, where a reader (or a
  test's fake) sees it; no part reaches into another's private state.

The protocols, from small to large: :class:`Originator` (creates bundles of its own: status
reports, custody signals), :class:`CustodyHost`, :class:`ReceptionHost`, :class:`JanitorHost`
and :class:`ForwardingHost`. :class:`Custodian` is what the others need from custody,
:class:`BundleIntake` and :class:`TransferIntake` what custody and the sessions need from
reception, :class:`ReceptionOutcome` what reception tells them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from bpv7 import Bundle, BundleID, CreationTimestamp, EndpointID
from bpv7.admin import BibePdu, CustodySignal, StatusKind, StatusReportReason
from bpv7.fragment import FragmentCollector
from convergence.tcpcl.link import IncomingBundleTransfer
from ucp_dtn.store import BundleStore, Reservation, StoredBundle, StoreError

from .config import NodeConfig
from .forwarding import ForwardQueue, RawCache
from .roles import RoleDirectory
from .route_exchange import RouteExchange
from .routing import RoutingTable
from .security import SecurityPolicy
from .statistics import Counters

__all__ = [
    "Admission",
    "BundleIntake",
    "Custodian",
    "CustodyHost",
    "ForwardingHost",
    "JanitorHost",
    "Originator",
    "ReceptionHost",
    "ReceptionOutcome",
    "Reporter",
    "TransferIntake",
]


class ReceptionOutcome(enum.Enum):
    """What became of a received bundle (and how to answer its transfer)."""

    ACCEPTED = "accepted"
    """Stored (or handled, for bundles consumed by the agent itself): acknowledge."""
    DUPLICATE = "duplicate"
    """Already held or recently handled: acknowledge, keep nothing."""
    DROPPED = "dropped"
    """Deleted on reception (hop limit, lifetime, unsupported block): acknowledge."""
    NO_RESOURCES = "no resources"
    """The store is full: refuse, the sender keeps it."""
    INVALID = "invalid"
    """Not a valid bundle: refuse as not acceptable."""


@dataclass(frozen=True, slots=True)
class Admission:
    """One bundle for :meth:`ReceptionHost.admit_many`."""

    bundle: Bundle
    """The decoded bundle."""
    raw: bytes
    """Its bytes, as they are to be stored."""
    previous: EndpointID | None
    """The neighbour it came from."""
    custody: bool = False
    """This node takes custody of it."""
    reservation: Reservation | None = None
    """Quota held for it (used up either way)."""
    key: str | None = None
    """Its store key (:func:`~ucp_dtn.agent.bundle_records.bundle_key`) when already computed
    (the reception-time edits keep the bundle ID); ``None``: computed from the bundle."""


class BundleIntake(Protocol):
    """Reception as custody sees it: the entry for bundles decapsulated from BIBE PDUs."""

    async def receive_bundle(
        self,
        bundle: Bundle,
        raw: bytes,
        previous: EndpointID | None,
        *,
        custody: bool = False,
        reservation: Reservation | None = None,
    ) -> ReceptionOutcome:
        """Apply RFC 9171 §5.6 to ``bundle`` (bytes ``raw``) received from ``previous``."""
        ...


class TransferIntake(Protocol):
    """Reception as the sessions see it: where complete incoming transfers go."""

    async def on_transfers(
        self, transfers: Sequence[IncomingBundleTransfer], peer: EndpointID
    ) -> None:
        """Process incoming transfers from neighbour ``peer`` and answer each."""
        ...


class Custodian(Protocol):
    """Custody transfer (:class:`~ucp_dtn.agent.custody.CustodyManager`) as the other parts
    use it."""

    def forget(self, key: str) -> None:
        """Bundle ``key`` left the store."""
        ...

    async def on_signal(self, bundle: Bundle, signal: CustodySignal) -> None:
        """A custody signal for this node arrived in ``bundle``."""
        ...

    async def on_bpdu(
        self, outer: Bundle, pdu: BibePdu, previous: EndpointID | None, intake: BundleIntake
    ) -> None:
        """A BIBE PDU for this node arrived in ``outer`` from ``previous``."""
        ...

    async def on_retry_due(self, meta: StoredBundle) -> None:
        """The retry time of a stored bundle passed."""
        ...

    def encapsulate(self, key: str, meta: StoredBundle, raw: bytes, peer: EndpointID) -> bytes:
        """The BPDU carrying custodial bundle ``key`` to ``peer``."""
        ...

    async def sent(self, key: str, meta: StoredBundle, peer: EndpointID) -> None:
        """``peer`` acknowledged the BPDU of ``key``."""
        ...


class Reporter(Protocol):
    """Status reports (:class:`~ucp_dtn.agent.reports.StatusReporter`)."""

    async def report(
        self,
        subject: Bundle,
        kind: StatusKind,
        reason: int = StatusReportReason.NO_ADDITIONAL_INFORMATION,
        *,
        force: bool = False,
    ) -> bool:
        """Send a ``kind`` report about ``subject`` if it asked for one (or ``force``)."""
        ...


class Originator(Protocol):
    """What a part that creates bundles of its own needs (status reports, custody signals)."""

    @property
    def node_id(self) -> EndpointID:
        """This node's ID (the source of what it creates)."""
        ...

    @property
    def counters(self) -> Counters:
        """The node's live counters."""
        ...

    def now(self) -> float:
        """The current time (unix seconds)."""
        ...

    def new_creation(self) -> CreationTimestamp:
        """A creation timestamp no other bundle of this node has."""
        ...

    async def admit(
        self,
        bundle: Bundle,
        raw: bytes,
        *,
        previous: EndpointID | None,
        custody: bool = False,
        reservation: Reservation | None = None,
    ) -> bool:
        """Store ``bundle`` durably and dispatch it; ``False`` if it was a duplicate."""
        ...


class _Deleting(Protocol):
    async def delete(
        self,
        key: str,
        reason: int,
        *,
        meta: StoredBundle | None = None,
        bundle: Bundle | None = None,
    ) -> bool:
        """Delete stored bundle ``key`` for ``reason`` (RFC 9171 §5.10, with a report)."""
        ...


class CustodyHost(Originator, _Deleting, Protocol):
    """What custody transfer needs (:mod:`.custody`)."""

    @property
    def config(self) -> NodeConfig:
        """The node's configuration (custody timers)."""
        ...

    @property
    def store(self) -> BundleStore:
        """The bundle store."""
        ...

    @property
    def queue(self) -> ForwardQueue:
        """The forwarding queue."""
        ...

    async def is_duplicate(self, key: str, bundle: Bundle) -> bool:
        """Whether bundle ``key`` is held or was recently handled (or its whole original)."""
        ...

    def dispatch(self, meta: StoredBundle) -> None:
        """Queue a stored bundle for delivery or forwarding."""
        ...

    def forget(self, key: str) -> None:
        """Bundle ``key`` left the store: drop it from every in-memory view."""
        ...

    async def settled(self, keys: Sequence[str]) -> list[bool]:
        """Remove bundles whose fate is settled (released by a custody signal); per key,
        whether it was stored."""
        ...

    def wake_janitor(self) -> None:
        """A deadline nearer than the janitor's next round appeared."""
        ...


class ReceptionHost(Originator, Protocol):
    """What reception needs (:mod:`.reception`)."""

    @property
    def custody(self) -> Custodian | None:
        """Custody transfer, when on."""
        ...

    @property
    def reporter(self) -> Reporter:
        """Status reports."""
        ...

    @property
    def routing(self) -> RoutingTable:
        """The routing table (route advertisements feed it)."""
        ...

    @property
    def roles(self) -> RoleDirectory:
        """The role directory (route advertisements feed it)."""
        ...

    @property
    def route_exchange(self) -> RouteExchange:
        """Where each neighbour's advertisement stream stands."""
        ...

    @property
    def security(self) -> SecurityPolicy | None:
        """The BPSec policy (RFC 9172 §5), if any."""
        ...

    def is_local(self, eid: EndpointID) -> bool:
        """Whether ``eid`` is an endpoint of this node."""
        ...

    async def is_duplicate(self, key: str, bundle: Bundle) -> bool:
        """Whether bundle ``key`` is held or was recently handled (or its whole original)."""
        ...

    async def discard(self, bundle: Bundle, reason: int) -> None:
        """Drop a bundle that was never stored (counted, reported as deleted)."""
        ...

    def routes_updated(self) -> None:
        """The routing table changed: re-route waiting bundles, advertise."""
        ...

    def routes_changed(self) -> None:
        """Wake the advertisement of every session (nothing to re-route)."""
        ...

    async def admit_many(self, admissions: Sequence[Admission]) -> list[bool | StoreError]:
        """Store several bundles together and dispatch them: per bundle ``True``, ``False``
        (a duplicate) or the store's error."""
        ...


class JanitorHost(_Deleting, Protocol):
    """What the janitor needs (:mod:`.janitor`)."""

    @property
    def config(self) -> NodeConfig:
        """The node's configuration (the janitor's interval)."""
        ...

    @property
    def store(self) -> BundleStore:
        """The bundle store (expiry and retry deadlines)."""
        ...

    @property
    def custody(self) -> Custodian | None:
        """Custody transfer, when on."""
        ...

    @property
    def routing(self) -> RoutingTable:
        """The routing table (learned routes lapse)."""
        ...

    @property
    def roles(self) -> RoleDirectory:
        """The role directory (learned roles lapse)."""
        ...

    @property
    def fragments(self) -> FragmentCollector:
        """Partially reassembled ADUs (they lapse)."""
        ...

    def now(self) -> float:
        """The current time (unix seconds)."""
        ...

    def forget_partial(self, original: BundleID) -> None:
        """The collector dropped the partial ADU ``original``."""
        ...

    def new_janitor_round(self) -> trio.Event:
        """A fresh event for the next round, set when a nearer deadline appears."""
        ...

    def routes_updated(self) -> None:
        """The routing table changed: re-route waiting bundles, advertise."""
        ...


class ForwardingHost(_Deleting, Protocol):
    """What the sessions with neighbours need (:mod:`.neighbours`): the forwarding side."""

    @property
    def node_id(self) -> EndpointID:
        """This node's ID."""
        ...

    @property
    def config(self) -> NodeConfig:
        """The node's configuration."""
        ...

    @property
    def counters(self) -> Counters:
        """The node's live counters."""
        ...

    @property
    def store(self) -> BundleStore:
        """The bundle store."""
        ...

    @property
    def cache(self) -> RawCache:
        """Bytes of recently stored bundles."""
        ...

    @property
    def queue(self) -> ForwardQueue:
        """The forwarding queue."""
        ...

    @property
    def routing(self) -> RoutingTable:
        """The routing table."""
        ...

    @property
    def roles(self) -> RoleDirectory:
        """The role directory (advertised with the routes)."""
        ...

    @property
    def custody(self) -> Custodian | None:
        """Custody transfer, when on."""
        ...

    @property
    def route_exchange(self) -> RouteExchange:
        """Where each neighbour's advertisement stream stands."""
        ...

    def now(self) -> float:
        """The current time (unix seconds)."""
        ...

    def new_creation(self) -> CreationTimestamp:
        """A creation timestamp no other bundle of this node has."""
        ...

    async def load(self, key: str) -> bytes | None:
        """The stored bytes of ``key``."""
        ...

    async def load_bundle(self, key: str) -> Bundle | None:
        """The stored bundle ``key``, decoded."""
        ...

    def dispatch(self, meta: StoredBundle) -> None:
        """Queue a stored bundle for delivery or forwarding."""
        ...

    async def requeue(self, key: str, *, front: bool = False) -> None:
        """Put a bundle taken for sending back into the forwarding queue, if still due."""
        ...

    def forget(self, key: str) -> None:
        """Bundle ``key`` left the store: drop it from every in-memory view."""
        ...

    async def forwarded(self, key: str, meta: StoredBundle, peer: EndpointID) -> None:
        """``peer`` acknowledged bundle ``key``."""
        ...

    async def forwarded_many(
        self, done: Sequence[tuple[str, StoredBundle]], peer: EndpointID
    ) -> None:
        """``peer`` acknowledged these bundles."""
        ...

    def wake_janitor(self) -> None:
        """A deadline nearer than the janitor's next round appeared."""
        ...
