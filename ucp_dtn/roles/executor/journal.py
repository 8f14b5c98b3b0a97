"""The executor's durable record of the jobs it was given.

Theory of operation
-------------------
An executor confirms a ``job-dispatch`` bundle to its agent only after the job is recorded
here, and it records the result before it sends it. One row per job UUID, in one of three
states::

    RECEIVED ──(run ends, result recorded)──► FINISHED ──(result handed to the agent)──► SENT

* A dispatch of a job that already has a row is a duplicate: the job is not run again, the
  executor answers from the row (its state, or its result once there is one).
* After a restart, RECEIVED jobs run again from the start (their dispatch bundle was
  confirmed, so nobody else will resend it) and FINISHED jobs have their result sent again.
* SENT rows keep the result (for duplicates) but drop the dispatch; they are pruned by age and
  count (:meth:`JobJournal.prune`).

Storage is sqlite (``<workdir>/executor/journal.sqlite``, opened by
:func:`~ucp_dtn.store.sqlite_files.open_sqlite`: WAL, ``synchronous=FULL``, so a row the executor
acts on survives power loss) or an in-memory sqlite database for throwaway nodes. Every call
goes through ``trio.to_thread`` behind one ``CapacityLimiter(1)`` (the pattern of
:mod:`ucp_dtn.store.sqlite_files`).

Writes commit in groups: the writes of jobs that run side by side (a result recorded, another
marked sent, a batch of dispatches) that are asked for while a commit is in progress wait for
it to end and then commit together, in one transaction, in the order they were asked for
(group commit). Each call still returns only once its change is durable.

Marking a result sent needs no commit of its own (:meth:`JobJournal.mark_sent_soon`): the mark
rides with the next group (the next job's dispatch or result), or is written by
:meth:`JobJournal.flush_sent` once no other job is in flight. A crash before it is written
leaves the job FINISHED: its result is sent again after the restart, a duplicate the broker
drops (the first result wins) — never a lost result or a job run twice.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import sqlite3
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import trio

from ...store.sqlite_files import make_private_directory, open_sqlite, transaction
from ...ucp import MessageDecodeError, decode_message_as, encode_message
from ...ucp.messages import JobDispatch, JobResult

__all__ = ["JobJournal", "JournalEntry", "JournalState"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    state INTEGER NOT NULL,
    dispatch BLOB,
    result BLOB,
    received_at REAL NOT NULL,
    finished_at REAL
)
"""
_COLUMNS = "job_id, state, dispatch, result, received_at, finished_at"


class JournalState(enum.IntEnum):
    """Where a recorded job stands at this executor."""

    RECEIVED = 0
    """Recorded; not finished (queued, fetching, running, or interrupted by a restart)."""
    FINISHED = 1
    """Its result is recorded but may not have left yet."""
    SENT = 2
    """Its result was handed to the agent (durably stored there)."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One recorded job."""

    job_id: uuid.UUID
    """The job's UUID (the row's key)."""
    state: JournalState
    """Received, finished or sent: what a restart must still do for it."""
    dispatch: JobDispatch | None
    """The dispatch that brought it (dropped once the result is sent)."""
    result: JobResult | None
    """Its result, once finished."""
    received_at: float
    """When the dispatch was recorded (the executor's clock)."""
    finished_at: float | None
    """When the result was recorded."""


class JobJournal:
    """Jobs by UUID, durable when opened on a path. Open with :meth:`open`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        """Wrap an open connection (use :meth:`open`)."""
        self._db = connection
        self._limiter = trio.CapacityLimiter(1)
        self._queued: list[_Write[Any]] = []
        self._sent_soon: list[str] = []
        self._committing = False
        self.commits = 0
        """Write transactions committed (fewer than the writes asked for when they grouped)."""

    @classmethod
    async def open(cls, path: Path | None) -> JobJournal:
        """Open (creating it and its directory) the journal at ``path``; ``None``: in
        memory."""
        return await trio.to_thread.run_sync(cls._open_sync, path)

    @classmethod
    def _open_sync(cls, path: Path | None) -> JobJournal:
        if path is not None:
            make_private_directory(path.parent)
        connection = open_sqlite(path)
        try:
            connection.execute(_SCHEMA)
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    async def aclose(self) -> None:
        """Close the database once the call in progress has finished, even while being
        cancelled."""
        with trio.CancelScope(shield=True):
            with contextlib.suppress(sqlite3.Error, RuntimeError):
                await self.flush_sent()
            await self._call(self._db.close)

    async def _call(self, function: Callable[[], _T]) -> _T:
        return await trio.to_thread.run_sync(function, limiter=self._limiter)

    async def _write(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` in a write transaction, grouped with the writes asked for while
        another group commits (module docstring); its result once committed."""
        write = _Write(function)
        self._queued.append(write)
        if self._committing:
            await write.done.wait()
            return write.outcome()
        self._committing = True
        try:
            # Shielded: a group that started commits, and every caller in it learns how.
            with trio.CancelScope(shield=True):
                while self._queued:
                    group, self._queued = self._queued, []
                    sent, self._sent_soon = self._sent_soon, []
                    try:
                        await self._call(functools.partial(self._commit, group, sent))
                        self.commits += 1
                    finally:
                        for each in group:
                            each.done.set()
        finally:
            self._committing = False
        return write.outcome()

    def _commit(self, group: list[_Write[Any]], sent: list[str] | None = None) -> None:
        """Commit ``group`` in one transaction, with the marks of results ``sent``; if it
        fails, each write alone (so that one bad write fails only its own caller)."""
        try:
            with transaction(self._db):
                if sent:
                    self._mark_sent(sent)
                results = [write.function() for write in group]
        except Exception:
            if sent:
                # The marks are worth a retry alone; without them a result is sent once more.
                with contextlib.suppress(sqlite3.Error), transaction(self._db):
                    self._mark_sent(sent)
            if len(group) == 1:
                group[0].settle(error=sys.exc_info()[1])
                return
            for write in group:
                self._commit([write])
            return
        for write, result in zip(group, results, strict=True):
            write.settle(result=result)

    # -- operations -------------------------------------------------------------------------

    async def get(self, job_id: uuid.UUID) -> JournalEntry | None:
        """The row of ``job_id``, if any."""

        def get() -> JournalEntry | None:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (str(job_id),)
            ).fetchone()
            return None if row is None else self._entry(row)

        return await self._call(get)

    async def add(self, dispatch: JobDispatch, at: float) -> JournalEntry | None:
        """Record a new job durably. Returns ``None`` if it was new, else the existing row
        (which is left unchanged: a duplicate)."""
        job_id = str(dispatch.job.job_id)
        blob = encode_message(dispatch)

        def add() -> JournalEntry | None:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is not None:
                entry = self._entry(row)
                if entry is not None:
                    return entry
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (job_id, state, dispatch, received_at) "
                "VALUES (?, ?, ?, ?)",
                (job_id, int(JournalState.RECEIVED), blob, at),
            )
            return None

        return await self._write(add)

    async def add_cancelled(self, result: JobResult, at: float) -> bool:
        """Record a job cancelled before its dispatch arrived, as SENT with ``result`` (so
        that a later dispatch is a duplicate, answered with it). False if the job is known
        already (nothing changes)."""
        blob = encode_message(result)

        def add() -> bool:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, state, result, received_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (str(result.job_id), int(JournalState.SENT), blob, at, at),
            )
            return cursor.rowcount > 0

        return await self._write(add)

    async def finish(self, result: JobResult, at: float) -> None:
        """Record the job's result (state FINISHED)."""
        blob = encode_message(result)

        def finish() -> None:
            self._db.execute(
                "UPDATE jobs SET state = ?, result = ?, finished_at = ? WHERE job_id = ?",
                (int(JournalState.FINISHED), blob, at, str(result.job_id)),
            )

        await self._write(finish)

    async def mark_sent(self, job_id: uuid.UUID) -> None:
        """The result left (state SENT); the dispatch is no longer needed."""
        self.mark_sent_soon(job_id)
        await self.flush_sent()

    def mark_sent_soon(self, job_id: uuid.UUID) -> None:
        """Like :meth:`mark_sent`, written with the next group of writes (module docstring):
        until then the job reads as FINISHED."""
        self._sent_soon.append(str(job_id))

    @property
    def sent_unwritten(self) -> int:
        """Marks of :meth:`mark_sent_soon` not written yet."""
        return len(self._sent_soon)

    async def flush_sent(self) -> None:
        """Write the marks of :meth:`mark_sent_soon` now (with whatever else is waiting)."""
        if self._sent_soon:
            await self._write(lambda: None)

    def _mark_sent(self, job_ids: list[str]) -> None:
        self._db.executemany(
            "UPDATE jobs SET state = ?, dispatch = NULL WHERE job_id = ?",
            [(int(JournalState.SENT), job_id) for job_id in job_ids],
        )

    async def unfinished(self) -> list[JournalEntry]:
        """Rows not yet SENT (to resume after a restart), oldest first."""

        def select() -> list[JournalEntry]:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state != ? ORDER BY received_at, job_id",
                (int(JournalState.SENT),),
            ).fetchall()
            return [entry for row in rows if (entry := self._entry(row)) is not None]

        return await self._call(select)

    async def prune(self, *, finished_before: float, keep: int) -> int:
        """Forget SENT jobs finished before ``finished_before`` and all but the ``keep`` most
        recent SENT jobs; returns how many were forgotten."""

        def prune() -> int:
            cursor = self._db.execute(
                "DELETE FROM jobs WHERE state = ? AND (finished_at < ? OR job_id IN ("
                " SELECT job_id FROM jobs WHERE state = ?"
                " ORDER BY finished_at DESC, job_id LIMIT -1 OFFSET ?))",
                (int(JournalState.SENT), finished_before, int(JournalState.SENT), keep),
            )
            return cursor.rowcount

        return await self._write(prune)

    def _entry(self, row: tuple[Any, ...]) -> JournalEntry | None:
        """Decode a row; a row that does not decode is deleted (logged) and ``None``."""
        job_text, state, dispatch_blob, result_blob, received_at, finished_at = row
        assert isinstance(job_text, str)
        try:
            dispatch = (
                decode_message_as(dispatch_blob, JobDispatch)
                if isinstance(dispatch_blob, bytes)
                else None
            )
            result = (
                decode_message_as(result_blob, JobResult)
                if isinstance(result_blob, bytes)
                else None
            )
            entry = JournalEntry(
                job_id=uuid.UUID(job_text),
                state=JournalState(state),
                dispatch=dispatch,
                result=result,
                received_at=float(received_at),
                finished_at=None if finished_at is None else float(finished_at),
            )
            if entry.state is JournalState.RECEIVED and dispatch is None:
                raise ValueError("a received job without its dispatch")
            if entry.state is not JournalState.RECEIVED and result is None:
                raise ValueError("a finished job without its result")
        except (MessageDecodeError, ValueError) as exc:
            logger.error("executor journal: dropping unreadable row of job %s: %s", job_text, exc)
            self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_text,))
            return None
        return entry


class _Write(Generic[_T]):
    """One write waiting for its group's commit."""

    __slots__ = ("done", "error", "function", "result", "settled")

    def __init__(self, function: Callable[[], _T]) -> None:
        self.function = function
        self.done = trio.Event()
        self.result: _T | None = None
        self.error: BaseException | None = None
        self.settled = False

    def settle(self, *, result: _T | None = None, error: BaseException | None = None) -> None:
        """Called in the worker thread; the committer sets :attr:`done` back in trio."""
        self.result = result
        self.error = error
        self.settled = True

    def outcome(self) -> _T:
        if not self.settled:
            raise RuntimeError("the executor journal's commit did not complete")
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]
