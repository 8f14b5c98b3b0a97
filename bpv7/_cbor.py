"""A small, strict CBOR (RFC 8949) reader and writer for the fixed shapes of BPv7.

Why not cbor2: decoding a bundle needs the exact byte span of every block (CRCs are checked over the
bytes as received, RFC 9171 §4.3.1/§4.3.2) and must reject encodings that are not deterministic
(RFC 9171 §4.1: "the CBOR encodings of the values of all fields in all blocks MUST conform to the
core deterministic encoding requirements as specified in [RFC8949], except that indefinite-length
items are not prohibited"). A head reader over ``bytes`` gives both, never allocates from an
unchecked length, and is faster than driving a general decoder for these few items.

Readers take ``(data, pos)`` and return the value and the next position. They raise
:class:`~bpv7.errors.CBORError` on malformed or non-deterministic input — except for reading past
the end, which surfaces as ``IndexError`` from ``data[pos]``; the block decoders convert that into
a ``cbor-truncated`` :class:`~bpv7.errors.CBORError` (a ``try`` costs nothing when not taken).
"""

from __future__ import annotations

from .errors import CBORError, EncodeError

MAJOR_UINT = 0
MAJOR_BYTES = 2
MAJOR_TEXT = 3
MAJOR_ARRAY = 4
BREAK = 0xFF
INDEFINITE = -1
"""Argument returned by :func:`read_head` for an indefinite-length item (additional info 31)."""

_MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value/float",
)
_SHORTEST_MIN = {25: 0x100, 26: 0x10000, 27: 0x100000000}
_ARG_LEN = {25: 2, 26: 4, 27: 8}


def truncated() -> CBORError:
    """The error for input that ends inside a CBOR item."""
    # RFC 9171 §5.6 step 3: "If any block of the bundle is malformed according to this
    # specification (including syntactically invalid CBOR) ... the BPA MUST delete the bundle"
    return CBORError("input ends inside a CBOR item", rule="cbor-truncated", section="5.6")


def wrong_type(initial_byte: int, expected: str, what: str) -> CBORError:
    """The error for an item of the wrong major type."""
    got = _MAJOR_NAMES[initial_byte >> 5]
    if initial_byte == BREAK:
        got = '"break" stop code'
    return CBORError(f"{what}: expected {expected}, got {got}", rule="cbor-type", section="4.3")


def _long_argument(data: bytes, pos: int, ai: int) -> tuple[int, int]:
    """Argument of a head whose additional information is 24..27; ``pos`` is just past the
    initial byte."""
    if ai == 24:
        value = data[pos]
        if value < 24:
            raise _not_shortest()
        return value, pos + 1
    if ai > 27:
        # RFC 8949 §3: additional information 28, 29 and 30 are reserved (not well-formed).
        raise CBORError(
            f"reserved additional information {ai}", rule="cbor-malformed", section="4.1"
        )
    end = pos + _ARG_LEN[ai]
    if end > len(data):
        raise truncated()
    value = int.from_bytes(data[pos:end], "big")
    if value < _SHORTEST_MIN[ai]:
        raise _not_shortest()
    return value, end


def _not_shortest() -> CBORError:
    # RFC 9171 §4.1: "the CBOR encodings of the values of all fields in all blocks MUST conform to
    # the core deterministic encoding requirements" -- RFC 8949 §4.2.1: arguments in shortest form.
    return CBORError(
        "integer or length not in shortest form (not deterministic CBOR)",
        rule="cbor-not-shortest",
        section="4.1",
    )


def read_uint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read a CBOR unsigned integer (major type 0)."""
    ib = data[pos]
    if ib < 24:
        return ib, pos + 1
    if ib < 28:
        return _long_argument(data, pos + 1, ib)
    raise wrong_type(ib, "an unsigned integer", what)


def read_head(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read any head: ``(major type, argument, next position)``; the argument is
    :data:`INDEFINITE` for indefinite-length strings, arrays and maps."""
    ib = data[pos]
    major = ib >> 5
    ai = ib & 0x1F
    if ai < 24:
        return major, ai, pos + 1
    if ai == 31:
        if major in (2, 3, 4, 5):
            return major, INDEFINITE, pos + 1
        raise CBORError(
            "unexpected break or indefinite-length marker", rule="cbor-malformed", section="4.1"
        )
    value, pos = _long_argument(data, pos + 1, ai)
    return major, value, pos


def read_array(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read an array head: ``(length or INDEFINITE, next position)``."""
    ib = data[pos]
    if 0x80 <= ib < 0x98:
        return ib - 0x80, pos + 1
    if ib >> 5 != MAJOR_ARRAY:
        raise wrong_type(ib, "an array", what)
    _, length, pos = read_head(data, pos)
    return length, pos


def read_bytes_span(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read a definite-length byte string; return the ``(start, end)`` span of its content."""
    ib = data[pos]
    if 0x40 <= ib < 0x58:
        start = pos + 1
        end = start + ib - 0x40
    elif ib >> 5 == MAJOR_BYTES and ib != 0x5F:
        _, length, start = read_head(data, pos)
        end = start + length
    elif ib == 0x5F:
        raise CBORError(
            f"{what}: indefinite-length byte string where a definite-length one is required",
            rule="cbor-indefinite-bytes",
            section="4.3.2",
        )
    else:
        raise wrong_type(ib, "a byte string", what)
    if end > len(data):
        raise truncated()
    return start, end


def read_text(data: bytes, pos: int, what: str) -> tuple[str, int]:
    """Read a text string, definite or indefinite length (RFC 9171 §4.1 does not prohibit
    indefinite-length items)."""
    ib = data[pos]
    if ib >> 5 != MAJOR_TEXT:
        raise wrong_type(ib, "a text string", what)
    _, length, pos = read_head(data, pos)
    if length != INDEFINITE:
        end = pos + length
        if end > len(data):
            raise truncated()
        return _utf8(data[pos:end], what), end
    chunks = []
    while data[pos] != BREAK:
        cb = data[pos]
        # RFC 8949 §3.2.3: chunks of an indefinite-length string are definite-length strings of
        # the same major type.
        if cb >> 5 != MAJOR_TEXT or cb == 0x7F:
            raise CBORError(
                f"{what}: bad chunk in indefinite-length text string",
                rule="cbor-malformed",
                section="4.1",
            )
        _, length, pos = read_head(data, pos)
        end = pos + length
        if end > len(data):
            raise truncated()
        chunks.append(data[pos:end])
        pos = end
    return _utf8(b"".join(chunks), what), pos + 1


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 8949 §3.1 major type 3: "a text string ... encoded as UTF-8"
        raise CBORError(
            f"{what}: text string is not valid UTF-8", rule="cbor-bad-utf8", section="4.1"
        ) from None


_SMALL_UINT = tuple(
    bytes((i,)) if i < 24 else bytes((24, i)) for i in range(256)
)  # major type 0, values 0..255


_SMALL_HEADS = tuple(
    tuple(bytes((major << 5 | i,)) if i < 24 else bytes((major << 5 | 24, i)) for i in range(256))
    for major in range(8)
)  # the heads of arguments 0..255 by major type: most heads a bundle has


def encode_head(major: int, value: int) -> bytes:
    """Encode a head in shortest form (RFC 8949 §4.2.1)."""
    if 0 <= value < 0x100:
        return _SMALL_HEADS[major][value]
    mt = major << 5
    if value < 0:
        raise EncodeError(
            f"{value} is negative, not a CBOR unsigned integer", rule="uint-range", section="4.1"
        )
    if value < 24:
        return bytes((mt | value,))
    if value < 0x100:
        return bytes((mt | 24, value))
    if value < 0x10000:
        return bytes((mt | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((mt | 26,)) + value.to_bytes(4, "big")
    if value < 0x10000000000000000:
        return bytes((mt | 27,)) + value.to_bytes(8, "big")
    raise EncodeError(
        f"{value} does not fit a CBOR unsigned integer", rule="uint-range", section="4.1"
    )


def encode_uint(value: int) -> bytes:
    """Encode an unsigned integer in shortest form."""
    if 0 <= value < 0x100:
        return _SMALL_UINT[value]
    return encode_head(MAJOR_UINT, value)


def encode_bytes(value: bytes) -> bytes:
    """Encode a definite-length byte string."""
    return encode_head(MAJOR_BYTES, len(value)) + value


def encode_text(value: str) -> bytes:
    """Encode a definite-length text string."""
    raw = value.encode("utf-8")
    return encode_head(MAJOR_TEXT, len(raw)) + raw


UINT64_MAX = 0xFFFFFFFFFFFFFFFF
