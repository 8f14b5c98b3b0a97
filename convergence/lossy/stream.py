"""A trio stream that carries its bytes over a lossy link.

Theory of operation
-------------------
:class:`LossyStream` wraps one end of a connection (``inner``: a socket stream, one end of
``trio.testing.memory_stream_pair()``...) and puts the whole link between the caller and that
end: data the caller sends travels FORWARD to ``inner``, data arriving from ``inner`` travels
BACKWARD to the caller, and both directions suffer the link's latency, jitter, bandwidth cap and
stalls. The link can cut the connection: at a scheduled or random instant, when a down window
starts, once a byte budget is spent, or by hand (:meth:`LossyStream.cut`,
:meth:`LossyLink.set_down <convergence.lossy.link.LossyLink.set_down>`). A cut closes ``inner``
(resetting a TCP socket, so a real peer sees a broken connection), drops every chunk still
in flight, and makes the caller's ``send_all`` and ``receive_some`` raise
``trio.BrokenResourceError`` (after the caller has read what arrived before the cut).

Timing comes from :class:`~convergence.lossy.model.ConnectionModel`: each chunk is stamped with
the time it finishes transmitting and the time it arrives. ``send_all`` queues its data in
segments and returns when the last segment has finished transmitting (so a capped link pushes
back on the sender, and a stalled one blocks it); a pump task writes each segment into ``inner``
when it arrives. Another pump reads ``inner`` as the link allows and queues what it reads for
``receive_some``, which hands it over once it has arrived. Both queues are bounded
(``max_in_flight``), so a slow reader pushes back all the way. The pumps and the cut timer run
in :meth:`LossyStream.run`, which its owner starts in a nursery (``await nursery.start(s.run)``),
or use :func:`open_lossy_stream`, which does that. Everything sleeps on trio's clock, so tests
under ``autojump_clock`` see the same virtual timings every run.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import operator
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

import trio
import trio.testing

from .link import LossyLink
from .model import ConnectionModel, Direction, LinkProfile

__all__ = ["LossyStream", "open_lossy_stream", "open_lossy_stream_pair"]

logger = logging.getLogger(__name__)

DEFAULT_SEGMENT_SIZE = 16384
"""Bytes per chunk the link handles at a time: a cut or stall can fall between chunks."""
DEFAULT_MAX_IN_FLIGHT = 1 << 20
"""Bytes each direction may hold in flight before the sender has to wait."""


class _State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # aclose() is letting in-flight data arrive
    CLOSED = "closed"  # closed by our caller (or run() was cancelled)
    CUT = "cut"  # cut by the link


class _Kind(enum.Enum):
    DATA = "data"
    EOF = "eof"
    ERROR = "error"  # the peer broke the connection


@dataclass(slots=True)
class _Chunk:
    kind: _Kind
    deliver_at: float
    data: bytes = b""
    cut_after: bool = False


class _Exclusive:
    """Raise ``trio.BusyResourceError`` when two tasks use one side of the stream at once."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(f"another task is already {self._what} this stream")
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False


def _reset_on_close(stream: trio.abc.Stream) -> None:
    """Make closing a TCP socket stream send a reset, so the peer sees a broken connection."""
    if isinstance(stream, trio.SocketStream) and stream.socket.family in (
        socket.AF_INET,
        socket.AF_INET6,
    ):
        with contextlib.suppress(OSError):  # the socket may be gone already
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class LossyStream(trio.abc.HalfCloseableStream):
    """``inner`` seen from the far side of a lossy link. Run :meth:`run` while using it.

    ``link`` is a shared :class:`~convergence.lossy.link.LossyLink`, or a
    :class:`~convergence.lossy.model.LinkProfile` for a link of its own (a perfect one if
    None). If the link is down when the stream is made, the stream starts out cut (refused).
    ``segment_size`` is the largest chunk the link handles at once; ``max_in_flight`` bounds the
    bytes queued in each direction.
    """

    def __init__(
        self,
        inner: trio.abc.Stream,
        link: LossyLink | LinkProfile | None = None,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        if segment_size < 1 or max_in_flight < 1:
            raise ValueError("segment_size and max_in_flight must be >= 1")
        self._inner = inner
        self._link = link if isinstance(link, LossyLink) else LossyLink(link)
        self._segment_size = segment_size
        self._max_in_flight = max_in_flight
        self._outgoing: deque[_Chunk] = deque()
        self._outgoing_bytes = 0
        self._incoming: deque[_Chunk] = deque()
        self._incoming_bytes = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._send_guard = _Exclusive("sending on")
        self._receive_guard = _Exclusive("receiving from")
        self._eof_queued = False
        self._peer_broken = False
        self._budget_cut_at = math.inf
        self._started = False
        self._running = False
        self._done = trio.Event()
        connection = self._link._attach(self)
        self._connection = connection
        self._state = _State.OPEN if connection is not None else _State.CUT

    # -- public properties ------------------------------------------------------------------

    @property
    def inner(self) -> trio.abc.Stream:
        """The wrapped stream."""
        return self._inner

    @property
    def link(self) -> LossyLink:
        """The link this stream's connection runs over."""
        return self._link

    @property
    def connection(self) -> ConnectionModel | None:
        """The model of this connection; None if the link was down when the stream was made."""
        return self._connection

    @property
    def is_cut(self) -> bool:
        """Whether the link has cut (or refused) this connection."""
        return self._state is _State.CUT

    # -- control ----------------------------------------------------------------------------

    def cut(self, reason: str = "cut by hand") -> None:
        """Cut the connection now, as the link would. Does nothing once closed or cut.

        In-flight data is lost; data that already arrived can still be received. ``run()``
        closes (resets) the inner stream.
        """
        if not self._live():
            return
        now = trio.current_time()
        self._state = _State.CUT
        self._link._count_cut()
        connection = self._connection
        carried = connection.bytes_carried if connection is not None else 0
        index = connection.index if connection is not None else -1
        logger.info(
            "link %s: connection #%d cut (%s) after %d bytes",
            self._link.name,
            index,
            reason,
            carried,
        )
        self._outgoing.clear()
        self._outgoing_bytes = 0
        kept = [c for c in self._incoming if c.deliver_at < now or c.cut_after]
        self._incoming = deque(kept)
        self._incoming_bytes = sum(len(c.data) for c in kept)
        self._notify()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Pump bytes through the link until the stream is closed or cut, then close ``inner``.

        Start it with ``await nursery.start(stream.run)``; cancelling it closes the stream.
        """
        if self._started:
            raise RuntimeError("LossyStream.run() may only be called once")
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                if self._state is _State.OPEN:
                    nursery.start_soon(self._write_pump)
                    nursery.start_soon(self._read_pump)
                self._running = True
                task_status.started()
                await self._watch()
                nursery.cancel_scope.cancel()
            if self._state is _State.CLOSED:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._inner.aclose()
        finally:
            self._running = False
            if self._live():
                self._state = _State.CLOSED
            if self._state is _State.CUT:
                _reset_on_close(self._inner)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._inner)
            self._link._detach(self)
            self._done.set()
            self._notify()

    async def _watch(self) -> None:
        """Wait until the stream is closed or cut, cutting it when a deadline comes."""
        scheduled = self._connection.cut_at if self._connection is not None else None
        scheduled_at = math.inf if scheduled is None else scheduled
        while self._live():
            deadline = min(scheduled_at, self._budget_cut_at)
            with trio.move_on_at(deadline):
                await self._lot.park()
            if not self._live():
                break
            if trio.current_time() >= self._budget_cut_at:
                self.cut("byte budget spent")
            elif trio.current_time() >= scheduled_at:
                down = self._link.model.is_down(scheduled_at)
                self.cut("down window" if down else "scheduled cut")

    # -- trio.abc.HalfCloseableStream -------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` over the link; return once it has finished transmitting."""
        with self._send_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_send()
            payload = bytes(data)
            if not payload:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            connection = self._connection
            assert connection is not None  # a refused stream is CUT, so _check_send raised
            for offset in range(0, len(payload), self._segment_size):
                self._check_send()
                segment = payload[offset : offset + self._segment_size]
                while self._outgoing_bytes >= self._max_in_flight:
                    await self._lot.park()
                    self._check_send()
                tx = connection.transmit(Direction.FORWARD, trio.current_time(), len(segment))
                if tx.size:
                    chunk = _Chunk(_Kind.DATA, tx.deliver_at, segment[: tx.size], tx.cut_after)
                    self._outgoing.append(chunk)
                    self._outgoing_bytes += tx.size
                    self._notify()
                elif tx.cut_after:
                    self.cut("byte budget spent")
                if tx.cut_after and offset + tx.size < len(payload):
                    # The rest of the data is lost in the cut: wait for it and report it.
                    while self._live():
                        await self._lot.park()
                    self._check_send()
                await self._wait_until_sent(tx.sent_at)
                self._check_send()

    async def send_eof(self) -> None:
        """Send end-of-stream after the data already sent (``inner`` must be half-closeable)."""
        with self._send_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._eof_queued and self._state is _State.OPEN:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            self._check_send()
            if not isinstance(self._inner, trio.abc.HalfCloseableStream):
                raise TypeError(f"{type(self._inner).__name__} cannot send end-of-stream")
            connection = self._connection
            assert connection is not None
            tx = connection.transmit(Direction.FORWARD, trio.current_time(), 0)
            self._outgoing.append(_Chunk(_Kind.EOF, tx.deliver_at))
            self._eof_queued = True
            self._notify()
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the outgoing queue has room."""
        with self._send_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._state in (_State.CLOSED, _State.CLOSING):
                raise trio.ClosedResourceError("the stream was closed")
            while self._sending_possible() and self._outgoing_bytes >= self._max_in_flight:
                await self._lot.park()
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive data that has arrived over the link; ``b""`` at end of stream."""
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        with self._receive_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            while True:
                if self._state in (_State.CLOSED, _State.CLOSING):
                    raise trio.ClosedResourceError("the stream was closed")
                head = self._incoming[0] if self._incoming else None
                if head is not None and head.deliver_at <= trio.current_time():
                    if head.kind is _Kind.ERROR:
                        raise trio.BrokenResourceError("the peer broke the connection")
                    if head.kind is _Kind.EOF:
                        await trio.lowlevel.cancel_shielded_checkpoint()
                        return b""
                    data = head.data if max_bytes is None else head.data[:max_bytes]
                    head.data = head.data[len(data) :]
                    if not head.data:
                        self._incoming.popleft()
                    self._incoming_bytes -= len(data)
                    self._link._count_bytes(Direction.BACKWARD, len(data))
                    self._notify()
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
                if self._state is _State.CUT:
                    raise trio.BrokenResourceError("the lossy link cut the connection")
                if head is None:
                    await self._lot.park()
                else:
                    with trio.move_on_at(head.deliver_at):
                        await self._lot.park()

    async def aclose(self) -> None:
        """Close the stream, after letting data in flight arrive (at once if cancelled)."""
        if self._done.is_set():
            await trio.lowlevel.checkpoint()
            return
        if not self._running:
            if self._state is not _State.CUT:
                self._state = _State.CLOSED
            else:
                _reset_on_close(self._inner)
            self._link._detach(self)
            self._notify()
            await self._inner.aclose()
            return
        try:
            if self._state is _State.OPEN:
                self._state = _State.CLOSING
                self._notify()
                while self._outgoing and self._state is _State.CLOSING:
                    await self._lot.park()
            if self._live():
                self._state = _State.CLOSED
            self._notify()
            await self._done.wait()
        except trio.Cancelled:
            if self._live():
                self._state = _State.CLOSED
            self._notify()
            await trio.aclose_forcefully(self._inner)
            raise

    # -- internals --------------------------------------------------------------------------

    def _notify(self) -> None:
        self._lot.unpark_all()

    def _live(self) -> bool:
        return self._state in (_State.OPEN, _State.CLOSING)

    def _sending_possible(self) -> bool:
        return self._state is _State.OPEN and not self._peer_broken and not self._eof_queued

    def _check_send(self) -> None:
        if self._state in (_State.CLOSED, _State.CLOSING):
            raise trio.ClosedResourceError("the stream was closed")
        if self._state is _State.CUT:
            raise trio.BrokenResourceError("the lossy link cut the connection")
        if self._peer_broken:
            raise trio.BrokenResourceError("the peer broke the connection")
        if self._eof_queued:
            raise trio.ClosedResourceError("send_eof() was called on this stream")

    async def _wait_until_sent(self, sent_at: float) -> None:
        """Sleep until ``sent_at``, or until the connection is cut or closed meanwhile."""
        if trio.current_time() >= sent_at:
            await trio.lowlevel.checkpoint()
            return
        while trio.current_time() < sent_at and self._sending_possible():
            with trio.move_on_at(sent_at):
                await self._lot.park()

    def _peer_broke(self) -> None:
        if self._live():
            self._peer_broken = True
            self._outgoing.clear()
            self._outgoing_bytes = 0
            self._notify()

    async def _write_pump(self) -> None:
        """Write each outgoing chunk into ``inner`` when it arrives."""
        connection = self._connection
        assert connection is not None
        cut_at = math.inf if connection.cut_at is None else connection.cut_at
        try:
            while True:
                while not self._outgoing:
                    await self._lot.park()
                chunk = self._outgoing[0]
                await trio.sleep_until(chunk.deliver_at)
                if chunk.deliver_at >= min(cut_at, self._budget_cut_at):
                    await trio.sleep_forever()  # lost in the coming cut; run() cancels us
                if not self._live():
                    return
                if chunk.kind is _Kind.EOF:
                    assert isinstance(self._inner, trio.abc.HalfCloseableStream)
                    await self._inner.send_eof()
                else:
                    await self._inner.send_all(chunk.data)
                    self._link._count_bytes(Direction.FORWARD, len(chunk.data))
                if not self._live():
                    return
                self._outgoing.popleft()
                self._outgoing_bytes -= len(chunk.data)
                self._notify()
                if chunk.cut_after:
                    self.cut("byte budget spent")
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._peer_broke()

    async def _read_pump(self) -> None:
        """Read ``inner`` as fast as the link carries data and queue it for receive_some."""
        connection = self._connection
        assert connection is not None
        try:
            while True:
                while self._incoming_bytes >= self._max_in_flight:
                    await self._lot.park()
                data = await self._inner.receive_some(self._segment_size)
                if not self._live():
                    return
                tx = connection.transmit(Direction.BACKWARD, trio.current_time(), len(data))
                if not data:
                    self._incoming.append(_Chunk(_Kind.EOF, tx.deliver_at))
                    self._notify()
                    return
                if tx.size:
                    chunk = _Chunk(_Kind.DATA, tx.deliver_at, bytes(data[: tx.size]), tx.cut_after)
                    self._incoming.append(chunk)
                    self._incoming_bytes += tx.size
                if tx.cut_after:
                    self._budget_cut_at = tx.deliver_at
                    self._notify()
                    return
                self._notify()
                await trio.sleep_until(tx.sent_at)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if self._live():
                self._incoming.append(_Chunk(_Kind.ERROR, trio.current_time()))
                self._peer_broke()


@asynccontextmanager
async def open_lossy_stream(
    inner: trio.abc.Stream,
    link: LossyLink | LinkProfile | None = None,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> AsyncIterator[LossyStream]:
    """Wrap ``inner`` in a running :class:`LossyStream`; close it on exit.

    On a normal exit the stream is closed gracefully (data in flight arrives first); when the
    body raises, it is closed at once.
    """
    stream = LossyStream(inner, link, segment_size=segment_size, max_in_flight=max_in_flight)
    async with trio.open_nursery() as nursery:
        await nursery.start(stream.run)
        try:
            yield stream
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        else:
            await stream.aclose()


@asynccontextmanager
async def open_lossy_stream_pair(
    link: LossyLink | LinkProfile | None = None,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> AsyncIterator[tuple[LossyStream, trio.abc.HalfCloseableStream]]:
    """An in-memory connection over a lossy link: ``(near, far)``.

    ``near`` is a running :class:`LossyStream` (the connecting side), ``far`` the plain other
    end of a ``trio.testing.memory_stream_pair()``; what ``near`` sends reaches ``far`` over the
    link (FORWARD) and the other way round (BACKWARD). When the link cuts the connection,
    ``far`` sees end-of-stream on receive and ``trio.BrokenResourceError`` on send.
    """
    near_end, far_end = trio.testing.memory_stream_pair()
    async with open_lossy_stream(
        near_end, link, segment_size=segment_size, max_in_flight=max_in_flight
    ) as near:
        yield near, far_end
