"""Bundle fragmentation (RFC 9171 §5.8)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpv7 import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleAgeBlock,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    DtnEID,
    EncodeError,
    HopCountBlock,
    PreviousNodeBlock,
    PrimaryBlock,
    decode_bundle,
    parse_eid,
)
from bpv7.fragment import (
    FragmentationError,
    FragmentCollector,
    fragment_at,
    fragment_bundle,
    reassembly_key,
)
from tests.bpv7.strategies import bundles

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REPLICATED = CanonicalBlock(
    200, 5, BlockFlags.REPLICATE_IN_EVERY_FRAGMENT, CRCType.CRC16_X25, b"every fragment"
)
FIRST_ONLY = CanonicalBlock(201, 6, 0, CRCType.CRC32C, b"first fragment only")
CREATION = CreationTimestamp(800_000_000_000, 1)


def _bundle(
    payload: bytes = bytes(range(256)) * 8,
    *,
    flags: int = 0,
    creation: CreationTimestamp = CREATION,
    extra: tuple[object, ...] = (),
) -> Bundle:
    return Bundle.build(
        source="dtn://src/app",
        destination="dtn://dst/svc",
        payload=payload,
        creation=creation,
        lifetime_ms=3_600_000,
        flags=flags,
        extra_blocks=[
            REPLICATED,
            FIRST_ONLY,
            HopCountBlock(30, 1),
            PreviousNodeBlock(parse_eid("dtn://prev/")),
            *extra,
        ],  # type: ignore[list-item]
    )


def _check_fragments(original: Bundle, fragments: list[Bundle], max_size: int | None) -> None:
    """Every fragment is a valid bundle (its CRCs check out on decoding), fits ``max_size``, and
    together they tile the original payload at offsets relative to the original ADU."""
    primary = original.primary
    base = primary.fragment_offset or 0
    total = primary.total_adu_length if primary.is_fragment else len(original.payload)
    at = base
    for index, fragment in enumerate(fragments):
        wire = fragment.encode()
        if max_size is not None:
            assert len(wire) <= max_size
        decoded = decode_bundle(wire)
        assert decoded == fragment
        fp = fragment.primary
        assert fp.is_fragment
        assert fp.fragment_offset == at
        assert fp.total_adu_length == total
        assert (fp.source, fp.creation, fp.destination, fp.report_to, fp.lifetime_ms) == (
            primary.source,
            primary.creation,
            primary.destination,
            primary.report_to,
            primary.lifetime_ms,
        )
        assert int(fp.flags) & ~1 == int(primary.flags) & ~1  # unknown bits kept
        assert fragment.payload_block.flags == original.payload_block.flags
        assert fragment.payload_block.crc_type == original.payload_block.crc_type
        assert len(fragment.payload) > 0
        # RFC 9171 §5.8: all extension blocks in the first fragment; replicated ones in all.
        if index == 0:
            assert fragment.blocks[:-1] == original.blocks[:-1]
        else:
            for block in original.blocks[:-1]:
                every = bool(block.flags & BlockFlags.REPLICATE_IN_EVERY_FRAGMENT) or (
                    primary.creation.time_ms == 0 and block.type_code == BlockType.BUNDLE_AGE
                )
                assert (block in fragment.blocks) == every
        at += len(fragment.payload)
    assert at == base + len(original.payload)
    # RFC 9171 §5.8: "The concatenation of the payloads of all fragments ... MUST always be
    # identical to the payload of the fragmented bundle".
    assert b"".join(f.payload for f in fragments) == original.payload


@pytest.mark.parametrize("max_size", [175, 176, 200, 300, 1000, 1500, 2000])
def test_fragment_bundle_fits_and_tiles(max_size: int) -> None:
    original = _bundle()
    fragments = fragment_bundle(original, max_size)
    assert len(fragments) > 1
    _check_fragments(original, fragments, max_size)
    # Each fragment but the last is filled to the limit (CBOR heads permitting).
    for fragment in fragments[:-1]:
        assert len(fragment.encode()) >= max_size - 8


def test_replicate_flag_honoured() -> None:
    fragments = fragment_bundle(_bundle(), 400)
    assert all(REPLICATED in f.blocks for f in fragments)
    assert FIRST_ONLY in fragments[0].blocks
    assert not any(FIRST_ONLY in f.blocks for f in fragments[1:])
    assert fragments[1].hop_count is None and fragments[1].previous_node is None
    assert fragments[0].hop_count == HopCountBlock(30, 1)


def test_bundle_age_block_goes_into_every_fragment_when_creation_time_is_zero() -> None:
    # RFC 9171 §4.4.2: a bundle with creation time zero must carry a Bundle Age Block.
    original = _bundle(creation=CreationTimestamp(0, 9), extra=(BundleAgeBlock(1234),))
    fragments = fragment_bundle(original, 400)
    assert len(fragments) > 2
    assert all(f.bundle_age_ms == 1234 for f in fragments)
    _check_fragments(original, fragments, 400)


def test_bundle_that_fits_is_returned_unchanged() -> None:
    original = _bundle()
    size = len(original.encode())
    assert fragment_bundle(original, size) == [original]
    assert fragment_bundle(original, size)[0] is original
    assert len(fragment_bundle(original, size - 1)) == 2


def test_must_not_fragment_is_honoured() -> None:
    original = _bundle(flags=BundleFlags.MUST_NOT_FRAGMENT)
    assert fragment_bundle(original, 10**6) == [original]
    with pytest.raises(FragmentationError) as info:
        fragment_bundle(original, 500)
    assert info.value.rule == "must-not-fragment" and info.value.section == "5.8"
    with pytest.raises(FragmentationError, match="must-not-fragment"):
        fragment_at(original, [10])


def test_too_small_limit_and_tiny_payloads() -> None:
    with pytest.raises(FragmentationError, match="fragment-too-small"):
        fragment_bundle(_bundle(), 100)
    with pytest.raises(FragmentationError, match="fragment-too-small"):
        fragment_bundle(_bundle(b"x"), 50)
    with pytest.raises(EncodeError, match="max-size"):
        fragment_bundle(_bundle(), 0)


def test_fragment_of_fragment_keeps_offsets_relative_to_the_original() -> None:
    original = _bundle()
    middle = fragment_at(original, [100, 1500])[1]
    assert (middle.primary.fragment_offset, len(middle.payload)) == (100, 1400)
    pieces = fragment_bundle(middle, 300)
    _check_fragments(middle, pieces, 300)
    assert pieces[0].primary.fragment_offset == 100
    assert all(p.primary.total_adu_length == len(original.payload) for p in pieces)
    # The pieces of a later fragment carry what it carried (its first piece) and what must be
    # replicated.
    assert pieces[0].blocks[:-1] == middle.blocks[:-1]


@pytest.mark.parametrize("offsets", [[0], [2048], [5, 5], [10, 3], [-1], [1.5]])
def test_fragment_at_rejects_bad_offsets(offsets: list[object]) -> None:
    with pytest.raises(EncodeError, match="fragment-offsets"):
        fragment_at(_bundle(), offsets)  # type: ignore[arg-type]


def test_fragment_at_without_offsets() -> None:
    original = _bundle()
    assert fragment_at(original, []) == [original]


def test_fragments_get_fresh_primary_crcs() -> None:
    original = decode_bundle(_bundle().encode())
    fragments = fragment_at(original, [1000])
    for fragment in fragments:
        assert fragment.primary.encode() != original.primary.encode()
        decode_bundle(fragment.encode())  # checks every CRC over the bytes as sent
    # Extension blocks are carried byte for byte.
    assert fragments[0].blocks[0].encode() == original.blocks[0].encode()


def test_large_payload_fragment_heads() -> None:
    # Payload lengths straddling CBOR length-head boundaries (23/24, 255/256, 65535/65536).
    original = _bundle(bytes(70_000))
    for max_size in (180, 185, 400, 70_000, 65_700):
        fragments = fragment_bundle(original, max_size)
        _check_fragments(original, fragments, max_size)


@st.composite
def fragmentable_bundles(draw: st.DrawFn) -> Bundle:
    """Valid bundles (some already fragments) that may be fragmented, payload >= 22 bytes."""
    bundle = draw(bundles())
    payload = draw(st.binary(min_size=22, max_size=600))
    p = bundle.primary
    offset = total = None
    if p.is_fragment:
        offset = p.fragment_offset
        assert offset is not None
        total = offset + len(payload) + draw(st.integers(0, 50))
    primary = PrimaryBlock(
        BundleFlags(int(p.flags) & ~BundleFlags.MUST_NOT_FRAGMENT),
        p.crc_type,
        p.destination,
        DtnEID("src", "app") if p.source.is_null else p.source,
        p.report_to,
        p.creation,
        p.lifetime_ms,
        offset,
        total,
    )
    old = bundle.payload_block
    block = CanonicalBlock(BlockType.PAYLOAD, 1, old.flags, old.crc_type, payload)
    return Bundle(primary, (*bundle.blocks[:-1], block))


@SETTINGS
@given(fragmentable_bundles(), st.data(), st.randoms(use_true_random=False))
def test_random_bundles_fragment_and_reassemble(
    bundle: Bundle, data: st.DataObject, rng: random.Random
) -> None:
    # A limit below the bundle's size that leaves every fragment room for payload bytes (a
    # fragment's own fields add at most 20 bytes to the bundle's overhead).
    overhead = len(bundle.encode()) - len(bundle.payload)
    max_size = overhead + 20 + data.draw(st.integers(0, len(bundle.payload) - 21))
    fragments = fragment_bundle(bundle, max_size)
    assert len(fragments) >= 2
    _check_fragments(bundle, fragments, max_size)
    collector = FragmentCollector()
    shuffled = fragments + rng.sample(fragments, k=min(2, len(fragments)))
    rng.shuffle(shuffled)
    results = [collector.add(decode_bundle(f.encode())) for f in shuffled]
    done = [r for r in results if r is not None]
    primary = bundle.primary
    if primary.is_fragment:
        start = primary.fragment_offset
        assert start is not None
        end = start + len(bundle.payload)
        if start == 0 and end == primary.total_adu_length:
            assert done and done[0].payload == bundle.payload and not done[0].is_fragment
        else:
            # The fragments of a fragment rebuild that part of the ADU only.
            assert done == []
            progress = collector.progress(reassembly_key(bundle))
            assert progress is not None and progress.extents == ((start, end),)
        return
    assert done and done[0] == bundle
    assert all(r == bundle for r in done)


_PRIMARY_BIB_DATA = bytes.fromhex("810001008202820100818182014100")
"""A well-formed abstract security block (RFC 9172 §3.6) targeting the primary block: context 1,
source ipn:1.0, one result [1, h'00']."""


def test_fragments_without_the_primary_bib_get_a_primary_crc() -> None:
    # RFC 9171 §4.3.1: a primary block may lack a CRC only while a BIB covers it.
    bib = CanonicalBlock(BlockType.BIB, 9, 0, CRCType.CRC32C, _PRIMARY_BIB_DATA)
    original = Bundle.build(
        source="ipn:1.1",
        destination="ipn:2.1",
        payload=bytes(500),
        lifetime_ms=1000,
        creation=CreationTimestamp(5, 0),
        crc_type=CRCType.NONE,
        extra_blocks=[bib],
    )
    first, second = fragment_at(original, [250])
    assert first.primary.crc_type == CRCType.NONE and bib in first.blocks
    assert second.primary.crc_type == CRCType.CRC32C and bib not in second.blocks
    replicated = CanonicalBlock(
        BlockType.BIB,
        9,
        BlockFlags.REPLICATE_IN_EVERY_FRAGMENT,
        CRCType.CRC32C,
        _PRIMARY_BIB_DATA,
    )
    original = Bundle(original.primary, (replicated, original.payload_block))
    assert all(f.primary.crc_type == CRCType.NONE for f in fragment_bundle(original, 300))
