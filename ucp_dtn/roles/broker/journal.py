"""The broker's durable state: an sqlite database (``<workdir>/broker/broker.db``, opened by
:func:`~ucp_dtn.store.sqlite_files.open_sqlite`), or an in-memory one for throwaway nodes.

Three tables:

* ``jobs`` — one row per job the broker owns: the encoded submission, the state with its
  timestamps, attempts, executor and detail, and the first result;
* ``pending`` — data requests (encoded, ``reply_to`` already filled in) waiting for a datastore
  to appear, oldest first;
* ``names`` — the name → datastore cache;
* ``datastores`` — every datastore heard of, with when it was last heard (a delete must reach
  the ones that are away, :mod:`.replica_keeper`);
* ``brokers`` — the other brokers it has had syncs from: after a restart it waits for their
  syncs before dispatching the jobs it had queued (one of them may have taken those over).

Schema version 2 added ``jobs.taken_from`` (and the last two tables); a version 1 database is
upgraded when opened.

:class:`BrokerJournal`'s methods block; the broker uses them through :class:`AsyncJournal`, which
runs every call in ``trio.to_thread`` with one capacity limiter, so one thread at a time uses the
connection (the pattern of :mod:`ucp_dtn.store.sqlite_files`). Writes are single transactions
(``synchronous=FULL``): once a method returns, the change survives a crash, and only then does
the broker tell anybody about it.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from ...store.sqlite_files import make_private_directory, open_sqlite, transaction
from ...ucp import MessageDecodeError, decode_message, encode_message
from ...ucp.messages import DataEntry, JobResult, JobSubmission, UcpMessage
from .job_records import JobRecord, job_status

__all__ = ["AsyncJournal", "BrokerJournal", "JournalContents", "PendingRequest"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id BLOB PRIMARY KEY,
    sequence INTEGER NOT NULL,
    submission BLOB NOT NULL,
    client TEXT NOT NULL,
    state INTEGER NOT NULL,
    detail TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    executor TEXT,
    dispatched_at REAL,
    started_at REAL,
    finished_at REAL,
    result BLOB,
    result_ref TEXT,
    result_delivered INTEGER NOT NULL,
    taken_from TEXT
);
CREATE TABLE IF NOT EXISTS pending (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    message BLOB NOT NULL,
    custody INTEGER NOT NULL,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    size INTEGER NOT NULL,
    written_at REAL NOT NULL,
    job_id BLOB
);
CREATE TABLE IF NOT EXISTS datastores (
    node TEXT PRIMARY KEY,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS brokers (
    broker TEXT PRIMARY KEY,
    last_heard REAL NOT NULL
);
"""

_JOB_COLUMNS = (
    "job_id, sequence, submission, client, state, detail, submitted_at, updated_at, attempts, "
    "executor, dispatched_at, started_at, finished_at, result, result_ref, result_delivered, "
    "taken_from"
)


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A data request waiting for a datastore."""

    sequence: int
    """Its place in the queue (its key in the journal)."""
    message: UcpMessage
    """The request, as it will be relayed."""
    custody: bool
    """Whether it travels with custody."""
    queued_at: float
    """When it was queued (the broker's clock)."""


@dataclass(frozen=True, slots=True)
class JournalContents:
    """Everything the journal holds, as read when the broker starts."""

    jobs: tuple[JobRecord, ...]
    """Jobs, in order of acceptance."""
    pending: tuple[PendingRequest, ...]
    """Queued data requests, oldest first."""
    names: tuple[DataEntry, ...]
    """The name cache (every entry has a holder)."""
    datastores: tuple[tuple[str, float], ...] = ()
    """Datastores heard of: node ID and when last heard."""
    brokers: tuple[str, ...] = ()
    """Other brokers (endpoints) it has had syncs from."""


class BrokerJournal:
    """The broker's sqlite database (blocking calls; see the module docstring)."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self.path = path
        """The database file, or ``None`` in memory."""

    @classmethod
    def open(cls, directory: Path | None) -> BrokerJournal:
        """Open (creating if need be) ``directory/broker.db``; in memory if ``None``."""
        path = None
        if directory is not None:
            make_private_directory(directory)
            path = directory / "broker.db"
        connection = open_sqlite(path)
        try:
            row = None
            if connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone():
                row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is not None and row[0] == 1:
                with transaction(connection):
                    connection.execute("ALTER TABLE jobs ADD COLUMN taken_from TEXT")
                    connection.execute("UPDATE meta SET value = 2 WHERE key = 'schema'")
                row = (2,)
            connection.executescript(_SCHEMA)
            if row is None:
                connection.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
            elif row[0] != _SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path}: broker database schema {row[0]}, expected {_SCHEMA_VERSION}"
                )
        except BaseException:
            connection.close()
            raise
        return cls(connection, path)

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    # -- reading ----------------------------------------------------------------------------

    def load(self) -> JournalContents:
        """Read everything (rows that no longer decode are logged and skipped)."""
        jobs: list[JobRecord] = []
        for row in self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY sequence"):
            record = _record_from_row(row)
            if record is not None:
                jobs.append(record)
        pending: list[PendingRequest] = []
        for sequence, blob, custody, queued_at in self._db.execute(
            "SELECT sequence, message, custody, queued_at FROM pending ORDER BY sequence"
        ):
            try:
                message = decode_message(blob)
            except MessageDecodeError as exc:
                logger.warning("journal: dropping undecodable queued request %d: %s", sequence, exc)
                continue
            pending.append(PendingRequest(sequence, message, bool(custody), queued_at))
        names = tuple(
            DataEntry(
                name=name,
                size=size,
                written_at=written_at,
                job_id=None if job_id is None else uuid.UUID(bytes=job_id),
                holder=holder,
            )
            for name, holder, size, written_at, job_id in self._db.execute(
                "SELECT name, holder, size, written_at, job_id FROM names"
            )
        )
        datastores = tuple(
            (str(node), float(last_seen))
            for node, last_seen in self._db.execute("SELECT node, last_seen FROM datastores")
        )
        brokers = tuple(str(b) for (b,) in self._db.execute("SELECT broker FROM brokers"))
        return JournalContents(tuple(jobs), tuple(pending), names, datastores, brokers)

    # -- writing ----------------------------------------------------------------------------

    def put_jobs(self, records: Iterable[JobRecord]) -> None:
        """Insert or replace job rows, all in one transaction."""
        self.put_round(records, ())

    def put_round(self, records: Iterable[JobRecord], names: Iterable[DataEntry]) -> None:
        """Insert or replace job rows and name cache entries, all in one transaction (a
        handling round's level, :mod:`.handling_round`)."""
        rows = [_row_from_record(record) for record in records]
        name_rows = _name_rows(names)
        if not rows and not name_rows:
            return
        with transaction(self._db):
            if rows:
                placeholders = ", ".join("?" * len(rows[0]))
                self._db.executemany(
                    f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}) VALUES ({placeholders})", rows
                )
            if name_rows:
                self._db.executemany(
                    "INSERT OR REPLACE INTO names VALUES (?, ?, ?, ?, ?)", name_rows
                )

    def delete_jobs(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Forget jobs (another broker keeps them)."""
        keys = [(job_id.bytes,) for job_id in job_ids]
        if keys:
            with transaction(self._db):
                self._db.executemany("DELETE FROM jobs WHERE job_id = ?", keys)

    def put_brokers(self, rows: Iterable[tuple[str, float]]) -> None:
        """Note brokers (endpoints) heard from, and when."""
        rows = list(rows)
        if rows:
            with transaction(self._db):
                self._db.executemany(
                    "INSERT INTO brokers (broker, last_heard) VALUES (?, ?) ON CONFLICT (broker)"
                    " DO UPDATE SET last_heard = MAX(last_heard, excluded.last_heard)",
                    rows,
                )

    def add_pending(self, message: UcpMessage, *, custody: bool, queued_at: float) -> int:
        """Queue a data request; returns its sequence number."""
        with transaction(self._db):
            cursor = self._db.execute(
                "INSERT INTO pending (message, custody, queued_at) VALUES (?, ?, ?)",
                (encode_message(message), int(custody), queued_at),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def remove_pending(self, sequences: Iterable[int]) -> None:
        """Forget queued requests (relayed or given up)."""
        keys = [(sequence,) for sequence in sequences]
        if keys:
            with transaction(self._db):
                self._db.executemany("DELETE FROM pending WHERE sequence = ?", keys)

    def put_names(self, entries: Iterable[DataEntry]) -> None:
        """Insert or replace name cache entries (each must have a holder)."""
        self.put_round((), entries)

    def delete_names(self, names: Iterable[str]) -> None:
        """Forget name cache entries."""
        keys = [(name,) for name in names]
        if keys:
            with transaction(self._db):
                self._db.executemany("DELETE FROM names WHERE name = ?", keys)

    def put_datastores(self, rows: Iterable[tuple[str, float]]) -> None:
        """Note datastores (node ID) and when each was last heard (a later time wins)."""
        rows = list(rows)
        if rows:
            with transaction(self._db):
                self._db.executemany(
                    "INSERT INTO datastores (node, last_seen) VALUES (?, ?) ON CONFLICT (node)"
                    " DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)",
                    rows,
                )

    def delete_datastores(self, nodes: Iterable[str]) -> None:
        """Forget datastores."""
        keys = [(node,) for node in nodes]
        if keys:
            with transaction(self._db):
                self._db.executemany("DELETE FROM datastores WHERE node = ?", keys)


class AsyncJournal:
    """A :class:`BrokerJournal` used from trio: every call runs in a worker thread, one at a
    time. A call in progress is not abandoned on cancellation, so a write either happens
    completely or not at all."""

    def __init__(self, journal: BrokerJournal) -> None:
        self.journal = journal
        """The blocking journal underneath."""
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    async def open(cls, directory: Path | None) -> AsyncJournal:
        """Open the journal in ``directory`` (in memory if ``None``)."""
        return cls(await trio.to_thread.run_sync(BrokerJournal.open, directory))

    async def _run(self, function: Callable[..., _T], *args: object) -> _T:
        return await trio.to_thread.run_sync(function, *args, limiter=self._limiter)

    async def aclose(self) -> None:
        """Close the database, even while being cancelled."""
        with trio.CancelScope(shield=True):
            await self._run(self.journal.close)

    async def load(self) -> JournalContents:
        """See :meth:`BrokerJournal.load`."""
        return await self._run(self.journal.load)

    async def put_jobs(self, records: Iterable[JobRecord]) -> None:
        """See :meth:`BrokerJournal.put_jobs`."""
        await self._run(self.journal.put_jobs, list(records))

    async def put_round(self, records: Iterable[JobRecord], names: Iterable[DataEntry]) -> None:
        """See :meth:`BrokerJournal.put_round`."""
        await self._run(self.journal.put_round, list(records), list(names))

    async def delete_jobs(self, job_ids: Iterable[uuid.UUID]) -> None:
        """See :meth:`BrokerJournal.delete_jobs`."""
        await self._run(self.journal.delete_jobs, list(job_ids))

    async def put_brokers(self, rows: Iterable[tuple[str, float]]) -> None:
        """See :meth:`BrokerJournal.put_brokers`."""
        await self._run(self.journal.put_brokers, list(rows))

    async def add_pending(self, message: UcpMessage, *, custody: bool, queued_at: float) -> int:
        """See :meth:`BrokerJournal.add_pending`."""

        def add() -> int:
            return self.journal.add_pending(message, custody=custody, queued_at=queued_at)

        return await self._run(add)

    async def remove_pending(self, sequences: Iterable[int]) -> None:
        """See :meth:`BrokerJournal.remove_pending`."""
        await self._run(self.journal.remove_pending, list(sequences))

    async def put_names(self, entries: Iterable[DataEntry]) -> None:
        """See :meth:`BrokerJournal.put_names`."""
        await self._run(self.journal.put_names, list(entries))

    async def delete_names(self, names: Iterable[str]) -> None:
        """See :meth:`BrokerJournal.delete_names`."""
        await self._run(self.journal.delete_names, list(names))

    async def put_datastores(self, rows: Iterable[tuple[str, float]]) -> None:
        """See :meth:`BrokerJournal.put_datastores`."""
        await self._run(self.journal.put_datastores, list(rows))

    async def delete_datastores(self, nodes: Iterable[str]) -> None:
        """See :meth:`BrokerJournal.delete_datastores`."""
        await self._run(self.journal.delete_datastores, list(nodes))


def _name_rows(entries: Iterable[DataEntry]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for entry in entries:
        assert entry.holder is not None
        rows.append(
            (
                entry.name,
                entry.holder,
                entry.size,
                entry.written_at,
                None if entry.job_id is None else entry.job_id.bytes,
            )
        )
    return rows


def _row_from_record(record: JobRecord) -> tuple[object, ...]:
    return (
        record.job_id.bytes,
        record.sequence,
        encode_message(record.submission),
        record.client,
        int(record.state),
        record.detail,
        record.submitted_at,
        record.updated_at,
        record.attempts,
        record.executor,
        record.dispatched_at,
        record.started_at,
        record.finished_at,
        None if record.result is None else encode_message(record.result),
        record.result_ref,
        int(record.result_delivered),
        record.taken_from,
    )


def _record_from_row(row: tuple[object, ...]) -> JobRecord | None:
    (
        job_id,
        sequence,
        submission,
        client,
        state,
        detail,
        submitted_at,
        updated_at,
        attempts,
        executor,
        dispatched_at,
        started_at,
        finished_at,
        result,
        result_ref,
        result_delivered,
        taken_from,
    ) = row
    assert isinstance(job_id, bytes) and isinstance(submission, bytes)
    try:
        decoded = JobSubmission.from_cbor(submission)
        decoded_result = None if result is None else JobResult.from_cbor(_as_bytes(result))
    except MessageDecodeError as exc:
        logger.warning("journal: dropping undecodable job %s: %s", uuid.UUID(bytes=job_id), exc)
        return None
    return JobRecord(
        submission=decoded,
        client=str(client),
        sequence=_as_int(sequence),
        state=job_status(_as_int(state)),
        submitted_at=_as_float(submitted_at),
        updated_at=_as_float(updated_at),
        detail=str(detail),
        attempts=_as_int(attempts),
        executor=None if executor is None else str(executor),
        dispatched_at=None if dispatched_at is None else _as_float(dispatched_at),
        started_at=None if started_at is None else _as_float(started_at),
        finished_at=None if finished_at is None else _as_float(finished_at),
        result=decoded_result,
        result_ref=None if result_ref is None else str(result_ref),
        result_delivered=bool(result_delivered),
        taken_from=None if taken_from is None else str(taken_from),
    )


def _as_bytes(value: object) -> bytes:
    assert isinstance(value, bytes)
    return value


def _as_int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _as_float(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)
