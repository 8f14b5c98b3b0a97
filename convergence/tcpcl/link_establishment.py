"""What a :class:`~convergence.tcpcl.link.TcpclLink` decides while its session is being
established (contact header, TLS, SESS_INIT: RFC 9174 §4): the TLS handshake, whether the
peer's Node ID is authenticated by its certificate, and which error says why establishment
failed.

On ``StartTls`` the stream is wrapped in a :class:`~convergence.tcpcl.tlsstream.TlsStream`
(``ssl`` memory BIOs like ``trio.SSLStream``, but about 2.5 times faster for bulk data); once
SESS_INIT is exchanged, the peer's Node ID is checked against its certificate (§4.4.4.3).

The establishment loop itself is the link's (``TcpclLink._establish``: write what the session
has to send, read, feed, repeat until ``SessionEstablished``); these are its decisions, kept
apart from the link's state so that each reads on its own. Private to :mod:`convergence.tcpcl`.
"""

from __future__ import annotations

import logging

import trio

from .codes import SessTermReason
from .config import TlsPolicy
from .events import SessionClosed
from .link_config import LinkConfig
from .link_errors import (
    EstablishmentError,
    EstablishmentTimeout,
    NodeIdMismatchError,
    TlsError,
    TlsRequiredError,
    describe_stream_error,
    reason_name,
)
from .tls import NodeIdAuthResult, authenticate_node_id
from .tlsstream import TlsStream

__all__ = ["establishment_error", "node_id_authentication_error", "start_tls"]

logger = logging.getLogger(__name__)


async def start_tls(
    stream: trio.abc.Stream,
    config: LinkConfig,
    *,
    active: bool,
    server_hostname: str | None,
    peer: str,
) -> TlsStream:
    """Run the TLS handshake over ``stream`` (RFC 9174 §4.4.3: the active entity is the TLS
    client); the TLS stream to use from now on.

    :raises TlsError: the handshake failed (``peer`` names the peer in the message).
    """
    tls = config.tls
    context = tls.context_for(active=active) if tls is not None else None
    # The session asks for TLS only if our contact header offered it, i.e. with a context.
    assert context is not None
    tls_stream = TlsStream(
        stream,
        context,
        server_side=not active,
        server_hostname=server_hostname if active else None,
    )
    try:
        await tls_stream.do_handshake()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        description = describe_stream_error(exc)
        raise TlsError(f"TLS handshake with {peer} failed: {description}") from exc
    return tls_stream


def node_id_authentication_error(
    node_id: str, certificate: bytes | None, *, require_node_id: bool, peer: str
) -> str | None:
    """Why the Node ID of the peer's SESS_INIT is not authenticated by its ``certificate``
    (RFC 9174 §4.4.4.3); ``None`` if it is, or if the certificate names no Node ID and our
    policy does not require one."""
    result = authenticate_node_id(node_id, certificate)
    if result is NodeIdAuthResult.SUCCESS:
        return None
    if result is NodeIdAuthResult.ABSENT and not require_node_id:
        logger.info("peer node ID %r not authenticated: its certificate names none", node_id)
        return None
    # RFC 9174 §4.4.4.3: when NODE-ID authentication fails, the entity terminates the
    # session with the reason code "Contact Failure" (a certificate naming no Node ID is
    # refused too when our policy requires authentication, §4.4.5).
    if result is NodeIdAuthResult.FAILURE:
        return f"peer node ID {node_id!r} does not match its certificate ({peer})"
    if not node_id:
        return f"peer {peer} did not disclose its node ID"
    return f"peer node ID {node_id!r} cannot be authenticated: its certificate names no node ID"


def establishment_error(
    closed: SessionClosed,
    *,
    peer: str,
    timeout_s: float,
    timed_out: bool,
    policy: TlsPolicy,
    tls_requested: bool,
    tls_started: bool,
    terminating: bool,
    terminating_by_peer: SessTermReason | int | None,
    auth_error: str | None,
    stream_error: str | None,
) -> EstablishmentError:
    """The error that says why a session ended (``closed``) before it was established.

    :param timed_out: the establishment deadline (``timeout_s``) passed.
    :param tls_requested: both contact headers offered TLS.
    :param terminating: a SESS_TERM was sent or received.
    :param terminating_by_peer: the reason of the peer's SESS_TERM, if it sent one.
    :param auth_error: why the peer's Node ID was not authenticated, if it was not.
    :param stream_error: how the connection broke, if it did.
    """
    if auth_error is not None:
        return NodeIdMismatchError(auth_error)
    if timed_out:
        return EstablishmentTimeout(f"session with {peer} not established within {timeout_s} s")
    if terminating_by_peer is not None:
        reason = reason_name(terminating_by_peer)
        hint = " (it may require TLS)" if policy is TlsPolicy.DISABLED else ""
        return EstablishmentError(f"{peer} ended the session during establishment: {reason}{hint}")
    if (
        policy is TlsPolicy.REQUIRED
        and not tls_requested
        and not terminating
        and closed.reason == SessTermReason.CONTACT_FAILURE
    ):
        # The session refused the peer's contact header because of our TLS policy.
        return TlsRequiredError(f"TLS is required but {peer} does not offer it")
    error = stream_error or closed.error or "closed"
    if tls_started and stream_error is not None:
        return TlsError(f"session with {peer} failed during establishment: {error}")
    return EstablishmentError(f"session with {peer} failed during establishment: {error}")
