"""Whole bundles (RFC 9171 §4.1, §4.2.3, §4.2.4, §4.4): decode, validate, encode, build, edit."""

import cbor2
import pytest

from bpv7 import (
    DTN_NONE,
    BlockFlags,
    BlockType,
    Bundle,
    BundleAgeBlock,
    BundleFlags,
    BundleID,
    BundleValidationError,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    DecodeError,
    DtnEID,
    EncodeError,
    HopCountBlock,
    IpnEID,
    PreviousNodeBlock,
    decode_bundle,
    encode_bundle,
    next_block_number,
    with_block_added,
    with_block_removed,
    with_bundle_age,
    with_forwarding_edits,
    with_hop_count_incremented,
    with_previous_node,
)
from tests.bpv7.strategies import raw_bundle, raw_canonical, raw_primary

PAYLOAD = raw_canonical()


def test_simple_bundle_round_trip(simple_bundle: Bundle) -> None:
    raw = simple_bundle.encode()
    assert raw[0] == 0x9F and raw[-1] == 0xFF
    assert encode_bundle(simple_bundle) == raw
    decoded = decode_bundle(raw)
    assert decoded == simple_bundle
    assert decoded.payload == bytes(range(100))
    assert decoded.payload_block.number == 1
    assert decoded.primary.report_to == DtnEID("src", "app")
    assert all(b.crc_type == CRCType.CRC32C for b in decoded.blocks)
    assert decoded.primary.crc_type == CRCType.CRC32C


def test_bundle_accessors(simple_bundle: Bundle) -> None:
    assert not simple_bundle.is_fragment and not simple_bundle.is_admin_record
    assert simple_bundle.bundle_id == BundleID(
        DtnEID("src", "app"), CreationTimestamp(800_000_000_000, 1)
    )
    assert hash(simple_bundle.bundle_id) == hash(decode_bundle(simple_bundle.encode()).bundle_id)
    assert simple_bundle.find_block(BlockType.PAYLOAD) is simple_bundle.payload_block
    assert simple_bundle.find_block(BlockType.HOP_COUNT) is None
    assert simple_bundle.block_by_number(1) is simple_bundle.payload_block
    assert simple_bundle.block_by_number(9) is None
    assert simple_bundle.hop_count is None
    assert simple_bundle.bundle_age_ms is None
    assert simple_bundle.previous_node is None
    assert simple_bundle.expiry_dtn_time() == 800_000_000_000 + 3_600_000


def test_fragment_bundle_id() -> None:
    bundle = Bundle.build(
        source="ipn:1.0",
        destination="ipn:2.1",
        payload=b"abcd",
        creation=CreationTimestamp(5, 0),
        lifetime_ms=10,
        flags=BundleFlags.IS_FRAGMENT,
        fragment_offset=4,
        total_adu_length=8,
    )
    assert bundle.is_fragment
    assert bundle.bundle_id == BundleID(IpnEID(0, 1, 0), CreationTimestamp(5, 0), 4, 4)


def test_build_defaults_and_numbering() -> None:
    bundle = Bundle.build(
        source="dtn://a/",
        destination="dtn://b/x",
        payload=b"p",
        creation=CreationTimestamp(0, 3),
        lifetime_ms=1,
        crc_type=CRCType.CRC16_X25,
        extra_blocks=[
            HopCountBlock(5, 0),
            CanonicalBlock(200, 2, BlockFlags(0), CRCType.NONE, b"opaque"),
            PreviousNodeBlock(DtnEID("r")),
        ],
    )
    types = [(b.type_code, b.number) for b in bundle.blocks]
    # The age block required by creation time 0 is added; typed values skip the taken number 2.
    assert types == [(10, 3), (200, 2), (6, 4), (7, 5), (1, 1)]
    assert bundle.bundle_age_ms == 0
    assert bundle.expiry_dtn_time() is None
    assert bundle.blocks[0].crc_type == CRCType.CRC16_X25
    assert bundle.blocks[1].crc_type == CRCType.NONE
    assert bundle.primary.report_to == DtnEID("a")
    assert next_block_number(bundle) == 6
    assert decode_bundle(bundle.encode()) == bundle


def test_build_rejects_bad_arguments() -> None:
    with pytest.raises(EncodeError, match="CRC type"):
        Bundle.build(
            source="dtn://a/",
            destination="dtn://b/",
            payload=b"",
            creation=CreationTimestamp(1, 0),
            lifetime_ms=1,
            crc_type=7,
        )
    with pytest.raises(EncodeError) as info:
        Bundle.build(
            source=DTN_NONE,
            destination="dtn://b/",
            payload=b"",
            creation=CreationTimestamp(1, 0),
            lifetime_ms=1,
        )
    assert info.value.rule == "anonymous-must-not-fragment"


def _bundle_error(raw: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_bundle(raw)
    return info.value


AGE = raw_canonical(7, 2, 0, 2, b"\x00")


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b"", "cbor-truncated"),
        (b"\x9f", "cbor-truncated"),
        (b"\x82" + raw_primary() + PAYLOAD, "bundle-not-indefinite-array"),
        (b"\x9f" + raw_primary() + PAYLOAD, "cbor-truncated"),
        (raw_bundle() + b"\x00", "trailing-bytes"),
        (b"\x9f" + raw_primary() + b"\xff", "payload-block-missing"),
        (raw_bundle(None, PAYLOAD, AGE), "payload-block-last"),
        (raw_bundle(None, PAYLOAD, PAYLOAD), "payload-block-count"),
        (
            raw_bundle(None, raw_canonical(200, 5), raw_canonical(201, 5), PAYLOAD),
            "block-number-duplicate",
        ),
        (raw_bundle(None, AGE, raw_canonical(7, 3, 0, 0, b"\x01"), PAYLOAD), "bundle-age-count"),
        (
            raw_bundle(
                None,
                raw_canonical(10, 2, 0, 0, b"\x82\x01\x00"),
                raw_canonical(10, 3, 0, 0, b"\x82\x01\x00"),
                PAYLOAD,
            ),
            "hop-count-count",
        ),
        (
            raw_bundle(
                None,
                raw_canonical(6, 2, 0, 0, b"\x82\x01\x64//a/"),
                raw_canonical(6, 3, 0, 0, b"\x82\x01\x64//b/"),
                PAYLOAD,
            ),
            "previous-node-count",
        ),
        (raw_bundle(raw_primary(creation=[0, 5])), "bundle-age-required"),
        (
            raw_bundle(raw_primary(flags=BundleFlags.ADMIN_RECORD), raw_canonical(flags=0x02)),
            "block-report-flag",
        ),
        (
            raw_bundle(
                raw_primary(source=(1, 0), flags=BundleFlags.MUST_NOT_FRAGMENT),
                raw_canonical(200, 2, 0x02),
                PAYLOAD,
            ),
            "block-report-flag",
        ),
        (raw_bundle(raw_primary(crc_type=0)), "primary-crc-missing"),
        # A bundle with BPSec blocks may have a CRC-less primary block (as in RFC 9173 Appendix
        # A), but its security blocks must be well formed (RFC 9172 §3.6).
        (
            raw_bundle(raw_primary(crc_type=0), raw_canonical(11, 2, 0, 0, b"\x81\x01"), PAYLOAD),
            "cbor-truncated",
        ),
        (
            raw_bundle(raw_primary(crc_type=0), raw_canonical(11, 2, 0, 0, b"\xff"), PAYLOAD),
            "cbor-type",
        ),
        (
            raw_bundle(raw_primary(flags=1, fragment=(8, 10)), raw_canonical(data=b"abc")),
            "fragment-range",
        ),
        (
            raw_bundle(raw_primary(flags=1, fragment=(10, 10)), raw_canonical(data=b"")),
            "fragment-range",
        ),
    ],
)
def test_bundle_rules(raw: bytes, rule: str) -> None:
    error = _bundle_error(raw)
    assert error.rule == rule, error


def test_bundle_rule_errors_are_bundle_validation_errors() -> None:
    error = _bundle_error(raw_bundle(None, PAYLOAD, AGE))
    assert isinstance(error, BundleValidationError)
    assert error.section == "4.1"
    assert "payload-block-last" in str(error) and "4.1" in str(error)


def test_every_truncation_is_a_decode_error(simple_bundle: Bundle) -> None:
    raw = simple_bundle.encode()
    for end in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_bundle(raw[:end])


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        decode_bundle("9f")  # type: ignore[arg-type]


def test_huge_claimed_lengths_do_not_allocate() -> None:
    # A byte string claiming 2^64-1 bytes must fail fast, not allocate.
    block = b"\x85\x01\x01\x00\x00\x5b" + b"\xff" * 8
    assert _bundle_error(b"\x9f" + raw_primary() + block + b"\xff").rule == "cbor-truncated"
    huge_array = b"\x9b" + b"\xff" * 8
    assert _bundle_error(b"\x9f" + huge_array).rule == "primary-array-length"


def test_bib_covering_primary_allows_primary_without_crc() -> None:
    # A well-formed abstract security block (RFC 9172 §3.6): context 1, no parameters, security
    # source ipn:2.1, one result [1, h'00'] per target.
    result = b"\x81\x82\x01\x41\x00"
    for targets, results in (
        (b"\x81\x00", b"\x81" + result),
        (b"\x82\x01\x00", b"\x82" + result + result),
        (b"\x9f\x01\x00\xff", b"\x82" + result + result),
    ):
        bib = raw_canonical(11, 2, 0, 0, targets + b"\x01\x00\x82\x02\x82\x02\x01" + results)
        raw = raw_bundle(raw_primary(crc_type=0), bib, PAYLOAD)
        decoded = decode_bundle(raw)
        assert decoded.primary.crc_type == CRCType.NONE
        assert decoded.encode() == raw


def test_admin_record_and_anonymous_bundles_without_report_flags_are_valid() -> None:
    decode_bundle(raw_bundle(raw_primary(flags=BundleFlags.ADMIN_RECORD)))
    decode_bundle(raw_bundle(raw_primary(source=(1, 0), flags=BundleFlags.MUST_NOT_FRAGMENT)))
    decode_bundle(raw_bundle(raw_primary(source=(2, [0, 0]), flags=BundleFlags.MUST_NOT_FRAGMENT)))


def test_bundle_constructor_rejects_invalid_combinations(simple_bundle: Bundle) -> None:
    payload = simple_bundle.payload_block
    with pytest.raises(EncodeError) as info:
        Bundle(simple_bundle.primary, ())
    assert info.value.rule == "payload-block-missing"
    age = BundleAgeBlock(1).to_block(2)
    with pytest.raises(EncodeError) as info:
        Bundle(simple_bundle.primary, (payload, age))
    assert info.value.rule == "payload-block-last"
    with pytest.raises(EncodeError) as info:
        Bundle(simple_bundle.primary, (age, age, payload))
    assert info.value.rule == "block-number-duplicate"
    with pytest.raises(EncodeError) as info:
        Bundle(simple_bundle.primary, ("x", payload))  # type: ignore[arg-type]
    assert info.value.rule == "block-type"
    with pytest.raises(EncodeError) as info:
        Bundle("x", (payload,))  # type: ignore[arg-type]
    assert info.value.rule == "primary-type"
    assert Bundle(simple_bundle.primary, [payload]).blocks == (payload,)  # type: ignore[arg-type]


def test_reencoding_reproduces_unusual_but_valid_encodings() -> None:
    raw = raw_bundle(
        raw_primary(
            head=b"\x9f",
            destination=(2, [7, 9, 3]),
            source=(2, [(1 << 32) | 5, 0]),
            report_to=(2, [0, 5, 0]),
            crc_type=1,
            flags=(1 << 50),
        ),
        raw_canonical(200, 9, 0xFF, 1, b"", head=b"\x9f"),
        raw_canonical(head=b"\x9f"),
    )
    decoded = decode_bundle(raw)
    assert decoded.primary.source == IpnEID(1, 5, 0)
    assert decoded.primary.report_to == IpnEID(0, 5, 0)
    assert decoded.encode() == raw


def test_edits_keep_other_blocks_bytes_and_refresh_crcs() -> None:
    age = raw_canonical(7, 2, 0, 1, b"\x18\x64", head=b"\x9f")
    hops = raw_canonical(10, 3, 0, 2, b"\x82\x02\x00")
    opaque = raw_canonical(200, 4, 0x10, 1, b"opaque", head=b"\x9f")
    raw = raw_bundle(None, age, hops, opaque, PAYLOAD)
    bundle = decode_bundle(raw)
    assert bundle.bundle_age_ms == 100 and bundle.hop_count == HopCountBlock(2, 0)

    aged = with_bundle_age(bundle, 250)
    assert aged.bundle_age_ms == 250
    assert aged.blocks[0].number == 2 and aged.blocks[0].crc_type == CRCType.CRC16_X25
    assert aged.encode() == raw.replace(age, aged.blocks[0].encode())
    assert decode_bundle(aged.encode()) == aged  # the fresh CRC verifies

    hopped = with_hop_count_incremented(with_hop_count_incremented(bundle))
    assert hopped.hop_count == HopCountBlock(2, 2) and not hopped.hop_count.exceeded
    hopped = with_hop_count_incremented(hopped)
    assert hopped.hop_count is not None and hopped.hop_count.exceeded
    assert hopped.encode().startswith(b"\x9f" + raw_primary() + age)
    assert opaque + PAYLOAD in hopped.encode()

    forwarded = with_previous_node(bundle, IpnEID(0, 42, 0))
    assert forwarded.previous_node == IpnEID(0, 42, 0)
    assert forwarded.blocks[-2].type_code == BlockType.PREVIOUS_NODE
    assert forwarded.blocks[-2].number == 5
    assert forwarded.blocks[-2].crc_type == CRCType.CRC32C  # the primary block's CRC type
    again = with_previous_node(forwarded, DtnEID("next"))
    assert again.previous_node == DtnEID("next") and len(again.blocks) == len(forwarded.blocks)
    assert decode_bundle(again.encode()) == again

    removed = with_block_removed(bundle, 4)
    assert removed.block_by_number(4) is None
    assert removed.encode() == raw.replace(opaque, b"")


def test_edit_without_the_block() -> None:
    bundle = decode_bundle(raw_bundle())
    assert with_hop_count_incremented(bundle) is bundle
    aged = with_bundle_age(bundle, 7, crc_type=CRCType.NONE)
    assert aged.bundle_age_ms == 7 and aged.blocks[0].crc_type == CRCType.NONE
    added = with_block_added(bundle, CanonicalBlock(192, 9, BlockFlags(0), CRCType.NONE, b"x"))
    assert [b.number for b in added.blocks] == [9, 1]
    added = with_block_added(added, HopCountBlock(9, 0), flags=BlockFlags.DISCARD_IF_UNPROCESSABLE)
    assert [b.number for b in added.blocks] == [9, 10, 1]
    assert added.blocks[1].flags == BlockFlags.DISCARD_IF_UNPROCESSABLE


def test_forwarding_edits_in_one_pass() -> None:
    hops = raw_canonical(10, 3, 0, 2, b"\x82\x02\x00")
    previous = raw_canonical(6, 4, 0, 1, b"\x82\x01\x66//old/", head=b"\x9f")
    bundle = decode_bundle(raw_bundle(None, hops, previous, PAYLOAD))
    assert with_forwarding_edits(bundle) is bundle
    edited = with_forwarding_edits(
        bundle, increment_hop_count=True, previous_node=DtnEID("me"), bundle_age_ms=40
    )
    assert edited.hop_count == HopCountBlock(2, 1)
    assert edited.previous_node == DtnEID("me") and edited.bundle_age_ms == 40
    # The existing blocks keep their numbers and CRC types; the age block is added before the
    # payload with the next number and the primary block's CRC type.
    assert [(b.type_code, b.number, b.crc_type) for b in edited.blocks] == [
        (BlockType.HOP_COUNT, 3, CRCType.CRC32C),
        (BlockType.PREVIOUS_NODE, 4, CRCType.CRC16_X25),
        (BlockType.BUNDLE_AGE, 5, CRCType.CRC32C),
        (BlockType.PAYLOAD, 1, CRCType.CRC32C),
    ]
    assert decode_bundle(edited.encode()) == edited
    fresh = decode_bundle(raw_bundle())
    both = with_forwarding_edits(
        fresh, previous_node=IpnEID(0, 7, 0), bundle_age_ms=0, crc_type=CRCType.NONE
    )
    assert [(b.type_code, b.number) for b in both.blocks] == [
        (BlockType.PREVIOUS_NODE, 2),
        (BlockType.BUNDLE_AGE, 3),
        (BlockType.PAYLOAD, 1),
    ]
    assert all(b.crc_type == CRCType.NONE for b in both.blocks[:-1])


def test_removal_rules() -> None:
    bundle = decode_bundle(raw_bundle(raw_primary(creation=[0, 1]), AGE, PAYLOAD))
    with pytest.raises(EncodeError, match="payload"):
        with_block_removed(bundle, 1)
    with pytest.raises(EncodeError, match="no block 9"):
        with_block_removed(bundle, 9)
    with pytest.raises(EncodeError) as info:
        with_block_removed(bundle, 2)
    assert info.value.rule == "bundle-age-required"


def test_next_block_number_never_overflows() -> None:
    top = CanonicalBlock(200, 2**64 - 1, BlockFlags(0), CRCType.NONE, b"")
    bundle = Bundle(
        decode_bundle(raw_bundle()).primary,
        (top, CanonicalBlock(1, 1, BlockFlags(0), CRCType.NONE, b"")),
    )
    assert next_block_number(bundle) == 2


def test_replace_payload_reencodes_only_the_payload(simple_bundle: Bundle) -> None:
    decoded = decode_bundle(simple_bundle.encode())
    new_payload = decoded.payload_block.with_data(b"other")
    changed = Bundle(decoded.primary, (new_payload,))
    items = cbor2.loads(changed.encode())
    assert items[1][4] == b"other"
    assert changed.encode().startswith(b"\x9f" + decoded.primary.encode())
    assert decode_bundle(changed.encode()).payload == b"other"
