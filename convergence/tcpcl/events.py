"""Events a :class:`~convergence.tcpcl.session.Session` hands to its user.

They map onto the convergence-layer indications of RFC 9174 §3.1: session state changes,
transmission progress/success/failure for our transfers, reception initialized / progress /
success / failure for the peer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .codes import MsgRejectReason, SessTermReason, XferRefuseReason
from .messages import ExtensionItem
from .negotiation import SessionParameters

__all__ = [
    "Event",
    "IncomingTransfer",
    "IncomingTransferAborted",
    "MessageRejected",
    "SegmentReceived",
    "SessionClosed",
    "SessionEstablished",
    "SessionTerminating",
    "StartTls",
    "TransferCompleted",
    "TransferProgress",
    "TransferReceived",
    "TransferRefused",
]


class Event:
    """Base class of all session events."""

    __slots__ = ()


# -- session life cycle -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls(Event):
    """Both contact headers set CAN_TLS and our policy allows TLS: start the TLS handshake now
    (the active entity is the TLS client, RFC 9174 §4.4.3), then call
    :meth:`Session.tls_established`. Everything after this point goes through TLS."""


@dataclass(frozen=True, slots=True)
class SessionEstablished(Event):
    """SESS_INIT was exchanged and negotiated; transfers may start (RFC 9174 §4.7)."""

    parameters: SessionParameters
    """The negotiated session parameters and what the peer told us about itself."""


@dataclass(frozen=True, slots=True)
class SessionTerminating(Event):
    """A SESS_TERM was exchanged: no new transfers; transfers in progress may finish."""

    reason: SessTermReason | int
    """The reason code of the SESS_TERM that started the termination."""
    by_peer: bool
    """Whether the peer initiated the termination (we replied)."""


@dataclass(frozen=True, slots=True)
class SessionClosed(Event):
    """The session is over: write out :meth:`Session.data_to_send`, then close the
    connection. Always the last event."""

    clean: bool
    """Both SESS_TERM messages were exchanged and every transfer in progress finished."""
    reason: SessTermReason | int | None
    """Reason of the SESS_TERM sent or received, or ``None`` when there was none."""
    unacknowledged: tuple[int, ...] = ()
    """Our transfers (IDs from :meth:`Session.send_transfer`) that were neither completed nor
    refused: never started, or not fully acknowledged. Retry them on another session."""
    error: str | None = None
    """What went wrong, for sessions that ended without a clean termination."""


@dataclass(frozen=True, slots=True)
class MessageRejected(Event):
    """The peer sent MSG_REJECT for one of our messages (RFC 9174 §5.1.2)."""

    reason: MsgRejectReason | int
    """Why the peer rejected it."""
    message_type: int
    """Message header octet of the rejected message."""


# -- our transfers (transmission) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferProgress(Event):
    """The peer acknowledged part of one of our transfers (intermediate XFER_ACK)."""

    transfer_id: int
    """The transfer, as returned by :meth:`Session.send_transfer`."""
    acknowledged_length: int
    """Octets acknowledged so far."""
    total_length: int
    """Length of the whole transfer."""


@dataclass(frozen=True, slots=True)
class TransferCompleted(Event):
    """The peer acknowledged the last segment: the bundle was delivered."""

    transfer_id: int
    """The transfer, as returned by :meth:`Session.send_transfer`."""
    length: int
    """The transfer's length in octets: all of it was acknowledged."""


@dataclass(frozen=True, slots=True)
class TransferRefused(Event):
    """The peer refused one of our transfers (XFER_REFUSE); we stopped sending it."""

    transfer_id: int
    """The transfer, as returned by :meth:`Session.send_transfer`."""
    reason: XferRefuseReason | int
    """The peer's refusal reason (unknown codes stay ``int``; treat them as UNKNOWN)."""
    acknowledged_length: int
    """Octets the peer had acknowledged before refusing."""


# -- the peer's transfers (reception) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingTransfer(Event):
    """The peer started a transfer (XFER_SEGMENT with START) that we accept so far.

    Call :meth:`Session.refuse_transfer` to refuse it early (e.g. on its total length)."""

    transfer_id: int
    """The peer's Transfer ID."""
    extensions: tuple[ExtensionItem, ...]
    """The transfer extension items of the START segment."""
    total_length: int | None
    """The Transfer Length extension's value, if the peer sent one."""


@dataclass(frozen=True, slots=True)
class SegmentReceived(Event):
    """One segment of an incoming transfer (only with ``SessionConfig.reassemble=False``)."""

    transfer_id: int
    """The peer's Transfer ID."""
    data: bytes | memoryview = field(repr=False)
    """The segment's payload octets (may be empty); a ``memoryview`` shares the received
    chunk, which is immutable and safe to keep."""
    received_length: int
    """Octets of this transfer received so far, including ``data``."""
    end: bool
    """Whether this is the transfer's last segment."""


@dataclass(frozen=True, slots=True)
class TransferReceived(Event):
    """The last segment of an incoming transfer arrived."""

    transfer_id: int
    """The peer's Transfer ID."""
    data: bytes | None = field(repr=False)
    """The whole bundle; ``None`` with ``SessionConfig.reassemble=False``."""
    length: int
    """Octets received in the whole transfer (also with ``reassemble=False``)."""
    extensions: tuple[ExtensionItem, ...]
    """The transfer extension items of the START segment."""
    ack_pending: bool
    """The final XFER_ACK waits for :meth:`Session.ack_transfer` (or
    :meth:`Session.refuse_transfer`); it is ``False`` when it was sent automatically."""


@dataclass(frozen=True, slots=True)
class IncomingTransferAborted(Event):
    """An incoming transfer will not complete: the session refused it by itself, or the
    session ended first. Discard any partial data."""

    transfer_id: int
    """The peer's Transfer ID."""
    reason: XferRefuseReason | None
    """The refusal reason we sent, or ``None`` when the session ended."""
    received_length: int
    """Octets received before the abort."""
