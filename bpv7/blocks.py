"""Canonical bundle blocks (RFC 9171 §4.3.2) and the extension blocks of §4.4.

:class:`CanonicalBlock` holds any non-primary block with its block-type-specific data as bytes;
blocks of unknown types (and BPSec's BIB/BCB, whose contents are another module's business) are
kept byte for byte. The typed values :class:`PreviousNodeBlock`, :class:`BundleAgeBlock` and
:class:`HopCountBlock` encode and decode the data of the three extension blocks RFC 9171 defines;
a :class:`CanonicalBlock` of one of those types is checked against them when constructed, so a
decoded bundle's extension blocks are known to be well formed.

:func:`unprocessable_block_action` answers RFC 9171 §5.6 step 4 for a block the agent cannot
process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Self

from crc32c import crc32c as _crc32c

from ._cbor import (
    BREAK,
    INDEFINITE,
    UINT64_MAX,
    encode_head,
    encode_uint,
    read_array,
    read_bytes_span,
    read_uint,
    truncated,
)
from .codes import BlockFlags, BlockType
from .crc import CRC_LENGTH, CRCType, compute_crc
from .eid import EndpointID, eid_from_bytes
from .errors import BlockError, CRCError, DecodeError, EncodeError
from .primary import check_uint, read_crc_field, read_crc_type

__all__ = [
    "EXTENSION_BLOCK_TYPES",
    "PROCESSABLE_BLOCK_TYPES",
    "BlockAction",
    "BundleAgeBlock",
    "CanonicalBlock",
    "HopCountBlock",
    "PreviousNodeBlock",
    "decode_canonical",
    "unprocessable_block_action",
]

PROCESSABLE_BLOCK_TYPES = frozenset(
    {BlockType.PAYLOAD, BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT}
)
"""Block types this codec understands. RFC 9171 §4.4: "All implementations ... MUST include
procedures for recognizing, parsing, and acting on ... these types of extension blocks"."""

_BLOCK_TYPES = {int(t): t for t in BlockType}
_CRC_TYPES = {int(t): t for t in CRCType}


@dataclass(frozen=True, slots=True, init=False, repr=False)
class CanonicalBlock:
    """A canonical bundle block (RFC 9171 §4.3.2).

    Built as ``CanonicalBlock(type_code, number, flags, crc_type, data)``. A block decoded from
    ``bytes`` whose data is large keeps a read-only view of the input instead of a copy of it:
    :attr:`data` makes the copy the first time it is read, :attr:`data_view` never does (the
    cryptography, the CRC and the encoder read that)."""

    type_code: int
    """Block type code (a :class:`BlockType` when known, else a plain ``int``)."""
    number: int
    """Block number, unique within the bundle; 1 for the payload block, never 0."""
    flags: BlockFlags
    """Block processing control flags (§4.2.4); unknown bits are kept."""
    crc_type: CRCType
    """CRC type of this block (§4.2.1)."""
    _data: bytes | memoryview
    """The block-type-specific data, or a read-only view of it in an immutable buffer."""
    _head: bytes | None = field(default=None, compare=False)
    _tail: bytes | None = field(default=None, compare=False)

    def __init__(self, type_code: int, number: int, flags: int, crc_type: int, data: bytes) -> None:
        # (the slot setters: a frozen instance refuses ordinary assignment)
        _SET_TYPE(self, type_code)
        _SET_NUMBER(self, number)
        _SET_FLAGS(self, flags)
        _SET_CRC_TYPE(self, crc_type)
        _SET_DATA(self, data)
        _SET_HEAD(self, None)
        _SET_TAIL(self, None)
        self._validate(check_data=True)

    @property
    def data(self) -> bytes:
        """Block-type-specific data: the content of the block's CBOR byte string."""
        data = self._data
        if type(data) is bytes:
            return data
        copied = bytes(data)
        object.__setattr__(self, "_data", copied)
        return copied

    @property
    def data_view(self) -> bytes | memoryview:
        """:attr:`data` without copying it: the bytes, or a read-only view of them."""
        return self._data

    def __repr__(self) -> str:
        return (
            f"CanonicalBlock(type_code={self.type_code!r}, number={self.number!r}, "
            f"flags={self.flags!r}, crc_type={self.crc_type!r}, data={bytes(self._data)!r})"
        )

    def with_data(self, data: bytes) -> CanonicalBlock:
        """The same block with other block-type-specific data (checked, encoded afresh)."""
        return CanonicalBlock(self.type_code, self.number, self.flags, self.crc_type, data)

    @classmethod
    def opaque(
        cls, type_code: int, number: int, flags: int, crc_type: int, data: bytes | memoryview
    ) -> CanonicalBlock:
        """A block whose data is not checked against its block type: the target of a BPSec BCB,
        whose block-type-specific data is ciphertext (RFC 9172 §3.8) until it is decrypted. Every
        other rule of :class:`CanonicalBlock` still applies. A ``memoryview`` is kept as it is
        only when it is read-only over ``bytes`` (nothing can change it); other buffers are
        copied."""
        block = _NEW(cls)
        _SET_TYPE(block, type_code)
        _SET_NUMBER(block, number)
        _SET_FLAGS(block, flags)
        _SET_CRC_TYPE(block, crc_type)
        _SET_DATA(block, data)
        _SET_HEAD(block, None)
        _SET_TAIL(block, None)
        block._validate(check_data=False)
        return block

    def _validate(self, *, check_data: bool) -> None:
        type_code = self.type_code
        if type(type_code) is not BlockType:
            check_uint(type_code, "block type code", "4.3.2")
            object.__setattr__(self, "type_code", _BLOCK_TYPES.get(type_code, type_code))
        check_uint(self.number, "block number", "4.3.2")
        if type(self.flags) is not BlockFlags:
            check_uint(self.flags, "block processing control flags", "4.2.4")
            object.__setattr__(self, "flags", cached_block_flags(self.flags))
        crc_type = self.crc_type
        if type(crc_type) is not CRCType:
            if type(crc_type) is not int or crc_type not in _CRC_TYPES:
                raise EncodeError(
                    f"invalid CRC type {crc_type!r}", rule="crc-type", section="4.2.1"
                )
            object.__setattr__(self, "crc_type", _CRC_TYPES[crc_type])
        data = self._data
        if type(data) is not bytes and not _immutable_view(data):
            if not isinstance(data, bytes | bytearray | memoryview):
                raise EncodeError(
                    "block-type-specific data must be bytes", rule="block-data", section="4.3.2"
                )
            object.__setattr__(self, "_data", bytes(data))
        check_block_rules(type_code, self.number, self._data, check_data=check_data)

    def encoded_parts(self) -> tuple[bytes, bytes | memoryview, bytes]:
        """``(head, data, tail)`` whose concatenation is the block's CBOR bytes: as received for
        a decoded block, otherwise freshly encoded with a new CRC. ``head`` runs up to the data
        byte string's content, ``tail`` is the CRC field (and the "break" of an
        indefinite-length block array)."""
        head = self._head
        tail = self._tail
        if head is None or tail is None:
            head, tail = self._encode()
            object.__setattr__(self, "_head", head)
            object.__setattr__(self, "_tail", tail)
        return head, self._data, tail

    def encode(self) -> bytes:
        """The block's CBOR bytes."""
        return b"".join(self.encoded_parts())

    def _encode(self) -> tuple[bytes, bytes]:
        head = block_head(self.type_code, self.number, self.flags, self.crc_type, len(self._data))
        return head, block_tail(self.crc_type, head, self._data)

    @classmethod
    def _encoded(
        cls,
        type_code: BlockType,
        number: int,
        flags: BlockFlags,
        crc_type: CRCType,
        data: bytes | memoryview,
        head: bytes,
        tail: bytes,
    ) -> CanonicalBlock:
        """A block whose encoding ``head + data + tail`` was just written (trusted: not
        checked again). For :mod:`bpv7.bpsec`, which encrypts a large target straight into the
        encoded bundle."""
        block = _NEW(cls)
        _SET_TYPE(block, type_code)
        _SET_NUMBER(block, number)
        _SET_FLAGS(block, flags)
        _SET_CRC_TYPE(block, crc_type)
        _SET_DATA(block, data)
        _SET_HEAD(block, head)
        _SET_TAIL(block, tail)
        return block


def block_head(type_code: int, number: int, flags: int, crc_type: int, length: int) -> bytes:
    """The bytes of a canonical block up to its data: the array head, type code, number, flags,
    CRC type and the head of the data byte string of ``length`` bytes."""
    # RFC 9171 §4.3.2: "the number of elements in the array SHALL be 5 (if CRC type is zero)
    # or 6 (otherwise)"; the data is "a single definite-length CBOR byte string".
    return b"".join(
        (
            b"\x86" if crc_type else b"\x85",
            encode_uint(type_code),
            encode_uint(number),
            encode_uint(flags),
            encode_uint(crc_type),
            encode_head(2, length),
        )
    )


def block_tail(crc_type: int, head: bytes, data: bytes | memoryview) -> bytes:
    """The bytes of a canonical block after its data: its CRC field (RFC 9171 §4.2.1), computed
    over ``head``, ``data`` and the zeroed field; empty for CRC type 0."""
    if not crc_type:
        return b""
    if crc_type == CRCType.CRC32C:
        value = _crc32c(b"\x44\x00\x00\x00\x00", _crc32c(data, _crc32c(head)))
        return b"\x44" + int(value).to_bytes(4, "big")
    return b"\x42" + compute_crc(crc_type, (head, data, b"\x42\x00\x00"))


def tail_length(crc_type: int) -> int:
    """Length of :func:`block_tail` for ``crc_type``."""
    return 1 + CRC_LENGTH[crc_type] if crc_type else 0


VIEW_THRESHOLD = 64 * 1024
"""Block data at least this long, decoded from ``bytes``, stays a view of the input (no copy)."""


def _immutable_view(data: object) -> bool:
    """Whether ``data`` is a read-only byte view of a ``bytes`` object (it cannot change)."""
    return (
        type(data) is memoryview
        and data.readonly
        and type(data.obj) is bytes
        and data.format == "B"
        and data.c_contiguous
    )


def _block_error(message: str, rule: str, section: str) -> BlockError:
    return BlockError(message, rule=rule, section=section)


_FLAGS_CACHE: dict[int, BlockFlags] = {}


def cached_block_flags(value: int) -> BlockFlags:
    flags = _FLAGS_CACHE.get(value)
    if flags is None:
        flags = BlockFlags(value)
        if len(_FLAGS_CACHE) < 1024:
            _FLAGS_CACHE[value] = flags
    return flags


def check_block_rules(
    type_code: int, number: int, data: bytes | memoryview, *, check_data: bool = True
) -> None:
    """Enforce the rules on a canonical block's number and, for the extension blocks of RFC 9171
    §4.4 when ``check_data``, its block-type-specific data; raises
    :class:`~bpv7.errors.EncodeError`."""
    if number == 0:
        # RFC 9171 §4.1: "The block number of the primary block is implicitly zero".
        raise EncodeError(
            "block number 0 is reserved for the primary block",
            rule="block-number-zero",
            section="4.1",
        )
    if type_code == BlockType.PAYLOAD:
        if number != 1:
            # RFC 9171 §4.1: "The block number of the payload block is always 1."
            raise EncodeError(
                f"the payload block has number {number}, not 1",
                rule="payload-block-number",
                section="4.1",
            )
    elif check_data and type_code in _EXTENSION_CODECS:
        check_extension_data(type_code, data if type(data) is bytes else bytes(data))


def check_extension_data(type_code: int, data: bytes) -> None:
    """Check the block-type-specific data of an extension block of RFC 9171 §4.4 (nothing for
    other types); raises :class:`~bpv7.errors.EncodeError`."""
    if type_code in _EXTENSION_CODECS:
        # Fast paths for the usual encodings: a small hop count, a small bundle age.
        if type_code == BlockType.HOP_COUNT:
            if _small_hop_count(data):
                return
        elif type_code == BlockType.BUNDLE_AGE and len(data) == 1 and data[0] < 24:
            return
        try:
            _EXTENSION_CODECS[type_code](data)
        except DecodeError as exc:
            raise EncodeError(
                exc.message, rule=exc.rule, section=exc.section, rfc=exc.rfc
            ) from None


# Decoded values have already been checked by the decoder, so it builds the frozen instances
# through the slot descriptors directly: about half the cost of the validating __init__.
_NEW = object.__new__
_SET_TYPE = CanonicalBlock.__dict__["type_code"].__set__
_SET_NUMBER = CanonicalBlock.__dict__["number"].__set__
_SET_FLAGS = CanonicalBlock.__dict__["flags"].__set__
_SET_CRC_TYPE = CanonicalBlock.__dict__["crc_type"].__set__
_SET_DATA = CanonicalBlock.__dict__["_data"].__set__
_SET_HEAD = CanonicalBlock.__dict__["_head"].__set__
_SET_TAIL = CanonicalBlock.__dict__["_tail"].__set__


def unchecked_block(
    type_code: int, number: int, flags: BlockFlags, crc_type: CRCType, data: bytes
) -> CanonicalBlock:
    """A :class:`CanonicalBlock` built without validation, for values the caller guarantees
    valid (e.g. an edit of a valid block's data with a freshly encoded typed value): the
    forwarding-time edits run once per forwarded bundle, and the validating ``__init__`` is
    most of their cost."""
    block = _NEW(CanonicalBlock)
    _SET_TYPE(block, type_code)
    _SET_NUMBER(block, number)
    _SET_FLAGS(block, flags)
    _SET_CRC_TYPE(block, crc_type)
    _SET_DATA(block, data)
    _SET_HEAD(block, None)
    _SET_TAIL(block, None)
    return block


def decode_canonical(
    data: bytes, pos: int, *, check_data: bool = True
) -> tuple[CanonicalBlock, int]:
    """Decode the canonical block starting at ``data[pos]``; return it and the position after
    it. Checks the CBOR shape, the CRC over the bytes as received, and the rules of
    :class:`CanonicalBlock` (the extension block data only when ``check_data``: the bundle
    decoder checks it once it knows which blocks a BCB encrypts). ``IndexError`` means the input
    ended early."""
    start = pos
    ib = data[pos]
    # RFC 9171 §4.3.2: "Every block other than the primary block ... SHALL be represented as a
    # CBOR array; the number of elements in the array SHALL be 5 (if CRC type is zero) or 6
    # (otherwise)."
    if (
        (ib == 0x85 or ib == 0x86)
        and data[pos + 1] < 24
        and data[pos + 2] < 24
        and (data[pos + 3] < 24 and data[pos + 4] < 3)
    ):
        # Fast path: one-byte type code, number, flags and CRC type.
        count = ib - 0x80
        type_code = data[pos + 1]
        number = data[pos + 2]
        flags = data[pos + 3]
        crc_type = _CRC_TYPES[data[pos + 4]]
        pos += 5
    else:
        count, pos = read_array(data, pos, "canonical block")
        if count != INDEFINITE and count not in (5, 6):
            raise _block_error(
                f"canonical block array has {count} items, not 5 or 6",
                "block-array-length",
                "4.3.2",
            )
        type_code, pos = read_uint(data, pos, "block type code")
        number, pos = read_uint(data, pos, "block number")
        flags, pos = read_uint(data, pos, "block processing control flags")
        crc_type, pos = read_crc_type(data, pos, "block CRC type", "4.3.2")
    if count != INDEFINITE and count != (6 if crc_type else 5):
        # RFC 9171 §4.2.2: "The CRC SHALL be omitted from a block if and only if the block's CRC
        # type code is zero."
        raise _block_error(
            f"block {number} has {count} items but CRC type {int(crc_type)}",
            "block-array-length",
            "4.3.2",
        )
    # RFC 9171 §4.3.2: "Block-type-specific data: Represented as a single definite-length CBOR
    # byte string".
    ib = data[pos]
    if ib == 0x58:  # fast path: a byte string of 24..255 bytes
        length = data[pos + 1]
        if length < 24:
            read_bytes_span(data, pos, f"block {number} data")  # raises cbor-not-shortest
        data_start = pos + 2
        data_end = data_start + length
        if data_end > len(data):
            raise truncated()
    else:
        data_start, data_end = read_bytes_span(data, pos, f"block {number} data")
    pos = data_end
    crc_pos = 0
    if crc_type:
        if data[pos] == 0x44 and crc_type == CRCType.CRC32C:  # fast path: the usual CRC field
            crc_pos = pos + 1
            if crc_pos + 4 > len(data):
                raise truncated()
        else:
            crc_pos = read_crc_field(data, pos, crc_type, f"block {number}")
        pos = crc_pos + CRC_LENGTH[crc_type]
    if count == INDEFINITE:
        if data[pos] != BREAK:
            raise _block_error(
                f"block {number} has more items than its CRC type calls for",
                "block-array-length",
                "4.3.2",
            )
        pos += 1
    head = data[start:data_start]
    content: bytes | memoryview
    if data_end - data_start >= VIEW_THRESHOLD and type(data) is bytes:
        # A large block (the payload, usually) is not copied out of the input: its view goes
        # to the CRC, the cryptography and the encoder; ``data`` copies it only when read.
        content = memoryview(data)[data_start:data_end]
    else:
        content = data[data_start:data_end]
    tail = data[data_end:pos]
    if crc_type:
        # RFC 9171 §4.3.2: the CRC is "computed over the concatenation of all bytes of the block
        # (including CBOR 'break' characters) including the CRC field itself, which, for this
        # purpose, SHALL be temporarily populated with all [value] bytes set to zero"; §5.6
        # step 3: on a mismatch the bundle MUST be deleted.
        offset = crc_pos - data_end
        if crc_type == CRCType.CRC32C:
            received = tail[offset : offset + 4]
            value = _crc32c(content, _crc32c(head))
            if len(tail) == 5:  # definite-length block: the tail is just the CRC field
                value = _crc32c(b"\x44\x00\x00\x00\x00", value)
            else:
                value = _crc32c(tail[:offset] + b"\x00\x00\x00\x00" + tail[offset + 4 :], value)
            computed = int(value).to_bytes(4, "big")
        else:
            received = tail[offset : offset + 2]
            zeroed = tail[:offset] + b"\x00\x00" + tail[offset + 2 :]
            computed = compute_crc(crc_type, (head, content, zeroed))
        if computed != received:
            raise CRCError(
                f"block {number}: CRC mismatch (received {received.hex()}, computed "
                f"{computed.hex()})",
                rule="crc-mismatch",
                section="5.6",
            )
    try:
        check_block_rules(type_code, number, content, check_data=check_data)
    except EncodeError as exc:
        raise BlockError(exc.message, rule=exc.rule, section=exc.section, rfc=exc.rfc) from None
    block = _NEW(CanonicalBlock)
    _SET_TYPE(block, _BLOCK_TYPES.get(type_code, type_code))
    _SET_NUMBER(block, number)
    _SET_FLAGS(block, cached_block_flags(flags))
    _SET_CRC_TYPE(block, crc_type)
    _SET_DATA(block, content)
    _SET_HEAD(block, head)
    _SET_TAIL(block, tail)
    return block, pos


# ---------------------------------------------------------------------------------------------
# Extension blocks of RFC 9171 §4.4


class _TypedBlock:
    """What the typed extension block values share: their block type code, and conversion
    to and from a :class:`CanonicalBlock` through their ``encode_data`` / ``decode_data``."""

    __slots__ = ()
    TYPE_CODE: ClassVar[BlockType]

    def encode_data(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_data(cls, data: bytes) -> Self:
        raise NotImplementedError

    def to_block(self, number: int, flags: int = 0, crc_type: int = CRCType.NONE) -> CanonicalBlock:
        """A canonical block carrying this value."""
        return CanonicalBlock(
            self.TYPE_CODE,
            number,
            cached_block_flags(flags),
            _CRC_TYPES[crc_type],
            self.encode_data(),
        )

    @classmethod
    def from_block(cls, block: CanonicalBlock) -> Self:
        """Parse the block-type-specific data of ``block`` (which must be of this type)."""
        _check_type(block, cls.TYPE_CODE)
        return cls.decode_data(block.data)


@dataclass(frozen=True, slots=True)
class PreviousNodeBlock(_TypedBlock):
    """Previous Node Block data (RFC 9171 §4.4.1): the node ID of the node that forwarded the
    bundle to the local node."""

    node: EndpointID
    """Node ID of the forwarder (a dtn EID with empty demux or an ipn EID with service 0)."""

    TYPE_CODE: ClassVar[BlockType] = BlockType.PREVIOUS_NODE

    def __post_init__(self) -> None:
        # RFC 9171 §4.4.1: "That node ID SHALL conform to Section 4.2.5.2."
        if not self.node.is_node_id:
            raise EncodeError(
                f"previous node {self.node} is not a node ID",
                rule="previous-node-id",
                section="4.4.1",
            )

    def encode_data(self) -> bytes:
        """The block-type-specific data: the CBOR encoding of the node ID."""
        return self.node.cbor

    @classmethod
    def decode_data(cls, data: bytes) -> PreviousNodeBlock:
        """Parse block-type-specific data; raises :class:`~bpv7.errors.DecodeError`."""
        node = eid_from_bytes(data, "previous node")
        try:
            return cls(node)
        except EncodeError as exc:
            raise _block_error(exc.message, exc.rule, exc.section) from None


@dataclass(frozen=True, slots=True)
class BundleAgeBlock(_TypedBlock):
    """Bundle Age Block data (RFC 9171 §4.4.2): milliseconds between the bundle's creation and
    its most recent forwarding."""

    age_ms: int
    """The bundle's age in milliseconds."""

    TYPE_CODE: ClassVar[BlockType] = BlockType.BUNDLE_AGE

    def __post_init__(self) -> None:
        # RFC 9171 §4.4.2: the age "SHALL be represented as a CBOR unsigned integer item".
        check_uint(self.age_ms, "bundle age", "4.4.2")

    def encode_data(self) -> bytes:
        """The block-type-specific data: the age as a CBOR unsigned integer."""
        return encode_uint(self.age_ms)

    @classmethod
    def decode_data(cls, data: bytes) -> BundleAgeBlock:
        """Parse block-type-specific data; raises :class:`~bpv7.errors.DecodeError`."""
        try:
            age, end = read_uint(data, 0, "bundle age")
        except IndexError:
            raise truncated() from None
        _no_trailing(data, end, "bundle age", "4.4.2")
        return cls(age)


@dataclass(frozen=True, slots=True)
class HopCountBlock(_TypedBlock):
    """Hop Count Block data (RFC 9171 §4.4.3)."""

    limit: int
    """Hop limit, 1..255."""
    count: int
    """Hops taken so far."""

    TYPE_CODE: ClassVar[BlockType] = BlockType.HOP_COUNT

    def __post_init__(self) -> None:
        # RFC 9171 §4.4.3: "The hop limit MUST be in the range 1 through 255."
        if type(self.limit) is not int or not 1 <= self.limit <= 255:
            raise EncodeError(
                f"hop limit {self.limit!r} is not in 1..255",
                rule="hop-limit-range",
                section="4.4.3",
            )
        check_uint(self.count, "hop count", "4.4.3")

    @property
    def exceeded(self) -> bool:
        """RFC 9171 §4.4.3: "When a bundle's hop count exceeds its hop limit, the bundle SHOULD
        be deleted for the reason 'Hop limit exceeded'"."""
        return self.count > self.limit

    def incremented(self) -> HopCountBlock:
        """The value after one more hop (saturating at 2^64-1, long past any hop limit)."""
        return HopCountBlock(self.limit, min(self.count + 1, UINT64_MAX))

    def encode_data(self) -> bytes:
        """The block-type-specific data: CBOR ``[limit, count]``."""
        return b"\x82" + encode_uint(self.limit) + encode_uint(self.count)

    @classmethod
    def decode_data(cls, data: bytes) -> HopCountBlock:
        """Parse block-type-specific data; raises :class:`~bpv7.errors.DecodeError`."""
        # RFC 9171 §4.4.3: "The block-type-specific data in a Hop Count Block SHALL be
        # represented as a CBOR array comprising two items", both unsigned integers.
        if _small_hop_count(data):
            # Fast path (every forwarded bundle with a hop limit): a limit and a count under
            # 24, valid as they are.
            value = _NEW(cls)
            _SET_LIMIT(value, data[-2])
            _SET_COUNT(value, data[-1])
            return value
        try:
            count, pos = read_array(data, 0, "hop count block")
            if count not in (2, INDEFINITE):
                raise _block_error(
                    f"hop count data has {count} items, not 2", "hop-count-data", "4.4.3"
                )
            limit, pos = read_uint(data, pos, "hop limit")
            hops, pos = read_uint(data, pos, "hop count")
            if count == INDEFINITE:
                if data[pos] != BREAK:
                    raise _block_error(
                        "hop count data has more than 2 items", "hop-count-data", "4.4.3"
                    )
                pos += 1
        except IndexError:
            raise truncated() from None
        _no_trailing(data, pos, "hop count", "4.4.3")
        try:
            return cls(limit, hops)
        except EncodeError as exc:
            raise _block_error(exc.message, exc.rule, exc.section) from None


def _small_hop_count(data: bytes) -> bool:
    """Whether ``data`` is the usual Hop Count Block data, valid as it is: ``[limit, count]``
    with a count under 24 and a limit of 1..23 (one byte) or 24..255 (``0x18`` and one byte,
    the shortest form RFC 8949 §4.2.1 asks for)."""
    length = len(data)
    if length < 3 or data[0] != 0x82:
        return False
    if length == 3:
        return 0 < data[1] < 24 and data[2] < 24
    return length == 4 and data[1] == 0x18 and data[2] >= 24 and data[3] < 24


_SET_LIMIT = HopCountBlock.__dict__["limit"].__set__
_SET_COUNT = HopCountBlock.__dict__["count"].__set__

ExtensionValue = PreviousNodeBlock | BundleAgeBlock | HopCountBlock
"""A typed extension block value that :meth:`to_block` turns into a :class:`CanonicalBlock`."""


def _no_trailing(data: bytes, end: int, what: str, section: str) -> None:
    # RFC 9171 §4.2.8: block-type-specific data "SHALL be the applicable CBOR encoding of the
    # content of the block" -- one item, nothing after it.
    if end != len(data):
        raise _block_error(
            f"{what} block data has {len(data) - end} bytes after its CBOR item",
            "block-data-trailing-bytes",
            section,
        )


def _check_type(block: CanonicalBlock, type_code: BlockType) -> None:
    if block.type_code != type_code:
        raise ValueError(f"block {block.number} has type {block.type_code}, not {type_code!r}")


_EXTENSION_CODECS: dict[int, Callable[[bytes], object]] = {
    BlockType.PREVIOUS_NODE: PreviousNodeBlock.decode_data,
    BlockType.BUNDLE_AGE: BundleAgeBlock.decode_data,
    BlockType.HOP_COUNT: HopCountBlock.decode_data,
}
EXTENSION_BLOCK_TYPES = frozenset(_EXTENSION_CODECS)
"""The block types whose data this codec parses and checks (RFC 9171 §4.4)."""


# ---------------------------------------------------------------------------------------------
# RFC 9171 §5.6 step 4


@dataclass(frozen=True, slots=True)
class BlockAction:
    """What RFC 9171 §5.6 step 4 requires for an extension block the agent cannot process."""

    report: bool
    """Generate a reception status report with reason "Block unsupported" (if reporting is
    enabled)."""
    delete_bundle: bool
    """Delete the bundle for the reason "Block unsupported"."""
    discard_block: bool
    """Remove this block from the bundle (never set together with ``delete_bundle``)."""


def unprocessable_block_action(block: CanonicalBlock) -> BlockAction:
    """The action RFC 9171 §5.6 step 4 prescribes for ``block`` when the agent cannot process
    it, from its block processing control flags."""
    flags = block.flags
    # §5.6 step 4: "If the block processing control flags in that block indicate that the bundle
    # must be deleted in this event, then the BPA MUST delete the bundle"; "If [they] do *NOT*
    # indicate that the bundle must be deleted in this event but do indicate that the block must
    # be discarded, then the BPA MUST remove this block from the bundle."
    delete = bool(flags & BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE)
    return BlockAction(
        report=bool(flags & BlockFlags.REPORT_IF_UNPROCESSABLE),
        delete_bundle=delete,
        discard_block=not delete and bool(flags & BlockFlags.DISCARD_IF_UNPROCESSABLE),
    )
