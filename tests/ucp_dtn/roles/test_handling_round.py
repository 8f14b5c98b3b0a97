"""The broker's handling round: writes and sends of several handlers made durable level by
level, in an order that keeps each handler's own write/send order (no network, no clock)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest

from bpv7 import BPv7Error, parse_eid
from ucp_dtn.roles.broker.handling_round import HandlingRound
from ucp_dtn.roles.broker.job_records import JobRecord
from ucp_dtn.roles.coalescing import Outgoing
from ucp_dtn.ucp import (
    DataEntry,
    InlineData,
    JobAccepted,
    JobInfo,
    JobStatus,
    JobSubmission,
)

CLIENT = "dtn://c/ucp/client"
BROKER = "dtn://b/ucp/broker"


def record(n: int, state: JobStatus = JobStatus.QUEUED) -> JobRecord:
    info = JobInfo(job_id=uuid.UUID(int=n), wasm=InlineData(b"\0asm"))
    return JobRecord(JobSubmission(info), CLIENT, n, state, 1.0, 2.0)


def accepted(n: int) -> JobAccepted:
    return JobAccepted(uuid.UUID(int=n), BROKER)


class Log:
    """What a flush did, in order: ("write", [(job, state)...]) and ("send", [messages])."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, list[object]]] = []

    async def put_jobs(self, records: Iterable[JobRecord], names: Iterable[DataEntry]) -> None:
        step: list[object] = [(r.job_id.int, r.state) for r in records]
        step += [entry.name for entry in names]
        self.steps.append(("write", step))

    async def send_many(self, items: Iterable[Outgoing]) -> None:
        self.steps.append(("send", [item.message for item in items]))


async def test_handlers_in_a_round_share_one_transaction_and_one_send_per_level() -> None:
    round_ = HandlingRound()
    for n in range(3):  # three submissions: record, then accept
        round_.begin_message()
        round_.write(record(n))
        round_.send(CLIENT, accepted(n), custody=False, lifetime_s=None)
    log = Log()
    await round_.flush(log.put_jobs, log.send_many)
    assert log.steps == [
        ("write", [(0, JobStatus.QUEUED), (1, JobStatus.QUEUED), (2, JobStatus.QUEUED)]),
        ("send", [accepted(0), accepted(1), accepted(2)]),
    ]
    assert round_.empty


async def test_a_write_after_a_send_of_the_same_handler_comes_after_it() -> None:
    round_ = HandlingRound()
    round_.begin_message()  # a result: record it, deliver it, then mark it delivered
    round_.write(record(1, JobStatus.DONE))
    round_.send(CLIENT, accepted(1), custody=True, lifetime_s=10.0)
    round_.write(record(1, JobStatus.CANCELLED))  # (any later version)
    round_.begin_message()  # another handler's first write stays at level 0
    round_.write(record(2))
    log = Log()
    await round_.flush(log.put_jobs, log.send_many)
    assert log.steps == [
        ("write", [(1, JobStatus.DONE), (2, JobStatus.QUEUED)]),
        ("send", [accepted(1)]),
        ("write", [(1, JobStatus.CANCELLED)]),
    ]


async def test_a_job_is_never_written_back_to_an_older_version() -> None:
    round_ = HandlingRound()
    round_.begin_message()
    round_.send(CLIENT, accepted(9), custody=False, lifetime_s=None)
    round_.write(record(1, JobStatus.DISPATCHED))  # level 1
    round_.begin_message()
    # A later handler changes the same job: it goes to level 1 too (not 0, where it would be
    # overwritten by the older version), and its send after it follows it there.
    round_.write(record(1, JobStatus.RUNNING))
    round_.send(CLIENT, accepted(1), custody=False, lifetime_s=None)
    log = Log()
    await round_.flush(log.put_jobs, log.send_many)
    assert log.steps == [
        ("send", [accepted(9)]),
        ("write", [(1, JobStatus.RUNNING)]),
        ("send", [accepted(1)]),
    ]
    assert round_.counts == (1, 0, 0)


async def test_name_cache_entries_go_with_the_first_transaction() -> None:
    round_ = HandlingRound()
    round_.begin_message()
    round_.send(CLIENT, accepted(1), custody=False, lifetime_s=None)
    round_.write(record(1, JobStatus.DONE))  # level 1
    entry = DataEntry(name="x/result", size=1, written_at=1.0, holder="dtn://d/ucp/datastore")
    round_.write_names([entry, entry])
    assert not round_.empty
    log = Log()
    await round_.flush(log.put_jobs, log.send_many)
    assert log.steps == [
        ("write", ["x/result"]),
        ("send", [accepted(1)]),
        ("write", [(1, JobStatus.DONE)]),
    ]
    assert round_.empty


def test_a_send_checks_its_destination_at_once() -> None:
    round_ = HandlingRound()
    with pytest.raises(BPv7Error):  # in the handler, which ignores the message as before
        round_.send("not an eid", accepted(1), custody=False, lifetime_s=None)
    round_.send(parse_eid(CLIENT), accepted(1), custody=False, lifetime_s=None)
    assert round_.counts == (1, 0, 1)
