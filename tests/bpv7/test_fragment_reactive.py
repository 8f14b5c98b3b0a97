"""Reactive fragmentation (RFC 9171 §5.8 at a transfer cut): reading a bundle's head from its
first octets, the cut both sides derive from an acknowledged length, and the fragments that
come out of it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpv7 import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    DecodeError,
    HopCountBlock,
)
from bpv7.fragment import (
    BundleHead,
    FragmentationError,
    FragmentCollector,
    fragment_at,
    fragment_of,
    reactive_cut,
    read_bundle_head,
    reassembly_key,
)
from tests.bpv7.strategies import bundles

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CREATION = CreationTimestamp(800_000_000_000, 1)
REPLICATED = CanonicalBlock(
    200, 7, BlockFlags.REPLICATE_IN_EVERY_FRAGMENT, CRCType.CRC16_X25, b"replicated"
)


def _bundle(payload: bytes = bytes(range(256)) * 40, flags: int = 0) -> Bundle:
    return Bundle.build(
        source="dtn://src/app",
        destination="dtn://dst/svc",
        payload=payload,
        creation=CREATION,
        lifetime_ms=3_600_000,
        flags=flags,
        extra_blocks=[HopCountBlock(20, 3), REPLICATED],
    )


def _head(data: bytes) -> BundleHead:
    head = read_bundle_head(data)
    assert head is not None
    return head


def _covered(fragments: list[Bundle]) -> bytes:
    """The ADU bytes the fragments cover from the lowest offset, checking they leave no gap."""
    pieces = sorted((f.primary.fragment_offset or 0, f.payload) for f in fragments)
    start = pieces[0][0]
    out = bytearray()
    for offset, payload in pieces:
        at = start + len(out)
        assert offset <= at, f"gap [{at}, {offset})"
        out += payload[at - offset :]
    return bytes(out)


@SETTINGS
@given(bundles(), st.data())
def test_prefix_and_remainder_cover_the_bundle_for_any_acknowledged_lengths(
    bundle: Bundle, data: st.DataObject
) -> None:
    """For any bundle and any L_send <= L_recv: the receiver's prefix (what it held, L_recv)
    and the sender's remainder (after what it saw acknowledged, L_send) overlap or meet, and
    together they are the bundle again."""
    encoded = bundle.encode()
    l_recv = data.draw(st.integers(0, len(encoded)), label="L_recv")
    l_send = data.draw(st.integers(0, l_recv), label="L_send")
    whole = _head(encoded)
    cut_send = reactive_cut(whole, l_send)
    received = read_bundle_head(encoded[:l_recv])
    cut_recv = 0 if received is None else reactive_cut(received, l_recv)
    assert cut_send <= cut_recv, "the receiver keeps at least what the sender stops sending"
    if bundle.primary.flags & BundleFlags.MUST_NOT_FRAGMENT or len(bundle.payload) < 2:
        assert cut_send == cut_recv == 0
        return
    if cut_send == 0:
        return  # no cut: the sender sends the whole bundle again
    assert received is not None
    assert received == whole  # the head read from a prefix is the head of the whole
    remainder = fragment_at(bundle, [cut_send])[1]
    # The receiver may keep its prefix in several pieces (a long one is split).
    inner = data.draw(st.lists(st.integers(1, cut_recv), max_size=3), label="piece bounds")
    bounds = sorted({*inner, cut_recv})
    payload = encoded[received.payload_offset : received.payload_offset + cut_recv]
    prefix = [
        fragment_of(received, start, payload[start:end])
        for start, end in zip([0, *bounds[:-1]], bounds, strict=True)
    ]
    assert prefix[0].blocks[:-1] == bundle.blocks[:-1]
    base = bundle.primary.fragment_offset or 0
    assert {f.primary.total_adu_length for f in [*prefix, remainder]} == {
        bundle.primary.total_adu_length or len(bundle.payload)
    }
    assert min(f.primary.fragment_offset or 0 for f in prefix) == base
    assert _covered([*prefix, remainder]) == bundle.payload
    if not bundle.is_fragment:
        collector = FragmentCollector()
        results = [collector.add(f) for f in [remainder, *data.draw(st.permutations(prefix))]]
        done = [r for r in results if r is not None]
        assert done == [bundle]
        assert len(collector) == 0


@SETTINGS
@given(bundles(), st.data())
def test_every_prefix_reads_as_the_same_head_or_as_incomplete(
    bundle: Bundle, data: st.DataObject
) -> None:
    encoded = bundle.encode()
    whole = _head(encoded)
    assert whole.primary == bundle.primary
    assert whole.extensions == bundle.blocks[:-1]
    assert whole.payload_length == len(bundle.payload)
    assert encoded[whole.payload_offset :][: len(bundle.payload)] == bundle.payload
    length = data.draw(st.integers(0, len(encoded)))
    head = read_bundle_head(encoded[:length])
    if length >= whole.payload_offset:
        assert head == whole
    else:
        assert head is None


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_read_as_a_head_or_incomplete_or_decode_error(data: bytes) -> None:
    # Only DecodeError may escape (never IndexError or a CBOR library's exception).
    try:
        head = read_bundle_head(data)
    except DecodeError as exc:
        assert exc.rule
    else:
        assert head is None or head.payload_offset <= len(data)


def test_a_corrupted_head_is_refused() -> None:
    # The receiver verifies the CRCs of the primary and extension blocks it holds.
    encoded = bytearray(_bundle().encode())
    head = _head(bytes(encoded))
    for position in (5, head.payload_offset - 8):  # in the primary block, in an extension block
        damaged = bytearray(encoded)
        damaged[position] ^= 0x01
        with pytest.raises(DecodeError):
            read_bundle_head(bytes(damaged[: head.payload_offset + 10]))


def test_the_cut_keeps_a_proper_part_of_the_payload() -> None:
    bundle = _bundle(b"0123456789")
    encoded = bundle.encode()
    head = _head(encoded)
    start = head.payload_offset
    assert reactive_cut(head, start) == 0  # no payload octet yet
    assert reactive_cut(head, start + 1) == 1
    assert reactive_cut(head, start + 9) == 9
    # All payload octets but not the CRC and the break that follow: still a proper part.
    assert reactive_cut(head, start + 10) == 9
    assert reactive_cut(head, len(encoded)) == 9


def test_must_not_fragment_is_never_cut() -> None:
    # RFC 9171 §5.8: only a bundle whose flags do not say "must not be fragmented" may be.
    bundle = _bundle(flags=BundleFlags.MUST_NOT_FRAGMENT)
    encoded = bundle.encode()
    head = _head(encoded)
    assert not head.may_fragment
    assert reactive_cut(head, len(encoded) - 100) == 0
    with pytest.raises(FragmentationError, match="must-not-fragment"):
        fragment_of(head, 0, bundle.payload[:10])


def test_later_pieces_carry_only_replicated_blocks() -> None:
    bundle = _bundle()
    head = _head(bundle.encode())
    first_piece = fragment_of(head, 0, bundle.payload[:100])
    later_piece = fragment_of(head, 100, bundle.payload[100:300])
    # RFC 9171 §5.8: every extension block in the fragment at offset zero, only the ones to be
    # replicated in the others.
    assert first_piece.blocks[:-1] == bundle.blocks[:-1]
    assert [b.type_code for b in later_piece.blocks] == [200, BlockType.PAYLOAD]


def test_pieces_of_a_fragment_add_up_offsets() -> None:
    bundle = _bundle()
    # A fragment of a fragment: the bundle on the link is itself the second part.
    first, second = fragment_at(bundle, [4000])
    encoded = second.encode()
    head = _head(encoded)
    payload = encoded[head.payload_offset :][: head.payload_length]
    pieces = [fragment_of(head, 0, payload[:100]), fragment_of(head, 100, payload[100:300])]
    assert [p.primary.fragment_offset for p in pieces] == [4000, 4100]
    assert {p.primary.total_adu_length for p in pieces} == {len(bundle.payload)}
    collector = FragmentCollector()
    assert collector.add(pieces[1]) is None
    assert collector.add(pieces[0]) is None
    assert collector.add(first) is None
    assert collector.add(fragment_at(second, [299])[1]) == bundle
    assert reassembly_key(bundle) not in collector


@pytest.mark.parametrize(("start", "length"), [(0, 0), (-1, 3), (5, 10_240), (0, 10_240)])
def test_pieces_must_be_proper_parts(start: int, length: int) -> None:
    bundle = _bundle()
    head = _head(bundle.encode())
    with pytest.raises(FragmentationError, match="fragment-offsets"):
        fragment_of(head, start, b"x" * length)
