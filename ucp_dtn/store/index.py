"""In-memory index of stored bundles' metadata: the query engine every store shares.

Theory of operation: both stores keep every bundle's :class:`StoredBundle` (never its bytes) in a
:class:`BundleIndex`. The persistent store loads it once when it opens and changes it only after
the matching transaction has committed, so the index always describes what is durably stored.
That makes every query the agent asks on its hot path (``contains`` for de-duplication, "what
waits for this neighbour", "what expired", "which custody timer is due", counts and bytes) a
dictionary or heap operation on the event loop instead of a round trip to a database thread
that may be queued behind an fsync.

Structures:

* ``key → StoredBundle`` (the records themselves);
* ``destination → {keys}`` so a prefix query scans distinct destinations, not bundles;
* two :class:`_DeadlineQueue` heaps, for ``expires_at`` and ``next_retry_at``, with lazy
  deletion: a heap entry is valid only while the live table still maps its key to its time;
  stale entries are dropped when met and the heap is rebuilt when they outnumber live ones;
* per-state counts and byte totals, kept incrementally.

This module is pure (no I/O, no clock: every time is an argument).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator

from .stored_bundle import BundleState, StoredBundle

__all__ = ["BundleIndex"]


class _DeadlineQueue:
    """Keys ordered by a deadline, with O(log n) set/clear and cheap "due by ``now``"."""

    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._live: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._live)

    def set(self, key: str, when: float | None) -> None:
        """Schedule ``key`` at ``when`` (replacing any earlier time); ``None`` unschedules."""
        if when is None:
            self._live.pop(key, None)
        elif self._live.get(key) != when:
            self._live[key] = when
            heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [(when, key) for key, when in self._live.items()]
            heapq.heapify(self._heap)

    def due(self, now: float, limit: int | None) -> list[str]:
        """Keys whose deadline is ``<= now``, earliest first, at most ``limit`` of them."""
        heap, live = self._heap, self._live
        found: list[tuple[float, str]] = []
        seen: set[str] = set()
        while heap and heap[0][0] <= now and (limit is None or len(found) < limit):
            when, key = heapq.heappop(heap)
            if live.get(key) == when and key not in seen:
                seen.add(key)
                found.append((when, key))
        for entry in found:
            heapq.heappush(heap, entry)
        return [key for _, key in found]

    def earliest(self) -> float | None:
        """The earliest live deadline, or ``None`` when nothing is scheduled."""
        heap, live = self._heap, self._live
        while heap and live.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None


class BundleIndex:
    """Metadata of every stored bundle, with the queries the agent needs."""

    __slots__ = (
        "_by_destination",
        "_by_key",
        "_bytes",
        "_bytes_by_state",
        "_count_by_state",
        "_expiry",
        "_retry",
    )

    def __init__(self) -> None:
        self._by_key: dict[str, StoredBundle] = {}
        self._by_destination: dict[str, set[str]] = {}
        self._expiry = _DeadlineQueue()
        self._retry = _DeadlineQueue()
        self._bytes = 0
        self._count_by_state: dict[BundleState, int] = dict.fromkeys(BundleState, 0)
        self._bytes_by_state: dict[BundleState, int] = dict.fromkeys(BundleState, 0)

    # -- contents ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[StoredBundle]:
        return iter(list(self._by_key.values()))

    def get(self, key: str) -> StoredBundle | None:
        """The record stored under ``key``, or ``None``."""
        return self._by_key.get(key)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of all indexed bundles."""
        return self._bytes

    def count_by_state(self) -> dict[BundleState, int]:
        """Number of bundles per state (a fresh dict, every state present)."""
        return dict(self._count_by_state)

    def bytes_by_state(self) -> dict[BundleState, int]:
        """Bytes per state (a fresh dict, every state present)."""
        return dict(self._bytes_by_state)

    # -- changes ----------------------------------------------------------------------------

    def add(self, meta: StoredBundle) -> None:
        """Index a new bundle. ``meta.key`` must not be indexed yet."""
        if meta.key in self._by_key:
            raise ValueError(f"bundle {meta.key!r} is already indexed")
        self._by_key[meta.key] = meta
        self._link(meta)

    def replace(self, meta: StoredBundle) -> StoredBundle:
        """Swap the record of an indexed bundle for ``meta``; return the old record.

        Raises :class:`KeyError` if the key is not indexed and :class:`ValueError` if the size
        changed (a bundle's bytes never change, so neither does its size).
        """
        old = self._by_key[meta.key]
        if old.size != meta.size:
            raise ValueError(
                f"bundle {meta.key!r}: size is fixed at {old.size}, update says {meta.size}"
            )
        self._unlink(old)
        self._by_key[meta.key] = meta
        self._link(meta)
        return old

    def remove(self, key: str) -> StoredBundle | None:
        """Forget ``key``; return its record, or ``None`` if it was not indexed."""
        old = self._by_key.pop(key, None)
        if old is not None:
            self._unlink(old)
            self._expiry.set(key, None)
            self._retry.set(key, None)
        return old

    def _link(self, meta: StoredBundle) -> None:
        self._by_destination.setdefault(meta.destination, set()).add(meta.key)
        self._expiry.set(meta.key, meta.expires_at)
        self._retry.set(meta.key, meta.next_retry_at)
        self._bytes += meta.size
        self._count_by_state[meta.state] = self._count_by_state.get(meta.state, 0) + 1
        self._bytes_by_state[meta.state] = self._bytes_by_state.get(meta.state, 0) + meta.size

    def _unlink(self, meta: StoredBundle) -> None:
        keys = self._by_destination[meta.destination]
        keys.discard(meta.key)
        if not keys:
            del self._by_destination[meta.destination]
        self._bytes -= meta.size
        self._count_by_state[meta.state] -= 1
        self._bytes_by_state[meta.state] -= meta.size

    # -- queries ----------------------------------------------------------------------------

    def query(
        self,
        *,
        destination: str | None = None,
        destination_prefix: str | None = None,
        states: Collection[BundleState] | None = None,
        limit: int | None = None,
    ) -> list[StoredBundle]:
        """Bundles matching every given criterion, oldest ``received_at`` first (ties by key).

        ``destination`` matches the EID text exactly; ``destination_prefix`` is a plain string
        prefix, so pass one that ends at a component boundary (``"dtn://node/"``, ``"ipn:5."``)
        or ``dtn://node`` would also match ``dtn://node2/...``. ``states`` keeps only bundles in
        one of those states. ``limit`` caps the number returned.
        """
        if destination is not None:
            keys: Collection[str] = self._by_destination.get(destination, ())
            if destination_prefix is not None and not destination.startswith(destination_prefix):
                keys = ()
        elif destination_prefix is not None:
            keys = [
                key
                for dest, dest_keys in self._by_destination.items()
                if dest.startswith(destination_prefix)
                for key in dest_keys
            ]
        else:
            keys = self._by_key.keys()
        by_key = self._by_key
        found = [by_key[key] for key in keys]
        if states is not None:
            wanted = frozenset(states)
            found = [meta for meta in found if meta.state in wanted]
        found.sort(key=lambda meta: (meta.received_at, meta.key))
        return found if limit is None else found[:limit]

    def expired(self, now: float, *, limit: int | None = None) -> list[StoredBundle]:
        """Bundles with ``expires_at <= now``, earliest expiry first."""
        return [self._by_key[key] for key in self._expiry.due(now, limit)]

    def due_for_retry(self, now: float, *, limit: int | None = None) -> list[StoredBundle]:
        """Bundles with ``next_retry_at <= now``, earliest first."""
        return [self._by_key[key] for key in self._retry.due(now, limit)]

    def next_expiry(self) -> float | None:
        """The earliest ``expires_at`` of any stored bundle, or ``None`` when empty."""
        return self._expiry.earliest()

    def next_retry(self) -> float | None:
        """The earliest ``next_retry_at`` of any stored bundle, or ``None`` when none is set."""
        return self._retry.earliest()
