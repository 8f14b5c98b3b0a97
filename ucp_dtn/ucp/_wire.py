"""The payload layer under :mod:`ucp_dtn.ucp.codec`: a well-formedness scan of CBOR payloads
and the envelope of every message (``"v"`` and ``"t"`` around the fields its dataclass declares,
see :mod:`ucp_dtn.wire_schema`).

It knows no message class: the caller passes the kinds it reads, so :mod:`ucp_dtn.ucp.messages`
(whose ``to_cbor``/``from_cbor`` use it) and :mod:`ucp_dtn.ucp.codec` both build on it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

from ucp_dtn.wire_schema import WireError, from_wire, to_wire, type_name

from .errors import MessageDecodeError, UcpUsageError

__all__ = ["MAX_DEPTH", "decode_payload", "decode_wire", "encode_payload", "load", "scan"]

MAX_DEPTH = 32
"""Deepest nesting of CBOR arrays, maps and tags a message may have."""


# -- well-formedness ---------------------------------------------------------------------------


def scan(data: bytes) -> None:
    """Check that ``data`` is exactly one well-formed CBOR item (RFC 8949 §5.3.1) of bounded
    depth; cheap, allocates nothing proportional to declared lengths."""
    end = len(data)
    pos = 0
    # Items still expected per open container; None: indefinite length, closed by a break.
    stack: list[int | None] = []
    while True:
        if pos >= end:
            raise MessageDecodeError("truncated CBOR")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if initial == 0xFF:  # break: closes the innermost indefinite-length container
            if not stack or stack[-1] is not None:
                raise MessageDecodeError("CBOR break outside an indefinite-length item")
            stack.pop()
        else:
            if info < 24:
                argument = info
            elif info <= 27:
                size = 1 << (info - 24)
                if pos + size > end:
                    raise MessageDecodeError("truncated CBOR")
                argument = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            elif info == 31 and major in (2, 3, 4, 5):
                argument = -1
            else:
                raise MessageDecodeError(f"malformed CBOR initial byte 0x{initial:02x}")
            if major in (2, 3):
                if argument >= 0:
                    if pos + argument > end:
                        raise MessageDecodeError("truncated CBOR string")
                    pos += argument
                else:  # indefinite string: definite chunks of the same major type, then break
                    while True:
                        if pos >= end:
                            raise MessageDecodeError("truncated CBOR")
                        chunk = data[pos]
                        pos += 1
                        if chunk == 0xFF:
                            break
                        if chunk >> 5 != major or chunk & 0x1F > 27:
                            raise MessageDecodeError("malformed indefinite-length CBOR string")
                        chunk_info = chunk & 0x1F
                        length = chunk_info
                        if chunk_info >= 24:
                            size = 1 << (chunk_info - 24)
                            if pos + size > end:
                                raise MessageDecodeError("truncated CBOR")
                            length = int.from_bytes(data[pos : pos + size], "big")
                            pos += size
                        if pos + length > end:
                            raise MessageDecodeError("truncated CBOR string")
                        pos += length
            elif major in (4, 5, 6):
                count = 1 if major == 6 else argument * (2 if major == 5 else 1)
                if argument < 0 or count > 0:  # a container opens; its items come next
                    stack.append(None if argument < 0 else count)
                    if len(stack) > MAX_DEPTH:
                        raise MessageDecodeError(f"CBOR nested deeper than {MAX_DEPTH}")
                    continue
            elif major == 7 and info == 24 and argument < 32:
                # RFC 8949 §3.3: simple values 0..31 in the two-byte form are not well-formed.
                raise MessageDecodeError("malformed CBOR simple value")
        _complete(stack)
        if not stack:
            break
    if pos != end:
        raise MessageDecodeError(f"{end - pos} bytes after the CBOR item")


def _complete(stack: list[int | None]) -> None:
    """One item finished: count it against the open containers, closing those it fills."""
    while stack and stack[-1] is not None:
        remaining = stack[-1] - 1
        if remaining:
            stack[-1] = remaining
            return
        stack.pop()


# -- the envelope ---------------------------------------------------------------------------------


def encode_payload(message: Any, kind: str, version: int) -> bytes:
    """The CBOR payload of ``message``: ``{"v": version, "t": kind, <its fields>}``."""
    return bytes(cbor2.dumps(to_wire(message, {"v": version, "t": kind})))


def load(data: bytes) -> object:
    """The one CBOR item of ``data``, after :func:`scan`; :class:`MessageDecodeError` for
    anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageDecodeError(f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    scan(data)
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2's semantic tag decoders raise assorted errors
        raise MessageDecodeError(f"undecodable CBOR: {exc}") from None


def decode_payload(data: bytes, kinds: Mapping[str, type[Any]], versions: tuple[int, ...]) -> Any:
    """The message in payload ``data``, of one of ``kinds`` (by ``"t"``) in one of
    ``versions``; :class:`MessageDecodeError` for anything else."""
    wire = load(data)
    if not isinstance(wire, dict):
        raise MessageDecodeError(f"a message is a CBOR map, got {type_name(wire)}")
    version = wire.get("v")
    if type(version) is not int:
        raise MessageDecodeError(
            f"field 'v' (version) must be an integer, got {type_name(version)}"
        )
    if version not in versions:
        raise MessageDecodeError(
            f"message version {version} is not supported (supported: "
            f"{', '.join(map(str, versions))})"
        )
    kind = wire.get("t")
    if type(kind) is not str:
        raise MessageDecodeError(f"field 't' (kind) must be text, got {type_name(kind)}")
    cls = kinds.get(kind)
    if cls is None:
        raise MessageDecodeError(f"unknown message kind {kind!r}")
    return decode_wire(cls, wire, kind)


def decode_wire(cls: type[Any], wire: object, kind: str) -> Any:
    """Build a ``cls`` from decoded CBOR; every problem, the schema's or the class's own
    validation (names, paths, ranges), is a :class:`MessageDecodeError` of ``kind``."""
    try:
        return from_wire(cls, wire)
    except (WireError, UcpUsageError) as exc:
        raise MessageDecodeError(str(exc), kind=kind) from None
