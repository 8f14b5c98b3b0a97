"""Opening ucp-dtn's sqlite databases, and using them from trio.

Every sqlite database of ucp-dtn — the bundle store (:mod:`.database`), the datastore, the
broker's and the executor's journals, the client's journal — is opened with
:func:`open_sqlite`, so they all behave alike:

* **Durable commits**: WAL journal with ``synchronous=FULL``, so ``COMMIT`` returns only once
  the WAL has been fsync'd: a committed transaction survives a crash of the process and of the
  machine (as far as the disk honours fsync). On a file system without WAL support (some
  network file systems) sqlite keeps its rollback journal, which ``FULL`` makes just as
  durable, only slower; a warning says so.
* **Explicit transactions**: the connection is in autocommit mode (``isolation_level=None``):
  a lone statement commits by itself, several go inside :func:`transaction`
  (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception). Python's implicit
  transactions never open behind the caller's back.
* **Waiting, not failing, on a busy file**: ``busy_timeout`` of :data:`BUSY_TIMEOUT_MS` (a
  checkpoint or a second connection of the same process holding the lock for a moment).
* **Private files**: the database file and its ``-wal`` and ``-shm`` companions are mode
  0600 (sqlite gives the companions the database file's mode); :func:`make_private_directory`
  creates the directory that holds them 0700.
* ``path=None`` opens an in-memory database with the same settings (nothing of the above
  concerns files), so throwaway nodes and tests share one code path with durable ones.

Using a connection from trio
----------------------------
sqlite calls block (a commit waits for an fsync), so they never run on the event loop. The one
way to call them, used by every module above:

* one ``trio.CapacityLimiter(1)`` per connection, and every call on that connection through
  ``await trio.to_thread.run_sync(function, limiter=limiter)``. The limiter admits one call at
  a time in FIFO order, and a waiting call occupies a trio task, not a worker thread; the
  connection is opened with ``check_same_thread=False`` because successive calls may run on
  different worker threads (never two at once).
* A call in progress is not abandoned on cancellation (``to_thread.run_sync``'s default), so
  a transaction either completes or rolls back before ``Cancelled`` propagates: what a caller
  was told is committed is on disk.
* Closing goes through the same limiter inside ``trio.CancelScope(shield=True)``: it waits for
  the call in progress, and a cancelled owner still closes cleanly.
* A store that must read while it commits (the bundle store) opens a second connection with
  its own limiter; WAL lets readers proceed during a write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from ..private_files import DIRECTORY_MODE, FILE_MODE, make_private_directory

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DIRECTORY_MODE",
    "FILE_MODE",
    "make_private_directory",
    "open_sqlite",
    "transaction",
]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for a lock another connection holds before failing with
``database is locked``, in milliseconds."""

_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def open_sqlite(path: Path | None, *, max_database_bytes: int | None = None) -> sqlite3.Connection:
    """Open (creating if missing) the database file ``path``, or an in-memory database for
    ``None``, with the settings of the module docstring. ``path``'s directory must exist.

    ``max_database_bytes`` caps the database (sqlite's ``max_page_count``): a write that
    would grow it further fails with ``SQLITE_FULL`` (``None``: no cap; mainly for tests that
    provoke a full disk). Blocking; raises :class:`sqlite3.Error` or :class:`OSError`.
    """
    if path is None:
        connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    else:
        _create_private_file(path)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path is not None:
            (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                logger.warning("%s: no WAL on this file system, journal mode %s", path, mode)
            # With WAL, FULL fsyncs the WAL at every commit: a committed transaction is durable.
            connection.execute("PRAGMA synchronous = FULL")
            for suffix in _COMPANION_SUFFIXES:  # left by an older version with wider modes
                companion = path.with_name(path.name + suffix)
                with contextlib.suppress(FileNotFoundError):
                    _restrict(companion, FILE_MODE)
        if max_database_bytes is not None:
            (page_size,) = connection.execute("PRAGMA page_size").fetchone()
            connection.execute(f"PRAGMA max_page_count = {max(1, max_database_bytes // page_size)}")
    except BaseException:
        connection.close()
        raise
    return connection


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on an autocommit connection (see :func:`open_sqlite`);
    any exception rolls the transaction back and propagates. ``IMMEDIATE`` takes the write lock
    at once, so a transaction never fails half-way for want of it."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the original error matters, not this one
                connection.execute("ROLLBACK")
        raise


def _create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode :data:`FILE_MODE` unless it exists, and restrict an
    existing one to that mode. sqlite takes an empty file for a new database and gives its
    ``-wal`` and ``-shm`` files the same mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def _restrict(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) != mode:
        os.chmod(path, mode)
