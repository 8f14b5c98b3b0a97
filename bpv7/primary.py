"""The primary bundle block (RFC 9171 §4.3.1) and the creation timestamp (§4.2.7).

:class:`PrimaryBlock` is a frozen value whose constructor enforces every rule of §4.2.3/§4.3.1
that involves the primary block alone (raising :class:`~bpv7.errors.EncodeError`);
:func:`decode_primary` reads one from received bytes, checks its CRC over the bytes as received
and reports problems as :class:`~bpv7.errors.DecodeError` subclasses. A decoded block keeps its
exact received bytes and re-encodes to them; a block built or changed locally is encoded afresh
with a new CRC. "The primary block of each bundle SHALL be immutable" (§4.3.1): nothing here
edits one in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crc32c import crc32c as _crc32c

from ._cbor import (
    BREAK,
    INDEFINITE,
    UINT64_MAX,
    encode_uint,
    read_array,
    read_uint,
    truncated,
    wrong_type,
)
from .codes import STATUS_REPORT_REQUEST_FLAGS, BundleFlags
from .crc import CRC_LENGTH, CRCType, compute_crc
from .eid import DtnEID, EndpointID, IpnEID, decode_eid
from .errors import CRCError, EncodeError, PrimaryBlockError

__all__ = [
    "BP_VERSION",
    "DTN_EPOCH_UNIX",
    "CreationTimestamp",
    "PrimaryBlock",
    "decode_primary",
    "dtn_time_from_unix",
    "unix_from_dtn_time",
]

BP_VERSION = 7
"""RFC 9171 §4.3.1: "The present document describes BPv7." """

DTN_EPOCH_UNIX = 946_684_800
"""RFC 9171 §4.2.6: the DTN epoch, 2000-01-01 00:00:00 +0000 (UTC), in Unix seconds."""


def dtn_time_from_unix(unix_seconds: float) -> int:
    """DTN time (milliseconds since the DTN epoch, RFC 9171 §4.2.6) of a Unix timestamp."""
    return max(0, round((unix_seconds - DTN_EPOCH_UNIX) * 1000))


def unix_from_dtn_time(dtn_time_ms: int) -> float:
    """Unix timestamp (seconds) of a DTN time."""
    return DTN_EPOCH_UNIX + dtn_time_ms / 1000


def check_uint(value: object, what: str, section: str) -> None:
    """Raise :class:`EncodeError` unless ``value`` is an unsigned 64-bit integer (CBOR major
    type 0, RFC 8949 §3.1) — for fields a caller sets (used by the block modules too)."""
    if type(value) is not int or not 0 <= value <= UINT64_MAX:
        raise EncodeError(
            f"{what} must be an unsigned 64-bit integer, not {value!r:.40}",
            rule="uint-range",
            section=section,
        )


@dataclass(frozen=True, slots=True)
class CreationTimestamp:
    """A bundle's creation timestamp (RFC 9171 §4.2.7), CBOR ``[time_ms, sequence]``."""

    time_ms: int
    """Bundle creation time in DTN time (ms since 2000-01-01 UTC); 0 means the source had no
    accurate clock (RFC 9171 §4.2.6: "The DTN time value zero indicates that the time is
    unknown")."""
    sequence: int
    """The source's sequence number for bundles created in the same millisecond."""

    def __post_init__(self) -> None:
        # RFC 9171 §4.2.7: both items "represented as a CBOR unsigned integer".
        check_uint(self.time_ms, "creation time", "4.2.7")
        check_uint(self.sequence, "creation sequence number", "4.2.7")

    @classmethod
    def from_unix(cls, unix_seconds: float, sequence: int = 0) -> CreationTimestamp:
        """The timestamp for a bundle created at ``unix_seconds`` (e.g. ``time.time()``)."""
        return cls(dtn_time_from_unix(unix_seconds), sequence)

    @property
    def has_clock(self) -> bool:
        """False when the creation time is zero (unknown, RFC 9171 §4.2.6)."""
        return self.time_ms != 0

    def to_unix(self) -> float | None:
        """The creation time in Unix seconds, or ``None`` when it is unknown (zero)."""
        return unix_from_dtn_time(self.time_ms) if self.time_ms else None


@dataclass(frozen=True, slots=True)
class PrimaryBlock:
    """The primary bundle block (RFC 9171 §4.3.1)."""

    flags: BundleFlags
    """Bundle processing control flags (§4.2.3); unknown bits are kept."""
    crc_type: CRCType
    """CRC type of this block (§4.2.1); NONE only when a BIB covers the primary block."""
    destination: EndpointID
    """The endpoint the bundle is destined for."""
    source: EndpointID
    """Node ID of the source, or the null endpoint for an anonymous bundle."""
    report_to: EndpointID
    """Where status reports about this bundle go."""
    creation: CreationTimestamp
    """Creation timestamp (§4.2.7)."""
    lifetime_ms: int
    """Milliseconds after creation when the payload is no longer useful."""
    fragment_offset: int | None = None
    """Offset of this fragment's payload in the original ADU; set iff the bundle is a fragment."""
    total_adu_length: int | None = None
    """Length of the original ADU; set iff the bundle is a fragment."""
    version: int = BP_VERSION
    """Bundle Protocol version; always 7."""
    _raw: bytes | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # RFC 9171 §4.3.1 Version: "The present document describes BPv7."
        if self.version != BP_VERSION:
            raise EncodeError(
                f"unsupported bundle protocol version {self.version!r}",
                rule="version",
                section="4.3.1",
            )
        flags = self.flags
        if type(flags) is not BundleFlags:
            check_uint(flags, "bundle processing control flags", "4.2.3")
            flags = cached_bundle_flags(flags)
            object.__setattr__(self, "flags", flags)
        crc_type = self.crc_type
        if type(crc_type) is not CRCType:
            # RFC 9171 §4.2.1: "the following values (and no others) are valid"
            if type(crc_type) is not int or crc_type not in CRC_LENGTH:
                raise EncodeError(
                    f"invalid CRC type {crc_type!r}", rule="crc-type", section="4.2.1"
                )
            object.__setattr__(self, "crc_type", CRCType(crc_type))
        eid_types = _EID_TYPES
        if not (
            type(self.destination) in eid_types
            and type(self.source) in eid_types
            and type(self.report_to) in eid_types
        ):
            raise EncodeError(
                "destination, source and report_to must be EndpointIDs",
                rule="eid",
                section="4.3.1",
            )
        if type(self.creation) is not CreationTimestamp:
            raise EncodeError(
                "creation must be a CreationTimestamp", rule="creation", section="4.3.1"
            )
        lifetime = self.lifetime_ms
        if type(lifetime) is not int or not 0 <= lifetime <= UINT64_MAX:
            check_uint(lifetime, "lifetime", "4.3.1")
        int_flags = int(flags)
        check_primary_rules(int_flags, self.source, self.fragment_offset, self.total_adu_length)
        if int_flags & _IS_FRAGMENT:
            check_uint(self.fragment_offset, "fragment offset", "4.3.1")
            check_uint(self.total_adu_length, "total ADU length", "4.3.1")

    @property
    def is_fragment(self) -> bool:
        """True when the "bundle is a fragment" flag is set."""
        return bool(self.flags & BundleFlags.IS_FRAGMENT)

    @property
    def is_admin_record(self) -> bool:
        """True when the "ADU is an administrative record" flag is set."""
        return bool(self.flags & BundleFlags.ADMIN_RECORD)

    def encode(self) -> bytes:
        """The block's CBOR bytes: as received for a decoded block, otherwise freshly encoded
        with a newly computed CRC."""
        raw = self._raw
        if raw is None:
            raw = self._encode()
            object.__setattr__(self, "_raw", raw)
        return raw

    def _encode(self) -> bytes:
        crc_length = CRC_LENGTH[self.crc_type]
        creation = self.creation
        parts = [
            b"",  # array head, below
            b"\x07",
            encode_uint(self.flags),
            encode_uint(self.crc_type),
            self.destination.cbor,
            self.source.cbor,
            self.report_to.cbor,
            b"\x82",
            encode_uint(creation.time_ms),
            encode_uint(creation.sequence),
            encode_uint(self.lifetime_ms),
        ]
        if self.fragment_offset is not None and self.total_adu_length is not None:
            parts.append(encode_uint(self.fragment_offset))
            parts.append(encode_uint(self.total_adu_length))
        if crc_length:
            # RFC 9171 §4.2.2: "a CBOR byte string of two bytes ... or of four bytes"; it is
            # computed with its value bytes zeroed (§4.3.1).
            parts.append(b"\x42\x00\x00" if crc_length == 2 else b"\x44\x00\x00\x00\x00")
        # RFC 9171 §4.3.1: "the number of elements in the array SHALL be 8 ..., 9 ..., 10 ...,
        # or 11"; len(parts) - 3 counts the fields (the head and the creation timestamp's two
        # pieces are not fields of their own).
        parts[0] = bytes((0x80 | (len(parts) - 3),))
        raw = b"".join(parts)
        if crc_length == 4:
            return raw[:-4] + int(_crc32c(raw)).to_bytes(4, "big")
        if crc_length:
            return raw[:-2] + compute_crc(self.crc_type, (raw,))
        return raw


_IS_FRAGMENT = int(BundleFlags.IS_FRAGMENT)
_ADMIN_RECORD = int(BundleFlags.ADMIN_RECORD)
_MUST_NOT_FRAGMENT = int(BundleFlags.MUST_NOT_FRAGMENT)
_REPORT_REQUESTS = int(STATUS_REPORT_REQUEST_FLAGS)


def check_primary_rules(
    flags: int,
    source: EndpointID,
    fragment_offset: int | None,
    total_adu_length: int | None,
) -> None:
    """Enforce the rules of RFC 9171 §4.2.3/§4.3.1/§5.2 that tie the primary block's fields
    together (``flags`` as a plain ``int``); raises :class:`~bpv7.errors.EncodeError`."""
    is_fragment = bool(flags & _IS_FRAGMENT)
    # RFC 9171 §4.3.1: "If and only if the bundle processing control flags of this primary
    # block indicate that the bundle is a fragment, fragment offset SHALL be present in the
    # primary block" (and likewise total application data unit length).
    if is_fragment != (fragment_offset is not None) or is_fragment != (
        total_adu_length is not None
    ):
        raise EncodeError(
            "fragment offset and total ADU length must be present if and only if the "
            "'bundle is a fragment' flag is set",
            rule="fragment-fields",
            section="4.3.1",
        )
    # RFC 9171 §4.2.3: "If the bundle processing control flags indicate that the bundle's ADU
    # is an administrative record, then all status report request flag values MUST be zero."
    if flags & _REPORT_REQUESTS and flags & _ADMIN_RECORD:
        raise EncodeError(
            "an administrative record must not request status reports",
            rule="admin-record-report-request",
            section="4.2.3",
        )
    if source.is_null:
        # RFC 9171 §4.2.3: if the source node ID is the null endpoint ID "the 'Bundle must not
        # be fragmented' flag value MUST be 1, and all status report request flag values MUST
        # be zero."
        if not flags & _MUST_NOT_FRAGMENT:
            raise EncodeError(
                "an anonymous bundle (null source) must have 'must not be fragmented' set",
                rule="anonymous-must-not-fragment",
                section="4.2.3",
            )
        if flags & _REPORT_REQUESTS:
            raise EncodeError(
                "an anonymous bundle (null source) must not request status reports",
                rule="anonymous-report-request",
                section="4.2.3",
            )
    elif not source.is_singleton:
        # RFC 9171 §5.2: "The source node ID of the bundle MUST be either (a) the null endpoint
        # ID ... or (b) the EID of a singleton endpoint".
        raise EncodeError(
            f"source {source} is not a singleton endpoint",
            rule="source-not-singleton",
            section="5.2",
        )


# Decoded values have already been checked by the decoder, so it builds the frozen instances
# through the slot descriptors directly: about half the cost of the validating __init__.
_NEW = object.__new__
_SET_TIME = CreationTimestamp.__dict__["time_ms"].__set__
_SET_SEQUENCE = CreationTimestamp.__dict__["sequence"].__set__
_SET_FLAGS = PrimaryBlock.__dict__["flags"].__set__
_SET_CRC_TYPE = PrimaryBlock.__dict__["crc_type"].__set__
_SET_DESTINATION = PrimaryBlock.__dict__["destination"].__set__
_SET_SOURCE = PrimaryBlock.__dict__["source"].__set__
_SET_REPORT_TO = PrimaryBlock.__dict__["report_to"].__set__
_SET_CREATION = PrimaryBlock.__dict__["creation"].__set__
_SET_LIFETIME = PrimaryBlock.__dict__["lifetime_ms"].__set__
_SET_OFFSET = PrimaryBlock.__dict__["fragment_offset"].__set__
_SET_TOTAL = PrimaryBlock.__dict__["total_adu_length"].__set__
_SET_VERSION = PrimaryBlock.__dict__["version"].__set__
_SET_RAW = PrimaryBlock.__dict__["_raw"].__set__


def _error(message: str, rule: str, section: str = "4.3.1") -> PrimaryBlockError:
    return PrimaryBlockError(message, rule=rule, section=section)


_FLAGS_CACHE: dict[int, BundleFlags] = {}


def cached_bundle_flags(value: int) -> BundleFlags:
    """``BundleFlags(value)``, memoised: IntFlag construction is slow and few values occur."""
    flags = _FLAGS_CACHE.get(value)
    if flags is None:
        flags = BundleFlags(value)
        if len(_FLAGS_CACHE) < 1024:
            _FLAGS_CACHE[value] = flags
    return flags


_CRC_TYPES = {int(t): t for t in CRCType}
_EID_TYPES = (DtnEID, IpnEID)


def read_crc_type(data: bytes, pos: int, what: str, section: str) -> tuple[CRCType, int]:
    """Read a CRC type code; only 0, 1 and 2 are valid (RFC 9171 §4.2.1)."""
    value = data[pos]
    if value < 24:
        pos += 1
    else:
        value, pos = read_uint(data, pos, what)
    crc_type = _CRC_TYPES.get(value)
    if crc_type is None:
        # RFC 9171 §4.2.1: "CRC type is an unsigned integer type code for which the following
        # values (and no others) are valid"
        raise CRCError(f"{what}: invalid CRC type {value}", rule="crc-type", section="4.2.1")
    return crc_type, pos


def read_crc_field(data: bytes, pos: int, crc_type: CRCType, what: str) -> int:
    """Check the CRC field's head at ``pos``; return the position of its value bytes."""
    ib = data[pos]
    # RFC 9171 §4.2.2: "the CRC SHALL be represented as a CBOR byte string of two bytes (that
    # is, CBOR additional information 2, if CRC type is 1) or of four bytes (that is, CBOR
    # additional information 4, if CRC type is 2)"
    expected = 0x42 if crc_type == CRCType.CRC16_X25 else 0x44
    if ib != expected:
        if ib >> 5 != 2:
            raise wrong_type(ib, "a byte string (the CRC)", what)
        raise CRCError(
            f"{what}: CRC field is not a {CRC_LENGTH[crc_type]}-byte byte string",
            rule="crc-length",
            section="4.2.2",
        )
    if pos + 1 + CRC_LENGTH[crc_type] > len(data):
        raise truncated()
    return pos + 1


def decode_primary(data: bytes, pos: int) -> tuple[PrimaryBlock, int]:
    """Decode the primary block starting at ``data[pos]``; return it and the position after it.

    Checks the CBOR shape, the CRC over the received bytes, and every rule of
    :class:`PrimaryBlock`. ``IndexError`` means the input ended early (the caller reports it).
    """
    start = pos
    # RFC 9171 §4.3.1: "Each primary block SHALL be represented as a CBOR array".
    count, pos = read_array(data, pos, "primary block")
    if count != INDEFINITE and not 8 <= count <= 11:
        raise _error(f"primary block array has {count} items, not 8 to 11", "primary-array-length")
    # Fast paths below handle the usual one-byte items inline; read_uint handles the rest.
    version = data[pos]
    if version != BP_VERSION:
        version, _ = read_uint(data, pos, "version")
        # RFC 9171 §4.3.1 Version: "The present document describes BPv7."
        raise _error(f"unsupported bundle protocol version {version}", "version")
    pos += 1
    flags = data[pos]
    if flags < 24:
        pos += 1
    else:
        flags, pos = read_uint(data, pos, "bundle processing control flags")
    crc_type, pos = read_crc_type(data, pos, "primary block CRC type", "4.3.1")
    destination, pos = decode_eid(data, pos, "destination")
    source, pos = decode_eid(data, pos, "source node ID")
    report_to, pos = decode_eid(data, pos, "report-to EID")
    # RFC 9171 §4.2.7: "Each bundle's creation timestamp SHALL be represented as a CBOR array
    # comprising two items."
    if data[pos] == 0x82:
        pos += 1
        ts_count = 2
    else:
        ts_count, pos = read_array(data, pos, "creation timestamp")
        if ts_count != 2 and ts_count != INDEFINITE:
            raise _error(f"creation timestamp has {ts_count} items, not 2", "creation-timestamp")
    time_ms, pos = read_uint(data, pos, "creation time")
    sequence, pos = read_uint(data, pos, "creation sequence number")
    if ts_count == INDEFINITE:
        if data[pos] != BREAK:
            raise _error("creation timestamp has more than 2 items", "creation-timestamp")
        pos += 1
    lifetime, pos = read_uint(data, pos, "lifetime")
    fragment_offset = total_adu_length = None
    is_fragment = flags & _IS_FRAGMENT
    expected = 8 + (2 if is_fragment else 0) + (1 if crc_type else 0)
    if count != INDEFINITE and count != expected:
        # RFC 9171 §4.3.1: the array has "8 (if the bundle is not a fragment and the block has no
        # CRC), 9 (if the block has a CRC and the bundle is not a fragment), 10 (if the bundle is
        # a fragment and the block has no CRC), or 11 (if the bundle is a fragment and the block
        # has a CRC)" elements; §4.2.2: "The CRC SHALL be omitted from a block if and only if the
        # block's CRC type code is zero."
        raise _error(
            f"primary block has {count} items but its flags and CRC type call for {expected}",
            "primary-array-length",
        )
    if is_fragment:
        fragment_offset, pos = read_uint(data, pos, "fragment offset")
        total_adu_length, pos = read_uint(data, pos, "total ADU length")
    crc_pos = 0
    if crc_type:
        crc_pos = read_crc_field(data, pos, crc_type, "primary block")
        pos = crc_pos + CRC_LENGTH[crc_type]
    if count == INDEFINITE:
        if data[pos] != BREAK:
            raise _error(
                f"primary block has more items than its flags and CRC type call for ({expected})",
                "primary-array-length",
            )
        pos += 1
    raw = data[start:pos]
    if crc_type:
        check_crc(raw, crc_pos - start, crc_type, "primary block")
    try:
        check_primary_rules(flags, source, fragment_offset, total_adu_length)
    except EncodeError as exc:
        raise PrimaryBlockError(
            exc.message, rule=exc.rule, section=exc.section, rfc=exc.rfc
        ) from None
    creation = _NEW(CreationTimestamp)
    _SET_TIME(creation, time_ms)
    _SET_SEQUENCE(creation, sequence)
    block = _NEW(PrimaryBlock)
    _SET_FLAGS(block, cached_bundle_flags(flags))
    _SET_CRC_TYPE(block, crc_type)
    _SET_DESTINATION(block, destination)
    _SET_SOURCE(block, source)
    _SET_REPORT_TO(block, report_to)
    _SET_CREATION(block, creation)
    _SET_LIFETIME(block, lifetime)
    _SET_OFFSET(block, fragment_offset)
    _SET_TOTAL(block, total_adu_length)
    _SET_VERSION(block, BP_VERSION)
    _SET_RAW(block, raw)
    return block, pos


def check_crc(raw: bytes, crc_offset: int, crc_type: CRCType, what: str) -> None:
    """Verify the CRC of a block whose exact received bytes are ``raw`` and whose CRC value
    bytes start at ``raw[crc_offset]``.

    RFC 9171 §4.3.1/§4.3.2: the CRC is "computed over the concatenation of all bytes (including
    CBOR 'break' characters) of the [block] including the CRC field itself, which, for this
    purpose, SHALL be temporarily populated with all [value] bytes set to zero" (erratum 8043:
    the CRC field's initial byte is unchanged). §5.6 step 3: a block whose CRC differs means the
    bundle MUST be deleted.
    """
    length = CRC_LENGTH[crc_type]
    end = crc_offset + length
    received = raw[crc_offset:end]
    if crc_type == CRCType.CRC32C:
        value = _crc32c(b"\x00\x00\x00\x00" + raw[end:], _crc32c(raw[:crc_offset]))
        computed = int(value).to_bytes(4, "big")
    else:
        computed = compute_crc(crc_type, (raw[:crc_offset], b"\x00\x00", raw[end:]))
    if computed != received:
        raise CRCError(
            f"{what}: CRC mismatch (received {received.hex()}, computed {computed.hex()})",
            rule="crc-mismatch",
            section="5.6",
        )
