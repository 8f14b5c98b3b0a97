"""The named-data store: hierarchical names, last write wins, tombstones, paged queries, a
quota, and the queue of replica copies to send.

:class:`NamedDataStore` is the trio face of :class:`~.database.DataDatabase`: it checks its
arguments on the event loop, then runs each call in a worker thread (``trio.to_thread``) behind a
``CapacityLimiter(1)``, so the event loop never waits for sqlite or an fsync and the database
sees one call at a time. A thread call is not abandoned on cancellation: a put that has started
completes (or fails cleanly) before ``Cancelled`` propagates, so what was acknowledged is what
is on disk. It knows nothing of bundles or messages; :class:`~.role.DatastoreRole` puts it on
the network.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import trio

from ...store.blobfiles import FileWrite
from ...ucp.job import check_replicas
from ...ucp.names import validate_name, validate_pattern
from ...ucp.versions import DataVersion
from .database import DEFAULT_INLINE_LIMIT, DataDatabase, DiskFree
from .errors import DataStoreClosedError, DataStoreError, DataStoreFullError
from .ranges import decode_cursor, encode_cursor
from .store_results import (
    Datum,
    DatumInfo,
    GetPage,
    ListPage,
    NamedDataStatistics,
    PutOutcome,
    SpaceInfo,
)
from .tombstones import DEFAULT_TOMBSTONE_LIFETIME_S, Tombstone

__all__ = ["DEFAULT_GET_BYTES", "DEFAULT_PAGE_ITEMS", "NamedDataStore"]

DEFAULT_GET_BYTES = 1 << 20
"""Content bytes per :meth:`NamedDataStore.get` page unless asked otherwise."""
DEFAULT_PAGE_ITEMS = 1000
"""Entries per page unless asked otherwise."""

_T = TypeVar("_T")


class NamedDataStore:
    """Named data, durable under a directory or kept in memory. Create with :meth:`open`,
    close with :meth:`aclose` (or ``async with``)."""

    def __init__(self, database: DataDatabase, *, clock: Callable[[], float] = time.time) -> None:
        """Wrap an open database (use :meth:`open`)."""
        self._database = database
        self._clock = clock
        self._limiter = trio.CapacityLimiter(1)
        self._closed = False
        self._stored = self._unchanged = self._stale = self._refused = self._taken = 0
        self._deleted = self._gets = self._lists = 0

    @classmethod
    async def open(
        cls,
        directory: Path | str | None,
        *,
        quota_bytes: int,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        clock: Callable[[], float] = time.time,
        disk_free: DiskFree | None = None,
        file_write: FileWrite = os.write,
        max_database_bytes: int | None = None,
        tombstone_lifetime_s: float = DEFAULT_TOMBSTONE_LIFETIME_S,
    ) -> NamedDataStore:
        """Open (or create) the store in ``directory`` (``None``: in memory), removing what a
        crash left behind.

        ``quota_bytes`` limits the content bytes stored; values larger than ``inline_limit``
        go to files; a delete's tombstone is kept ``tombstone_lifetime_s``. ``disk_free`` (free
        bytes of a directory's file system), ``file_write`` (instead of :func:`os.write`) and
        ``max_database_bytes`` (a cap on the sqlite file) let tests provoke a full disk.
        :class:`~.errors.DataStoreError` if another process has the directory open."""
        path = None if directory is None else Path(directory)

        def open_database() -> DataDatabase:
            return DataDatabase(
                path,
                quota_bytes=quota_bytes,
                inline_limit=inline_limit,
                file_write=file_write,
                disk_free=disk_free,
                max_database_bytes=max_database_bytes,
                tombstone_lifetime_s=tombstone_lifetime_s,
            )

        database = await trio.to_thread.run_sync(open_database)
        return cls(database, clock=clock)

    @property
    def path(self) -> Path | None:
        """The store's directory, or ``None`` in memory."""
        return self._database.directory

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store once the call in progress (if any) has finished."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._database.close, limiter=self._limiter)

    async def _run(self, function: Callable[[], _T]) -> _T:
        if self._closed:
            raise DataStoreClosedError("the datastore is closed")
        try:
            return await trio.to_thread.run_sync(function, limiter=self._limiter)
        except (sqlite3.Error, OSError) as exc:
            raise DataStoreError(f"datastore failure: {exc}") from exc

    # -- writing --------------------------------------------------------------------------------

    async def put(
        self,
        name: str,
        data: bytes,
        *,
        written_at: float,
        writer: str,
        job_id: uuid.UUID | None = None,
        replicas: int = 1,
        exclusive: bool = False,
    ) -> PutOutcome:
        """Store ``data`` under the data name ``name`` with replication factor ``replicas``,
        durably, unless a newer write of it is stored or a tombstone buries it: the write with
        the greater version ``(written_at, writer, digest)`` wins. ``exclusive``: only if the
        name is free (no live datum; a tombstone does not hold it), held by the same write, or
        held by a write of the same job, else ``TAKEN``. Raises
        :class:`~.errors.DataStoreFullError` (nothing stored) when the quota or the disk is
        full, :class:`~ucp_dtn.ucp.errors.DataNameError` for a bad name."""
        validate_name(name)
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        if not isinstance(written_at, int | float) or not math.isfinite(written_at):
            raise ValueError(f"written_at must be a finite number, got {written_at!r}")
        if not isinstance(writer, str):
            raise TypeError(f"writer must be EID text, got {type(writer).__name__}")
        check_replicas(replicas, "replicas")
        now = self._clock()
        try:
            outcome = await self._run(
                lambda: self._database.put(
                    name,
                    data,
                    written_at=float(written_at),
                    writer=writer,
                    job_id=job_id,
                    now=now,
                    replicas=replicas,
                    exclusive=exclusive,
                )
            )
        except DataStoreFullError:
            self._refused += 1
            raise
        if outcome is PutOutcome.STORED:
            self._stored += 1
        elif outcome is PutOutcome.UNCHANGED:
            self._unchanged += 1
        elif outcome is PutOutcome.TAKEN:
            self._taken += 1
        else:
            self._stale += 1
        return outcome

    async def delete(
        self, query: str, *, deleted_at: float | None = None, deleter: str = ""
    ) -> int:
        """Delete the data ``query`` selects (a name with its subkeys by segment, or a
        ``prefix*`` pattern) written before the delete, ``deleted_at`` by ``deleter``'s clock
        (``None``: every datum it selects, as of now by this store's clock), and keep its
        tombstone (:mod:`.tombstones`); returns how many were deleted."""
        validate_pattern(query, "query")
        version, now = self._delete_version(deleted_at, deleter)
        older_only = deleted_at is not None
        count = await self._run(
            lambda: self._database.delete(query, version=version, now=now, older_only=older_only)
        )
        self._deleted += count
        return count

    async def delete_job(
        self,
        job_id: uuid.UUID,
        *,
        keep_result: bool = True,
        deleted_at: float | None = None,
        deleter: str = "",
    ) -> int:
        """Delete every datum of ``job_id`` (named ``<job-uuid>/...`` or put with the job), but
        ``<job-uuid>/result`` when ``keep_result``, written before the delete (as
        :meth:`delete`); returns how many."""
        if not isinstance(job_id, uuid.UUID):
            raise TypeError(f"job_id must be a UUID, got {type(job_id).__name__}")
        version, now = self._delete_version(deleted_at, deleter)
        older_only = deleted_at is not None
        count = await self._run(
            lambda: self._database.delete_job(
                job_id, keep_result=keep_result, version=version, now=now, older_only=older_only
            )
        )
        self._deleted += count
        return count

    def _delete_version(self, deleted_at: float | None, deleter: str) -> tuple[DataVersion, float]:
        now = self._clock()
        at = now if deleted_at is None else deleted_at
        if not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError(f"deleted_at must be a finite number, got {deleted_at!r}")
        if not isinstance(deleter, str):
            raise TypeError(f"deleter must be EID text, got {type(deleter).__name__}")
        return DataVersion.of_delete(float(at), deleter), now

    async def tombstones(self) -> list[Tombstone]:
        """The tombstones kept now, oldest delete first."""
        now = self._clock()
        return await self._run(lambda: self._database.tombstones(now))

    # -- replica copies ---------------------------------------------------------------------------

    async def queue_copies(self, name: str, targets: Sequence[str]) -> int:
        """Remember (durably) to send a copy of ``name`` to each datastore of ``targets``;
        returns how many were not waiting already."""
        validate_name(name)
        now = self._clock()
        return await self._run(lambda: self._database.queue_copies(name, list(targets), now))

    async def queued_copies(self, limit: int = 1000) -> list[tuple[str, str, float]]:
        """The oldest copies waiting to be sent: ``(name, target, queued_at)``."""
        return await self._run(lambda: self._database.queued_copies(limit))

    async def remove_copy(self, name: str, target: str) -> None:
        """Forget a queued copy (sent, or impossible)."""
        await self._run(lambda: self._database.remove_copy(name, target))

    # -- reading --------------------------------------------------------------------------------

    async def get(
        self,
        query: str,
        *,
        cursor: str | None = None,
        max_bytes: int = DEFAULT_GET_BYTES,
        max_items: int = DEFAULT_PAGE_ITEMS,
        have: frozenset[bytes] = frozenset(),
    ) -> GetPage:
        """One page of the data ``query`` selects (a name with its subkeys, or a ``prefix*``
        pattern), sorted by name: as many as fit in ``max_bytes`` of content — a single larger
        datum still comes, alone — and at most ``max_items``. Pass the page's ``cursor`` to
        continue; :class:`~.errors.InvalidCursorError` for a cursor this store did not make.
        A datum whose digest is in ``have`` comes with an empty value (not read: the requester
        holds it; compare :attr:`DatumInfo.digest`)."""
        validate_pattern(query, "query")
        after = decode_cursor(cursor)
        max_items = _at_least_one(max_items, "max_items")
        items, last = await self._run(
            lambda: self._database.get(
                query, after=after, max_bytes=max_bytes, max_items=max_items, have=have
            )
        )
        self._gets += 1
        return GetPage(tuple(items), None if last is None else encode_cursor(last))

    async def listing(
        self,
        query: str | None = None,
        *,
        job_id: uuid.UUID | None = None,
        page_size: int = DEFAULT_PAGE_ITEMS,
        cursor: str | None = None,
        replicated: bool = False,
    ) -> ListPage:
        """One page of metadata, sorted by name, of the data ``query`` selects (``None``:
        every datum), only of job ``job_id`` if given, only the replicated ones
        (:attr:`DatumInfo.replicated`) if ``replicated``. Pass the page's ``cursor`` to
        continue."""
        if query is not None:
            validate_pattern(query, "query")
        after = decode_cursor(cursor)
        page_size = _at_least_one(page_size, "page_size")
        entries, last = await self._run(
            lambda: self._database.listing(
                query, job_id=job_id, after=after, page_size=page_size, replicated=replicated
            )
        )
        self._lists += 1
        return ListPage(tuple(entries), None if last is None else encode_cursor(last))

    async def set_private(self, name: str, private: bool) -> None:
        """Note whether ``name`` is readable by its owner only (a trusted mesh's
        ``--private``); the latest write of the name says."""
        validate_name(name)
        await self._run(lambda: self._database.set_private(name, private))

    async def private_among(self, names: Sequence[str]) -> set[str]:
        """Which of ``names`` are readable by their owner only."""
        return await self._run(lambda: self._database.private_among(list(names)))

    async def info(self, name: str) -> DatumInfo | None:
        """The metadata of the datum named exactly ``name``, if stored."""
        validate_name(name)
        return await self._run(lambda: self._database.info(name))

    async def datum(self, name: str) -> Datum | None:
        """The datum named exactly ``name`` with its content, if stored."""
        validate_name(name)
        return await self._run(lambda: self._database.datum(name))

    async def space(self) -> SpaceInfo:
        """What the store holds and how much more it can take (the quota's rest or the disk's
        free space, whichever is smaller: :attr:`SpaceInfo.free`)."""
        return await self._run(self._database.space)

    def statistics(self) -> NamedDataStatistics:
        """Counters since the store was opened, with the bytes and data it holds."""
        return NamedDataStatistics(
            used=self._database.used,
            items=self._database.items,
            quota=self._database.quota_bytes,
            stored=self._stored,
            unchanged=self._unchanged,
            stale=self._stale,
            refused=self._refused,
            taken=self._taken,
            deleted=self._deleted,
            gets=self._gets,
            lists=self._lists,
        )


def _at_least_one(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    return max(1, value)
