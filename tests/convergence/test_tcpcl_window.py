"""The sans-IO session's send window (a bound on unacknowledged octets that follows the measured
acknowledgement rate), acknowledging segments up to a length, and how far a transfer got when
the session ended."""

from __future__ import annotations

from convergence.tcpcl import (
    MessageReader,
    SegmentFlags,
    SegmentReceived,
    SessionConfig,
    TransferCompleted,
    XferAck,
    XferSegment,
)

from .tcpcl_pair import SessionPair, established_pair, raw_session

SEGMENT = 100


def _manual_receiver() -> SessionConfig:
    return SessionConfig(
        auto_ack_segments=False, auto_ack_final=False, reassemble=False, segment_mru=SEGMENT
    )


def test_without_a_window_everything_queued_goes_out() -> None:
    pair = established_pair(SessionConfig(), _manual_receiver())
    pair.client.send_transfer(b"a" * 1000)
    pair.pump()
    assert pair.client.statistics().in_flight == 1000
    assert pair.client.statistics().send_window is None


def test_the_window_stops_segments_until_acknowledgements_arrive() -> None:
    pair = established_pair(SessionConfig(send_window_min=3 * SEGMENT), _manual_receiver())
    tid = pair.client.send_transfer(b"b" * 1000)
    pair.pump()
    segments = pair.of_type(pair.server, SegmentReceived)
    assert [e.received_length for e in segments] == [100, 200, 300]  # type: ignore[attr-defined]
    assert pair.client.statistics().in_flight == 300
    # Acknowledging the first two segments opens room for two more.
    pair.server.ack_segments(tid, 200)
    pair.pump()
    segments = pair.of_type(pair.server, SegmentReceived)
    assert [e.received_length for e in segments][-2:] == [400, 500]  # type: ignore[attr-defined]
    assert pair.client.statistics().in_flight == 300
    assert pair.client.outgoing_progress() == [(tid, 200, 1000)]


def test_the_window_grows_with_the_acknowledgement_rate() -> None:
    config = SessionConfig(send_window_min=2 * SEGMENT, send_window_delay=0.5)
    pair = established_pair(config, _manual_receiver())
    tid = pair.client.send_transfer(b"c" * 100_000)
    pair.pump()
    # The peer acknowledges 10 segments per 0.1 s (10,000 octets/s): the window becomes
    # 0.5 s of that.
    acked = 0
    for _ in range(30):
        pair.now += 0.01
        acked += SEGMENT
        pair.server.ack_segments(tid, acked)
        pair.pump()
    statistics = pair.client.statistics()
    assert statistics.ack_rate is not None and 9_000 <= statistics.ack_rate <= 11_000
    assert statistics.send_window == int(statistics.ack_rate * 0.5)
    assert statistics.in_flight <= statistics.send_window + SEGMENT


def test_ack_segments_acknowledges_up_to_a_length_but_never_the_end() -> None:
    peer = raw_session(_manual_receiver())
    peer.establish()
    start, end = SegmentFlags.START, SegmentFlags.END
    peer.send_message(
        XferSegment(start, 7, b"x" * 100),
        XferSegment(SegmentFlags(0), 7, b"y" * 100),
        XferSegment(end, 7, b"z" * 50),
    )
    peer.session.ack_segments(7, 150)  # only the first segment lies within 150 octets
    assert [m for m in peer.drain() if isinstance(m, XferAck)] == [XferAck(start, 7, 100)]
    peer.session.ack_segments(7, 250)  # the second; the END segment waits for ack_transfer
    assert [m for m in peer.drain() if isinstance(m, XferAck)] == [XferAck(SegmentFlags(0), 7, 200)]
    peer.session.ack_transfer(7)
    assert [m for m in peer.drain() if isinstance(m, XferAck)] == [XferAck(end, 7, 250)]
    peer.session.ack_segments(7, 250)  # resolved: nothing more
    assert peer.drain() == []


def test_acknowledged_length_survives_a_cut() -> None:
    pair = established_pair(SessionConfig(), _manual_receiver())
    tid = pair.client.send_transfer(b"d" * 1000)
    pair.pump()
    pair.server.ack_segments(tid, 400)
    pair.pump()
    assert pair.client.outgoing_progress() == [(tid, 400, 1000)]
    pair.cut()
    assert not pair.of_type(pair.client, TransferCompleted)
    # What the sender saw acknowledged is what the receiver acknowledged.
    reader = MessageReader()
    reader.feed(bytes(pair.sent[pair.server]))
    acks = []
    while (message := reader.next_message()) is not None:
        if isinstance(message, XferAck):
            acks.append(message.acknowledged_length)
    assert acks == [100, 200, 300, 400]


def test_refusal_releases_the_window() -> None:
    from convergence.tcpcl import XferRefuseReason

    pair = SessionPair(SessionConfig(send_window_min=2 * SEGMENT), _manual_receiver())
    pair.pump()
    tid = pair.client.send_transfer(b"e" * 1000)
    pair.pump()
    assert pair.client.statistics().in_flight == 200
    pair.server.refuse_transfer(tid, XferRefuseReason.NO_RESOURCES)
    pair.pump()
    assert pair.client.statistics().in_flight == 0
