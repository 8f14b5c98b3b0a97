"""The trio shell around python-zeroconf: announce ourselves, browse for others, report changes.

Threads and hand-offs
---------------------
python-zeroconf's sync API runs an asyncio loop in a thread of its own, and its ServiceBrowser
fires callbacks from yet another thread. Nothing of it runs on the trio loop:

- every blocking zeroconf call (open, register, update, resolve, unregister, close) goes through
  ``trio.to_thread.run_sync``;
- the browser thread only hands ``(state change, service name)`` to trio with
  ``trio.from_thread.run_sync`` and our trio token, and returns;
- on the trio side, an appearing or updated service is resolved (TXT, SRV, A/AAAA; usually from
  zeroconf's cache) in a task of our nursery, decoded by the pure
  :func:`~ucp_dtn.discovery.peer_from_announcement`, and turned into a :data:`PeerEvent`.

A per-name generation counter makes late resolutions harmless: a resolution started before a
removal (or before a newer update) is dropped when it returns.

Liveness: a node that leaves cleanly sends goodbye packets and disappears at once. One that
crashes or is cut off sends nothing, and python-zeroconf stretches every PTR TTL it receives to
at least 1125 s, so its browser would notice after ~19 minutes. Hence a sweep: every
``record_ttl / 2`` seconds each known peer is re-resolved; while its records (TTL
``record_ttl``) are cached that costs nothing, once they expired it queries the network, and a
peer that does not answer within ``resolve_timeout`` is reported gone (counted as ``expired``).
Silent peers keep being retried until zeroconf drops them, so a peer that only lost a few
packets comes back as a new PeerAppeared.

Shutdown is cancellation: ``run`` unregisters (goodbye packets, so peers see us disappear at
once), stops the browser and closes zeroconf in a shielded, time-bounded cleanup.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import ifaddr
import trio
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

from ._announcement import (
    DEFAULT_SERVICE_TYPE,
    DiscoveredPeer,
    check_instance_name,
    check_service_type,
    encode_announcement,
    expand_unspecified,
    instance_name_for,
    peer_from_announcement,
)
from ._errors import DiscoveryConfigError, MalformedAnnouncement

__all__ = [
    "Discovery",
    "DiscoveryStatistics",
    "PeerAppeared",
    "PeerDisappeared",
    "PeerEvent",
    "PeerUpdated",
]

logger = logging.getLogger(__name__)

# RFC 6762 Section 10: "The recommended TTL value for Multicast DNS resource records with a host
# name as the resource record's name [...] or a host name contained within the resource record's
# rdata [...] SHOULD be 120 seconds." We use it for every record, PTR and TXT included (whose
# recommendation is 75 minutes), and a liveness sweep every TTL/2 re-resolves each known peer:
# once its records expired, resolving queries the network, and a peer that does not answer has
# vanished without a goodbye (crash, partition) and is reported gone. We cannot rely on PTR
# expiry for that: python-zeroconf raises every received PTR TTL to at least 1125 s.
DEFAULT_RECORD_TTL = 120
_SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class PeerAppeared:
    """A node we had not seen announced itself (or came back after disappearing)."""

    peer: DiscoveredPeer
    """What it announced."""


@dataclass(frozen=True, slots=True)
class PeerUpdated:
    """A known node changed its announcement (roles, addresses, TLS...)."""

    peer: DiscoveredPeer
    """What it announces now."""
    previous: DiscoveredPeer
    """What it announced before."""


@dataclass(frozen=True, slots=True)
class PeerDisappeared:
    """A node withdrew its announcement (goodbye packet) or its records expired."""

    peer: DiscoveredPeer
    """The last announcement we had of it."""


PeerEvent: TypeAlias = PeerAppeared | PeerUpdated | PeerDisappeared


@dataclass(frozen=True, slots=True)
class DiscoveryStatistics:
    """A snapshot of a :class:`Discovery`, for logs, ``ucp nodes`` and metrics."""

    running: bool
    """Whether ``run`` is active (from its start until its cleanup finished)."""
    service_name: str | None
    """Our full DNS-SD instance name once registered, else None."""
    peers: int
    """Peers currently known."""
    appeared: int
    """PeerAppeared events produced so far."""
    updated: int
    """PeerUpdated events produced so far."""
    disappeared: int
    """PeerDisappeared events produced so far."""
    ignored_self: int
    """Resolved announcements carrying our own node ID (our own, seen via multicast loopback)."""
    malformed: int
    """Resolved services of our type whose TXT data does not follow our schema."""
    resolve_failures: int
    """Services that could not be resolved in time (or zeroconf failed resolving them)."""
    expired: int
    """Peers reported gone because they stopped answering (no goodbye); included in disappeared."""
    events_buffered: int
    """Events waiting in the channel for the consumer."""
    events_dropped: int
    """Events lost because the channel was full or its receiver closed (see ``peers()``)."""


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    FINISHED = "finished"


def _local_ips() -> list[str]:
    """Every IP address of this machine's interfaces (blocking: a getifaddrs call)."""
    ips: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                ips.append(ip.ip)
            else:
                address, _flowinfo, _scope = ip.ip
                ips.append(address)
    return ips


def _expand(listen: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """``listen`` with 0.0.0.0 / :: replaced by this machine's addresses (may block briefly)."""
    for host, _port in listen:
        try:
            unspecified = ipaddress.ip_address(host).is_unspecified
        except ValueError:
            continue  # encode_announcement rejects it with a proper message
        if unspecified:
            return expand_unspecified(listen, _local_ips())
    return list(listen)


class Discovery:
    """Announce this node's TCPCLv4 listener on the link and report other nodes doing the same.

    Start ``run`` in a nursery (``await nursery.start(discovery.run)`` returns our registered
    service name), read :data:`PeerEvent`\\ s from ``events``, and cancel to stop. One instance
    runs once. Our own announcement, and any other carrying our node ID, is never reported.

    ``listen`` lists every (IP, port) our TCPCL listener accepts on, in the order peers should
    try them; 0.0.0.0 / :: stand for this machine's addresses of that family (see
    :func:`~ucp_dtn.discovery.expand_unspecified`). ``interfaces`` chooses where mDNS runs:
    None for all interfaces, or a list of interface IP addresses (``["127.0.0.1"]`` in tests,
    with ``ip_version=IPVersion.V4Only``). ``service_type`` isolates groups of nodes (tests use
    a random one); ``instance_name`` overrides the label derived from the node ID.

    Events go into a channel of ``max_buffered_events`` (``math.inf`` for no limit); when the
    consumer falls behind, newer events are dropped and counted rather than stalling discovery,
    and ``peers()`` always gives the current state.
    """

    def __init__(
        self,
        node_id: str,
        listen: Sequence[tuple[str, int]],
        *,
        roles: Iterable[str] = (),
        tls: bool = False,
        interfaces: Sequence[str] | None = None,
        ip_version: IPVersion | None = None,
        service_type: str = DEFAULT_SERVICE_TYPE,
        instance_name: str | None = None,
        record_ttl: int = DEFAULT_RECORD_TTL,
        resolve_timeout: float = 3.0,
        max_buffered_events: int | float = 256,
    ) -> None:
        check_service_type(service_type)
        if record_ttl < 1 or resolve_timeout <= 0:
            raise DiscoveryConfigError("record_ttl and resolve_timeout must be positive")
        self._node_id = node_id
        self._listen = list(listen)
        self._roles = frozenset(roles)
        self._tls = tls
        # Validate now, so that a bad configuration fails at construction, not inside run().
        encode_announcement(node_id, _expand(self._listen), self._roles, tls)
        self._instance = check_instance_name(
            instance_name if instance_name is not None else instance_name_for(node_id)
        )
        self._interfaces = list(interfaces) if interfaces is not None else None
        self._ip_version = ip_version
        self._service_type = service_type
        self._record_ttl = record_ttl
        self._resolve_timeout = resolve_timeout

        self._event_send, self._event_receive = trio.open_memory_channel[PeerEvent](
            max_buffered_events
        )
        self._state = _State.NEW
        self._closing = False
        self._lock = trio.Lock()
        self._zeroconf: Zeroconf | None = None
        self._info: ServiceInfo | None = None
        self._nursery: trio.Nursery | None = None
        self._peers: dict[str, DiscoveredPeer] = {}
        # Peers the sweep found silent: still retried, in case only packets were lost.
        self._silent: dict[str, str] = {}
        self._generations: dict[str, int] = {}
        self._counts = {
            "appeared": 0,
            "updated": 0,
            "disappeared": 0,
            "ignored_self": 0,
            "malformed": 0,
            "resolve_failures": 0,
            "expired": 0,
            "events_dropped": 0,
        }

    # ----------------------------------------------------------------------------- public API

    @property
    def events(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        """Peer events in the order they happened; closed when ``run`` returns."""
        return self._event_receive

    @property
    def node_id(self) -> str:
        """Our node ID (announcements carrying it are ignored)."""
        return self._node_id

    @property
    def service_name(self) -> str | None:
        """Our full DNS-SD instance name once registered (it may carry a ``-2`` after a clash)."""
        return self._info.name if self._info is not None else None

    def peers(self) -> tuple[DiscoveredPeer, ...]:
        """Every peer currently announced, sorted by node ID (then service name)."""
        return tuple(sorted(self._peers.values(), key=lambda p: (p.node_id, p.service_name)))

    def statistics(self) -> DiscoveryStatistics:
        """A snapshot of counters and state."""
        return DiscoveryStatistics(
            running=self._state is _State.RUNNING,
            service_name=self.service_name,
            peers=len(self._peers),
            events_buffered=self._event_receive.statistics().current_buffer_used,
            **self._counts,
        )

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, browse and report until cancelled; then unregister and close.

        ``task_status.started`` gets our registered service name once the announcement went out.
        Raises DiscoveryConfigError if this instance already ran.
        """
        if self._state is not _State.NEW:
            raise DiscoveryConfigError("a Discovery runs only once; make a new one")
        self._state = _State.RUNNING
        token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                zeroconf = await trio.to_thread.run_sync(self._open_zeroconf)
                self._zeroconf = zeroconf
                browser: ServiceBrowser | None = None
                try:
                    # Browse first: we hear others while our own probing (~1.5 s) goes on.
                    handler = functools.partial(self._on_browser_thread_event, token)
                    browser = await trio.to_thread.run_sync(
                        functools.partial(
                            ServiceBrowser, zeroconf, self._service_type, handlers=[handler]
                        )
                    )
                    async with self._lock:
                        info = await trio.to_thread.run_sync(self._service_info, None)
                        # Probes for our name first (~1.7 s), renaming on a clash ("name-2").
                        # Not abandoned on cancellation: closing zeroconf under a registration
                        # leaves its announcement task pending forever on zeroconf's loop.
                        await trio.to_thread.run_sync(
                            functools.partial(
                                zeroconf.register_service, info, allow_name_change=True
                            )
                        )
                        self._info = info
                    logger.info("announced %s as %s", self._node_id, info.name)
                    nursery.start_soon(self._sweep)
                    task_status.started(info.name)
                    await trio.sleep_forever()
                finally:
                    self._closing = True
                    with trio.CancelScope(shield=True), trio.move_on_after(_SHUTDOWN_TIMEOUT):
                        await trio.to_thread.run_sync(
                            functools.partial(self._close_zeroconf, zeroconf, browser),
                            abandon_on_cancel=True,
                        )
                    nursery.cancel_scope.cancel()
        finally:
            self._state = _State.FINISHED
            self._nursery = None
            self._peers.clear()  # no longer watched; no events for this (the channel closes)
            self._silent.clear()
            self._event_send.close()

    async def update(
        self,
        *,
        roles: Iterable[str] | None = None,
        tls: bool | None = None,
        listen: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Change what we announce (e.g. a node promoting itself to broker); peers see an update.

        Arguments left None keep their value. Works before and during ``run``; raises
        DiscoveryConfigError for a configuration that cannot be announced (nothing changes then).
        """
        new_roles = frozenset(roles) if roles is not None else self._roles
        new_tls = tls if tls is not None else self._tls
        new_listen = list(listen) if listen is not None else self._listen
        expanded = await trio.to_thread.run_sync(_expand, new_listen)
        encode_announcement(self._node_id, expanded, new_roles, new_tls)
        async with self._lock:
            self._roles, self._tls, self._listen = new_roles, new_tls, new_listen
            zeroconf, info = self._zeroconf, self._info
            if zeroconf is None or info is None or self._closing:
                return
            new_info = await trio.to_thread.run_sync(self._service_info, info.name)
            await trio.to_thread.run_sync(zeroconf.update_service, new_info)
            self._info = new_info
        logger.info("updated announcement of %s", self._node_id)

    # ----------------------------------------------------------- zeroconf side (worker threads)

    def _expanded_listen(self) -> list[tuple[str, int]]:
        return _expand(self._listen)

    def _open_zeroconf(self) -> Zeroconf:
        interfaces: Any = InterfaceChoice.All if self._interfaces is None else self._interfaces
        return Zeroconf(interfaces=interfaces, ip_version=self._ip_version)

    def _service_info(self, name: str | None) -> ServiceInfo:
        listen = self._expanded_listen()
        properties = encode_announcement(self._node_id, listen, self._roles, self._tls)
        hosts = list(dict.fromkeys(host.partition("%")[0] for host, _ in listen))
        return ServiceInfo(
            self._service_type,
            name or f"{self._instance}.{self._service_type}",
            port=listen[0][1],
            properties=properties,
            server=f"{self._instance}.local.",
            host_ttl=self._record_ttl,
            other_ttl=self._record_ttl,
            parsed_addresses=hosts,
        )

    def _resolve(self, name: str) -> ServiceInfo | None:
        assert self._zeroconf is not None
        timeout_ms = math.ceil(self._resolve_timeout * 1000)
        return self._zeroconf.get_service_info(self._service_type, name, timeout=timeout_ms)

    @staticmethod
    def _close_zeroconf(zeroconf: Zeroconf, browser: ServiceBrowser | None) -> None:
        try:
            if browser is not None:
                browser.cancel()
            zeroconf.unregister_all_services()  # goodbye packets: peers drop us at once
        finally:
            zeroconf.close()

    def _on_browser_thread_event(
        self,
        token: trio.lowlevel.TrioToken,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """Browser-thread callback: hand the change to trio and return."""
        try:
            trio.from_thread.run_sync(self._on_service_change, name, state_change, trio_token=token)
        except (trio.RunFinishedError, trio.Cancelled):
            pass  # trio is finishing; the browser is being cancelled too
        except Exception:
            # Nothing may escape into zeroconf's thread (it would die and stop browsing).
            logger.exception("handing %s %s to trio failed", state_change.name, name)

    # ------------------------------------------------------------------------ trio side

    def _on_service_change(self, name: str, state_change: ServiceStateChange) -> None:
        if self._closing or self._nursery is None:
            return
        key = name.lower()
        logger.debug("service %s: %s", state_change.name, name)
        if state_change is ServiceStateChange.Removed:
            self._generations[key] = self._generations.get(key, 0) + 1
            self._silent.pop(key, None)
            self._forget(key)
        else:
            self._silent.pop(key, None)
            self._nursery_start_resolution(name, key)

    async def _resolve_and_report(self, name: str, key: str, generation: int) -> None:
        try:
            info = await trio.to_thread.run_sync(self._resolve, name, abandon_on_cancel=True)
        except Exception as exc:  # zeroconf raises various errors while shutting down
            info = None
            logger.debug("resolving %s failed: %r", name, exc)
        if self._closing or self._generations.get(key) != generation:
            return
        if info is None:
            self._counts["resolve_failures"] += 1
            logger.info("could not resolve %s within %.1f s", name, self._resolve_timeout)
            return
        try:
            peer = peer_from_announcement(
                info.name, info.properties, info.parsed_addresses(), info.port
            )
        except MalformedAnnouncement as exc:
            self._counts["malformed"] += 1
            logger.warning("ignoring malformed announcement: %s", exc)
            self._forget(key)
            return
        if peer.node_id == self._node_id:
            self._counts["ignored_self"] += 1
            own = self._info.name.lower() if self._info is not None else None
            if own is not None and key != own:
                logger.warning("%s also claims our node ID %s; ignored", name, self._node_id)
            return
        previous = self._peers.get(key)
        if previous == peer:
            return
        self._peers[key] = peer
        if previous is None:
            logger.info("peer %s appeared at %s", peer.node_id, peer.addresses)
            self._counts["appeared"] += 1
            self._emit(PeerAppeared(peer))
        else:
            logger.info("peer %s updated its announcement", peer.node_id)
            self._counts["updated"] += 1
            self._emit(PeerUpdated(peer, previous))

    async def _sweep(self) -> None:
        """Every TTL/2, re-resolve each known (and each silent) peer; forget those that vanished."""
        while True:
            await trio.sleep(self._record_ttl / 2)
            for key, name in [
                *((k, p.service_name) for k, p in self._peers.items()),
                *self._silent.items(),
            ]:
                generation = self._generations.get(key, 0)
                try:
                    info = await trio.to_thread.run_sync(
                        self._resolve, name, abandon_on_cancel=True
                    )
                except Exception as exc:  # zeroconf raises various errors while shutting down
                    info = None
                    logger.debug("re-resolving %s failed: %r", name, exc)
                if self._closing:
                    return
                if self._generations.get(key, 0) != generation:
                    continue  # the browser reported a change meanwhile; that one wins
                if info is not None and key in self._silent:
                    del self._silent[key]
                    self._nursery_start_resolution(name, key)
                elif info is None and key in self._peers:
                    logger.info("%s stopped answering", self._peers[key].node_id)
                    self._silent[key] = name
                    self._counts["expired"] += 1
                    self._forget(key)

    def _nursery_start_resolution(self, name: str, key: str) -> None:
        generation = self._generations.get(key, 0) + 1
        self._generations[key] = generation
        if self._nursery is not None:
            self._nursery.start_soon(self._resolve_and_report, name, key, generation)

    def _forget(self, key: str) -> None:
        peer = self._peers.pop(key, None)
        if peer is not None:
            logger.info("peer %s disappeared", peer.node_id)
            self._counts["disappeared"] += 1
            self._emit(PeerDisappeared(peer))

    def _emit(self, event: PeerEvent) -> None:
        try:
            self._event_send.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._counts["events_dropped"] += 1
            logger.warning("event channel full or closed; dropped %s", type(event).__name__)
