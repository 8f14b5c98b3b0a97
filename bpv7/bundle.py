"""Bundles (RFC 9171 §4.1): decode, validate, encode, build, and the edits made when forwarding.

Theory of operation
-------------------
:func:`decode_bundle` walks the received bytes once with the strict CBOR reader of
:mod:`bpv7._cbor`, so it knows the exact byte span of every block. Each block's CRC is checked
over those bytes as received (with the CRC value zeroed), never over a re-encoding. Every block
keeps its received bytes (excluded from equality and repr), so :meth:`Bundle.encode` of an
unchanged decoded bundle reproduces the input exactly. Bundles are immutable: the forwarding
edits (:func:`with_previous_node`, :func:`with_hop_count_incremented`, :func:`with_bundle_age`,
:func:`with_block_removed`, :func:`with_block_added`) return a new bundle in which only the edited
block is encoded afresh, with a new CRC; every other block keeps its exact bytes.

Constructing a :class:`Bundle` (directly, through :meth:`Bundle.build` or an edit) enforces every
bundle-level rule and raises :class:`~bpv7.errors.EncodeError`; decoding enforces the same rules
and raises :class:`~bpv7.errors.DecodeError` subclasses. A ``Bundle`` is therefore always valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._cbor import UINT64_MAX, encode_uint, truncated
from .blocks import (
    EXTENSION_BLOCK_TYPES,
    BundleAgeBlock,
    CanonicalBlock,
    ExtensionValue,
    HopCountBlock,
    PreviousNodeBlock,
    cached_block_flags,
    check_extension_data,
    decode_canonical,
    unchecked_block,
)
from .codes import BlockFlags, BlockType, BundleFlags
from .crc import CRCType
from .eid import EndpointID, parse_eid
from .errors import BlockError, BundleValidationError, EncodeError
from .primary import (
    CreationTimestamp,
    PrimaryBlock,
    cached_bundle_flags,
    check_uint,
    decode_primary,
)
from .security_blocks import encrypted_block_numbers, read_targets, security_violation

if TYPE_CHECKING:
    from typing import Self

_CRC_TYPES = {int(t): t for t in CRCType}

__all__ = [
    "WAIVABLE_RULES",
    "Bundle",
    "BundleID",
    "decode_bundle",
    "encode_bundle",
    "with_block_added",
    "with_block_removed",
    "with_bundle_age",
    "with_forwarding_edits",
    "with_hop_count_incremented",
    "with_previous_node",
]


@dataclass(frozen=True, slots=True)
class BundleID:
    """The identity of a bundle (RFC 9171 §4.3.1: the creation timestamp "together with the
    source node ID and (if the bundle is a fragment) the fragment offset and payload length,
    serve to identify the bundle"). Hashable; use it to detect duplicates."""

    source: EndpointID
    """The node that created the bundle (RFC 9171 §4.2.2 source node ID)."""
    creation: CreationTimestamp
    """When and in which order the source created it (RFC 9171 §4.2.7: time and sequence)."""
    fragment_offset: int | None = None
    """Fragment offset, or ``None`` for a bundle that is not a fragment."""
    fragment_length: int | None = None
    """Payload length of the fragment, or ``None`` for a bundle that is not a fragment."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A valid BPv7 bundle: the primary block and the canonical blocks, payload block last."""

    primary: PrimaryBlock
    """The primary block."""
    blocks: tuple[CanonicalBlock, ...]
    """The canonical blocks in transmission order; the last one is the payload block."""
    waived: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """Rules of :data:`WAIVABLE_RULES` this bundle is not held to (empty: every rule holds).
    Only for bundles from elsewhere that break them, such as RFC 9173's worked examples."""
    _encoded: bytes | None = field(default=None, init=False, compare=False, repr=False)
    """The bundle's bytes when they were made with it (:meth:`encode` returns them)."""

    def __post_init__(self) -> None:
        if type(self.blocks) is not tuple:
            object.__setattr__(self, "blocks", tuple(self.blocks))
        if self.waived:
            object.__setattr__(self, "waived", _check_waivable(self.waived))
        violation = bundle_violation(self.primary, self.blocks, self.waived)
        if violation is not None:
            message, rule, section, *rfc = violation
            raise EncodeError(message, rule=rule, section=section, rfc=rfc[0] if rfc else 9171)

    @classmethod
    def _trusted(
        cls,
        primary: PrimaryBlock,
        blocks: tuple[CanonicalBlock, ...],
        waived: frozenset[str] = frozenset(),
        encoded: bytes | None = None,
    ) -> Self:
        """Construct without re-validating (the decoder or an encoder has just validated);
        ``encoded``: the bundle's bytes, if they were just made."""
        bundle = cls.__new__(cls)
        object.__setattr__(bundle, "_encoded", encoded)
        object.__setattr__(bundle, "waived", waived)
        object.__setattr__(bundle, "primary", primary)
        object.__setattr__(bundle, "blocks", blocks)
        return bundle

    @classmethod
    def _with_encoding(
        cls,
        primary: PrimaryBlock,
        blocks: tuple[CanonicalBlock, ...],
        waived: frozenset[str],
        encoded: bytes,
    ) -> Self:
        """A bundle checked like any other, whose bytes ``encoded`` were written along with its
        blocks (:meth:`encode` returns them without copying)."""
        violation = bundle_violation(primary, blocks, waived)
        if violation is not None:
            message, rule, section, *rfc = violation
            raise EncodeError(message, rule=rule, section=section, rfc=rfc[0] if rfc else 9171)
        return cls._trusted(primary, blocks, waived, encoded)

    # -- reading ------------------------------------------------------------------------------

    @property
    def payload_block(self) -> CanonicalBlock:
        """The payload block (always the last block)."""
        return self.blocks[-1]

    @property
    def payload(self) -> bytes:
        """The payload: the ADU, or a part of it if this bundle is a fragment."""
        return self.blocks[-1].data

    @property
    def is_fragment(self) -> bool:
        """True when the "bundle is a fragment" flag is set."""
        return bool(int(self.primary.flags) & _IS_FRAGMENT)  # (int: IntFlag's & is ~8x slower)

    @property
    def is_admin_record(self) -> bool:
        """True when the payload is an administrative record."""
        return bool(int(self.primary.flags) & _ADMIN_RECORD)

    @property
    def bundle_id(self) -> BundleID:
        """This bundle's identity (source, creation timestamp, fragment offset and length)."""
        primary = self.primary
        if primary.fragment_offset is None:
            return BundleID(primary.source, primary.creation)
        return BundleID(
            primary.source, primary.creation, primary.fragment_offset, len(self.payload)
        )

    def find_block(self, type_code: int) -> CanonicalBlock | None:
        """The first block of type ``type_code``, or ``None``."""
        for block in self.blocks:
            if block.type_code == type_code:
                return block
        return None

    def block_by_number(self, number: int) -> CanonicalBlock | None:
        """The block numbered ``number``, or ``None``."""
        for block in self.blocks:
            if block.number == number:
                return block
        return None

    @property
    def has_security_blocks(self) -> bool:
        """True when the bundle carries a BPSec BIB or BCB (RFC 9172)."""
        return any(b.type_code in _SECURITY_TYPES for b in self.blocks)

    @property
    def encrypted_blocks(self) -> dict[int, int]:
        """``{block number: number of the BCB}`` for every block whose data is ciphertext (a
        target of a BCB, RFC 9172 §3.8): such data is opaque until decrypted (see
        :mod:`bpv7.bpsec`). Empty for a bundle without a BCB."""
        if not any(b.type_code == BlockType.BCB for b in self.blocks):
            return {}
        return encrypted_block_numbers(self.blocks)

    def _readable_block(self, type_code: int) -> CanonicalBlock | None:
        block = self.find_block(type_code)
        if block is None or block.number in self.encrypted_blocks:
            return None
        return block

    @property
    def hop_count(self) -> HopCountBlock | None:
        """The Hop Count Block's value, if the bundle has one that is not encrypted."""
        block = self._readable_block(BlockType.HOP_COUNT)
        return None if block is None else HopCountBlock.decode_data(block.data)

    @property
    def bundle_age_ms(self) -> int | None:
        """The Bundle Age Block's value in milliseconds, if the bundle has one that is not
        encrypted."""
        block = self._readable_block(BlockType.BUNDLE_AGE)
        return None if block is None else BundleAgeBlock.decode_data(block.data).age_ms

    @property
    def previous_node(self) -> EndpointID | None:
        """The Previous Node Block's node ID, if the bundle has one that is not encrypted."""
        block = self._readable_block(BlockType.PREVIOUS_NODE)
        return None if block is None else PreviousNodeBlock.decode_data(block.data).node

    def expiry_dtn_time(self) -> int | None:
        """DTN time (ms) at which the bundle's lifetime ends, or ``None`` when the creation time
        is unknown (zero) and the agent must track age instead (RFC 9171 §5.5)."""
        time_ms = self.primary.creation.time_ms
        return time_ms + self.primary.lifetime_ms if time_ms else None

    # -- writing ------------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The bundle's bytes: an indefinite-length CBOR array of the blocks (RFC 9171 §4.1).
        Blocks that were decoded and not changed contribute their exact received bytes."""
        encoded: bytes | None = getattr(self, "_encoded", None)  # (unset: made with __new__)
        if encoded is not None:
            return encoded
        parts: list[bytes | memoryview] = [b"\x9f", self.primary.encode()]
        for block in self.blocks:
            parts.extend(block.encoded_parts())
        parts.append(b"\xff")
        return b"".join(parts)

    @classmethod
    def build(
        cls,
        *,
        source: EndpointID | str,
        destination: EndpointID | str,
        payload: bytes,
        creation: CreationTimestamp,
        lifetime_ms: int,
        report_to: EndpointID | str | None = None,
        flags: int = 0,
        crc_type: int = CRCType.CRC32C,
        extra_blocks: Iterable[CanonicalBlock | ExtensionValue] = (),
        payload_flags: int = 0,
        fragment_offset: int | None = None,
        total_adu_length: int | None = None,
    ) -> Self:
        """Build a new bundle. EIDs may be given as URI text; ``report_to`` defaults to the
        source. ``extra_blocks`` are placed before the payload block: a :class:`CanonicalBlock`
        keeps its number, a typed value (:class:`PreviousNodeBlock`, :class:`BundleAgeBlock`,
        :class:`HopCountBlock`) gets the next free number and ``crc_type``. When the creation time
        is zero and no Bundle Age Block is given, one with age 0 is added (RFC 9171 §4.4.2)."""
        source_eid = parse_eid(source) if isinstance(source, str) else source
        destination_eid = parse_eid(destination) if isinstance(destination, str) else destination
        if report_to is None:
            report_eid = source_eid
        else:
            report_eid = parse_eid(report_to) if isinstance(report_to, str) else report_to
        crc = _CRC_TYPES.get(crc_type)
        if crc is None:
            raise EncodeError(f"invalid CRC type {crc_type!r}", rule="crc-type", section="4.2.1")
        primary = PrimaryBlock(
            flags if type(flags) is BundleFlags else cached_bundle_flags(flags),
            crc,
            destination_eid,
            source_eid,
            report_eid,
            creation,
            lifetime_ms,
            fragment_offset,
            total_adu_length,
        )
        extras = list(extra_blocks)
        if creation.time_ms == 0 and not any(
            isinstance(b, BundleAgeBlock)
            or (isinstance(b, CanonicalBlock) and b.type_code == BlockType.BUNDLE_AGE)
            for b in extras
        ):
            extras.append(BundleAgeBlock(0))
        used = {b.number for b in extras if isinstance(b, CanonicalBlock)}
        used.add(1)
        blocks: list[CanonicalBlock] = []
        number = 2
        for extra in extras:
            if isinstance(extra, CanonicalBlock):
                blocks.append(extra)
                continue
            while number in used:
                number += 1
            blocks.append(extra.to_block(number, 0, crc_type))
            used.add(number)
        blocks.append(
            CanonicalBlock(BlockType.PAYLOAD, 1, cached_block_flags(payload_flags), crc, payload)
        )
        return cls(primary, tuple(blocks))


# ---------------------------------------------------------------------------------------------
# Validation


def _bib_covers_primary(blocks: tuple[CanonicalBlock, ...]) -> bool:
    """Whether a BPSec BIB lists the primary block (number 0) among its security targets."""
    return any(
        block.type_code == BlockType.BIB and 0 in (read_targets(block.data) or ())
        for block in blocks
    )


WAIVABLE_RULES = frozenset({"primary-crc-missing", "bundle-age-required"})
"""The bundle-level rules a caller may waive (:func:`decode_bundle`'s ``waive``,
:attr:`Bundle.waived`): RFC 9173's Appendix A examples 1, 2 and 4 break both (a CRC-less primary
block that no BIB covers; creation time zero without a Bundle Age Block), and so do bundles from
implementations that follow them."""


def _check_waivable(waived: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    rules = frozenset(waived)
    unknown = rules - WAIVABLE_RULES
    if unknown:
        raise ValueError(
            f"rule {sorted(unknown)[0]!r} cannot be waived (only {sorted(WAIVABLE_RULES)})"
        )
    return rules


def bundle_violation(
    primary: PrimaryBlock,
    blocks: tuple[CanonicalBlock, ...],
    waived: frozenset[str] = frozenset(),
    *,
    encrypted: dict[int, int] | None = None,
) -> tuple[str, str, str] | tuple[str, str, str, int] | None:
    """The first bundle-level rule that ``primary`` and ``blocks`` break, as ``(message, rule,
    section)`` for RFC 9171 or ``(message, rule, section, rfc)`` for another RFC (BPSec's
    rules are RFC 9172's), or ``None``. (Rules about a single block are enforced by the block
    classes.) ``encrypted``: the blocks' :func:`encrypted_block_numbers`, if the caller has
    them."""
    # RFC 9171 §4.1: "The primary block MUST be followed by one or more canonical bundle blocks
    # ... The last such block MUST be a payload block; the bundle MUST have exactly one payload
    # block."
    if type(primary) is not PrimaryBlock:
        return "primary must be a PrimaryBlock", "primary-type", "4.3.1"
    if not blocks:
        return "the bundle has no payload block", "payload-block-missing", "4.1"
    if blocks[-1].type_code != BlockType.PAYLOAD:
        return "the last block is not the payload block", "payload-block-last", "4.1"
    numbers = set()
    seen_types = set()
    report_requested = False
    for block in blocks:
        if type(block) is not CanonicalBlock:
            return "blocks must be CanonicalBlock values", "block-type", "4.3.2"
        number = block.number
        type_code = block.type_code
        if number in numbers:
            if type_code == BlockType.PAYLOAD:
                return "the bundle has more than one payload block", "payload-block-count", "4.1"
            # RFC 9171 §4.1: "The block number uniquely identifies the block within the
            # bundle".
            return f"block number {number} is used twice", "block-number-duplicate", "4.1"
        numbers.add(number)
        if type_code in seen_types and type_code in _AT_MOST_ONE:
            return _AT_MOST_ONE[type_code]
        seen_types.add(type_code)
        if int(block.flags) & _REPORT_IF_UNPROCESSABLE:
            report_requested = True
    if (
        primary.creation.time_ms == 0
        and BlockType.BUNDLE_AGE not in seen_types
        and "bundle-age-required" not in waived
    ):
        # RFC 9171 §4.4.2: "If the bundle's creation time is zero, then the bundle MUST contain
        # exactly one (1) occurrence of this type of block".
        return (
            "the creation time is zero but the bundle has no Bundle Age Block",
            "bundle-age-required",
            "4.4.2",
        )
    if report_requested and (int(primary.flags) & _ADMIN_RECORD or primary.source.is_null):
        # RFC 9171 §4.2.4: "For each bundle whose bundle processing control flags indicate that
        # the bundle's ADU is an administrative record, or whose source node ID is the null
        # endpoint ID ..., the value of the 'Transmit status report if block can't be
        # processed' flag in every canonical block of the bundle MUST be zero."
        return (
            "a block requests a status report if unprocessable, which an administrative record "
            "or anonymous bundle must not do",
            "block-report-flag",
            "4.2.4",
        )
    if _BIB in seen_types or _BCB in seen_types:
        violation = security_violation(
            blocks, is_fragment=bool(int(primary.flags) & _IS_FRAGMENT), encrypted=encrypted
        )
        if violation is not None:
            return violation
    if (
        primary.crc_type == CRCType.NONE
        and "primary-crc-missing" not in waived
        and not _bib_covers_primary(blocks)
    ):
        # RFC 9171 §4.3.1: "The CRC type code for the primary block MAY be zero if the bundle
        # contains a BPSec Block Integrity Block [BPSEC] whose target is the primary block;
        # otherwise, the CRC type code for the primary block MUST be non-zero."
        return (
            "the primary block has no CRC and no BIB protects it",
            "primary-crc-missing",
            "4.3.1",
        )
    offset = primary.fragment_offset
    total = primary.total_adu_length
    if offset is not None and total is not None:
        # RFC 9171 §4.3.1: the fragment offset locates "the bytes comprising the payload of this
        # bundle" in "the original ADU", whose total length is the total ADU length; §3.1: a
        # partial payload is the first or last N bytes of a payload of length M, 0 < N < M.
        length = len(blocks[-1].data)
        if offset >= total or offset + length > total:
            return (
                f"fragment [{offset}, {offset + length}) lies outside the ADU of length {total}",
                "fragment-range",
                "4.3.1",
            )
    return None


_ADMIN_RECORD = int(BundleFlags.ADMIN_RECORD)
_IS_FRAGMENT = int(BundleFlags.IS_FRAGMENT)
_BIB = int(BlockType.BIB)
_BCB = int(BlockType.BCB)
_SECURITY_TYPES = frozenset({BlockType.BIB, BlockType.BCB})
_REPORT_IF_UNPROCESSABLE = int(BlockFlags.REPORT_IF_UNPROCESSABLE)

_AT_MOST_ONE: dict[int, tuple[str, str, str]] = {
    # RFC 9171 §4.4.1: "the bundle ... MUST NOT contain more than one" Previous Node Block.
    BlockType.PREVIOUS_NODE: (
        "the bundle has more than one Previous Node Block",
        "previous-node-count",
        "4.4.1",
    ),
    # RFC 9171 §4.4.2: "A bundle MUST NOT contain multiple occurrences of the Bundle Age Block".
    BlockType.BUNDLE_AGE: (
        "the bundle has more than one Bundle Age Block",
        "bundle-age-count",
        "4.4.2",
    ),
    # RFC 9171 §4.4.3: "A bundle MAY contain one occurrence of this type of block but MUST NOT
    # contain more than one."
    BlockType.HOP_COUNT: (
        "the bundle has more than one Hop Count Block",
        "hop-count-count",
        "4.4.3",
    ),
}


# ---------------------------------------------------------------------------------------------
# Decoding and encoding


_NOTHING_ENCRYPTED: dict[int, int] = {}
_NO_WAIVERS: frozenset[str] = frozenset()


def decode_bundle(data: bytes | bytearray | memoryview, *, waive: Iterable[str] = ()) -> Bundle:
    """Decode and fully validate one bundle. Raises only :class:`~bpv7.errors.DecodeError`
    subclasses (for any bytes), naming the violated rule and its RFC section. ``waive`` names
    rules of :data:`WAIVABLE_RULES` not to enforce (for bundles built like RFC 9173's
    examples); the bundle remembers them in :attr:`Bundle.waived`."""
    waived = _check_waivable(tuple(waive)) if waive else _NO_WAIVERS
    if type(data) is not bytes:
        if not isinstance(data, bytearray | memoryview):
            raise TypeError(f"decode_bundle needs bytes, not {type(data).__name__}")
        data = bytes(data)
    try:
        first = data[0]
        if first != 0x9F:
            # RFC 9171 §4.1: "Each bundle SHALL be a concatenated sequence of at least two
            # blocks, represented as a CBOR indefinite-length array."
            raise BundleValidationError(
                "a bundle must be a CBOR indefinite-length array",
                rule="bundle-not-indefinite-array",
                section="4.1",
            )
        primary, pos = decode_primary(data, 1)
        blocks = []
        has_bcb = False
        while data[pos] != 0xFF:
            block, pos = decode_canonical(data, pos, check_data=False)
            blocks.append(block)
            if block.type_code == _BCB:
                has_bcb = True
    except IndexError:
        raise truncated() from None
    # RFC 9172 §3.8: a BCB's targets carry ciphertext; their data is opaque until decrypted and
    # is not parsed as what the block type says. Every other extension block is checked here.
    encrypted = encrypted_block_numbers(blocks) if has_bcb else _NOTHING_ENCRYPTED
    for block in blocks:
        if block.type_code in EXTENSION_BLOCK_TYPES and block.number not in encrypted:
            try:
                check_extension_data(block.type_code, block.data)
            except EncodeError as exc:
                raise BlockError(
                    exc.message, rule=exc.rule, section=exc.section, rfc=exc.rfc
                ) from None
    pos += 1
    if pos != len(data):
        # RFC 9171 §4.1: "The payload block SHALL be followed by a CBOR 'break' stop code,
        # terminating the array" -- and that ends the bundle.
        raise BundleValidationError(
            f"{len(data) - pos} bytes after the end of the bundle",
            rule="trailing-bytes",
            section="4.1",
        )
    block_tuple = tuple(blocks)
    violation = bundle_violation(primary, block_tuple, waived, encrypted=encrypted)
    if violation is not None:
        message, rule, section, *rfc = violation
        raise BundleValidationError(
            message, rule=rule, section=section, rfc=rfc[0] if rfc else 9171
        )
    return Bundle._trusted(primary, block_tuple, waived)


def encode_bundle(bundle: Bundle) -> bytes:
    """The bundle's bytes (same as :meth:`Bundle.encode`)."""
    return bundle.encode()


# ---------------------------------------------------------------------------------------------
# Forwarding-time edits (RFC 9171 §5.4 step 4)


def next_block_number(bundle: Bundle) -> int:
    """A block number not used in ``bundle``: one more than the largest (at least 2), or the
    smallest free one if that would overflow 64 bits."""
    used = {block.number for block in bundle.blocks}
    number = max(2, max(used) + 1)
    if number <= UINT64_MAX:
        return number
    number = 2
    while number in used:
        number += 1
    return number


def _replace_block(bundle: Bundle, old: CanonicalBlock, new: CanonicalBlock) -> Bundle:
    blocks = tuple(new if block is old else block for block in bundle.blocks)
    return Bundle(bundle.primary, blocks, bundle.waived)


def with_block_added(
    bundle: Bundle,
    block: CanonicalBlock | ExtensionValue,
    *,
    flags: int = 0,
    crc_type: int | None = None,
) -> Bundle:
    """A copy of ``bundle`` with ``block`` inserted just before the payload block. A typed value
    gets the next free block number, ``flags`` and ``crc_type`` (default: the primary block's
    CRC type)."""
    if not isinstance(block, CanonicalBlock):
        if crc_type is None:
            crc_type = bundle.primary.crc_type
        block = block.to_block(next_block_number(bundle), flags, crc_type)
    return Bundle(bundle.primary, (*bundle.blocks[:-1], block, bundle.blocks[-1]), bundle.waived)


def with_block_removed(bundle: Bundle, number: int) -> Bundle:
    """A copy of ``bundle`` without block ``number`` (RFC 9171 §4.4: "any BPA MAY insert or
    remove any extension block in any bundle"). The payload block cannot be removed."""
    if number == 1:
        raise EncodeError(
            "the payload block cannot be removed", rule="payload-block-missing", section="4.1"
        )
    blocks = tuple(block for block in bundle.blocks if block.number != number)
    if len(blocks) == len(bundle.blocks):
        raise EncodeError(f"the bundle has no block {number}", rule="no-such-block", section="4.1")
    return Bundle(bundle.primary, blocks, bundle.waived)


def _check_not_encrypted(bundle: Bundle, block: CanonicalBlock) -> None:
    bcb = bundle.encrypted_blocks.get(block.number)
    if bcb is not None:
        # RFC 9172 §3.8: the target of a BCB holds ciphertext; only the security acceptor that
        # decrypts it can change it.
        raise EncodeError(
            f"block {block.number} is encrypted by BCB {bcb} and cannot be edited",
            rule="block-encrypted",
            section="3.8",
            rfc=9172,
        )


def _with_extension(
    bundle: Bundle, value: ExtensionValue, flags: int, crc_type: int | None
) -> Bundle:
    existing = bundle.find_block(value.TYPE_CODE)
    if existing is None:
        return with_block_added(bundle, value, flags=flags, crc_type=crc_type)
    _check_not_encrypted(bundle, existing)
    return _replace_block(bundle, existing, existing.with_data(value.encode_data()))


def with_previous_node(
    bundle: Bundle, node: EndpointID, *, flags: int = 0, crc_type: int | None = None
) -> Bundle:
    """A copy of ``bundle`` whose Previous Node Block names ``node`` (RFC 9171 §5.4 step 4: the
    old block "MUST be removed" and one "containing the node ID of the forwarding node MUST be
    inserted"). An existing block keeps its number, flags and CRC type; a new one gets
    ``flags`` and ``crc_type``."""
    return _with_extension(bundle, PreviousNodeBlock(node), flags, crc_type)


def with_bundle_age(
    bundle: Bundle, age_ms: int, *, flags: int = 0, crc_type: int | None = None
) -> Bundle:
    """A copy of ``bundle`` whose Bundle Age Block holds ``age_ms`` (RFC 9171 §5.4 step 4: "the
    bundle age value MUST be increased by the difference between the current time and the time
    at which the bundle was received"); adds the block if missing."""
    return _with_extension(bundle, BundleAgeBlock(age_ms), flags, crc_type)


def with_hop_count_incremented(bundle: Bundle) -> Bundle:
    """A copy of ``bundle`` with its hop count increased by one (RFC 9171 §4.4.3: "SHOULD be
    increased by 1 on each hop"); ``bundle`` itself if it has no Hop Count Block. Check
    ``result.hop_count.exceeded`` afterwards: such a bundle "SHOULD be deleted for the reason
    'Hop limit exceeded'"."""
    existing = bundle.find_block(BlockType.HOP_COUNT)
    if existing is None:
        return bundle
    _check_not_encrypted(bundle, existing)
    value = HopCountBlock.decode_data(existing.data).incremented()
    return _replace_block(bundle, existing, existing.with_data(value.encode_data()))


def with_forwarding_edits(
    bundle: Bundle,
    *,
    increment_hop_count: bool = False,
    previous_node: EndpointID | None = None,
    bundle_age_ms: int | None = None,
    flags: int = 0,
    crc_type: int | None = None,
) -> Bundle:
    """A copy of ``bundle`` with the forwarding-time edits of RFC 9171 §5.4 step 4 made in one
    pass: the same result as applying :func:`with_hop_count_incremented` (if
    ``increment_hop_count``), :func:`with_previous_node` (if ``previous_node`` is given) and
    :func:`with_bundle_age` (if ``bundle_age_ms`` is given) in turn, without building a bundle
    per edit. Existing blocks keep their number, flags and CRC type; added ones get ``flags``
    and ``crc_type`` (default: the primary block's). A block that a BCB encrypts is left as it
    is (RFC 9172 §3.8: it is opaque here) and no second block of its type is added. ``bundle``
    itself when nothing changes.

    Runs once per forwarded bundle, so it validates only what the edits could break: the
    values it writes are valid by construction, and a bundle without security blocks whose
    added blocks ask for no status report stays valid (no bundle-level rule looks at the data
    of these blocks, and added blocks get free numbers and types the bundle lacks); other
    bundles are validated whole."""
    if previous_node is not None and not previous_node.is_node_id:
        # RFC 9171 §4.4.1: the Previous Node Block's node ID "SHALL conform to Section 4.2.5.2".
        raise EncodeError(
            f"previous node {previous_node} is not a node ID",
            rule="previous-node-id",
            section="4.4.1",
        )
    if bundle_age_ms is not None:
        check_uint(bundle_age_ms, "bundle age", "4.4.2")
    blocks = list(bundle.blocks)
    edited = False
    need_previous = previous_node is not None
    need_age = bundle_age_ms is not None
    encrypted = bundle.encrypted_blocks
    for index, block in enumerate(blocks):
        type_code = block.type_code
        if encrypted and block.number in encrypted:
            if type_code == BlockType.PREVIOUS_NODE:
                need_previous = False
            elif type_code == BlockType.BUNDLE_AGE:
                need_age = False
            continue
        if type_code == BlockType.HOP_COUNT and increment_hop_count:
            data = block.data
            if len(data) == 3 and data[0] == 0x82 and 0 < data[1] < 24 and data[2] < 23:
                data = bytes((0x82, data[1], data[2] + 1))  # the usual small [limit, count]
            else:
                data = HopCountBlock.decode_data(data).incremented().encode_data()
        elif type_code == BlockType.PREVIOUS_NODE and previous_node is not None:
            need_previous = False
            data = previous_node.cbor
        elif type_code == BlockType.BUNDLE_AGE and bundle_age_ms is not None:
            need_age = False
            data = encode_uint(bundle_age_ms)
        else:
            continue
        blocks[index] = unchecked_block(
            block.type_code, block.number, block.flags, block.crc_type, data
        )
        edited = True
    if need_previous or need_age:
        if crc_type is None:
            crc_type = bundle.primary.crc_type
        number = next_block_number(bundle)
        added = []
        if need_previous:
            assert previous_node is not None
            added.append(
                unchecked_block(
                    BlockType.PREVIOUS_NODE,
                    number,
                    cached_block_flags(flags),
                    CRCType(crc_type),
                    previous_node.cbor,
                )
            )
            number = number + 1 if number < UINT64_MAX else _free_number(blocks, added)
        if need_age:
            assert bundle_age_ms is not None
            added.append(BundleAgeBlock(bundle_age_ms).to_block(number, flags, crc_type))
        blocks[-1:-1] = added
    elif not edited:
        return bundle
    if int(flags) & _REPORT_IF_UNPROCESSABLE or bundle.has_security_blocks:
        return Bundle(bundle.primary, tuple(blocks), bundle.waived)
    return Bundle._trusted(bundle.primary, tuple(blocks), bundle.waived)


def _free_number(blocks: list[CanonicalBlock], added: list[CanonicalBlock]) -> int:
    """The smallest block number (at least 2) used by none of ``blocks`` and ``added``."""
    used = {block.number for block in blocks} | {block.number for block in added}
    number = 2
    while number in used:
        number += 1
    return number
