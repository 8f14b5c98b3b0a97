"""The dashboard's job table: rows from a broker's records, refreshed by change marks, filters,
and the run-time histograms fed once per finished job."""

from __future__ import annotations

import uuid
from typing import Any

from ucp_dtn.dashboard import Histogram, JobTable
from ucp_dtn.roles.broker import JobBook, JobRecord
from ucp_dtn.ucp import InlineData, JobInfo, JobStatus, JobSubmission


def record(n: int, state: JobStatus = JobStatus.QUEUED, **fields: Any) -> JobRecord:
    info = JobInfo(job_id=uuid.UUID(int=n), wasm=InlineData(b"\0asm"), name=f"job-{n}")
    values: dict[str, Any] = {"submitted_at": 100.0, "updated_at": 100.0 + n}
    values.update(fields)
    return JobRecord(
        submission=JobSubmission(info),
        client="dtn://c/ucp/client",
        sequence=n,
        state=state,
        **values,
    )


class BookBroker:
    """A broker's job book behind the one accessor the table uses (the broker itself is
    tested in tests/ucp_dtn/roles)."""

    def __init__(self) -> None:
        self.book = JobBook()

    def jobs_changed_since(self, mark: int) -> tuple[int, list[JobRecord]]:
        return self.book.change_mark, self.book.changed_since(mark)


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert histogram.count == 4 and histogram.sum == 7.65


def test_rows_follow_the_broker_and_finished_jobs_are_timed_once() -> None:
    broker = BookBroker()
    table = JobTable()
    broker.book.put(record(1))
    broker.book.put(record(2))
    table.refresh(broker)  # type: ignore[arg-type]
    assert [table.get(str(uuid.UUID(int=n))).state for n in (1, 2)] == ["queued", "queued"]  # type: ignore[union-attr]

    running = record(1, JobStatus.RUNNING, executor="dtn://w/ucp/executor", attempts=1,
                     dispatched_at=101.0, started_at=102.0)  # fmt: skip
    broker.book.put(running)
    table.refresh(broker)  # type: ignore[arg-type]
    row = table.get(str(uuid.UUID(int=1)))
    assert row is not None and row.state == "running" and row.executor == "dtn://w/"
    assert row.run_s is None and table.run_time.count == 0

    done = record(1, JobStatus.DONE, executor="dtn://w/ucp/executor", attempts=1,
                  dispatched_at=101.0, started_at=102.0, finished_at=104.5)  # fmt: skip
    broker.book.put(done)
    table.refresh(broker)  # type: ignore[arg-type]
    table.refresh(broker)  # nothing new: nothing counted again
    broker.book.put(done)  # the same final record again (a detail change): still once
    table.refresh(broker)  # type: ignore[arg-type]
    assert table.get(str(uuid.UUID(int=1))).run_s == 2.5  # type: ignore[union-attr]
    assert (table.run_time.count, table.run_time.sum) == (1, 2.5)
    assert (table.wait_time.count, table.wait_time.sum) == (1, 2.0)
    # Rejected jobs never ran: not timed.
    broker.book.put(record(2, JobStatus.REJECTED, finished_at=103.0, detail="no executor"))
    table.refresh(broker)  # type: ignore[arg-type]
    assert table.run_time.count == 1
    assert table.counts() == {
        "queued": 0, "dispatched": 0, "running": 0, "done": 1, "failed": 0, "rejected": 1,
        "cancelled": 0,
    }  # fmt: skip


def test_a_replaced_job_book_is_read_again_and_no_broker_empties_the_table() -> None:
    broker = BookBroker()
    for n in range(1, 4):
        broker.book.put(record(n))
    table = JobTable()
    table.refresh(broker)  # type: ignore[arg-type]
    assert len(table) == 3
    broker.book = JobBook()  # the broker restarted: its marks start again
    broker.book.put(record(7))
    table.refresh(broker)  # type: ignore[arg-type]
    assert [row.name for row in table.select()] == ["job-7"]
    table.refresh(None)
    assert len(table) == 0


def test_select_filters_by_state_executor_and_text_newest_first() -> None:
    broker = BookBroker()
    broker.book.put(record(1, JobStatus.DONE, executor="dtn://w1/ucp/executor"))
    broker.book.put(record(2, JobStatus.FAILED, executor="dtn://w2/ucp/executor",
                           detail="trap: out of fuel"))  # fmt: skip
    broker.book.put(record(3, JobStatus.QUEUED, detail="no executor known"))
    table = JobTable()
    table.refresh(broker)  # type: ignore[arg-type]
    assert [r.name for r in table.select()] == ["job-3", "job-2", "job-1"]
    assert [r.name for r in table.select(states=["done", "failed"])] == ["job-2", "job-1"]
    assert [r.name for r in table.select(executor="dtn://w1/")] == ["job-1"]
    assert [r.name for r in table.select(text="FUEL")] == ["job-2"]
    assert [r.name for r in table.select(limit=1)] == ["job-3"]
