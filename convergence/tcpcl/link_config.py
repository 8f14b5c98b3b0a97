"""Settings of the TCPCLv4 trio adapter: :class:`LinkConfig`, one per node, for both roles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .codes import XferRefuseReason
from .config import SessionConfig, TlsPolicy
from .messages import ExtensionItem
from .sink import ReceiveBudget, SinkFactory
from .tls import TlsSettings

__all__ = ["LinkConfig", "TransferFilter"]

_MIB = 1024 * 1024

#: ``filter(total_length)`` for an incoming transfer that starts; a reason refuses it.
TransferFilter = Callable[[int | None], XferRefuseReason | None]


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Settings of our side of TCPCLv4 sessions (both roles)."""

    node_id: str
    """Our Node ID as EID text (``"dtn://a/"``, ``"ipn:7.0"``), sent in SESS_INIT."""
    keepalive_s: int = 30
    """Keepalive Interval we offer (RFC 9174 §4.6); 0 disables keepalives and idle timeout."""
    segment_mru: int = 16 * _MIB
    """Largest segment we accept."""
    transfer_mru: int = 1024 * _MIB
    """Largest bundle we accept (held by its sink: in memory unless ``sink_factory`` says
    otherwise)."""
    tls: TlsSettings | None = None
    """TLS contexts and policy; ``None``: never TLS."""
    establish_timeout_s: float = 10.0
    """Seconds from TCP connection to established session (contact headers, TLS, SESS_INIT)."""
    incoming_queue: int = 16
    """Complete incoming transfers waiting for :meth:`TcpclLink.receive`; when full, we stop
    reading from the connection (receive backpressure). The peer's keepalives then wait unread
    too: a consumer stalled for twice the keepalive interval ends the session ("Idle
    timeout")."""
    transfer_filter: TransferFilter | None = None
    """Called when an incoming transfer starts, with its Transfer Length extension value (or
    ``None``); a returned reason refuses the transfer before its data arrives (e.g. store
    quota reached: ``NO_RESOURCES``)."""
    max_segment_size: int = 16 * _MIB
    """Largest segment we send (the peer's Segment MRU may lower it). Each segment is
    acknowledged, so this is also the granularity of the sender's progress."""
    idle_timeout_s: float | None = None
    """End the session (SESS_TERM "Idle timeout", RFC 9174 §6.2) when no message other than
    KEEPALIVE arrived for this long; ``None``: never."""
    close_timeout_s: float = 10.0
    """How long :meth:`TcpclLink.aclose` waits for transfers in progress before aborting."""
    sink_factory: SinkFactory | None = None
    """Where each incoming transfer's data goes (see :mod:`convergence.tcpcl.sink`), or a
    reason to refuse it; ``None``: in memory. Each segment is acknowledged once its sink took
    it; the final XFER_ACK waits for :meth:`IncomingBundleTransfer.accept`."""
    receive_budget: ReceiveBudget | None = None
    """Memory for octets read and not yet taken by a sink, shared by the links that use the same
    budget; ``None``: bounded per link only (by the Segment MRU and the read size)."""
    send_window_min: int | None = None
    """Send window floor (see ``SessionConfig.send_window_min``): ``None`` sends as fast as the
    connection takes it; a value keeps about ``send_window_delay_s`` of data unacknowledged."""
    send_window_delay_s: float = 0.25
    """Seconds of data at the measured acknowledgement rate that the send window allows."""
    session_extensions: tuple[ExtensionItem, ...] = ()
    """Session extension items we send in SESS_INIT (RFC 9174 §4.8)."""

    def __post_init__(self) -> None:
        if self.incoming_queue < 1:
            raise ValueError("incoming_queue must be at least 1")
        if self.establish_timeout_s <= 0 or self.close_timeout_s < 0:
            raise ValueError("timeouts must be positive")

    def tls_policy(self, *, active: bool) -> TlsPolicy:
        """What we say about TLS in our contact header in the given role."""
        tls = self.tls
        if tls is None or tls.context_for(active=active) is None:
            return TlsPolicy.DISABLED
        return TlsPolicy.REQUIRED if tls.require else TlsPolicy.OPTIONAL

    def session_config(self, *, active: bool) -> SessionConfig:
        """The sans-IO session settings for one role."""
        return SessionConfig(
            node_id=self.node_id,
            tls=self.tls_policy(active=active),
            keepalive_interval=self.keepalive_s,
            segment_mru=self.segment_mru,
            transfer_mru=self.transfer_mru,
            max_segment_size=self.max_segment_size,
            establishment_timeout=self.establish_timeout_s,
            idle_session_timeout=self.idle_timeout_s,
            auto_ack_final=False,
            auto_ack_segments=False,
            reassemble=False,
            send_window_min=self.send_window_min,
            send_window_delay=self.send_window_delay_s,
            session_extensions=self.session_extensions,
        )
