"""TCPCLv4 transfers: segmentation by MRU, acknowledgements (automatic and deferred),
refusals (every reason, mid-transfer, ordering), extension items, sequencing errors."""

from __future__ import annotations

import pytest

from convergence.tcpcl import (
    ExtensionFlags,
    ExtensionItem,
    IncomingTransfer,
    IncomingTransferAborted,
    LocalProtocolError,
    MessageReader,
    MessageType,
    MsgReject,
    MsgRejectReason,
    SegmentFlags,
    SegmentReceived,
    SessionClosed,
    SessionConfig,
    SessionState,
    SessTerm,
    SessTermReason,
    TransferCompleted,
    TransferExtensionType,
    TransferProgress,
    TransferReceived,
    TransferRefused,
    XferAck,
    XferRefuse,
    XferRefuseReason,
    XferSegment,
)

from .tcpcl_pair import SessionPair, established_pair, raw_session

START, END = SegmentFlags.START, SegmentFlags.END
CRITICAL = ExtensionFlags.CRITICAL


def wire_messages(pair: SessionPair, session: object) -> list[object]:
    """Decode everything ``session`` sent during the pair's life."""
    reader = MessageReader()
    reader.feed(bytes(pair.sent[session]))  # type: ignore[index]
    out = []
    while (value := reader.next_message()) is not None:
        out.append(value)
    assert reader.buffered == 0
    return out


def of(kind: type, values: list[object]) -> list[object]:
    return [v for v in values if isinstance(v, kind)]


def test_segmented_by_peer_mru_with_acks_and_progress() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(segment_mru=1000))
    bundle = bytes(range(256)) * 10  # 2560 octets
    tid = pair.client.send_transfer(bundle)
    assert tid == 0
    pair.pump()
    segments = of(XferSegment, wire_messages(pair, pair.client))
    assert [(s.flags, len(s.data)) for s in segments] == [  # type: ignore[attr-defined]
        (START, 1000),
        (SegmentFlags(0), 1000),
        (END, 560),
    ]
    # The Transfer Length item rides on the START segment only (RFC 9174 §5.2.2, §5.2.5.1).
    assert segments[0].extensions == (ExtensionItem.transfer_length(2560),)  # type: ignore[attr-defined]
    # RFC 9174 §5.2.3: one XFER_ACK per segment, flags echoed, lengths cumulative.
    acks = of(XferAck, wire_messages(pair, pair.server))
    assert acks == [
        XferAck(START, 0, 1000),
        XferAck(SegmentFlags(0), 0, 2000),
        XferAck(END, 0, 2560),
    ]
    assert pair.of_type(pair.client, TransferProgress) == [
        TransferProgress(0, 1000, 2560),
        TransferProgress(0, 2000, 2560),
    ]
    assert pair.of_type(pair.client, TransferCompleted) == [TransferCompleted(0, 2560)]
    assert pair.of_type(pair.server, IncomingTransfer) == [
        IncomingTransfer(0, (ExtensionItem.transfer_length(2560),), 2560)
    ]
    (received,) = pair.of_type(pair.server, TransferReceived)
    assert received.data == bundle and not received.ack_pending  # type: ignore[attr-defined]
    assert pair.client.idle and pair.server.idle
    stats = pair.client.statistics()
    assert stats.segments_sent == 3 and stats.transfers_completed == 1
    assert stats.pending_transfers == 0 and stats.bytes_sent == len(pair.sent[pair.client])
    assert pair.server.statistics().segments_received == 3
    assert pair.server.statistics().transfers_received == 1


def test_single_segment_transfer_has_no_transfer_length() -> None:
    pair = established_pair()
    pair.client.send_transfer(b"small")
    pair.pump()
    (segment,) = of(XferSegment, wire_messages(pair, pair.client))
    assert segment.flags == START | END and segment.extensions == ()  # type: ignore[attr-defined]


def test_own_max_segment_size_and_transfer_length_switch() -> None:
    pair = established_pair(SessionConfig(max_segment_size=300, send_transfer_length=False))
    pair.client.send_transfer(bytes(700), extensions=[ExtensionItem(0x9000, b"x")])
    pair.pump()
    segments = of(XferSegment, wire_messages(pair, pair.client))
    assert [len(s.data) for s in segments] == [300, 300, 100]  # type: ignore[attr-defined]
    assert segments[0].extensions == (ExtensionItem(0x9000, b"x"),)  # type: ignore[attr-defined]


def test_transfer_ids_count_up_and_zero_length_transfer() -> None:
    pair = established_pair(SessionConfig(first_transfer_id=41))
    ids = [pair.client.send_transfer(b"") for _ in range(3)]
    assert ids == [41, 42, 43]
    pair.pump()
    assert [e.transfer_id for e in pair.of_type(pair.server, TransferReceived)] == ids  # type: ignore[attr-defined]
    assert all(e.data == b"" for e in pair.of_type(pair.server, TransferReceived))  # type: ignore[attr-defined]


def test_bidirectional_pipelined_transfers() -> None:
    pair = established_pair(SessionConfig(segment_mru=64), SessionConfig(segment_mru=50))
    up = [bytes([i]) * (100 * i + 1) for i in range(5)]
    down = [bytes([i + 100]) * (70 * i + 3) for i in range(4)]
    up_ids = [pair.client.send_transfer(b) for b in up]
    down_ids = [pair.server.send_transfer(b) for b in down]
    pair.pump()
    got_up = {e.transfer_id: e.data for e in pair.of_type(pair.server, TransferReceived)}  # type: ignore[attr-defined]
    got_down = {e.transfer_id: e.data for e in pair.of_type(pair.client, TransferReceived)}  # type: ignore[attr-defined]
    assert got_up == dict(zip(up_ids, up, strict=True))
    assert got_down == dict(zip(down_ids, down, strict=True))


def test_bundle_above_peer_transfer_mru_is_a_local_error() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(transfer_mru=100))
    with pytest.raises(LocalProtocolError, match="exceeds the peer's transfer MRU 100"):
        pair.client.send_transfer(bytes(101))
    pair.client.send_transfer(bytes(100))


def test_transfer_before_establishment_is_a_local_error() -> None:
    pair = SessionPair()
    with pytest.raises(LocalProtocolError, match="CONTACT_WAIT"):
        pair.client.send_transfer(b"x")


def test_large_payload_is_handed_out_without_copying() -> None:
    pair = established_pair()
    bundle = bytes(1 << 20)
    pair.client.send_transfer(bundle)
    header = pair.client.data_to_send(pair.now)
    assert isinstance(header, bytes) and len(header) < 40
    body = pair.client.data_to_send(pair.now)
    assert isinstance(body, memoryview) and body.obj is bundle and len(body) == len(bundle)
    assert pair.client.data_to_send(pair.now) == b""


@pytest.mark.parametrize("max_bytes", [1, 7, 1000, 70_000])
def test_data_to_send_respects_max_bytes(max_bytes: int) -> None:
    pair = established_pair(SessionConfig(), SessionConfig(segment_mru=30_000), max_bytes=max_bytes)
    bundles = [bytes([n]) * (n * 11_000 + 5) for n in range(4)]
    for bundle in bundles:
        pair.client.send_transfer(bundle)
    while piece := pair.client.data_to_send(pair.now, max_bytes):
        assert 0 < len(piece) <= max_bytes
        pair.server.receive_data(bytes(piece), pair.now)
        pair.collect(pair.server)
    assert [e.data for e in pair.of_type(pair.server, TransferReceived)] == bundles  # type: ignore[attr-defined]
    with pytest.raises(LocalProtocolError, match="at least 1"):
        pair.client.data_to_send(pair.now, 0)


# -- acknowledgement modes ----------------------------------------------------------------


def test_deferred_final_ack() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(auto_ack_final=False, segment_mru=10))
    tid = pair.client.send_transfer(b"0123456789abcdef")
    pair.pump()
    (received,) = pair.of_type(pair.server, TransferReceived)
    assert received.ack_pending  # type: ignore[attr-defined]
    assert pair.of_type(pair.client, TransferProgress) == [TransferProgress(tid, 10, 16)]
    assert not pair.of_type(pair.client, TransferCompleted)
    assert not pair.server.idle
    pair.server.ack_transfer(tid)  # the bundle is stored durably now
    pair.pump()
    assert pair.of_type(pair.client, TransferCompleted) == [TransferCompleted(tid, 16)]
    with pytest.raises(LocalProtocolError, match="no incoming transfer 0 awaits"):
        pair.server.ack_transfer(tid)
    with pytest.raises(LocalProtocolError, match="no incoming transfer 5 awaits"):
        pair.server.ack_transfer(5)


def test_manual_acks_for_every_segment() -> None:
    pair = established_pair(
        SessionConfig(),
        SessionConfig(auto_ack_segments=False, auto_ack_final=False, segment_mru=4),
    )
    tid = pair.client.send_transfer(b"abcdefghij")
    pair.transmit(pair.client)
    pair.transmit(pair.server)
    assert of(XferAck, wire_messages(pair, pair.server)) == []
    pair.server.ack_transfer(tid)
    pair.pump()
    assert of(XferAck, wire_messages(pair, pair.server)) == [
        XferAck(START, tid, 4),
        XferAck(SegmentFlags(0), tid, 8),
        XferAck(END, tid, 10),
    ]
    assert pair.of_type(pair.client, TransferCompleted) == [TransferCompleted(tid, 10)]


def test_acks_mid_transfer_when_manual() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(auto_ack_segments=False, segment_mru=4))
    tid = pair.client.send_transfer(b"abcdefghij")
    pair.transmit(pair.client, limit=39)  # the first segment only
    pair.server.ack_transfer(tid)
    pair.pump()  # the END is acknowledged automatically, with every pending segment
    assert [a.acknowledged_length for a in of(XferAck, wire_messages(pair, pair.server))] == [  # type: ignore[attr-defined]
        4,
        8,
        10,
    ]


def test_segments_delivered_without_reassembly() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(reassemble=False, segment_mru=4))
    tid = pair.client.send_transfer(b"abcdefghij")
    pair.pump()
    segments = pair.of_type(pair.server, SegmentReceived)
    assert [(bytes(s.data), s.received_length, s.end) for s in segments] == [  # type: ignore[attr-defined]
        (b"abcd", 4, False),
        (b"efgh", 8, False),
        (b"ij", 10, True),
    ]
    (received,) = pair.of_type(pair.server, TransferReceived)
    assert received == TransferReceived(tid, None, 10, (ExtensionItem.transfer_length(10),), False)


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(XferRefuseReason))
def test_refusal_on_start_for_every_reason(reason: XferRefuseReason) -> None:
    pair = established_pair(SessionConfig(), SessionConfig(segment_mru=100))
    tid = pair.client.send_transfer(bytes(1000))
    pair.transmit(pair.client, limit=150)  # the START segment
    (incoming,) = pair.of_type(pair.server, IncomingTransfer)
    assert incoming.total_length == 1000  # type: ignore[attr-defined]
    pair.server.refuse_transfer(tid, reason)
    with pytest.raises(LocalProtocolError, match="no incoming transfer 0 to refuse"):
        pair.server.refuse_transfer(tid)
    pair.transmit(pair.server)
    pair.pump()
    assert pair.of_type(pair.client, TransferRefused) == [TransferRefused(tid, reason, 100)]
    assert not pair.of_type(pair.server, TransferReceived)
    # The sender stopped at a segment boundary: never all ten segments.
    assert len(of(XferSegment, wire_messages(pair, pair.client))) < 10
    # The session goes on: the next transfer works.
    next_tid = pair.client.send_transfer(b"after")
    pair.pump()
    assert pair.of_type(pair.server, TransferReceived)[-1].transfer_id == next_tid  # type: ignore[attr-defined]
    assert pair.client.statistics().transfers_refused_by_peer == 1
    assert pair.server.statistics().transfers_refused_by_us == 1


def test_unknown_refusal_reason_is_passed_on_as_int() -> None:
    peer = raw_session(active=True)
    peer.establish()
    tid = peer.session.send_transfer(b"x" * 5)
    peer.drain()
    peer.send_message(XferRefuse(0xE5, tid))
    assert peer.events[-1] == TransferRefused(tid, 0xE5, 0)


def test_refusal_crossing_segments_mid_transfer() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(segment_mru=100))
    tid = pair.client.send_transfer(bytes(2000))
    start, middle = 35 + 100, 18 + 100  # octets of the START and of a later segment
    pair.transmit(pair.client, limit=start + 3 * middle)  # four segments arrive
    pair.server.refuse_transfer(tid, XferRefuseReason.NOT_ACCEPTABLE)
    pair.transmit(pair.client, limit=2 * middle)  # two more were already on the wire
    pair.transmit(pair.server)
    pair.pump()
    refusals = of(XferRefuse, wire_messages(pair, pair.server))
    # RFC 9174 §5.2.4: "subsequent segments of the bundle SHALL also be refused".
    assert refusals == [XferRefuse(XferRefuseReason.NOT_ACCEPTABLE, tid)] * 3
    assert pair.of_type(pair.client, TransferRefused) == [
        TransferRefused(tid, XferRefuseReason.NOT_ACCEPTABLE, 400)
    ]
    assert len(of(XferSegment, wire_messages(pair, pair.client))) == 6
    assert not pair.of_type(pair.server, TransferReceived)


def test_refusal_while_a_segment_is_partly_written() -> None:
    peer = raw_session(active=True)
    peer.establish(None)
    tid = peer.session.send_transfer(bytes(3_000_000))
    peer.reader.feed(bytes(peer.session.data_to_send(0, 50)))
    out = peer.send_message(XferRefuse(XferRefuseReason.NO_RESOURCES, tid))
    assert peer.events[-1] == TransferRefused(tid, XferRefuseReason.NO_RESOURCES, 0)
    # RFC 9174 §5.2.4: "the sender MUST complete the transmission of any partially sent
    # XFER_SEGMENT message [...] MUST NOT commence transmission of any further segments".
    assert [(type(m), len(m.data)) for m in out] == [(XferSegment, 1 << 20)]  # type: ignore[union-attr]


def test_refusals_wait_for_earlier_transfers_to_be_acknowledged() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(auto_ack_final=False))
    first = pair.client.send_transfer(b"first")
    second = pair.client.send_transfer(b"second")
    pair.pump()
    pair.server.refuse_transfer(second, XferRefuseReason.COMPLETED)
    pair.pump()
    # RFC 9174 §5.2.4: "The receiver MUST, for each transfer preceding the one to be refused,
    # have either acknowledged all XFER_SEGMENT messages or refused the bundle transfer."
    assert not pair.of_type(pair.client, TransferRefused)
    pair.server.ack_transfer(first)
    pair.pump()
    tail = [
        e for e in pair.events[pair.client] if isinstance(e, TransferCompleted | TransferRefused)
    ]
    assert tail == [
        TransferCompleted(first, 5),
        TransferRefused(second, XferRefuseReason.COMPLETED, 0),
    ]


def test_refusing_after_the_end_segment_instead_of_acking() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(auto_ack_final=False))
    tid = pair.client.send_transfer(b"bundle")
    pair.pump()
    pair.server.refuse_transfer(tid, XferRefuseReason.NO_RESOURCES)  # storing it failed
    pair.pump()
    assert pair.of_type(pair.client, TransferRefused) == [
        TransferRefused(tid, XferRefuseReason.NO_RESOURCES, 0)
    ]
    assert pair.client.idle and pair.server.idle


def test_refusal_crossing_the_final_ack_and_late_acks_are_ignored() -> None:
    peer = raw_session(active=True)
    peer.establish()
    tid = peer.session.send_transfer(b"abc")
    peer.drain()
    peer.send_message(XferAck(START | END, tid, 3))
    assert peer.events[-1] == TransferCompleted(tid, 3)
    assert peer.send_message(XferRefuse(XferRefuseReason.UNKNOWN, tid)) == []
    assert peer.send_message(XferAck(START | END, tid, 3)) == []
    assert peer.events[-1] == TransferCompleted(tid, 3)


@pytest.mark.parametrize(
    "message",
    [
        XferAck(END, 99, 1),
        XferRefuse(XferRefuseReason.UNKNOWN, 99),
        XferAck(START, 0, 4),  # more than was sent
        XferAck(START | END, 0, 2),  # END with a short length
    ],
)
def test_nonsense_acks_and_refusals_are_unexpected(message: XferAck | XferRefuse) -> None:
    peer = raw_session(active=True)
    peer.establish()
    peer.session.send_transfer(b"abc")
    peer.drain()
    out = peer.send_message(message)
    mtype = MessageType.XFER_ACK if isinstance(message, XferAck) else MessageType.XFER_REFUSE
    assert out == [MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, mtype)]
    assert peer.session.state is SessionState.ESTABLISHED


# -- screening of incoming transfers ------------------------------------------------------


def test_transfer_length_above_our_mru_is_refused_at_start() -> None:
    peer = raw_session(SessionConfig(transfer_mru=1000))
    peer.establish()
    start = XferSegment(START, 0, bytes(10), (ExtensionItem.transfer_length(5000),))
    assert peer.send_message(start) == [XferRefuse(XferRefuseReason.NO_RESOURCES, 0)]
    assert peer.events[-1] == IncomingTransferAborted(0, XferRefuseReason.NO_RESOURCES, 10)
    # Segments crossing the refusal are refused again; data is not kept.
    assert peer.send_message(XferSegment(SegmentFlags(0), 0, bytes(10))) == [
        XferRefuse(XferRefuseReason.NO_RESOURCES, 0)
    ]
    peer.send_message(XferSegment(END, 0, bytes(10)))
    # A next transfer after an unfinished refused one is fine.
    assert peer.send_message(XferSegment(START | END, 1, b"ok")) == [XferAck(START | END, 1, 2)]


def test_data_beyond_our_transfer_mru_is_refused_as_it_arrives() -> None:
    peer = raw_session(SessionConfig(transfer_mru=25))
    peer.establish()
    assert peer.send_message(XferSegment(START, 0, bytes(20))) == [XferAck(START, 0, 20)]
    out = peer.send_message(XferSegment(SegmentFlags(0), 0, bytes(20)))
    assert out == [XferRefuse(XferRefuseReason.NO_RESOURCES, 0)]
    assert peer.events[-1] == IncomingTransferAborted(0, XferRefuseReason.NO_RESOURCES, 40)


def test_segment_above_our_segment_mru_ends_the_session() -> None:
    peer = raw_session(SessionConfig(segment_mru=100))
    peer.establish()
    out = peer.send_message(XferSegment(START | END, 0, bytes(101)))
    assert out == [SessTerm(SessTermReason.RESOURCE_EXHAUSTION)]
    assert peer.session.state is SessionState.CLOSED


@pytest.mark.parametrize(
    ("extensions", "data", "reason"),
    [
        ((ExtensionItem(0x8888, b"", CRITICAL),), b"x", XferRefuseReason.EXTENSION_FAILURE),
        ((ExtensionItem.transfer_length(1),) * 2, b"x", XferRefuseReason.EXTENSION_FAILURE),
        ((ExtensionItem(1, b"short"),), b"x", XferRefuseReason.EXTENSION_FAILURE),
        ((ExtensionItem.transfer_length(5),), b"x", XferRefuseReason.NOT_ACCEPTABLE),
        ((ExtensionItem.transfer_length(1),), b"xy", XferRefuseReason.NOT_ACCEPTABLE),
        ((ExtensionItem(0x8888, b"", ExtensionFlags(0)),), b"x", None),
        ((ExtensionItem.transfer_length(1, critical=True),), b"x", None),
    ],
)
def test_transfer_extension_items(
    extensions: tuple[ExtensionItem, ...], data: bytes, reason: XferRefuseReason | None
) -> None:
    peer = raw_session()
    peer.establish()
    out = peer.send_message(XferSegment(START | END, 0, data, extensions))
    if reason is None:
        assert out == [XferAck(START | END, 0, len(data))]
        assert peer.events[-1] == TransferReceived(0, data, len(data), extensions, False)
    else:
        assert out == [XferRefuse(reason, 0)]
        assert isinstance(peer.events[-1], IncomingTransferAborted)


def test_new_transfer_crossing_our_sess_term_is_refused() -> None:
    pair = established_pair()
    tid = pair.client.send_transfer(b"late")
    pair.server.close()
    pair.transmit(pair.client)  # the START left before the SESS_TERM arrived
    pair.pump()
    # RFC 9174 §6.1: "If a new incoming transfer is attempted while in the Ending state, the
    # receiving entity SHALL send an XFER_REFUSE with a Reason Code of "Session Terminating"."
    assert pair.of_type(pair.client, TransferRefused) == [
        TransferRefused(tid, XferRefuseReason.SESSION_TERMINATING, 0)
    ]
    client_end = pair.events[pair.client][-1]
    assert client_end == SessionClosed(clean=True, reason=SessTermReason.UNKNOWN)


# -- sequencing errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([XferSegment(SegmentFlags(0), 0, b"x")], "without a START"),
        ([XferSegment(START, 0, b"x"), XferSegment(END, 1, b"x")], "without a START"),
        ([XferSegment(START, 0, b"x"), XferSegment(START, 1, b"x")], "before transfer 0 ended"),
        ([XferSegment(START | END, 4, b"x"), XferSegment(START | END, 4, b"x")], "used twice"),
        ([XferSegment(START | END, 4, b""), XferSegment(END, 4, b"x")], "without a START"),
    ],
)
def test_segment_sequence_violations_close(messages: list[XferSegment], match: str) -> None:
    peer = raw_session()
    peer.establish()
    out = peer.send_message(*messages)
    assert out[-1] == MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, MessageType.XFER_SEGMENT)
    end = peer.events[-1]
    assert isinstance(end, SessionClosed) and end.error is not None and match in end.error


def test_transfer_ids_need_not_be_sequential() -> None:
    peer = raw_session()
    peer.establish()
    for tid in (7, 3, 2**64 - 1, 0):
        assert peer.send_message(XferSegment(START | END, tid, b"x")) == [
            XferAck(START | END, tid, 1)
        ]


def test_transfer_id_exhaustion_ends_the_session() -> None:
    pair = established_pair(SessionConfig(first_transfer_id=2**64 - 1))
    last = pair.client.send_transfer(b"last")
    pair.transmit(pair.client)
    with pytest.raises(LocalProtocolError, match="Transfer ID space exhausted"):
        pair.client.send_transfer(b"one too many")
    pair.pump()
    assert pair.of_type(pair.server, TransferReceived)[0].transfer_id == last  # type: ignore[attr-defined]
    assert pair.events[pair.client][-1] == SessionClosed(
        clean=True, reason=SessTermReason.RESOURCE_EXHAUSTION
    )


def test_connection_lost_mid_transfer_reports_both_sides() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(segment_mru=100))
    done = pair.client.send_transfer(b"done")
    pair.pump()
    cut = pair.client.send_transfer(bytes(1000))
    never = pair.client.send_transfer(b"never started")
    pair.transmit(pair.client, limit=300)
    pair.cut()
    client_end = pair.events[pair.client][-1]
    assert isinstance(client_end, SessionClosed) and not client_end.clean
    assert client_end.unacknowledged == (cut, never) and done not in client_end.unacknowledged
    aborted = pair.of_type(pair.server, IncomingTransferAborted)
    assert aborted == [IncomingTransferAborted(cut, None, 200)]  # two whole segments
    assert pair.server.data_to_send(pair.now) == b""
    pair.server.ack_transfer(cut)  # too late: ignored
    pair.server.refuse_transfer(cut)
    pair.server.connection_closed(pair.now)
    pair.server.handle_timer(pair.now + 1000)
    assert pair.server.events() == []


def test_transfer_extension_type_code() -> None:
    assert TransferExtensionType.TRANSFER_LENGTH == 1
