"""Jobs stranded with a lost broker (:mod:`ucp_dtn.client.stranded`): which jobs the client
sends again, and when, by the journal's clock (trio's, jumped by ``autojump_clock``), and what
the journal keeps for it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import trio

from tests.ucp_dtn.test_client_session import LIMIT, hub, settings_for, write_plan
from ucp_dtn.client import ClientJournal, ClientSession, JobEntry, JobEvent, wait_for_jobs
from ucp_dtn.client.operations import run_operation
from ucp_dtn.client.stranded import MovedJob, holder, stranded
from ucp_dtn.roles import RoleName
from ucp_dtn.ucp import (
    InlineData,
    JobInfo,
    JobResult,
    JobStatus,
    JobSubmission,
    ResultStatus,
    load_plan,
)

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


async def test_jobs_of_a_broker_no_one_reaches_move_through_status_and_waiting(
    tmp_path: Path,
) -> None:
    # Two jobs a broker "gone" accepted (as the journal says) and lost before anybody else
    # heard of them; the hub's broker never saw them. `ucp status` moves the first (and says
    # so), waiting for the second moves that one; both run on the hub once, with results.
    plan = load_plan(
        write_plan(tmp_path, '[jobs.one]\nwasm = "hello.wasm"\n[jobs.two]\nwasm = "hello.wasm"\n')
    )
    gone = "dtn://gone/ucp/broker"
    roles = (RoleName.BROKER, RoleName.EXECUTOR, RoleName.DATASTORE)
    events: list[JobEvent] = []
    lines: list[str] = []

    async def emit(event: dict[str, Any]) -> None:
        if event.get("event") == "log":
            lines.append(str(event["line"]))

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery, hub(nursery, roles) as node:
            settings = settings_for(
                tmp_path / "home", node, resubmit_after_s=0.2, request_timeout_s=1.0
            )
            async with ClientSession.open(settings) as session:
                session.watch(events.append)
                journal = session.journal
                ids = [job.info.job_id for job in plan.jobs]
                await journal.add_jobs(
                    "plan.toml", [(j.name, j.info.job_id) for j in plan.jobs], broker=gone
                )
                await journal.keep_submissions(
                    [JobSubmission(j.info, j.inline_data) for j in plan.jobs]
                )
                for job_id in ids:
                    await journal.accepted(job_id, gone)
                await trio.sleep(0.3)  # past --resubmit-after: time, not a wait for an event

                document = await run_operation(
                    session.client, settings, "status", {"jobs": ["one"]}, emit
                )
                assert lines == [
                    f"ucp: one ({str(ids[0])[:8]}): moved to dtn://hub/ucp/broker: {gone} "
                    "accepted it, does not answer, and no other broker knows the job"
                ]
                (shown,) = document["jobs"]
                assert shown["broker"] == "dtn://hub/ucp/broker" and shown["moved_at"]

                entries = await wait_for_jobs(session, ids, timeout_s=LIMIT)
                assert [entry.succeeded for entry in entries] == [True, True]
                assert {entry.accepted_by for entry in entries} == {"dtn://hub/ucp/broker"}
                # Moved once each: the hub knew them from then on.
                moves = [e.message for e in events if isinstance(e.message, JobSubmission)]
                assert sorted(m.job.job_id for m in moves) == sorted(ids)
                assert {m.moved_from for m in moves} == {gone}
            nursery.cancel_scope.cancel()
