"""TCPCLv4 timers with synthetic time: keepalives, idle timeout, establishment timeout."""

from __future__ import annotations

import pytest

from convergence.tcpcl import (
    ContactFlags,
    ContactHeader,
    Keepalive,
    MessageReader,
    SegmentFlags,
    SessInit,
    Session,
    SessionClosed,
    SessionConfig,
    SessionState,
    SessTerm,
    SessTermFlags,
    SessTermReason,
    TlsPolicy,
    XferAck,
    XferSegment,
    encode_contact_header,
)

from .tcpcl_pair import SessionPair, established_pair, raw_session


def keepalives_sent(pair: SessionPair, session: Session) -> int:
    reader = MessageReader()
    reader.feed(bytes(pair.sent[session]))
    count = 0
    while (value := reader.next_message()) is not None:
        count += isinstance(value, Keepalive)
    return count


def test_keepalive_negotiated_to_the_minimum_and_sent_only_when_idle() -> None:
    pair = established_pair(
        SessionConfig(keepalive_interval=10), SessionConfig(keepalive_interval=25)
    )
    assert pair.client.next_deadline() == 10.0
    pair.advance(9.99)
    assert keepalives_sent(pair, pair.client) == keepalives_sent(pair, pair.server) == 0
    pair.advance(0.01)
    assert keepalives_sent(pair, pair.client) == keepalives_sent(pair, pair.server) == 1
    pair.advance(35)  # at 20, 30, 40
    assert keepalives_sent(pair, pair.client) == 4
    assert pair.client.state is pair.server.state is SessionState.ESTABLISHED


def test_no_keepalive_while_transfers_keep_the_session_busy() -> None:
    pair = established_pair(
        SessionConfig(keepalive_interval=10), SessionConfig(keepalive_interval=10)
    )
    for _ in range(20):
        pair.advance(6)
        pair.client.send_transfer(b"data")
        pair.pump()
    # The client sent segments, the server sent acks: both transmitted every 6 s.
    assert keepalives_sent(pair, pair.client) == keepalives_sent(pair, pair.server) == 0
    assert pair.client.statistics().keepalives_sent == 0


def test_pending_output_counts_as_transmission() -> None:
    pair = established_pair(
        SessionConfig(keepalive_interval=10), SessionConfig(keepalive_interval=10)
    )
    pair.client.send_transfer(b"queued but not written yet")
    pair.client.handle_timer(10)
    pair.client.send_transfer(b"x")
    assert pair.client.statistics().keepalives_sent == 0
    assert pair.client.next_deadline() == 20  # not due again at once


@pytest.mark.parametrize(("client", "server"), [(0, 30), (30, 0), (0, 0)])
def test_zero_keepalive_disables_keepalives_and_idle_timeout(client: int, server: int) -> None:
    pair = established_pair(
        SessionConfig(keepalive_interval=client), SessionConfig(keepalive_interval=server)
    )
    assert pair.client.parameters is not None
    assert pair.client.parameters.keepalive_interval == 0
    assert pair.client.next_deadline() is None and pair.server.next_deadline() is None
    pair.advance(100_000)
    assert keepalives_sent(pair, pair.client) == 0
    assert pair.client.state is SessionState.ESTABLISHED


def test_idle_timeout_after_twice_the_keepalive_interval() -> None:
    peer = raw_session(SessionConfig(keepalive_interval=10))
    peer.establish(SessInit(10, 1000, 1000))
    session = peer.session
    assert session.next_deadline() == 10
    peer.now = 10
    session.handle_timer(10)
    assert peer.drain() == [Keepalive()]
    assert session.next_deadline() == 20
    peer.now = 19.9
    session.handle_timer(19.9)
    assert peer.drain() == []
    # RFC 9174 §5.1.1: nothing received for the idle timeout ("exactly twice the keepalive
    # interval") ends the session with SESS_TERM reason "Idle Timeout".
    session.handle_timer(20)
    assert peer.drain() == [SessTerm(SessTermReason.IDLE_TIMEOUT)]
    end = peer.events[-1]
    assert isinstance(end, SessionClosed) and not end.clean
    assert end.reason is SessTermReason.IDLE_TIMEOUT
    assert session.next_deadline() is None


def test_anything_received_restarts_the_idle_timer() -> None:
    peer = raw_session(SessionConfig(keepalive_interval=10))
    peer.establish(SessInit(10, 1000, 1000))
    for t in (9.0, 18.0, 27.0, 36.0):
        peer.now = t
        peer.session.handle_timer(t)
        peer.send(b"\x04")  # the peer's KEEPALIVE
    assert peer.session.state is SessionState.ESTABLISHED
    # Our keepalives went out at 18 and 36 (not at 9 or 27: less than 10 s after the last).
    assert peer.session.statistics().keepalives_sent == 2
    assert peer.session.next_deadline() == 46
    peer.session.handle_timer(56)
    assert peer.drain()[-1] == SessTerm(SessTermReason.IDLE_TIMEOUT)


def test_partial_segment_data_counts_as_reception() -> None:
    peer = raw_session(SessionConfig(keepalive_interval=10))
    peer.establish(SessInit(10, 1 << 30, 1 << 30))
    segment = (
        encode_contact_header(ContactHeader())[:0]
        + bytes([1, SegmentFlags.START | SegmentFlags.END])
        + bytes(8)
        + bytes(4)
        + (1000).to_bytes(8, "big")
    )
    peer.send(segment)
    for t in range(5, 100, 5):
        peer.now = float(t)
        peer.session.handle_timer(peer.now)
        peer.send(bytes(10))  # a slow link: the segment trickles in
    assert peer.session.state is SessionState.ESTABLISHED
    peer.send(bytes(1000 - 190))
    assert XferAck(SegmentFlags.START | SegmentFlags.END, 0, 1000) in peer.received


@pytest.mark.parametrize("active", [False, True])
def test_contact_header_timeout_closes_silently(active: bool) -> None:
    session = Session(SessionConfig(establishment_timeout=5), active=active, now=100)
    sent = bytes(session.data_to_send(100))
    assert session.next_deadline() == 105
    session.handle_timer(104.9)
    assert session.state is SessionState.CONTACT_WAIT
    session.handle_timer(105)
    # RFC 9174 §4.1: "If the passive entity does not receive a Contact Header after some
    # implementation-defined time duration after TCP connection is established, the entity
    # SHALL close the TCP connection."
    assert session.state is SessionState.CLOSED
    assert session.data_to_send(105) == b""
    assert sent == (b"dtn!\x04\x00" if active else b"")
    (end,) = session.events()
    assert isinstance(end, SessionClosed) and end.reason is None
    assert end.error is not None and "CONTACT_WAIT" in end.error


def test_sess_init_timeout_sends_sess_term() -> None:
    peer = raw_session(SessionConfig(establishment_timeout=5), active=True)
    peer.drain()
    peer.send(encode_contact_header(ContactHeader()))
    assert isinstance(peer.received[-1], SessInit)
    peer.session.handle_timer(5)
    assert peer.drain() == [SessTerm(SessTermReason.IDLE_TIMEOUT)]
    assert peer.session.state is SessionState.CLOSED


def test_tls_handshake_timeout_closes_silently() -> None:
    session = Session(
        SessionConfig(tls=TlsPolicy.REQUIRED, establishment_timeout=5), active=True, now=0
    )
    session.data_to_send(0)
    session.receive_data(encode_contact_header(ContactHeader(flags=ContactFlags.CAN_TLS)), 1)
    assert session.state is SessionState.TLS_WAIT
    session.handle_timer(5)
    assert session.state is SessionState.CLOSED
    assert session.data_to_send(5) == b""  # no plain-text SESS_TERM inside a TLS handshake
    session.tls_established(6)  # a late success is ignored
    assert session.state is SessionState.CLOSED


def test_refused_session_waiting_for_the_reply_times_out() -> None:
    peer = raw_session(SessionConfig(establishment_timeout=5))
    peer.establish(SessInit(30, 0, 10))  # segment MRU 0 is refused
    assert peer.received[-1] == SessTerm(SessTermReason.CONTACT_FAILURE)
    assert peer.session.next_deadline() == 5
    peer.session.handle_timer(5)
    assert peer.drain() == []
    end = peer.events[-1]
    assert isinstance(end, SessionClosed) and not end.clean
    assert end.reason is SessTermReason.CONTACT_FAILURE


def test_idle_session_shutdown() -> None:
    pair = established_pair(
        SessionConfig(keepalive_interval=10, idle_session_timeout=60),
        SessionConfig(keepalive_interval=10),
    )
    pair.advance(30)
    pair.client.send_transfer(b"activity")
    pair.pump()
    pair.advance(59)  # keepalives flow, but only KEEPALIVE: no activity
    assert pair.client.state is SessionState.ESTABLISHED
    pair.advance(1)
    # RFC 9174 §6.2: no message "other than KEEPALIVE" for the configured time: SESS_TERM
    # "Idle timeout", a clean termination.
    for session in (pair.client, pair.server):
        end = pair.events[session][-1]
        assert end == SessionClosed(clean=True, reason=SessTermReason.IDLE_TIMEOUT)
    reply = bytes(pair.sent[pair.server])[-3:]
    assert reply == bytes([5, SessTermFlags.REPLY, SessTermReason.IDLE_TIMEOUT])


def test_timers_of_a_closed_session_do_nothing() -> None:
    pair = established_pair()
    pair.client.close()
    pair.pump()
    pair.client.handle_timer(1e9)
    assert pair.client.events() == []
    assert XferSegment
