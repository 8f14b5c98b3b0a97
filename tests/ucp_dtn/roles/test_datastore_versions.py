"""The named-data store's versions, tombstones and replica bookkeeping: one winner whatever the
arrival order, deletes that bury later arrivals of older writes for the tombstone lifetime,
replication factors and the replicated flag, the queue of copies to send, and the upgrade of a
version 1 database."""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from pathlib import Path

import pytest

from ucp_dtn.roles.datastore import NamedDataStore, PutOutcome
from ucp_dtn.ucp import content_digest
from ucp_dtn.ucp.names import job_result_name

A = "dtn://a/ucp/client"
B = "dtn://b/ucp/client"
JOB = uuid.UUID("6f1c1b9e-8a1d-4c4e-9a51-2b0f3c1d2e4f")
Write = tuple[bytes, str, uuid.UUID]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def open_store(clock: Clock | None = None, **options: float) -> NamedDataStore:
    return await NamedDataStore.open(None, quota_bytes=1 << 20, clock=clock or Clock(), **options)


WRITES = [
    (b"first", 5.0, A),
    (b"second", 5.0, B),  # same time, greater writer
    (b"third", 5.0, B),  # same time and writer: the greater digest wins
    (b"old", 4.0, "dtn://zz/ucp/client"),
]


async def test_concurrent_writes_end_with_the_same_value_in_every_arrival_order() -> None:
    winners = set()
    for order in itertools.permutations(WRITES):
        store = await open_store()
        async with store:
            for data, at, writer in order:
                await store.put("x", data, written_at=at, writer=writer)
            datum = await store.datum("x")
            assert datum is not None
            winners.add(datum.data)
    expected = max([b"second", b"third"], key=content_digest)
    assert winners == {expected}


async def test_an_equal_version_is_a_duplicate_and_an_older_one_stale() -> None:
    async with await open_store() as store:
        assert await store.put("x", b"v", written_at=2.0, writer=A) is PutOutcome.STORED
        assert await store.put("x", b"v", written_at=2.0, writer=A) is PutOutcome.UNCHANGED
        assert await store.put("x", b"w", written_at=1.0, writer=B) is PutOutcome.STALE
        info = await store.info("x")
        assert info is not None and info.digest == content_digest(b"v")
        assert info.version == (2.0, A, content_digest(b"v"))


async def test_a_delete_removes_older_writes_only_and_buries_their_late_arrivals() -> None:
    clock = Clock()
    async with await open_store(clock) as store:
        await store.put("survey/a", b"old", written_at=10.0, writer=A)
        await store.put("survey/b", b"newer", written_at=30.0, writer=A)
        assert await store.delete("survey", deleted_at=20.0, deleter=B) == 1
        assert await store.info("survey/a") is None
        assert await store.info("survey/b") is not None  # written after the delete
        # A put made before the delete arrives late (a partition, a replica copy): stale.
        assert await store.put("survey/c", b"late", written_at=19.0, writer=A) is (PutOutcome.STALE)
        assert await store.put("survey/a", b"late", written_at=20.0, writer=A) is (PutOutcome.STALE)
        # A write after the delete is stored; names the delete did not select are untouched.
        assert await store.put("survey/a", b"again", written_at=21.0, writer=A) is (
            PutOutcome.STORED
        )
        assert await store.put("survey2", b"x", written_at=1.0, writer=A) is PutOutcome.STORED
        [tombstone] = await store.tombstones()
        assert tombstone.query == "survey" and tombstone.version.written_at == 20.0


async def test_an_exclusive_put_is_decided_against_the_live_datum() -> None:
    async with await open_store() as store:
        out = {"written_at": 5.0, "writer": A, "job_id": JOB, "replicas": 2, "exclusive": True}
        assert await store.put("out", b"one", **out) is PutOutcome.STORED
        # The same write again (a retransmission, or the copy a replica already made): a
        # duplicate, not "taken" -- also for a write of no job.
        assert await store.put("out", b"one", **out) is PutOutcome.UNCHANGED
        info = await store.info("out")
        assert info is not None and info.replicas == 2 and info.replicated
        plain = {"writer": A, "exclusive": True}
        assert await store.put("plain", b"p", written_at=1.0, **plain) is PutOutcome.STORED
        assert await store.put("plain", b"p", written_at=1.0, **plain) is PutOutcome.UNCHANGED
        assert await store.put("plain", b"q", written_at=2.0, **plain) is PutOutcome.TAKEN
        # A tombstone holds no name: after a delete the name is free for a newer write, and
        # a write older than the delete is buried (stale), not taken.
        assert await store.delete("plain", deleted_at=10.0, deleter=B) == 1
        assert await store.put("plain", b"late", written_at=9.0, **plain) is PutOutcome.STALE
        assert await store.put("plain", b"new", written_at=11.0, **plain) is PutOutcome.STORED
        datum = await store.datum("plain")
        assert datum is not None and datum.data == b"new"


async def test_exclusive_writes_accepted_apart_converge_through_their_copies() -> None:
    """Two jobs publish one name at two datastores at once (a partition): each is accepted
    where it arrived; their replica copies (never exclusive: the role sends them so) then
    leave every datastore with the same winner, whatever the order copies arrive in."""
    other = uuid.UUID("0d7c2f3a-5b6e-4f70-8a91-b2c3d4e5f607")
    one = (b"job one", A, JOB)
    two = (b"job two", B, other)  # the same time, a greater writer: the winner

    async def put(store: NamedDataStore, write: Write, *, exclusive: bool = False) -> PutOutcome:
        data, writer, job = write
        return await store.put(
            "runs/out", data, written_at=5.0, writer=writer, job_id=job, exclusive=exclusive
        )

    async def held(store: NamedDataStore) -> bytes:
        datum = await store.datum("runs/out")
        assert datum is not None
        return datum.data

    for own, copy in ((one, two), (two, one)):
        async with await open_store() as store:
            assert await put(store, own, exclusive=True) is PutOutcome.STORED
            await put(store, copy)
            assert await held(store) == b"job two"
    for order in ((one, two), (two, one)):  # a third datastore that gets only copies
        async with await open_store() as store:
            for write in order:
                await put(store, write)
            assert await held(store) == b"job two"
    # Where the other job's copy came first, a job's own put is refused: REC's rule.
    async with await open_store() as store:
        await put(store, two)
        assert await put(store, one, exclusive=True) is PutOutcome.TAKEN


async def test_a_delete_and_a_write_of_the_same_time_and_writer_leave_the_name_deleted() -> None:
    async with await open_store() as store:
        await store.put("x", b"v", written_at=20.0, writer=B)
        assert await store.delete("x", deleted_at=20.0, deleter=B) == 1
        assert await store.put("x", b"v", written_at=20.0, writer=B) is PutOutcome.STALE


async def test_pattern_and_job_deletes_leave_tombstones_too() -> None:
    async with await open_store() as store:
        await store.delete("frames/f*", deleted_at=50.0, deleter=A)
        assert await store.put("frames/f1", b"x", written_at=49.0, writer=A) is (PutOutcome.STALE)
        assert await store.put("frames/g1", b"x", written_at=49.0, writer=A) is (PutOutcome.STORED)
        await store.delete_job(JOB, keep_result=True, deleted_at=50.0, deleter=A)
        assert await store.put(f"{JOB}/out", b"x", written_at=40.0, writer=A) is (PutOutcome.STALE)
        assert await store.put("other", b"x", written_at=40.0, writer=A, job_id=JOB) is (
            PutOutcome.STALE
        )
        assert await store.put(job_result_name(JOB), b"r", written_at=40.0, writer=A) is (
            PutOutcome.STORED
        )


async def test_a_delete_without_a_time_removes_everything_it_selects_as_before() -> None:
    async with await open_store(Clock(100.0)) as store:
        await store.put("x", b"from a clock ahead", written_at=5000.0, writer=A)
        assert await store.delete("x") == 1
        assert await store.put("x", b"older", written_at=99.0, writer=A) is PutOutcome.STALE


async def test_tombstones_expire_after_their_lifetime() -> None:
    clock = Clock()
    async with await open_store(clock, tombstone_lifetime_s=60.0) as store:
        await store.delete("x", deleted_at=clock.now, deleter=A)
        assert await store.put("x", b"v", written_at=clock.now - 1, writer=A) is (PutOutcome.STALE)
        clock.now += 61.0
        assert await store.tombstones() == []
        assert await store.put("x", b"v", written_at=clock.now - 62, writer=A) is (
            PutOutcome.STORED
        )


async def test_the_factor_is_kept_and_replicated_data_stay_listed_as_replicated() -> None:
    async with await open_store() as store:
        await store.put("plain", b"p", written_at=1.0, writer=A)
        await store.put("kept", b"k", written_at=1.0, writer=A, replicas=3)
        await store.put("was", b"w", written_at=1.0, writer=A, replicas=2)
        await store.put("was", b"w2", written_at=2.0, writer=A)  # factor 1 now
        page = await store.listing(replicated=True)
        assert [(e.name, e.replicas) for e in page.entries] == [("kept", 3), ("was", 1)]
        everything = await store.listing()
        assert [e.name for e in everything.entries] == ["kept", "plain", "was"]
        assert [e.replicated for e in everything.entries] == [True, False, True]
        with pytest.raises(ValueError, match="replicas"):
            await store.put("bad", b"", written_at=1.0, writer=A, replicas=0)


async def test_copies_to_send_are_queued_once_oldest_first_and_removed() -> None:
    clock = Clock()
    async with await open_store(clock) as store:
        assert await store.queue_copies("a", ["dtn://d2/ucp/datastore"]) == 1
        clock.now += 1
        assert await store.queue_copies("a", ["dtn://d2/ucp/datastore", "dtn://d3/x"]) == 1
        assert [(n, t) for n, t, _ in await store.queued_copies()] == [
            ("a", "dtn://d2/ucp/datastore"),
            ("a", "dtn://d3/x"),
        ]
        await store.remove_copy("a", "dtn://d2/ucp/datastore")
        assert [t for _, t, _ in await store.queued_copies()] == ["dtn://d3/x"]


_V1_SCHEMA = """
CREATE TABLE data (
    name TEXT NOT NULL PRIMARY KEY, size INTEGER NOT NULL, written_at REAL NOT NULL,
    writer TEXT NOT NULL, job TEXT, stored_at REAL NOT NULL, file TEXT, value BLOB
);
CREATE INDEX data_by_job ON data (job, name);
PRAGMA user_version=1;
"""


async def test_a_version_1_database_is_upgraded_with_the_digest_of_every_value(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "datastore"
    async with await NamedDataStore.open(directory, quota_bytes=1 << 20, inline_limit=4) as store:
        await store.put("small", b"abc", written_at=1.0, writer=A)
        await store.put("large", b"0123456789", written_at=2.0, writer=A, job_id=JOB)
    # Turn the database back into what version 1 wrote (same rows and files, old columns).
    connection = sqlite3.connect(directory / "data.sqlite3")
    rows = connection.execute(
        "SELECT name, size, written_at, writer, job, stored_at, file, value FROM data"
    ).fetchall()
    connection.executescript(
        "DROP TABLE data; DROP TABLE tombstones; DROP TABLE copies;" + _V1_SCHEMA
    )
    connection.executemany("INSERT INTO data VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    connection.commit()
    connection.close()

    async with await NamedDataStore.open(directory, quota_bytes=1 << 20, inline_limit=4) as store:
        small, large = await store.datum("small"), await store.datum("large")
        assert small is not None and small.data == b"abc"
        assert small.info.digest == content_digest(b"abc") and small.info.replicas == 1
        assert large is not None and large.data == b"0123456789" and large.info.job_id == JOB
        assert large.info.digest == content_digest(b"0123456789")
        assert await store.put("small", b"abc", written_at=1.0, writer=A) is (PutOutcome.UNCHANGED)
    connection = sqlite3.connect(directory / "data.sqlite3")
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        connection.close()
