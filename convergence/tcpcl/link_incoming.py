"""The receive side of a :class:`~convergence.tcpcl.link.TcpclLink`: the peer's transfers on
their way from the session to the link's consumer.

* A transfer that starts is offered to ``LinkConfig.transfer_filter``, then to
  ``LinkConfig.sink_factory`` (:mod:`convergence.tcpcl.sink`; in memory by default); either may
  refuse it.
* The link's reader hands the session's segment events over (:meth:`IncomingTransfers.on_event`)
  and, after each read, :meth:`~IncomingTransfers.drain`\\ s them: each segment's data goes to
  its sink and only then is the segment acknowledged, so what the peer sees acknowledged is
  what the sink holds. A sink that fails or refuses ends its transfer with XFER_REFUSE.
* Complete transfers wait in a queue of at most ``LinkConfig.incoming_queue`` for
  :meth:`~IncomingTransfers.receive`; while it is full the reader does not read
  (:meth:`~IncomingTransfers.wait_for_room`), so the TCP window closes (backpressure). Their
  final XFER_ACK waits for :meth:`IncomingBundleTransfer.accept`.
* With a shared :class:`~convergence.tcpcl.sink.ReceiveBudget`, the reader reserves memory for
  a whole message before reading more of it (:meth:`~IncomingTransfers.reserve`) and gives
  back what it no longer needs (:meth:`~IncomingTransfers.settle_budget`).
* When the session is over, every transfer that did not reach the consumer goes back to its
  sink (:meth:`~IncomingTransfers.abandon_all`), which may keep what was acknowledged.

Private to :mod:`convergence.tcpcl`; the session calls go through the link's ``call`` (which
handles the events they produce and wakes the writer).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable

import trio

from .codes import XferRefuseReason
from .errors import LocalProtocolError
from .events import (
    Event,
    IncomingTransfer,
    IncomingTransferAborted,
    SegmentReceived,
    TransferReceived,
)
from .link_config import LinkConfig
from .link_errors import LinkClosedError
from .link_transfers import IncomingBundleTransfer, TransferStatus
from .negotiation import SessionParameters
from .session import Session
from .sink import IncomingTransferStart, MemorySink, SinkRefusal, TransferSink

__all__ = ["MAX_RECEIVE", "IncomingTransfers", "SessionCall"]

logger = logging.getLogger(__name__)

#: ``call(method, *args)``: the link calls a session method, then handles its events and
#: wakes its writer.
SessionCall = Callable[..., None]

_MIB = 1024 * 1024
#: Largest ``receive_some`` of a link.
MAX_RECEIVE = 4 * _MIB
#: Largest read while the length of the message being received is not known yet (with a
#: receive budget: the most a link holds while it waits for budget).
_HEAD_RECEIVE = 64 * 1024


class IncomingTransfers:
    """The peer's transfers of one link: those still arriving (each with its sink) and the
    complete ones waiting for the consumer."""

    def __init__(
        self,
        session: Session,
        config: LinkConfig,
        closed: trio.Event,
        call: SessionCall,
        peer_text: Callable[[], str],
    ) -> None:
        self._session = session
        self._config = config
        self._closed = closed  # the link's: set once the session has ended
        self._call = call
        self._peer_text = peer_text
        self._ready: deque[IncomingBundleTransfer] = deque()
        self._inbound: dict[int, _Inbound] = {}  # the peer's transfers with an open sink
        self._reception: deque[Event] = deque()  # segment events waiting for the reader
        self._budget = config.receive_budget
        self._budget_held = 0
        self._consumers = trio.lowlevel.ParkingLot()  # tasks waiting in receive()
        self._queue_room = trio.lowlevel.ParkingLot()  # the reader, while _ready is full

    @property
    def budgeted(self) -> bool:
        """Whether reads are bounded by a shared receive budget."""
        return self._budget is not None

    @property
    def queued(self) -> int:
        """Complete transfers waiting for the consumer."""
        return len(self._ready)

    # == the consumer's side ===============================================================

    async def receive(self) -> IncomingBundleTransfer:
        """The next complete transfer (waits for it).

        :raises LinkClosedError: the session ended and every received transfer was taken.
        """
        await trio.lowlevel.checkpoint()
        while not self._ready:
            if self._closed.is_set():
                raise LinkClosedError("the session has ended")
            await self._consumers.park()
        transfer = self._ready.popleft()
        if self._ready:
            self._consumers.unpark(count=1)
        self._queue_room.unpark_all()
        return transfer

    async def receive_many(self, limit: int) -> list[IncomingBundleTransfer]:
        """Every complete transfer waiting now, at most ``limit`` (at least one: waits for it).

        :raises LinkClosedError: the session ended and every received transfer was taken.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        await trio.lowlevel.checkpoint()
        while not self._ready:
            if self._closed.is_set():
                raise LinkClosedError("the session has ended")
            await self._consumers.park()
        ready = self._ready
        taken = [ready.popleft() for _ in range(min(limit, len(ready)))]
        if ready:
            self._consumers.unpark(count=1)
        self._queue_room.unpark_all()
        return taken

    def wake_all(self) -> None:
        """The session ended: wake the consumers and the reader."""
        self._consumers.unpark_all()
        self._queue_room.unpark_all()

    def statuses(self) -> list[TransferStatus]:
        """The transfers still arriving: octets their sinks took of how many."""
        return [
            TransferStatus(
                False, transfer_id, inbound.written, inbound.start.total_length, inbound.started
            )
            for transfer_id, inbound in self._inbound.items()
        ]

    # == the session's side (called while the link handles events) ========================

    def open(self, event: IncomingTransfer, params: SessionParameters | None) -> None:
        """A transfer starts: ask the filter and the sink factory whether to take it."""
        config = self._config
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

    def on_event(self, event: SegmentReceived | TransferReceived | IncomingTransferAborted) -> None:
        """Queue a segment, completion or abort of one of our transfers for :meth:`drain`."""
        if event.transfer_id in self._inbound:
            self._reception.append(event)

    # == the reader's side =================================================================

    async def wait_for_room(self) -> None:
        """Wait while the queue of complete transfers is full (and the session runs)."""
        limit = self._config.incoming_queue
        while len(self._ready) >= limit and not self._closed.is_set():
            await self._queue_room.park()

    async def reserve(self, size: int) -> int:
        """How much the next read may take (``size`` without a budget). With one, reserve
        memory for the whole message being received before reading more of it (its length is
        known once its header is in): then a link never waits for budget while holding part of
        a segment it could not finish."""
        budget = self._budget
        if budget is None:
            return size
        session = self._session
        need = session.receive_need()
        if need > 1:
            size = min(need, MAX_RECEIVE)
        else:
            size = min(_HEAD_RECEIVE, max(1024, budget.limit // 16))
        target = session.buffered + max(need, size)
        if target > self._budget_held:
            await budget.acquire(target - self._budget_held)
            self._budget_held = target
        return size

    def settle_budget(self) -> None:
        """Give back the budget beyond what the message being received still needs."""
        budget = self._budget
        if budget is None:
            return
        session = self._session
        keep = session.buffered + session.receive_need() if session.buffered else 0
        if self._closed.is_set():
            keep = 0
        if keep < self._budget_held:
            budget.release(self._budget_held - keep)
            self._budget_held = keep

    async def drain(self) -> None:
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
                # The session ended: abandon_all hands it back to its sink once the link is
                # down (shielded; keeping a long prefix may take a while).
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
                self._refuse(event.transfer_id, _refusal_of(exc))
                await _release(inbound.sink)
                continue
            self._ready.append(
                IncomingBundleTransfer(
                    self._resolve,
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
            self._refuse(transfer_id, _refusal_of(exc))
            await _release(inbound.sink)
            return
        inbound.written = event.received_length
        if not event.end and not self._closed.is_set():
            inbound.acked = event.received_length
            self._call(self._session.ack_segments, transfer_id, event.received_length)

    def _refuse(self, transfer_id: int, reason: XferRefuseReason) -> None:
        with contextlib.suppress(LocalProtocolError):  # already resolved by the session
            self._call(self._session.refuse_transfer, transfer_id, reason)

    def _resolve(self, transfer_id: int, refusal: XferRefuseReason | None) -> None:
        """The consumer accepted (``None``) or refused a complete transfer."""
        if refusal is None:
            self._call(self._session.ack_transfer, transfer_id)
        else:
            self._call(self._session.refuse_transfer, transfer_id, refusal)

    async def abandon_all(self) -> None:
        """The session is over: every transfer that did not reach the consumer goes back to
        its sink (which may keep what was acknowledged, or all of a complete one). Until then,
        :meth:`receive` still hands out complete transfers."""
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
