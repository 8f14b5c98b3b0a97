"""The bundle node: one bundle protocol agent (RFC 9171 §5) with its store and sessions.

:class:`BundleNode` is the public face of :mod:`ucp_dtn.agent`: applications register endpoints
and send bundles through it; the daemon runs it. ``run`` opens the store (``workdir/store``, or
memory), starts the TCPCL listeners, the static peer connectors, the janitor, custody signal
aggregation and, if enabled, discovery; ``task_status.started(node)`` once it listens;
cancellation is the clean shutdown (sessions end with SESS_TERM, the store closes).

The parts: :class:`~ucp_dtn.agent.core.AgentCore` (state and shared steps),
:mod:`~ucp_dtn.agent.reception`, :mod:`~ucp_dtn.agent.neighbours` (sessions and forwarding),
:mod:`~ucp_dtn.agent.custody`, :mod:`~ucp_dtn.agent.janitor`, :mod:`~ucp_dtn.agent.reports`,
:mod:`~ucp_dtn.agent.routing`. Each part takes the small protocol of
:mod:`~ucp_dtn.agent.contracts` it needs (the core satisfies them all); this module wires them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import trio

from bpv7 import (
    Bundle,
    BundleFlags,
    BundleID,
    DecodeError,
    EndpointID,
    HopCountBlock,
    parse_eid,
)
from convergence.tcpcl import ExtensionItem, SessionExtensionType, SessTermReason
from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.link_errors import LinkError
from convergence.tcpcl.listener import TcpclListener, open_link
from convergence.tcpcl.sink import BudgetStatistics, ReceiveBudget
from ucp_dtn.store import BundleState, BundleStore, MemoryBundleStore, SqliteBundleStore

from .config import NodeConfig
from .core import AgentCore
from .custody import CustodyManager
from .errors import EndpointError, NodeNotRunningError, RegistrationError, SecurityError
from .forwarding import backoff_delay
from .janitor import Janitor
from .neighbours import Neighbours
from .reception import Receiver
from .registration import Registration
from .reports import StatusItem, report_flags
from .routing import RouteInfo
from .spool import Spool
from .statistics import NodeStatistics, PeerInfo

if TYPE_CHECKING:
    from ucp_dtn.discovery import Discovery

__all__ = ["BundleNode"]

logger = logging.getLogger(__name__)

_SHUTDOWN_TIMEOUT = 3.0
"""Seconds the sessions get to end cleanly at shutdown."""
_DISCOVERED_ROLES_TTL_S = 600.0
"""How long roles learned from a zeroconf announcement count without a new one."""


def _eid(value: str | EndpointID, what: str) -> EndpointID:
    if isinstance(value, str):
        try:
            return parse_eid(value)
        except DecodeError as exc:
            raise EndpointError(f"invalid {what} {value!r}: {exc.message}") from None
    return value


class BundleNode:
    """A bundle node (see the module docstring)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        store: BundleStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        """What the node was started with (node ID, listeners, peers, store, limits, policy)."""
        self.node_id: EndpointID = config.node_eid
        """This node's ID."""
        self.listen_addresses: list[tuple[str, int]] = []
        """The bound listening addresses (port 0 resolved) once running."""
        self._given_store = store
        self._clock = clock
        self._core: AgentCore | None = None
        self._spool: Spool | None = None
        self._neighbours: Neighbours | None = None
        self._nursery: trio.Nursery | None = None
        self._pending_routes: list[tuple[str, str]] = list(config.static_routes)

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether ``run`` is active (between ``started`` and shutdown)."""
        return self._nursery is not None

    def _running_core(self) -> AgentCore:
        if self._core is None or self._nursery is None:
            raise NodeNotRunningError(f"node {self.node_id} is not running")
        return self._core

    async def run(
        self, *, task_status: trio.TaskStatus[BundleNode] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the node until cancelled (see the module docstring)."""
        config = self.config
        self.listen_addresses = []
        store = self._given_store
        if store is None:
            path = config.store_path
            if path is None:
                store = MemoryBundleStore(config.store_quota_bytes)
            else:
                path.mkdir(parents=True, exist_ok=True)
                store = await SqliteBundleStore.open(path, quota_bytes=config.store_quota_bytes)
        core = AgentCore(config, store, self._clock)
        custody = CustodyManager(core)
        core.custody = custody
        receiver = Receiver(core)
        budget = ReceiveBudget(config.receive_memory_bytes)
        spool = self._spool = Spool(
            store,
            None if config.workdir is None else config.workdir / "spool",
            budget,
            threshold=config.spool_threshold_bytes,
            reactive=config.reactive_fragmentation,
            keep=receiver.keep,
            counters=core.counters,
        )
        link_config = _link_config(config, str(self.node_id), spool, budget)
        neighbours = Neighbours(core, receiver, link_config)
        core.routes_changed = neighbours.routes_changed
        for pattern, next_hop in self._pending_routes:
            core.routing.add_static(pattern, next_hop)
        try:
            await self._restore(core, custody, spool)
            async with trio.open_nursery() as outer:
                network = trio.CancelScope(shield=True)
                await outer.start(self._run_network, core, custody, neighbours, network)
                logger.info(
                    "node %s running, listening on %s",
                    self.node_id,
                    ", ".join(f"{h}:{p}" for h, p in self.listen_addresses) or "nothing",
                )
                task_status.started(self)
                try:
                    await trio.sleep_forever()
                finally:
                    # Shutdown: end every session cleanly (SESS_TERM; transfers in progress
                    # finish), then stop the network tasks. Custody signals not sent yet are
                    # dropped: the custodians will retransmit and be answered after a restart.
                    self._nursery = None
                    with trio.CancelScope(shield=True), trio.move_on_after(_SHUTDOWN_TIMEOUT):
                        async with trio.open_nursery() as closers:
                            for link in neighbours.links():
                                closers.start_soon(link.aclose)
                    network.cancel()
        finally:
            self._nursery = None
            for registration in list(core.registrations.values()):
                registration.close()
            with trio.CancelScope(shield=True):
                await store.close()
            logger.info("node %s stopped", self.node_id)

    async def _run_network(
        self,
        core: AgentCore,
        custody: CustodyManager,
        neighbours: Neighbours,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The node's tasks, in a scope that only the shutdown sequence cancels (so that
        sessions can end cleanly first)."""
        config = self.config
        with scope:
            async with trio.open_nursery() as nursery:
                self._core = core
                self._neighbours = neighbours
                nursery.start_soon(Janitor(core).run)
                nursery.start_soon(custody.run)
                nursery.start_soon(core.flush_settled)
                for host, port in config.listen:
                    listener = TcpclListener(neighbours.link_config, neighbours.serve, host, port)
                    bound = await nursery.start(listener.run)
                    self.listen_addresses.append(bound)
                for host, port in config.static_peers:
                    nursery.start_soon(neighbours.keep_connected, host, port)
                if config.discovery:
                    await self._start_discovery(nursery)
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()

    async def _restore(self, core: AgentCore, custody: CustodyManager, spool: Spool) -> None:
        """Rebuild the in-memory views from what the store holds (after a restart)."""
        store = core.store
        waiting = await store.query(states={BundleState.PENDING_FORWARD})
        for meta in waiting:
            if meta.next_retry_at is None:
                core.dispatch(meta)
        custodial = await store.query(states={BundleState.CUSTODY_WAIT})
        custody.restore(custodial)
        await core.restore_fragments()
        # Transfers that were arriving when the node stopped: keep what they hold.
        await spool.recover()
        if waiting or custodial:
            logger.info(
                "restored %d bundles to forward, %d awaiting custody signals",
                len(waiting),
                len(custodial),
            )

    async def _start_discovery(self, nursery: trio.Nursery) -> None:
        from ucp_dtn.discovery import DEFAULT_SERVICE_TYPE, Discovery, IPVersion

        config = self.config
        interfaces = config.discovery_interfaces
        discovery = Discovery(
            str(self.node_id),
            self.listen_addresses,
            roles=config.roles,
            tls=config.tls is not None,
            interfaces=None if interfaces is None else list(interfaces),
            ip_version=(
                IPVersion.V4Only
                if interfaces and all(":" not in address for address in interfaces)
                else None
            ),
            service_type=config.discovery_service_type or DEFAULT_SERVICE_TYPE,
        )
        await nursery.start(discovery.run)
        nursery.start_soon(self._follow_discovery, discovery)

    async def _follow_discovery(self, discovery: Discovery) -> None:
        from ucp_dtn.discovery import PeerAppeared, PeerUpdated

        followed: set[str] = set()
        async with trio.open_nursery() as nursery:
            async for event in discovery.events:
                if isinstance(event, PeerAppeared | PeerUpdated):
                    node_id = event.peer.node_id
                    self._learn_discovered_roles(node_id, event.peer.roles)
                    if node_id not in followed:
                        followed.add(node_id)
                        nursery.start_soon(self._keep_discovered, discovery, node_id, followed)

    async def _keep_discovered(
        self, discovery: Discovery, node_id: str, followed: set[str]
    ) -> None:
        """Keep a session with a discovered peer for as long as it is announced."""
        from ucp_dtn.discovery import PeerUnreachable, connect_first

        core = self._running_core()
        attempt = 0
        try:
            node = parse_eid(node_id)
            # Both sides discover each other: the one with the smaller node ID connects at
            # once, the other only if no session came up meanwhile.
            if str(self.node_id) > node_id:
                await trio.sleep(3.0)
            while True:
                peer = next((p for p in discovery.peers() if p.node_id == node_id), None)
                if peer is None:
                    return  # no longer announced
                if core.routing.is_neighbour(node):
                    attempt = 0
                else:
                    try:
                        await connect_first(peer, self.connect, retry_on=(OSError, LinkError))
                        attempt = 0
                    except (PeerUnreachable, LinkError) as exc:
                        attempt += 1
                        logger.info("discovered peer %s: %s", node_id, exc)
                await trio.sleep(
                    max(1.0, backoff_delay(attempt, base=1.0, limit=self.config.reconnect_max_s))
                )
        except DecodeError as exc:
            logger.info("discovered peer with a bad node ID %r: %s", node_id, exc)
        finally:
            followed.discard(node_id)

    # -- application interface ----------------------------------------------------------------

    def register(self, endpoint: str | EndpointID) -> Registration:
        """Register an application on ``endpoint`` (an endpoint of this node:
        ``dtn://<node>/anything`` or ``ipn:<node>.<service>``). Bundles already waiting for it
        are delivered first. Raises :class:`EndpointError` for an endpoint of another node,
        :class:`RegistrationError` if it already has an open registration and
        :class:`NodeNotRunningError` unless the node runs."""
        eid = _eid(endpoint, "endpoint")
        if eid.node_id != self.node_id:
            raise EndpointError(f"{eid} is not an endpoint of this node ({self.node_id})")
        core = self._running_core()
        existing = core.registrations.get(eid)
        if existing is not None and not existing.closed:
            raise RegistrationError(f"{eid} is already registered")
        registration = Registration(eid, core)
        core.registrations[eid] = registration
        return registration

    async def send(
        self,
        destination: str | EndpointID,
        payload: bytes,
        *,
        source: str | EndpointID | None = None,
        lifetime_s: float | None = None,
        custody: bool = False,
        report_to: str | EndpointID | None = None,
        status_reports: frozenset[StatusItem] = frozenset(),
        hop_limit: int | None = None,
        must_not_fragment: bool = False,
        integrity: str | None = None,
        confidentiality: str | None = None,
    ) -> BundleID:
        """Create a bundle and hand it to the agent; returns once it is durably stored.

        ``source`` defaults to the node ID and must be an endpoint of this node; ``lifetime_s``
        to ``config.default_lifetime_s``; ``report_to`` to the node ID. ``status_reports``
        requests status reports (RFC 9171 §4.2.3). ``custody``: this node becomes custodian
        and the bundle travels with custody transfer (BIBE). ``hop_limit`` (default
        ``config.hop_limit``; 0 for none) adds a Hop Count Block. ``integrity`` and
        ``confidentiality`` name keys of the security policy: this node then adds a BIB and/or
        a BCB over the payload as security source (RFC 9172), besides what the policy's source
        rules add. Raises ``StoreFullError`` when the store cannot take it, ``SecurityError``
        when a named key does not exist or cannot do it."""
        core = self._running_core()
        destination_eid = _eid(destination, "destination")
        if destination_eid.is_null:
            raise EndpointError("cannot send to the null endpoint")
        source_eid = self.node_id if source is None else _eid(source, "source")
        if source_eid.node_id != self.node_id:
            raise EndpointError(f"source {source_eid} is not an endpoint of this node")
        lifetime = self.config.default_lifetime_s if lifetime_s is None else lifetime_s
        if not isinstance(lifetime, int | float) or not math.isfinite(lifetime) or lifetime <= 0:
            raise ValueError(f"lifetime_s must be a positive number, got {lifetime_s!r}")
        limit = self.config.hop_limit if hop_limit is None else hop_limit
        if type(limit) is not int or not 0 <= limit <= 255:
            raise ValueError(f"hop_limit must be within 0..255, got {hop_limit!r}")
        flags = report_flags(frozenset(status_reports))
        if must_not_fragment:
            flags |= BundleFlags.MUST_NOT_FRAGMENT
        report_eid = self.node_id if report_to is None else _eid(report_to, "report-to")
        # RFC 9171 §4.2.3: "If the bundle processing control flags indicate that the bundle's
        # ADU is an administrative record, then [...]"; ours never is. The source of a bundle
        # is the node ID per §4.2.5.2 when sent by the node itself.
        extra: list[HopCountBlock] = [HopCountBlock(limit, 0)] if limit else []
        bundle = Bundle.build(
            source=source_eid,
            destination=destination_eid,
            payload=bytes(payload),
            creation=core.new_creation(),
            lifetime_ms=max(1, round(lifetime * 1000)),
            report_to=report_eid,
            flags=flags,
            extra_blocks=extra,
        )
        security = core.security
        if security is not None:
            bundle = security.secure(
                bundle, self.node_id, integrity=integrity, confidentiality=confidentiality
            )
        elif integrity is not None or confidentiality is not None:
            raise SecurityError("this node has no security keys (no [security] configured)")
        raw = bundle.encode()
        if not await core.admit(bundle, raw, previous=None, custody=custody):
            raise RuntimeError(f"bundle {bundle.bundle_id} was already stored")  # pragma: no cover
        core.counters.created += 1
        return bundle.bundle_id

    async def connect(self, host: str, port: int) -> str:
        """Open a TCPCL session to ``host:port`` now; returns the peer's node ID once it is
        established. The session then runs in the node until it ends (it is not re-opened:
        use ``static_peers`` for that). Raises ``LinkError`` subclasses when it fails."""
        self._running_core()
        assert self._nursery is not None and self._neighbours is not None
        peer: str = await self._nursery.start(self._connect_and_serve, host, port)
        return peer

    async def _connect_and_serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._neighbours is not None
        async with open_link(host, port, self._neighbours.link_config) as link:
            task_status.started(link.peer_node_id)
            await self._neighbours.serve(link)

    async def serve_link(self, link: TcpclLink) -> None:
        """Use an already established TCPCL link (e.g. over a lossy stream in tests) until its
        session ends."""
        self._running_core()
        assert self._neighbours is not None
        await self._neighbours.serve(link)

    @property
    def link_config(self) -> LinkConfig:
        """The TCPCL settings the node uses for its sessions (for ``open_stream_link``)."""
        self._running_core()
        assert self._neighbours is not None
        return self._neighbours.link_config

    def _learn_discovered_roles(self, node_id: str, roles: frozenset[str]) -> None:
        core = self._core
        if core is None:
            return
        try:
            node = parse_eid(node_id).node_id
        except DecodeError:
            return
        core.roles.learn(node, roles, expires_at=core.now() + _DISCOVERED_ROLES_TTL_S)

    def nodes_with_role(self, role: str) -> list[tuple[EndpointID, int]]:
        """Nodes known to run UCP ``role`` (see :mod:`.roles`) that are reachable now, with
        their route metric (0: this node), nearest first."""
        core = self._core
        if core is None:
            roles = {r.strip().lower() for r in self.config.roles}
            return [(self.node_id, 0)] if role in roles else []
        now = core.now()
        reachable = core.routing.reachable(now=now)
        found: list[tuple[EndpointID, int]] = []
        for node in core.roles.nodes_with_role(role, now=now):
            if node == core.node_id:
                found.append((node, 0))
            elif node in reachable:
                found.append((node, reachable[node]))
        return sorted(found, key=lambda item: (item[1], str(item[0])))

    def forwarding_backlog(self, destination: str | EndpointID) -> tuple[EndpointID | None, int]:
        """Where a bundle for ``destination`` would go now and what waits there: the neighbour
        the routing table picks (``None``: no usable route, or the destination is this node)
        and how many bundles already wait in the forwarding queue for it (bundles on the wire
        not counted). Lets an application pace bulk traffic behind everything else (the
        datastore's replica copies do)."""
        core = self._core
        eid = _eid(destination, "destination")
        if core is None or eid.node_id == self.node_id:
            return None, 0
        core.queue.sync()
        hop = core.routing.next_hop(eid, now=core.now())
        return hop, 0 if hop is None else core.queue.waiting_for(hop)

    def set_roles(self, roles: Iterable[str]) -> None:
        """Change this node's own roles (e.g. a node promoting itself to broker); neighbours
        hear of it with the next route advertisement, sent soon."""
        self.config = dataclasses.replace(self.config, roles=tuple(roles))
        core = self._core
        if core is not None:
            core.roles.set_local(self.config.roles)
            core.routes_changed()

    def add_route(self, pattern: str, next_hop: str) -> None:
        """Add a static route: bundles for EIDs matching ``pattern`` go via ``next_hop``."""
        core = self._core
        if core is None:
            from .routing import RoutePattern

            RoutePattern.parse(pattern)
            self._pending_routes.append((pattern, next_hop))
            return
        core.routing.add_static(pattern, next_hop)
        self._pending_routes.append((pattern, next_hop))
        core.routes_updated()

    def received_octets(self) -> int:
        """Octets of incoming transfers longer than one segment received since the node
        started, all sessions together: it grows while a large bundle arrives (see
        :func:`~ucp_dtn.agent.progress.wait_while_arriving`)."""
        spool = self._spool
        return 0 if self._core is None or spool is None else spool.received

    def receive_budget(self) -> BudgetStatistics | None:
        """The memory budget for incoming transfers: limit, use now, peak (``None`` unless
        running)."""
        spool = self._spool
        return None if self._core is None or spool is None else spool.budget.statistics()

    def acknowledged_octets(self) -> int:
        """Octets of this node's transfers longer than one segment that peers acknowledged
        since it started: it grows while a large bundle leaves."""
        return 0 if self._neighbours is None else self._neighbours.acknowledged_octets()

    async def pending_forward_bytes(self) -> int:
        """Octets of the bundles waiting in the store to be forwarded (or on the wire)."""
        core = self._core
        if core is None:
            return 0
        waiting = await core.store.query(states={BundleState.PENDING_FORWARD})
        return sum(meta.size for meta in waiting)

    async def recheck_sessions(self) -> int:
        """Run :attr:`NodeConfig.session_check` on every session again and close those it
        refuses now (a trusted mesh does after applying a revocation); how many were closed."""
        check = self.config.session_check
        if check is None or self._neighbours is None:
            return 0
        closed = 0
        for link in self._neighbours.links():
            refusal = check(link.peer_node_id, link.peer_certificate)
            if refusal is not None:
                logger.warning("closing the session with %s: %s", link.peer_node_id, refusal)
                await link.aclose(SessTermReason.CONTACT_FAILURE)
                closed += 1
        return closed

    def peers(self) -> list[PeerInfo]:
        """The sessions up now."""
        return [] if self._neighbours is None else self._neighbours.peers()

    def routes(self) -> list[RouteInfo]:
        """Every route, most specific first."""
        if self._core is None:
            return []
        return self._core.routing.routes(now=self._core.now())

    def waiting_by_hop(self) -> tuple[dict[str, int], int]:
        """Bundles waiting to be forwarded: per next hop (node ID) that has any, and how many
        have no usable route now. Read from the forwarding queue's counts (no store scan), as
        of its last look at the routing table; bundles on the wire or waiting to retry after a
        failed transfer are not counted."""
        core = self._core
        if core is None:
            return {}, 0
        waiting = {str(hop): n for hop, n in core.queue.waiting_by_hop().items()}
        return waiting, core.queue.unrouted

    def known_roles(self) -> dict[str, frozenset[str]]:
        """The UCP roles of every node the role directory knows now (this node included):
        learned from route advertisements and discovery, lapsing with them."""
        core = self._core
        if core is None:
            roles = frozenset(r.strip().lower() for r in self.config.roles if r.strip())
            return {str(self.node_id): roles} if roles else {}
        return {str(node): roles for node, roles in core.roles.entries(now=core.now()).items()}

    def statistics(self) -> NodeStatistics:
        """A snapshot of the node's counters and state."""
        core = self._core
        if core is None:
            from .statistics import Counters

            return NodeStatistics.build(
                Counters(),
                node_id=str(self.node_id),
                store_bundles=0,
                store_bytes=0,
                store_quota=self.config.store_quota_bytes,
                by_state={},
                sessions=0,
                registrations=0,
            )
        store_stats = core.store.statistics()
        incoming = (0, 0, 0, 0)
        if self._spool is not None:
            spool = self._spool.statistics()
            incoming = (spool.transfers, spool.in_memory, spool.in_files, spool.recovered)
        return NodeStatistics.build(
            core.counters,
            node_id=str(self.node_id),
            store_bundles=store_stats.bundles,
            store_bytes=store_stats.bytes,
            store_quota=store_stats.quota_bytes,
            by_state={state.name.lower(): n for state, n in store_stats.by_state.items()},
            sessions=0 if self._neighbours is None else self._neighbours.count,
            registrations=sum(1 for r in core.registrations.values() if not r.closed),
            incoming=incoming,
        )

    def __repr__(self) -> str:
        return f"<BundleNode {self.node_id} {'running' if self.running else 'stopped'}>"


def _link_config(
    config: NodeConfig, node_id: str, spool: Spool, budget: ReceiveBudget
) -> LinkConfig:
    """The TCPCL settings of the node's sessions: incoming transfers into the spool (which
    refuses what the store's quota cannot take, RFC 9174 §5.2.4), modest segments, a send
    window, and reactive fragmentation announced when it is on."""
    announce: tuple[ExtensionItem, ...] = ()
    if config.reactive_fragmentation:
        announce = (ExtensionItem(SessionExtensionType.REACTIVE_FRAGMENTATION),)
    return LinkConfig(
        node_id=node_id,
        keepalive_s=config.keepalive_s,
        tls=config.tls,
        segment_mru=config.segment_bytes,
        max_segment_size=config.segment_bytes,
        sink_factory=spool.sink_for,
        receive_budget=budget,
        send_window_min=2 * config.segment_bytes,
        # Complete transfers waiting for the agent: it takes them in batches (one group commit
        # each), so let a batch build up while the previous one is being stored.
        incoming_queue=256,
        send_window_delay_s=config.send_window_s,
        session_extensions=announce,
    )
