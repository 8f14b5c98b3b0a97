"""Which jobs a broker takes back from lost executors, and taking over another broker's jobs
(the sans-IO parts of :mod:`ucp_dtn.roles.broker.redeploy`)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from ucp_dtn.agent import BundleNode, NodeConfig
from ucp_dtn.roles.broker import ForeignJob, JobRecord
from ucp_dtn.roles.broker.redeploy import (
    RestartHold,
    adopted,
    is_current,
    keeps_job,
    orphaned_jobs,
    requeue,
    stranded_jobs,
    takeover_wait,
)
from ucp_dtn.roles.directory import BrokerDirectory
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.ucp import InlineData, JobInfo, JobStatus, JobStatusEntry, JobSubmission, SyncedJob

WASM = InlineData(b"\0asm\x01\0\0\0")


def record(number: int, state: JobStatus, **fields: Any) -> JobRecord:
    fields.setdefault("executor", "dtn://x1/ucp/executor")
    fields.setdefault("updated_at", 100.0)
    return JobRecord(
        submission=JobSubmission(JobInfo(wasm=WASM, job_id=uuid.UUID(int=number))),
        client="dtn://a/ucp/client",
        sequence=number,
        state=state,
        submitted_at=0.0,
        attempts=1,
        **fields,
    )


def live_nodes(*nodes: str) -> Any:
    return lambda node: node in nodes


@pytest.mark.parametrize("state", [JobStatus.DISPATCHED, JobStatus.RUNNING])
def test_busy_jobs_of_a_lost_executor_are_stranded(state: JobStatus) -> None:
    job = record(1, state)
    assert stranded_jobs([job], live_nodes(), now=115.0, timeout_s=15.0) == [job]


@pytest.mark.parametrize(
    ("job", "live", "now"),
    [
        pytest.param(record(1, JobStatus.RUNNING), ("dtn://x1/",), 500.0, id="executor live"),
        pytest.param(record(1, JobStatus.RUNNING), (), 114.9, id="changed recently"),
        pytest.param(record(1, JobStatus.QUEUED), (), 500.0, id="queued"),
        pytest.param(record(1, JobStatus.DONE), (), 500.0, id="final"),
        pytest.param(record(1, JobStatus.DISPATCHED, executor=None), (), 500.0, id="no executor"),
    ],
)
def test_jobs_that_are_not_stranded(job: JobRecord, live: tuple[str, ...], now: float) -> None:
    assert stranded_jobs([job], live_nodes(*live), now=now, timeout_s=15.0) == []


def test_a_restarted_broker_gives_executors_one_timeout_to_speak() -> None:
    job = record(1, JobStatus.RUNNING)
    assert stranded_jobs([job], live_nodes(), 500.0, 15.0, serving_since=490.0) == []
    assert stranded_jobs([job], live_nodes(), 505.0, 15.0, serving_since=490.0) == [job]


def test_only_the_lost_executors_jobs_are_stranded_in_the_given_order() -> None:
    jobs = [
        record(3, JobStatus.RUNNING, executor="dtn://x2/ucp/executor"),
        record(1, JobStatus.RUNNING),
        record(2, JobStatus.DISPATCHED, executor="dtn://x2/ucp/executor"),
    ]
    found = stranded_jobs(jobs, live_nodes("dtn://x1/"), now=200.0, timeout_s=15.0)
    assert [r.sequence for r in found] == [3, 2]


def test_a_requeued_job_keeps_its_attempts_and_says_why() -> None:
    again = requeue(record(1, JobStatus.RUNNING), now=130.0)
    assert again.state == JobStatus.QUEUED and again.updated_at == 130.0
    assert again.attempts == 1 and again.executor == "dtn://x1/ucp/executor"
    assert again.detail == "executor dtn://x1/ucp/executor lost during attempt 1: redeploying"


@pytest.mark.parametrize(
    ("executor", "node", "current"),
    [
        ("dtn://x1/ucp/executor", "dtn://x1/", True),
        ("dtn://x1/ucp/executor", "dtn://x2/", False),
        (None, "dtn://x2/", True),
    ],
)
def test_is_current(executor: str | None, node: str, current: bool) -> None:
    assert is_current(record(1, JobStatus.RUNNING, executor=executor), node) is current


def foreign(
    state: JobStatus, *, job: bool = True, client: str | None = "dtn://a/ucp/client"
) -> ForeignJob:
    info = JobInfo(wasm=WASM, job_id=uuid.UUID(int=7), name="seven")
    status = JobStatusEntry(
        job_id=info.job_id,
        state=state,
        updated_at=50.0,
        name="seven",
        client=client,
        executor="dtn://x1/ucp/executor",
        attempts=2,
    )
    return ForeignJob(broker="dtn://old/ucp/broker", status=status, job=info if job else None)


def test_a_dispatched_foreign_job_is_adopted_as_it_was() -> None:
    taken = adopted(foreign(JobStatus.RUNNING), sequence=12)
    assert taken is not None
    assert taken.job_id == uuid.UUID(int=7) and taken.job.name == "seven"
    assert taken.client == "dtn://a/ucp/client" and taken.result_address == taken.client
    assert taken.state == JobStatus.RUNNING and taken.attempts == 2 and taken.sequence == 12
    assert taken.executor == "dtn://x1/ucp/executor"
    assert taken.detail == "taken over from dtn://old/ucp/broker"
    assert taken.result is None and not taken.submission.inline_data


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(foreign(JobStatus.DONE, job=False), id="final"),
        pytest.param(foreign(JobStatus.RUNNING, job=False), id="without the job"),
        pytest.param(foreign(JobStatus.RUNNING, client=None), id="without the client"),
    ],
)
def test_foreign_jobs_that_cannot_be_adopted(job: ForeignJob) -> None:
    assert adopted(job, sequence=1) is None


def test_a_queued_foreign_job_is_adopted_with_its_inline_data_and_whom_it_came_from() -> None:
    queued = foreign(JobStatus.QUEUED)
    queued = ForeignJob(queued.broker, queued.status, queued.job, inline_data={"cfg": b"7"})
    taken = adopted(queued, sequence=3, now=80.0)
    assert taken is not None and taken.state == JobStatus.QUEUED
    assert dict(taken.submission.inline_data) == {"cfg": b"7"}
    assert taken.taken_from == "dtn://old/ucp/broker" and taken.updated_at == 80.0
    # Its syncs carry the job whole again, and say where it came from.
    synced = taken.synced()
    assert synced.job == taken.job and dict(synced.inline_data) == {"cfg": b"7"}
    assert synced.taken_from == "dtn://old/ucp/broker"
    assert not record(1, JobStatus.DONE).synced().inline_data


def test_orphaned_jobs_are_the_unfinished_ones_of_brokers_gone_too_long() -> None:
    gone = {"dtn://old/ucp/broker": 100.0}
    jobs = [foreign(JobStatus.QUEUED), foreign(JobStatus.DONE), foreign(JobStatus.RUNNING)]
    found = orphaned_jobs(jobs, lambda broker: gone.get(broker, 0.0), 30.0)
    assert [job.status.state for job in found] == [JobStatus.QUEUED, JobStatus.RUNNING]
    assert orphaned_jobs(jobs, lambda broker: 20.0, 30.0) == []


def test_the_smallest_live_broker_takes_over_first_the_others_a_round_later_each() -> None:
    live = ["dtn://b/", "dtn://c/"]
    assert takeover_wait(live, "dtn://b/", 30.0, 15.0) == 30.0
    assert takeover_wait(live, "dtn://c/", 30.0, 15.0) == 45.0
    assert takeover_wait([], "dtn://z/", 30.0, 15.0) == 30.0


def synced_entry(state: JobStatus, taken_from: str | None = None) -> SyncedJob:
    return SyncedJob(
        JobStatusEntry(
            job_id=uuid.UUID(int=1), state=state, updated_at=9.0, client="dtn://a/ucp/client"
        ),
        taken_from=taken_from,
    )


A, B = "dtn://a/ucp/broker", "dtn://b/ucp/broker"


@pytest.mark.parametrize(
    ("own", "other", "a_keeps"),
    [
        # b took the job over from a: b keeps it, whatever their names.
        (record(1, JobStatus.QUEUED), synced_entry(JobStatus.QUEUED, taken_from=A), False),
        # a's record is final: it keeps it (the first result won there).
        (record(1, JobStatus.DONE), synced_entry(JobStatus.QUEUED, taken_from=A), True),
        (record(1, JobStatus.QUEUED), synced_entry(JobStatus.DONE), False),
        # a took it over from b.
        (record(1, JobStatus.QUEUED, taken_from=B), synced_entry(JobStatus.QUEUED), True),
        # Both took it over from a third broker: the smaller EID keeps it.
        (
            record(1, JobStatus.QUEUED, taken_from="dtn://c/ucp/broker"),
            synced_entry(JobStatus.QUEUED, taken_from="dtn://c/ucp/broker"),
            True,
        ),
    ],
)
def test_exactly_one_of_two_owners_keeps_a_job(
    own: JobRecord, other: SyncedJob, a_keeps: bool
) -> None:
    assert keeps_job(own, A, other, B) is a_keeps
    # The other side decides the same (its own record mirrors ours).
    mirrored_own = JobRecord(
        submission=own.submission,
        client=own.client,
        sequence=1,
        state=other.status.state,
        submitted_at=0.0,
        updated_at=9.0,
        taken_from=other.taken_from,
    )
    mirrored_other = SyncedJob(own.status_entry(), taken_from=own.taken_from)
    assert keeps_job(mirrored_own, B, mirrored_other, A) is not a_keeps


def test_a_takeover_claim_of_another_client_does_not_make_the_owner_give_the_job_up() -> None:
    """A client that reuses another client's job UUID and names the broker holding that job as
    the one it "moved" from gets no say: the claim counts only between the same client's
    records, and the brokers fall back to the rule without it (the smaller EID keeps)."""
    real = record(1, JobStatus.QUEUED)  # at broker b, from dtn://a/ucp/client
    impostor = SyncedJob(
        JobStatusEntry(
            job_id=uuid.UUID(int=1),
            state=JobStatus.QUEUED,
            updated_at=9.0,
            client="dtn://mallory/ucp/client",
        ),
        taken_from=B,
    )
    assert keeps_job(real, B, impostor, A) is False  # a < b: the name rule, not the claim
    assert keeps_job(real, A, impostor, B) is True  # the claim names b, the holder is a: kept
    claimed_from_holder = dataclasses.replace(impostor, taken_from=A)
    assert keeps_job(real, A, claimed_from_holder, B) is True
    # The same claim from the job's own client moves it.
    own_client = SyncedJob(
        JobStatusEntry(
            job_id=uuid.UUID(int=1),
            state=JobStatus.QUEUED,
            updated_at=9.0,
            client="dtn://a/ucp/client",
        ),
        taken_from=A,
    )
    assert keeps_job(real, A, own_client, B) is False


def test_a_restart_hold_ends_when_every_remembered_broker_synced_or_in_time() -> None:
    jobs = [uuid.UUID(int=1), uuid.UUID(int=2)]
    hold = RestartHold(jobs, ["dtn://b/ucp/broker", "dtn://c/ucp/broker"], until=100.0)
    assert hold.holds(jobs[0]) and len(hold) == 2
    hold.heard("dtn://b/ucp/broker")
    hold.discard(jobs[1])  # handed back to the broker that took it over
    assert hold.release(50.0) == 0 and hold.holds(jobs[0])
    hold.heard("dtn://c/ucp/broker")
    assert hold.release(50.0) == 1 and not hold.holds(jobs[0])
    late = RestartHold(jobs, ["dtn://gone/ucp/broker"], until=100.0)
    assert late.release(100.0) == 2
    assert not RestartHold(jobs, [], until=100.0).holds(jobs[0])  # never had peers: no hold


# -- where an executor reports: the dispatching broker while reachable, else its successor ---


def directory(*roles: str, brokers: tuple[str, ...] = ()) -> BrokerDirectory:
    # A node that is not running knows only its own roles: the broker it "reaches" is itself.
    node = BundleNode(NodeConfig(node_id="dtn://x/", workdir=None, roles=roles))
    return BrokerDirectory(node, RoleSettings(brokers=brokers))


@pytest.mark.parametrize(
    ("roles", "endpoint", "expected"),
    [
        pytest.param(("broker",), "dtn://b1/ucp/broker", "dtn://x/ucp/broker", id="successor"),
        pytest.param(("broker",), "dtn://x/ucp/broker", "dtn://x/ucp/broker", id="reachable"),
        pytest.param((), "dtn://b1/ucp/broker", "dtn://b1/ucp/broker", id="none reachable"),
        pytest.param(("broker",), "dtn://d/ucp/datastore", "dtn://d/ucp/datastore", id="no broker"),
        pytest.param(("broker",), "not an eid", "not an eid", id="not an EID"),
    ],
)
def test_report_to(roles: tuple[str, ...], endpoint: str, expected: str) -> None:
    assert directory(*roles).report_to(endpoint) == expected


def test_configured_brokers_that_are_not_reachable_come_after_the_reachable_ones() -> None:
    found = directory("broker", brokers=("dtn://b1/",)).broker_nodes()
    assert [str(node) for node in found] == ["dtn://x/", "dtn://b1/"]
    # With none reachable, the configured ones are all there is.
    assert [str(node) for node in directory(brokers=("dtn://b1/",)).broker_nodes()] == ["dtn://b1/"]
