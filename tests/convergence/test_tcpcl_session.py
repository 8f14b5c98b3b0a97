"""TCPCLv4 session: contact header, TLS decision, SESS_INIT negotiation, termination,
and peers that break the protocol."""

from __future__ import annotations

import pytest

from convergence.tcpcl import (
    ContactFlags,
    ContactHeader,
    ExtensionFlags,
    ExtensionItem,
    Keepalive,
    LocalProtocolError,
    MessageRejected,
    MessageType,
    MsgReject,
    MsgRejectReason,
    SegmentFlags,
    SessInit,
    Session,
    SessionClosed,
    SessionConfig,
    SessionEstablished,
    SessionState,
    SessionTerminating,
    SessTerm,
    SessTermFlags,
    SessTermReason,
    StartTls,
    TlsPolicy,
    TransferCompleted,
    TransferReceived,
    XferAck,
    XferSegment,
    encode_contact_header,
    encode_message,
)
from convergence.tcpcl.state import TRANSITIONS, SessionInput

from .tcpcl_pair import established_pair, raw_session

CRITICAL = ExtensionFlags.CRITICAL


def closed(events: list[object]) -> SessionClosed:
    found = [e for e in events if isinstance(e, SessionClosed)]
    assert len(found) == 1, events
    assert events[-1] is found[0], "SessionClosed must be the last event"
    return found[0]


# -- establishment ------------------------------------------------------------------------


def test_establishment_negotiates_parameters() -> None:
    pair = established_pair(
        SessionConfig(node_id="dtn://client/", keepalive_interval=10, segment_mru=5000),
        SessionConfig(
            node_id="ipn:2.0", keepalive_interval=20, segment_mru=700, max_segment_size=600
        ),
    )
    assert pair.client.state is pair.server.state is SessionState.ESTABLISHED
    (client_est,) = pair.of_type(pair.client, SessionEstablished)
    (server_est,) = pair.of_type(pair.server, SessionEstablished)
    client_params = client_est.parameters  # type: ignore[attr-defined]
    server_params = server_est.parameters  # type: ignore[attr-defined]
    assert client_params == pair.client.parameters
    assert client_params.keepalive_interval == server_params.keepalive_interval == 10
    assert client_params.peer_node_id == "ipn:2.0"
    assert server_params.peer_node_id == "dtn://client/"
    assert client_params.segment_size == 700  # the peer's MRU
    assert server_params.segment_size == 600  # our own cap below the peer's 5000
    assert not client_params.tls and not server_params.tls
    # Wire order (RFC 9174 §4.1, §4.6): active CH, passive CH, active SESS_INIT, passive's.
    assert bytes(pair.sent[pair.client]).startswith(b"dtn!\x04\x00\x07")
    assert bytes(pair.sent[pair.server]).startswith(b"dtn!\x04\x00\x07")


@pytest.mark.parametrize(
    ("client_tls", "server_tls", "expect"),
    [
        (TlsPolicy.DISABLED, TlsPolicy.DISABLED, "plain"),
        (TlsPolicy.OPTIONAL, TlsPolicy.DISABLED, "plain"),
        (TlsPolicy.DISABLED, TlsPolicy.OPTIONAL, "plain"),
        (TlsPolicy.OPTIONAL, TlsPolicy.OPTIONAL, "tls"),
        (TlsPolicy.REQUIRED, TlsPolicy.OPTIONAL, "tls"),
        (TlsPolicy.OPTIONAL, TlsPolicy.REQUIRED, "tls"),
        (TlsPolicy.REQUIRED, TlsPolicy.DISABLED, "client refuses"),
        (TlsPolicy.DISABLED, TlsPolicy.REQUIRED, "server refuses"),
    ],
)
def test_tls_negotiation(client_tls: TlsPolicy, server_tls: TlsPolicy, expect: str) -> None:
    pair = established_pair(SessionConfig(tls=client_tls), SessionConfig(tls=server_tls))
    starts = [len(pair.of_type(s, StartTls)) for s in (pair.client, pair.server)]
    if expect in ("plain", "tls"):
        assert pair.client.state is pair.server.state is SessionState.ESTABLISHED
        assert pair.client.parameters is not None
        assert pair.client.parameters.tls == (expect == "tls")
        assert starts == ([1, 1] if expect == "tls" else [0, 0])
        return
    # RFC 9174 §4.3: "If the Enable TLS state is unacceptable, the entity SHALL terminate the
    # session with a reason code of "Contact Failure"."
    refuser, other = (
        (pair.client, pair.server) if expect == "client refuses" else (pair.server, pair.client)
    )
    assert starts == [0, 0]
    assert refuser.state is other.state is SessionState.CLOSED
    assert closed(pair.events[refuser]).reason is SessTermReason.CONTACT_FAILURE
    assert closed(pair.events[other]).reason is SessTermReason.CONTACT_FAILURE
    assert not pair.of_type(refuser, SessionEstablished)


def test_tls_wait_rejects_plain_input_and_misplaced_calls() -> None:
    session = Session(SessionConfig(tls=TlsPolicy.OPTIONAL), active=True, now=0)
    with pytest.raises(LocalProtocolError, match="TLS_DONE in state CONTACT_WAIT"):
        session.tls_established(0)
    session.receive_data(encode_contact_header(ContactHeader(flags=ContactFlags.CAN_TLS)), 0)
    assert session.events() == [StartTls()]
    assert session.state is SessionState.TLS_WAIT
    with pytest.raises(LocalProtocolError, match="during the TLS handshake"):
        session.receive_data(b"\x16\x03\x01", 0)
    with pytest.raises(LocalProtocolError, match="cannot start a transfer"):
        session.send_transfer(b"x")
    session.data_to_send(0)  # our contact header
    session.tls_established(0)
    assert session.state is SessionState.SESS_INIT_WAIT
    assert bytes(session.data_to_send(0))[:1] == bytes([MessageType.SESS_INIT])


def test_plain_text_after_contact_header_when_tls_agreed_closes() -> None:
    peer = raw_session(SessionConfig(tls=TlsPolicy.OPTIONAL))
    out = peer.send(
        encode_contact_header(ContactHeader(flags=ContactFlags.CAN_TLS))
        + encode_message(SessInit(0, 1, 1))
    )
    assert out == [ContactHeader(flags=ContactFlags.CAN_TLS)]
    result = closed(peer.events)
    assert not result.clean and result.reason is None
    assert result.error is not None and "TLS was agreed" in result.error


@pytest.mark.parametrize("active", [False, True])
def test_bad_magic_closes_without_sess_term(active: bool) -> None:
    peer = raw_session(active=active)
    out = peer.drain() + peer.send(b"GET / HTTP/1.1\r\n\r\n")
    # RFC 9174 §6.1: "If reception of the Contact Header itself somehow fails (e.g., an invalid
    # "magic string" is received), an entity SHALL close the TCP connection without sending a
    # SESS_TERM message." The passive entity never even sent its header.
    assert out == ([ContactHeader()] if active else [])
    assert peer.session.state is SessionState.CLOSED
    result = closed(peer.events)
    assert result.reason is None and result.error is not None and "magic" in result.error


@pytest.mark.parametrize("version", [3, 1, 5, 255])
def test_passive_entity_answers_other_versions_with_version_mismatch(version: int) -> None:
    peer = raw_session(active=False)
    # A TCPCLv3 contact header continues with keepalive, an SDNV EID length and the EID.
    out = peer.send(b"dtn!" + bytes([version, 0]) + b"\x00\x1e\x06dtn:v3")
    # RFC 9174 §4.3: "the entity SHALL send its Contact Header and immediately terminate the
    # session with a reason code of "Version mismatch"."
    assert out == [ContactHeader(), SessTerm(SessTermReason.VERSION_MISMATCH)]
    assert peer.session.state is SessionState.CLOSED
    assert closed(peer.events).reason is SessTermReason.VERSION_MISMATCH


@pytest.mark.parametrize("version", [3, 5])
def test_active_entity_closes_on_other_version(version: int) -> None:
    peer = raw_session(active=True)
    out = peer.drain() + peer.send(b"dtn!" + bytes([version, 0]) + b"\x00\x1e\x00")
    # RFC 9174 §4.3: "If the active entity receives a Contact Header with a lower protocol
    # version than the one sent earlier on the TCP connection, the TCP connection SHALL be
    # closed."
    assert out == [ContactHeader()]
    result = closed(peer.events)
    assert result.reason is None and not result.clean


def test_unknown_critical_session_extension_ends_with_contact_failure() -> None:
    pair = established_pair(
        SessionConfig(session_extensions=(ExtensionItem(0x8001, b"x", CRITICAL),)),
        SessionConfig(),
    )
    # The passive side answers SESS_INIT first (RFC 9174 Figure 9), then refuses.
    assert pair.of_type(pair.client, SessionEstablished)
    assert not pair.of_type(pair.server, SessionEstablished)
    server_end = closed(pair.events[pair.server])
    assert server_end.reason is SessTermReason.CONTACT_FAILURE
    assert server_end.error is not None
    assert "unknown critical session extension item type 0x8001" in server_end.error
    assert server_end.clean  # the SESS_TERM exchange itself completed
    assert closed(pair.events[pair.client]).reason is SessTermReason.CONTACT_FAILURE
    (terminating,) = pair.of_type(pair.client, SessionTerminating)
    assert terminating == SessionTerminating(SessTermReason.CONTACT_FAILURE, by_peer=True)


@pytest.mark.parametrize(
    ("item", "known"),
    [
        (ExtensionItem(0x8001, b"x"), frozenset()),  # not critical: skipped
        (ExtensionItem(0x8001, b"x", CRITICAL), frozenset({0x8001})),  # critical but known
    ],
)
def test_acceptable_session_extensions(item: ExtensionItem, known: frozenset[int]) -> None:
    pair = established_pair(
        SessionConfig(session_extensions=(item,)),
        SessionConfig(known_session_extensions=known),
    )
    assert pair.server.state is SessionState.ESTABLISHED
    assert pair.server.parameters is not None
    assert pair.server.parameters.peer_extensions == (item,)


@pytest.mark.parametrize(
    ("sess_init", "match"),
    [
        (SessInit(30, 0, 100, "dtn://x/"), "peer segment MRU 0 is below our minimum 1"),
        (SessInit(30, 10, 100, "not a uri"), "is not a URI"),
        (SessInit(30, 10, 100, "dtn://x/", (ExtensionItem(7, b"", CRITICAL),)), "0x0007"),
    ],
)
def test_unacceptable_sess_init_is_refused(sess_init: SessInit, match: str) -> None:
    peer = raw_session(active=False)
    out = peer.establish(sess_init)
    assert out[-1] == SessTerm(SessTermReason.CONTACT_FAILURE)
    assert isinstance(out[-2], SessInit)
    assert peer.session.state is SessionState.ENDING
    peer.send_message(SessTerm(SessTermReason.CONTACT_FAILURE, SessTermFlags.REPLY))
    result = closed(peer.events)
    assert result.error is not None and match in result.error
    assert result.reason is SessTermReason.CONTACT_FAILURE


def test_empty_node_id_is_accepted() -> None:
    peer = raw_session()
    peer.establish(SessInit(30, 10, 100, ""))
    assert peer.session.parameters is not None
    assert peer.session.parameters.peer_node_id == ""


def test_messages_before_sess_init_are_unexpected() -> None:
    peer = raw_session(active=True)
    peer.drain()
    peer.send(encode_contact_header(ContactHeader()))
    out = peer.send_message(Keepalive(), XferAck(SegmentFlags.END, 0, 0))
    assert out == [
        MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, MessageType.KEEPALIVE),
        MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, MessageType.XFER_ACK),
    ]
    peer.send_message(SessInit(30, 10, 100))
    assert peer.session.state is SessionState.ESTABLISHED


def test_sess_init_after_establishment_is_unexpected() -> None:
    peer = raw_session()
    peer.establish()
    out = peer.send_message(SessInit(30, 10, 100))
    assert out == [MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, MessageType.SESS_INIT)]
    assert peer.session.state is SessionState.ESTABLISHED


def test_peer_refuses_session_before_sess_init() -> None:
    peer = raw_session(active=False)
    out = peer.send(
        encode_contact_header(ContactHeader()) + encode_message(SessTerm(SessTermReason.BUSY))
    )
    assert out == [ContactHeader(), SessTerm(SessTermReason.BUSY, SessTermFlags.REPLY)]
    result = closed(peer.events)
    assert result.clean and result.reason is SessTermReason.BUSY


# -- peers that break the protocol --------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"\x00", b"\x08", b"\xee\xff", b"\xf0"])
def test_garbage_after_a_valid_message_is_rejected_and_closes(garbage: bytes) -> None:
    peer = raw_session()
    peer.establish()
    segment = XferSegment(SegmentFlags.START | SegmentFlags.END, 0, b"bundle")
    out = peer.send(encode_message(segment) + garbage)
    # The valid message is fully handled first, then (RFC 9174 §5.1.2) "the entity SHALL send
    # a MSG_REJECT message with a Reason Code of "Message Type Unknown" and close the TCP
    # connection" - no SESS_TERM: "not even a clean termination can be done" (§9.5).
    assert out == [
        XferAck(SegmentFlags.START | SegmentFlags.END, 0, 6),
        MsgReject(MsgRejectReason.MESSAGE_TYPE_UNKNOWN, garbage[0]),
    ]
    assert [type(e) for e in peer.events[-2:]] == [TransferReceived, SessionClosed]
    result = closed(peer.events)
    assert not result.clean and result.reason is None
    assert peer.session.state is SessionState.CLOSED
    assert peer.send(encode_message(Keepalive())) == []  # input after closing is ignored


def test_malformed_transfer_extensions_reject_and_close() -> None:
    peer = raw_session()
    peer.establish()
    wire = bytearray(
        encode_message(XferSegment(SegmentFlags.START, 0, b"", (ExtensionItem(9, b"ab"),)))
    )
    wire[17:19] = (200).to_bytes(2, "big")  # item length beyond the list
    out = peer.send(bytes(wire))
    assert out == [MsgReject(MsgRejectReason.MESSAGE_UNSUPPORTED, MessageType.XFER_SEGMENT)]
    assert peer.session.state is SessionState.CLOSED


def test_peer_msg_reject_is_reported() -> None:
    peer = raw_session()
    peer.establish()
    peer.send_message(MsgReject(MsgRejectReason.MESSAGE_UNSUPPORTED, 0x01))
    assert peer.events[-1] == MessageRejected(MsgRejectReason.MESSAGE_UNSUPPORTED, 0x01)
    peer.send_message(MsgReject(0x99, 0xF3))
    assert peer.events[-1] == MessageRejected(0x99, 0xF3)
    assert peer.session.state is SessionState.ESTABLISHED


# -- termination --------------------------------------------------------------------------


def test_clean_close() -> None:
    pair = established_pair()
    pair.client.close(SessTermReason.BUSY)
    pair.client.close()  # a second call does nothing
    pair.pump()
    assert pair.events[pair.client][-2:] == [
        SessionTerminating(SessTermReason.BUSY, by_peer=False),
        SessionClosed(clean=True, reason=SessTermReason.BUSY),
    ]
    assert pair.events[pair.server][-2:] == [
        SessionTerminating(SessTermReason.BUSY, by_peer=True),
        SessionClosed(clean=True, reason=SessTermReason.BUSY),
    ]
    assert pair.client.next_deadline() is None
    pair.client.close()
    pair.client.abort()
    assert pair.client.events() == []


@pytest.mark.parametrize("reason", [*SessTermReason, 0x77])
def test_sess_term_is_answered_with_identical_reply(reason: int) -> None:
    peer = raw_session()
    peer.establish()
    out = peer.send_message(SessTerm(reason))
    # RFC 9174 §6.1: the reply has "identical data content from the message being
    # acknowledged except for the REPLY flag".
    assert out == [SessTerm(reason, SessTermFlags.REPLY)]
    result = closed(peer.events)
    assert result.clean and result.reason == reason
    assert peer.session.state is SessionState.CLOSED


def test_simultaneous_sess_term() -> None:
    pair = established_pair()
    pair.client.close(SessTermReason.IDLE_TIMEOUT)
    pair.server.close(SessTermReason.BUSY)
    pair.pump()
    for session, reason in ((pair.client, 1), (pair.server, 3)):
        assert closed(pair.events[session]) == SessionClosed(clean=True, reason=reason)
        # Each side initiated and none replied: each counts the other's as the reply.
        tail = bytes(pair.sent[session]).rsplit(bytes([MessageType.SESS_TERM]), 1)[1]
        assert tail == bytes([0, reason])


def test_second_sess_term_is_unexpected() -> None:
    peer = raw_session()
    peer.establish()
    peer.session.send_transfer(b"x" * 10)
    assert isinstance(peer.drain()[0], XferSegment)
    peer.send_message(SessTerm(SessTermReason.UNKNOWN))  # the unacked transfer keeps it Ending
    assert peer.session.state is SessionState.ENDING
    out = peer.send_message(SessTerm(SessTermReason.UNKNOWN))
    assert out == [MsgReject(MsgRejectReason.MESSAGE_UNEXPECTED, MessageType.SESS_TERM)]


def test_transfers_in_progress_finish_after_sess_term() -> None:
    pair = established_pair(SessionConfig(), SessionConfig(segment_mru=100))
    tid = pair.client.send_transfer(bytes(1000))
    pair.transmit(pair.client, limit=250)  # two segments are out
    pair.server.close()
    pair.pump()
    assert TransferCompleted(tid, 1000) in pair.events[pair.client]
    assert closed(pair.events[pair.client]).clean
    assert closed(pair.events[pair.server]).clean


def test_queued_transfers_do_not_start_after_sess_term() -> None:
    pair = established_pair()
    first = pair.client.send_transfer(b"a" * 10)
    second = pair.client.send_transfer(b"b" * 10)
    pair.client.close()
    with pytest.raises(LocalProtocolError, match="cannot start a transfer in state ENDING"):
        pair.client.send_transfer(b"c")
    pair.pump()
    result = closed(pair.events[pair.client])
    assert result.clean and result.unacknowledged == (first, second)
    assert not pair.of_type(pair.server, TransferReceived)


def test_close_before_negotiation() -> None:
    passive = Session(SessionConfig(), active=False, now=0)
    passive.close()
    assert passive.data_to_send(0) == b""
    assert closed(passive.events()).reason is None
    active = Session(SessionConfig(), active=True, now=0)
    active.close(SessTermReason.BUSY)
    # RFC 9174 §6.1: "The earliest a TCPCL session termination MAY occur is immediately after
    # transmission of a Contact Header".
    assert bytes(active.data_to_send(0)) == b"dtn!\x04\x00\x05\x00\x03"


def test_close_while_waiting_for_sess_init() -> None:
    peer = raw_session(active=False)
    peer.send(encode_contact_header(ContactHeader()))
    peer.session.close(SessTermReason.BUSY)
    assert peer.drain() == [SessTerm(SessTermReason.BUSY)]
    peer.send_message(SessInit(30, 10, 10))  # crossed our SESS_TERM: ignored
    peer.send_message(SessTerm(SessTermReason.BUSY, SessTermFlags.REPLY))
    assert closed(peer.events).clean


def test_abort_mid_segment_sends_nothing_more() -> None:
    pair = established_pair()
    tid = pair.client.send_transfer(bytes(100_000))
    part = pair.client.data_to_send(pair.now, 1000)
    assert len(part) == 1000
    pair.client.abort(SessTermReason.RESOURCE_EXHAUSTION)
    # RFC 9174 §6.1: "If a session is to be terminated before a protocol message has
    # completed being sent, then the entity MUST NOT transmit the SESS_TERM message".
    assert pair.client.data_to_send(pair.now) == b""
    result = closed(pair.client.events())
    assert not result.clean and result.unacknowledged == (tid,) and result.reason is None


def test_abort_at_message_boundary_sends_sess_term() -> None:
    pair = established_pair()
    pair.client.abort(SessTermReason.RESOURCE_EXHAUSTION)
    assert bytes(pair.client.data_to_send(pair.now)) == b"\x05\x00\x05"
    assert closed(pair.client.events()).reason is SessTermReason.RESOURCE_EXHAUSTION


def test_state_table_has_no_dead_ends() -> None:
    reachable = {SessionState.CONTACT_WAIT}
    frontier = [SessionState.CONTACT_WAIT]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(SessionState)
    for state, row in TRANSITIONS.items():
        if state is not SessionState.CLOSED:
            assert row[SessionInput.FAIL] is SessionState.CLOSED
