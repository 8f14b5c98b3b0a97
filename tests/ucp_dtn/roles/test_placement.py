"""Jobs go to their data (issue #16), without a network: which nodes have a job's inputs at
hand (:class:`InputPlacement`), and how the registry weighs those bytes against load, slots
and dispatching ahead."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from ucp_dtn.roles.broker import NameCache, NodeRegistry
from ucp_dtn.roles.broker.placement import InputPlacement, job_input_queries
from ucp_dtn.roles.broker.registry import MAX_AHEAD
from ucp_dtn.ucp import (
    Capabilities,
    DataEntry,
    DataRef,
    Heartbeat,
    InlineData,
    JobInfo,
    Requirements,
    Role,
)

GIB = 1 << 30


def beat(node: str, cores: int = 4, **fields: Any) -> Heartbeat:
    fields.setdefault("max_jobs", 1)
    return Heartbeat(
        node=f"dtn://{node}/",
        roles=Role.EXECUTOR,
        sequence=1,
        sent_at=0.0,
        interval=5.0,
        capabilities=Capabilities(memory=8 * GIB, disk=GIB, cpu_load=0.0, cpu_cores=cores),
        **fields,
    )


def held(name: str, node: str, size: int) -> DataEntry:
    return DataEntry(name=name, size=size, written_at=1.0, holder=f"dtn://{node}/ucp/datastore")


def reads(n: int, **fields: Any) -> JobInfo:
    fields.setdefault("wasm", InlineData(b"\0asm"))
    return JobInfo(job_id=uuid.UUID(int=n), **fields)


def test_the_inputs_of_a_job_are_its_named_sources_and_inputs_not_inline_data() -> None:
    job = reads(
        1,
        wasm=DataRef("modules/m"),
        stdin=DataRef("audio/a"),
        job_data={"cfg.txt": DataRef("cfg")},
        inputs={"in": "survey", "all/*": "frames/f*"},
    )
    assert job_input_queries(job, {"cfg": b"x"}) == [
        "audio/a",
        "frames/f*",
        "modules/m",
        "survey",
    ]


def test_nodes_near_a_job_hold_its_data_or_ran_jobs_on_it() -> None:
    names = NameCache()
    for entry in (
        held("audio/a", "store", 19_000_000),
        held("survey/x", "store", 10),
        held("survey/y", "other", 20),
        held("unrelated", "other", 5_000),
    ):
        names.record(entry)
    replicas = {"audio/a": ["dtn://copy/"]}
    placement = InputPlacement(
        names, lambda query: {k: v for k, v in replicas.items() if k == query}
    )
    job = reads(1, stdin=DataRef("audio/a"), inputs={"in": "survey"})
    assert placement.near(job, {}) == {
        "dtn://store/": 19_000_010,
        "dtn://other/": 20,
        "dtn://copy/": 19_000_000,
    }
    assert placement.near(reads(2), {}) == {}
    # Inline data is no input to find.
    assert placement.near(reads(3, stdin=DataRef("audio/a")), {"audio/a": b"x"}) == {}
    # The executor that ran a job on these names has them in its input cache.
    placement.note_dispatch(job, {}, "dtn://worker/")
    assert placement.near(job, {})["dtn://worker/"] == 19_000_030
    # A pattern nobody knows the names of is remembered as it is.
    wild = reads(4, inputs={"w/*": "w*"})
    placement.note_dispatch(wild, {}, "dtn://worker/")
    assert placement.near(wild, {}) == {"dtn://worker/": 1}


def test_the_executor_near_the_data_wins_among_those_with_room() -> None:
    registry = NodeRegistry(timeout_s=15.0)
    registry.observe(beat("strong", cores=64), now=0.0)
    registry.observe(beat("near", cores=1), now=0.0)
    registry.observe(beat("needy", cores=1), now=0.0)
    near = {"dtn://near/": 19_000_000, "dtn://needy/": 10}
    assert registry.choose_executor(Requirements(), 1.0).node == "dtn://strong/"
    choice = registry.choose_executor(Requirements(), 1.0, near=near)
    assert (choice.node, choice.near_bytes) == ("dtn://near/", 19_000_000)
    # Busy next to the data: the job goes elsewhere rather than wait (nobody starves).
    registry.note_dispatch("dtn://near/", uuid.UUID(int=1), now=1.0)
    assert registry.choose_executor(Requirements(), 2.0, near=near).node == "dtn://needy/"
    # Requirements first: data never sends a job where it cannot run.
    needs = Requirements(cpu_cores=8)
    assert registry.choose_executor(needs, 2.0, near=near).node == "dtn://strong/"


def test_dispatching_ahead_only_when_no_capable_executor_has_a_free_slot() -> None:
    registry = NodeRegistry(timeout_s=15.0, dispatch_ahead=1)
    registry.observe(beat("a"), now=0.0)
    registry.observe(beat("b"), now=0.0)
    first = registry.choose_executor(Requirements(), 1.0)
    registry.note_dispatch(first.node or "", uuid.UUID(int=1), now=1.0)
    second = registry.choose_executor(Requirements(), 1.0)
    assert {first.node, second.node} == {"dtn://a/", "dtn://b/"}  # free slots first
    registry.note_dispatch(second.node or "", uuid.UUID(int=2), now=1.0)
    third = registry.choose_executor(Requirements(), 1.0, near={"dtn://b/": 5})
    assert third.node == "dtn://b/"  # one ahead, where the data is
    registry.note_dispatch("dtn://b/", uuid.UUID(int=3), now=1.0)
    assert registry.choose_executor(Requirements(), 1.0).node == "dtn://a/"
    registry.note_dispatch("dtn://a/", uuid.UUID(int=4), now=1.0)
    full = registry.choose_executor(Requirements(), 1.0)
    assert full.node is None
    assert full.reason == "waiting for a free slot: 2 capable executors are busy"


def fill(registry: NodeRegistry, node: str, first: int, count: int, now: float) -> None:
    for number in range(first, first + count):
        registry.note_dispatch(node, uuid.UUID(int=number), now=now)


def test_an_executor_whose_jobs_are_short_may_queue_more_by_time() -> None:
    registry = NodeRegistry(timeout_s=15.0, dispatch_ahead=1, ahead_time_s=0.25)
    registry.observe(beat("a", max_jobs=2), now=0.0)
    entry = registry.get("dtn://a/", Role.EXECUTOR, 0.0)
    assert entry is not None
    # Nothing known of its jobs yet: --dispatch-ahead alone (2 slots + 1).
    fill(registry, "dtn://a/", 1, 3, now=0.0)
    assert registry.choose_executor(Requirements(), 0.0).node is None
    # Its jobs run for 50 ms: 2 slots get through 10 in 250 ms.
    for number in (1, 2, 3):
        registry.note_finished("dtn://a/", uuid.UUID(int=number), run_s=0.05)
    assert entry.run_s == 0.05
    assert registry.ahead_of(entry, 0.05) == 10
    fill(registry, "dtn://a/", 10, 12, now=0.05)
    assert registry.choose_executor(Requirements(), 0.05).node is None  # 2 + 10 out
    # Longer jobs pull the moving average up, and the allowance down.
    for number in range(10, 22):
        registry.note_finished("dtn://a/", uuid.UUID(int=number), run_s=0.25)
    assert entry.run_s is not None and entry.run_s > 0.15
    assert registry.ahead_of(entry, 0.25) < 4
    # Never more than MAX_AHEAD, however quick.
    for number in range(30, 70):
        registry.note_dispatch("dtn://a/", uuid.UUID(int=number), now=1.0)
        registry.note_finished("dtn://a/", uuid.UUID(int=number), run_s=0.0001)
    assert registry.ahead_of(entry, 1.0001) == MAX_AHEAD


def test_nothing_more_queues_behind_a_job_out_for_longer_than_the_ahead_time() -> None:
    registry = NodeRegistry(timeout_s=15.0, dispatch_ahead=1, ahead_time_s=0.25)
    registry.observe(beat("a", max_jobs=1), now=0.0)
    entry = registry.get("dtn://a/", Role.EXECUTOR, 0.0)
    assert entry is not None
    registry.note_dispatch("dtn://a/", uuid.UUID(int=1), now=0.0)
    registry.note_finished("dtn://a/", uuid.UUID(int=1), run_s=0.01)
    registry.note_dispatch("dtn://a/", uuid.UUID(int=2), now=1.0)  # a long one, it turns out
    assert registry.ahead_of(entry, 1.1) == 25
    assert registry.ahead_of(entry, 1.3) == 1  # out for 0.3 s > 0.25 s: --dispatch-ahead only
    # A cancel (no turnaround) ends it too; the average is untouched.
    registry.note_finished("dtn://a/", uuid.UUID(int=2))
    assert entry.run_s == 0.01 and registry.ahead_of(entry, 2.0) == 25


def test_dispatch_ahead_zero_or_no_ahead_time_keep_the_count() -> None:
    for ahead, ahead_time, expected in ((0, 0.25, 0), (2, 0.0, 2)):
        registry = NodeRegistry(timeout_s=15.0, dispatch_ahead=ahead, ahead_time_s=ahead_time)
        registry.observe(beat("a", max_jobs=2), now=0.0)
        registry.note_dispatch("dtn://a/", uuid.UUID(int=1), now=0.0)
        registry.note_finished("dtn://a/", uuid.UUID(int=1), run_s=0.001)
        entry = registry.get("dtn://a/", Role.EXECUTOR, 0.001)
        assert entry is not None and registry.ahead_of(entry, 0.001) == expected


def test_jobs_an_executor_forgot_are_not_outstanding_for_ever() -> None:
    registry = NodeRegistry(timeout_s=15.0, dispatch_ahead=1, ahead_time_s=0.25)
    registry.observe(beat("a", max_jobs=1), now=0.0)
    registry.note_dispatch("dtn://a/", uuid.UUID(int=1), now=0.0)
    registry.observe(dataclasses.replace(beat("a"), sequence=2, sent_at=20.0), now=20.0)
    entry = registry.get("dtn://a/", Role.EXECUTOR, 20.0)
    assert entry is not None and entry.outstanding == {}


def test_the_schedulers_requirements_key_tells_every_field_apart() -> None:
    from ucp_dtn.roles.broker.scheduling import _requirements_key

    changed = {
        "memory": 1,
        "disk": 1,
        "cpu_cores": 1,
        "cpu_freq": 1.0,
        "free_cpu": 0.5,
        "max_cpu_load": 0.5,
        "min_power": 1.0,
        "no_battery": True,
        "extra": {"gpu": True},
    }
    assert set(changed) == {f.name for f in dataclasses.fields(Requirements)}
    keys = {_requirements_key(Requirements(**{name: value})) for name, value in changed.items()}
    assert len(keys | {_requirements_key(Requirements())}) == len(changed) + 1
    assert _requirements_key(Requirements(extra={"a": 1, "b": "x"})) == _requirements_key(
        Requirements(extra={"b": "x", "a": 1})
    )
