"""SqliteBundleStore specifics: persistence, files, crash reconciliation, disk full, kill -9."""

from __future__ import annotations

import errno
import inspect
import logging
import os
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from ucp_dtn.store import (
    BundleNotFoundError,
    BundleState,
    BundleStore,
    MemoryBundleStore,
    SqliteBundleStore,
    StoreCorruptionError,
    StoredBundle,
    StoreError,
    StoreFullError,
)
from ucp_dtn.store.index import BundleIndex

INLINE_LIMIT = 1_000
QUOTA = 10_000_000


def _size(number: int) -> int:
    """Bundle sizes of the crash test: mostly small, every fifth one goes to a file."""
    return 3_000 + number % 7 if number % 5 == 0 else 100 + number % 300


def _payload(number: int) -> bytes:
    """Deterministic, number-specific bytes (a torn or mixed-up bundle cannot pass for it)."""
    import hashlib

    block = hashlib.sha256(str(number).encode()).digest()
    size = _size(number)
    return (block * (size // len(block) + 1))[:size]


def _meta(number: int, **changes: object) -> StoredBundle:
    fields: dict[str, object] = {
        "key": f"dtn://src/-{number}-0",
        "destination": f"dtn://n{number % 3}/app",
        "source": "dtn://src/",
        "size": _size(number),
        "received_at": 1_000.0 + number,
        "expires_at": 9_000.0 + number,
        **changes,
    }
    return StoredBundle(**fields)  # type: ignore[arg-type]


async def open_store(path: Path, **options: object) -> SqliteBundleStore:
    kwargs: dict[str, object] = {"quota_bytes": QUOTA, "inline_limit": INLINE_LIMIT, **options}
    return await SqliteBundleStore.open(path, **kwargs)  # type: ignore[arg-type]


def bundle_files(path: Path) -> list[str]:
    return sorted(name for name in os.listdir(path / "files"))


async def put(store: SqliteBundleStore, number: int) -> None:
    assert await store.put(_meta(number), _payload(number))


# -- persistence -----------------------------------------------------------------------------


async def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    async with await open_store(tmp_path) as store:
        for number in range(20):
            await put(store, number)
        await store.update(_meta(3, state=BundleState.CUSTODY_WAIT, next_retry_at=50.0))
        await store.update(_meta(5, extra={"a": "b"}, forwarded_to=frozenset({"dtn://x/"})))
        await store.delete(_meta(4).key)
        await store.delete(_meta(10).key)  # a file bundle
        expected = await store.query()
    async with await open_store(tmp_path) as store:
        assert await store.query() == expected
        for meta in expected:
            assert await store.get(meta.key) == _payload(int(meta.key.split("-")[1]))
        assert [m.key for m in await store.due_for_retry(60.0)] == [_meta(3).key]
        stats = store.statistics()
        assert stats.bundles == 18
        assert stats.bytes == sum(_size(n) for n in range(20) if n not in (4, 10))
    assert len(bundle_files(tmp_path)) == 3  # bundles 0, 5 and 15 are in files; 10 was deleted


async def test_large_bundles_go_to_files_and_small_ones_inline(tmp_path: Path) -> None:
    async with await open_store(tmp_path) as store:
        small = _meta(1, size=INLINE_LIMIT)
        large = _meta(2, size=INLINE_LIMIT + 1)
        await store.put(small, b"s" * INLINE_LIMIT)
        assert bundle_files(tmp_path) == []
        await store.put(large, b"l" * (INLINE_LIMIT + 1))
        [name] = bundle_files(tmp_path)
        assert name.endswith(".bundle")
        assert (tmp_path / "files" / name).read_bytes() == b"l" * (INLINE_LIMIT + 1)
        assert await store.get(large.key) == b"l" * (INLINE_LIMIT + 1)
        await store.delete(large.key)
        assert bundle_files(tmp_path) == []


def _synchronous(store: SqliteBundleStore) -> int:
    """The writer connection's ``PRAGMA synchronous`` now (1 NORMAL, 2 FULL)."""
    (level,) = store._database._writer.execute("PRAGMA synchronous").fetchone()
    return int(level)


async def test_only_groups_with_a_put_wait_for_fsync(tmp_path: Path) -> None:
    # A put is acknowledged as durable (the WAL fsync'd at commit: FULL); deletions and
    # updates are written but not fsync'd (NORMAL): they survive kill -9 (the kill -9 test
    # below checks), and the next put's fsync takes them to disk.
    async with await open_store(tmp_path) as store:
        await put(store, 1)
        assert _synchronous(store) == 2
        await store.update(_meta(1, state=BundleState.CUSTODY_WAIT))
        assert _synchronous(store) == 1
        await put(store, 2)
        assert _synchronous(store) == 2
        assert await store.delete_many([_meta(1).key, _meta(2).key]) == [True, True]
        assert _synchronous(store) == 1
        results = await store.put_many([(_meta(3), _payload(3), None)])
        assert results == [True] and _synchronous(store) == 2


async def test_a_bundle_file_goes_only_once_its_deletion_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_remove = os.fsync, os.remove

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("-wal"):
            events.append("wal fsync")
        real_fsync(fd)

    def remove(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if str(path).endswith(".bundle"):
            events.append("file removed")
        real_remove(path, *args, **kwargs)  # type: ignore[arg-type]

    async with await open_store(tmp_path) as store:
        await put(store, 0)  # a file bundle
        await put(store, 1)  # inline
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "remove", remove)
        monkeypatch.setattr(os, "unlink", remove)
        await store.delete(_meta(1).key)
        assert events == []  # an inline bundle: nothing to wait for
        await store.delete(_meta(0).key)
        assert events == ["wal fsync", "file removed"]
    assert bundle_files(tmp_path) == []


async def test_deletions_left_for_later_go_with_the_next_commit(tmp_path: Path) -> None:
    async with await open_store(tmp_path) as store:
        for number in range(4):
            await put(store, number)
        commits = store.statistics().commits
        assert await store.delete_later([_meta(1).key, _meta(2).key, "no such key"]) == [
            True,
            True,
            False,
        ]
        # Gone from every view at once, without a commit of their own...
        assert await store.meta(_meta(1).key) is None and await store.get(_meta(2).key) is None
        assert store.statistics().bundles == 2
        assert store.statistics().commits == commits
        # ... and from the disk with the next group commit, ahead of its put of the same key.
        await store.put(_meta(1), b"again" + bytes(_size(1) - 5))
        assert store.statistics().commits == commits + 1
        await store.flush()  # nothing left
        assert store.statistics().commits == commits + 1
        assert await store.delete_later([_meta(3).key]) == [True]
        await store.flush()
        assert store.statistics().commits == commits + 2
        assert await store.delete_later([_meta(0).key]) == [True]  # left for close()
    async with await open_store(tmp_path) as store:
        assert [m.key for m in await store.query()] == [_meta(1).key]
        assert await store.get(_meta(1).key) == b"again" + bytes(_size(1) - 5)
    assert bundle_files(tmp_path) == []  # bundle 0's file went with its row


async def test_a_deletion_left_for_later_during_an_update_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A custody signal may release a bundle while its "custody wait" update is committing.
    async with await open_store(tmp_path) as store:
        await put(store, 1)
        gate = threading.Event()
        database = store._database
        apply = database.apply

        def held_apply(operations: object) -> None:
            gate.wait(10)
            apply(operations)  # type: ignore[arg-type]

        monkeypatch.setattr(database, "apply", held_apply)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.update, _meta(1, state=BundleState.CUSTODY_WAIT))
                await trio.testing.wait_all_tasks_blocked()  # its commit is in its thread
                assert await store.delete_later([_meta(1).key]) == [True]
                gate.set()
        assert await store.meta(_meta(1).key) is None
        await store.flush()
    async with await open_store(tmp_path) as store:
        assert await store.query() == []


async def test_a_store_is_opened_by_one_owner_at_a_time(tmp_path: Path) -> None:
    async with await open_store(tmp_path):
        with pytest.raises(StoreError, match=r"is in use by another process"):
            await open_store(tmp_path)
    async with await open_store(tmp_path):
        pass


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    async with await open_store(tmp_path):
        pass
    with sqlite3.connect(tmp_path / "bundles.sqlite3") as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(StoreError, match=r"schema version 99, this code knows only up to 1"):
        await open_store(tmp_path)


# -- reconciliation after a crash --------------------------------------------------------------


async def test_open_removes_orphan_and_temporary_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await open_store(tmp_path) as store:
        await put(store, 5)
    [kept] = bundle_files(tmp_path)
    (tmp_path / "files" / "0123abcd.bundle").write_bytes(b"a put that crashed before commit")
    (tmp_path / "files" / "4567.tmp").write_bytes(b"half a bund")
    with caplog.at_level(logging.INFO, logger="ucp_dtn.store"):
        async with await open_store(tmp_path) as store:
            assert await store.get(_meta(5).key) == _payload(5)
    assert bundle_files(tmp_path) == [kept]
    assert "removing bundle file 0123abcd.bundle that no stored bundle refers to" in caplog.text
    assert "removing unfinished bundle file 4567.tmp" in caplog.text


@pytest.mark.parametrize("damage", ["missing", "truncated"])
async def test_open_drops_rows_whose_file_is_missing_or_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    async with await open_store(tmp_path) as store:
        for number in (1, 5, 10):
            await put(store, number)
    with sqlite3.connect(tmp_path / "bundles.sqlite3") as connection:
        [(name,)] = connection.execute(
            "SELECT file FROM bundles WHERE key = ?", (_meta(5).key,)
        ).fetchall()
    connection.close()
    if damage == "missing":
        (tmp_path / "files" / name).unlink()
    else:
        os.truncate(tmp_path / "files" / name, 10)
    with caplog.at_level(logging.ERROR, logger="ucp_dtn.store"):
        async with await open_store(tmp_path) as store:
            assert not await store.contains(_meta(5).key)
            assert await store.get(_meta(10).key) == _payload(10)
            assert await store.get(_meta(1).key) == _payload(1)
            assert store.statistics().bundles == 2
    assert f"dropping bundle {_meta(5).key}: its file {name} is" in caplog.text
    assert len(bundle_files(tmp_path)) == 1


async def test_get_of_a_vanished_file_raises_corruption(tmp_path: Path) -> None:
    async with await open_store(tmp_path) as store:
        await put(store, 5)
        for name in bundle_files(tmp_path):
            (tmp_path / "files" / name).unlink()
        with pytest.raises(StoreCorruptionError, match=r"of bundle 'dtn://src/-5-0' is missing"):
            await store.get(_meta(5).key)


# -- disk full -------------------------------------------------------------------------------


class FullDisk:
    """A ``file_write`` that refuses to write a file of one particular size."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, fd: int, data: memoryview) -> int:
        if len(data) == self.size and os.lseek(fd, 0, os.SEEK_CUR) == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


class FlakyDisk:
    """A ``file_write`` that runs out of space after ``budget`` bytes (None: unlimited)."""

    def __init__(self) -> None:
        self.budget: int | None = None

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.budget is None:
            return os.write(fd, data)
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(fd, data[: self.budget])
        self.budget -= written
        return written


async def test_enospc_writing_a_file_becomes_store_full_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    disk = FlakyDisk()
    async with await open_store(tmp_path, file_write=disk) as store:
        await put(store, 5)
        before = store.statistics()
        disk.budget = 1_000  # less than bundle 10's 3,003 bytes
        with pytest.raises(StoreFullError, match=r"^store full: disk full while writing bundle"):
            await put(store, 10)
        assert not await store.contains(_meta(10).key)
        assert len(bundle_files(tmp_path)) == 1  # no .tmp left behind
        after = store.statistics()
        assert (after.bundles, after.bytes, after.reserved_bytes) == (
            before.bundles,
            before.bytes,
            0,
        )
        assert after.refused == 1
        await put(store, 1)  # small bundles go inline and still fit
        disk.budget = None
        await put(store, 10)
    async with await open_store(tmp_path) as store:
        for number in (1, 5, 10):
            assert await store.get(_meta(number).key) == _payload(number)


async def test_one_failing_put_in_a_group_does_not_sink_the_others(tmp_path: Path) -> None:
    outcomes: dict[int, str] = {}

    async def attempt(number: int) -> None:
        try:
            await put(store, number)
            outcomes[number] = "stored"
        except StoreFullError:
            outcomes[number] = "full"

    async with await open_store(tmp_path, file_write=FullDisk(_size(5))) as store:
        async with trio.open_nursery() as nursery:
            for number in (1, 5, 2, 10, 3):
                nursery.start_soon(attempt, number)
        assert outcomes == {1: "stored", 2: "stored", 3: "stored", 5: "full", 10: "stored"}
        assert store.statistics().commits < 5  # some of them did share a group commit
        for number, outcome in outcomes.items():
            assert await store.contains(_meta(number).key) == (outcome == "stored")
    assert len(bundle_files(tmp_path)) == 1


class _IndexFailingForBundle2(BundleIndex):
    __slots__ = ()

    def add(self, meta: StoredBundle) -> None:
        if meta.key == _meta(2).key:
            raise KeyError(meta.key)
        super().add(meta)


async def test_an_index_failure_after_a_commit_wakes_every_writer_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug in the in-memory index must not leave the other writers of the group waiting
    # for ever (every task behind the commit lock would hang with them).
    async with await open_store(tmp_path) as store:
        store._index.__class__ = _IndexFailingForBundle2  # the store's own, made to fail once
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for number in (1, 2, 3):
                    nursery.start_soon(put, store, number)
        assert "the index missed a committed change (PutOperation)" in caplog.text
        assert [await store.contains(_meta(n).key) for n in (1, 2, 3)] == [True, False, True]
    async with await open_store(tmp_path) as store:  # the database had it all along
        assert [await store.contains(_meta(n).key) for n in (1, 2, 3)] == [True, True, True]


async def test_full_database_becomes_store_full_and_loses_nothing(tmp_path: Path) -> None:
    acknowledged: list[int] = []
    async with await open_store(tmp_path, max_database_bytes=64 * 1024) as store:
        with pytest.raises(StoreFullError, match=r"^store full: database full while storing"):
            for number in range(1, 10_000):
                if number % 5:  # inline bundles only
                    await put(store, number)
                    acknowledged.append(number)
        assert store.statistics().bundles == len(acknowledged)
        assert store.statistics().reserved_bytes == 0
        for number in acknowledged[:50]:  # deleting makes room again
            await store.delete(_meta(number).key)
        del acknowledged[:50]
        await put(store, 10_001)
        acknowledged.append(10_001)
    async with await open_store(tmp_path) as store:
        assert store.statistics().bundles == len(acknowledged)
        for number in acknowledged:
            assert await store.get(_meta(number).key) == _payload(number)


# -- cancellation ----------------------------------------------------------------------------


async def test_cancelled_group_commits_match_the_disk(tmp_path: Path) -> None:
    async with await open_store(tmp_path) as store:
        for round_ in range(5):
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    for number in range(round_ * 100, round_ * 100 + 100):
                        nursery.start_soon(put, store, number)
                    for _ in range(round_ + 1):
                        await trio.sleep(0)
                    scope.cancel()
        assert store.statistics().reserved_bytes == 0
        in_memory = await store.query()
    async with await open_store(tmp_path) as store:
        assert await store.query() == in_memory


# -- kill -9 ---------------------------------------------------------------------------------

_CHILD = """
import sys
import trio
from ucp_dtn.store import BundleState, SqliteBundleStore, StoredBundle

{helpers}

async def main(path, count, concurrency):
    store = await SqliteBundleStore.open(path, quota_bytes={quota}, inline_limit={inline})
    numbers = iter(range(count))

    async def worker():
        for number in numbers:
            await store.put(_meta(number), _payload(number))
            print("P", number, flush=True)
            if number % 7 == 0:
                await store.update(_meta(number, state=BundleState.CUSTODY_WAIT, attempts=1))
                print("U", number, flush=True)
            if number % 11 == 0:
                await store.delete(_meta(number).key)
                print("D", number, flush=True)

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    print("END", flush=True)

trio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_acknowledged_bundles_survive_kill_9(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    count = 3_000
    kill_after = rng.randint(0, 1_500)  # lines of output, about half of them at most
    helpers = "\n\n".join(inspect.getsource(f) for f in (_size, _payload, _meta))
    code = _CHILD.format(helpers=helpers, quota=QUOTA, inline=INLINE_LIMIT)
    store_path = tmp_path / "store"
    command = [sys.executable, "-c", code, str(store_path), str(count), str(rng.randint(1, 32))]
    output = b""
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
        assert process.stdout is not None
        while output.count(b"\n") < kill_after and b"END" not in output:
            chunk = await process.stdout.receive_some()
            if not chunk:
                break
            output += chunk
        process.kill()
        while chunk := await process.stdout.receive_some():
            output += chunk
        await process.wait()
    lines = output[: output.rfind(b"\n") + 1].decode().splitlines()
    events = {(line[0], int(line[2:])) for line in lines if line != "END"}
    acknowledged = {number for kind, number in events if kind == "P"}
    assert "END" not in lines  # killed in the middle of its work
    print(f"killed after {len(acknowledged)} acknowledged puts")

    async with await open_store(store_path) as store:
        for number in acknowledged:
            meta = await store.meta(_meta(number).key)
            if ("D", number) in events:
                assert meta is None
                continue
            if meta is None:  # only a delete that was killed before it could say "D"
                assert number % 11 == 0
                continue
            assert await store.get(meta.key) == _payload(number)
            if ("U", number) in events:
                assert meta.state is BundleState.CUSTODY_WAIT
        for meta in await store.query():  # stored but not yet acknowledged: intact too
            number = int(meta.key.split("-")[1])
            assert await store.get(meta.key) == _payload(number)
        files_in_use = sum(1 for meta in await store.query() if meta.size > INLINE_LIMIT)
    assert len(bundle_files(store_path)) == files_in_use
    with sqlite3.connect(store_path / "bundles.sqlite3") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    connection.close()


# -- the two stores agree ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_operations_leave_both_stores_and_the_reopened_one_equal(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    memory = MemoryBundleStore(QUOTA)
    sqlite_store = await open_store(tmp_path)
    stores: list[BundleStore] = [memory, sqlite_store]
    for _ in range(300):
        number = rng.randrange(40)
        action = rng.choice(["put", "put", "update", "delete"])
        changed = _meta(
            number,
            state=rng.choice(list(BundleState)),
            next_retry_at=rng.choice([None, rng.uniform(0, 100)]),
            expires_at=rng.uniform(0, 100),
            attempts=rng.randrange(5),
        )
        outcomes: list[object] = []
        for store in stores:
            if action == "put":
                outcomes.append(await store.put(_meta(number), _payload(number)))
            elif action == "delete":
                outcomes.append(await store.delete(_meta(number).key))
            else:
                try:
                    await store.update(changed)
                    outcomes.append("updated")
                except BundleNotFoundError:
                    outcomes.append("missing")
        assert outcomes[0] == outcomes[1]
    expected = await memory.query()
    assert await sqlite_store.query() == expected
    assert await sqlite_store.expired(50.0) == await memory.expired(50.0)
    assert await sqlite_store.due_for_retry(50.0) == await memory.due_for_retry(50.0)
    await sqlite_store.close()
    async with await open_store(tmp_path) as reopened:
        assert await reopened.query() == expected
        for meta in expected:
            assert await reopened.get(meta.key) == await memory.get(meta.key)
        stats, memory_stats = reopened.statistics(), memory.statistics()
        assert (stats.bundles, stats.bytes, stats.by_state) == (
            memory_stats.bundles,
            memory_stats.bytes,
            memory_stats.by_state,
        )


async def test_bad_options_are_refused_without_keeping_the_store_locked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"quota_bytes must be >= 0"):
        await open_store(tmp_path, quota_bytes=-1)
    with pytest.raises(ValueError, match=r"inline_limit must be >= 0"):
        await open_store(tmp_path, inline_limit=-1)
    async with await open_store(tmp_path):
        pass
