"""Incremental decoding of one direction of a TCPCLv4 byte stream.

:class:`MessageReader` takes bytes as they arrive (:meth:`~MessageReader.feed`) and hands out
complete values (:meth:`~MessageReader.next_message`): ``None`` means "need more bytes", a
:class:`DecodeError` means the stream is broken (it carries what RFC 9174 says to send back).

Incoming chunks are kept as a queue of ``memoryview`` objects, not appended to one growing
buffer, so a large XFER_SEGMENT is copied at most once (and not at all when it arrived in one
chunk): its data comes out as a ``memoryview`` slice of the chunk, or as one ``bytes`` joined
from the chunks it spans. Memory is bounded by ``max_segment_length`` and
``max_extensions_length``, checked as soon as a header announces a length.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

from .codes import (
    MAGIC,
    ContactFlags,
    ExtensionFlags,
    MessageType,
    MsgRejectReason,
    SegmentFlags,
    SessTermFlags,
    SessTermReason,
    XferRefuseReason,
    coerce,
)
from .errors import DecodeError
from .messages import (
    _CONTACT,
    _ITEM_HEAD,
    _SEG_HEAD,
    _SESS_INIT_HEAD,
    _THREE_OCTETS,
    _XFER_ACK,
    _XFER_REFUSE,
    ContactHeader,
    ExtensionItem,
    Keepalive,
    Message,
    MsgReject,
    SessInit,
    SessTerm,
    XferAck,
    XferRefuse,
    XferSegment,
)
from .messages import _U32_S as _U32
from .messages import _U64_S as _U64

__all__ = ["MessageReader", "decode_extension_items"]

# The wire layouts are defined once, beside the encoder (RFC 9174 §4.2, §4.6, §5.2).
_CONTACT_LENGTH = _CONTACT.size

#: Default cap on a SESS_INIT's or XFER_SEGMENT's extension items, in octets. RFC 9174 puts
#: no limit on them (the length field is 32 bits) but §4.8 and §5.2.5 say "Extension
#: specifications SHOULD avoid the use of large data lengths".
DEFAULT_MAX_EXTENSIONS_LENGTH = 64 * 1024

_Buffer = bytes | memoryview
_Builder = Callable[[tuple[int, ...]], "Message"]


def decode_extension_items(data: _Buffer, *, session: bool) -> tuple[ExtensionItem, ...]:
    """Parse a list of extension items (RFC 9174 Figures 20 and 25).

    :raises DecodeError: if an item claims more octets than the list holds — "the reception
        of the SESS_INIT [XFER_SEGMENT] is considered to have failed" (§4.6, §5.2.2).
    """
    items: list[ExtensionItem] = []
    view = memoryview(data)
    pos = 0
    end = len(view)
    kind = "session" if session else "transfer"
    while pos < end:
        if end - pos < _ITEM_HEAD.size:
            raise DecodeError(f"truncated {kind} extension item header")
        flags, item_type, length = _ITEM_HEAD.unpack_from(view, pos)
        pos += _ITEM_HEAD.size
        if end - pos < length:
            raise DecodeError(
                f"{kind} extension item claims {length} octets, {end - pos} remain in the list"
            )
        items.append(
            ExtensionItem(item_type, bytes(view[pos : pos + length]), ExtensionFlags(flags))
        )
        pos += length
    return tuple(items)


class MessageReader:
    """Decode a TCPCLv4 byte stream (one direction) incrementally.

    :param contact_header: expect a contact header before the first message.
    :param max_segment_length: largest XFER_SEGMENT data length accepted (our Segment MRU);
        ``None`` for no limit.
    :param max_extensions_length: largest extension item list accepted, in octets.
    """

    __slots__ = ("_chunks", "_expect_contact", "_max_ext", "_max_segment", "_size")

    def __init__(
        self,
        *,
        contact_header: bool = True,
        max_segment_length: int | None = None,
        max_extensions_length: int = DEFAULT_MAX_EXTENSIONS_LENGTH,
    ) -> None:
        self._chunks: deque[memoryview] = deque()
        self._size = 0
        self._expect_contact = contact_header
        self._max_segment = max_segment_length
        self._max_ext = max_extensions_length

    @property
    def buffered(self) -> int:
        """Number of received octets not yet returned as part of a message."""
        return self._size

    def needed(self) -> int:
        """How many more octets the first buffered message needs to be complete: exact for an
        XFER_SEGMENT whose header is buffered (its whole data), otherwise at least 1 while a
        message is incomplete; 0 when nothing is buffered. (The trio adapter reserves memory
        for a whole segment before reading it.)"""
        size = self._size
        if not size or self._expect_contact:
            return max(0, _CONTACT_LENGTH - size) if self._expect_contact else 0
        if self._chunks[0][0] != MessageType.XFER_SEGMENT or size < _SEG_HEAD.size:
            return 1
        head = self._peek(min(size, _SEG_HEAD.size + _U32.size))
        _, flags, _ = _SEG_HEAD.unpack_from(head)
        pos = _SEG_HEAD.size
        if flags & SegmentFlags.START:
            if size < pos + _U32.size:
                return 1
            ext_length: int = _U32.unpack_from(head, pos)[0]
            pos += _U32.size + ext_length
        if size < pos + _U64.size:
            return pos + _U64.size - size
        data_length: int = _U64.unpack_from(self._peek(pos + _U64.size), pos)[0]
        return max(0, pos + _U64.size + data_length - size)

    @property
    def expecting_contact_header(self) -> bool:
        """Whether the next value will be the contact header."""
        return self._expect_contact

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received octets. ``bytes`` are kept without copying; mutable buffers are
        copied (the caller may reuse them)."""
        if not data:
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        self._chunks.append(memoryview(data))
        self._size += len(data)

    def next_message(self) -> ContactHeader | Message | None:
        """The next complete value, or ``None`` until more octets arrive.

        :raises DecodeError: the stream cannot be decoded further.
        """
        if not self._size:
            return None
        if self._expect_contact:
            return self._contact_header()
        mtype = self._chunks[0][0]
        if mtype == MessageType.XFER_SEGMENT:
            return self._xfer_segment()
        if mtype == MessageType.XFER_ACK:
            return self._fixed(_XFER_ACK, _ack)
        if mtype == MessageType.XFER_REFUSE:
            return self._fixed(_XFER_REFUSE, _refuse)
        if mtype == MessageType.KEEPALIVE:
            self._consume(1)
            return Keepalive()
        if mtype == MessageType.SESS_TERM:
            return self._fixed(_THREE_OCTETS, _sess_term)
        if mtype == MessageType.MSG_REJECT:
            return self._fixed(_THREE_OCTETS, _msg_reject)
        if mtype == MessageType.SESS_INIT:
            return self._sess_init()
        # RFC 9174 §5.1.2: "If a TCPCL entity receives a message type which is unknown to it
        # [...], the entity SHALL send a MSG_REJECT message with a Reason Code of "Message
        # Type Unknown" and close the TCP connection."
        raise DecodeError(
            f"unknown message type 0x{mtype:02x}",
            reject_reason=MsgRejectReason.MESSAGE_TYPE_UNKNOWN,
            message_type=mtype,
        )

    # -- buffer primitives -------------------------------------------------------------

    def _peek(self, n: int) -> _Buffer:
        """The first ``n`` buffered octets (caller checked ``n <= self._size``)."""
        first = self._chunks[0]
        if len(first) >= n:
            return first[:n]
        parts: list[memoryview] = []
        need = n
        for chunk in self._chunks:
            parts.append(chunk[:need])
            need -= len(parts[-1])
            if not need:
                break
        return b"".join(parts)

    def _consume(self, n: int) -> None:
        self._size -= n
        chunks = self._chunks
        while n:
            first = chunks[0]
            if len(first) <= n:
                n -= len(first)
                chunks.popleft()
            else:
                chunks[0] = first[n:]
                n = 0

    def _take(self, n: int) -> _Buffer:
        """Remove and return ``n`` octets: a zero-copy slice when they lie in one chunk."""
        first = self._chunks[0]
        if len(first) >= n:
            out: _Buffer = first[:n]
        else:
            out = self._peek(n)
        self._consume(n)
        return out

    # -- per-message decoders ----------------------------------------------------------

    def _contact_header(self) -> ContactHeader | None:
        head = bytes(self._peek(min(self._size, _CONTACT_LENGTH)))
        # RFC 9174 §4.3: "If the magic string is not present or is not valid, the connection
        # MUST be terminated." §6.1: "an entity SHALL close the TCP connection without
        # sending a SESS_TERM message." Checked on the first octets, not after six.
        if head[:4] != MAGIC[: len(head)]:
            raise DecodeError(f"bad contact header magic {head[:4]!r}, expected {MAGIC!r}")
        if len(head) < _CONTACT_LENGTH:
            return None
        self._consume(_CONTACT_LENGTH)
        self._expect_contact = False
        return ContactHeader(version=head[4], flags=ContactFlags(head[5]))

    def _fixed(self, layout: struct.Struct, build: _Builder) -> Message | None:
        if self._size < layout.size:
            return None
        fields = layout.unpack(self._take(layout.size))
        return build(fields)

    def _check_extensions_length(self, length: int, mtype: MessageType) -> None:
        if length <= self._max_ext:
            return
        description = f"{mtype.name} extension items of {length} octets exceed {self._max_ext}"
        if mtype == MessageType.SESS_INIT:
            # RFC 9174 §4.7: unacceptable session parameters end the session with
            # "Contact Failure".
            raise DecodeError(description, term_reason=SessTermReason.CONTACT_FAILURE)
        raise DecodeError(description, term_reason=SessTermReason.RESOURCE_EXHAUSTION)

    def _xfer_segment(self) -> XferSegment | None:
        size = self._size
        if size < _SEG_HEAD.size:
            return None
        head = self._peek(min(size, _SEG_HEAD.size + _U32.size))
        _, flags, transfer_id = _SEG_HEAD.unpack_from(head)
        pos = _SEG_HEAD.size
        ext_length = 0
        start = bool(flags & SegmentFlags.START)
        if start:
            # RFC 9174 §5.2.2: the extension length and items are present "only for START
            # segment".
            if size < pos + _U32.size:
                return None
            (ext_length,) = _U32.unpack_from(head, pos)
            self._check_extensions_length(ext_length, MessageType.XFER_SEGMENT)
            pos += _U32.size + ext_length
        if size < pos + _U64.size:
            return None
        (data_length,) = _U64.unpack_from(self._peek(pos + _U64.size), pos)
        # RFC 9174 §4.6: "Any XFER_SEGMENT sent to this peer SHALL have a data payload no
        # longer than the peer's Segment MRU." Checked before buffering the data.
        if self._max_segment is not None and data_length > self._max_segment:
            raise DecodeError(
                f"XFER_SEGMENT of {data_length} octets exceeds our segment MRU {self._max_segment}",
                term_reason=SessTermReason.RESOURCE_EXHAUSTION,
            )
        if size < pos + _U64.size + data_length:
            return None
        extensions: tuple[ExtensionItem, ...] = ()
        if start:
            self._consume(_SEG_HEAD.size + _U32.size)
            try:
                extensions = decode_extension_items(self._take(ext_length), session=False)
            except DecodeError as exc:
                raise DecodeError(
                    f"XFER_SEGMENT: {exc.description}",
                    reject_reason=MsgRejectReason.MESSAGE_UNSUPPORTED,
                    message_type=MessageType.XFER_SEGMENT,
                ) from None
            self._consume(_U64.size)
        else:
            self._consume(pos + _U64.size)
        data = self._take(data_length) if data_length else b""
        return XferSegment(SegmentFlags(flags), transfer_id, data, extensions)

    def _sess_init(self) -> SessInit | None:
        size = self._size
        if size < _SESS_INIT_HEAD.size:
            return None
        head = self._peek(_SESS_INIT_HEAD.size)
        _, keepalive, segment_mru, transfer_mru, node_length = _SESS_INIT_HEAD.unpack(head)
        pos = _SESS_INIT_HEAD.size + node_length
        if size < pos + _U32.size:
            return None
        (ext_length,) = _U32.unpack_from(self._peek(pos + _U32.size), pos)
        self._check_extensions_length(ext_length, MessageType.SESS_INIT)
        total = pos + _U32.size + ext_length
        if size < total:
            return None
        body = memoryview(self._take(total))
        try:
            # RFC 9174 §4.6: "A non-zero-length Node ID Data SHALL contain the UTF-8 encoded
            # Node ID of the Entity which sent the SESS_INIT message."
            node_id = str(body[_SESS_INIT_HEAD.size : pos], "utf-8")
        except UnicodeDecodeError:
            raise DecodeError(
                "SESS_INIT node ID is not valid UTF-8",
                term_reason=SessTermReason.CONTACT_FAILURE,
            ) from None
        try:
            extensions = decode_extension_items(body[pos + _U32.size :], session=True)
        except DecodeError as exc:
            raise DecodeError(
                f"SESS_INIT: {exc.description}", term_reason=SessTermReason.CONTACT_FAILURE
            ) from None
        return SessInit(keepalive, segment_mru, transfer_mru, node_id, extensions)


def _ack(fields: tuple[int, ...]) -> XferAck:
    _, flags, transfer_id, length = fields
    return XferAck(SegmentFlags(flags), transfer_id, length)


def _refuse(fields: tuple[int, ...]) -> XferRefuse:
    _, reason, transfer_id = fields
    return XferRefuse(coerce(XferRefuseReason, reason), transfer_id)


def _sess_term(fields: tuple[int, ...]) -> SessTerm:
    _, flags, reason = fields
    return SessTerm(coerce(SessTermReason, reason), SessTermFlags(flags))


def _msg_reject(fields: tuple[int, ...]) -> MsgReject:
    _, reason, message_type = fields
    return MsgReject(coerce(MsgRejectReason, reason), message_type)
