"""The two error families of the TCPCLv4 core (h11 style).

* :class:`LocalProtocolError`: the caller misused the API (sent a transfer before the session
  was established, acknowledged an unknown transfer, ...). Raised to the caller; the session
  state is unchanged.
* :class:`RemoteProtocolError`: the peer broke RFC 9174. It carries what to send back before
  closing the connection: a MSG_REJECT reason (plus the offending message type) and/or a
  SESS_TERM reason. :class:`~convergence.tcpcl.session.Session` handles these itself — it
  queues the reply, closes, and reports a ``SessionClosed`` event — so they reach the caller
  only from the standalone decoder (:class:`~convergence.tcpcl.reader.MessageReader`).
* :class:`DecodeError`: bytes that do not parse. Decoders raise only this (never
  ``struct.error``, ``IndexError`` or ``UnicodeDecodeError``).
"""

from __future__ import annotations

from .codes import MsgRejectReason, SessTermReason

__all__ = ["DecodeError", "LocalProtocolError", "RemoteProtocolError", "TcpclError"]


class TcpclError(Exception):
    """Base class of every error raised by :mod:`convergence.tcpcl`."""


class LocalProtocolError(TcpclError):
    """The local caller asked for something the protocol or the session state forbids."""


class RemoteProtocolError(TcpclError):
    """The peer violated RFC 9174; the session must end.

    :param term_reason: the SESS_TERM reason to send before closing, or ``None`` to close
        without SESS_TERM (e.g. RFC 9174 §6.1: a bad contact header is answered by closing
        "without sending a SESS_TERM message").
    :param reject_reason: a MSG_REJECT reason to send before closing, or ``None``.
    :param message_type: the rejected message header octet copied into the MSG_REJECT.
    """

    def __init__(
        self,
        description: str,
        *,
        term_reason: SessTermReason | None = None,
        reject_reason: MsgRejectReason | None = None,
        message_type: int | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.term_reason = term_reason
        self.reject_reason = reject_reason
        self.message_type = message_type


class DecodeError(RemoteProtocolError):
    """Bytes from the peer that are not a well-formed contact header or message."""
