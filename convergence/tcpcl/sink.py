"""Where the trio adapter puts incoming transfers: :class:`TransferSink` (one per transfer,
supplied by the link's owner through a :data:`SinkFactory`), the in-memory default
:class:`MemorySink`, and :class:`ReceiveBudget`, the memory shared by every link of a node for
octets read from connections and not yet taken by a sink.

Theory of operation
===================
The sans-IO session hands out each segment's data as it arrives (``reassemble=False``). The
link's reader passes it to the transfer's sink (``await sink.write(data)``) and only then
acknowledges the segment (RFC 9174 §5.2.3: an XFER_ACK "after the segment has been fully
processed"); while a sink writes, the reader does not read the connection, so TCP flow control
holds the peer back. The END segment's data is followed by ``finish()``; the transfer then goes
to the consumer (:meth:`TcpclLink.receive`), who reads it (``read()``) and, once it answered
the transfer, the sink is released (``release()``). A transfer that will not complete —
refused, the session ended first, or complete but never handed over — is abandoned instead
(``abandon()``): the sink may keep what it holds (e.g. as a bundle fragment, RFC 9171 §5.8)
or drop it.

Memory: the reader reserves budget for a whole segment before reading it (its length is in the
segment header), so every session that holds part of a segment can finish it; a session only
ever waits for budget while holding at most one small read. Sinks may take from the same budget
for data they keep in memory (:meth:`ReceiveBudget.try_acquire`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from .codes import XferRefuseReason
from .messages import ExtensionItem

__all__ = [
    "BudgetStatistics",
    "IncomingTransferStart",
    "MemorySink",
    "ReceiveBudget",
    "SinkFactory",
    "SinkRefusal",
    "TransferSink",
]

logger = logging.getLogger(__name__)


class SinkRefusal(Exception):
    """Raised by :meth:`TransferSink.write` to refuse the transfer (XFER_REFUSE with
    ``reason``; RFC 9174 §5.2.4 allows it at any segment)."""

    def __init__(self, reason: XferRefuseReason, message: str = "") -> None:
        super().__init__(message or reason.name)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IncomingTransferStart:
    """What is known of an incoming transfer when its first segment arrives."""

    transfer_id: int
    """The peer's Transfer ID."""
    total_length: int | None
    """The Transfer Length extension's value (RFC 9174 §5.2.5.1), if the peer sent one."""
    extensions: tuple[ExtensionItem, ...]
    """The transfer extension items of the START segment."""
    peer_node_id: str
    """The peer's Node ID from its SESS_INIT."""
    peer_extensions: tuple[ExtensionItem, ...] = ()
    """The session extension items of the peer's SESS_INIT (what it said it does)."""


class TransferSink(Protocol):
    """Takes the data of one incoming transfer (see the module docstring)."""

    async def write(self, data: bytes | memoryview) -> None:
        """Take the next segment's data; return once it is safe, since the segment is then
        acknowledged. ``data`` may be a view of the connection's buffer: copy what is kept.
        Raise :class:`SinkRefusal` to refuse the transfer."""
        ...

    async def finish(self) -> None:
        """The last segment's data was written: the transfer is complete."""
        ...

    async def read(self) -> bytes:
        """The whole transfer's octets (after :meth:`finish`)."""
        ...

    async def release(self) -> None:
        """The consumer is done with the complete transfer: free what it holds."""
        ...

    async def abandon(self, acknowledged: int) -> None:
        """The transfer will not be completed and consumed; ``acknowledged`` octets of it were
        acknowledged to the peer (the sink may hold more). Keep what can be kept, free the
        rest. Must not raise (errors are logged)."""
        ...


SinkFactory = Callable[[IncomingTransferStart], "TransferSink | XferRefuseReason"]
"""Called when an incoming transfer starts: its sink, or a reason to refuse it at once."""


class MemorySink:
    """Keeps the transfer in memory (the default sink)."""

    __slots__ = ("_pieces", "_size")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """Octets held."""
        return self._size

    async def write(self, data: bytes | memoryview) -> None:
        """Keep a copy of ``data`` (no copy when it is ``bytes`` already)."""
        if data:
            self._pieces.append(data if type(data) is bytes else bytes(data))
            self._size += len(data)

    async def finish(self) -> None:
        """Nothing to do: everything is in memory."""

    async def read(self) -> bytes:
        """The octets as one ``bytes`` (no copy when they arrived as one piece)."""
        return self.data()

    def data(self) -> bytes:
        """The octets written so far, joined."""
        pieces = self._pieces
        if len(pieces) == 1:
            return pieces[0]
        joined = b"".join(pieces)
        self._pieces = [joined] if joined else []
        return joined

    async def release(self) -> None:
        """Nothing to do: the data goes with the sink (and can still be read)."""

    async def abandon(self, acknowledged: int) -> None:
        """Forget the data."""
        self._pieces = []
        self._size = 0


def memory_sink(start: IncomingTransferStart) -> TransferSink:
    """The default :data:`SinkFactory`: every transfer in memory."""
    return MemorySink()


@dataclass(frozen=True, slots=True)
class BudgetStatistics:
    """A snapshot of a :class:`ReceiveBudget`."""

    limit: int
    """Octets that may be held in total."""
    in_use: int
    """Octets held now."""
    peak: int
    """Most octets held at once since creation."""
    waits: int
    """Times a link waited for budget."""


class ReceiveBudget:
    """Octets of incoming transfers held in memory by all the links (and sinks) that share it.

    :meth:`acquire` waits, first come first served, until the octets fit; a single request
    larger than the limit is granted once nothing else is held, so it cannot wait forever."""

    __slots__ = ("_in_use", "_limit", "_peak", "_waiters", "_waits")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the receive budget must be at least 1 octet, got {limit}")
        self._limit = limit
        self._in_use = 0
        self._peak = 0
        self._waits = 0
        self._waiters: deque[tuple[int, trio.Event]] = deque()

    @property
    def limit(self) -> int:
        """Octets that may be held in total."""
        return self._limit

    @property
    def in_use(self) -> int:
        """Octets held now."""
        return self._in_use

    def _fits(self, octets: int) -> bool:
        return self._in_use + octets <= self._limit or self._in_use == 0

    def try_acquire(self, octets: int) -> bool:
        """Take ``octets`` if they fit now and nobody waits; whether they were taken."""
        if octets <= 0:
            return True
        if self._waiters or not self._fits(octets):
            return False
        self._take(octets)
        return True

    async def acquire(self, octets: int) -> None:
        """Take ``octets``, waiting until they fit (after the requests made before)."""
        if octets <= 0 or (not self._waiters and self._fits(octets)):
            self._take(max(0, octets))
            await trio.lowlevel.checkpoint()
            return
        self._waits += 1
        granted = trio.Event()
        entry = (octets, granted)
        self._waiters.append(entry)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self.release(octets)
            else:
                self._waiters.remove(entry)
                self._grant()
            raise

    def release(self, octets: int) -> None:
        """Give back ``octets`` taken earlier."""
        if octets <= 0:
            return
        self._in_use = max(0, self._in_use - octets)
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters and self._fits(waiters[0][0]):
            octets, granted = waiters.popleft()
            self._take(octets)
            granted.set()

    def _take(self, octets: int) -> None:
        self._in_use += octets
        self._peak = max(self._peak, self._in_use)

    def statistics(self) -> BudgetStatistics:
        """A snapshot of the budget."""
        return BudgetStatistics(self._limit, self._in_use, self._peak, self._waits)
