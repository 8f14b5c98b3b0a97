"""The handshake rules of TCPCLv4: contact header validation (RFC 9174 §4.3) and session
parameter negotiation (§4.7, §4.8), as pure functions.

They raise :class:`RemoteProtocolError` carrying the SESS_TERM reason to send (or none, where
the RFC says to just close); :class:`~convergence.tcpcl.session.Session` applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .codes import VERSION, SessTermReason
from .config import SessionConfig, TlsPolicy
from .errors import RemoteProtocolError
from .messages import ContactHeader, ExtensionItem, SessInit

__all__ = ["SessionParameters", "negotiate_contact", "negotiate_session"]

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":".
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S*\Z")


@dataclass(frozen=True, slots=True)
class SessionParameters:
    """The outcome of session negotiation (RFC 9174 §4.7) as seen by one entity."""

    keepalive_interval: int
    """Session Keepalive in seconds: the minimum of both offers; 0 means disabled."""
    segment_size: int
    """Largest segment payload we send: the peer's Segment MRU capped by our own limit."""
    peer_segment_mru: int
    """The peer's Segment MRU (our Segment MTU)."""
    peer_transfer_mru: int
    """The peer's Transfer MRU: the largest bundle we may send it."""
    peer_node_id: str
    """The Node ID from the peer's SESS_INIT ("" if it did not disclose one). Not
    authenticated by the core; the TLS layer may check it against the certificate."""
    peer_extensions: tuple[ExtensionItem, ...]
    """The peer's session extension items."""
    tls: bool
    """Whether the session runs over TLS."""


def negotiate_contact(
    ours: ContactHeader, theirs: ContactHeader, *, active: bool, policy: TlsPolicy
) -> bool:
    """Validate the peer's contact header; return the negotiated "Enable TLS" value.

    :raises RemoteProtocolError: the session cannot go on; ``term_reason`` is ``None`` when
        the connection is to be closed without SESS_TERM.
    """
    if theirs.version != VERSION:
        if active:
            # RFC 9174 §4.3: "If the active entity receives a Contact Header with a lower
            # protocol version than the one sent earlier on the TCP connection, the TCP
            # connection SHALL be closed." (A higher one is no valid reply either.)
            raise RemoteProtocolError(
                f"peer answered with TCPCL version {theirs.version}, we sent {VERSION}"
            )
        # RFC 9174 §4.3: "If the passive entity receives a Contact Header containing a
        # version that is not a version of the TCPCL that the entity implements, then the
        # entity SHALL send its Contact Header and immediately terminate the session with a
        # reason code of "Version mismatch"."
        raise RemoteProtocolError(
            f"peer speaks TCPCL version {theirs.version}, we implement only {VERSION}",
            term_reason=SessTermReason.VERSION_MISMATCH,
        )
    # RFC 9174 §4.3: "Negotiation of the Enable TLS parameter is performed by taking the
    # logical AND of the two Contact Headers' CAN_TLS flags."
    tls = ours.can_tls and theirs.can_tls
    if policy is TlsPolicy.REQUIRED and not tls:
        # RFC 9174 §4.3: "If the Enable TLS state is unacceptable, the entity SHALL terminate
        # the session with a reason code of "Contact Failure"."
        raise RemoteProtocolError(
            "our policy requires TLS but the peer did not set CAN_TLS",
            term_reason=SessTermReason.CONTACT_FAILURE,
        )
    return tls


def negotiate_session(
    config: SessionConfig, ours: SessInit, theirs: SessInit, *, tls: bool
) -> SessionParameters:
    """Validate the peer's SESS_INIT and derive the session parameters.

    :raises RemoteProtocolError: with ``term_reason`` "Contact Failure".
    """
    for item in theirs.extensions:
        # RFC 9174 §4.8: "If a TCPCL entity receives a Session Extension Item with an unknown
        # Item Type and the CRITICAL flag of 1, the entity SHALL terminate the TCPCL session
        # with SESS_TERM reason code of "Contact Failure"."
        if item.critical and item.item_type not in config.known_session_extensions:
            raise RemoteProtocolError(
                f"unknown critical session extension item type 0x{item.item_type:04x}",
                term_reason=SessTermReason.CONTACT_FAILURE,
            )
    # RFC 9174 §4.7: "If either the Transfer MRU or Segment MRU is unacceptable, the entity
    # SHALL terminate the session with a reason code of "Contact Failure"."
    if theirs.segment_mru < config.min_peer_segment_mru:
        raise RemoteProtocolError(
            f"peer segment MRU {theirs.segment_mru} is below our minimum "
            f"{config.min_peer_segment_mru}",
            term_reason=SessTermReason.CONTACT_FAILURE,
        )
    # RFC 9174 §4.6: "Every Node ID SHALL be a URI consistent with the requirements of
    # [RFC3986]"; "A zero-length Node ID SHALL be used to indicate the lack of Node ID".
    if theirs.node_id and not _URI_SCHEME.match(theirs.node_id):
        raise RemoteProtocolError(
            f"peer node ID {theirs.node_id!r} is not a URI",
            term_reason=SessTermReason.CONTACT_FAILURE,
        )
    return SessionParameters(
        # RFC 9174 §4.7: "Negotiation of the Session Keepalive parameter is performed by
        # taking the minimum of the two Keepalive Interval values from the two SESS_INIT
        # messages." [...] "a negotiated Session Keepalive of zero indicates that
        # KEEPALIVEs are disabled."
        keepalive_interval=min(ours.keepalive_interval, theirs.keepalive_interval),
        # RFC 9174 §4.7: "A transmitting peer can send individual segments with any size
        # smaller than the Segment MTU".
        segment_size=min(theirs.segment_mru, config.max_segment_size),
        peer_segment_mru=theirs.segment_mru,
        peer_transfer_mru=theirs.transfer_mru,
        peer_node_id=theirs.node_id,
        peer_extensions=theirs.extensions,
        tls=tls,
    )
