"""What a bundle node reports about itself: :class:`NodeStatistics` and :class:`PeerInfo`.

Both are frozen snapshots, built on demand from the live :class:`Counters` (a plain mutable
record the agent's modules bump) and the store's own statistics. They feed logs, ``ucp nodes``,
metrics and benchmarks without any of them reaching into the agent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bpv7.admin import StatusReportReason

__all__ = ["Counters", "NodeStatistics", "PeerInfo", "TransferInfo"]


@dataclass(frozen=True, slots=True)
class TransferInfo:
    """One transfer in progress on a session."""

    outgoing: bool
    """Ours to the peer (``True``) or the peer's to us."""
    done: int
    """Octets acknowledged by the peer (ours) or received (the peer's)."""
    total: int | None
    """Its length (``None``: the peer did not announce it)."""
    seconds: float
    """How long it has been running."""

    @property
    def rate(self) -> float:
        """Octets per second so far."""
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One TCPCL session with a neighbour."""

    node_id: str
    """The peer's node ID (from its SESS_INIT)."""
    address: tuple[str, int]
    """The peer's (host, port) as seen on the connection."""
    active: bool
    """Whether we opened the connection."""
    tls: bool
    """Whether the session runs over TLS."""
    since: float
    """When the session was established (unix seconds)."""
    bundles_sent: int
    """Bundles the peer acknowledged on this session."""
    bundles_received: int
    """Bundles received on this session (valid or not)."""
    in_flight: int
    """Our transfers sent and not yet acknowledged or refused."""
    stats: object = None
    """The adapter's own statistics snapshot of the session (``LinkStatistics``)."""
    transfers: tuple[TransferInfo, ...] = ()
    """Transfers in progress on this session, both directions."""


def _reasons() -> Counter[str]:
    return Counter()


@dataclass(slots=True)
class Counters:
    """Live counters of one node (mutable; read them through :class:`NodeStatistics`)."""

    received: int = 0
    created: int = 0
    refused_transfers: int = 0
    invalid: int = 0
    duplicates: int = 0
    forwarded: int = 0
    delivered: int = 0
    send_failures: int = 0
    deleted: Counter[str] = field(default_factory=_reasons)
    reports_sent: int = 0
    reports_received: int = 0
    adverts_sent: int = 0
    advert_bytes_sent: int = 0
    adverts_received: int = 0
    fragments_created: int = 0
    reassembled: int = 0
    custody_accepted: int = 0
    custody_refusals_sent: int = 0
    custody_signals_sent: int = 0
    custody_released: int = 0
    custody_refused: int = 0
    custody_retransmitted: int = 0
    sessions_opened: int = 0
    partial_kept: int = 0
    partial_kept_bytes: int = 0
    partial_sent: int = 0
    partial_sent_bytes: int = 0

    def count_deleted(self, reason: int) -> None:
        """Count one deletion for ``reason`` (a status report reason code)."""
        try:
            name = StatusReportReason(reason).name.lower()
        except ValueError:
            name = str(reason)
        self.deleted[name] += 1


@dataclass(frozen=True, slots=True)
class NodeStatistics:
    """A snapshot of one node's state and counters since it started."""

    node_id: str
    """This node's ID."""
    stored_bundles: int
    """Bundles in the store (waiting to be forwarded, delivered, or for a custody signal)."""
    stored_bytes: int
    """Their total size."""
    store_quota_bytes: int
    """The store's byte quota."""
    pending_forward: int
    """Stored bundles waiting to be forwarded."""
    pending_delivery: int
    """Stored bundles waiting for an application to take them."""
    custody_wait: int
    """Stored bundles sent while we are custodian, awaiting a custody signal."""
    sessions: int
    """TCPCL sessions up now."""
    sessions_opened: int
    """TCPCL sessions established since start."""
    registrations: int
    """Endpoints applications have registered here now (application API and in-process)."""
    received: int
    """Bundles received from neighbours and accepted (stored or handled)."""
    created: int
    """Bundles created on this node (``send``, status reports, custody signals)."""
    refused_transfers: int
    """Incoming transfers refused (invalid bundle, store full)."""
    invalid: int
    """Received transfers that were not valid bundles."""
    duplicates: int
    """Received bundles dropped as duplicates."""
    forwarded: int
    """Bundles a neighbour acknowledged."""
    delivered: int
    """Bundles delivered to applications (``Delivery.done``)."""
    deleted: Mapping[str, int]
    """Bundles deleted, by reason (status report reason names, lower case)."""
    reports_sent: int
    """Status reports created."""
    reports_received: int
    """Status reports received for this node."""
    adverts_sent: int
    """Route advertisements sent."""
    advert_bytes_sent: int
    """Octets of the route advertisement bundles sent (control traffic, docs/scaling.md)."""
    adverts_received: int
    """Route advertisements received."""
    fragments_created: int
    """Fragments made to fit neighbours' Transfer MRU."""
    reassembled: int
    """ADUs reassembled from fragments for local delivery."""
    custody_accepted: int
    """Bundles we took custody of (received in a BPDU and stored)."""
    custody_refusals_sent: int
    """Custody transfers we refused."""
    custody_signals_sent: int
    """Custody signal bundles sent (each may cover many transmissions)."""
    custody_released: int
    """Our custodial copies released by an acceptance signal."""
    custody_refused: int
    """Custodial transmissions the next node refused."""
    custody_retransmitted: int
    """Custodial transmissions repeated because no signal came in time."""
    send_failures: int
    """Transfers that did not complete (session lost, refused) and were retried later."""
    partial_kept: int = 0
    """Incoming transfers cut short of which the acknowledged prefix was kept as fragments
    (reactive fragmentation, RFC 9171 §5.8)."""
    partial_kept_bytes: int = 0
    """Payload octets kept that way."""
    partial_sent: int = 0
    """Outgoing transfers cut short whose bundle was replaced by the unacknowledged rest."""
    partial_sent_bytes: int = 0
    """Payload octets the peers acknowledged of those (not sent again)."""
    incoming_transfers: int = 0
    """Incoming transfers arriving now."""
    incoming_memory_bytes: int = 0
    """Octets of incoming transfers held in memory now."""
    incoming_spooled_bytes: int = 0
    """Octets of incoming transfers in spool files now."""
    spool_recovered: int = 0
    """Spool files found at start (transfers interrupted by a stop or crash)."""

    @classmethod
    def build(
        cls,
        counters: Counters,
        *,
        node_id: str,
        store_bundles: int,
        store_bytes: int,
        store_quota: int,
        by_state: Mapping[str, int],
        sessions: int,
        registrations: int,
        incoming: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> NodeStatistics:
        """Snapshot ``counters`` plus the given gauges (``incoming``: transfers, octets in
        memory, octets in spool files, spool files recovered at start)."""
        return cls(
            node_id=node_id,
            stored_bundles=store_bundles,
            stored_bytes=store_bytes,
            store_quota_bytes=store_quota,
            pending_forward=by_state.get("pending_forward", 0),
            pending_delivery=by_state.get("pending_delivery", 0),
            custody_wait=by_state.get("custody_wait", 0),
            sessions=sessions,
            sessions_opened=counters.sessions_opened,
            registrations=registrations,
            received=counters.received,
            created=counters.created,
            refused_transfers=counters.refused_transfers,
            invalid=counters.invalid,
            duplicates=counters.duplicates,
            forwarded=counters.forwarded,
            delivered=counters.delivered,
            deleted=MappingProxyType(dict(counters.deleted)),
            reports_sent=counters.reports_sent,
            reports_received=counters.reports_received,
            adverts_sent=counters.adverts_sent,
            advert_bytes_sent=counters.advert_bytes_sent,
            adverts_received=counters.adverts_received,
            fragments_created=counters.fragments_created,
            reassembled=counters.reassembled,
            custody_accepted=counters.custody_accepted,
            custody_refusals_sent=counters.custody_refusals_sent,
            custody_signals_sent=counters.custody_signals_sent,
            custody_released=counters.custody_released,
            custody_refused=counters.custody_refused,
            custody_retransmitted=counters.custody_retransmitted,
            send_failures=counters.send_failures,
            partial_kept=counters.partial_kept,
            partial_kept_bytes=counters.partial_kept_bytes,
            partial_sent=counters.partial_sent,
            partial_sent_bytes=counters.partial_sent_bytes,
            incoming_transfers=incoming[0],
            incoming_memory_bytes=incoming[1],
            incoming_spooled_bytes=incoming[2],
            spool_recovered=incoming[3],
        )
