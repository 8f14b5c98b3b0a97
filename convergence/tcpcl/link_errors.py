"""Errors of the trio adapter (:mod:`convergence.tcpcl.link`), one line each.

They are separate from the sans-IO core's :class:`~convergence.tcpcl.errors.TcpclError`
family: those say who broke the protocol; these say what happened to a connection.

* :class:`LinkConnectError`: the TCP connection could not be opened.
* :class:`EstablishmentError`: the contact header, TLS or SESS_INIT exchange failed;
  subclasses for the timeout and for TLS (:class:`TlsError`, :class:`TlsRequiredError`,
  :class:`NodeIdMismatchError`).
* :class:`LinkClosedError`: the session is over (or closing) so the operation cannot happen.
* :class:`TransferTooLargeError`: the bundle exceeds what the peer accepts.

:func:`describe_stream_error` and :func:`reason_name` put what went wrong into their messages
and the links' logs.
"""

from __future__ import annotations

import enum
import ssl

__all__ = [
    "EstablishmentError",
    "EstablishmentTimeout",
    "LinkClosedError",
    "LinkConnectError",
    "LinkError",
    "NodeIdMismatchError",
    "TlsError",
    "TlsRequiredError",
    "TransferTooLargeError",
]


class LinkError(Exception):
    """Base class of the errors raised by the TCPCLv4 trio adapter."""


class LinkConnectError(LinkError):
    """The TCP connection to the peer could not be opened (refused, unreachable...)."""


class LinkClosedError(LinkError):
    """The session has ended or is ending: no new transfer, nothing more to receive."""


class TransferTooLargeError(LinkError):
    """The bundle is larger than the peer's Transfer MRU (fragment it first)."""


class EstablishmentError(LinkError):
    """The session could not be established (contact header, TLS or SESS_INIT phase)."""


class EstablishmentTimeout(EstablishmentError):
    """The session was not established within ``LinkConfig.establish_timeout_s``."""


class TlsError(EstablishmentError):
    """TLS failed: handshake error, or the peer is not who its certificate says."""


class TlsRequiredError(TlsError):
    """Our policy requires TLS but the peer did not offer it (CAN_TLS not set)."""


class NodeIdMismatchError(TlsError):
    """The Node ID in the peer's SESS_INIT is not authenticated by its certificate."""


def describe_stream_error(exc: BaseException) -> str:
    """How a trio stream broke (``exc``, a ``BrokenResourceError`` or the like), in a few
    words: the TLS or OS error underneath when there is one."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return f"TLS: {cause.reason or cause}"
    if isinstance(cause, OSError):
        return cause.strerror or str(cause)
    if cause is not None:
        return str(cause) or type(cause).__name__
    return str(exc) or type(exc).__name__


def reason_name(reason: enum.IntEnum | int) -> str:
    """A reason code's name, or ``code N`` for a value the RFC does not define."""
    return reason.name if isinstance(reason, enum.IntEnum) else f"code {reason}"
