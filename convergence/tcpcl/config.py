"""Local settings of a TCPCLv4 session: what we offer in our contact header and SESS_INIT,
what we accept from the peer, and how the receiving side acknowledges."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .codes import TransferExtensionType
from .errors import LocalProtocolError
from .messages import ExtensionItem

__all__ = ["SessionConfig", "TlsPolicy"]

_MIB = 1024 * 1024


class TlsPolicy(enum.Enum):
    """Local TLS policy (RFC 9174 §4.3 "Enable TLS")."""

    #: Send CAN_TLS = 0; the session never uses TLS.
    DISABLED = "disabled"
    #: Send CAN_TLS = 1; use TLS when the peer sets CAN_TLS too, plain TCP otherwise.
    OPTIONAL = "optional"
    #: Send CAN_TLS = 1; end the session with "Contact Failure" unless the peer sets it too
    #: (RFC 9174 §4.3: "If the Enable TLS state is unacceptable, the entity SHALL terminate
    #: the session with a reason code of "Contact Failure".").
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Settings for one :class:`~convergence.tcpcl.session.Session`.

    The defaults suit a loopback or LAN link carrying bundles up to a few hundred MiB:
    large segments (few messages, few syscalls), keepalives every 30 s.
    """

    node_id: str = ""
    """Our Node ID URI sent in SESS_INIT; empty to not disclose it (RFC 9174 §4.6)."""
    tls: TlsPolicy = TlsPolicy.DISABLED
    """Whether we offer, accept or require TLS."""
    keepalive_interval: int = 30
    """Keepalive Interval we offer, seconds (0 disables keepalives and the idle timeout)."""
    segment_mru: int = 16 * _MIB
    """Largest segment payload we accept; also bounds what the reader buffers."""
    transfer_mru: int = 256 * _MIB
    """Largest bundle we accept; bounds the memory of a transfer being reassembled."""
    max_segment_size: int = 16 * _MIB
    """Largest segment payload we send (the peer's Segment MRU may lower it further)."""
    min_peer_segment_mru: int = 1
    """Smallest peer Segment MRU we find acceptable (RFC 9174 §4.7, §8.10)."""
    establishment_timeout: float = 30.0
    """Seconds from the start of the session to a negotiated SESS_INIT (contact header, TLS
    and SESS_INIT together); RFC 9174 §4.1 says the contact header part "SHOULD" be at most
    60 s."""
    idle_session_timeout: float | None = None
    """End the session cleanly (SESS_TERM "Idle timeout") when no message other than
    KEEPALIVE has been received for this long (RFC 9174 §6.2); ``None`` never."""
    auto_ack_segments: bool = True
    """Acknowledge every non-final segment as soon as it has been received."""
    auto_ack_final: bool = True
    """Acknowledge the END segment at once. Set to ``False`` to send the final XFER_ACK only
    when :meth:`Session.ack_transfer` is called (after the bundle is stored durably)."""
    reassemble: bool = True
    """Deliver each incoming transfer whole in ``TransferReceived.data``. When ``False``,
    each segment's data comes in a ``SegmentReceived`` event and nothing is kept."""
    send_transfer_length: bool = True
    """Add a Transfer Length extension item to transfers sent in more than one segment."""
    session_extensions: tuple[ExtensionItem, ...] = ()
    """Session extension items we send in SESS_INIT."""
    known_session_extensions: frozenset[int] = frozenset()
    """Session extension types we understand; a CRITICAL item of another type ends the
    session with "Contact Failure" (RFC 9174 §4.8)."""
    known_transfer_extensions: frozenset[int] = frozenset({TransferExtensionType.TRANSFER_LENGTH})
    """Transfer extension types we understand; a transfer with a CRITICAL item of another type
    is refused with "Extension Failure" (RFC 9174 §5.2.5)."""
    first_transfer_id: int = 0
    """Our first Transfer ID; RFC 9174 §5.2.1 says start at zero and count up by one."""
    send_window_min: int | None = None
    """Bound on our octets sent and not yet acknowledged (all transfers together), or ``None``
    for no bound (segments go out as fast as the connection takes them). With a bound, the
    window is the larger of this and ``send_window_delay`` seconds at the measured rate of the
    peer's acknowledgements, so a slow link holds little unacknowledged data (little is lost
    when it breaks: what was acknowledged can be kept, RFC 9171 §5.8) and a fast one is not
    slowed down. At least one segment is always allowed."""
    send_window_delay: float = 0.25
    """Seconds of data, at the measured acknowledgement rate, the send window allows."""

    def __post_init__(self) -> None:
        if not 0 <= self.keepalive_interval <= 0xFFFF:
            raise LocalProtocolError("keepalive_interval must be within 0..65535 seconds")
        for name in ("segment_mru", "transfer_mru", "max_segment_size", "first_transfer_id"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
                raise LocalProtocolError(f"{name} must fit in 64 bits, got {value}")
        if self.max_segment_size < 1:
            raise LocalProtocolError("max_segment_size must be at least 1")
        if self.send_window_min is not None and self.send_window_min < 1:
            raise LocalProtocolError("send_window_min must be at least 1 (or None)")
        if not self.send_window_delay > 0:
            raise LocalProtocolError("send_window_delay must be positive")
        if self.establishment_timeout <= 0:
            raise LocalProtocolError("establishment_timeout must be positive")
        if self.idle_session_timeout is not None and self.idle_session_timeout <= 0:
            raise LocalProtocolError("idle_session_timeout must be positive or None")
        if len(self.node_id.encode("utf-8")) > 0xFFFF:
            raise LocalProtocolError("node_id longer than 65535 octets")
