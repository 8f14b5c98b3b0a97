"""The client's journal: the jobs it submitted, what it heard about them, and what waits to be
sent (:class:`ClientJournal`).

One sqlite file in the client home (opened by :func:`~ucp_dtn.store.sqlite_files.open_sqlite`:
WAL mode, synchronous writes, mode 0600), every call one transaction in ``trio.to_thread``
behind one ``CapacityLimiter(1)``. It holds

* **jobs** — one row per submitted job: its name in the plan and the plan file, its UUID, the
  broker it went to and whether that broker accepted it, the newest state heard (``job-state``
  updates and status replies; an older update never overwrites a newer one and a final state
  sticks), the first result that arrived (delivered to the client endpoint, or fetched from a
  datastore as ``<job-uuid>/result``) and where it was collected to; and the submission as it
  was sent (``job-submit``, inline data included), kept until the job's result is here or it
  was collected, so that the client can send it to another broker if the one that accepted it
  is lost before any other heard of the job (:mod:`.stranded`), and when it last did;
* **the outbox** — encoded messages that could not become bundles yet because no broker was
  known at all (the very first ``ucp submit`` while the broker is down); the next command that
  reaches a broker sends them, in order;
* **settings** — small facts remembered between commands (the last broker, the ``--via``
  addresses).

A client never acknowledges anything it has not written here first: a result bundle is
confirmed to the agent only after the result is in the journal.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from ..store.sqlite_files import open_sqlite, transaction
from ..ucp import JobResult, JobStatus, JobSubmission, MessageDecodeError, decode_message
from .errors import ClientUsageError, HomeError

__all__ = ["ClientJournal", "JobEntry", "JournalChange", "OutboxItem", "ResultSource"]

_T = TypeVar("_T")

JournalChange = Callable[[sqlite3.Connection], _T]
"""One change of the journal, made inside a transaction (:meth:`ClientJournal.apply`)."""

ResultSource = str
"""Where a result came from: ``"delivered"`` (a ``job-result`` bundle to the client endpoint)
or ``"datastore"`` (fetched as ``<job-uuid>/result``)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id BLOB PRIMARY KEY,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    broker TEXT,
    accepted_by TEXT,
    state INTEGER,
    state_at REAL,
    detail TEXT NOT NULL DEFAULT '',
    executor TEXT,
    result BLOB,
    result_from TEXT,
    result_at REAL,
    collected_at REAL,
    collected_to TEXT,
    warning TEXT NOT NULL DEFAULT '',
    submission BLOB,
    moved_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_name ON jobs (name, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    custody INTEGER NOT NULL,
    lifetime REAL NOT NULL,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_COLUMNS = (
    "job_id, seq, name, plan, submitted_at, broker, accepted_by, state, state_at, detail, "
    "executor, result, result_from, result_at, collected_at, collected_to, warning, moved_at"
)
# Columns added after the first version of the journal: (name, definition).
_ADDED_COLUMNS = (
    ("warning", "TEXT NOT NULL DEFAULT ''"),
    ("submission", "BLOB"),
    ("moved_at", "REAL"),
)
_HEX = re.compile(r"[0-9a-f-]+")
_MIN_PREFIX = 4


def _state(code: int | None) -> JobStatus | int | None:
    if code is None:
        return None
    try:
        return JobStatus(code)
    except ValueError:
        return code


def _is_final(state: JobStatus | int | None) -> bool:
    return isinstance(state, JobStatus) and state.final


@dataclass(frozen=True, slots=True)
class JobEntry:
    """What the client knows about one job it submitted."""

    job_id: uuid.UUID
    """The UUID the client gave the job (the row's key)."""
    name: str
    """Its name in the plan."""
    plan: str
    """The plan file it came from."""
    submitted_at: float
    """When ``ucp submit`` recorded it (the client's clock)."""
    sequence: int = 0
    """Order of submission in this home."""
    broker: str | None = None
    """The broker endpoint its submission was sent to; ``None`` while it waits in the outbox."""
    accepted_by: str | None = None
    """The broker that answered ``job-accepted``, once one did."""
    state: JobStatus | int | None = None
    """The newest state heard; ``None`` before any."""
    state_at: float | None = None
    """When the broker says that state began (the broker's clock)."""
    detail: str = ""
    """The broker's line about that state."""
    executor: str | None = None
    """The executor it was dispatched to, when known."""
    result: JobResult | None = None
    """The first result that arrived."""
    result_from: ResultSource | None = None
    """Where the result came from."""
    result_at: float | None = None
    """When it arrived (the client's clock)."""
    collected_at: float | None = None
    """When ``ucp collect`` last unpacked it."""
    collected_to: str | None = None
    """Where it was unpacked."""
    warning: str = ""
    """What the broker warned about when it accepted the job (e.g. no node is known at its
    result address)."""
    moved_at: float | None = None
    """When the client last sent the job to another broker because the one it was with was
    lost (the client's clock; :mod:`.stranded`)."""

    @property
    def final(self) -> bool:
        """Whether the job's state is final (done, failed, rejected, cancelled)."""
        return _is_final(self.state)

    @property
    def settled(self) -> bool:
        """Whether nothing more will come for it: a result is here, or it was rejected or
        cancelled."""
        return self.result is not None or self.state in (JobStatus.REJECTED, JobStatus.CANCELLED)

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of its UUID, as ``ucp`` shows it."""
        return str(self.job_id)[:8]

    @property
    def label(self) -> str:
        """How messages name the job: ``name (short id)``."""
        return f"{self.name} ({self.short_id})"

    @property
    def succeeded(self) -> bool:
        """Whether its result is here and says success."""
        return self.result is not None and self.result.ok


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message waiting for the first reachable broker."""

    sequence: int
    """Its place in the outbox (sent in this order)."""
    payload: bytes
    """The encoded UCP message."""
    custody: bool
    """Whether it travels with custody transfer."""
    lifetime_s: float
    """Lifetime of the bundle it will become, in seconds from when it is sent."""
    queued_at: float
    """When it was queued (the client's clock)."""


def _entry(row: tuple[object, ...]) -> JobEntry:
    (
        job_id,
        seq,
        name,
        plan,
        submitted_at,
        broker,
        accepted_by,
        state,
        state_at,
        detail,
        executor,
        result,
        result_from,
        result_at,
        collected_at,
        collected_to,
        warning,
        moved_at,
    ) = row
    decoded: JobResult | None = None
    if isinstance(result, bytes):
        try:
            decoded = JobResult.from_cbor(result)
        except MessageDecodeError:
            decoded = None
    assert isinstance(job_id, bytes) and isinstance(seq, int)
    return JobEntry(
        job_id=uuid.UUID(bytes=job_id),
        sequence=seq,
        name=str(name),
        plan=str(plan),
        submitted_at=float(submitted_at),  # type: ignore[arg-type]
        broker=None if broker is None else str(broker),
        accepted_by=None if accepted_by is None else str(accepted_by),
        state=_state(state if isinstance(state, int) else None),
        state_at=float(state_at) if isinstance(state_at, int | float) else None,
        detail=str(detail or ""),
        executor=None if executor is None else str(executor),
        result=decoded,
        result_from=None if result_from is None else str(result_from),
        result_at=float(result_at) if isinstance(result_at, int | float) else None,
        collected_at=float(collected_at) if isinstance(collected_at, int | float) else None,
        collected_to=None if collected_to is None else str(collected_to),
        warning=str(warning or ""),
        moved_at=float(moved_at) if isinstance(moved_at, int | float) else None,
    )


class ClientJournal:
    """The journal (see the module docstring). Open with :meth:`open`; ``await aclose()``."""

    def __init__(self, connection: sqlite3.Connection, clock: Callable[[], float]) -> None:
        self._db = connection
        self._clock = clock
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    async def open(
        cls, path: Path | None, *, clock: Callable[[], float] = time.time
    ) -> ClientJournal:
        """Open the journal at ``path`` (``None``: in memory, for tests)."""

        def connect() -> sqlite3.Connection:
            try:
                db = open_sqlite(path)
            except (sqlite3.Error, OSError) as exc:
                raise HomeError(f"cannot open the journal {path}: {exc}") from None
            try:
                db.executescript(_SCHEMA)
                present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
                for column, definition in _ADDED_COLUMNS:
                    if column not in present:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {definition}")
            except sqlite3.Error as exc:
                db.close()
                raise HomeError(f"cannot open the journal {path}: {exc}") from None
            return db

        return cls(await trio.to_thread.run_sync(connect), clock)

    def now(self) -> float:
        """The time by the journal's clock (the client's), which its entries are stamped
        with."""
        return self._clock()

    async def aclose(self) -> None:
        """Close the file once the call in progress has finished, even while being
        cancelled."""
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._db.close, limiter=self._limiter)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one transaction in a worker thread, one call at a time."""

        def run_in_transaction() -> _T:
            try:
                with transaction(self._db) as db:
                    return work(db)
            except sqlite3.Error as exc:
                raise HomeError(f"journal: {exc}") from None

        return await trio.to_thread.run_sync(run_in_transaction, limiter=self._limiter)

    # -- jobs -----------------------------------------------------------------------------------

    async def add_jobs(
        self, plan: str, jobs: Sequence[tuple[str, uuid.UUID]], *, broker: str | None
    ) -> None:
        """Record newly submitted jobs (``(name, uuid)`` in plan order) before anything is
        sent; ``broker`` is where they go (``None``: into the outbox)."""
        now = self._clock()

        def work(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()
            seq = int(row[0])
            for name, job_id in jobs:
                seq += 1
                db.execute(
                    "INSERT OR IGNORE INTO jobs (job_id, seq, name, plan, submitted_at, broker) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id.bytes, seq, name, plan, now, broker),
                )

        await self._run(work)

    async def set_broker(self, job_ids: Iterable[uuid.UUID], broker: str) -> None:
        """Note that these jobs' submissions left for ``broker``."""
        ids = [(broker, job_id.bytes) for job_id in job_ids]
        await self._run(lambda db: db.executemany("UPDATE jobs SET broker=? WHERE job_id=?", ids))

    async def keep_submissions(self, submissions: Sequence[JobSubmission]) -> None:
        """Keep the submissions as they are sent (until the job's result is here or it was
        collected): what :meth:`move` sends again."""
        rows = [(message.to_cbor(), message.job.job_id.bytes) for message in submissions]
        await self._run(
            lambda db: db.executemany("UPDATE jobs SET submission=? WHERE job_id=?", rows)
        )

    async def submissions(self, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, JobSubmission]:
        """The kept submissions of these jobs (those still kept, that decode)."""

        def work(db: sqlite3.Connection) -> dict[uuid.UUID, bytes]:
            found: dict[uuid.UUID, bytes] = {}
            for job_id in job_ids:
                row = db.execute(
                    "SELECT submission FROM jobs WHERE job_id=? AND submission IS NOT NULL",
                    (job_id.bytes,),
                ).fetchone()
                if row is not None:
                    found[job_id] = bytes(row[0])
            return found

        kept: dict[uuid.UUID, JobSubmission] = {}
        for job_id, payload in (await self._run(work)).items():
            try:
                message = decode_message(payload)
            except MessageDecodeError:
                continue
            if isinstance(message, JobSubmission) and message.job.job_id == job_id:
                kept[job_id] = message
        return kept

    async def move(self, job_id: uuid.UUID, broker: str) -> JobEntry | None:
        """The job's submission was sent again, to ``broker``: it is that broker's to accept
        now (``accepted_by`` is cleared until it does). Returns the entry, ``None`` for an
        unknown job."""
        now = self._clock()

        def work(db: sqlite3.Connection) -> JobEntry | None:
            db.execute(
                "UPDATE jobs SET broker=?, accepted_by=NULL, moved_at=? WHERE job_id=?",
                (broker, now, job_id.bytes),
            )
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id=?", (job_id.bytes,)
            ).fetchone()
            return None if row is None else _entry(row)

        return await self._run(work)

    async def get(self, job_id: uuid.UUID) -> JobEntry | None:
        """The job with this UUID, if this client submitted it."""

        def work(db: sqlite3.Connection) -> JobEntry | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id=?", (job_id.bytes,)
            ).fetchone()
            return None if row is None else _entry(row)

        return await self._run(work)

    async def get_many(self, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, JobEntry]:
        """The jobs with these UUIDs that this client submitted, in one read (a caller
        following many jobs reads them all at once instead of one thread call each)."""

        def work(db: sqlite3.Connection) -> dict[uuid.UUID, JobEntry]:
            found: dict[uuid.UUID, JobEntry] = {}
            for start in range(0, len(job_ids), 500):  # under sqlite's variable limit
                chunk = [job_id.bytes for job_id in job_ids[start : start + 500]]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT {_COLUMNS} FROM jobs WHERE job_id IN ({marks})"
                for row in db.execute(query, chunk):
                    entry = _entry(row)
                    found[entry.job_id] = entry
            return found

        return await self._run(work)

    async def jobs(self) -> list[JobEntry]:
        """Every job, oldest submission first."""

        def work(db: sqlite3.Connection) -> list[JobEntry]:
            return [_entry(r) for r in db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY seq")]

        return await self._run(work)

    async def find(self, reference: str) -> JobEntry:
        """The job a user means by ``reference``: its UUID, a unique prefix of it (at least
        four hex digits), or its name (the latest submission of that name).
        :class:`ClientUsageError` if nothing or more than one job fits."""
        text = reference.strip().lower()
        entries = await self.jobs()
        named = [entry for entry in entries if entry.name == reference]
        if named:
            return named[-1]
        if _HEX.fullmatch(text) and len(text.replace("-", "")) >= _MIN_PREFIX:
            matches = [e for e in entries if str(e.job_id).startswith(text)]
            if not matches:
                compact = text.replace("-", "")
                matches = [e for e in entries if e.job_id.hex.startswith(compact)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ClientUsageError(
                    f"{reference!r} fits {len(matches)} jobs: give more of the UUID"
                )
        raise ClientUsageError(f"no job called {reference!r} was submitted from this client")

    async def accepted(self, job_id: uuid.UUID, broker: str, warning: str = "") -> JobEntry | None:
        """A broker accepted the job (and warned about ``warning``, if anything); returns the
        entry, or ``None`` for an unknown job."""
        return await self._run(self.accepted_change(job_id, broker, warning))

    def accepted_change(
        self, job_id: uuid.UUID, broker: str, warning: str = ""
    ) -> JournalChange[JobEntry | None]:
        """What :meth:`accepted` does, for :meth:`apply` with others in one transaction."""

        def work(db: sqlite3.Connection) -> JobEntry | None:
            db.execute(
                "UPDATE jobs SET accepted_by=?, broker=COALESCE(broker, ?), warning=? "
                "WHERE job_id=?",
                (broker, broker, warning, job_id.bytes),
            )
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id=?", (job_id.bytes,)
            ).fetchone()
            return None if row is None else _entry(row)

        return work

    async def update_state(
        self,
        job_id: uuid.UUID,
        state: JobStatus | int,
        at: float,
        *,
        detail: str = "",
        executor: str | None = None,
    ) -> JobEntry | None:
        """Record a state heard for the job. Returns the new entry if this changed what the
        journal knew, ``None`` otherwise (unknown job, an older update, a final state already
        recorded)."""
        return await self._run(
            self.state_change(job_id, state, at, detail=detail, executor=executor)
        )

    def state_change(
        self,
        job_id: uuid.UUID,
        state: JobStatus | int,
        at: float,
        *,
        detail: str = "",
        executor: str | None = None,
    ) -> JournalChange[JobEntry | None]:
        """What :meth:`update_state` does, for :meth:`apply` with others in one transaction."""

        def work(db: sqlite3.Connection) -> JobEntry | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id=?", (job_id.bytes,)
            ).fetchone()
            if row is None:
                return None
            entry = _entry(row)
            if entry.final and entry.state != state:
                return None
            if entry.state_at is not None and at < entry.state_at:
                return None
            new = dataclasses.replace(
                entry,
                state=_state(int(state)),
                state_at=at,
                detail=detail,
                executor=executor or entry.executor,
            )
            if (new.state, new.detail, new.executor) == (entry.state, entry.detail, entry.executor):
                return None
            db.execute(
                "UPDATE jobs SET state=?, state_at=?, detail=?, executor=? WHERE job_id=?",
                (int(state), at, detail, new.executor, job_id.bytes),
            )
            return new

        return work

    async def store_result(self, result: JobResult, source: ResultSource) -> JobEntry | None:
        """Keep the job's result unless one is already here (the first wins). Returns the new
        entry, or ``None`` (unknown job, result already kept)."""
        return await self._run(self.result_change(result, source))

    def result_change(
        self, result: JobResult, source: ResultSource
    ) -> JournalChange[JobEntry | None]:
        """What :meth:`store_result` does, for :meth:`apply` with others in one transaction."""
        now = self._clock()

        def work(db: sqlite3.Connection) -> JobEntry | None:
            cursor = db.execute(
                "UPDATE jobs SET result=?, result_from=?, result_at=?, submission=NULL "
                "WHERE job_id=? AND result IS NULL",
                (result.to_cbor(), source, now, result.job_id.bytes),
            )
            if cursor.rowcount == 0:
                return None
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id=?", (result.job_id.bytes,)
            ).fetchone()
            return _entry(row)

        return work

    async def apply(self, changes: Sequence[JournalChange[_T]]) -> list[_T]:
        """Make several changes (from :meth:`accepted_change`, :meth:`state_change`,
        :meth:`result_change`) in one transaction, in order; their results in order."""
        if not changes:
            return []
        return await self._run(lambda db: [change(db) for change in changes])

    async def mark_collected(self, job_id: uuid.UUID, directory: str | None) -> None:
        """The job's result was unpacked into ``directory`` (``None``: the job was rejected and
        has none; it was reported)."""
        now = self._clock()
        await self._run(
            lambda db: db.execute(
                "UPDATE jobs SET collected_at=?, collected_to=?, submission=NULL WHERE job_id=?",
                (now, directory, job_id.bytes),
            )
        )

    async def mark_collected_many(self, marks: Sequence[tuple[uuid.UUID, str | None]]) -> None:
        """:meth:`mark_collected` for several jobs ``(job_id, directory)`` in one
        transaction."""
        now = self._clock()
        rows = [(now, directory, job_id.bytes) for job_id, directory in marks]
        await self._run(
            lambda db: db.executemany(
                "UPDATE jobs SET collected_at=?, collected_to=?, submission=NULL WHERE job_id=?",
                rows,
            )
        )

    # -- outbox -----------------------------------------------------------------------------------

    async def queue(self, items: Sequence[tuple[bytes, bool, float]]) -> None:
        """Append ``(payload, custody, lifetime_s)`` messages to the outbox, in order."""
        now = self._clock()
        rows = [(payload, int(custody), lifetime, now) for payload, custody, lifetime in items]
        await self._run(
            lambda db: db.executemany(
                "INSERT INTO outbox (payload, custody, lifetime, queued_at) VALUES (?, ?, ?, ?)",
                rows,
            )
        )

    async def outbox(self) -> list[OutboxItem]:
        """What waits in the outbox, oldest first."""

        def work(db: sqlite3.Connection) -> list[OutboxItem]:
            return [
                OutboxItem(int(seq), bytes(payload), bool(custody), float(lifetime), float(at))
                for seq, payload, custody, lifetime, at in db.execute(
                    "SELECT seq, payload, custody, lifetime, queued_at FROM outbox ORDER BY seq"
                )
            ]

        return await self._run(work)

    async def drop_from_outbox(self, job_id: uuid.UUID) -> bool:
        """Take the submission of ``job_id`` out of the outbox (it is cancelled before it was
        ever sent); False if it is not there."""

        def work(db: sqlite3.Connection) -> bool:
            for seq, payload in db.execute("SELECT seq, payload FROM outbox").fetchall():
                try:
                    message = decode_message(bytes(payload))
                except MessageDecodeError:
                    continue
                if isinstance(message, JobSubmission) and message.job.job_id == job_id:
                    db.execute("DELETE FROM outbox WHERE seq=?", (seq,))
                    return True
            return False

        return await self._run(work)

    async def remove_outbox(self, sequence: int) -> None:
        """Drop one outbox item (it became a bundle)."""
        await self._run(lambda db: db.execute("DELETE FROM outbox WHERE seq=?", (sequence,)))

    # -- settings -------------------------------------------------------------------------------

    async def setting(self, key: str) -> str | None:
        """A remembered value, or ``None``."""

        def work(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def remember(self, key: str, value: str) -> None:
        """Remember ``value`` under ``key``."""
        await self._run(
            lambda db: db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (key, value),
            )
        )
