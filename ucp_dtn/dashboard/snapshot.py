"""One picture of a node and the mesh as it sees it: the document the page draws.

:class:`SnapshotBuilder` reads the node's and its roles' ``statistics()`` and public accessors
(never a store scan: counts the components keep) and builds a :class:`Snapshot`: this node,
its store, its sessions with rates and round-trip times, routes, a map of the nodes and links
it knows, the broker's job table, executors with their load and datastores with their free
space. Rates are differences between two builds, so the builder keeps the previous counters.
:func:`snapshot_json` turns a snapshot into the JSON the page and ``/api/v1/snapshot`` serve
(docs/dashboard.md describes every field).

Building is synchronous and does no I/O beyond a ``getsockopt`` per session (the kernel's TCP
round-trip time), so it runs on the daemon's trio loop between two other steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bpv7 import BPv7Error, parse_eid

from ..agent import PeerInfo, RouteInfo, RouteOrigin
from ..appapi.server import plain_data
from ..ucp.messages import Role
from .jobs import JobRow, JobTable
from .sources import NodeSources

if TYPE_CHECKING:
    from ..roles.broker import MemberInfo

__all__ = [
    "SNAPSHOT_VERSION",
    "BrokerView",
    "DatastoreView",
    "ExecutorView",
    "MeshLink",
    "MeshNode",
    "PeerView",
    "Snapshot",
    "SnapshotBuilder",
    "StoreView",
    "TransferView",
    "snapshot_json",
]

SNAPSHOT_VERSION = 1
"""Version of the snapshot document (a field removed or changed in meaning raises it)."""

JOBS_IN_SNAPSHOT = 500
"""Most recently changed jobs a snapshot carries (``/api/v1/jobs`` serves them all)."""
TRANSFERS_PER_PEER = 5
"""Largest transfers in progress listed per session (all are counted)."""

_COUNTERS_WITH_RATES = ("received", "forwarded", "delivered", "created")


@dataclass(frozen=True, slots=True)
class TransferView:
    """One transfer under way on a session."""

    direction: str
    """``out`` (ours) or ``in`` (the peer's)."""
    transfer_id: int
    """Its Transfer ID in the session."""
    done: int
    """Octets acknowledged (out) or received (in)."""
    total: int | None
    """The bundle's length (for incoming transfers only when the peer announced it)."""


@dataclass(frozen=True, slots=True)
class PeerView:
    """One TCPCL session with a neighbour."""

    node_id: str
    """The neighbour's node ID."""
    address: str
    """Its ``host:port`` as seen on the connection."""
    direction: str
    """``outgoing`` (we connected) or ``incoming``."""
    tls: bool
    """Whether the session runs over TLS."""
    state: str
    """The TCPCL session state (``established``, ``ending``...)."""
    since: float
    """When the session came up (unix seconds)."""
    bundles_sent: int
    """Bundles the neighbour acknowledged on this session."""
    bundles_received: int
    """Bundles received on it."""
    in_flight: int
    """Our transfers not yet acknowledged."""
    waiting: int
    """Bundles queued for this neighbour (next hop), not yet on the wire."""
    bytes_sent: int
    """Octets written (TCPCL level)."""
    bytes_received: int
    """Octets read."""
    send_bps: float | None
    """Octets per second written since the previous snapshot (``None`` on the first)."""
    receive_bps: float | None
    """Octets per second read since the previous snapshot."""
    rtt_ms: float | None
    """The kernel's smoothed TCP round-trip time, milliseconds (``None`` if unknown)."""
    transfers: tuple[TransferView, ...]
    """The largest transfers under way (at most five)."""
    transfers_in_progress: int
    """How many transfers are under way in all."""


@dataclass(frozen=True, slots=True)
class StoreView:
    """The node's bundle store and forwarding queues."""

    bundles: int
    """Bundles stored."""
    bytes: int
    """Their size."""
    quota_bytes: int
    """The store's quota."""
    pending_forward: int
    """Stored bundles waiting to be forwarded."""
    pending_delivery: int
    """Stored bundles waiting for a local application."""
    custody_wait: int
    """Bundles sent with custody, awaiting the next custodian's signal."""
    waiting_by_hop: Mapping[str, int]
    """Bundles queued per next hop (node ID)."""
    unrouted: int
    """Bundles with no usable route now (store-and-forward)."""


@dataclass(frozen=True, slots=True)
class MeshNode:
    """A node of the map."""

    node_id: str
    """Its node ID."""
    roles: tuple[str, ...]
    """Its UCP roles as far as this node knows."""
    kind: str
    """``self``, ``neighbour`` (a session is up) or ``remote``."""
    reachable: bool
    """Whether bundles for it can leave now (itself, a neighbour, or a usable route)."""
    hops: int | None
    """Hops to it by the best usable route (0 for this node)."""


@dataclass(frozen=True, slots=True)
class MeshLink:
    """A line of the map."""

    source: str
    """Node ID at one end (this node for sessions; the next hop for routes)."""
    target: str
    """Node ID at the other end."""
    kind: str
    """``session`` (TCPCL session up) or ``route`` (learned from an advertisement)."""
    send_bps: float | None = None
    """Sessions: octets per second from ``source`` to ``target``."""
    receive_bps: float | None = None
    """Sessions: octets per second from ``target`` to ``source``."""
    rtt_ms: float | None = None
    """Sessions: TCP round-trip time, milliseconds."""


@dataclass(frozen=True, slots=True)
class ExecutorView:
    """An executor and its load."""

    node_id: str
    """Its node ID."""
    running: int
    """Jobs it runs (or, seen from a broker, was just sent)."""
    max_jobs: int
    """Jobs it runs at once."""
    capabilities: object | None
    """Its announced capabilities (memory, disk, cpu_load, cpu_cores, power...)."""
    last_seen: float | None
    """When its latest heartbeat arrived (``None``: this node's own executor)."""
    local: bool
    """Whether it is this node's own executor role."""


@dataclass(frozen=True, slots=True)
class DatastoreView:
    """A datastore and its space."""

    node_id: str
    """Its node ID."""
    used_bytes: int | None
    """Content bytes it holds."""
    free_bytes: int | None
    """Bytes it can still take."""
    quota_bytes: int | None
    """Its quota (known for this node's own datastore)."""
    items: int | None
    """Data it holds (known for this node's own datastore)."""
    last_seen: float | None
    """When its latest heartbeat arrived (``None``: this node's own datastore)."""
    local: bool
    """Whether it is this node's own datastore role."""


@dataclass(frozen=True, slots=True)
class BrokerView:
    """The broker role of this node and its job table."""

    endpoint: str
    """The broker's endpoint."""
    counts: Mapping[str, int]
    """Own jobs per state."""
    jobs_total: int
    """Own jobs in the table."""
    jobs: tuple[JobRow, ...]
    """The most recently changed jobs (at most 500; ``/api/v1/jobs`` has all)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the page shows, at one moment."""

    version: int
    """:data:`SNAPSHOT_VERSION`."""
    taken_at: float
    """When it was built (unix seconds)."""
    node_id: str
    """This node's ID."""
    roles: tuple[str, ...]
    """This node's UCP roles."""
    software: str
    """The program and its version."""
    started_at: float
    """When the daemon started."""
    store: StoreView
    """Store use and forwarding queues."""
    counters: Mapping[str, Any]
    """The node's counters since start (``ucp nodes``' statistics)."""
    rates: Mapping[str, float | None]
    """Bundles per second received, forwarded, delivered and created since the previous
    snapshot."""
    peers: tuple[PeerView, ...]
    """Sessions up now."""
    routes: tuple[Any, ...]
    """Every route (pattern, next hop, origin, metric, usable)."""
    mesh_nodes: tuple[MeshNode, ...]
    """The map's nodes: this node first, then neighbours, then the rest, by node ID."""
    mesh_links: tuple[MeshLink, ...]
    """The map's lines."""
    broker: BrokerView | None
    """The job table, when this node is a broker."""
    executors: tuple[ExecutorView, ...]
    """Executors known here (a broker's registry, or this node's own)."""
    datastores: tuple[DatastoreView, ...]
    """Datastores known here (a broker's registry, or this node's own)."""
    role_statistics: Mapping[str, Any] = field(default_factory=dict)
    """The counters of each role this node runs (``broker``, ``executor``, ``datastore``)."""


@dataclass(slots=True)
class _Sample:
    at: float
    sent: int
    received: int


class SnapshotBuilder:
    """Builds snapshots of one node (see the module docstring). ``jobs`` is shared with the
    metrics so the broker's changes are read once."""

    def __init__(
        self,
        sources: NodeSources,
        jobs: JobTable | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = sources
        self.jobs = jobs if jobs is not None else JobTable()
        self._clock = clock
        self._links: dict[tuple[str, str, float], _Sample] = {}
        self._counters: tuple[float, dict[str, int]] | None = None

    def build(self) -> Snapshot:
        """A snapshot now."""
        sources = self.sources
        node = sources.node
        now = self._clock()
        stats = node.statistics()
        waiting, unrouted = node.waiting_by_hop()
        known_roles = node.known_roles()
        node_id = str(node.node_id)
        peers = self._peers(node.peers(), waiting, now)
        routes = node.routes()
        broker = sources.broker()
        members = broker.members() if broker is not None else ()
        self.jobs.refresh(broker)
        mesh_nodes, mesh_links = _mesh(node_id, peers, routes, known_roles, members)
        return Snapshot(
            version=SNAPSHOT_VERSION,
            taken_at=now,
            node_id=node_id,
            roles=tuple(sorted(known_roles.get(node_id, ()))),
            software=sources.software,
            started_at=sources.started_at,
            store=StoreView(
                bundles=stats.stored_bundles,
                bytes=stats.stored_bytes,
                quota_bytes=stats.store_quota_bytes,
                pending_forward=stats.pending_forward,
                pending_delivery=stats.pending_delivery,
                custody_wait=stats.custody_wait,
                waiting_by_hop=dict(sorted(waiting.items())),
                unrouted=unrouted,
            ),
            counters=plain_data(stats),
            rates=self._rates(stats, now),
            peers=peers,
            routes=tuple(plain_data(route) for route in routes),
            mesh_nodes=mesh_nodes,
            mesh_links=mesh_links,
            broker=self._broker_view(),
            executors=self._executors(members),
            datastores=self._datastores(members),
            role_statistics=self._role_statistics(),
        )

    # -- parts --------------------------------------------------------------------------------

    def _peers(
        self, infos: list[PeerInfo], waiting: Mapping[str, int], now: float
    ) -> tuple[PeerView, ...]:
        samples: dict[tuple[str, str, float], _Sample] = {}
        views = []
        for info in infos:
            link = info.stats
            address = _address(info.address)
            sent = getattr(link, "bytes_sent", 0)
            received = getattr(link, "bytes_received", 0)
            key = (info.node_id, address, info.since)
            previous = self._links.get(key)
            samples[key] = _Sample(now, sent, received)
            send_bps = receive_bps = None
            if previous is not None and now > previous.at:
                elapsed = now - previous.at
                send_bps = max(0.0, (sent - previous.sent) / elapsed)
                receive_bps = max(0.0, (received - previous.received) / elapsed)
            transfers = tuple(
                TransferView("out" if t.outgoing else "in", t.transfer_id, t.done, t.total)
                for t in getattr(link, "transfers", ())
            )
            largest = sorted(transfers, key=lambda t: (-(t.total or t.done), t.transfer_id))
            rtt = getattr(link, "rtt_s", None)
            state = getattr(link, "state", None)
            views.append(
                PeerView(
                    node_id=info.node_id,
                    address=address,
                    direction="outgoing" if info.active else "incoming",
                    tls=info.tls,
                    state=str(getattr(state, "value", state or "established")),
                    since=info.since,
                    bundles_sent=info.bundles_sent,
                    bundles_received=info.bundles_received,
                    in_flight=info.in_flight,
                    waiting=waiting.get(info.node_id, 0),
                    bytes_sent=sent,
                    bytes_received=received,
                    send_bps=send_bps,
                    receive_bps=receive_bps,
                    rtt_ms=None if rtt is None else rtt * 1000.0,
                    transfers=tuple(largest[:TRANSFERS_PER_PEER]),
                    transfers_in_progress=len(transfers),
                )
            )
        self._links = samples
        return tuple(views)

    def _rates(self, stats: object, now: float) -> dict[str, float | None]:
        current = {name: int(getattr(stats, name)) for name in _COUNTERS_WITH_RATES}
        previous = self._counters
        self._counters = (now, current)
        if previous is None or now <= previous[0]:
            return dict.fromkeys(_COUNTERS_WITH_RATES)
        elapsed = now - previous[0]
        return {
            name: max(0.0, (current[name] - previous[1][name]) / elapsed)
            for name in _COUNTERS_WITH_RATES
        }

    def _broker_view(self) -> BrokerView | None:
        broker = self.sources.broker()
        if broker is None:
            return None
        stats = broker.statistics()
        counts = {
            "queued": stats.queued,
            "dispatched": stats.dispatched,
            "running": stats.running,
            "done": stats.done,
            "failed": stats.failed,
            "rejected": stats.rejected,
        }
        return BrokerView(
            endpoint=str(broker.endpoint),
            counts=counts,
            jobs_total=len(self.jobs),
            jobs=tuple(self.jobs.select(limit=JOBS_IN_SNAPSHOT)),
        )

    def _executors(self, members: tuple[MemberInfo, ...]) -> tuple[ExecutorView, ...]:
        views = {
            m.node: ExecutorView(m.node, m.load, m.max_jobs, m.capabilities, m.last_seen, False)
            for m in members
            if m.role == Role.EXECUTOR
        }
        executor = self.sources.executor()
        if executor is not None:
            stats = executor.statistics()
            own = str(self.sources.node.node_id)
            views[own] = ExecutorView(
                own, stats.active, stats.max_jobs, executor.capabilities, None, True
            )
        return tuple(views[node] for node in sorted(views))

    def _datastores(self, members: tuple[MemberInfo, ...]) -> tuple[DatastoreView, ...]:
        views = {
            m.node: DatastoreView(
                m.node, m.store_used, m.store_free, None, None, m.last_seen, False
            )
            for m in members
            if m.role == Role.DATASTORE
        }
        datastore = self.sources.datastore()
        if datastore is not None:
            store = datastore.statistics().store
            if store is not None:
                own = str(self.sources.node.node_id)
                views[own] = DatastoreView(
                    own,
                    store.used,
                    max(0, store.quota - store.used),
                    store.quota,
                    store.items,
                    None,
                    True,
                )
        return tuple(views[node] for node in sorted(views))

    def _role_statistics(self) -> dict[str, Any]:
        sources = self.sources
        found: dict[str, Any] = {}
        for name, role in (
            ("broker", sources.broker()),
            ("executor", sources.executor()),
            ("datastore", sources.datastore()),
        ):
            if role is not None:
                found[name] = plain_data(role.statistics())
        return found


def _address(address: object) -> str:
    if isinstance(address, tuple | list) and len(address) == 2:
        host, port = address
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _node_id_of(text: str) -> str | None:
    """``text`` as a node ID if it names one node (route patterns may be wildcards)."""
    try:
        eid = parse_eid(text)
    except BPv7Error:
        return None
    return str(eid.node_id) if eid.is_node_id else None


def _mesh(
    node_id: str,
    peers: tuple[PeerView, ...],
    routes: list[RouteInfo],
    known_roles: Mapping[str, frozenset[str]],
    members: tuple[MemberInfo, ...],
) -> tuple[tuple[MeshNode, ...], tuple[MeshLink, ...]]:
    """The map: this node, its neighbours (sessions) and the nodes it knows of from routes,
    role advertisements and heartbeats; lines for sessions and for learned routes."""
    roles: dict[str, set[str]] = {node: set(r) for node, r in known_roles.items()}
    for member in members:
        name = (member.role.name or "").lower()
        if name:
            roles.setdefault(member.node, set()).add(name)
    hops: dict[str, int] = {node_id: 0}
    links: dict[tuple[str, str], MeshLink] = {}
    neighbours: dict[str, list[PeerView]] = {}
    for peer in peers:
        neighbours.setdefault(peer.node_id, []).append(peer)
    for neighbour, sessions in neighbours.items():
        hops[neighbour] = 1
        rtts = [p.rtt_ms for p in sessions if p.rtt_ms is not None]
        links[(node_id, neighbour)] = MeshLink(
            node_id,
            neighbour,
            "session",
            send_bps=_total(p.send_bps for p in sessions),
            receive_bps=_total(p.receive_bps for p in sessions),
            rtt_ms=min(rtts) if rtts else None,
        )
    everyone: set[str] = {node_id, *neighbours, *roles}
    for route in routes:
        target = _node_id_of(route.pattern)
        if target is None:
            continue
        everyone.add(target)
        if route.usable:
            hops[target] = min(hops.get(target, route.metric), route.metric)
        via = _node_id_of(route.next_hop)
        if (
            route.origin is RouteOrigin.LEARNED
            and via is not None
            and via != target
            and (via, target) not in links
            and (target, via) not in links
        ):
            everyone.add(via)
            links[(via, target)] = MeshLink(via, target, "route")
    nodes = []
    for node in sorted(everyone, key=lambda n: (n != node_id, n not in neighbours, n)):
        kind = "self" if node == node_id else "neighbour" if node in neighbours else "remote"
        nodes.append(
            MeshNode(
                node_id=node,
                roles=tuple(sorted(roles.get(node, ()))),
                kind=kind,
                reachable=node in hops,
                hops=hops.get(node),
            )
        )
    return tuple(nodes), tuple(links.values())


def _total(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def snapshot_json(snapshot: Snapshot) -> bytes:
    """The snapshot as compact UTF-8 JSON (the API's and the event stream's document)."""
    return json.dumps(plain_data(snapshot), separators=(",", ":"), allow_nan=False).encode()
