"""The broker's sans-IO parts (registry, job book, name cache) and its journal, without a
network."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.roles.broker import BrokerJournal, JobBook, JobRecord, NameCache, NodeRegistry
from ucp_dtn.roles.broker.jobs import Readiness
from ucp_dtn.ucp import (
    Capabilities,
    DataEntry,
    DataGet,
    DataPut,
    Heartbeat,
    InlineData,
    JobInfo,
    JobResult,
    JobStatus,
    JobStatusEntry,
    JobSubmission,
    Requirements,
    ResultStatus,
    Role,
    SyncedJob,
)

GIB = 1 << 30


def caps(cores: int = 4, memory: int = 8 * GIB, **extra: Any) -> Capabilities:
    return Capabilities(memory=memory, disk=GIB, cpu_load=0.0, cpu_cores=cores, extra=extra)


def beat(node: str, sequence: int = 1, sent_at: float = 0.0, **fields: Any) -> Heartbeat:
    fields.setdefault("roles", Role.EXECUTOR)
    if fields["roles"] & Role.EXECUTOR:
        fields.setdefault("capabilities", caps())
        fields.setdefault("max_jobs", 2)
    return Heartbeat(
        node=f"dtn://{node}/", sequence=sequence, sent_at=sent_at, interval=5.0, **fields
    )


def job(n: int, **fields: Any) -> JobInfo:
    return JobInfo(job_id=uuid.UUID(int=n), wasm=InlineData(b"\0asm"), name=f"j{n}", **fields)


def record(info: JobInfo, state: JobStatus = JobStatus.QUEUED, **fields: Any) -> JobRecord:
    fields.setdefault("sequence", info.job_id.int)
    return JobRecord(
        submission=JobSubmission(info),
        client="dtn://c/ucp/client",
        state=state,
        submitted_at=1.0,
        updated_at=2.0,
        **fields,
    )


# -- registry ---------------------------------------------------------------------------------


def test_heartbeats_register_expire_and_stale_ones_are_ignored() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    both = beat("n", roles=Role.EXECUTOR | Role.DATASTORE, store_free=10)
    assert registry.observe(both, now=100.0) == {Role.EXECUTOR, Role.DATASTORE}
    assert registry.observe(beat("n", sequence=2, sent_at=1.0), now=101.0) == frozenset()
    # Older sequence and not sent later: stale. A restarted node (sent later) is taken.
    stale = beat("n", sequence=1, sent_at=0.5, capabilities=caps(cores=1))
    registry.observe(stale, now=102.0)
    entry = registry.get("dtn://n/", Role.EXECUTOR, now=102.0)
    assert entry is not None and entry.heartbeat.sequence == 2 and entry.last_seen == 101.0
    registry.observe(beat("n", sequence=1, sent_at=9.0), now=103.0)
    restarted = registry.get("dtn://n/", Role.EXECUTOR, now=103.0)
    assert restarted is not None and restarted.heartbeat.sent_at == 9.0

    assert registry.count(Role.EXECUTOR, now=118.0) == 1
    assert registry.count(Role.EXECUTOR, now=118.5) == 0  # silent for more than 15 s
    assert registry.count(Role.DATASTORE, now=116.5) == 0  # its last beat was at 100
    gone = registry.expire(now=118.5)
    assert {(e.node, e.role) for e in gone} == {
        ("dtn://n/", Role.EXECUTOR),
        ("dtn://n/", Role.DATASTORE),
    }
    assert registry.observe(beat("n", sequence=1), now=119.0) == {Role.EXECUTOR}


def test_executor_choice_by_capability_load_and_slots() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    assert registry.choose_executor(Requirements(), now=0.0).reason == "no executor known"
    registry.observe(beat("small", capabilities=caps(cores=2)), now=0.0)
    registry.observe(beat("gpu", capabilities=caps(cores=2, gpu=True), max_jobs=1), now=0.0)
    registry.observe(beat("bare", capabilities=None), now=0.0)
    needs_gpu = Requirements(extra={"gpu": True})
    choice = registry.choose_executor(needs_gpu, now=1.0)
    assert (choice.node, choice.capable) == ("dtn://gpu/", 1)
    registry.note_dispatch("dtn://gpu/", uuid.UUID(int=1), now=1.0)
    busy = registry.choose_executor(needs_gpu, now=2.0)
    assert busy.node is None
    assert busy.reason == "waiting for a free slot: the capable executor is busy"
    none = registry.choose_executor(Requirements(cpu_cores=64), now=2.0)
    assert none.node is None and none.capable == 0
    assert (
        none.reason == "no executor meets the requirements (dtn://bare/: announced no capabilities)"
    )
    # A heartbeat listing the job counts it as running instead; one without frees the slot.
    registry.observe(
        beat(
            "gpu",
            2,
            2.0,
            capabilities=caps(cores=2, gpu=True),
            max_jobs=1,
            running_jobs=(uuid.UUID(int=1),),
        ),
        now=3.0,
    )
    assert registry.choose_executor(needs_gpu, now=4.0).node is None
    gpu = {"capabilities": caps(cores=2, gpu=True), "max_jobs": 1}
    registry.observe(beat("gpu", 3, 3.0, **gpu), now=5.0)
    assert registry.choose_executor(needs_gpu, now=6.0).node == "dtn://gpu/"
    # A dispatch no heartbeat ever lists stops counting after the timeout.
    registry.note_dispatch("dtn://gpu/", uuid.UUID(int=2), now=6.0)
    registry.observe(beat("gpu", 4, 4.0, **gpu), now=10.0)
    assert registry.choose_executor(needs_gpu, now=20.0).node is None
    registry.observe(beat("gpu", 5, 5.0, **gpu), now=20.0)
    assert registry.choose_executor(needs_gpu, now=21.5).node == "dtn://gpu/"


def test_has_room_means_some_executor_may_take_one_more_job() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    assert not registry.has_room(now=0.0)  # nobody known
    registry.observe(beat("bare", capabilities=None), now=0.0)
    assert not registry.has_room(now=0.0)  # announced no capabilities: takes nothing
    registry.observe(beat("one", max_jobs=1), now=0.0)
    assert registry.has_room(now=1.0)
    registry.note_dispatch("dtn://one/", uuid.UUID(int=1), now=1.0)
    assert not registry.has_room(now=1.0)
    registry.dispatch_ahead = 1  # one more may wait there
    assert registry.has_room(now=1.0)
    registry.note_dispatch("dtn://one/", uuid.UUID(int=2), now=1.0)
    assert not registry.has_room(now=1.0)
    registry.note_finished("dtn://one/", uuid.UUID(int=1))
    assert registry.has_room(now=2.0)
    assert not registry.has_room(now=100.0)  # silent too long: gone


def test_equal_executors_take_turns_and_ties_go_to_the_smaller_node_id() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    for name in ("b", "a", "c"):
        registry.observe(beat(name, max_jobs=10), now=0.0)
    order = []
    for n in range(6):
        chosen = registry.choose_executor(Requirements(), now=1.0).node
        assert chosen is not None
        registry.note_dispatch(chosen, uuid.UUID(int=n), now=1.0)
        order.append(chosen)
    assert order == ["dtn://a/", "dtn://b/", "dtn://c/"] * 2
    registry.note_finished("dtn://c/", uuid.UUID(int=5))
    assert registry.choose_executor(Requirements(), now=1.0).node == "dtn://c/"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=4),
    st.integers(0, 12),
)
def test_no_executor_gets_more_than_its_slots(executors: list[tuple[int, int]], jobs: int) -> None:
    registry = NodeRegistry(timeout_s=15.0)
    for index, (cores, slots) in enumerate(executors):
        registry.observe(beat(f"n{index}", capabilities=caps(cores=cores), max_jobs=slots), 0.0)
    given_out: dict[str, int] = {}
    for n in range(jobs):
        chosen = registry.choose_executor(Requirements(), now=1.0).node
        if chosen is None:
            break
        registry.note_dispatch(chosen, uuid.UUID(int=n), now=1.0)
        given_out[chosen] = given_out.get(chosen, 0) + 1
    for index, (_cores, slots) in enumerate(executors):
        assert given_out.get(f"dtn://n{index}/", 0) <= slots
    assert sum(given_out.values()) == min(jobs, sum(slots for _c, slots in executors))


def test_datastore_choice_prefers_the_holder_then_free_space() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    assert registry.choose_datastore(10, now=0.0) is None
    registry.observe(beat("d1", roles=Role.DATASTORE, store_free=100), now=0.0)
    registry.observe(beat("d2", roles=Role.DATASTORE, store_free=150), now=0.0)
    assert registry.choose_datastore(60, now=1.0) == "dtn://d2/"  # 150 → 90 estimated
    assert registry.choose_datastore(10, now=1.0) == "dtn://d1/"  # 100 > 90
    assert registry.choose_datastore(500, now=1.0, preferred="dtn://d2/") == "dtn://d2/"
    assert registry.choose_datastore(1, now=1.0, preferred="dtn://gone/") == "dtn://d1/"
    registry.observe(beat("d2", 2, 1.0, roles=Role.DATASTORE, store_free=1000), now=2.0)
    assert registry.choose_datastore(1, now=2.0) == "dtn://d2/"


def test_node_entries_merge_the_roles_of_one_node() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    registry.observe(beat("n", roles=Role.DATASTORE, store_free=5), now=1.0)
    registry.observe(beat("n", running_jobs=(uuid.UUID(int=1),)), now=2.0)
    [entry] = registry.node_entries(now=3.0)
    assert entry.roles == Role.EXECUTOR | Role.DATASTORE
    assert (entry.last_seen, entry.running_jobs, entry.max_jobs) == (2.0, 1, 2)
    assert entry.capabilities == caps()


# -- job book ---------------------------------------------------------------------------------


def test_verdicts_follow_the_after_jobs() -> None:
    book = JobBook()
    first, second, third = job(1), job(2), job(3)
    waiting = record(job(4, after=(first.job_id, second.job_id)))
    book.put(waiting)
    verdict = book.verdict(waiting)
    assert verdict.readiness is Readiness.WAIT and verdict.reason.endswith("(not known here yet)")
    book.put(record(first, JobStatus.DONE))
    book.put(record(second, JobStatus.RUNNING))
    assert book.verdict(waiting).reason == f"waiting for job {second.job_id}"
    book.put(record(second, JobStatus.DONE))
    assert book.verdict(waiting).readiness is Readiness.READY
    rejected = record(job(5, after=(third.job_id, first.job_id)))
    book.put(record(third, JobStatus.REJECTED))
    assert book.verdict(rejected).reason == f"job {third.job_id} it runs after was rejected"
    assert [r.job_id for r in book.dependents(first.job_id)] == [waiting.job_id]
    assert [r.name for r in book.entries(client="dtn://c/ucp/client")] == ["j1", "j2", "j3", "j4"]


def test_foreign_jobs_merge_newest_first_and_never_replace_own_ones() -> None:
    book = JobBook()
    own = record(job(1))
    book.put(own)
    mark = book.change_mark

    def synced(n: int, state: JobStatus, at: float) -> SyncedJob:
        return SyncedJob(JobStatusEntry(job_id=uuid.UUID(int=n), state=state, updated_at=at))

    contested_entry = synced(1, JobStatus.FAILED, 9.0)
    became_final, contested = book.merge_foreign(
        "dtn://o/ucp/broker", [contested_entry, synced(2, JobStatus.QUEUED, 5.0)]
    )
    assert became_final == [] and contested == [contested_entry]
    assert book.state_of(uuid.UUID(int=1)) == JobStatus.QUEUED
    assert book.merge_foreign("dtn://o/ucp/broker", [synced(2, JobStatus.FAILED, 4.0)]) == (
        [],
        [],
    )
    assert book.merge_foreign("dtn://o/ucp/broker", [synced(2, JobStatus.DONE, 6.0)]) == (
        [uuid.UUID(int=2)],
        [],
    )
    assert book.foreign_count == 1
    waiting = record(job(3, after=(uuid.UUID(int=2),)))
    book.put(waiting)
    assert book.verdict(waiting).readiness is Readiness.READY
    assert [r.job_id for r in book.changed_since(mark)] == [waiting.job_id]
    [entry] = book.entries([uuid.UUID(int=2)])
    assert entry.state == JobStatus.DONE


# -- name cache -------------------------------------------------------------------------------


def test_name_cache_last_write_wins_and_matches_by_segment() -> None:
    cache = NameCache()

    def entry(name: str, at: float, holder: str, job_id: uuid.UUID | None = None) -> DataEntry:
        return DataEntry(name=name, size=1, written_at=at, job_id=job_id, holder=holder)

    assert cache.record(entry("stdin", 2.0, "dtn://a/ucp/datastore")) is not None
    assert cache.record(entry("stdin", 1.0, "dtn://b/ucp/datastore")) is None
    cache.record(entry("stdin2", 1.0, "dtn://b/ucp/datastore"))
    assert cache.holders("stdin") == {"dtn://a/ucp/datastore"}
    assert cache.holders("stdi*") == {"dtn://a/ucp/datastore", "dtn://b/ucp/datastore"}
    job_id = uuid.UUID(int=7)
    cache.merge(
        [
            entry(f"{job_id}/result", 1.0, "dtn://a/ucp/datastore"),
            entry(f"{job_id}/out/x", 1.0, "dtn://a/ucp/datastore"),
            entry("tagged", 1.0, "dtn://a/ucp/datastore", job_id),
            DataEntry(name="no-holder", size=1, written_at=1.0),
        ]
    )
    assert len(cache) == 5
    assert sorted(cache.forget(job_id=job_id)) == [f"{job_id}/out/x", "tagged"]
    assert cache.forget(name="stdin") == ["stdin"]
    assert cache.holder(f"{job_id}/result") == "dtn://a/ucp/datastore"


# -- journal ----------------------------------------------------------------------------------


@pytest.mark.parametrize("in_memory", [False, True])
def test_journal_round_trip(tmp_path: Path, in_memory: bool) -> None:
    journal = BrokerJournal.open(None if in_memory else tmp_path / "broker")
    result = JobResult(
        job_id=uuid.UUID(int=1), executor="dtn://x/ucp/executor", status=ResultStatus.OK
    )
    records = [
        record(
            job(1),
            JobStatus.DONE,
            result=result,
            result_ref="r",
            attempts=2,
            executor="dtn://x/ucp/executor",
            dispatched_at=1.5,
            finished_at=3.0,
        ),
        record(job(2, after=(uuid.UUID(int=1),)), detail="waiting"),
    ]
    journal.put_jobs(records)
    first = journal.add_pending(DataGet(1, "a"), custody=False, queued_at=1.0)
    second = journal.add_pending(DataPut(2, "b", b"x", 1.0), custody=True, queued_at=2.0)
    journal.remove_pending([first])
    names = [
        DataEntry(
            name="b",
            size=1,
            written_at=1.0,
            job_id=uuid.UUID(int=1),
            holder="dtn://h/ucp/datastore",
        )
    ]
    journal.put_names(
        [*names, DataEntry(name="c", size=1, written_at=1.0, holder="dtn://h/ucp/datastore")]
    )
    journal.delete_names(["c"])
    contents = journal.load()
    assert list(contents.jobs) == records
    [pending] = contents.pending
    assert pending.sequence == second and pending.custody and pending.queued_at == 2.0
    assert pending.message == DataPut(2, "b", b"x", 1.0)
    assert list(contents.names) == names
    journal.close()
    if not in_memory:
        reopened = BrokerJournal.open(tmp_path / "broker")
        assert list(reopened.load().jobs) == records
        reopened.close()


def test_a_version_1_journal_is_upgraded_and_keeps_its_jobs(tmp_path: Path) -> None:
    journal = BrokerJournal.open(tmp_path)
    journal.put_jobs([record(job(1))])
    journal.close()
    db = sqlite3.connect(tmp_path / "broker.db")
    db.executescript(
        "ALTER TABLE jobs DROP COLUMN taken_from; DROP TABLE datastores; DROP TABLE brokers;"
        "UPDATE meta SET value = 1 WHERE key = 'schema';"
    )
    db.close()
    journal = BrokerJournal.open(tmp_path)
    try:
        [loaded] = journal.load().jobs
        assert loaded.job_id == job(1).job_id and loaded.taken_from is None
        journal.put_jobs([dataclasses.replace(loaded, taken_from="dtn://o/ucp/broker")])
        journal.put_datastores([("dtn://d/", 5.0), ("dtn://d/", 3.0)])
        journal.put_brokers([("dtn://o/ucp/broker", 1.0)])
        contents = journal.load()
        assert contents.jobs[0].taken_from == "dtn://o/ucp/broker"
        assert contents.datastores == (("dtn://d/", 5.0),)
        assert contents.brokers == ("dtn://o/ucp/broker",)
    finally:
        journal.close()


def test_journal_refuses_another_schema_and_skips_undecodable_rows(tmp_path: Path) -> None:
    journal = BrokerJournal.open(tmp_path)
    journal.put_jobs([record(job(1)), record(job(2))])
    journal.close()
    db = sqlite3.connect(tmp_path / "broker.db")
    db.execute("UPDATE jobs SET submission = x'ff' WHERE sequence = 1")
    db.commit()
    db.close()
    journal = BrokerJournal.open(tmp_path)
    assert [r.sequence for r in journal.load().jobs] == [2]
    journal.close()
    db = sqlite3.connect(tmp_path / "broker.db")
    db.execute("UPDATE meta SET value = 99")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="schema 99, expected 2"):
        BrokerJournal.open(tmp_path)
