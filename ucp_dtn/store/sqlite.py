"""The persistent bundle store: sqlite (WAL) for metadata and small bundles, files for large ones.

Theory of operation
-------------------
The disk work is in :class:`~.database.BundleDatabase` (synchronous, see its module for the
layout and what "durable" means); this module is the trio shell around it.

* All blocking calls go through ``trio.to_thread.run_sync``: writes through a
  ``CapacityLimiter(1)`` on the writer connection, reads (``get``) through another on a separate
  reader connection, so reading a bundle to forward it never waits behind an fsync.
* Group commit: a mutation appends a ticket to a queue and takes the commit lock. The task that
  gets the lock and finds its ticket still queued becomes the leader: it hands the *whole* queue
  to one ``BundleDatabase.apply`` call (one transaction, one fsync), then applies the outcomes
  to the in-memory index and wakes every ticket's owner. Owners whose ticket was committed by an
  earlier leader just pass through the lock. Under load, groups grow by themselves; with a
  single writer each put is its own transaction.
* The index changes only after a commit, so queries show durable state only.
* Cancellation: a ticket not yet taken by a leader is withdrawn; once taken, its owner waits
  (shielded, at most one group commit) for the outcome before re-raising ``Cancelled``, so the
  index, quota and disk never disagree.
* Two puts of the same key: the second waits for the first, then returns ``False`` (or stores
  its copy if the first failed).
* Deletions that need not be waited for (:meth:`SqliteBundleStore.delete_later`: a bundle
  delivered, forwarded or released by a custody signal) leave the index at once and wait in a
  list that the next leader commits *first*, ahead of its queue (so a later put of the same key
  follows its deletion), or :meth:`SqliteBundleStore.flush` does. They cost no thread round
  trip of their own when other commits follow; until committed, a crash brings the bundle back
  (sent or delivered again: a duplicate, never a loss).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .blobfiles import FileWrite
from .database import BundleDatabase, DeleteOperation, Operation, PutOperation, UpdateOperation
from .errors import StoreClosedError, StoreError, StoreFullError
from .indexed import IndexedBundleStore
from .interface import PutItem
from .quota import Reservation
from .stored_bundle import StoredBundle

__all__ = ["DEFAULT_INLINE_LIMIT", "SqliteBundleStore"]

logger = logging.getLogger(__name__)

DEFAULT_INLINE_LIMIT = 64 * 1024
"""Bundles up to this many bytes are kept inside the database; larger ones in files."""


@dataclass(slots=True, eq=False)
class _Ticket:
    """One queued mutation and who waits for it."""

    op: Operation
    taken: bool = False
    """A leader has taken it into a group: it will complete, cancellation or not."""
    done: trio.Event = field(default_factory=trio.Event)
    """Set when the outcome is in ``op`` and applied to the index (or it was withdrawn)."""
    later: bool = False
    """A deletion from :meth:`SqliteBundleStore.delete_later`: already out of the index."""


class SqliteBundleStore(IndexedBundleStore):
    """A durable bundle store in one directory. Create it with :meth:`open`."""

    def __init__(
        self,
        database: BundleDatabase,
        *,
        quota_bytes: int,
        quota_bundles: int | None,
        inline_limit: int,
    ) -> None:
        """Wrap an open database (use :meth:`open`, which also loads and reconciles it)."""
        super().__init__(quota_bytes=quota_bytes, quota_bundles=quota_bundles)
        self._database = database
        self._inline_limit = inline_limit
        self._queue: list[_Ticket] = []
        self._commit_lock = trio.Lock()
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)
        self._inflight: dict[str, _Ticket] = {}
        self._later: list[_Ticket] = []  # deletions out of the index, not yet committed

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        quota_bytes: int,
        quota_bundles: int | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        max_database_bytes: int | None = None,
        file_write: FileWrite = os.write,
    ) -> SqliteBundleStore:
        """Open (or create) the store in directory ``path``, reconcile it after a crash and
        load its metadata.

        ``quota_bytes``/``quota_bundles`` limit the stored bundle bytes/count (bundles already
        stored are kept even if they exceed a lowered quota). Bundles larger than
        ``inline_limit`` bytes go to files. ``max_database_bytes`` caps the sqlite file itself
        (sqlite ``max_page_count``), and ``file_write`` replaces :func:`os.write` for bundle
        files — both mainly let tests provoke "disk full". Raises :class:`StoreError` if
        another process has the store open.
        """
        if inline_limit < 0:
            raise ValueError(f"inline_limit must be >= 0, got {inline_limit}")
        directory = Path(path)

        def open_database() -> tuple[BundleDatabase, list[StoredBundle]]:
            database = BundleDatabase(
                directory, max_database_bytes=max_database_bytes, file_write=file_write
            )
            try:
                database.reconcile()
                return database, database.load()
            except BaseException:
                database.close()
                raise

        database, records = await trio.to_thread.run_sync(open_database)
        try:
            store = cls(
                database,
                quota_bytes=quota_bytes,
                quota_bundles=quota_bundles,
                inline_limit=inline_limit,
            )
            for meta in records:
                store._index.add(meta)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(database.close)
            raise
        return store

    @property
    def path(self) -> Path:
        """The store's directory."""
        return self._database.directory

    # -- mutations --------------------------------------------------------------------------

    async def put(
        self, meta: StoredBundle, raw: bytes, *, reservation: Reservation | None = None
    ) -> bool:
        """Store ``raw`` under ``meta.key``, durably (see :mod:`.database`); ``False`` if the
        key was already stored. :class:`StoreFullError` if it does not fit."""
        raw = self._check_put(meta, raw)
        key = meta.key
        try:
            while (earlier := self._inflight.get(key)) is not None:
                await earlier.done.wait()
            if key in self._index:
                return self._duplicate(reservation)
            with self._space_for(len(raw), reservation):
                ticket = _Ticket(PutOperation(meta, raw, to_file=len(raw) > self._inline_limit))
                self._inflight[key] = ticket
                try:
                    await self._submit(ticket)
                finally:
                    del self._inflight[key]
                    ticket.done.set()
            return True
        finally:
            if reservation is not None:
                reservation.release()

    async def put_many(self, items: Sequence[PutItem]) -> list[bool | StoreError]:
        """:meth:`put` of every item, queued together so that one group commit (one fsync)
        takes them all; per item ``True``, ``False`` (already stored) or its error."""
        checked = self._check_put_many(items)
        results: list[bool | StoreError | None] = [None] * len(checked)
        later: list[int] = []  # keys with a put in progress, or twice in the batch
        tickets: list[tuple[int, _Ticket]] = []
        with contextlib.ExitStack() as space:
            for number, (meta, raw, reservation) in enumerate(checked):
                key = meta.key
                if key in self._inflight:
                    later.append(number)
                    continue
                if key in self._index:
                    results[number] = self._duplicate(reservation)
                    continue
                try:
                    space.enter_context(self._space_for(len(raw), reservation))
                except StoreFullError as exc:
                    results[number] = exc
                    continue
                ticket = _Ticket(PutOperation(meta, raw, to_file=len(raw) > self._inline_limit))
                self._inflight[key] = ticket
                tickets.append((number, ticket))
            try:
                await self._submit_many([ticket for _, ticket in tickets])
            finally:
                for number, ticket in tickets:
                    assert isinstance(ticket.op, PutOperation)
                    del self._inflight[ticket.op.meta.key]
                    ticket.done.set()
                    results[number] = True if ticket.op.error is None else ticket.op.error
        for number in later:
            meta, raw, reservation = checked[number]
            try:
                results[number] = await self.put(meta, raw, reservation=reservation)
            except StoreError as exc:
                results[number] = exc
        return [False if result is None else result for result in results]

    async def delete_many(self, keys: Sequence[str]) -> list[bool]:
        """:meth:`delete` of every key, in one group commit."""
        self._check_open()
        operations: list[DeleteOperation | None] = []
        tickets: list[_Ticket] = []
        for key in keys:
            if key not in self._index and key not in self._inflight:
                operations.append(None)
                continue
            op = DeleteOperation(key)
            operations.append(op)
            tickets.append(_Ticket(op))
        if tickets:
            await self._submit_many(tickets)
        else:
            await trio.lowlevel.checkpoint()
        for ticket in tickets:
            if ticket.op.error is not None:
                raise ticket.op.error
        return [op is not None and op.deleted for op in operations]

    async def delete_later(self, keys: Sequence[str]) -> list[bool]:
        """Remove bundles from the store's view now — queries, the quota and :meth:`get` no
        longer see them — and from the disk with the next group commit (or :meth:`flush`);
        per key, whether it was stored. For bundles whose fate is settled (delivered,
        forwarded, released): until the commit, a crash brings them back, so they are sent or
        delivered again, which the reliability model allows; nothing is ever lost."""
        self._check_open()
        results: list[bool] = []
        waiting: list[int] = []  # keys whose put is in progress: deleted the usual way
        for key in keys:
            if key in self._inflight:
                waiting.append(len(results))
                results.append(False)
            elif self._index.remove(key) is None:
                results.append(False)
            else:
                self._deletes += 1
                self._later.append(_Ticket(DeleteOperation(key), later=True))
                results.append(True)
        await trio.lowlevel.checkpoint()
        for number in waiting:
            results[number] = await self.delete(keys[number])
        return results

    async def flush(self) -> None:
        """Commit the deletions :meth:`delete_later` left (nothing to do if a group commit
        has taken them meanwhile)."""
        self._check_open()
        if not self._later:
            await trio.lowlevel.checkpoint()
            return
        async with self._commit_lock:
            if self._later:
                await self._commit_queue()

    async def update(self, meta: StoredBundle) -> None:
        """Replace the metadata of stored bundle ``meta.key``, durably."""
        self._check_update(meta)
        await self._submit(_Ticket(UpdateOperation(meta)))

    async def delete(self, key: str) -> bool:
        """Remove bundle ``key``, durably; ``False`` if it was not stored."""
        self._check_open()
        if key not in self._index and key not in self._inflight:
            await trio.lowlevel.checkpoint()
            return False
        op = DeleteOperation(key)
        await self._submit(_Ticket(op))
        return op.deleted

    async def _submit(self, ticket: _Ticket) -> None:
        """Queue ``ticket``, see it committed (as leader or follower), raise its error."""
        self._check_open()
        self._queue.append(ticket)
        try:
            async with self._commit_lock:
                if not ticket.taken:
                    await self._commit_queue()
        except BaseException:
            if not ticket.taken:
                self._queue.remove(ticket)
                raise
            with trio.CancelScope(shield=True):
                await ticket.done.wait()
            raise
        if ticket.op.error is not None:
            raise ticket.op.error

    async def _submit_many(self, tickets: list[_Ticket]) -> None:
        """Queue ``tickets`` together and see them committed (as leader or follower); their
        errors stay in their operations."""
        if not tickets:
            return
        self._check_open()
        self._queue.extend(tickets)
        try:
            async with self._commit_lock:
                # A leader takes the whole queue: these are all taken, or none is.
                if not tickets[0].taken:
                    await self._commit_queue()
        except BaseException:
            if not tickets[0].taken:
                for ticket in tickets:
                    self._queue.remove(ticket)
                raise
            with trio.CancelScope(shield=True):
                for ticket in tickets:
                    await ticket.done.wait()
            raise

    async def _commit_queue(self) -> None:
        """Leader: commit every queued ticket as one group and publish the outcomes."""
        # Deletions left by delete_later go first: a put of the same key may follow them.
        batch, self._queue, self._later = self._later + self._queue, [], []
        for ticket in batch:
            ticket.taken = True
        operations = [ticket.op for ticket in batch]
        try:
            if self._closed:
                for op in operations:
                    op.error = StoreClosedError("the bundle store is closed")
            else:
                await trio.to_thread.run_sync(
                    self._database.apply, operations, limiter=self._write_limiter
                )
                self._commits += 1
        except BaseException as exc:
            for op in operations:
                if op.error is None:
                    op.error = StoreError(f"bundle store failed: {exc!r}")
                    op.error.__cause__ = exc
            raise
        finally:
            self._publish(batch)

    def _publish(self, batch: list[_Ticket]) -> None:
        # Every ticket's owner is woken whatever happens to one of them: an owner left waiting
        # would hang its task, and every task behind the commit lock with it.
        for ticket in batch:
            try:
                self._publish_one(ticket)
            except Exception:
                logger.exception(
                    "bundle store: the index missed a committed change (%s); it is read "
                    "again from the database at the next start",
                    type(ticket.op).__name__,
                )
            finally:
                ticket.done.set()

    def _publish_one(self, ticket: _Ticket) -> None:
        index = self._index
        op = ticket.op
        if ticket.later:
            if op.error is not None:
                logger.warning("a deleted bundle stays on disk until the next start: %s", op.error)
        elif op.error is not None:
            if isinstance(op.error, StoreFullError):
                self._quota.refused += 1
        elif isinstance(op, PutOperation):
            index.add(op.meta)
            self._puts += 1
        elif isinstance(op, UpdateOperation):
            # (Unless delete_later took the bundle out meanwhile: its row goes next.)
            if op.meta.key in index:
                index.replace(op.meta)
            self._updates += 1
        elif op.deleted:
            index.remove(op.key)
            self._deletes += 1

    # -- reads ------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """The raw bytes of bundle ``key``, or ``None`` if it is not stored.

        Raises :class:`StoreCorruptionError` if the stored bytes cannot be read back intact.
        """
        self._check_open()
        if key not in self._index:
            return None
        return await trio.to_thread.run_sync(self._database.read, key, limiter=self._read_limiter)

    # -- lifetime ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Let the group commit in progress finish, refuse everything queued behind it,
        checkpoint the WAL and close the database. Idempotent; not interrupted by
        cancellation."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            async with self._commit_lock, self._read_limiter:
                later, self._later = self._later, []
                if later:
                    await trio.to_thread.run_sync(
                        self._database.apply, [t.op for t in later], limiter=self._write_limiter
                    )
                await trio.to_thread.run_sync(self._database.close, limiter=self._write_limiter)
