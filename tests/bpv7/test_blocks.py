"""Canonical blocks (RFC 9171 §4.3.2), the extension blocks of §4.4, and §5.6 step 4."""

import cbor2
import pytest

from bpv7 import (
    BlockAction,
    BlockError,
    BlockFlags,
    BlockType,
    BundleAgeBlock,
    CanonicalBlock,
    CBORError,
    CRCError,
    CRCType,
    DecodeError,
    DtnEID,
    EncodeError,
    HopCountBlock,
    IpnEID,
    PreviousNodeBlock,
    crc16_x25,
    crc32c,
    decode_bundle,
    unprocessable_block_action,
)
from bpv7.blocks import check_extension_data
from tests.bpv7.strategies import RawItem, raw_block, raw_bundle, raw_canonical


@pytest.mark.parametrize("crc_type", list(CRCType))
def test_encode_layout_and_crc(crc_type: CRCType) -> None:
    block = CanonicalBlock(200, 7, BlockFlags(0x11), crc_type, b"\x01\x02\x03")
    raw = block.encode()
    items = cbor2.loads(raw)
    assert items[:5] == [200, 7, 0x11, crc_type, b"\x01\x02\x03"]
    assert len(items) == (5 if crc_type == CRCType.NONE else 6)
    if crc_type != CRCType.NONE:
        length = 2 if crc_type == CRCType.CRC16_X25 else 4
        fn = crc16_x25 if crc_type == CRCType.CRC16_X25 else crc32c
        assert items[5] == fn(raw[:-length] + bytes(length)).to_bytes(length, "big")
    head, data, tail = block.encoded_parts()
    assert head + data + tail == raw and data is block.data


def test_constructor_converts_and_keeps_unknown_types() -> None:
    block = CanonicalBlock(1, 1, 0x80 | 0x04, 2, bytearray(b"x"))  # type: ignore[arg-type]
    assert block.type_code is BlockType.PAYLOAD
    assert (
        type(block.flags) is BlockFlags and block.flags & BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE
    )
    assert int(block.flags) == 0x84
    assert block.crc_type is CRCType.CRC32C
    assert type(block.data) is bytes
    unknown = CanonicalBlock(199, 3, BlockFlags(0), CRCType.NONE, b"")
    assert type(unknown.type_code) is int and unknown.type_code == 199


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        ((1, 0, 0, 0, b""), "block-number-zero"),
        ((1, 2, 0, 0, b""), "payload-block-number"),
        ((200, 2**64, 0, 0, b""), "uint-range"),
        ((-1, 2, 0, 0, b""), "uint-range"),
        ((200, 2, 0, 3, b""), "crc-type"),
        ((200, 2, 0, 0, "text"), "block-data"),
        ((10, 2, 0, 0, b"\x82\x00\x00"), "hop-limit-range"),
        ((10, 2, 0, 0, b"\x83\x01\x00\x00"), "hop-count-data"),
        ((7, 2, 0, 0, b"\x01\x02"), "block-data-trailing-bytes"),
        ((7, 2, 0, 0, b"\x40"), "cbor-type"),
        ((6, 2, 0, 0, b"\x82\x01\x65//x/y"), "previous-node-id"),
        ((6, 2, 0, 0, b"\x82\x01"), "cbor-truncated"),
    ],
)
def test_constructor_rules(args: tuple[object, ...], rule: str) -> None:
    with pytest.raises(EncodeError) as info:
        CanonicalBlock(*args)  # type: ignore[arg-type]
    assert info.value.rule == rule


def _block_error(block_bytes: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_bundle(raw_bundle(None, block_bytes))
    return info.value


@pytest.mark.parametrize(
    ("block_bytes", "rule", "error_type"),
    [
        (raw_block([1, 1, 0, 0], 0), "block-array-length", BlockError),
        (raw_block([1, 1, 0, 0, b"x", 1, 2], 0), "block-array-length", BlockError),
        (raw_block([1, 1, 0, 0, b"x", b"\x00\x00"], 0), "block-array-length", BlockError),
        (raw_block([1, 1, 0, 2, b"x"], 0), "block-array-length", BlockError),
        (raw_block([1, 1, 0, 0, b"x", 1], 0, head=b"\x9f"), "block-array-length", BlockError),
        (raw_block([1, 1, 0, 0, RawItem(b"\x5f\x41x\xff")], 0), "cbor-indefinite-bytes", CBORError),
        (raw_block([1, 1, 0, 0, "text"], 0), "cbor-type", CBORError),
        (raw_block([1, 1, 0, 0, RawItem(b"\x58\x01x")], 0), "cbor-not-shortest", CBORError),
        (raw_block([1, RawItem(b"\x18\x01"), 0, 0, b"x"], 0), "cbor-not-shortest", CBORError),
        (raw_block([1, 1, 0, 5, b"x"], 0), "crc-type", CRCError),
        (raw_block([1, 1, 0, 1, b"x", b"\x00\x00\x00\x00"], 0), "crc-length", CRCError),
        (raw_block([1, 1, 0, 2, b"x", b"\x00\x00\x00\x00"], 0), "crc-mismatch", CRCError),
        (raw_block([1, 1, 0, 1, b"x", b"\x00\x00"], 0), "crc-mismatch", CRCError),
        (raw_canonical(number=0), "block-number-zero", BlockError),
        (raw_canonical(number=3), "payload-block-number", BlockError),
        (b"\xa0", "cbor-type", CBORError),
        (b"\x85\x01\x01\x00\x00\x5a\xff\xff\xff\xff", "cbor-truncated", CBORError),
    ],
)
def test_decode_rejects(block_bytes: bytes, rule: str, error_type: type[DecodeError]) -> None:
    error = _block_error(block_bytes)
    assert error.rule == rule, error
    assert isinstance(error, error_type)


@pytest.mark.parametrize("crc_type", [1, 2])
def test_crc_mismatch_anywhere_in_the_block(crc_type: int) -> None:
    good = raw_canonical(crc_type=crc_type, data=b"some payload")
    for index in range(len(good) - (3 if crc_type == 1 else 5)):
        if index == 4 or index == 0:
            continue  # changing the CRC type or the array head changes the structure
        bad = good[:index] + bytes([good[index] ^ 0x01]) + good[index + 1 :]
        with pytest.raises(DecodeError):
            decode_bundle(raw_bundle(None, bad))


def test_indefinite_length_block_array_round_trip() -> None:
    raw = raw_bundle(None, raw_canonical(head=b"\x9f", crc_type=1))
    decoded = decode_bundle(raw)
    assert decoded.payload == b"payload"
    assert decoded.encode() == raw


@pytest.mark.parametrize("node", [DtnEID("relay"), IpnEID(0, 9, 0), IpnEID(3, 9, 0)])
def test_previous_node_block(node: DtnEID | IpnEID) -> None:
    value = PreviousNodeBlock(node)
    block = value.to_block(4, BlockFlags.REPLICATE_IN_EVERY_FRAGMENT, CRCType.CRC16_X25)
    assert block.type_code == BlockType.PREVIOUS_NODE and block.number == 4
    assert block.data == node.cbor
    assert PreviousNodeBlock.from_block(block) == value
    with pytest.raises(EncodeError, match="not a node ID"):
        PreviousNodeBlock(DtnEID("relay", "app"))


def test_bundle_age_block() -> None:
    block = BundleAgeBlock(300).to_block(2)
    assert block.data == b"\x19\x01\x2c"
    assert block.crc_type == CRCType.NONE
    assert BundleAgeBlock.from_block(block).age_ms == 300
    with pytest.raises(EncodeError):
        BundleAgeBlock(-1)
    with pytest.raises(ValueError, match="not"):
        BundleAgeBlock.from_block(HopCountBlock(1, 0).to_block(3))


def test_hop_count_block() -> None:
    value = HopCountBlock(2, 1)
    assert value.encode_data() == b"\x82\x02\x01"
    assert not value.exceeded
    assert value.incremented() == HopCountBlock(2, 2)
    assert value.incremented().incremented().exceeded
    assert HopCountBlock(1, 2**64 - 1).incremented().count == 2**64 - 1
    assert HopCountBlock.from_block(value.to_block(5)) == value
    assert HopCountBlock.decode_data(b"\x9f\x02\x01\xff") == value
    for limit in (0, 256):
        with pytest.raises(EncodeError, match="hop limit"):
            HopCountBlock(limit, 0)
    for data in (b"\x81\x01", b"\x9f\x01\x01\x01\xff", b"\x82\x01", b"\x01", b"\x82\x01\x01\x00"):
        with pytest.raises(DecodeError):
            HopCountBlock.decode_data(data)


def test_extension_blocks_from_the_wire_are_validated() -> None:
    bad_hop = raw_canonical(10, 2, 0, 2, b"\x82\x00\x00")
    error = _block_error_with(bad_hop)
    assert isinstance(error, BlockError) and error.rule == "hop-limit-range"
    bad_prev = raw_canonical(6, 2, 0, 2, DtnEID("x", "y").cbor)
    assert _block_error_with(bad_prev).rule == "previous-node-id"
    bad_age = raw_canonical(7, 2, 0, 2, b"\x18")
    assert _block_error_with(bad_age).rule == "cbor-truncated"


def _block_error_with(extension: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_bundle(raw_bundle(None, extension, raw_canonical()))
    return info.value


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (0, BlockAction(report=False, delete_bundle=False, discard_block=False)),
        (0x02, BlockAction(report=True, delete_bundle=False, discard_block=False)),
        (0x04, BlockAction(report=False, delete_bundle=True, discard_block=False)),
        (0x10, BlockAction(report=False, delete_bundle=False, discard_block=True)),
        (0x14, BlockAction(report=False, delete_bundle=True, discard_block=False)),
        (0x16 | 0x01 | 0x80, BlockAction(report=True, delete_bundle=True, discard_block=False)),
        (0x12, BlockAction(report=True, delete_bundle=False, discard_block=True)),
    ],
)
def test_unprocessable_block_action(flags: int, expected: BlockAction) -> None:
    block = CanonicalBlock(200, 2, BlockFlags(flags), CRCType.NONE, b"")
    assert unprocessable_block_action(block) == expected


def test_small_hop_counts_decode_as_the_general_path_does() -> None:
    # The fast path for [limit, count] below 24 builds the value without validation: it must
    # agree with the validating constructor, and leave limit 0 (invalid) to the general path.
    for limit in range(0, 24):
        for count in range(0, 24):
            data = bytes((0x82, limit, count))
            if limit == 0:
                with pytest.raises(DecodeError):
                    HopCountBlock.decode_data(data)
                continue
            decoded = HopCountBlock.decode_data(data)
            assert decoded == HopCountBlock(limit, count)
            assert decoded.encode_data() == data


def test_one_byte_hop_limits_take_the_fast_path_and_agree_with_the_general_one() -> None:
    # Limits 24..255 are encoded 0x18 and a byte (RFC 8949 §4.2.1 shortest form): the fast path
    # of decode_data and of the decoder's check takes them with a count under 24.
    for limit in range(24, 256):
        for count in (0, 1, 23):
            data = b"\x82\x18" + bytes((limit, count))
            decoded = HopCountBlock.decode_data(data)
            assert decoded == HopCountBlock(limit, count)
            assert decoded.encode_data() == data
            check_extension_data(BlockType.HOP_COUNT, data)
    # What the fast path must leave to the general one: a limit not in shortest form, a count
    # of 24 or more (valid), trailing bytes, too little data.
    for data in (b"\x82\x18\x17\x00", b"\x82\x18\x1e\x00\x00", b"", b"\x82", b"\x82\x18"):
        with pytest.raises(DecodeError):
            HopCountBlock.decode_data(data)
        with pytest.raises(EncodeError):
            check_extension_data(BlockType.HOP_COUNT, data)
    assert HopCountBlock.decode_data(b"\x82\x18\x1e\x18\x18") == HopCountBlock(30, 24)
    hop_count = raw_canonical(10, 2, 0, 2, b"\x82\x18\x1e\x01")
    bundle = decode_bundle(raw_bundle(None, hop_count, raw_canonical()))
    assert HopCountBlock.from_block(bundle.blocks[0]) == HopCountBlock(30, 1)
