"""What the memory and the sqlite store share: metadata index, quota, counters, queries.

Both stores keep every bundle's metadata in a :class:`BundleIndex` (see its theory of operation)
and account space with a :class:`Quota`, so every query, ``can_accept``, ``reserve`` and
``statistics`` is implemented once, here. Subclasses implement how bytes are kept: ``put``,
``get``, ``update``, ``delete`` and ``close``, changing the index only once a change is final.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from types import TracebackType
from typing import Self

from .errors import BundleNotFoundError, StoreClosedError
from .index import BundleIndex
from .interface import PutItem
from .quota import Quota, Reservation
from .stored_bundle import BundleState, StoredBundle, StoreStatistics

__all__ = ["IndexedBundleStore"]


class IndexedBundleStore:
    """Base of the stores in this package (not a public extension point)."""

    def __init__(self, *, quota_bytes: int, quota_bundles: int | None) -> None:
        self._index = BundleIndex()
        self._quota = Quota(self._index, quota_bytes, quota_bundles)
        self._closed = False
        self._puts = 0
        self._duplicates = 0
        self._updates = 0
        self._deletes = 0
        self._commits = 0

    # -- helpers for subclasses -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the bundle store is closed")

    def _check_put(self, meta: StoredBundle, raw: bytes) -> bytes:
        """Validate a put's arguments; return ``raw`` as an immutable :class:`bytes`."""
        self._check_open()
        if meta.size != len(raw):
            raise ValueError(f"bundle {meta.key!r}: meta.size is {meta.size}, raw has {len(raw)}")
        return raw if type(raw) is bytes else bytes(raw)

    def _check_update(self, meta: StoredBundle) -> None:
        """Validate an update against the indexed record (raises if unknown or resized)."""
        self._check_open()
        old = self._index.get(meta.key)
        if old is None:
            raise BundleNotFoundError(f"no stored bundle {meta.key!r} to update")
        if old.size != meta.size:
            raise ValueError(
                f"bundle {meta.key!r}: size is fixed at {old.size}, update says {meta.size}"
            )

    def _check_put_many(self, items: Sequence[PutItem]) -> list[PutItem]:
        """Validate a batch's arguments (all before any is stored; a bad one releases every
        reservation); return the items with ``raw`` as immutable :class:`bytes`."""
        try:
            return [(meta, self._check_put(meta, raw), res) for meta, raw, res in items]
        except BaseException:
            for _, _, reservation in items:
                if reservation is not None:
                    reservation.release()
            raise

    @contextlib.contextmanager
    def _space_for(self, size: int, reservation: Reservation | None) -> Iterator[None]:
        """Hold ``size`` bytes for a put in progress (from ``reservation`` if given); give
        them back on exit. The subclass indexes the bundle before exit, so the space moves
        from reserved to stored without a gap."""
        if reservation is None:
            reservation = self._quota.reserve(size)
        else:
            try:
                reservation.grow(size)
            except BaseException:
                reservation.release()
                raise
        try:
            yield
        finally:
            reservation.release()

    def _duplicate(self, reservation: Reservation | None) -> bool:
        """Account a put of an already stored key; always ``False`` (put's return value)."""
        if reservation is not None:
            reservation.release()
        self._duplicates += 1
        return False

    # -- queries ----------------------------------------------------------------------------

    async def meta(self, key: str) -> StoredBundle | None:
        """The metadata of bundle ``key``, or ``None`` if it is not stored."""
        self._check_open()
        return self._index.get(key)

    async def contains(self, key: str) -> bool:
        """Whether bundle ``key`` is stored."""
        self._check_open()
        return key in self._index

    async def query(
        self,
        *,
        destination: str | None = None,
        destination_prefix: str | None = None,
        states: Collection[BundleState] | None = None,
        limit: int | None = None,
    ) -> list[StoredBundle]:
        """Bundles matching all given criteria, oldest ``received_at`` first (see
        :meth:`BundleStore.query`)."""
        self._check_open()
        return self._index.query(
            destination=destination,
            destination_prefix=destination_prefix,
            states=states,
            limit=limit,
        )

    async def expired(self, now: float, *, limit: int | None = None) -> list[StoredBundle]:
        """Bundles with ``expires_at <= now``, earliest first."""
        self._check_open()
        return self._index.expired(now, limit=limit)

    async def due_for_retry(self, now: float, *, limit: int | None = None) -> list[StoredBundle]:
        """Bundles with ``next_retry_at <= now``, earliest first."""
        self._check_open()
        return self._index.due_for_retry(now, limit=limit)

    async def next_deadline(self) -> float | None:
        """The earliest ``expires_at`` or ``next_retry_at`` of any stored bundle, or ``None``."""
        self._check_open()
        deadlines = [
            t for t in (self._index.next_expiry(), self._index.next_retry()) if t is not None
        ]
        return min(deadlines, default=None)

    # -- space and statistics ---------------------------------------------------------------

    def can_accept(self, size: int) -> bool:
        """Whether a bundle of ``size`` bytes fits the quota now."""
        return not self._closed and self._quota.fits(size)

    def reserve(self, size: int) -> Reservation:
        """Hold space for one bundle of ``size`` bytes; :class:`StoreFullError` if it won't fit."""
        self._check_open()
        return self._quota.reserve(size)

    def statistics(self) -> StoreStatistics:
        """A snapshot of contents and counters."""
        quota = self._quota
        return StoreStatistics(
            bundles=len(self._index),
            bytes=self._index.total_bytes,
            reserved_bytes=quota.reserved_bytes,
            quota_bytes=quota.quota_bytes,
            quota_bundles=quota.quota_bundles,
            by_state=self._index.count_by_state(),
            puts=self._puts,
            duplicates=self._duplicates,
            updates=self._updates,
            deletes=self._deletes,
            refused=quota.refused,
            commits=self._commits,
        )

    # -- lifetime ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Release everything; subclasses extend this."""
        self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
