"""Forwarding (RFC 9171 §5.4): which stored bundle goes to which neighbour, and sending it.

Theory of operation
-------------------
The store is the durable truth; :class:`ForwardQueue` is the agent's in-memory view of the
stored bundles in state ``PENDING_FORWARD`` that are not on the wire right now. Each bundle is
assigned to the neighbour :meth:`RoutingTable.next_hop` picks for it (or to nobody: it waits,
store-and-forward), in per-neighbour FIFO queues. Answers are cached per (destination, previous
node) until the routing table's version moves; then every waiting bundle is assigned again
(:meth:`ForwardQueue.sync`), which is how bundles waiting for a node flow as soon as a session
with it — or with a node that has a route to it — comes up.

For every established session, :func:`run_link_sender` takes bundles from its neighbour's queue
(oldest first), applies the last-moment forwarding edits (§5.4 step 4: the Bundle Age Block),
hands them to the session (several transfers pipelined, at most ``window`` unacknowledged) and
feeds the outcomes back: acknowledged → the agent's ``forwarded`` step (delete, or wait for a
custody signal); refused → kept and retried, or deleted, depending on the reason; session lost
→ the unacknowledged ones simply go back to the queue (they never left the store).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import trio

from bpv7 import EndpointID

from .routing import RoutingTable

__all__ = ["ForwardQueue", "RawCache", "SendWindow", "backoff_delay"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    destination: EndpointID
    previous: EndpointID | None
    hop: EndpointID | None


class ForwardQueue:
    """Bundles waiting to be forwarded, assigned to next hops (see the module docstring)."""

    def __init__(self, routing: RoutingTable, clock: Callable[[], float]) -> None:
        self._routing = routing
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._by_hop: dict[EndpointID, OrderedDict[str, None]] = {}
        self._unrouted: dict[str, None] = {}
        self._lots: dict[EndpointID, trio.lowlevel.ParkingLot] = {}
        self._cache: dict[tuple[EndpointID, EndpointID | None], EndpointID | None] = {}
        self._version = routing.version

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def unrouted(self) -> int:
        """Bundles with no usable route now."""
        return len(self._unrouted)

    def is_routed(self, key: str) -> bool:
        """Whether ``key`` is queued for a neighbour (rather than waiting for a route)."""
        entry = self._entries.get(key)
        return entry is not None and entry.hop is not None

    def waiting_for(self, hop: EndpointID) -> int:
        """Bundles assigned to neighbour ``hop``."""
        return len(self._by_hop.get(hop, ()))

    def waiting_by_hop(self) -> dict[EndpointID, int]:
        """Bundles assigned to each neighbour that has any (as of the last :meth:`sync`)."""
        return {hop: len(queue) for hop, queue in self._by_hop.items() if queue}

    def _next_hop(self, destination: EndpointID, previous: EndpointID | None) -> EndpointID | None:
        cache_key = (destination, previous)
        try:
            return self._cache[cache_key]
        except KeyError:
            pass
        hop = self._routing.next_hop(
            destination, now=self._clock(), exclude=() if previous is None else (previous,)
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[cache_key] = hop
        return hop

    def _place(self, key: str, entry: _Entry, *, front: bool) -> None:
        hop = self._next_hop(entry.destination, entry.previous)
        entry.hop = hop
        if hop is None:
            self._unrouted[key] = None
            return
        target = self._by_hop.setdefault(hop, OrderedDict())
        target[key] = None
        if front:
            target.move_to_end(key, last=False)
        lot = self._lots.get(hop)
        if lot is not None:
            lot.unpark_all()

    def add(
        self,
        key: str,
        destination: EndpointID,
        previous: EndpointID | None = None,
        *,
        front: bool = False,
    ) -> None:
        """Queue bundle ``key`` (at the back, or at the ``front`` when it was taken and is put
        back). Adding a queued key again moves it."""
        self.sync()
        self.remove(key)
        entry = _Entry(destination, previous, None)
        self._entries[key] = entry
        self._place(key, entry, front=front)

    def remove(self, key: str) -> bool:
        """Unqueue ``key``; ``False`` if it was not queued."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        if entry.hop is None:
            self._unrouted.pop(key, None)
        else:
            queue = self._by_hop.get(entry.hop)
            if queue is not None:
                queue.pop(key, None)
        return True

    def sync(self) -> None:
        """Re-assign every waiting bundle if the routing table changed since the last look."""
        if self._routing.version == self._version:
            return
        self._version = self._routing.version
        self._cache.clear()
        order = list(self._entries.items())
        self._by_hop = {}
        self._unrouted = {}
        for key, entry in order:
            self._place(key, entry, front=False)
        for lot in self._lots.values():
            lot.unpark_all()

    async def take(self, hop: EndpointID) -> tuple[str, EndpointID, EndpointID | None]:
        """Wait for the next bundle assigned to neighbour ``hop``; unqueue and return it as
        ``(key, destination, previous node)``. The caller puts it back with :meth:`add` if it
        could not be sent."""
        while True:
            self.sync()
            queue = self._by_hop.get(hop)
            if queue:
                key, _ = queue.popitem(last=False)
                entry = self._entries.pop(key)
                return key, entry.destination, entry.previous
            lot = self._lots.get(hop)
            if lot is None:
                lot = self._lots[hop] = trio.lowlevel.ParkingLot()
            await lot.park()


class RawCache:
    """Bytes of recently stored bundles, so forwarding them needs no read from disk.

    Bounded by total size; the oldest entries go first. Purely an optimisation: a miss reads
    the store."""

    __slots__ = ("_bytes", "_entries", "_limit")

    def __init__(self, limit_bytes: int = 4 * 1024 * 1024) -> None:
        self._limit = limit_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def put(self, key: str, raw: bytes) -> None:
        """Remember ``raw`` under ``key`` (if it is not too large)."""
        if len(raw) > self._limit // 8:
            return
        self.drop(key)
        self._entries[key] = raw
        self._bytes += len(raw)
        while self._bytes > self._limit:
            _, old = self._entries.popitem(last=False)
            self._bytes -= len(old)

    def get(self, key: str) -> bytes | None:
        """The cached bytes of ``key``, or ``None``."""
        return self._entries.get(key)

    def drop(self, key: str) -> None:
        """Forget ``key``."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)


class SendWindow:
    """The transfers of one session in flight (sent, not yet acknowledged or refused): at most
    ``size`` of them — :meth:`acquire` before starting one, :meth:`release` when it ended,
    :meth:`drained` waits until none is left — and at most ``octets`` of their bundles
    (:meth:`take_bytes`, :meth:`give_bytes`; one bundle always fits)."""

    __slots__ = ("_bytes", "_free", "_free_bytes", "_lot", "_size")

    def __init__(self, size: int, octets: int) -> None:
        self._size = size
        self._free = size
        self._bytes = octets
        self._free_bytes = octets
        self._lot = trio.lowlevel.ParkingLot()

    async def take_bytes(self, octets: int) -> None:
        """Wait until ``octets`` more bundle octets may be in flight, and take them."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while self._free_bytes < min(octets, self._bytes):
            await self._lot.park()
        self._free_bytes -= octets

    def give_bytes(self, octets: int) -> None:
        """Give back octets taken with :meth:`take_bytes`."""
        self._free_bytes += octets
        self._lot.unpark_all()

    async def acquire(self) -> None:
        """Wait for a free place and take it."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._free:
            await self._lot.park()
        self._free -= 1

    def release(self) -> None:
        """Give back a place taken with :meth:`acquire`."""
        self._free += 1
        self._lot.unpark_all()

    async def drained(self) -> None:
        """Wait until every acquired place was released."""
        while self._free < self._size:
            await self._lot.park()


def backoff_delay(attempt: int, *, base: float = 0.5, limit: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): doubling, capped."""
    if attempt <= 0:
        return 0.0
    return min(limit, base * math.pow(2, min(attempt - 1, 30)))
