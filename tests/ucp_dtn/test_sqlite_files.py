"""The one way ucp-dtn opens sqlite files: pragmas, private modes, transactions; and every
database of the project opened through it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from ucp_dtn.client.journal import ClientJournal
from ucp_dtn.roles.broker import AsyncJournal
from ucp_dtn.roles.datastore import NamedDataStore
from ucp_dtn.roles.executor import JobJournal
from ucp_dtn.store import SqliteBundleStore
from ucp_dtn.store.sqlite_files import (
    BUSY_TIMEOUT_MS,
    make_private_directory,
    open_sqlite,
    transaction,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_is_private_durable_and_in_autocommit_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    db = open_sqlite(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert db.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
        assert db.isolation_level is None
        db.execute("CREATE TABLE t (v)")
        db.execute("INSERT INTO t VALUES (1)")
        assert not db.in_transaction  # committed by itself
        for name in ("x.sqlite3", "x.sqlite3-wal", "x.sqlite3-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        db.close()


def test_an_existing_database_and_its_wal_are_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.execute("PRAGMA journal_mode = WAL")
        old.execute("CREATE TABLE t (v)")
        os.chmod(path, 0o644)
        wal = tmp_path / "old.sqlite3-wal"
        os.chmod(wal, 0o644)
        db = open_sqlite(path)
        try:
            assert mode(path) == 0o600 and mode(wal) == 0o600
            assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
        finally:
            db.close()


def test_in_memory_and_a_size_cap(tmp_path: Path) -> None:
    db = open_sqlite(None, max_database_bytes=64 * 1024)
    try:
        db.execute("CREATE TABLE t (v BLOB)")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    finally:
        db.close()


def test_a_transaction_commits_or_rolls_back_whole(tmp_path: Path) -> None:
    db = open_sqlite(tmp_path / "t.sqlite3")
    try:
        db.execute("CREATE TABLE t (v)")
        with transaction(db):
            db.execute("INSERT INTO t VALUES (1)")
            db.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(ZeroDivisionError), transaction(db):
            db.execute("INSERT INTO t VALUES (3)")
            _ = 1 / 0
        assert not db.in_transaction
        assert db.execute("SELECT v FROM t ORDER BY v").fetchall() == [(1,), (2,)]
    finally:
        db.close()


def test_private_directories(tmp_path: Path) -> None:
    make_private_directory(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    existing = tmp_path / "c"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    make_private_directory(existing / "d")
    assert mode(existing) == 0o755  # a parent that was there is not ours to change
    make_private_directory(existing)
    assert mode(existing) == 0o700  # the directory asked for is


async def _bundle_store(path: Path) -> Callable[[], Awaitable[None]]:
    store = await SqliteBundleStore.open(path, quota_bytes=1 << 20)
    return store.close


async def _datastore(path: Path) -> Callable[[], Awaitable[None]]:
    store = await NamedDataStore.open(path, quota_bytes=1 << 20)
    return store.aclose


async def _broker_journal(path: Path) -> Callable[[], Awaitable[None]]:
    journal = await AsyncJournal.open(path)
    return journal.aclose


async def _executor_journal(path: Path) -> Callable[[], Awaitable[None]]:
    journal = await JobJournal.open(path / "journal.sqlite")
    return journal.aclose


async def _client_journal(path: Path) -> Callable[[], Awaitable[None]]:
    await trio.to_thread.run_sync(make_private_directory, path)
    journal = await ClientJournal.open(path / "journal.db")
    return journal.aclose


@pytest.mark.parametrize(
    ("opener", "database"),
    [
        (_bundle_store, "bundles.sqlite3"),
        (_datastore, "data.sqlite3"),
        (_broker_journal, "broker.db"),
        (_executor_journal, "journal.sqlite"),
        (_client_journal, "journal.db"),
    ],
)
async def test_every_database_is_opened_the_one_way(
    tmp_path: Path,
    opener: Callable[[Path], Awaitable[Callable[[], Awaitable[None]]]],
    database: str,
) -> None:
    directory = tmp_path / "state"
    close = await opener(directory)
    try:
        path = directory / database
        assert mode(directory) == 0o700 and mode(path) == 0o600
        for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            assert mode(companion) == 0o600, companion
        with contextlib.closing(sqlite3.connect(path)) as check:
            assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await close()
