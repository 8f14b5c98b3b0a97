"""TCPCLv4 codec: message values, encoding, the incremental reader."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergence.tcpcl import (
    ContactFlags,
    ContactHeader,
    DecodeError,
    ExtensionFlags,
    ExtensionItem,
    Keepalive,
    LocalProtocolError,
    Message,
    MessageReader,
    MsgReject,
    MsgRejectReason,
    SegmentFlags,
    SessInit,
    SessTerm,
    SessTermFlags,
    SessTermReason,
    XferAck,
    XferRefuse,
    XferRefuseReason,
    XferSegment,
    encode_contact_header,
    encode_message,
    find_transfer_length,
)
from convergence.tcpcl.incoming import TransferIdSet

U64 = 2**64 - 1

items = st.builds(
    ExtensionItem,
    item_type=st.integers(0, 0xFFFF),
    value=st.binary(max_size=40),
    flags=st.integers(0, 255).map(ExtensionFlags),
)
messages = st.one_of(
    st.builds(
        SessInit,
        keepalive_interval=st.integers(0, 0xFFFF),
        segment_mru=st.integers(0, U64),
        transfer_mru=st.integers(0, U64),
        node_id=st.text(max_size=30),
        extensions=st.lists(items, max_size=3).map(tuple),
    ),
    st.builds(
        lambda flags, tid, data, ext: XferSegment(
            SegmentFlags(flags), tid, data, ext if flags & SegmentFlags.START else ()
        ),
        st.integers(0, 255),
        st.integers(0, U64),
        st.binary(max_size=300),
        st.lists(items, max_size=3).map(tuple),
    ),
    st.builds(
        XferAck,
        flags=st.integers(0, 255).map(SegmentFlags),
        transfer_id=st.integers(0, U64),
        acknowledged_length=st.integers(0, U64),
    ),
    st.builds(XferRefuse, reason=st.integers(0, 255), transfer_id=st.integers(0, U64)),
    st.just(Keepalive()),
    st.builds(SessTerm, reason=st.integers(0, 255), flags=st.integers(0, 255).map(SessTermFlags)),
    st.builds(MsgReject, reason=st.integers(0, 255), message_type=st.integers(0, 255)),
)


def decode_all(data: bytes, splits: list[int], **kwargs: object) -> list[object]:
    reader = MessageReader(**kwargs)  # type: ignore[arg-type]
    out: list[object] = []
    pos = 0
    for cut in [*sorted(splits), len(data)]:
        reader.feed(data[pos:cut])
        pos = max(pos, cut)
        while (value := reader.next_message()) is not None:
            out.append(value)
    assert reader.buffered == 0
    return out


@settings(max_examples=200)
@given(
    st.booleans(),
    st.integers(0, 255),
    st.lists(messages, max_size=6),
    st.lists(st.integers(0, 2000), max_size=8),
)
def test_roundtrip_in_arbitrary_chunks(
    with_contact: bool, flags: int, msgs: list[Message], splits: list[int]
) -> None:
    contact = ContactHeader(flags=ContactFlags(flags))
    data = (encode_contact_header(contact) if with_contact else b"") + b"".join(
        encode_message(m) for m in msgs
    )
    decoded = decode_all(data, splits, contact_header=with_contact)
    expected: list[object] = [contact, *msgs] if with_contact else list(msgs)
    assert decoded == expected
    # Unknown reason codes stay plain ints, known ones become enum members.
    for value in decoded:
        if isinstance(value, XferRefuse) and value.reason in XferRefuseReason._value2member_map_:
            assert isinstance(value.reason, XferRefuseReason)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_only_raise_decode_error(data: bytes, contact: bool) -> None:
    reader = MessageReader(contact_header=contact, max_segment_length=100)
    reader.feed(data)
    try:
        while reader.next_message() is not None:
            pass
    except DecodeError:
        pass


def test_large_segment_data_is_not_copied_when_in_one_chunk() -> None:
    payload = bytes(range(256)) * 4096
    wire = encode_message(XferSegment(SegmentFlags.START | SegmentFlags.END, 7, payload))
    reader = MessageReader(contact_header=False)
    reader.feed(wire)
    segment = reader.next_message()
    assert isinstance(segment, XferSegment)
    assert isinstance(segment.data, memoryview)
    assert segment.data.obj is wire
    assert segment.data == payload


def test_segment_spanning_many_chunks_is_joined_once() -> None:
    payload = random.Random(1).randbytes(200_000)
    wire = encode_message(XferSegment(SegmentFlags.START, 1, payload))
    reader = MessageReader(contact_header=False)
    for pos in range(0, len(wire), 4096):
        assert reader.next_message() is None
        reader.feed(wire[pos : pos + 4096])
    segment = reader.next_message()
    assert isinstance(segment, XferSegment)
    assert segment.data == payload
    assert reader.buffered == 0


def test_mutable_input_is_copied() -> None:
    buf = bytearray(encode_message(XferAck(SegmentFlags.END, 1, 5)))
    reader = MessageReader(contact_header=False)
    reader.feed(buf)
    buf[:] = b"\xff" * len(buf)
    assert reader.next_message() == XferAck(SegmentFlags.END, 1, 5)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"http", "bad contact header magic"),
        (b"d", None),  # a correct prefix: need more
        (b"dt", None),
        (b"dx", "bad contact header magic"),
    ],
)
def test_contact_header_magic_is_checked_early(data: bytes, match: str | None) -> None:
    reader = MessageReader()
    reader.feed(data)
    if match is None:
        assert reader.next_message() is None
    else:
        with pytest.raises(DecodeError, match=match) as info:
            reader.next_message()
        assert info.value.term_reason is None and info.value.reject_reason is None


def test_contact_header_of_other_version_decodes() -> None:
    reader = MessageReader()
    # A TCPCLv3 contact header: magic, version 3, flags, keepalive, SDNV EID length, EID.
    reader.feed(b"dtn!\x03\x00\x00\x1e\x06dtn:aa")
    assert reader.next_message() == ContactHeader(version=3)


def test_unknown_message_type_asks_for_msg_reject() -> None:
    reader = MessageReader(contact_header=False)
    reader.feed(encode_message(Keepalive()) + b"\x42garbage")
    assert reader.next_message() == Keepalive()
    with pytest.raises(DecodeError, match="unknown message type 0x42") as info:
        reader.next_message()
    assert info.value.reject_reason is MsgRejectReason.MESSAGE_TYPE_UNKNOWN
    assert info.value.message_type == 0x42


def test_segment_longer_than_mru_is_refused_before_buffering() -> None:
    reader = MessageReader(contact_header=False, max_segment_length=10)
    head = encode_message(XferSegment(SegmentFlags.START, 0, b"x" * 11))[:-11]
    reader.feed(head)  # header only: the length is known before any data
    with pytest.raises(DecodeError, match="exceeds our segment MRU 10") as info:
        reader.next_message()
    assert info.value.term_reason is SessTermReason.RESOURCE_EXHAUSTION


def test_extension_list_longer_than_limit_is_refused() -> None:
    reader = MessageReader(contact_header=False, max_extensions_length=4)
    reader.feed(encode_message(SessInit(0, 1, 1, "", (ExtensionItem(5, b"abc"),))))
    with pytest.raises(DecodeError, match="extension items of 8 octets") as info:
        reader.next_message()
    assert info.value.term_reason is SessTermReason.CONTACT_FAILURE


def test_inconsistent_session_extension_items_fail_sess_init() -> None:
    good = encode_message(SessInit(0, 1, 1, "", (ExtensionItem(5, b"abc"),)))
    bad = good[:-5] + (9).to_bytes(2, "big") + good[-3:]  # the item claims 9 octets, not 3
    reader = MessageReader(contact_header=False)
    reader.feed(bad)
    with pytest.raises(DecodeError, match="claims 9 octets, 3 remain") as info:
        reader.next_message()
    assert info.value.term_reason is SessTermReason.CONTACT_FAILURE


def test_inconsistent_transfer_extension_items_are_unsupported() -> None:
    wire = bytearray(encode_message(XferSegment(SegmentFlags.START, 3, b"", (ExtensionItem(9),))))
    wire[10:14] = (3).to_bytes(4, "big")  # list length 3: shorter than the item header
    del wire[16:18]
    reader = MessageReader(contact_header=False)
    reader.feed(bytes(wire))
    with pytest.raises(DecodeError, match="truncated transfer extension item header") as info:
        reader.next_message()
    assert info.value.reject_reason is MsgRejectReason.MESSAGE_UNSUPPORTED


def test_node_id_must_be_utf8() -> None:
    wire = bytearray(encode_message(SessInit(0, 1, 1, "ab")))
    wire[21] = 0xFF
    reader = MessageReader(contact_header=False)
    reader.feed(bytes(wire))
    with pytest.raises(DecodeError, match="not valid UTF-8") as info:
        reader.next_message()
    assert info.value.term_reason is SessTermReason.CONTACT_FAILURE


def test_wire_layout_matches_rfc_figures() -> None:
    assert encode_contact_header(ContactHeader(flags=ContactFlags.CAN_TLS)) == b"dtn!\x04\x01"
    assert encode_message(Keepalive()) == b"\x04"
    assert encode_message(SessTerm(SessTermReason.BUSY, SessTermFlags.REPLY)) == b"\x05\x01\x03"
    assert encode_message(MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, 2)) == b"\x06\x03\x02"
    assert encode_message(XferRefuse(XferRefuseReason.COMPLETED, 9)) == b"\x03\x01" + bytes(
        [0] * 7 + [9]
    )
    assert encode_message(XferAck(SegmentFlags.END, 1, 2)) == b"\x02\x01" + (1).to_bytes(
        8, "big"
    ) + (2).to_bytes(8, "big")
    assert encode_message(SessInit(60, 1, 2, "ab")) == (
        b"\x07\x00\x3c" + (1).to_bytes(8, "big") + (2).to_bytes(8, "big") + b"\x00\x02ab"
    ) + bytes(4)
    segment = XferSegment(SegmentFlags.START, 5, b"hi", (ExtensionItem.transfer_length(2),))
    assert encode_message(segment) == (
        b"\x01\x02"
        + (5).to_bytes(8, "big")
        + (13).to_bytes(4, "big")
        + b"\x00\x00\x01\x00\x08"
        + (2).to_bytes(8, "big")
        + (2).to_bytes(8, "big")
        + b"hi"
    )
    middle = XferSegment(SegmentFlags(0), 5, b"hi")
    assert (
        encode_message(middle)
        == b"\x01\x00" + (5).to_bytes(8, "big") + (2).to_bytes(8, "big") + b"hi"
    )


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: SessInit(70000, 1, 1), "keepalive interval 70000"),
        (lambda: SessInit(1, -1, 1), "segment MRU -1"),
        (lambda: SessInit(1, 1, 2**64), "transfer MRU"),
        (lambda: SessInit(1, 1, 1, "x" * 70000), "node ID longer"),
        (lambda: XferSegment(SegmentFlags.END, 1, b"", (ExtensionItem(1),)), "require the START"),
        (lambda: XferSegment(SegmentFlags.END, 2**64), "transfer ID"),
        (lambda: XferAck(SegmentFlags.END, 1, -5), "acknowledged length"),
        (lambda: XferRefuse(256, 1), "refuse reason 256"),
        (lambda: SessTerm(300), "termination reason 300"),
        (lambda: MsgReject(1, 256), "rejected message type"),
        (lambda: ExtensionItem(0x10000), "item type"),
        (lambda: ExtensionItem(1, b"x" * 65536), "65535"),
        (lambda: ContactHeader(version=256), "version 256"),
        (lambda: ExtensionItem.transfer_length(-1), "total length"),
    ],
)
def test_unencodable_values_are_local_errors(build: object, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        build()  # type: ignore[operator]


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(LocalProtocolError, match="not a TCPCLv4 message"):
        encode_message(ContactHeader())  # type: ignore[arg-type]


def test_find_transfer_length() -> None:
    assert find_transfer_length([]) is None
    assert find_transfer_length([ExtensionItem(7), ExtensionItem.transfer_length(12)]) == 12
    with pytest.raises(DecodeError, match="more than one"):
        find_transfer_length([ExtensionItem.transfer_length(1)] * 2)
    with pytest.raises(DecodeError, match="of 3 octets, expected 8"):
        find_transfer_length([ExtensionItem(1, b"abc")])


def test_flags_and_properties() -> None:
    assert ContactHeader(flags=ContactFlags(0x81)).can_tls
    assert not ContactHeader().can_tls
    assert ExtensionItem(1, flags=ExtensionFlags.CRITICAL).critical
    segment = XferSegment(SegmentFlags.START | SegmentFlags.END, 1)
    assert segment.start and segment.end
    assert SessTerm(0, SessTermFlags.REPLY).reply
    assert ExtensionItem.transfer_length(3, critical=True).critical


@settings(max_examples=200)
@given(st.lists(st.integers(0, 60), max_size=80))
def test_transfer_id_set_matches_a_set(values: list[int]) -> None:
    ids = TransferIdSet()
    model: set[int] = set()
    for value in values:
        assert ids.add(value) == (value not in model)
        model.add(value)
        assert len(ids) == len(model)
    for probe in range(-1, 62):
        assert (probe in ids) == (probe in model)
    assert "x" not in ids


def test_transfer_id_set_stays_one_range_for_sequential_ids() -> None:
    ids = TransferIdSet()
    for value in range(10_000):
        assert ids.add(value)
    assert ids.range_count == 1
    assert not ids.add(5000)
