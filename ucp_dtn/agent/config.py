"""Configuration of one bundle node (:class:`NodeConfig`).

A frozen value validated when built, so a bad configuration fails before ``BundleNode.run``
opens anything. The daemon builds it from its settings table (``ucp_dtn.daemon.config``: each
entry feeds one field, and help shows the field's default); tests build it directly. Durations
are seconds (``convergence.quantities.parse_duration`` reads ``"10s"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bpv7 import DecodeError, EndpointID, parse_eid
from convergence.quantities import DEFAULT_TCPCL_PORT

from .errors import ConfigError
from .routing import RoutePattern

if TYPE_CHECKING:
    from convergence.tcpcl.tls import TlsSettings

    from .security import SecurityPolicy

__all__ = [
    "DEFAULT_LIFETIME_S",
    "DEFAULT_STORE_QUOTA",
    "NodeConfig",
    "SessionCheck",
    "parse_node_id",
]

SessionCheck = Callable[[str, "bytes | None"], "str | None"]
"""Whether a session may go on: ``(peer node ID, peer certificate DER) -> None or why not``."""

DEFAULT_STORE_QUOTA = 1024**3
"""Default store quota: 1 GiB of bundle bytes."""

DEFAULT_LIFETIME_S = 24 * 3600.0
"""Default lifetime of bundles this node creates: one day."""

_KIB = 1024
_MIB = 1024 * 1024


def parse_node_id(text: str) -> EndpointID:
    """Parse ``text`` as a node ID (``dtn://name/`` or ``ipn:N.0``); :class:`ConfigError` if it
    is not one (RFC 9171 §4.2.5.2: a node ID is an EID "that identifies the node")."""
    try:
        eid = parse_eid(text)
    except DecodeError as exc:
        raise ConfigError(f"invalid node ID {text!r}: {exc.message}") from None
    # RFC 9171 §4.2.5.1.1: only a dtn EID with an empty demux may be a node ID; §4.2.5.1.2:
    # only an ipn EID with service number zero.
    if not eid.is_node_id:
        raise ConfigError(
            f"{text!r} is not a node ID (use dtn://name/ with an empty demux, or ipn:N.0)"
        )
    return eid


def _check_address(what: str, address: tuple[str, int]) -> None:
    if (
        not isinstance(address, tuple)
        or len(address) != 2
        or not isinstance(address[0], str)
        or type(address[1]) is not int
    ):
        raise ConfigError(f"{what} must be (host, port) pairs, got {address!r}")
    if not 0 <= address[1] <= 65535:
        raise ConfigError(f"{what}: port {address[1]} out of range 0..65535")


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a :class:`~ucp_dtn.agent.BundleNode` needs to run."""

    node_id: str
    """This node's ID: ``"dtn://name/"`` or ``"ipn:N.0"``."""
    workdir: Path | None
    """Directory of the persistent state (the store lives in ``workdir/store``); ``None`` keeps
    bundles in memory only."""
    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", DEFAULT_TCPCL_PORT),)
    """TCPCLv4 listening addresses; port 0 picks a free port (see ``listen_addresses``)."""
    static_peers: tuple[tuple[str, int], ...] = ()
    """Peers to keep a session with: connected at start and reconnected with backoff forever."""
    static_routes: tuple[tuple[str, str], ...] = ()
    """``(EID pattern, next-hop node ID)`` routes; patterns are ``"dtn://b/*"``, ``"ipn:5.*"``,
    an exact EID, a node ID (the whole node) or ``"*"`` (default route)."""
    discovery: bool = False
    """Announce our listener and connect to announced peers over DNS-SD (zeroconf)."""
    discovery_interfaces: tuple[str, ...] | None = None
    """IP addresses of the interfaces discovery runs on (``None``: all)."""
    discovery_service_type: str | None = None
    """DNS-SD service type to announce and browse (``None``: ``_dtn-bundle._tcp.local.``);
    a different one isolates a group of nodes (tests)."""
    roles: tuple[str, ...] = ()
    """UCP roles this node runs, advertised through discovery."""
    store_quota_bytes: int = DEFAULT_STORE_QUOTA
    """Most bundle bytes the store holds; transfers beyond it are refused with NO_RESOURCES."""
    tls: TlsSettings | None = None
    """TLS for TCPCL sessions, or ``None`` for plain TCP."""
    keepalive_s: int = 30
    """TCPCL keepalive interval we offer (0 disables keepalives)."""
    custody_retransmit_s: float = 30.0
    """How long a custodian waits for a custody signal before sending the bundle again."""
    custody_signal_delay_s: float = 0.05
    """How long custody signals for one custodian are collected before they leave together."""
    janitor_interval_s: float = 1.0
    """Longest sleep of the janitor (expiry, custody timers, route expiry) between checks."""
    route_advert_interval_s: float = 10.0
    """How often each neighbour gets our route advertisement; learned routes live 3 intervals."""
    default_lifetime_s: float = DEFAULT_LIFETIME_S
    """Lifetime of bundles created by ``send`` without an explicit ``lifetime_s``."""
    hop_limit: int = 64
    """Hop limit of the Hop Count Block added to bundles created by ``send`` (0 adds none):
    a bound on how long a bundle can circulate in a routing loop."""
    reconnect_max_s: float = 60.0
    """Longest wait between attempts to reach a static peer (the backoff doubles up to it)."""
    reactive_fragmentation: bool = True
    """When a TCPCL session ends in the middle of a transfer, keep what was acknowledged: the
    receiver keeps the prefix as a fragment, the sender sends only the rest (RFC 9171 §5.8 at
    the RFC 9174 §5.2.3 acknowledged length). Both peers must have it on (announced in
    SESS_INIT); off, an interrupted transfer starts again from its first octet."""
    receive_memory_bytes: int = 64 * _MIB
    """Memory for incoming transfers, all sessions together: octets read and not yet written
    to their spool file, and small transfers kept in memory. Past it, sessions stop reading
    (TCP flow control holds their peers back) and transfers go to spool files."""
    spool_threshold_bytes: int = 1 * _MIB
    """Incoming transfers larger than this go to a spool file beside the store (in-memory
    nodes keep them in memory)."""
    segment_bytes: int = 256 * _KIB
    """Largest TCPCL segment we send, and the Segment MRU we offer (RFC 9174 §4.7): each
    segment is acknowledged, so this is the granularity of what a cut transfer keeps."""
    send_window_s: float = 0.25
    """Unacknowledged data a session keeps in flight, in seconds at the rate the peer
    acknowledges (at least two segments): little to lose when a slow link breaks, no limit on a
    fast one."""
    security: SecurityPolicy | None = None
    """BPSec (RFC 9172): which operations this node adds, requires, checks and accepts, with
    which keys (:mod:`ucp_dtn.agent.security`); ``None``: security blocks are carried as
    received and never checked."""
    session_check: SessionCheck | None = None
    """Asked about every session once it is established (and again by
    :meth:`~ucp_dtn.agent.BundleNode.recheck_sessions`): given the peer's node ID and TLS
    certificate (DER, ``None`` without TLS), ``None`` admits it, a text closes it and says why
    (a trusted mesh refuses revoked certificates this way)."""

    def __post_init__(self) -> None:
        parse_node_id(self.node_id)
        if self.workdir is not None and not isinstance(self.workdir, Path):
            object.__setattr__(self, "workdir", Path(self.workdir))
        if self.discovery_interfaces is not None and not isinstance(
            self.discovery_interfaces, tuple
        ):
            object.__setattr__(self, "discovery_interfaces", tuple(self.discovery_interfaces))
        for field_name in ("listen", "static_peers", "static_routes", "roles"):
            value = getattr(self, field_name)
            if not isinstance(value, tuple):
                object.__setattr__(self, field_name, tuple(value))
        for address in self.listen:
            _check_address("listen", address)
        for address in self.static_peers:
            _check_address("static_peers", address)
        for route in self.static_routes:
            if not isinstance(route, tuple) or len(route) != 2:
                raise ConfigError(f"static_routes must be (pattern, next hop) pairs, got {route!r}")
            RoutePattern.parse(route[0])
            parse_node_id(route[1])
        for role in self.roles:
            if not isinstance(role, str) or not role:
                raise ConfigError(f"roles must be non-empty strings, got {role!r}")
        if type(self.store_quota_bytes) is not int or self.store_quota_bytes <= 0:
            raise ConfigError(
                f"store_quota_bytes must be a positive integer, got {self.store_quota_bytes!r}"
            )
        if type(self.keepalive_s) is not int or not 0 <= self.keepalive_s <= 0xFFFF:
            # RFC 9174 §4.6: the Keepalive Interval is "A 16-bit unsigned integer".
            raise ConfigError(f"keepalive_s must be within 0..65535, got {self.keepalive_s!r}")
        for name in (
            "custody_retransmit_s",
            "custody_signal_delay_s",
            "janitor_interval_s",
            "route_advert_interval_s",
            "default_lifetime_s",
            "reconnect_max_s",
        ):
            _check_positive(name, getattr(self, name))
        for name in ("receive_memory_bytes", "spool_threshold_bytes", "segment_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.receive_memory_bytes < 2 * self.segment_bytes:
            raise ConfigError(
                f"receive_memory_bytes ({self.receive_memory_bytes}) must hold at least two "
                f"segments (segment_bytes {self.segment_bytes})"
            )
        _check_positive("send_window_s", self.send_window_s)
        if type(self.hop_limit) is not int or not 0 <= self.hop_limit <= 255:
            # RFC 9171 §4.4.3: "The hop limit MUST be in the range 1 through 255."
            raise ConfigError(f"hop_limit must be within 0..255 (0: none), got {self.hop_limit!r}")

    @property
    def node_eid(self) -> EndpointID:
        """``node_id`` as an endpoint ID."""
        return parse_eid(self.node_id)

    @property
    def store_path(self) -> Path | None:
        """Where the persistent store lives (``workdir/store``), or ``None`` in memory."""
        return None if self.workdir is None else self.workdir / "store"
