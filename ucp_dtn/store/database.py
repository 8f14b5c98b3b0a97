"""The synchronous half of :class:`SqliteBundleStore`: one sqlite database plus a file directory.

Theory of operation
-------------------
Layout of a store directory::

    <dir>/LOCK                 flock()ed while open: one process per store
    <dir>/bundles.sqlite3      (+ -wal, -shm) metadata of every bundle, small bundles inline
    <dir>/files/<token>.bundle bundles larger than ``inline_limit``

The ``bundles`` table holds one small row of metadata per bundle (loaded whole at open); the raw
bytes of small bundles sit in ``payloads`` (same id), so loading metadata never pages through
bundle bytes and metadata updates never rewrite them.

Durability: the database is opened by :func:`~.sqlite_files.open_sqlite` (WAL mode with
``synchronous=FULL``, files 0600, directory 0700), so a group holding a put commits only after
the WAL has been fsync'd. A large bundle's file is written, fsync'd, renamed and its
directory fsync'd (:mod:`.blobfiles`) *before* the row naming it is committed. Hence when
:meth:`BundleDatabase.apply` returns without error for a put, the bundle survives a crash of the
process (``kill -9``) and of the machine, as far as the disk honours fsync.

A group of only deletions and metadata updates commits with ``synchronous=NORMAL``: the WAL is
written (so the change survives ``kill -9`` like any other: the operating system has it) but
not fsync'd; the next put's commit fsyncs the WAL and every earlier change with it. What a
power loss can therefore undo is a recent deletion or update, never a stored bundle: a bundle
already delivered or forwarded comes back and is sent or delivered again — a duplicate, which
the reliability model allows (bundle IDs and job UUIDs deduplicate), never a loss. Deleting a
bundle kept in a file is the exception: its file goes only once the deletion is on disk (the
WAL is fsync'd first), so a row never outlives its file. This saves an fsync — a few
milliseconds of waiting and ~0.1 ms of CPU — for each bundle that leaves the store.

Group commit: :meth:`apply` takes every operation that queued up while the previous transaction
was committing and commits them together — one WAL fsync (and at most one directory fsync) for
the whole group. If the group's transaction fails (e.g. the disk is full), it is rolled back and
each operation is retried in a transaction of its own, so one bad operation cannot sink the rest
and every caller gets its own precise outcome.

Everything here blocks; the store calls it through ``trio.to_thread.run_sync``, one thread at a
time per connection (the writer connection for :meth:`apply`, the reader for :meth:`read`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .blobfiles import BlobDirectory, FileWrite
from .errors import (
    BundleNotFoundError,
    StoreClosedError,
    StoreCorruptionError,
    StoreError,
    StoreFullError,
)
from .sqlite_files import FILE_MODE, make_private_directory, open_sqlite, transaction
from .stored_bundle import BundleState, StoredBundle

__all__ = [
    "BundleDatabase",
    "DeleteOperation",
    "Operation",
    "PutOperation",
    "UpdateOperation",
]

logger = logging.getLogger(__name__)

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    source TEXT NOT NULL,
    size INTEGER NOT NULL,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    state INTEGER NOT NULL,
    custody INTEGER NOT NULL,
    next_retry_at REAL,
    attempts INTEGER NOT NULL,
    forwarded_to TEXT NOT NULL,  -- JSON array, '' when empty
    extra TEXT NOT NULL,         -- JSON object, '' when empty
    file TEXT                    -- name under files/, NULL when the bytes are in payloads
);
CREATE TABLE IF NOT EXISTS payloads (
    id INTEGER PRIMARY KEY,      -- = bundles.id
    raw BLOB NOT NULL
);
"""
_COLUMNS = (
    "key, destination, source, size, received_at, expires_at, state, custody, next_retry_at,"
    " attempts, forwarded_to, extra"
)
_INSERT = f"INSERT INTO bundles ({_COLUMNS}, file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE = (
    "UPDATE bundles SET destination = ?, source = ?, received_at = ?, expires_at = ?, state = ?,"
    " custody = ?, next_retry_at = ?, attempts = ?, forwarded_to = ?, extra = ? WHERE key = ?"
)
_DATABASE_NAME = "bundles.sqlite3"
_FILES_NAME = "files"
_LOCK_NAME = "LOCK"
_SQLITE_FULL = 13  # primary result code of "database or disk is full"


@dataclass(slots=True, eq=False)
class PutOperation:
    """Store a new bundle (outcome: ``error`` stays ``None`` on success)."""

    meta: StoredBundle
    raw: bytes
    to_file: bool
    """Keep the bytes in a file rather than inline."""
    error: StoreError | None = None
    file: str | None = field(default=None, init=False)


@dataclass(slots=True, eq=False)
class UpdateOperation:
    """Replace a bundle's metadata (``error`` is :class:`BundleNotFoundError` if it is gone)."""

    meta: StoredBundle
    error: StoreError | None = None


@dataclass(slots=True, eq=False)
class DeleteOperation:
    """Remove a bundle (``deleted`` tells whether there was one)."""

    key: str
    error: StoreError | None = None
    deleted: bool = field(default=False, init=False)
    file: str | None = field(default=None, init=False)


Operation = PutOperation | UpdateOperation | DeleteOperation


def _json_or_empty(value: object) -> str:
    return json.dumps(value, separators=(",", ":")) if value else ""


def _row_values(meta: StoredBundle) -> tuple[object, ...]:
    return (
        meta.key,
        meta.destination,
        meta.source,
        meta.size,
        meta.received_at,
        meta.expires_at,
        int(meta.state),
        int(meta.custody),
        meta.next_retry_at,
        meta.attempts,
        _json_or_empty(sorted(meta.forwarded_to)),
        _json_or_empty(dict(meta.extra)),
    )


def _storage_error(exc: BaseException, what: str) -> StoreError:
    """Translate an OSError or sqlite3 error into our exception (the caller chains it)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFullError(f"store full: disk full while {what}")
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == _SQLITE_FULL:
        return StoreFullError(f"store full: database full while {what}")
    return StoreError(f"storage failed while {what}: {exc}")


class BundleDatabase:
    """An open store directory: database connections, file directory and process lock."""

    def __init__(
        self,
        directory: Path,
        *,
        max_database_bytes: int | None = None,
        file_write: FileWrite = os.write,
    ) -> None:
        """Open (creating if needed) the store in ``directory``. Blocking.

        Raises :class:`StoreError` if another process holds the store or the schema is newer
        than this code understands.
        """
        make_private_directory(directory)
        self.directory = directory
        self._closed = False
        self._lock_fd = os.open(
            directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
        )
        try:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"store {directory} is in use by another process") from None
            self._writer = open_sqlite(
                directory / _DATABASE_NAME, max_database_bytes=max_database_bytes
            )
            self._synchronous_full = True  # open_sqlite's setting
            self._reader: sqlite3.Connection | None = None
            try:
                self._init_schema()
                self._reader = open_sqlite(directory / _DATABASE_NAME)
                self._files = BlobDirectory(directory / _FILES_NAME, file_write=file_write)
            except BaseException:
                self._writer.close()
                if self._reader is not None:
                    self._reader.close()
                raise
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _init_schema(self) -> None:
        writer = self._writer
        (version,) = writer.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            raise StoreError(
                f"store {self.directory} has schema version {version}, this code knows"
                f" only up to {_SCHEMA_VERSION}"
            )
        writer.executescript(_SCHEMA)
        writer.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    # -- startup ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Make the database and the file directory agree after a crash; log what was fixed.

        Removes leftover temporary files, bundle files no row names (a put that crashed before
        its commit, or a delete that crashed after it) and rows whose file is missing or has the
        wrong size. (An inline row and its payload are written and removed in one transaction,
        so they cannot disagree and are not scanned.)
        """
        writer, files = self._writer, self._files
        scan = files.scan()
        for name in scan.temporary:
            logger.info("removing unfinished bundle file %s", name)
            files.remove(name)
        lost: list[tuple[int, str]] = []  # (row id, file name)
        named: set[str] = set()
        for row_id, key, size, name in writer.execute(
            "SELECT id, key, size, file FROM bundles WHERE file IS NOT NULL"
        ):
            named.add(name)
            actual = scan.sizes.get(name)
            if actual != size:
                found = "missing" if actual is None else f"{actual} bytes, expected {size}"
                logger.error("dropping bundle %s: its file %s is %s", key, name, found)
                lost.append((row_id, name))
        with transaction(writer):
            writer.executemany("DELETE FROM bundles WHERE id = ?", [(i,) for i, _ in lost])
        for _, name in lost:
            files.remove(name)
        orphans = sorted(set(scan.sizes) - named)
        for name in orphans:
            logger.warning("removing bundle file %s that no stored bundle refers to", name)
            files.remove(name)
        if scan.temporary or orphans or lost:
            files.sync()

    def load(self) -> list[StoredBundle]:
        """Every stored bundle's metadata, oldest row first."""
        rows = self._writer.execute(f"SELECT {_COLUMNS} FROM bundles ORDER BY id").fetchall()
        return [self._meta_from_row(row) for row in rows]

    @staticmethod
    def _meta_from_row(row: tuple[Any, ...]) -> StoredBundle:
        key, dest, source, size, received, expires, state, custody, retry, attempts, fwd, extra = (
            row
        )
        try:
            return StoredBundle(
                key=key,
                destination=dest,
                source=source,
                size=size,
                received_at=received,
                expires_at=expires,
                state=BundleState(state),
                custody=bool(custody),
                next_retry_at=retry,
                attempts=attempts,
                forwarded_to=frozenset(json.loads(fwd)) if fwd else frozenset(),
                extra=json.loads(extra) if extra else {},
            )
        except (TypeError, ValueError) as exc:
            raise StoreCorruptionError(
                f"stored metadata of bundle {key!r} is invalid: {exc}"
            ) from exc

    # -- operations -------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation]) -> None:
        """Carry out ``operations`` in order, durably, as one group commit; set each outcome.

        Errors of single operations (disk full, bundle gone) are stored in their ``error``;
        only a bug escapes as an exception.
        """
        if self._closed:
            raise StoreClosedError("the bundle store is closed")
        files = self._files
        wrote_files = False
        for op in operations:
            if isinstance(op, PutOperation) and op.to_file:
                try:
                    op.file = files.write(op.raw)
                    wrote_files = True
                except OSError as exc:
                    op.error = _storage_error(exc, f"writing bundle {op.meta.key!r}")
                    op.error.__cause__ = exc
        if wrote_files:
            try:
                files.sync()
            except OSError as exc:
                for op in operations:
                    if isinstance(op, PutOperation) and op.file is not None:
                        op.error = _storage_error(exc, f"syncing bundle {op.meta.key!r}")
                        op.error.__cause__ = exc
        pending = [op for op in operations if op.error is None]
        try:
            self._transaction(pending)
        except sqlite3.Error as exc:
            if len(pending) == 1:
                pending[0].error = _storage_error(exc, _describe(pending[0]))
                pending[0].error.__cause__ = exc
                pending = []
            else:
                logger.debug(
                    "group commit of %d failed (%s); retrying one by one", len(pending), exc
                )
            for op in pending:
                try:
                    self._transaction([op])
                except sqlite3.Error as single_exc:
                    op.error = _storage_error(single_exc, _describe(op))
                    op.error.__cause__ = single_exc
        for op in operations:
            if isinstance(op, PutOperation) and op.error is not None and op.file is not None:
                files.remove(op.file)
                op.file = None
            elif isinstance(op, DeleteOperation) and op.file is not None:
                files.remove(op.file)

    def _transaction(self, operations: Sequence[Operation]) -> None:
        if not operations:
            return
        # Only a put needs its commit on disk before the caller goes on (see the module
        # docstring); a group without one is written but not fsync'd.
        self._set_synchronous(any(isinstance(op, PutOperation) for op in operations))
        outcomes: list[tuple[bool, str | None]] = []
        with transaction(self._writer):
            self._execute(operations, outcomes)
        for op, (found, name) in zip(operations, outcomes, strict=True):
            if isinstance(op, UpdateOperation) and not found:
                op.error = BundleNotFoundError(f"no stored bundle {op.meta.key!r} to update")
            elif isinstance(op, DeleteOperation):
                op.deleted = found
                op.file = name
        if not self._synchronous_full and any(name for _, name in outcomes):
            # A bundle file is removed after its row: the row's deletion must be on disk first.
            self._sync_wal()

    def _set_synchronous(self, full: bool) -> None:
        """``synchronous=FULL`` (fsync at commit) or ``NORMAL`` for the next transaction."""
        if full != self._synchronous_full:
            self._writer.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
            self._synchronous_full = full

    def _sync_wal(self) -> None:
        """fsync the WAL: every transaction committed so far is on disk."""
        path = self.directory / (_DATABASE_NAME + "-wal")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # checkpointed and removed: the database file holds everything
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _execute(
        self, operations: Sequence[Operation], outcomes: list[tuple[bool, str | None]]
    ) -> None:
        writer = self._writer
        for op in operations:
            if isinstance(op, PutOperation):
                cursor = writer.execute(_INSERT, (*_row_values(op.meta), op.file))
                if op.file is None:
                    writer.execute(
                        "INSERT INTO payloads (id, raw) VALUES (?, ?)", (cursor.lastrowid, op.raw)
                    )
                outcomes.append((True, None))
            elif isinstance(op, UpdateOperation):
                values = _row_values(op.meta)
                cursor = writer.execute(_UPDATE, (*values[1:3], *values[4:], op.meta.key))
                outcomes.append((cursor.rowcount > 0, None))
            else:
                row = writer.execute(
                    "SELECT id, file FROM bundles WHERE key = ?", (op.key,)
                ).fetchone()
                if row is not None:
                    writer.execute("DELETE FROM payloads WHERE id = ?", (row[0],))
                    writer.execute("DELETE FROM bundles WHERE id = ?", (row[0],))
                    outcomes.append((True, row[1]))
                else:
                    outcomes.append((False, None))

    # -- reads ------------------------------------------------------------------------------

    def read(self, key: str) -> bytes | None:
        """The raw bytes of bundle ``key``, or ``None`` if it is not stored. Uses the reader
        connection, so it does not wait for a commit in progress."""
        reader = self._reader
        if self._closed or reader is None:
            raise StoreClosedError("the bundle store is closed")
        row = reader.execute(
            "SELECT b.size, b.file, p.raw FROM bundles b LEFT JOIN payloads p ON p.id = b.id"
            " WHERE b.key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        size, name, raw = row
        if name is not None:
            try:
                raw = self._files.read(name)
            except FileNotFoundError:
                still = reader.execute("SELECT 1 FROM bundles WHERE key = ?", (key,)).fetchone()
                if still is None:  # deleted (row, then file) while we were reading
                    return None
                raise StoreCorruptionError(f"file {name} of bundle {key!r} is missing") from None
            except OSError as exc:
                raise StoreError(f"cannot read file {name} of bundle {key!r}: {exc}") from exc
        if not isinstance(raw, bytes) or len(raw) != size:
            got = len(raw) if isinstance(raw, bytes) else "no"
            raise StoreCorruptionError(f"bundle {key!r}: read {got} bytes, stored {size}")
        return raw

    # -- shutdown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Checkpoint the WAL into the database, close everything and release the lock.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if self._reader is not None:
                self._reader.close()
            self._writer.close()
            self._files.close()
        finally:
            os.close(self._lock_fd)


def _describe(op: Operation) -> str:
    if isinstance(op, PutOperation):
        return f"storing bundle {op.meta.key!r}"
    if isinstance(op, UpdateOperation):
        return f"updating bundle {op.meta.key!r}"
    return f"deleting bundle {op.key!r}"
