"""Jobs stranded with a lost broker (:mod:`ucp_dtn.client.stranded`): which jobs the client
sends again, and when, by the journal's clock (trio's, jumped by ``autojump_clock``), and what
the journal keeps for it."""

from __future__ import annotations

import uuid

import trio

from ucp_dtn.client import ClientJournal, JobEntry
from ucp_dtn.client.stranded import MovedJob, holder, stranded
from ucp_dtn.ucp import InlineData, JobInfo, JobResult, JobStatus, JobSubmission, ResultStatus

A, B, C = (f"dtn://{name}/ucp/broker" for name in "abc")
AFTER_S = 120.0
LONE, KNOWN, DONE, FINISHED, OUTBOX = (uuid.UUID(int=n) for n in range(1, 6))
NAMES = {LONE: "lone", KNOWN: "known", DONE: "done", FINISHED: "finished", OUTBOX: "outbox"}


def submission(job_id: uuid.UUID) -> JobSubmission:
    job = JobInfo(wasm=InlineData(b"\0asm\x01\0\0\0"), job_id=job_id, name=NAMES[job_id])
    return JobSubmission(job, {"in.txt": b"only here"})


async def entries(journal: ClientJournal) -> list[JobEntry]:
    return await journal.jobs()


async def test_a_job_moves_only_once_its_broker_is_silent_and_the_answering_one_knows_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = await ClientJournal.open(None, clock=trio.current_time)
    sent = [LONE, KNOWN, DONE, FINISHED]
    await journal.add_jobs("p.toml", [(NAMES[i], i) for i in [*sent, OUTBOX]], broker=None)
    await journal.keep_submissions([submission(i) for i in sent])
    await journal.set_broker(sent, A)
    for job_id in sent:
        await journal.accepted(job_id, A)
    # DONE has its result (nothing to move, its submission is dropped); A said FINISHED is
    # done (its result is fetched from the datastores instead); OUTBOX never left.
    await journal.store_result(
        JobResult(job_id=DONE, executor="dtn://x/ucp/executor", status=ResultStatus.OK),
        "delivered",
    )
    await journal.update_state(FINISHED, JobStatus.DONE, 1.0)
    assert set(await journal.submissions([*sent, OUTBOX])) == {LONE, KNOWN, FINISHED}

    # B answered and listed only KNOWN. Until A has had the job for AFTER_S, nothing moves: A
    # syncs a job it accepted at its next tick, and B may simply not have heard yet.
    await trio.sleep(AFTER_S - 1)
    assert stranded(await entries(journal), {KNOWN}, B, trio.current_time(), AFTER_S) == []
    await trio.sleep(1)
    now = trio.current_time()
    assert [e.job_id for e in stranded(await entries(journal), {KNOWN}, B, now, AFTER_S)] == [LONE]
    # Asked of A itself, or with moving turned off (0), nothing is stranded.
    assert stranded(await entries(journal), {KNOWN}, A, now, AFTER_S) == []
    assert stranded(await entries(journal), {KNOWN}, B, now, 0.0) == []

    # LONE goes to B: it is B's to accept now, and B's jobs are not stranded at B.
    moved = await journal.move(LONE, B)
    assert moved is not None and (moved.broker, moved.accepted_by) == (B, None)
    assert moved.moved_at == now and holder(moved) == B
    assert stranded(await entries(journal), {KNOWN}, B, now, AFTER_S) == []
    # Should B be lost too, C moves it again, AFTER_S after the move (not after the
    # submission, which is long past).
    await trio.sleep(AFTER_S - 1)
    assert stranded(await entries(journal), {KNOWN}, C, trio.current_time(), AFTER_S) == []
    await trio.sleep(1)
    later = trio.current_time()
    (lone,) = stranded(await entries(journal), {KNOWN}, C, later, AFTER_S)
    assert lone.job_id == LONE
    assert MovedJob(lone, B, C, later - now).line == (
        f"lone ({str(LONE)[:8]}): moved to {C}: {B} accepted it 120 s ago, does not answer, "
        "and no other broker knows the job"
    )
    # B's job-accepted comes after all: it holds the job.
    accepted = await journal.accepted(LONE, B)
    assert accepted is not None and holder(accepted) == B

    # The submission is sent again as it was first sent; once collected it is no longer kept.
    assert (await journal.submissions([LONE]))[LONE] == submission(LONE)
    await journal.mark_collected_many([(LONE, None), (KNOWN, "/out/2")])
    assert await journal.submissions([LONE, KNOWN]) == {}
    await journal.aclose()
