"""Frames of the application-agent API: a 4-byte length, then one CBOR map.

Sans-IO: :class:`FrameDecoder` takes bytes as they arrive and hands out complete message maps;
:func:`encode_frame` turns a map into the bytes to write. Theory of the wire::

    frame   = length (uint32, big-endian, bytes of body) body
    body    = CBOR map with text keys (one message, see :mod:`ucp_dtn.appapi.messages`)

A length above the decoder's limit is an error the stream cannot recover from (the rest of the
stream cannot be framed any more); a body that is not a CBOR map with text keys only spoils that
one frame, and the next frame is read normally.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import cbor2

from ..cbor_check import CBORCheckError, check_cbor
from .errors import AppApiProtocolError, ErrorCode

__all__ = [
    "DEFAULT_MAX_FRAME",
    "FrameDecoder",
    "FrameTooLargeError",
    "decode_body",
    "encode_frame",
]

DEFAULT_MAX_FRAME = 64 * 1024 * 1024
"""Largest frame body accepted by default: 64 MiB (a bundle payload plus a little)."""

_LENGTH = struct.Struct(">I")


class FrameTooLargeError(AppApiProtocolError):
    """A length prefix exceeds the limit; the stream cannot be read any further."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"frame of {length} bytes exceeds the limit of {limit} bytes",
            ErrorCode.FRAME_TOO_LARGE,
        )
        self.length = length
        """The body length the frame's 4-byte prefix announced, in bytes."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """The frame carrying ``message`` (a map with text keys of CBOR-encodable values)."""
    body = cbor2.dumps(message)
    if len(body) > 0xFFFFFFFF:
        raise ValueError(f"message of {len(body)} bytes does not fit a frame")
    return _LENGTH.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode one frame body: a CBOR map with text keys, else :class:`AppApiProtocolError`.

    Only plain CBOR data is useful here; whatever cbor2 raises on hostile input (any exception
    type: the library has many) becomes our error, never the library's.
    """
    try:
        # Well-formed, at most 32 deep and 2**20 items before cbor2 builds anything: a 64 MiB
        # frame of one-byte items would otherwise become gigabytes of Python objects.
        check_cbor(body)
    except CBORCheckError as exc:
        raise AppApiProtocolError(f"message is not valid CBOR: {exc}") from None
    decoder = cbor2.CBORDecoder(io.BytesIO(body))
    try:
        value = decoder.decode()
    except RecursionError:
        raise AppApiProtocolError("message is not valid CBOR: nested too deeply") from None
    except Exception as exc:  # cbor2 raises CBORDecodeError but also ValueError, TypeError...
        raise AppApiProtocolError(f"message is not valid CBOR: {_first_line(exc)}") from None
    try:
        decoder.read(1)
    except Exception:  # end of the body: nothing after the message, as it should be
        pass
    else:
        raise AppApiProtocolError("message is not valid CBOR: data after the map")
    if not isinstance(value, dict):
        raise AppApiProtocolError(f"message must be a CBOR map, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise AppApiProtocolError(f"message keys must be text, got {type(key).__name__}")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


class FrameDecoder:
    """Cut a byte stream into frame bodies (see the module docstring)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        """Largest body accepted."""
        self._buffer = bytearray()
        self._broken = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_body(self) -> bytes | None:
        """The next complete frame body, or ``None`` until more bytes arrive.

        Raises :class:`FrameTooLargeError` (again on every later call) once a length prefix
        exceeds :attr:`max_frame`.
        """
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length > self.max_frame or self._broken:
            self._broken = True
            raise FrameTooLargeError(length, self.max_frame)
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[_LENGTH.size : end])
        del self._buffer[:end]  # bytearray deletes from the front in amortised O(1)
        return body
