"""The trio adapter of TCPCLv4: a :class:`TcpclLink` runs one sans-IO
:class:`~convergence.tcpcl.session.Session` over a trio stream.

Theory of operation
===================

Establishment runs in the caller's task (:func:`~convergence.tcpcl.listener.open_link`, or
:class:`~convergence.tcpcl.listener.TcpclListener` per accepted connection): write what the
session has to send, read, feed, repeat until ``SessionEstablished``, all under the session's
establishment deadline; on ``StartTls``, the TLS handshake, and the peer's Node ID checked
against its certificate once SESS_INIT is exchanged (:mod:`convergence.tcpcl.link_establishment`).

Then three tasks share the session (no locks: trio switches tasks only at ``await``, and every
session call is synchronous):

* the **writer** is the only task writing to the stream. It takes ``data_to_send()`` in bounded
  pieces and ``send_all``\\ s them; with nothing to send it parks until another task's
  :meth:`~TcpclLink._kick` finds output waiting (and hands it over, in order). Before each
  write it lets the tasks that are ready run (a few rounds at most), and writes what they
  queued in the same system call. Segments of our transfers are cut lazily by the session, so
  acknowledgements for the peer are never stuck behind more than one segment.
* the **reader** feeds received bytes to the session, passes each segment's data to its
  transfer's sink (:mod:`convergence.tcpcl.sink`; in memory by default) and only then
  acknowledges the segment, and hands every complete incoming transfer to a bounded queue.
  While a sink writes, or the queue is full, or the node's receive budget is spent, it does
  not read: the TCP window closes and the peer's writer stalls (receive backpressure). Memory
  for incoming data is bounded per link (one segment and one read) and, with a shared
  :class:`~convergence.tcpcl.sink.ReceiveBudget`, for all links together
  (:mod:`convergence.tcpcl.link_incoming`).
* the **timer** sleeps until ``session.next_deadline()`` and calls ``handle_timer``
  (keepalives, idle timeout). Deadlines only move later once the session is established, so
  waking at a stale deadline is harmless.

User calls (``start_send``, ``accept``, ``refuse``, ``aclose``) act on the session at once
and kick the writer. Events are handled right after each session call by
:meth:`~TcpclLink._process_events`, whichever task made it.

The final XFER_ACK of an incoming transfer waits (``auto_ack_final=False``) until the consumer
stored the bundle durably (:meth:`IncomingBundleTransfer.accept`). When the session ends, every
transfer of ours that was not acknowledged in full or refused is reported
(:meth:`TcpclLink.unacknowledged`; :meth:`TransferHandle.wait` raises :class:`LinkClosedError`,
:attr:`TransferHandle.acknowledged` says how far it got) to be sent again, or only its
unacknowledged part, on another session.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import trio

from .codes import SessTermReason
from .errors import LocalProtocolError
from .events import (
    Event,
    IncomingTransfer,
    IncomingTransferAborted,
    MessageRejected,
    SegmentReceived,
    SessionClosed,
    SessionEstablished,
    SessionTerminating,
    StartTls,
    TransferCompleted,
    TransferProgress,
    TransferReceived,
    TransferRefused,
)
from .link_config import LinkConfig, TransferFilter
from .link_errors import (
    LinkClosedError,
    TlsError,
    TransferTooLargeError,
    describe_stream_error,
    reason_name,
)
from .link_establishment import establishment_error, node_id_authentication_error, start_tls
from .link_incoming import MAX_RECEIVE, IncomingTransfers
from .link_transfers import (
    DoneCallback,
    IncomingBundleTransfer,
    LinkStatistics,
    ProgressCallback,
    TransferHandle,
    TransferOutcome,
    TransferResult,
    TransferStatus,
    tcp_round_trip_time,
)
from .negotiation import SessionParameters
from .session import Session
from .state import SessionState

__all__ = [
    "DoneCallback",
    "IncomingBundleTransfer",
    "LinkConfig",
    "LinkStatistics",
    "ProgressCallback",
    "TcpclLink",
    "TransferFilter",
    "TransferHandle",
    "TransferOutcome",
    "TransferResult",
    "TransferStatus",
]

logger = logging.getLogger(__name__)

_MIB = 1024 * 1024
#: Largest piece handed to one ``send_all``: big enough for few system calls, small enough
#: that the session's notion of "last sent" (keepalives) stays close to the truth.
_WRITE_CHUNK = 4 * _MIB
#: ``receive_some`` sizes: grow while reads fill the buffer (bulk data), shrink when they
#: do not (small messages), so a big segment needs few reads and a small one no big buffer.
_MIN_RECEIVE = 64 * 1024
#: Most times the writer lets other ready tasks run before a write, so that it writes what
#: they send too (bounded: under a steady load something is always ready).
_GATHER_ROUNDS = 4
#: How long to wait for a last write (SESS_TERM, TLS close_notify) before giving up.
_FLUSH_TIMEOUT = 2.0


class TcpclLink:
    """One TCPCLv4 session over a trio stream; established by
    :func:`~convergence.tcpcl.listener.open_link`,
    :func:`~convergence.tcpcl.listener.open_stream_link` or
    :class:`~convergence.tcpcl.listener.TcpclListener`, not constructed directly.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        config: LinkConfig,
        *,
        active: bool,
        peer_address: tuple[str, int] = ("", 0),
        server_hostname: str | None = None,
    ) -> None:
        self.config = config
        self.active = active
        """Whether we opened the connection (the active entity)."""
        self.peer_address = peer_address
        """The peer's ``(host, port)`` (``("", 0)`` when not a socket)."""
        self._stream = stream
        # The TCP socket under the stream (TLS replaces ``_stream`` later), for TCP_INFO.
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._server_hostname = server_hostname
        self._policy = config.tls_policy(active=active)
        self._session = Session(
            config.session_config(active=active), active=active, now=trio.current_time()
        )
        self._params: SessionParameters | None = None
        self._tls_requested = False
        self._tls_started = False
        self._peer_cert: bytes | None = None
        self._stream_error: str | None = None
        self._auth_error: str | None = None
        self._linger = True  # close gracefully (the peer is responsive)
        self._terminating_by_peer: SessTermReason | int | None = None
        self._terminating = False
        self._handles: dict[int, TransferHandle] = {}
        self._unacknowledged: list[bytes] = []
        self._closed_info: SessionClosed | None = None
        self._closed = trio.Event()
        self._incoming = IncomingTransfers(
            self._session, config, self._closed, self._call, self._peer_text
        )
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._writer_idle = False  # parked with nothing to send
        self._outbox: deque[bytes | memoryview] = deque()  # taken from the session by _kick
        self._receive_size = _MIN_RECEIVE
        self._writer_done = trio.Event()
        self._finished = trio.Event()

    # == public ============================================================================

    @property
    def peer_node_id(self) -> str:
        """The peer's Node ID from its SESS_INIT (authenticated by its certificate under TLS;
        ``""`` if it did not disclose one)."""
        return self.parameters.peer_node_id

    @property
    def parameters(self) -> SessionParameters:
        """The negotiated session parameters."""
        if self._params is None:
            raise LocalProtocolError("the session is not established")
        return self._params

    @property
    def tls(self) -> bool:
        """Whether the session runs over TLS."""
        return self._tls_started

    @property
    def peer_certificate(self) -> bytes | None:
        """The peer's TLS certificate (DER), already validated against our trust anchors;
        ``None`` without TLS."""
        return self._peer_cert

    @property
    def closed(self) -> bool:
        """Whether the session has ended."""
        return self._closed.is_set()

    def start_send(self, data: bytes, progress: ProgressCallback | None = None) -> TransferHandle:
        """Queue a bundle; return at once. Transfers go out in call order.

        ``progress(acknowledged, total)`` is called as the peer acknowledges segments; it must
        not block.

        :raises LinkClosedError: the session is ending or over.
        :raises TransferTooLargeError: the bundle exceeds the peer's Transfer MRU.
        """
        session = self._session
        if session.state is not SessionState.ESTABLISHED:
            raise LinkClosedError(f"cannot send: the session is {session.state.value}")
        params = self.parameters
        if len(data) > params.peer_transfer_mru:
            raise TransferTooLargeError(
                f"bundle of {len(data)} octets exceeds the peer's transfer MRU "
                f"{params.peer_transfer_mru}"
            )
        try:
            transfer_id = session.send_transfer(data)
        except LocalProtocolError as exc:
            self._after_call()
            raise LinkClosedError(str(exc)) from None
        handle = TransferHandle(transfer_id, data, progress)
        self._handles[transfer_id] = handle
        self._kick()
        return handle

    async def send(self, data: bytes, progress: ProgressCallback | None = None) -> TransferResult:
        """Send a bundle and wait for the peer's final acknowledgement or refusal.

        :raises LinkClosedError: the session ended before that.
        :raises TransferTooLargeError: the bundle exceeds the peer's Transfer MRU.
        """
        return await self.start_send(data, progress).wait()

    async def receive(self) -> IncomingBundleTransfer:
        """The next complete incoming transfer; :meth:`IncomingBundleTransfer.accept` it once
        stored.

        :raises LinkClosedError: the session ended and every received transfer was taken.
        """
        return await self._incoming.receive()

    async def receive_many(self, limit: int) -> list[IncomingBundleTransfer]:
        """Every complete incoming transfer waiting now, at most ``limit`` (at least one: waits
        for it). Taking many at once lets the consumer store them together (one group commit)
        and acknowledge them in one write.

        :raises LinkClosedError: the session ended and every received transfer was taken.
        """
        return await self._incoming.receive_many(limit)

    def __aiter__(self) -> TcpclLink:
        return self

    async def __anext__(self) -> IncomingBundleTransfer:
        try:
            return await self.receive()
        except LinkClosedError:
            raise StopAsyncIteration from None

    async def aclose(self, reason: SessTermReason = SessTermReason.UNKNOWN) -> None:
        """End the session cleanly: SESS_TERM, let transfers in progress in both directions
        finish (at most ``close_timeout_s``, then abort), close the connection.

        Our transfers that had not started are not sent; see :meth:`unacknowledged`.
        """
        try:
            if not self.closed:
                self._call(self._session.close, reason)
                with trio.move_on_after(self.config.close_timeout_s):
                    await self._closed.wait()
                if not self.closed:
                    self._linger = False
                    logger.info(
                        "session with %s: transfers did not finish in %.1f s, aborting",
                        self._peer_text(),
                        self.config.close_timeout_s,
                    )
                    self._call(self._session.abort, reason)
            await self._finished.wait()
        except trio.Cancelled:
            self.abort(reason)
            raise

    def abort(self, reason: SessTermReason = SessTermReason.UNKNOWN) -> None:
        """End the session now, without waiting for transfers (RFC 9174 §6.1 unclean
        termination); the connection is closed in the background."""
        if not self.closed:
            self._call(self._session.abort, reason)

    async def wait_closed(self) -> SessionClosed:
        """Wait until the session has ended; return how it ended."""
        await self._closed.wait()
        assert self._closed_info is not None
        return self._closed_info

    def unacknowledged(self) -> list[bytes]:
        """The bundles of our transfers that the peer neither acknowledged in full nor
        refused, in the order they were queued: after the session ended, send them again on
        another session (while it runs: those still in flight)."""
        if self.closed:
            return list(self._unacknowledged)
        return [self._handles[tid].data for tid in sorted(self._handles)]

    def statistics(self) -> LinkStatistics:
        """A snapshot of the link's counters."""
        stats = self._session.statistics()
        return LinkStatistics(
            state=stats.state,
            peer_node_id=self._params.peer_node_id if self._params else "",
            tls=self._tls_started,
            bytes_sent=stats.bytes_sent,
            bytes_received=stats.bytes_received,
            transfers_sent=stats.transfers_completed,
            transfers_received=stats.transfers_received,
            transfers_refused_by_peer=stats.transfers_refused_by_peer,
            transfers_refused_by_us=stats.transfers_refused_by_us,
            transfers_pending=stats.pending_transfers,
            incoming_queued=self._incoming.queued,
            keepalives_sent=stats.keepalives_sent,
            in_flight=stats.in_flight,
            send_window=stats.send_window,
            ack_rate=stats.ack_rate,
            bytes_acknowledged=stats.bytes_acknowledged,
            transfers=tuple(self.transfers()),
            rtt_s=None if self._socket is None else tcp_round_trip_time(self._socket),
        )

    def transfers(self) -> list[TransferStatus]:
        """The transfers in progress: ours that started and are not acknowledged in full, and
        the peer's that are still arriving."""
        statuses: list[TransferStatus] = []
        for transfer_id, acknowledged, length in self._session.outgoing_progress():
            handle = self._handles.get(transfer_id)
            started = handle.started if handle is not None else 0.0
            statuses.append(TransferStatus(True, transfer_id, acknowledged, length, started))
        statuses.extend(self._incoming.statuses())
        return statuses

    def __repr__(self) -> str:
        role = "active" if self.active else "passive"
        return f"<TcpclLink {role} {self._peer_text()} {self._session.state.value}>"

    # == establishment =====================================================================

    async def _establish(self) -> None:
        """Run the contact header, TLS and SESS_INIT exchange.

        :raises EstablishmentError: (or a subclass) the session could not be established;
            the session is closed and what it had to say was written (best effort), but the
            stream is left to the caller to close.
        """
        session = self._session
        deadline = session.next_deadline()
        assert deadline is not None
        timed_out = False
        with trio.move_on_at(deadline) as scope:
            while True:
                await self._flush()
                if self.closed:
                    break
                if self._tls_requested and not self._tls_started:
                    await self._start_tls()
                    continue
                if self._params is not None:
                    break
                await self._receive_once()
                self._incoming.settle_budget()
        if scope.cancelled_caught and not self.closed:
            timed_out = True
            self._linger = False
            session.handle_timer(trio.current_time())
            self._process_events()
            if not self.closed:  # pragma: no cover - the session's own deadline is the same
                self._call(session.abort, SessTermReason.UNKNOWN)
        if not self.closed and self._tls_started:
            self._authenticate_peer()
        if self.closed:
            with trio.move_on_after(_FLUSH_TIMEOUT):
                await self._flush()
            assert self._closed_info is not None
            raise establishment_error(
                self._closed_info,
                peer=self._peer_text(),
                timeout_s=self.config.establish_timeout_s,
                timed_out=timed_out,
                policy=self._policy,
                tls_requested=self._tls_requested,
                tls_started=self._tls_started,
                terminating=self._terminating,
                terminating_by_peer=self._terminating_by_peer,
                auth_error=self._auth_error,
                stream_error=self._stream_error,
            )
        params = self.parameters
        logger.info(
            "session with %s established (%s, keepalive %d s, %s)",
            self._peer_text(),
            "active" if self.active else "passive",
            params.keepalive_interval,
            "TLS" if params.tls else "no TLS",
        )

    async def _start_tls(self) -> None:
        self._tls_started = True
        try:
            stream = await start_tls(
                self._stream,
                self.config,
                active=self.active,
                server_hostname=self._server_hostname,
                peer=self._peer_text(),
            )
        except TlsError:
            self._call(self._session.abort, SessTermReason.UNKNOWN)
            raise
        self._stream = stream
        self._peer_cert = stream.getpeercert(binary_form=True)
        self._call(self._session.tls_established, trio.current_time())

    def _authenticate_peer(self) -> None:
        """RFC 9174 §4.4.4.3: check the Node ID of the peer's SESS_INIT against its
        certificate; end the session with "Contact Failure" if it fails."""
        tls = self.config.tls
        assert tls is not None
        self._auth_error = node_id_authentication_error(
            self.parameters.peer_node_id,
            self._peer_cert,
            require_node_id=tls.require_node_id,
            peer=self._peer_text(),
        )
        if self._auth_error is not None:
            self._call(self._session.abort, SessTermReason.CONTACT_FAILURE)

    # == running ===========================================================================

    async def _run(self) -> None:
        """Run the reader, writer and timer until the session is over, then close the
        stream. Cancelling it aborts the session."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader)
                nursery.start_soon(self._timer)
                nursery.start_soon(self._writer)
                await self._closed.wait()
                # The writer flushes what the session still has to say (SESS_TERM...) and
                # returns, unless the peer stopped reading: then give up on it.
                with trio.move_on_after(_FLUSH_TIMEOUT) as scope:
                    await self._writer_done.wait()
                if scope.cancelled_caught:
                    self._linger = False
                nursery.cancel_scope.cancel()
        finally:
            if not self.closed:
                self._session.abort()
                self._process_events()
            try:
                with trio.CancelScope(shield=True):
                    await self._incoming.abandon_all()
                await self._close_stream()
            finally:
                self._finished.set()

    async def _close_stream(self) -> None:
        """Close the stream, gracefully unless it broke or the peer went silent: after a TCP
        half-close, read until the peer closes too, so that nothing we wrote is lost to a reset
        caused by unread data."""
        stream = self._stream
        try:
            if self._stream_error is None and self._linger:
                with trio.move_on_after(_FLUSH_TIMEOUT):
                    await _linger(stream)
        finally:
            await trio.aclose_forcefully(stream)

    async def _writer(self) -> None:
        try:
            await self._write_until_closed()
        finally:
            self._writer_done.set()

    async def _write_until_closed(self) -> None:
        session = self._session
        outbox = self._outbox
        while True:
            # A write is a system call, and on loopback an expensive one (the kernel does the
            # receiver's work too): let tasks that are ready to run add their messages first,
            # so that one write carries them all (e.g. the XFER_ACKs of a batch of bundles).
            for _ in range(_GATHER_ROUNDS):
                if not trio.lowlevel.current_statistics().tasks_runnable:
                    break
                await trio.lowlevel.checkpoint()
            data = session.data_to_send(trio.current_time(), _WRITE_CHUNK)
            if outbox:
                # What the kick took out, plus whatever became ready since, in one write.
                # (A large segment payload is a memoryview: written on its own, not copied.)
                if data:
                    outbox.append(data)
                if len(outbox) > 1 and not any(isinstance(p, memoryview) for p in outbox):
                    data = b"".join(outbox)
                    outbox.clear()
                else:
                    data = outbox.popleft()
            if data:
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._lost(exc)
                    return
            elif session.state is SessionState.CLOSED:
                return
            else:
                self._writer_idle = True
                await self._writer_lot.park()

    async def _flush(self) -> None:
        """Write everything the session has to send (establishment phase)."""
        session = self._session
        while data := session.data_to_send(trio.current_time(), _WRITE_CHUNK):
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(exc)
                return

    async def _reader(self) -> None:
        incoming = self._incoming
        while True:
            await incoming.wait_for_room()
            if self.closed:
                return
            await self._receive_once()
            await incoming.drain()
            incoming.settle_budget()

    async def _receive_once(self) -> None:
        size = await self._incoming.reserve(self._receive_size)
        try:
            data = await self._stream.receive_some(size)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lost(exc)
            return
        now = trio.current_time()
        if not data:
            self._session.connection_closed(now)
        else:
            if not self._incoming.budgeted:
                if len(data) >= size:
                    self._receive_size = min(size * 2, MAX_RECEIVE)
                elif len(data) < size // 8:
                    self._receive_size = max(size // 2, _MIN_RECEIVE)
            self._session.receive_data(data, now)
        self._process_events()
        self._kick()

    async def _timer(self) -> None:
        session = self._session
        while True:
            deadline = session.next_deadline()
            if deadline is None:
                await trio.sleep_forever()
                return  # pragma: no cover
            await trio.sleep_until(deadline)
            self._call(session.handle_timer, trio.current_time())

    # == plumbing ==========================================================================

    def _call(self, method: Callable[..., None], *args: object) -> None:
        """Call a session method, then handle its events and wake the writer."""
        method(*args)
        self._after_call()

    def _after_call(self) -> None:
        self._process_events()
        self._kick()

    def _kick(self) -> None:
        """Wake the writer if it is idle and the session has something to send. (Asking the
        session here instead of in the woken writer saves a task switch per received chunk
        that produced nothing to send, e.g. a piece of a large segment.)"""
        if not self._writer_idle:
            return  # it asks the session itself once its current write is done
        session = self._session
        data = session.data_to_send(trio.current_time(), _WRITE_CHUNK)
        if data:
            self._outbox.append(data)
        elif session.state is not SessionState.CLOSED:
            return
        self._writer_idle = False
        self._writer_lot.unpark_all()

    def _lost(self, exc: BaseException) -> None:
        """The stream broke: the session is over."""
        if self._stream_error is None:
            self._stream_error = describe_stream_error(exc)
        self._session.connection_closed(trio.current_time())
        self._after_call()

    def _process_events(self) -> None:
        for event in self._session.events():
            self._handle_event(event)

    def _handle_event(self, event: Event) -> None:
        if isinstance(event, SegmentReceived | TransferReceived | IncomingTransferAborted):
            self._incoming.on_event(event)
        elif isinstance(event, TransferProgress):
            handle = self._handles.get(event.transfer_id)
            if handle is not None:
                handle._acknowledge(event.acknowledged_length, event.total_length)
        elif isinstance(event, TransferCompleted):
            handle = self._handles.pop(event.transfer_id, None)
            if handle is not None:
                handle._acknowledge(event.length, event.length)
                handle._finish(TransferResult(TransferOutcome.ACKED, None, event.transfer_id))
        elif isinstance(event, TransferRefused):
            handle = self._handles.pop(event.transfer_id, None)
            if handle is not None:
                logger.info(
                    "%s refused transfer %d: %s",
                    self._peer_text(),
                    event.transfer_id,
                    reason_name(event.reason),
                )
                handle._finish(
                    TransferResult(TransferOutcome.REFUSED, event.reason, event.transfer_id)
                )
        elif isinstance(event, IncomingTransfer):
            self._incoming.open(event, self._params)
        elif isinstance(event, StartTls):
            self._tls_requested = True
        elif isinstance(event, SessionEstablished):
            self._params = event.parameters
        elif isinstance(event, SessionTerminating):
            self._terminating = True
            if event.by_peer:
                self._terminating_by_peer = event.reason
            logger.info(
                "session with %s terminating (%s, by %s)",
                self._peer_text(),
                reason_name(event.reason),
                "peer" if event.by_peer else "us",
            )
        elif isinstance(event, SessionClosed):
            self._on_closed(event)
        elif isinstance(event, MessageRejected):
            logger.info(
                "%s rejected message type %d: %s",
                self._peer_text(),
                event.message_type,
                reason_name(event.reason),
            )

    def _on_closed(self, event: SessionClosed) -> None:
        self._closed_info = event
        if not event.clean and event.reason == SessTermReason.IDLE_TIMEOUT:
            self._linger = False  # the peer went silent
        # A connection that breaks is routine on a flapping link (what was acknowledged is
        # kept): INFO. A session that fails otherwise (protocol error, timeout): WARNING.
        routine = event.clean or self._params is None or self._stream_error is not None
        level = logging.INFO if routine else logging.WARNING
        logger.log(
            level,
            "session with %s closed (%s%s)",
            self._peer_text(),
            "clean" if event.clean else "unclean",
            f": {self._auth_error or self._stream_error or event.error}" if not event.clean else "",
        )
        error = LinkClosedError(
            f"the session with {self._peer_text()} ended before the transfer completed"
        )
        for transfer_id in sorted(self._handles):
            handle = self._handles[transfer_id]
            self._unacknowledged.append(handle.data)
            handle._fail(error)
        self._handles.clear()
        self._closed.set()
        self._incoming.wake_all()

    def _peer_text(self) -> str:
        host, port = self.peer_address
        where = f"{host}:{port}" if host else "peer"
        if self._params is not None and self._params.peer_node_id:
            return f"{self._params.peer_node_id} ({where})"
        return where


async def _linger(stream: trio.abc.Stream) -> None:
    try:
        if isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()
            while await stream.receive_some(_MIN_RECEIVE):
                pass
        await stream.aclose()  # for TLS: close_notify
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
