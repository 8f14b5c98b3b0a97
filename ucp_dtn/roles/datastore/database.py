"""The synchronous half of :class:`~.named_data_store.NamedDataStore`: one sqlite database (or an
in-memory one) plus a directory of value files.

Theory of operation
-------------------
Layout of a datastore directory (``<workdir>/datastore``)::

    LOCK                    flock()ed while open: one process per datastore
    data.sqlite3            (+ -wal, -shm) one row per datum; values up to inline_limit inline;
                            the tombstones of deletes; the replica copies still to send
    values/<token>.value    larger values, one file each, written like the bundle store's
                            files (:class:`ucp_dtn.store.blobfiles.BlobDirectory`)

The ``data`` table is keyed by name, so every query is a range scan of the primary key index
(:mod:`.ranges`); ``data_by_job`` indexes ``(job, name)`` for job listings and deletions. The
``job`` column holds the job a datum belongs to: the ``job_id`` given with the put, else the job
UUID its name starts with (``<job-uuid>/...``), else ``NULL``. Each row keeps the datum's
version — ``written_at``, ``writer`` and the SHA-256 ``digest`` of its value — its replication
factor (``replicas``), and whether it is *replicated*: stored with a factor above 1, or replacing
a datum that was (a broker lists those, :data:`data_replicated`, to see where replicas live).
``tombstones`` keeps what deletes removed (:mod:`.tombstones`); ``copies`` the replica copies
this datastore was asked to send and has not handed to the agent yet (:mod:`.replicator`).

Durability: the database is opened by :func:`~ucp_dtn.store.sqlite_files.open_sqlite` (WAL mode
with ``synchronous=FULL``, files 0600, directory 0700), so ``COMMIT`` returns once the WAL is
fsync'd.
A large value's file is written, fsync'd and renamed (directory fsync'd) *before* the row naming
it is committed; the file of a replaced or deleted value is removed only *after* the commit.
Hence a put that returned survives a crash, and a put that failed (quota, ``ENOSPC``,
``SQLITE_FULL``) leaves nothing behind. Files no row names (a crash between the two steps) are
removed on open.

Last write wins: a put replaces the stored datum only if its version (``(written_at, writer,
digest)``, :mod:`ucp_dtn.ucp.versions`) is greater; an equal one is a duplicate, a smaller one
is stale, and so is one older than a tombstone that covers its name. A delete removes only the
data older than itself and leaves a tombstone. An *exclusive* put (a job's named result, a
``ucp data put`` without ``--replace``) is refused outright (``TAKEN``) when the name's live
datum — a tombstone holds no name — is a different write of no job or of another job; the same
write again is a duplicate, and a write of the same job (another attempt of it) goes on by the
rule above. Replica copies are never exclusive (the role sees to it): they carry a write that
was already accepted, so every datastore keeps the greatest version whatever order copies
arrive in. Space: the quota counts content bytes; a put must also fit in the file system's free
space.

Schema version 1 (before replication) is rebuilt as version 2 when opened: every row gets the
digest of its value and factor 1.

Without a directory, the same schema lives in an in-memory sqlite database with every value
inline, so both variants share one code path. Everything here blocks: the async store calls it
through ``trio.to_thread`` behind one ``CapacityLimiter(1)`` (see
:mod:`ucp_dtn.store.sqlite_files`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ...store.blobfiles import BlobDirectory, FileWrite
from ...store.sqlite_files import FILE_MODE, make_private_directory, open_sqlite, transaction
from ...ucp.names import job_of_name, job_result_name, name_matches
from ...ucp.versions import DataVersion, content_digest
from .errors import DataStoreClosedError, DataStoreError, DataStoreFullError
from .ranges import NameRange, query_ranges
from .store_results import Datum, DatumInfo, PutOutcome, SpaceInfo
from .tombstones import DEFAULT_TOMBSTONE_LIFETIME_S, Tombstone

__all__ = ["DEFAULT_INLINE_LIMIT", "DataDatabase", "DiskFree"]

logger = logging.getLogger(__name__)

DEFAULT_INLINE_LIMIT = 16 * 1024
"""Values up to this many bytes are kept inside the database; larger ones in files."""

DiskFree = Callable[[Path], int]
"""Free bytes of the file system holding a directory (:func:`shutil.disk_usage` by default)."""

VALUE_SUFFIX = ".value"
"""Suffix of complete value files."""
_SCHEMA_VERSION = 2
_DATA_TABLE = """
CREATE TABLE IF NOT EXISTS data (
    name TEXT NOT NULL PRIMARY KEY,
    size INTEGER NOT NULL,
    written_at REAL NOT NULL,
    writer TEXT NOT NULL,
    job TEXT,              -- canonical job UUID, NULL when the datum belongs to no job
    stored_at REAL NOT NULL,
    digest BLOB NOT NULL,  -- SHA-256 of the value: with written_at and writer, the version
    replicas INTEGER NOT NULL DEFAULT 1,
    replicated INTEGER NOT NULL DEFAULT 0,  -- 1: factor above 1, now or in a replaced write
    file TEXT,             -- value file name, NULL when the value is inline
    value BLOB             -- the value when inline (last: listings never read it)
);
"""
_SCHEMA = f"""{_DATA_TABLE}
CREATE INDEX IF NOT EXISTS data_by_job ON data (job, name);
CREATE INDEX IF NOT EXISTS data_replicated ON data (name) WHERE replicated = 1;
CREATE TABLE IF NOT EXISTS tombstones (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query TEXT,            -- name or prefix* pattern deleted; NULL: a job's data
    job TEXT,              -- job UUID whose data was deleted; NULL: a query
    keep_result INTEGER NOT NULL,
    deleted_at REAL NOT NULL,
    deleter TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_by_time ON tombstones (deleted_at);
CREATE TABLE IF NOT EXISTS private_names (
    name TEXT NOT NULL PRIMARY KEY  -- data readable by their owner only (a trusted mesh)
);
CREATE TABLE IF NOT EXISTS copies (
    name TEXT NOT NULL,
    target TEXT NOT NULL,  -- datastore endpoint to send a copy to
    queued_at REAL NOT NULL,
    PRIMARY KEY (name, target)
);
"""
_INFO_COLUMNS = "name, size, written_at, writer, job, stored_at, digest, replicas, replicated"
_INFO_WIDTH = 9
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def _info(row: Sequence[Any]) -> DatumInfo:
    name, size, written_at, writer, job, stored_at, digest, replicas, replicated = row[:_INFO_WIDTH]
    return DatumInfo(
        name=name,
        size=size,
        written_at=written_at,
        writer=writer,
        job_id=None if job is None else uuid.UUID(job),
        stored_at=stored_at,
        digest=bytes(digest),
        replicas=replicas,
        replicated=bool(replicated),
    )


def _where(
    ranges: Sequence[NameRange], job: str | None, *, replicated: bool = False
) -> list[tuple[str, list[object]]]:
    """One ``WHERE`` clause with its parameters per non-empty range."""
    clauses: list[tuple[str, list[object]]] = []
    for name_range in ranges:
        if name_range.empty:
            continue
        terms, params = ["name >= ?"], [name_range.low]
        if name_range.high is not None:
            terms.append("name < ?")
            params.append(name_range.high)
        if job is not None:
            terms.append("job = ?")
            params.append(job)
        if replicated:
            terms.append("replicated = 1")
        clauses.append((" AND ".join(terms), list(params)))
    return clauses


def _tombstone(row: Sequence[Any]) -> Tombstone:
    query, job, keep_result, deleted_at, deleter, expires_at = row
    return Tombstone(
        query=query,
        job_id=None if job is None else uuid.UUID(job),
        keep_result=bool(keep_result),
        version=DataVersion.of_delete(deleted_at, deleter),
        expires_at=expires_at,
    )


class DataDatabase:
    """Named data in a directory (``None``: in memory). Blocking; one thread at a time."""

    def __init__(
        self,
        directory: Path | None,
        *,
        quota_bytes: int,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        disk_free: DiskFree | None = None,
        file_write: FileWrite = os.write,
        max_database_bytes: int | None = None,
        tombstone_lifetime_s: float = DEFAULT_TOMBSTONE_LIFETIME_S,
    ) -> None:
        """Open (or create) the store and remove what a crash left behind.
        :class:`DataStoreError` if another process has the directory open."""
        if quota_bytes < 0:
            raise ValueError(f"quota_bytes must be >= 0, got {quota_bytes}")
        if inline_limit < 0:
            raise ValueError(f"inline_limit must be >= 0, got {inline_limit}")
        if not tombstone_lifetime_s > 0:
            raise ValueError(f"tombstone_lifetime_s must be positive, got {tombstone_lifetime_s}")
        self.directory = directory
        self.quota_bytes = quota_bytes
        self.tombstone_lifetime_s = tombstone_lifetime_s
        """How long a delete's tombstone is kept (:mod:`.tombstones`)."""
        self._inline_limit = inline_limit
        self._disk_free = disk_free if disk_free is not None else _disk_free
        self._lock_fd = -1
        self._values: BlobDirectory | None = None
        self._closed = False
        self.used = 0
        """Content bytes stored."""
        self.items = 0
        """Data stored."""
        try:
            database_file = None
            if directory is not None:
                make_private_directory(directory)
                self._lock(directory)
                self._values = BlobDirectory(
                    directory / "values", file_write=file_write, suffix=VALUE_SUFFIX
                )
                database_file = directory / "data.sqlite3"
            self._conn = open_sqlite(database_file, max_database_bytes=max_database_bytes)
            self._create_schema()
            self._reconcile()
            self.used, self.items = self._conn.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM data"
            ).fetchone()
        except BaseException:
            self.close()
            raise

    def _lock(self, directory: Path) -> None:
        self._lock_fd = os.open(
            directory / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataStoreError(f"datastore {directory} is in use by another process") from None

    def _create_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, _SCHEMA_VERSION):
            raise DataStoreError(
                f"datastore schema version {version} is not supported (expected {_SCHEMA_VERSION})"
            )
        if version == 1:
            self._migrate_from_v1()
        # Idempotent statements; executescript runs them outside any transaction of ours.
        self._conn.executescript(f"{_SCHEMA}PRAGMA user_version={_SCHEMA_VERSION};")

    def _migrate_from_v1(self) -> None:
        """Rebuild a version 1 ``data`` table with the columns of version 2: each value's
        digest (read once), factor 1, not replicated. One transaction: a crash leaves v1."""
        logger.info("datastore: upgrading the database to schema version %d", _SCHEMA_VERSION)
        rows = self._conn.execute(
            "SELECT name, size, written_at, writer, job, stored_at, file, value FROM data"
        ).fetchall()
        with transaction(self._conn):
            self._conn.execute("ALTER TABLE data RENAME TO data_v1")
            self._conn.execute(_DATA_TABLE)
            for name, size, written_at, writer, job, stored_at, file, value in rows:
                content = self._value(name, file, value)
                self._conn.execute(
                    "INSERT INTO data (name, size, written_at, writer, job, stored_at, digest,"
                    " file, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        size,
                        written_at,
                        writer,
                        job,
                        stored_at,
                        content_digest(content or b""),
                        file,
                        value,
                    ),
                )
            self._conn.execute("DROP TABLE data_v1")
            self._conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def _reconcile(self) -> None:
        """Remove leftovers of a crash: files no row names, rows whose file is gone."""
        if self._values is None:
            return
        scan = self._values.scan()
        on_disk, temporary = set(scan.sizes), scan.temporary
        named = {
            file: name
            for name, file in self._conn.execute(
                "SELECT name, file FROM data WHERE file IS NOT NULL"
            )
        }
        lost = [name for file, name in named.items() if file not in on_disk]
        if lost:
            logger.error("datastore: the value files of %d data are missing: dropped", len(lost))
            with transaction(self._conn):
                self._conn.executemany("DELETE FROM data WHERE name = ?", [(n,) for n in lost])
        orphans = [file for file in on_disk if file not in named] + temporary
        if orphans:
            logger.info("datastore: removing %d leftover value files", len(orphans))
            self._values.remove_durably(orphans)

    def _check_open(self) -> None:
        if self._closed:
            raise DataStoreClosedError("the datastore is closed")

    # -- writing --------------------------------------------------------------------------------

    def put(
        self,
        name: str,
        data: bytes,
        *,
        written_at: float,
        writer: str,
        job_id: uuid.UUID | None,
        now: float,
        replicas: int = 1,
        exclusive: bool = False,
    ) -> PutOutcome:
        """Store ``data`` under ``name`` unless a newer write is stored, a tombstone buries it,
        or (``exclusive``) the live datum is another write of no job or of another job (see the
        module docstring); :class:`DataStoreFullError` if it does not fit, leaving nothing
        behind."""
        self._check_open()
        version = DataVersion(written_at, writer, content_digest(data))
        old = self._conn.execute(
            "SELECT size, written_at, writer, digest, file, replicated, job FROM data"
            " WHERE name = ?",
            (name,),
        ).fetchone()
        old_size, old_file, was_replicated = 0, None, False
        if old is not None:
            old_size, old_file, was_replicated = old[0], old[4], bool(old[5])
            old_version = DataVersion(old[1], old[2], bytes(old[3]))
            if version == old_version:
                return PutOutcome.UNCHANGED
            if exclusive and (job_id is None or old[6] != str(job_id)):
                return PutOutcome.TAKEN
            if version < old_version:
                return PutOutcome.STALE
        job = job_id if job_id is not None else job_of_name(name)
        if any(t.buries(name, job, version) for t in self._tombstones_after(written_at, now)):
            return PutOutcome.STALE
        size = len(data)
        self._check_space(name, size, old_size)
        file = None
        if self._values is not None and size > self._inline_limit:
            try:
                file = self._values.write(data)
                self._values.sync()  # the rename is durable before the row names the file
            except OSError as exc:
                if exc.errno in _SPACE_ERRNOS:
                    raise DataStoreFullError(
                        f"no room on disk for {name!r} ({size} bytes): {exc.strerror}",
                        needed=size,
                        free=0,
                    ) from None
                raise
        try:
            with transaction(self._conn):
                self._conn.execute(
                    "INSERT OR REPLACE INTO data (name, size, written_at, writer, job, stored_at,"
                    " digest, replicas, replicated, file, value)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        size,
                        written_at,
                        writer,
                        None if job is None else str(job),
                        now,
                        version.digest,
                        replicas,
                        int(replicas > 1 or was_replicated),
                        file,
                        None if file is not None else data,
                    ),
                )
        except sqlite3.Error as exc:
            if file is not None and self._values is not None:
                self._values.remove_durably([file])
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise DataStoreFullError(
                    f"no room in the database for {name!r} ({size} bytes)", needed=size, free=0
                ) from None
            raise DataStoreError(f"cannot store {name!r}: {exc}") from exc
        if old_file is not None:
            self._remove_files([old_file])
        self.used += size - old_size
        self.items += 1 if old is None else 0
        return PutOutcome.STORED

    def _check_space(self, name: str, size: int, replaced: int) -> None:
        room = self.quota_bytes - (self.used - replaced)
        if size > room:
            raise DataStoreFullError(
                f"quota of {self.quota_bytes} bytes full: {name!r} needs {size} bytes, "
                f"{max(0, room)} free",
                needed=size,
                free=max(0, room),
            )
        if self.directory is not None:
            disk = self._disk_free(self.directory)
            if size > disk:
                raise DataStoreFullError(
                    f"disk full: {name!r} needs {size} bytes, {disk} free", needed=size, free=disk
                )

    def delete(
        self, query: str, *, version: DataVersion, now: float, older_only: bool = True
    ) -> int:
        """Delete the data ``query`` selects (a name with its subkeys, or a pattern) that are
        older than the delete's ``version`` (all of them unless ``older_only``), and keep its
        tombstone."""
        self._check_open()
        tombstone = Tombstone(query, None, False, version, now + self.tombstone_lifetime_s)
        return self._delete(_where(query_ranges(query), None), tombstone, now, older_only)

    def delete_job(
        self,
        job_id: uuid.UUID,
        *,
        keep_result: bool,
        version: DataVersion,
        now: float,
        older_only: bool = True,
    ) -> int:
        """Delete the data of a job older than the delete's ``version`` (all of them unless
        ``older_only``), except ``<job-uuid>/result`` with ``keep_result``; keep its
        tombstone."""
        self._check_open()
        clause, params = "job = ?", [str(job_id)]
        if keep_result:
            clause += " AND name != ?"
            params.append(job_result_name(job_id))
        tombstone = Tombstone(None, job_id, keep_result, version, now + self.tombstone_lifetime_s)
        return self._delete([(clause, list(params))], tombstone, now, older_only)

    def _delete(
        self,
        clauses: list[tuple[str, list[object]]],
        tombstone: Tombstone,
        now: float,
        older_only: bool,
    ) -> int:
        version = tombstone.version
        if older_only:
            # Older than the delete: (written_at, writer) below (deleted_at, deleter); a write
            # of the same time and writer is older too (a delete's digest is above all).
            older = "(written_at < ? OR (written_at = ? AND writer <= ?))"
            clauses = [
                (f"({clause}) AND {older}", [*params, version[0], version[0], version[1]])
                for clause, params in clauses
            ]
        size = count = 0
        files: list[str] = []
        with transaction(self._conn):
            self._add_tombstone(tombstone, now)
            if clauses:
                where = " OR ".join(f"({clause})" for clause, _ in clauses)
                params = [p for _, clause_params in clauses for p in clause_params]
                size, count = self._conn.execute(
                    f"SELECT COALESCE(SUM(size), 0), COUNT(*) FROM data WHERE {where}", params
                ).fetchone()
                files = [
                    row[0]
                    for row in self._conn.execute(
                        f"SELECT file FROM data WHERE ({where}) AND file IS NOT NULL", params
                    )
                ]
                self._conn.execute(f"DELETE FROM data WHERE {where}", params)
        self._remove_files(files)
        self.used -= size
        self.items -= count
        return int(count)

    def _add_tombstone(self, tombstone: Tombstone, now: float) -> None:
        """Keep ``tombstone`` (inside a transaction); forget the expired ones."""
        self._conn.execute("DELETE FROM tombstones WHERE expires_at <= ?", (now,))
        self._conn.execute(
            "INSERT INTO tombstones (query, job, keep_result, deleted_at, deleter, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                tombstone.query,
                None if tombstone.job_id is None else str(tombstone.job_id),
                int(tombstone.keep_result),
                tombstone.version.written_at,
                tombstone.version.writer,
                tombstone.expires_at,
            ),
        )

    def _tombstones_after(self, written_at: float, now: float) -> list[Tombstone]:
        """The live tombstones of deletes made at or after ``written_at`` (only those can
        bury a write of that time)."""
        return [
            _tombstone(row)
            for row in self._conn.execute(
                "SELECT query, job, keep_result, deleted_at, deleter, expires_at FROM tombstones"
                " WHERE deleted_at >= ? AND expires_at > ?",
                (written_at, now),
            )
        ]

    def tombstones(self, now: float) -> list[Tombstone]:
        """Every tombstone still kept at ``now``, oldest delete first."""
        self._check_open()
        return [
            _tombstone(row)
            for row in self._conn.execute(
                "SELECT query, job, keep_result, deleted_at, deleter, expires_at FROM tombstones"
                " WHERE expires_at > ? ORDER BY deleted_at, id",
                (now,),
            )
        ]

    # -- replica copies to send -------------------------------------------------------------------

    def queue_copies(self, name: str, targets: Sequence[str], now: float) -> int:
        """Remember to send a copy of ``name`` to each of ``targets`` (a target already
        waiting for one is not queued twice); returns how many were new."""
        self._check_open()
        with transaction(self._conn):
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO copies (name, target, queued_at) VALUES (?, ?, ?)",
                [(name, target, now) for target in targets],
            )
            return self._conn.total_changes - before

    def queued_copies(self, limit: int) -> list[tuple[str, str, float]]:
        """The oldest ``limit`` copies waiting: ``(name, target, queued_at)``."""
        self._check_open()
        return [
            (name, target, queued_at)
            for name, target, queued_at in self._conn.execute(
                "SELECT name, target, queued_at FROM copies ORDER BY queued_at, name, target"
                " LIMIT ?",
                (limit,),
            )
        ]

    def remove_copy(self, name: str, target: str) -> None:
        """Forget a copy (sent, or no longer possible)."""
        self._check_open()
        with transaction(self._conn):
            self._conn.execute("DELETE FROM copies WHERE name = ? AND target = ?", (name, target))

    def _remove_files(self, files: list[str]) -> None:
        if self._values is None or not files:
            return
        try:
            self._values.remove_durably(files)
        except OSError as exc:  # the rows are gone; the next open removes the orphans
            logger.warning("datastore: cannot remove %d value files: %s", len(files), exc)

    # -- reading --------------------------------------------------------------------------------

    def get(
        self,
        query: str,
        *,
        after: str | None,
        max_bytes: int,
        max_items: int,
        have: frozenset[bytes] = frozenset(),
    ) -> tuple[list[Datum], str | None]:
        """The data ``query`` selects, by name, starting after ``after``: as many as fit in
        ``max_bytes`` of content (at least one) and ``max_items``. Returns them and the name to
        continue after, or ``None`` when nothing follows. A datum whose digest is in ``have``
        comes with an empty value, not read and not counted in ``max_bytes`` (the requester
        holds it)."""
        self._check_open()
        ranges = [r.starting_after(after) for r in query_ranges(query)]
        rows = self._select(_INFO_COLUMNS + ", file, value", ranges, None, limit=max_items + 1)
        items: list[Datum] = []
        total = 0
        for row in rows:
            info = _info(row)
            held = info.digest in have
            size = 0 if held else info.size
            if len(items) >= max_items or (items and total + size > max_bytes):
                return items, items[-1].info.name
            if not name_matches(query, info.name):  # pragma: no cover - the ranges are exact
                continue
            if held:
                items.append(Datum(info, b""))
                continue
            data = self._value(info.name, row[_INFO_WIDTH], row[_INFO_WIDTH + 1])
            if data is None:
                continue
            items.append(Datum(info, data))
            total += size
        return items, None

    def _value(self, name: str, file: str | None, value: bytes | None) -> bytes | None:
        if file is None:
            return b"" if value is None else bytes(value)
        assert self._values is not None
        try:
            return self._values.read(file)
        except FileNotFoundError:  # deleted under our feet (by hand): skip it
            logger.error("datastore: the value file of %r is missing", name)
            return None

    def listing(
        self,
        query: str | None,
        *,
        job_id: uuid.UUID | None,
        after: str | None,
        page_size: int,
        replicated: bool = False,
    ) -> tuple[list[DatumInfo], str | None]:
        """Metadata of the data ``query`` selects (``None``: all) of job ``job_id`` (``None``:
        any), only the replicated ones if ``replicated``, by name, starting after ``after``; at
        most ``page_size``. Returns them and the name to continue after, or ``None`` when
        nothing follows."""
        self._check_open()
        ranges = query_ranges(query) if query is not None else (NameRange("", None),)
        ranges = tuple(r.starting_after(after) for r in ranges)
        job = None if job_id is None else str(job_id)
        rows = self._select(_INFO_COLUMNS, ranges, job, limit=page_size + 1, replicated=replicated)
        entries = [_info(row) for row in rows]
        if len(entries) > page_size:
            entries = entries[:page_size]
            return entries, entries[-1].name
        return entries, None

    def set_private(self, name: str, private: bool) -> None:
        """Note whether ``name`` is readable by its owner only (the latest write says)."""
        self._check_open()
        with transaction(self._conn):
            if private:
                self._conn.execute("INSERT OR IGNORE INTO private_names VALUES (?)", (name,))
            else:
                self._conn.execute("DELETE FROM private_names WHERE name = ?", (name,))

    def private_among(self, names: Sequence[str]) -> set[str]:
        """Which of ``names`` are readable by their owner only."""
        self._check_open()
        found: set[str] = set()
        for start in range(0, len(names), 500):
            chunk = list(names[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT name FROM private_names WHERE name IN ({marks})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def info(self, name: str) -> DatumInfo | None:
        """The metadata of the datum named exactly ``name``, if stored."""
        self._check_open()
        row = self._conn.execute(
            f"SELECT {_INFO_COLUMNS} FROM data WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else _info(row)

    def datum(self, name: str) -> Datum | None:
        """The datum named exactly ``name`` with its value, if stored (and readable)."""
        self._check_open()
        row = self._conn.execute(
            f"SELECT {_INFO_COLUMNS}, file, value FROM data WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        data = self._value(name, row[_INFO_WIDTH], row[_INFO_WIDTH + 1])
        return None if data is None else Datum(_info(row), data)

    def _select(
        self,
        columns: str,
        ranges: Sequence[NameRange],
        job: str | None,
        *,
        limit: int,
        replicated: bool = False,
    ) -> Iterator[Sequence[Any]]:
        clauses = _where(ranges, job, replicated=replicated)
        if not clauses:
            return iter(())
        sql = " UNION ALL ".join(f"SELECT {columns} FROM data WHERE {c}" for c, _ in clauses)
        params = [p for _, clause_params in clauses for p in clause_params]
        return self._conn.execute(f"{sql} ORDER BY name LIMIT ?", [*params, limit])

    def space(self) -> SpaceInfo:
        """Bytes and data stored, the quota and the disk's free space."""
        self._check_open()
        disk = None if self.directory is None else self._disk_free(self.directory)
        return SpaceInfo(used=self.used, items=self.items, quota=self.quota_bytes, disk_free=disk)

    def close(self) -> None:
        """Close the database and release the directory (idempotent)."""
        self._closed = True
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
        if self._values is not None:
            self._values.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
