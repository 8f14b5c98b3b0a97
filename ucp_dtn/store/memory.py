"""A bundle store that lives in memory: for tests and throwaway nodes.

Same contract as the persistent store except durability: everything is gone when the process
ends. Every mutation is a trio checkpoint (like a real store's I/O), so a loop of puts lets other
tasks run.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from .errors import StoreError
from .indexed import IndexedBundleStore
from .interface import PutItem
from .quota import Reservation
from .stored_bundle import StoredBundle

__all__ = ["MemoryBundleStore"]


class MemoryBundleStore(IndexedBundleStore):
    """Bundles in a dict; at most ``quota_bytes`` bytes (and ``quota_bundles`` bundles)."""

    def __init__(self, quota_bytes: int, *, quota_bundles: int | None = None) -> None:
        super().__init__(quota_bytes=quota_bytes, quota_bundles=quota_bundles)
        self._raw: dict[str, bytes] = {}

    async def put(
        self, meta: StoredBundle, raw: bytes, *, reservation: Reservation | None = None
    ) -> bool:
        """Store ``raw`` under ``meta.key``; ``False`` if the key was already stored."""
        raw = self._check_put(meta, raw)
        await trio.lowlevel.checkpoint()
        return self._put_now(meta, raw, reservation)

    def _put_now(self, meta: StoredBundle, raw: bytes, reservation: Reservation | None) -> bool:
        self._check_open()
        if meta.key in self._index:
            return self._duplicate(reservation)
        with self._space_for(len(raw), reservation):
            self._raw[meta.key] = raw
            self._index.add(meta)
            self._puts += 1
        return True

    async def put_many(self, items: Sequence[PutItem]) -> list[bool | StoreError]:
        """:meth:`put` of each item (one checkpoint for all)."""
        checked = self._check_put_many(items)
        await trio.lowlevel.checkpoint()
        results: list[bool | StoreError] = []
        for meta, raw, reservation in checked:
            try:
                results.append(self._put_now(meta, raw, reservation))
            except StoreError as exc:
                results.append(exc)
        return results

    async def get(self, key: str) -> bytes | None:
        """The raw bytes of bundle ``key``, or ``None``."""
        self._check_open()
        return self._raw.get(key)

    async def update(self, meta: StoredBundle) -> None:
        """Replace the metadata of stored bundle ``meta.key``."""
        self._check_update(meta)
        await trio.lowlevel.checkpoint()
        self._check_update(meta)
        self._index.replace(meta)
        self._updates += 1

    async def delete(self, key: str) -> bool:
        """Remove bundle ``key``; ``False`` if it was not stored."""
        self._check_open()
        await trio.lowlevel.checkpoint()
        self._check_open()
        return self._delete_now(key)

    def _delete_now(self, key: str) -> bool:
        if self._index.remove(key) is None:
            return False
        del self._raw[key]
        self._deletes += 1
        return True

    async def delete_many(self, keys: Sequence[str]) -> list[bool]:
        """:meth:`delete` of each key (one checkpoint for all)."""
        self._check_open()
        await trio.lowlevel.checkpoint()
        self._check_open()
        return [self._delete_now(key) for key in keys]

    async def delete_later(self, keys: Sequence[str]) -> list[bool]:
        """:meth:`delete_many` (nothing is on disk here, so nothing is left for later)."""
        return await self.delete_many(keys)

    async def flush(self) -> None:
        """Nothing to commit (see :meth:`delete_later`)."""
        self._check_open()
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        """Refuse further use (the bundles go with the object). Idempotent."""
        self._closed = True
