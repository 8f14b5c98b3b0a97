"""Property tests of the bundle codec (hypothesis).

- ``decode(encode(b)) == b`` and re-encoding is byte-exact, for generated valid bundles;
- cbor2 (a CBOR implementation we did not write) reads every block we write identically;
- whatever the input bytes (random, or mutations of valid bundles), decoding raises nothing but
  DecodeError;
- forwarding edits change only their own block's bytes; the one-pass edit equals the three
  edits applied in turn, byte for byte.
"""

import contextlib

import cbor2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bpv7 import (
    BlockType,
    Bundle,
    DecodeError,
    EndpointID,
    decode_bundle,
    eid_from_bytes,
    eid_from_cbor,
    eid_to_cbor,
    parse_eid,
    with_bundle_age,
    with_forwarding_edits,
    with_hop_count_incremented,
    with_previous_node,
)
from tests.bpv7.strategies import bundles, eids, encoded_bundles, node_ids

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(eids())
def test_eid_round_trips(eid: EndpointID) -> None:
    assert parse_eid(str(eid)) == eid
    decoded = eid_from_bytes(eid.cbor)
    assert decoded == eid and decoded.cbor == eid.cbor
    assert eid_from_cbor(eid_to_cbor(eid)) == eid
    assert cbor2.dumps(eid_to_cbor(eid)) == eid.cbor
    assert eid_from_cbor(cbor2.loads(eid.cbor)).cbor == eid.cbor


@SETTINGS
@given(bundles())
def test_decode_encode_round_trip(bundle: Bundle) -> None:
    raw = bundle.encode()
    decoded = decode_bundle(raw)
    assert decoded == bundle
    assert decoded.encode() == raw
    assert decoded.bundle_id == bundle.bundle_id
    assert decode_bundle(bytearray(raw)) == bundle
    assert decode_bundle(memoryview(raw)) == bundle


@SETTINGS
@given(bundles())
def test_cbor2_reads_what_we_write(bundle: Bundle) -> None:
    raw = bundle.encode()
    items = cbor2.loads(raw)
    assert len(items) == 1 + len(bundle.blocks)
    primary = items[0]
    assert primary[0] == 7 and primary[1] == bundle.primary.flags
    assert eid_from_cbor(primary[3]) == bundle.primary.destination
    assert eid_from_cbor(primary[4]) == bundle.primary.source
    assert primary[6] == [bundle.primary.creation.time_ms, bundle.primary.creation.sequence]
    for item, block in zip(items[1:], bundle.blocks, strict=True):
        assert item[:5] == [block.type_code, block.number, block.flags, block.crc_type, block.data]
        # Deterministic encoding: cbor2's canonical re-encoding is byte-identical.
        assert cbor2.dumps(item, canonical=True) == block.encode()
    assert cbor2.dumps(primary, canonical=True) == bundle.primary.encode()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x9f")
@example(b"\x9f\xff")
@example(b"\x9f\x89\x07")
@example(b"\x9f\x9b\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\x9f\x89\x07\x00\x02\x82\x01\x7b\xff\xff\xff\xff\xff\xff\xff\xff")
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_bundle(data)


@SETTINGS
@given(encoded_bundles(), st.data())
def test_mutated_bundles_raise_only_decode_error(raw: bytes, data: st.DataObject) -> None:
    mutation = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
    index = data.draw(st.integers(0, len(raw) - 1))
    if mutation == "flip":
        bit = data.draw(st.integers(0, 7))
        mutated = raw[:index] + bytes([raw[index] ^ (1 << bit)]) + raw[index + 1 :]
    elif mutation == "set":
        mutated = raw[:index] + bytes([data.draw(st.integers(0, 255))]) + raw[index + 1 :]
    elif mutation == "truncate":
        mutated = raw[:index]
    elif mutation == "insert":
        mutated = raw[:index] + data.draw(st.binary(min_size=1, max_size=9)) + raw[index:]
    else:
        mutated = raw[:index] + raw[index + data.draw(st.integers(1, 9)) :]
    try:
        decoded = decode_bundle(mutated)
    except DecodeError:
        return
    # A mutation that still decodes must still be a valid, self-consistent bundle.
    assert decoded.encode() == mutated


@SETTINGS
@given(bundles(), node_ids(), st.integers(0, 2**40))
def test_forwarding_edits_keep_other_blocks_bytes(
    bundle: Bundle, node: EndpointID, age: int
) -> None:
    decoded = decode_bundle(bundle.encode())
    edited = with_hop_count_incremented(with_bundle_age(with_previous_node(decoded, node), age))
    assert edited.primary.encode() == decoded.primary.encode()
    edited_types = {BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT}
    before = {b.number: b.encode() for b in decoded.blocks if b.type_code not in edited_types}
    after = {b.number: b.encode() for b in edited.blocks if b.type_code not in edited_types}
    assert before == after
    assert edited.previous_node == node
    assert edited.bundle_age_ms == age
    if decoded.hop_count is not None:
        assert edited.hop_count is not None
        assert edited.hop_count.count == min(decoded.hop_count.count + 1, 2**64 - 1)
    redecoded = decode_bundle(edited.encode())
    assert redecoded == edited
    assert redecoded.encode() == edited.encode()


@SETTINGS
@given(
    bundles(),
    st.none() | node_ids(),
    st.none() | st.integers(0, 2**40),
    st.booleans(),
)
def test_combined_forwarding_edits_equal_the_edits_in_turn(
    bundle: Bundle, node: EndpointID | None, age: int | None, hop: bool
) -> None:
    decoded = decode_bundle(bundle.encode())
    expected = with_hop_count_incremented(decoded) if hop else decoded
    if node is not None:
        expected = with_previous_node(expected, node)
    if age is not None:
        expected = with_bundle_age(expected, age)
    combined = with_forwarding_edits(
        decoded, increment_hop_count=hop, previous_node=node, bundle_age_ms=age
    )
    assert combined == expected
    assert combined.encode() == expected.encode()
    assert decode_bundle(combined.encode()) == combined
