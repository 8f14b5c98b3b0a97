"""The sans-IO TCPCLv4 session (RFC 9174): bytes and time in, events and bytes out.

A :class:`Session` owns no socket, task or clock. The caller (e.g. the trio adapter):

* feeds received bytes with :meth:`Session.receive_data` and end-of-stream with
  :meth:`Session.connection_closed`;
* writes out what :meth:`Session.data_to_send` returns, in order, until it returns ``b""``;
* calls :meth:`Session.handle_timer` once :meth:`Session.next_deadline` has passed;
* reads :meth:`Session.events` after each of those calls;
* on :class:`StartTls` runs the TLS handshake and calls :meth:`Session.tls_established`;
* on :class:`SessionClosed` writes out the remaining data and closes the connection.

States and transitions are described in :mod:`convergence.tcpcl.state`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .codes import (
    ContactFlags,
    MessageType,
    MsgRejectReason,
    SessTermFlags,
    SessTermReason,
    XferRefuseReason,
)
from .config import SessionConfig, TlsPolicy
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    Event,
    MessageRejected,
    SessionClosed,
    SessionEstablished,
    SessionTerminating,
    StartTls,
)
from .incoming import TransferReceiver
from .messages import (
    ContactHeader,
    ExtensionItem,
    Keepalive,
    Message,
    MsgReject,
    SessInit,
    SessTerm,
    XferAck,
    XferRefuse,
    XferSegment,
    encode_contact_header,
    encode_message,
)
from .negotiation import SessionParameters, negotiate_contact, negotiate_session
from .outgoing import TransferSender
from .reader import MessageReader
from .state import SessionInput, SessionState, StateMachine

__all__ = ["Session", "SessionStatistics"]

logger = logging.getLogger(__name__)

_MAX_TRANSFER_ID = 0xFFFF_FFFF_FFFF_FFFF
_KEEPALIVE = encode_message(Keepalive())
#: Pieces of output at least this long are handed out as zero-copy views, alone; shorter
#: ones are gathered into one ``bytes`` so small messages cost one write together.
_GATHER_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """Counters of one session, for logs, metrics and benchmarks."""

    state: SessionState
    """Where the session is now (RFC 9174 §3: contact header, SESS_INIT, up, ending)."""
    bytes_sent: int
    """Octets handed out by ``data_to_send``."""
    bytes_received: int
    """Octets fed to ``receive_data``."""
    segments_sent: int
    """XFER_SEGMENT messages produced."""
    segments_received: int
    """XFER_SEGMENT messages received."""
    transfers_completed: int
    """Our transfers acknowledged in full."""
    transfers_received: int
    """The peer's transfers received in full (END segment, not refused)."""
    transfers_refused_by_peer: int
    """Our transfers the peer refused."""
    transfers_refused_by_us: int
    """The peer's transfers we refused."""
    keepalives_sent: int
    """KEEPALIVE messages queued."""
    pending_transfers: int
    """Our transfers queued or not yet acknowledged."""
    in_flight: int = 0
    """Our octets sent in segments and not yet acknowledged."""
    send_window: int | None = None
    """Most unacknowledged octets allowed now (``None``: no send window)."""
    ack_rate: float | None = None
    """Measured rate of the peer's acknowledgements, octets per second (``None``: not yet)."""
    bytes_acknowledged: int = 0
    """Octets of our transfers the peer acknowledged, in total."""


class Session:
    """One TCPCLv4 session, seen from one entity.

    :param config: local settings.
    :param active: ``True`` for the entity that opened the TCP connection; it sends its
        contact header at once.
    :param now: the current time in seconds (any monotonic clock); starts the establishment
        timeout.
    """

    def __init__(self, config: SessionConfig, *, active: bool, now: float) -> None:
        self.config = config
        self.active = active
        self._machine = StateMachine()
        self._reader = MessageReader(contact_header=True, max_segment_length=config.segment_mru)
        self._events: list[Event] = []
        self._now = now
        # Output: complete control messages, and the rest of a partly written XFER_SEGMENT.
        # Invariant: ``_current`` is non-empty only while a segment is partly handed out.
        self._control = bytearray()
        self._current: deque[bytes | memoryview] = deque()
        # Handshake.
        flags = ContactFlags(0) if config.tls is TlsPolicy.DISABLED else ContactFlags.CAN_TLS
        self._our_contact = ContactHeader(flags=flags)
        self._our_init = SessInit(
            config.keepalive_interval,
            config.segment_mru,
            config.transfer_mru,
            config.node_id,
            config.session_extensions,
        )
        self._contact_sent = False
        self._tls = False
        self._params: SessionParameters | None = None
        # Termination.
        self._term_sent = False
        self._term_received = False
        self._term_reason: SessTermReason | int | None = None
        self._error: str | None = None
        # Transfers: both share our control buffer and event list.
        self._sender = TransferSender(
            config.first_transfer_id,
            self._events,
            window_min=config.send_window_min,
            window_delay=config.send_window_delay,
        )
        self._receiver = TransferReceiver(config, self._control, self._events)
        # Timers.
        self._establish_deadline = now + config.establishment_timeout
        self._last_sent = now
        self._last_received = now
        self._last_activity = now
        # Statistics.
        self._bytes_sent = 0
        self._bytes_received = 0
        self._segments_sent = 0
        self._keepalives_sent = 0
        if active:
            # RFC 9174 §4.1: "Once a TCP connection is established, the active entity SHALL
            # immediately transmit its Contact Header."
            self._send_contact()

    # == inspection ========================================================================

    @property
    def state(self) -> SessionState:
        """The current :class:`SessionState`."""
        return self._machine.state

    @property
    def parameters(self) -> SessionParameters | None:
        """The negotiated parameters, once the session is established."""
        return self._params

    @property
    def buffered(self) -> int:
        """Received octets not yet decoded into a message (part of the next one)."""
        return self._reader.buffered

    def receive_need(self) -> int:
        """How many more octets the partly received message needs (see
        :meth:`MessageReader.needed`)."""
        return self._reader.needed()

    @property
    def idle(self) -> bool:
        """No transfer in progress or queued in either direction (RFC 9174 §3.1)."""
        return not (self._sender.has_queued or self._receiver.busy)

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's counters."""
        sender, receiver = self._sender, self._receiver
        return SessionStatistics(
            state=self.state,
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            segments_sent=self._segments_sent,
            segments_received=receiver.segments,
            transfers_completed=sender.completed,
            transfers_received=receiver.transfers,
            transfers_refused_by_peer=sender.refused,
            transfers_refused_by_us=receiver.refused,
            keepalives_sent=self._keepalives_sent,
            pending_transfers=len(sender.unacknowledged()),
            in_flight=sender.in_flight,
            send_window=sender.window(),
            ack_rate=sender.ack_rate.rate,
            bytes_acknowledged=sender.ack_rate.acked,
        )

    def outgoing_progress(self) -> list[tuple[int, int, int]]:
        """``(transfer ID, octets acknowledged, length)`` of each of our transfers that started
        and has not finished."""
        return self._sender.progress()

    def events(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        events = self._events.copy()
        self._events.clear()
        return events

    # == input =============================================================================

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed octets received from the peer (after TLS decryption, when TLS is used)."""
        self._now = now
        state = self.state
        if state is SessionState.CLOSED:
            return
        if state is SessionState.TLS_WAIT:
            raise LocalProtocolError("receive_data() during the TLS handshake")
        if data:
            self._bytes_received += len(data)
            self._last_received = now
            self._reader.feed(data)
        try:
            while self.state not in (SessionState.CLOSED, SessionState.TLS_WAIT):
                message = self._reader.next_message()
                if message is None:
                    break
                self._dispatch(message)
        except RemoteProtocolError as exc:
            self._fail(
                exc.description,
                term_reason=exc.term_reason,
                reject_reason=exc.reject_reason,
                message_type=exc.message_type,
            )

    def connection_closed(self, now: float) -> None:
        """The connection ended (EOF, reset, TLS failure). The session closes; nothing more
        can be sent."""
        self._now = now
        if self.state is SessionState.CLOSED:
            return
        self._control.clear()
        self._current.clear()
        self._fail("connection closed before the session terminated")

    def tls_established(self, now: float) -> None:
        """The TLS handshake that :class:`StartTls` asked for succeeded.

        :raises LocalProtocolError: not in state ``TLS_WAIT`` (or ``CLOSED``, where it is
            ignored).
        """
        self._now = now
        if self.state is SessionState.CLOSED:
            return
        self._machine.process(SessionInput.TLS_DONE)
        self._enter_sess_init()

    def handle_timer(self, now: float) -> None:
        """Act on every deadline up to ``now`` (see :meth:`next_deadline`)."""
        self._now = now
        state = self.state
        if state is SessionState.CLOSED:
            return
        params = self._params
        if params is None:
            if now < self._establish_deadline:
                return
            if state is SessionState.SESS_INIT_WAIT:
                # RFC 9174 §3.3, Figures 8 and 9: waiting for SESS_INIT, "Timeout" leads to
                # session termination [ST].
                self._fail(
                    "no SESS_INIT before the timeout", term_reason=SessTermReason.IDLE_TIMEOUT
                )
            else:
                # RFC 9174 §4.1: "If the passive entity does not receive a Contact Header
                # after some implementation-defined time duration after TCP connection is
                # established, the entity SHALL close the TCP connection."
                self._fail(f"session not established before the timeout (in {state.name})")
            return
        keepalive = params.keepalive_interval
        if keepalive and now >= self._last_received + 2 * keepalive:
            # RFC 9174 §5.1.1: "If no message (KEEPALIVE or other) has been received in a
            # session after some implementation-defined time duration, then the entity SHALL
            # terminate the session by transmitting a SESS_TERM message [...] with reason
            # code "Idle Timeout". [...] If not configurable, the idle timeout duration
            # SHOULD be exactly twice the keepalive interval."
            self._fail(
                f"nothing received for {2 * keepalive} s",
                term_reason=SessTermReason.IDLE_TIMEOUT,
            )
            return
        idle_limit = self.config.idle_session_timeout
        if (
            idle_limit is not None
            and state is SessionState.ESTABLISHED
            and now >= self._last_activity + idle_limit
        ):
            # RFC 9174 §6.2: "if no TCPCL messages (other than KEEPALIVE messages) has been
            # received for at least that amount of time, then either entity MAY terminate the
            # session by transmitting a SESS_TERM message indicating the reason code of "Idle
            # timeout"".
            self._initiate_termination(SessTermReason.IDLE_TIMEOUT)
        if keepalive and now >= self._last_sent + keepalive:
            # RFC 9174 §5.1.1: "Both sides SHALL send a KEEPALIVE message whenever the
            # negotiated interval has elapsed with no transmission of any message (KEEPALIVE
            # or other)." Output still waiting to be written counts as transmission.
            busy = (
                self._control
                or self._current
                or self._sender.ready(may_start=self.state is SessionState.ESTABLISHED)
            )
            if not busy and self.state is not SessionState.CLOSED:
                self._control += _KEEPALIVE
                self._keepalives_sent += 1
            self._last_sent = now

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or ``None`` for never."""
        state = self.state
        if state is SessionState.CLOSED:
            return None
        params = self._params
        if params is None:
            return self._establish_deadline
        deadlines: list[float] = []
        if params.keepalive_interval:
            deadlines.append(self._last_sent + params.keepalive_interval)
            deadlines.append(self._last_received + 2 * params.keepalive_interval)
        idle_limit = self.config.idle_session_timeout
        if idle_limit is not None and state is SessionState.ESTABLISHED:
            deadlines.append(self._last_activity + idle_limit)
        return min(deadlines, default=None)

    # == output ============================================================================

    def data_to_send(self, now: float, max_bytes: int | None = None) -> bytes | memoryview:
        """The next octets to write to the connection, at most ``max_bytes``; ``b""`` when
        there is nothing to write.

        Call repeatedly until it returns ``b""``. Segments of our transfers are produced
        lazily, one at a time, so acknowledgements and refusals are not stuck behind a whole
        bundle, and a refused transfer stops at once. A large segment payload is returned as
        a ``memoryview`` of the buffer given to :meth:`send_transfer`, without copying.
        """
        self._now = now
        limit = max_bytes if max_bytes is not None else 1 << 62
        if limit < 1:
            raise LocalProtocolError("max_bytes must be at least 1")
        out = bytearray()
        current = self._current
        while len(out) < limit:
            if current:
                piece = current[0]
                room = limit - len(out)
                if len(piece) >= _GATHER_LIMIT and room >= _GATHER_LIMIT:
                    if out:
                        break  # hand out what was gathered first
                    chunk = piece[:room] if len(piece) > room else piece
                    self._advance_current(len(chunk))
                    self._count_sent(now, len(chunk))
                    return chunk
                out += piece[:room]
                self._advance_current(min(room, len(piece)))
            elif self._control:
                room = limit - len(out)
                out += self._control[:room]
                del self._control[:room]
            elif not self._next_segment():
                break
        if out:
            self._count_sent(now, len(out))
            return bytes(out)
        return b""

    def _advance_current(self, n: int) -> None:
        piece = self._current[0]
        if n >= len(piece):
            self._current.popleft()
        else:
            self._current[0] = piece[n:]

    def _count_sent(self, now: float, n: int) -> None:
        self._bytes_sent += n
        self._last_sent = now

    def _next_segment(self) -> bool:
        """Cut the next segment of our current transfer into ``_current``."""
        state = self.state
        params = self._params
        if params is None or state not in (SessionState.ESTABLISHED, SessionState.ENDING):
            return False
        if not self._sender.next_segment(
            self._current,
            segment_size=params.segment_size,
            may_start=state is SessionState.ESTABLISHED,
            now=self._now,
        ):
            return False
        self._segments_sent += 1
        return True

    # == user actions ======================================================================

    def send_transfer(
        self, data: bytes | bytearray | memoryview, *, extensions: Iterable[ExtensionItem] = ()
    ) -> int:
        """Queue a bundle for transfer; return its Transfer ID.

        ``data`` is not copied: do not modify it until the transfer completes. A Transfer
        Length item is added when the bundle needs more than one segment (unless disabled
        in the config or present in ``extensions``).

        :raises LocalProtocolError: the session is not established (or is ending), or the
            bundle exceeds the peer's Transfer MRU.
        """
        params = self._params
        if self.state is not SessionState.ESTABLISHED or params is None:
            raise LocalProtocolError(f"cannot start a transfer in state {self.state.name}")
        view = memoryview(data).cast("B")
        length = len(view)
        # RFC 9174 §4.6: "Any bundle transfer sent to this peer SHALL have a Total Bundle
        # Length payload no longer than the peer's Transfer MRU."
        if length > params.peer_transfer_mru:
            raise LocalProtocolError(
                f"bundle of {length} octets exceeds the peer's transfer MRU "
                f"{params.peer_transfer_mru}"
            )
        if length and not params.segment_size:
            raise LocalProtocolError("the peer's segment MRU is zero: it accepts no data")
        if self._sender.next_id > _MAX_TRANSFER_ID:
            # RFC 9174 §5.2.1: "Upon exhaustion of the entire 64-bit Transfer ID space, the
            # sending entity SHALL terminate the session with SESS_TERM reason code "Resource
            # Exhaustion"."
            self._initiate_termination(SessTermReason.RESOURCE_EXHAUSTION)
            raise LocalProtocolError("Transfer ID space exhausted; the session is ending")
        return self._sender.queue(
            view,
            tuple(extensions),
            segment_size=params.segment_size,
            add_transfer_length=self.config.send_transfer_length,
        )

    def ack_transfer(self, transfer_id: int) -> None:
        """Acknowledge every received, unacknowledged segment of an incoming transfer —
        including the final one once it has arrived (then the transfer is complete for the
        peer). Use with ``auto_ack_final=False`` after storing the bundle durably.

        Does nothing once the session is closed (the peer will send the bundle again).

        :raises LocalProtocolError: no such incoming transfer awaits acknowledgement.
        """
        if self.state is SessionState.CLOSED:
            return
        self._receiver.ack(transfer_id)
        self._check_ending_done()

    def ack_segments(self, transfer_id: int, length: int) -> None:
        """Acknowledge the received segments of an incoming transfer up to ``length`` octets
        (its cumulative length after the last one to acknowledge), but not its END segment:
        use with ``auto_ack_segments=False`` once a segment's data is safe with its consumer.
        RFC 9174 §5.2.3: "A receiving TCPCL entity SHALL send an XFER_ACK message in response
        to each received XFER_SEGMENT message after the segment has been fully processed."

        Does nothing once the session is closed, or for a transfer refused or resolved.
        """
        if self.state is SessionState.CLOSED:
            return
        self._receiver.ack_through(transfer_id, length)

    def refuse_transfer(
        self, transfer_id: int, reason: XferRefuseReason = XferRefuseReason.UNKNOWN
    ) -> None:
        """Refuse an incoming transfer (XFER_REFUSE); any data received is dropped.

        The XFER_REFUSE waits until every earlier incoming transfer is acknowledged in full
        (RFC 9174 §5.2.4).

        Does nothing once the session is closed.

        :raises LocalProtocolError: no such incoming transfer is in progress.
        """
        if self.state is SessionState.CLOSED:
            return
        self._receiver.refuse(transfer_id, reason)
        self._check_ending_done()

    def close(self, reason: SessTermReason = SessTermReason.UNKNOWN) -> None:
        """Begin a clean termination: send SESS_TERM, finish transfers in progress, accept
        no new ones. Before the contact headers are exchanged this closes at once."""
        state = self.state
        if state in (SessionState.ENDING, SessionState.CLOSED):
            return
        if state in (SessionState.CONTACT_WAIT, SessionState.TLS_WAIT):
            self._fail("closed by the local entity before negotiation", term_reason=reason)
            return
        self._initiate_termination(reason)

    def abort(self, reason: SessTermReason = SessTermReason.UNKNOWN) -> None:
        """End the session now, without waiting for transfers (RFC 9174 §6.1 "unclean
        termination"): SESS_TERM if a message boundary allows, then close."""
        self._fail("aborted by the local entity", term_reason=reason)

    # == message handling ==================================================================

    def _dispatch(self, message: ContactHeader | Message) -> None:
        state = self.state
        if isinstance(message, ContactHeader):
            self._on_contact(message)
            return
        if not isinstance(message, Keepalive):
            self._last_activity = self._now
        if isinstance(message, SessTerm):
            self._on_sess_term(message)
        elif isinstance(message, MsgReject):
            logger.info("peer rejected message type %d: %r", message.message_type, message.reason)
            self._events.append(MessageRejected(message.reason, message.message_type))
        elif state is SessionState.SESS_INIT_WAIT:
            if isinstance(message, SessInit):
                self._on_sess_init(message)
            else:
                self._reject(MsgRejectReason.MESSAGE_UNEXPECTED, message)
        elif isinstance(message, XferSegment):
            self._receiver.on_segment(message)
            self._check_ending_done()
        elif isinstance(message, XferAck):
            if not self._sender.on_ack(message, self._now):
                # RFC 9174 §5.1.2: "an XFER_ACK message with an unknown Transfer ID" is
                # answered with "Message Unexpected" (so is a length that makes no sense).
                self._reject(MsgRejectReason.MESSAGE_UNEXPECTED, message)
            self._check_ending_done()
        elif isinstance(message, XferRefuse):
            if not self._sender.on_refuse(message):
                self._reject(MsgRejectReason.MESSAGE_UNEXPECTED, message)
            self._check_ending_done()
        elif isinstance(message, SessInit) and self._params is not None:
            # RFC 9174 §5.1.2: "a SESS_INIT after the session has already been established"
            # is answered with "Message Unexpected". (Before, it crossed the SESS_TERM by
            # which we refused the session: nothing to say.)
            self._reject(MsgRejectReason.MESSAGE_UNEXPECTED, message)

    def _on_contact(self, theirs: ContactHeader) -> None:
        if not self.active:
            # RFC 9174 §4.1: "Upon reception of a Contact Header, the passive entity SHALL
            # transmit its Contact Header." (Also before a SESS_TERM, §6.1.)
            self._send_contact()
        try:
            tls = negotiate_contact(
                self._our_contact, theirs, active=self.active, policy=self.config.tls
            )
        except RemoteProtocolError as exc:
            self._fail(exc.description, term_reason=exc.term_reason)
            return
        if tls:
            self._tls = True
            self._machine.process(SessionInput.CONTACT_OK_TLS)
            if self._reader.buffered:
                # RFC 9174 §4.4.3: after negotiating TLS, "before any other TCPCL messages are
                # sent within the session, the session entities SHALL begin a TLS handshake".
                # The TLS client only speaks after our contact header, so nothing may follow
                # the peer's header in plain text.
                self._fail("plain-text data after the contact header although TLS was agreed")
                return
            self._events.append(StartTls())
        else:
            self._machine.process(SessionInput.CONTACT_OK)
            self._enter_sess_init()

    def _enter_sess_init(self) -> None:
        if self.active:
            # RFC 9174 §4.4.3: "the active entity SHALL send a SESS_INIT message to begin
            # session negotiation."
            self._queue(self._our_init)

    def _on_sess_init(self, theirs: SessInit) -> None:
        if not self.active:
            # RFC 9174 §3.3, Figure 9: the passive entity receives SESS_INIT, then sends its
            # own, then validates and negotiates.
            self._queue(self._our_init)
        try:
            params = negotiate_session(self.config, self._our_init, theirs, tls=self._tls)
        except RemoteProtocolError as exc:
            logger.info("session negotiation failed: %s", exc.description)
            self._error = exc.description
            self._initiate_termination(exc.term_reason or SessTermReason.CONTACT_FAILURE)
            return
        self._params = params
        self._last_received = self._last_activity = self._now
        self._machine.process(SessionInput.SESS_INIT_OK)
        logger.debug("session established with %r: %s", params.peer_node_id, params)
        self._events.append(SessionEstablished(params))

    def _on_sess_term(self, message: SessTerm) -> None:
        if self._term_received:
            self._reject(MsgRejectReason.MESSAGE_UNEXPECTED, message)
            return
        self._term_received = True
        if not self._term_sent:
            # RFC 9174 §6.1: "Upon receiving a SESS_TERM message after not sending a
            # SESS_TERM message in the same session, an entity SHALL send an acknowledging
            # SESS_TERM message. [...] identical data content from the message being
            # acknowledged except for the REPLY flag".
            self._queue(SessTerm(message.reason, SessTermFlags.REPLY))
            self._term_sent = True
            self._term_reason = message.reason
            self._receiver.ending = True
            self._machine.process(SessionInput.SESS_TERM_SENT)
            self._events.append(SessionTerminating(message.reason, by_peer=True))
        # else: both sides initiated at once; each takes the other's as the reply.
        self._check_ending_done()

    # == output helpers ====================================================================

    def _send_contact(self) -> None:
        self._control += encode_contact_header(self._our_contact)
        self._contact_sent = True

    def _queue(self, message: Message) -> None:
        self._control += encode_message(message)

    def _reject(self, reason: MsgRejectReason, message: Message) -> None:
        mtype = _MESSAGE_TYPES[type(message)]
        logger.info("rejecting %s: %s", mtype.name, reason.name)
        self._queue(MsgReject(reason, mtype))

    # == termination =======================================================================

    def _initiate_termination(self, reason: SessTermReason) -> None:
        if self._term_sent or self.state is SessionState.CLOSED:
            return
        # RFC 9174 §6.1: "When sent to initiate a termination, the REPLY flag of a SESS_TERM
        # message SHALL be 0." "Once a SESS_TERM message is sent the state of that TCPCL
        # session changes to Ending."
        self._queue(SessTerm(reason))
        self._term_sent = True
        self._term_reason = reason
        self._receiver.ending = True
        self._machine.process(SessionInput.SESS_TERM_SENT)
        self._events.append(SessionTerminating(reason, by_peer=False))
        self._check_ending_done()

    def _check_ending_done(self) -> None:
        if (
            self.state is SessionState.ENDING
            and self._term_received
            and not self._sender.busy
            and not self._receiver.busy
        ):
            self._machine.process(SessionInput.ENDING_DONE)
            logger.debug("session terminated cleanly (%r)", self._term_reason)
            self._events.append(
                SessionClosed(
                    clean=True,
                    reason=self._term_reason,
                    unacknowledged=self._unacknowledged(),
                    error=self._error,
                )
            )

    def _fail(
        self,
        description: str,
        *,
        term_reason: SessTermReason | None = None,
        reject_reason: MsgRejectReason | None = None,
        message_type: int | None = None,
    ) -> None:
        """End the session at once, queueing what may still be sent."""
        if self.state is SessionState.CLOSED:
            return
        logger.info("session failed: %s", description)
        if self._current:
            # RFC 9174 §6.1: "If a session is to be terminated before a protocol message has
            # completed being sent, then the entity MUST NOT transmit the SESS_TERM message
            # but still SHALL close the TCP connection."
            self._current.clear()
            self._control.clear()
        elif self.state is not SessionState.TLS_WAIT:
            if reject_reason is not None and message_type is not None:
                self._queue(MsgReject(reject_reason, message_type))
            # RFC 9174 §6.1: "an entity MUST always send the Contact Header to its peer
            # before sending a SESS_TERM message."
            if term_reason is not None and self._contact_sent and not self._term_sent:
                self._queue(SessTerm(term_reason))
                self._term_sent = True
                self._term_reason = term_reason
        self._error = description
        self._receiver.abort_all()
        self._machine.process(SessionInput.FAIL)
        self._events.append(
            SessionClosed(
                clean=False,
                reason=self._term_reason,
                unacknowledged=self._unacknowledged(),
                error=description,
            )
        )

    def _unacknowledged(self) -> tuple[int, ...]:
        return self._sender.unacknowledged()


_MESSAGE_TYPES: dict[type, MessageType] = {
    SessInit: MessageType.SESS_INIT,
    XferSegment: MessageType.XFER_SEGMENT,
    XferAck: MessageType.XFER_ACK,
    XferRefuse: MessageType.XFER_REFUSE,
    Keepalive: MessageType.KEEPALIVE,
    SessTerm: MessageType.SESS_TERM,
    MsgReject: MessageType.MSG_REJECT,
}
