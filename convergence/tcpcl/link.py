"""The trio adapter of TCPCLv4: a :class:`TcpclLink` runs one sans-IO
:class:`~convergence.tcpcl.session.Session` over a trio stream.

Theory of operation
===================

Establishment runs in the caller's task (:func:`~convergence.tcpcl.listener.open_link`, or
:class:`~convergence.tcpcl.listener.TcpclListener` per accepted connection): write what the
session has to send, read, feed, repeat until ``SessionEstablished``. On ``StartTls`` the
stream is wrapped in a :class:`~convergence.tcpcl.tlsstream.TlsStream` (``ssl`` memory BIOs
like ``trio.SSLStream``, but about 2.5 times faster for bulk data; the active entity is the
TLS client, RFC 9174 §4.4.3) and, once SESS_INIT is exchanged, the peer's Node ID is checked
against its certificate (§4.4.4.3). Everything runs under the session's establishment
deadline.

Then three tasks share the session (no locks: trio switches tasks only at ``await``, and every
session call is synchronous):

* the **writer** is the only task writing to the stream. It takes ``data_to_send()`` in bounded
  pieces and ``send_all``\\ s them; with nothing to send it parks until another task's
  :meth:`~TcpclLink._kick` finds output waiting (and hands it over, in order). Before each
  write it lets the tasks that are ready run (a few rounds at most), and writes what they
  queued in the same system call. Segments of
  our transfers are cut lazily by the session, so acknowledgements for the peer are never
  stuck behind more than one segment.
* the **reader** feeds received bytes to the session, passes each segment's data to its
  transfer's sink (:mod:`convergence.tcpcl.sink`; in memory by default) and only then
  acknowledges the segment, and hands every complete incoming transfer to a bounded memory
  channel. While a sink writes, or the channel is full, or the node's receive budget is spent,
  it does not read: the TCP window closes and the peer's writer stalls (receive backpressure).
  Before reading a segment it reserves budget for all of it, so memory for incoming data is
  bounded per link (one segment and one read) and, with a shared
  :class:`~convergence.tcpcl.sink.ReceiveBudget`, for all links together.
* the **timer** sleeps until ``session.next_deadline()`` and calls ``handle_timer``
  (keepalives, idle timeout). Deadlines only move later once the session is established, so
  waking at a stale deadline is harmless.

User calls (``start_send``, ``accept``, ``refuse``, ``aclose``) act on the session at once
and kick the writer. Events are handled right after each session call by
:meth:`~TcpclLink._process_events`, whichever task made it.

The final XFER_ACK of an incoming transfer is held back (``auto_ack_final=False``) until the
consumer calls :meth:`IncomingBundleTransfer.accept`, after it stored the bundle durably. When
the session ends, every transfer of ours that was not acknowledged in full or refused is
reported (:meth:`TcpclLink.unacknowledged`, :meth:`TransferHandle.wait` raises
:class:`LinkClosedError`; :attr:`TransferHandle.acknowledged` says how far it got) so the caller
can send it again on another session — or only its unacknowledged part; every incoming transfer
that did not reach its consumer is handed back to its sink (``abandon``), which may keep what was
acknowledged.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import ssl
import struct
from collections import deque
from collections.abc import Callable

import trio

from .codes import SessTermReason, XferRefuseReason
from .config import TlsPolicy
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
    EstablishmentError,
    EstablishmentTimeout,
    LinkClosedError,
    NodeIdMismatchError,
    TlsError,
    TlsRequiredError,
    TransferTooLargeError,
)
from .link_transfers import (
    DoneCallback,
    IncomingBundleTransfer,
    LinkStatistics,
    ProgressCallback,
    TransferHandle,
    TransferOutcome,
    TransferResult,
    TransferStatus,
)
from .negotiation import SessionParameters
from .session import Session
from .sink import IncomingTransferStart, MemorySink, SinkRefusal, TransferSink
from .state import SessionState
from .tls import NodeIdAuthResult, authenticate_node_id
from .tlsstream import TlsStream

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
_MAX_RECEIVE = 4 * _MIB
#: Largest read while the length of the message being received is not known yet (with a
#: receive budget: the most a link holds while it waits for budget).
_HEAD_RECEIVE = 64 * 1024
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
        self._ready: deque[IncomingBundleTransfer] = deque()
        self._inbound: dict[int, _Inbound] = {}  # the peer's transfers with an open sink
        self._reception: deque[Event] = deque()  # segment events waiting for the reader
        self._budget = config.receive_budget
        self._budget_held = 0
        self._consumers = trio.lowlevel.ParkingLot()  # tasks waiting in receive()
        self._queue_room = trio.lowlevel.ParkingLot()  # the reader, while _ready is full
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._writer_idle = False  # parked with nothing to send
        self._outbox: deque[bytes | memoryview] = deque()  # taken from the session by _kick
        self._receive_size = _MIN_RECEIVE
        self._closed_info: SessionClosed | None = None
        self._closed = trio.Event()
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
        await trio.lowlevel.checkpoint()
        while not self._ready:
            if self.closed:
                raise LinkClosedError("the session has ended")
            await self._consumers.park()
        transfer = self._ready.popleft()
        if self._ready:
            self._consumers.unpark(count=1)
        self._queue_room.unpark_all()
        return transfer

    async def receive_many(self, limit: int) -> list[IncomingBundleTransfer]:
        """Every complete incoming transfer waiting now, at most ``limit`` (at least one: waits
        for it). Taking many at once lets the consumer store them together (one group commit)
        and acknowledge them in one write.

        :raises LinkClosedError: the session ended and every received transfer was taken.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        await trio.lowlevel.checkpoint()
        while not self._ready:
            if self.closed:
                raise LinkClosedError("the session has ended")
            await self._consumers.park()
        ready = self._ready
        taken = [ready.popleft() for _ in range(min(limit, len(ready)))]
        if ready:
            self._consumers.unpark(count=1)
        self._queue_room.unpark_all()
        return taken

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
            incoming_queued=len(self._ready),
            keepalives_sent=stats.keepalives_sent,
            in_flight=stats.in_flight,
            send_window=stats.send_window,
            ack_rate=stats.ack_rate,
            bytes_acknowledged=stats.bytes_acknowledged,
            transfers=tuple(self.transfers()),
            rtt_s=None if self._socket is None else _tcp_round_trip_time(self._socket),
        )

    def transfers(self) -> list[TransferStatus]:
        """The transfers in progress: ours that started and are not acknowledged in full, and
        the peer's that are still arriving."""
        statuses: list[TransferStatus] = []
        for transfer_id, acknowledged, length in self._session.outgoing_progress():
            handle = self._handles.get(transfer_id)
            started = handle.started if handle is not None else 0.0
            statuses.append(TransferStatus(True, transfer_id, acknowledged, length, started))
        for transfer_id, inbound in self._inbound.items():
            statuses.append(
                TransferStatus(
                    False,
                    transfer_id,
                    inbound.written,
                    inbound.start.total_length,
                    inbound.started,
                )
            )
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
                self._settle_budget()
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
            raise self._establishment_error(timed_out)
        params = self.parameters
        logger.info(
            "session with %s established (%s, keepalive %d s, %s)",
            self._peer_text(),
            "active" if self.active else "passive",
            params.keepalive_interval,
            "TLS" if params.tls else "no TLS",
        )

    async def _start_tls(self) -> None:
        tls = self.config.tls
        context = tls.context_for(active=self.active) if tls is not None else None
        # The session asks for TLS only if our contact header offered it, i.e. with a context.
        assert context is not None
        stream = TlsStream(
            self._stream,
            context,
            server_side=not self.active,
            server_hostname=self._server_hostname if self.active else None,
        )
        self._tls_started = True
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            description = _describe_stream_error(exc)
            self._call(self._session.abort, SessTermReason.UNKNOWN)
            raise TlsError(f"TLS handshake with {self._peer_text()} failed: {description}") from exc
        self._stream = stream
        self._peer_cert = stream.getpeercert(binary_form=True)
        self._call(self._session.tls_established, trio.current_time())

    def _authenticate_peer(self) -> None:
        """RFC 9174 §4.4.4.3: check the Node ID of the peer's SESS_INIT against its
        certificate; end the session with "Contact Failure" if it fails."""
        tls = self.config.tls
        assert tls is not None
        node_id = self.parameters.peer_node_id
        result = authenticate_node_id(node_id, self._peer_cert)
        if result is NodeIdAuthResult.SUCCESS:
            return
        if result is NodeIdAuthResult.ABSENT and not tls.require_node_id:
            logger.info("peer node ID %r not authenticated: its certificate names none", node_id)
            return
        # RFC 9174 §4.4.4.3: when NODE-ID authentication fails, the entity terminates the
        # session with the reason code "Contact Failure" (a certificate naming no Node ID is
        # refused too when our policy requires authentication, §4.4.5).
        if result is NodeIdAuthResult.FAILURE:
            self._auth_error = (
                f"peer node ID {node_id!r} does not match its certificate ({self._peer_text()})"
            )
        elif not node_id:
            self._auth_error = f"peer {self._peer_text()} did not disclose its node ID"
        else:
            self._auth_error = (
                f"peer node ID {node_id!r} cannot be authenticated: its certificate names "
                "no node ID"
            )
        self._call(self._session.abort, SessTermReason.CONTACT_FAILURE)

    def _establishment_error(self, timed_out: bool) -> EstablishmentError:
        closed = self._closed_info
        assert closed is not None
        peer = self._peer_text()
        if self._auth_error is not None:
            return NodeIdMismatchError(self._auth_error)
        if timed_out:
            return EstablishmentTimeout(
                f"session with {peer} not established within {self.config.establish_timeout_s} s"
            )
        if self._terminating_by_peer is not None:
            reason = _reason_name(self._terminating_by_peer)
            hint = " (it may require TLS)" if self._policy is TlsPolicy.DISABLED else ""
            return EstablishmentError(
                f"{peer} ended the session during establishment: {reason}{hint}"
            )
        if (
            self._policy is TlsPolicy.REQUIRED
            and not self._tls_requested
            and not self._terminating
            and closed.reason == SessTermReason.CONTACT_FAILURE
        ):
            # The session refused the peer's contact header because of our TLS policy.
            return TlsRequiredError(f"TLS is required but {peer} does not offer it")
        error = self._stream_error or closed.error or "closed"
        if self._tls_started and self._stream_error is not None:
            return TlsError(f"session with {peer} failed during establishment: {error}")
        return EstablishmentError(f"session with {peer} failed during establishment: {error}")

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
                    await self._abandon_incoming()
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
        limit = self.config.incoming_queue
        while True:
            while len(self._ready) >= limit and not self.closed:
                await self._queue_room.park()
            if self.closed:
                return
            await self._receive_once()
            await self._drain_reception()
            self._settle_budget()

    async def _receive_once(self) -> None:
        size = self._receive_size
        budget = self._budget
        if budget is not None:
            # Reserve memory for the whole message being received before reading more of it
            # (its length is known once its header is in): then a link never waits for budget
            # while holding part of a segment it could not finish.
            need = self._session.receive_need()
            if need > 1:
                size = min(need, _MAX_RECEIVE)
            else:
                size = min(_HEAD_RECEIVE, max(1024, budget.limit // 16))
            target = self._session.buffered + max(need, size)
            if target > self._budget_held:
                await budget.acquire(target - self._budget_held)
                self._budget_held = target
        try:
            data = await self._stream.receive_some(size)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lost(exc)
            return
        now = trio.current_time()
        if not data:
            self._session.connection_closed(now)
        else:
            if budget is None:
                if len(data) >= size:
                    self._receive_size = min(size * 2, _MAX_RECEIVE)
                elif len(data) < size // 8:
                    self._receive_size = max(size // 2, _MIN_RECEIVE)
            self._session.receive_data(data, now)
        self._process_events()
        self._kick()

    def _settle_budget(self) -> None:
        """Give back the budget beyond what the message being received still needs."""
        budget = self._budget
        if budget is None:
            return
        session = self._session
        keep = session.buffered + session.receive_need() if session.buffered else 0
        if self.closed:
            keep = 0
        if keep < self._budget_held:
            budget.release(self._budget_held - keep)
            self._budget_held = keep

    async def _drain_reception(self) -> None:
        """Pass received segments to their sinks (acknowledging each once its sink took it),
        complete transfers whose last segment arrived, abandon those that ended early."""
        reception = self._reception
        while reception:
            event = reception.popleft()
            if isinstance(event, SegmentReceived):
                await self._write_segment(event)
                continue
            if not isinstance(event, TransferReceived | IncomingTransferAborted):
                continue  # pragma: no cover - only these are queued
            if isinstance(event, IncomingTransferAborted) and event.reason is None:
                # The session ended: _abandon_incoming hands it back to its sink once the link
                # is down (shielded; keeping a long prefix may take a while).
                continue
            inbound = self._inbound.pop(event.transfer_id, None)
            if inbound is None:
                continue  # refused by its sink
            if isinstance(event, IncomingTransferAborted):
                # Refused by the session itself (length, MRU): nothing worth keeping.
                await _release(inbound.sink)
                continue
            try:
                await inbound.sink.finish()
            except Exception as exc:
                logger.exception("sink of incoming transfer %d failed", event.transfer_id)
                self._refuse_inbound(event.transfer_id, _refusal_of(exc))
                await _release(inbound.sink)
                continue
            self._ready.append(
                IncomingBundleTransfer(
                    self._resolve_incoming,
                    event.transfer_id,
                    inbound.sink,
                    event.extensions,
                    event.length,
                    inbound.acked,
                )
            )
            self._consumers.unpark(count=1)

    async def _write_segment(self, event: SegmentReceived) -> None:
        transfer_id = event.transfer_id
        inbound = self._inbound.get(transfer_id)
        if inbound is None:
            return  # refused meanwhile
        try:
            await inbound.sink.write(event.data)
        except Exception as exc:
            if not isinstance(exc, SinkRefusal):
                logger.exception("sink of incoming transfer %d failed", transfer_id)
            else:
                logger.info(
                    "refusing incoming transfer %d from %s: %s",
                    transfer_id,
                    self._peer_text(),
                    exc,
                )
            del self._inbound[transfer_id]
            self._refuse_inbound(transfer_id, _refusal_of(exc))
            await _release(inbound.sink)
            return
        inbound.written = event.received_length
        if not event.end and not self.closed:
            inbound.acked = event.received_length
            self._call(self._session.ack_segments, transfer_id, event.received_length)

    def _refuse_inbound(self, transfer_id: int, reason: XferRefuseReason) -> None:
        with contextlib.suppress(LocalProtocolError):  # already resolved by the session
            self._call(self._session.refuse_transfer, transfer_id, reason)

    async def _abandon_incoming(self) -> None:
        """The session is over: every incoming transfer that did not reach the consumer goes
        back to its sink (which may keep what was acknowledged, or all of a complete one).
        Until then, :meth:`receive` still hands out complete transfers."""
        self._reception.clear()
        inbound, self._inbound = self._inbound, {}
        for entry in inbound.values():
            await _abandon(entry.sink, entry.acked)
        ready, self._ready = list(self._ready), deque()
        for transfer in ready:
            await _abandon(transfer.sink, transfer.acknowledged)
        if self._budget is not None and self._budget_held:
            self._budget.release(self._budget_held)
            self._budget_held = 0

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

    def _resolve_incoming(self, transfer_id: int, refusal: XferRefuseReason | None) -> None:
        if refusal is None:
            self._call(self._session.ack_transfer, transfer_id)
        else:
            self._call(self._session.refuse_transfer, transfer_id, refusal)

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
            self._stream_error = _describe_stream_error(exc)
        self._session.connection_closed(trio.current_time())
        self._after_call()

    def _process_events(self) -> None:
        for event in self._session.events():
            self._handle_event(event)

    def _handle_event(self, event: Event) -> None:
        if isinstance(event, SegmentReceived | TransferReceived | IncomingTransferAborted):
            if event.transfer_id in self._inbound:
                self._reception.append(event)
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
                    _reason_name(event.reason),
                )
                handle._finish(
                    TransferResult(TransferOutcome.REFUSED, event.reason, event.transfer_id)
                )
        elif isinstance(event, IncomingTransfer):
            self._open_incoming(event)
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
                _reason_name(event.reason),
                "peer" if event.by_peer else "us",
            )
        elif isinstance(event, SessionClosed):
            self._on_closed(event)
        elif isinstance(event, MessageRejected):
            logger.info(
                "%s rejected message type %d: %s",
                self._peer_text(),
                event.message_type,
                _reason_name(event.reason),
            )

    def _open_incoming(self, event: IncomingTransfer) -> None:
        """A transfer starts: ask the filter and the sink factory whether to take it."""
        config = self.config
        params = self._params
        start = IncomingTransferStart(
            event.transfer_id,
            event.total_length,
            event.extensions,
            params.peer_node_id if params is not None else "",
            params.peer_extensions if params is not None else (),
        )
        made: TransferSink | XferRefuseReason | None = None
        try:
            if config.transfer_filter is not None:
                made = config.transfer_filter(event.total_length)
            if made is None:
                factory = config.sink_factory
                made = MemorySink() if factory is None else factory(start)
        except Exception:
            logger.exception("transfer filter failed; refusing transfer %d", event.transfer_id)
            made = XferRefuseReason.UNKNOWN
        if isinstance(made, XferRefuseReason):
            self._session.refuse_transfer(event.transfer_id, made)
        else:
            self._inbound[event.transfer_id] = _Inbound(made, start, trio.current_time())

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
        self._consumers.unpark_all()
        self._queue_room.unpark_all()

    def _peer_text(self) -> str:
        host, port = self.peer_address
        where = f"{host}:{port}" if host else "peer"
        if self._params is not None and self._params.peer_node_id:
            return f"{self._params.peer_node_id} ({where})"
        return where


#: Linux ``struct tcp_info`` up to ``tcpi_rttvar``: eight octets of small fields, then 32-bit
#: fields; ``tcpi_rtt`` (microseconds) is the sixteenth of those.
_TCP_INFO_LENGTH = 76
_TCP_INFO_RTT_OFFSET = 68


def _tcp_round_trip_time(sock: trio.socket.SocketType) -> float | None:
    """The kernel's smoothed round-trip time of a TCP socket in seconds (Linux), else None."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_LENGTH)
    except OSError:
        return None  # closed meanwhile, or not a TCP socket
    if len(info) < _TCP_INFO_LENGTH:
        return None
    (microseconds,) = struct.unpack_from("=I", info, _TCP_INFO_RTT_OFFSET)
    return float(microseconds) / 1e6


class _Inbound:
    """One of the peer's transfers whose data goes to ``sink``."""

    __slots__ = ("acked", "sink", "start", "started", "written")

    def __init__(self, sink: TransferSink, start: IncomingTransferStart, started: float) -> None:
        self.sink = sink
        self.start = start
        self.started = started
        self.written = 0  # octets the sink took
        self.acked = 0  # octets acknowledged to the peer


def _refusal_of(exc: BaseException) -> XferRefuseReason:
    return exc.reason if isinstance(exc, SinkRefusal) else XferRefuseReason.UNKNOWN


async def _abandon(sink: TransferSink, acknowledged: int) -> None:
    try:
        await sink.abandon(acknowledged)
    except Exception:
        logger.exception("abandoning an incoming transfer failed")


async def _release(sink: TransferSink) -> None:
    try:
        await sink.release()
    except Exception:
        logger.exception("releasing an incoming transfer failed")


async def _linger(stream: trio.abc.Stream) -> None:
    try:
        if isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()
            while await stream.receive_some(_MIN_RECEIVE):
                pass
        await stream.aclose()  # for TLS: close_notify
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def _reason_name(reason: enum.IntEnum | int) -> str:
    return reason.name if isinstance(reason, enum.IntEnum) else f"code {reason}"


def _describe_stream_error(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return f"TLS: {cause.reason or cause}"
    if isinstance(cause, OSError):
        return cause.strerror or str(cause)
    if cause is not None:
        return str(cause) or type(cause).__name__
    return str(exc) or type(exc).__name__
