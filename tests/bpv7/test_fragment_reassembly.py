"""ADU reassembly (RFC 9171 §5.9) with :class:`FragmentCollector`."""

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
    DecodeError,
    HopCountBlock,
    PrimaryBlock,
)
from bpv7.fragment import (
    FragmentCollector,
    ReassemblyError,
    ReassemblyProgress,
    fragment_at,
    fragment_bundle,
    reassembly_key,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CREATION = CreationTimestamp(800_000_000_000, 1)
LIFETIME = 3_600_000


def _bundle(
    payload: bytes = bytes(range(256)) * 4, creation: CreationTimestamp = CREATION, **kwargs: object
) -> Bundle:
    return Bundle.build(
        source="dtn://src/app",
        destination="dtn://dst/svc",
        payload=payload,
        creation=creation,
        lifetime_ms=LIFETIME,
        extra_blocks=[
            HopCountBlock(20, 3),
            CanonicalBlock(
                200, 7, BlockFlags.REPLICATE_IN_EVERY_FRAGMENT, CRCType.CRC16_X25, b"replicated"
            ),
            *kwargs.pop("extra", ()),  # type: ignore[misc]
        ],
        **kwargs,  # type: ignore[arg-type]
    )


def _fragment(
    offset: int,
    data: bytes,
    total: int,
    creation: CreationTimestamp = CREATION,
    lifetime_ms: int = LIFETIME,
) -> Bundle:
    """A hand-made fragment of an ADU (possibly claiming things no real bundle did)."""
    return Bundle.build(
        source="dtn://src/app",
        destination="dtn://dst/svc",
        payload=data,
        creation=creation,
        lifetime_ms=lifetime_ms,
        flags=BundleFlags.IS_FRAGMENT,
        fragment_offset=offset,
        total_adu_length=total,
    )


def _collect(collector: FragmentCollector, fragments: list[Bundle]) -> list[Bundle]:
    return [r for f in fragments if (r := collector.add(f)) is not None]


@SETTINGS
@given(
    st.binary(min_size=2, max_size=2000),
    st.lists(st.integers(0, 1999), min_size=1, max_size=12),
    st.lists(st.integers(0, 1999), max_size=12),
    st.randoms(use_true_random=False),
)
def test_overlapping_shuffled_duplicated_fragments_reassemble(
    payload: bytes, cuts_a: list[int], cuts_b: list[int], rng: random.Random
) -> None:
    original = _bundle(payload)
    # Two fragmentation episodes cut at different places (RFC 9171 §5.8: "the payloads of
    # fragments resulting from different fragmentation episodes ... may be overlapping").
    set_a = fragment_at(original, sorted({c % (len(payload) - 1) + 1 for c in cuts_a}))
    set_b = fragment_at(original, sorted({c % (len(payload) - 1) + 1 for c in cuts_b}))
    set_b = [f for f in set_b if f.is_fragment]  # no cuts gives the original itself
    # Some of set B re-fragmented: a fragment of a fragment.
    if len(set_b) > 1 and len(set_b[-1].payload) > 1:
        set_b = set_b[:-1] + fragment_at(set_b[-1], [len(set_b[-1].payload) // 2])
    chosen = set_a + rng.sample(set_b, k=rng.randint(0, len(set_b)))
    chosen += rng.sample(chosen, k=min(3, len(chosen)))  # duplicates
    rng.shuffle(chosen)
    collector = FragmentCollector()
    done = _collect(collector, chosen)
    assert done, "the full set A covers the ADU"
    assert done[0] == original
    assert collector.statistics().completed == len(done)


@SETTINGS
@given(st.binary(min_size=3, max_size=1000), st.data())
def test_a_gap_leaves_the_adu_incomplete(payload: bytes, data: st.DataObject) -> None:
    original = _bundle(payload)
    cuts = sorted(
        set(data.draw(st.lists(st.integers(1, len(payload) - 1), min_size=1, max_size=8)))
    )
    fragments = fragment_at(original, cuts)
    missing = data.draw(st.integers(0, len(fragments) - 1))
    held = fragments[:missing] + fragments[missing + 1 :]
    collector = FragmentCollector()
    assert _collect(collector, data.draw(st.permutations(held))) == []
    progress = collector.progress(reassembly_key(original))
    assert progress is not None
    hole = fragments[missing]
    start = hole.primary.fragment_offset
    assert start is not None
    assert progress.gaps == ((start, start + len(hole.payload)),)
    assert progress.received == len(payload) - len(hole.payload)
    assert collector.statistics().buffered_bytes == progress.received
    # The missing piece completes it.
    assert collector.add(hole) == original
    assert len(collector) == 0 and collector.statistics().buffered_bytes == 0


def test_not_a_fragment_passes_through() -> None:
    original = _bundle()
    collector = FragmentCollector()
    assert collector.add(original) is original
    assert collector.statistics().fragments_added == 0


def test_one_fragment_covering_the_whole_adu() -> None:
    whole = _fragment(0, b"abc", 3)
    collector = FragmentCollector()
    result = collector.add(whole)
    assert result is not None and not result.is_fragment and result.payload == b"abc"
    assert result.primary.total_adu_length is None


def test_reassembled_bundle_takes_blocks_from_the_offset_zero_fragment() -> None:
    original = _bundle(extra=[BundleAgeBlock(10)])
    first, second, third = fragment_at(original, [100, 700])
    collector = FragmentCollector()
    assert collector.add(third) is None
    assert collector.add(second) is None
    result = collector.add(first)
    assert result == original
    assert result is not None and result.hop_count == HopCountBlock(20, 3)


def test_inconsistent_totals_are_refused() -> None:
    collector = FragmentCollector()
    assert collector.add(_fragment(0, b"abcd", 10)) is None
    with pytest.raises(ReassemblyError) as info:
        collector.add(_fragment(4, b"efghij", 11))
    assert info.value.rule == "fragment-total-mismatch"
    assert isinstance(info.value, DecodeError)
    # Nothing of the refused fragment was kept; the right one completes the ADU.
    progress = collector.progress(reassembly_key(_fragment(0, b"", 10)))
    assert progress == ReassemblyProgress(10, 4, ((0, 4),))
    result = collector.add(_fragment(4, b"efghij", 10))
    assert result is not None and result.payload == b"abcdefghij"
    stats = collector.statistics()
    assert (stats.fragments_added, stats.fragments_rejected, stats.completed) == (2, 1, 1)


def test_overlaps_must_carry_the_same_bytes() -> None:
    collector = FragmentCollector()
    collector.add(_fragment(2, b"cdef", 10))
    with pytest.raises(ReassemblyError, match="fragment-overlap-mismatch"):
        collector.add(_fragment(0, b"abcdXf", 10))
    with pytest.raises(ReassemblyError, match="fragment-overlap-mismatch"):
        collector.add(_fragment(5, b"Zghij", 10))
    assert collector.progress(reassembly_key(_fragment(0, b"", 10))) == ReassemblyProgress(
        10, 4, ((2, 6),)
    )
    assert collector.add(_fragment(0, b"abcdefg", 10)) is None  # overlap that agrees
    result = collector.add(_fragment(5, b"fghij", 10))
    assert result is not None and result.payload == b"abcdefghij"


def test_a_huge_claimed_total_is_refused_without_allocating() -> None:
    collector = FragmentCollector(max_adu_size=1 << 20)
    with pytest.raises(ReassemblyError, match="adu-too-large"):
        collector.add(_fragment(0, b"x", 1 << 60))
    assert len(collector) == 0
    # Under a generous limit a large total is held as just the bytes that arrived.
    roomy = FragmentCollector(max_adu_size=1 << 62)
    assert roomy.add(_fragment(1 << 59, b"tail", 1 << 60)) is None
    assert roomy.statistics().buffered_bytes == 4
    progress = roomy.progress(reassembly_key(_fragment(0, b"", 1)))
    assert progress is not None and progress.gaps == ((0, 1 << 59), ((1 << 59) + 4, 1 << 60))


def test_buffer_and_pending_limits() -> None:
    collector = FragmentCollector(max_buffered_bytes=10, max_pending=2)
    collector.add(_fragment(0, b"12345", 100))
    with pytest.raises(ReassemblyError, match="reassembly-buffer-full"):
        collector.add(_fragment(10, b"abcdef", 100))
    collector.add(_fragment(3, b"45678", 100))  # only 3 new bytes
    assert collector.statistics().buffered_bytes == 8
    collector.add(_fragment(0, b"a", 5, creation=CreationTimestamp(1, 1)))
    with pytest.raises(ReassemblyError, match="reassembly-pending-limit"):
        collector.add(_fragment(0, b"b", 5, creation=CreationTimestamp(1, 2)))
    assert collector.discard(reassembly_key(_fragment(0, b"", 5, CreationTimestamp(1, 1))))
    assert not collector.discard(reassembly_key(_fragment(0, b"", 5, CreationTimestamp(1, 1))))
    assert collector.add(_fragment(0, b"b", 5, creation=CreationTimestamp(1, 2))) is None
    assert collector.statistics().buffered_bytes == 9


def test_expiry_by_lifetime() -> None:
    collector = FragmentCollector()
    collector.add(_fragment(0, b"ab", 10, creation=CreationTimestamp(1_000, 0), lifetime_ms=500))
    collector.add(_fragment(0, b"cd", 10, creation=CreationTimestamp(1_000, 1), lifetime_ms=900))
    assert collector.next_expiry() == 1_500
    assert collector.expire(1_499) == []
    expired = collector.expire(1_500)
    assert expired == [reassembly_key(_fragment(0, b"", 1, CreationTimestamp(1_000, 0)))]
    assert collector.next_expiry() == 1_900
    assert collector.expire(10**6) and len(collector) == 0
    assert collector.next_expiry() is None
    assert collector.statistics().expired == 2


def test_expiry_with_unknown_creation_time_uses_now_and_bundle_age() -> None:
    # RFC 9171 §4.4.2: with creation time zero, the Bundle Age Block tells the age.
    fragment = fragment_at(
        _bundle(creation=CreationTimestamp(0, 4), extra=[BundleAgeBlock(200)]), [10]
    )[1]
    assert fragment.bundle_age_ms == 200
    collector = FragmentCollector()
    collector.add(fragment, now_dtn_ms=5_000)
    assert collector.next_expiry() == 5_000 + LIFETIME - 200
    untimed = FragmentCollector()
    untimed.add(fragment)
    assert untimed.next_expiry() is None


def test_fragments_of_different_bundles_are_kept_apart() -> None:
    one = _bundle(b"1" * 300)
    two = _bundle(b"2" * 300, creation=CreationTimestamp(CREATION.time_ms, 2))
    pieces = fragment_bundle(one, 200) + fragment_bundle(two, 200)
    random.Random(4).shuffle(pieces)
    collector = FragmentCollector()
    assert sorted(_collect(collector, pieces), key=lambda b: b.payload) == [one, two]
    assert collector.pending() == []


def test_payload_block_flags_and_crc_come_from_the_first_fragment() -> None:
    original = Bundle(
        _bundle().primary,
        (
            *_bundle().blocks[:-1],
            CanonicalBlock(
                BlockType.PAYLOAD,
                1,
                BlockFlags.DISCARD_IF_UNPROCESSABLE,
                CRCType.CRC16_X25,
                bytes(300),
            ),
        ),
    )
    collector = FragmentCollector()
    result = _collect(collector, list(reversed(fragment_bundle(original, 150))))
    assert result == [original]


def test_reassembled_primary_is_no_longer_a_fragment() -> None:
    pieces = fragment_at(_bundle(), [5])
    collector = FragmentCollector()
    collector.add(pieces[1])
    whole = collector.add(pieces[0])
    assert whole is not None
    assert whole.primary == PrimaryBlock(
        BundleFlags(0),
        CRCType.CRC32C,
        whole.primary.destination,
        whole.primary.source,
        whole.primary.report_to,
        CREATION,
        LIFETIME,
    )
    assert reassembly_key(pieces[0]) not in collector and len(collector) == 0
