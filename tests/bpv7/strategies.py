"""Reusable hypothesis strategies for BPv7 values: EIDs, timestamps, blocks, whole bundles.

Import from other test modules as ``from tests.bpv7.strategies import bundles, eids``. Every
generated value is valid (constructing it does not raise), so ``decode(encode(x)) == x`` holds.
"""

from __future__ import annotations

from hypothesis import strategies as st

from bpv7 import (
    DTN_NONE,
    STATUS_REPORT_REQUEST_FLAGS,
    BlockFlags,
    BlockType,
    Bundle,
    BundleAgeBlock,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    DtnEID,
    EndpointID,
    HopCountBlock,
    IpnEID,
    PreviousNodeBlock,
    PrimaryBlock,
)
from bpv7.security_blocks import AbstractSecurityBlock

__all__ = [
    "RawItem",
    "block_flags",
    "bundle_flags",
    "bundles",
    "canonical_blocks",
    "creation_timestamps",
    "crc_types",
    "dtn_eids",
    "eids",
    "encoded_bundles",
    "ipn_eids",
    "node_ids",
    "opaque_type_codes",
    "raw_bundle",
    "raw_canonical",
    "raw_primary",
    "singleton_eids",
]

UINT64 = st.integers(min_value=0, max_value=2**64 - 1)
SMALLISH = st.one_of(st.integers(0, 30), st.integers(0, 2**16), UINT64)

_NODE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;="
node_names = st.one_of(
    st.text(alphabet=_NODE_CHARS, min_size=1, max_size=20),
    st.builds(
        lambda a, b: f"{a}%{b:02X}",
        st.text(_NODE_CHARS, min_size=1, max_size=5),
        st.integers(0, 255),
    ),
)
demuxes = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=24)

crc_types = st.sampled_from(list(CRCType))
"""Any CRC type."""


@st.composite
def dtn_eids(draw: st.DrawFn, *, allow_none: bool = True) -> DtnEID:
    """dtn-scheme EIDs, including dtn:none when ``allow_none``."""
    if allow_none and draw(st.integers(0, 9)) == 0:
        return DTN_NONE
    return DtnEID(draw(node_names), draw(demuxes))


@st.composite
def ipn_eids(draw: st.DrawFn) -> IpnEID:
    """ipn-scheme EIDs in either CBOR form."""
    allocator = draw(st.one_of(st.just(0), st.integers(0, 2**32 - 1)))
    node = draw(st.one_of(st.integers(0, 100), st.integers(0, 2**32 - 1)))
    service = draw(st.one_of(st.integers(0, 100), UINT64))
    three = draw(st.one_of(st.none(), st.booleans()))
    return IpnEID(allocator, node, service, three)


def eids() -> st.SearchStrategy[EndpointID]:
    """Any endpoint ID."""
    return st.one_of(dtn_eids(), ipn_eids())


def singleton_eids() -> st.SearchStrategy[EndpointID]:
    """EIDs valid as a bundle source: singleton endpoints."""
    return eids().filter(lambda e: e.is_singleton)


def node_ids() -> st.SearchStrategy[EndpointID]:
    """Node IDs: dtn with empty demux, ipn with service 0 (not null)."""
    return st.one_of(
        st.builds(DtnEID, node_names),
        st.builds(IpnEID, st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1), st.just(0)),
    )


creation_timestamps = st.builds(
    CreationTimestamp, st.one_of(st.just(0), st.integers(0, 2**44), UINT64), SMALLISH
)
"""Creation timestamps, zero time included."""

_KNOWN_BUNDLE_FLAGS = [
    BundleFlags.ADMIN_RECORD,
    BundleFlags.MUST_NOT_FRAGMENT,
    BundleFlags.ACK_REQUESTED,
    BundleFlags.STATUS_TIME_REQUESTED,
    BundleFlags.REPORT_RECEPTION,
    BundleFlags.REPORT_FORWARDING,
    BundleFlags.REPORT_DELIVERY,
    BundleFlags.REPORT_DELETION,
]


@st.composite
def bundle_flags(draw: st.DrawFn) -> BundleFlags:
    """Bundle processing control flags (without IS_FRAGMENT), sometimes with unknown bits."""
    flags = 0
    for flag in draw(st.lists(st.sampled_from(_KNOWN_BUNDLE_FLAGS), max_size=4)):
        flags |= flag
    if draw(st.integers(0, 4)) == 0:
        # RFC 9171 §4.2.3: unrecognized flags must be ignored (and so kept).
        flags |= draw(st.sampled_from([0x8, 0x10, 0x80, 0x8000, 0x100000, 1 << 40, 1 << 63]))
    return BundleFlags(flags)


@st.composite
def block_flags(draw: st.DrawFn) -> BlockFlags:
    """Block processing control flags, sometimes with unknown bits."""
    flags = draw(st.integers(0, 0x1F)) & ~0x08
    if draw(st.integers(0, 4)) == 0:
        flags |= draw(st.sampled_from([0x08, 0x20, 0x40, 0x80, 1 << 33]))
    return BlockFlags(flags)


opaque_type_codes = st.one_of(
    st.sampled_from([0, 2, 3, 4, 5, 8, 9, 13, 192, 200, 255]), st.integers(11, 2**64 - 1)
).filter(lambda t: t not in (BlockType.PAYLOAD, 6, 7, 10))
"""Block type codes this codec keeps opaque (unknown, private use; BIB/BCB are remapped)."""


@st.composite
def canonical_blocks(draw: st.DrawFn, *, number: int | None = None) -> CanonicalBlock:
    """Opaque (unknown-type) canonical blocks."""
    type_code = draw(opaque_type_codes)
    if type_code in (BlockType.BIB, BlockType.BCB):
        # BIB/BCB data is an abstract security block (RFC 9172 §3.6) checked with the bundle;
        # tests/bpv7/test_bpsec*.py generate those.
        type_code = 200
    if number is None:
        number = draw(st.integers(2, 2**64 - 1))
    return CanonicalBlock(
        type_code, number, draw(block_flags()), draw(crc_types), draw(st.binary(max_size=40))
    )


@st.composite
def bundles(draw: st.DrawFn, *, max_extra_blocks: int = 4) -> Bundle:
    """Valid bundles: any EIDs and flags the rules allow, fragments, optional Previous Node /
    Bundle Age / Hop Count blocks, opaque blocks, all CRC types (a primary block without a CRC is
    covered by a BIB)."""
    source = draw(st.one_of(singleton_eids(), st.just(DTN_NONE), st.just(IpnEID(0, 0, 0))))
    flags = int(draw(bundle_flags()))
    if flags & BundleFlags.ADMIN_RECORD:
        flags &= ~int(STATUS_REPORT_REQUEST_FLAGS)
    if source.is_null:
        flags |= BundleFlags.MUST_NOT_FRAGMENT
        flags &= ~int(STATUS_REPORT_REQUEST_FLAGS)
    payload = draw(st.binary(max_size=300))
    fragment_offset = total = None
    if not source.is_null and draw(st.integers(0, 4)) == 0:
        flags |= BundleFlags.IS_FRAGMENT
        fragment_offset = draw(st.integers(0, 1000))
        total = fragment_offset + len(payload) + draw(st.integers(1 if not payload else 0, 50))
    creation = draw(creation_timestamps)
    primary_crc = draw(crc_types)
    primary = PrimaryBlock(
        BundleFlags(flags),
        primary_crc,
        draw(eids()),
        source,
        draw(eids()),
        creation,
        draw(UINT64),
        fragment_offset,
        total,
    )
    no_report = bool(flags & BundleFlags.ADMIN_RECORD) or source.is_null

    def fix(block_flags_value: BlockFlags) -> BlockFlags:
        if no_report:
            return BlockFlags(block_flags_value & ~BlockFlags.REPORT_IF_UNPROCESSABLE)
        return block_flags_value

    numbers = draw(
        st.lists(
            st.integers(2, 2**64 - 1),
            min_size=max_extra_blocks + 4,
            max_size=max_extra_blocks + 4,
            unique=True,
        )
    )
    blocks: list[CanonicalBlock] = []
    values = []
    if draw(st.booleans()):
        values.append(PreviousNodeBlock(draw(node_ids())))
    if creation.time_ms == 0 or draw(st.booleans()):
        values.append(BundleAgeBlock(draw(SMALLISH)))
    if draw(st.booleans()):
        values.append(HopCountBlock(draw(st.integers(1, 255)), draw(SMALLISH)))
    for value in values:
        blocks.append(value.to_block(numbers.pop(), fix(draw(block_flags())), draw(crc_types)))
    for _ in range(draw(st.integers(0, max_extra_blocks))):
        block = draw(canonical_blocks(number=numbers.pop()))
        blocks.append(
            CanonicalBlock(
                block.type_code, block.number, fix(block.flags), block.crc_type, block.data
            )
        )
    if primary_crc == CRCType.NONE:
        # RFC 9171 §4.3.1: allowed with a BIB targeting the primary block; its data is an
        # abstract security block (RFC 9172 §3.6) with the security target [0].
        asb = AbstractSecurityBlock(
            (0,),
            draw(st.integers(0, 2**16)),
            draw(node_ids()),
            results=(((1, draw(st.binary(max_size=20))),),),
        )
        blocks.append(
            CanonicalBlock(
                BlockType.BIB,
                numbers.pop(),
                fix(draw(block_flags())),
                draw(crc_types),
                asb.encode(),
            )
        )
    blocks = draw(st.permutations(blocks))
    blocks.append(
        CanonicalBlock(BlockType.PAYLOAD, 1, fix(draw(block_flags())), draw(crc_types), payload)
    )
    return Bundle(primary, tuple(blocks))


def encoded_bundles() -> st.SearchStrategy[bytes]:
    """The bytes of valid bundles."""
    return bundles().map(lambda b: b.encode())


# ---------------------------------------------------------------------------------------------
# Raw wire builders for hand-made (often invalid) bundles. They use cbor2, an encoder we did not
# write, and compute CRCs the RFC 9171 §4.3.1 way, so a test can break exactly one rule.


def crc_field(crc_type: int, zero: bool = True, value: bytes | None = None) -> bytes:
    """The CBOR CRC field for ``crc_type`` (zeroed unless ``value`` is given)."""
    length = {1: 2, 2: 4}[crc_type]
    return bytes([0x40 | length]) + (value if value is not None else bytes(length))


def raw_block(items: list[object], crc_type: int, *, head: bytes | None = None) -> bytes:
    """A block (primary or canonical) from its field values, CRC appended and computed when
    ``crc_type`` is 1 or 2. ``head`` overrides the array head (e.g. ``b"\\x9f"`` for an
    indefinite-length block, whose break is then appended)."""
    from bpv7.crc import compute_crc

    body = b"".join(item if isinstance(item, RawItem) else cbor2_dumps(item) for item in items)
    count = len(items) + (1 if crc_type in (1, 2) else 0)
    array_head = head if head is not None else bytes([0x80 | count])
    tail = b"\xff" if array_head == b"\x9f" else b""
    if crc_type not in (1, 2):
        return array_head + body + tail
    zeroed = array_head + body + crc_field(crc_type) + tail
    crc = compute_crc(crc_type, [zeroed])
    return array_head + body + crc_field(crc_type, value=crc) + tail


class RawItem(bytes):
    """Bytes inserted verbatim into :func:`raw_block` instead of being CBOR-encoded."""


def cbor2_dumps(item: object) -> bytes:
    import cbor2

    return bytes(cbor2.dumps(item))


def raw_primary(
    *,
    flags: int = 0,
    crc_type: int = 2,
    destination: object = (1, "//dst/svc"),
    source: object = (1, "//src/"),
    report_to: object = (1, "//src/"),
    creation: object = (800_000_000_000, 1),
    lifetime: int = 3_600_000,
    fragment: tuple[int, int] | None = None,
    version: int = 7,
    extra: tuple[object, ...] = (),
    head: bytes | None = None,
) -> bytes:
    """A primary block's bytes with the given field values (valid by default)."""
    items: list[object] = [
        version,
        flags,
        crc_type,
        list(destination),
        list(source),  # type: ignore[call-overload]
        list(report_to),
        creation,
        lifetime,  # type: ignore[call-overload]
    ]
    if fragment is not None:
        items.extend(fragment)
    items.extend(extra)
    return raw_block(items, crc_type, head=head)


def raw_canonical(
    type_code: int = 1,
    number: int = 1,
    flags: int = 0,
    crc_type: int = 2,
    data: bytes = b"payload",
    *,
    head: bytes | None = None,
) -> bytes:
    """A canonical block's bytes (a valid payload block by default)."""
    return raw_block([type_code, number, flags, crc_type, data], crc_type, head=head)


def raw_bundle(primary: bytes | None = None, *blocks: bytes) -> bytes:
    """A bundle's bytes: indefinite-length array of the blocks (default: valid primary and
    payload block)."""
    if primary is None:
        primary = raw_primary()
    if not blocks:
        blocks = (raw_canonical(),)
    return b"\x9f" + primary + b"".join(blocks) + b"\xff"
