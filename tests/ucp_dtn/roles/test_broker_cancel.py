"""The broker's ``job-cancel``, ``job-output``/``job-log``, status filters and the warning about
an unknown result address — over real bundle nodes, with plain mailboxes playing the others."""

from __future__ import annotations

import uuid

import trio

from tests.ucp_dtn.agent_support import wait_until
from tests.ucp_dtn.roles.test_broker import Net, make_job, open_net, result
from ucp_dtn.roles.broker.outputs import JobOutputs, StreamTail
from ucp_dtn.ucp import (
    JobCancel,
    JobCancelReply,
    JobDispatch,
    JobLogQuery,
    JobLogReply,
    JobOutput,
    JobState,
    JobStatus,
    ResultStatus,
)


async def cancel(net: Net, *job_ids: uuid.UUID, reason: str = "") -> JobCancelReply:
    request = JobCancel(net.client.mailbox.next_request_id(), job_ids, reason=reason)
    [reply] = await net.client.mailbox.request(net.to, request, timeout_s=10)
    assert isinstance(reply.message, JobCancelReply)
    return reply.message


async def log(net: Net, job_id: uuid.UUID, out: int = 0, err: int = 0) -> JobLogReply:
    query = JobLogQuery(net.client.mailbox.next_request_id(), job_id, out, err)
    [reply] = await net.client.mailbox.request(net.to, query, timeout_s=10)
    assert isinstance(reply.message, JobLogReply)
    return reply.message


async def test_a_queued_job_cancelled_never_runs_and_its_dependents_are_rejected() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            first = make_job(name="first")
            second = make_job(name="second", after=(first.job_id,))
            await net.submit(first)
            await net.submit(second)
            await net.state(first, JobStatus.QUEUED)

            reply = await cancel(net, first.job_id, uuid.UUID(int=424242), reason="wrong input")
            [entry] = reply.jobs
            assert (entry.job_id, entry.state, entry.detail) == (
                first.job_id,
                JobStatus.CANCELLED,
                "wrong input",
            )
            assert reply.unknown == (uuid.UUID(int=424242),)
            await net.state(first, JobStatus.CANCELLED)
            rejected = await net.state(second, JobStatus.REJECTED)
            assert rejected.detail == f"job {first.job_id} it runs after was cancelled"

            # An executor appearing now gets nothing; cancelling again changes nothing.
            await net.x1.heartbeat(net.to)
            await wait_until(lambda: net.broker.statistics().executors == 1)
            again = await cancel(net, first.job_id)
            assert again.jobs[0].state == JobStatus.CANCELLED
            assert again.jobs[0].detail == "wrong input"
            assert not net.x1.got(JobDispatch)
            stats = net.broker.statistics()
            assert (stats.cancelled, stats.rejected, stats.dispatches) == (1, 1, 0)
            nursery.cancel_scope.cancel()


async def test_a_running_job_cancelled_is_stopped_and_its_late_result_dropped() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to)
            job = make_job(name="long")
            await net.submit(job)
            await net.x1.expect(JobDispatch)
            await net.x1.send(net.to, JobState(job.job_id, JobStatus.RUNNING, at=0.0))
            await net.state(job, JobStatus.RUNNING)

            reply = await cancel(net, job.job_id)
            assert reply.jobs[0].state == JobStatus.CANCELLED
            assert reply.jobs[0].detail == "cancelled by its client"
            stop = await net.x1.expect(JobCancel)
            assert stop.job_ids == (job.job_id,)
            # The executor's CANCELLED result (or any other) arrives after: dropped.
            await net.x1.send(net.to, result(job, net.x1, ResultStatus.CANCELLED), custody=True)
            await wait_until(lambda: net.broker.statistics().late_results == 1)
            [entry] = (await net.status(job_ids=(job.job_id,))).jobs
            assert entry.state == JobStatus.CANCELLED
            nursery.cancel_scope.cancel()


async def test_only_the_submitting_client_may_cancel() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            job = make_job()
            await net.submit(job)
            # x2's node is not the client's: to it the job is unknown.
            request = JobCancel(net.x2.mailbox.next_request_id(), (job.job_id,))
            [reply] = await net.x2.mailbox.request(net.to, request, timeout_s=10)
            assert isinstance(reply.message, JobCancelReply)
            assert reply.message.jobs == () and reply.message.unknown == (job.job_id,)
            [entry] = (await net.status(job_ids=(job.job_id,))).jobs
            assert entry.state == JobStatus.QUEUED
            nursery.cancel_scope.cancel()


async def test_job_output_is_kept_per_stream_and_read_from_an_offset() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to)
            job = make_job(name="chatty")
            await net.submit(job)
            await net.x1.expect(JobDispatch)
            assert (await log(net, job.job_id)).stdout == b""

            def output(at: int, data: bytes, **more: object) -> JobOutput:
                return JobOutput(job.job_id, net.x1.endpoint, 1, at, data, **more)  # type: ignore[arg-type]

            # One at a time: bundles sent back to back may overtake each other, and a chunk
            # older than one held is dropped (see roles/broker/outputs.py).
            await net.x1.send(net.to, output(0, b"one\n", stderr_at=0, stderr=b"warn\n"))
            # Output of another executor (not the job's) is ignored.
            await net.x2.send(net.to, JobOutput(job.job_id, net.x2.endpoint, 1, 8, b"x"))
            while (await log(net, job.job_id)).stdout != b"one\n":
                await trio.sleep(0.01)
            await net.x1.send(net.to, output(4, b"two\n"))
            while (await log(net, job.job_id)).stdout != b"one\ntwo\n":
                await trio.sleep(0.01)
            reply = await log(net, job.job_id, out=4, err=5)
            assert reply.found and reply.state == JobStatus.DISPATCHED
            assert (reply.stdout_at, reply.stdout) == (4, b"two\n")
            assert (reply.stderr_at, reply.stderr) == (5, b"")
            unknown = await log(net, uuid.UUID(int=77))
            assert not unknown.found
            nursery.cancel_scope.cancel()


async def test_status_filters_by_state_and_limits_the_newest() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            jobs = [make_job(name=f"j{i}") for i in range(4)]
            for job in jobs:
                await net.submit(job)
            await cancel(net, jobs[0].job_id)
            queued = await net.status(states=(JobStatus.QUEUED,))
            assert {entry.job_id for entry in queued.jobs} == {j.job_id for j in jobs[1:]}
            newest = await net.status(limit=2)
            assert len(newest.jobs) == 2 and newest.more == 2
            assert newest.jobs[0].job_id == jobs[0].job_id  # the cancel changed it last
            nursery.cancel_scope.cancel()


async def test_an_unknown_result_address_is_warned_about() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            own = await net.submit(make_job(result_address=net.client.endpoint))
            assert own.warning == ""
            neighbour = await net.submit(make_job(result_address=f"dtn://{'x1'}/results"))
            assert neighbour.warning == ""
            lost = await net.submit(make_job(result_address="dtn://client/ucp/client"))
            assert lost.warning == (
                "no node dtn://client/ is known here: the results wait in the network until it "
                "appears (up to 7 d)"
            )
            nursery.cancel_scope.cancel()


# -- the output tails, without a broker ------------------------------------------------------------


def test_a_stream_tail_keeps_the_newest_bytes_and_shows_gaps() -> None:
    tail = StreamTail()
    tail.add(0, b"abcd", keep=6)
    tail.add(2, b"cdef", keep=6)  # overlaps: only "ef" is new
    tail.add(0, b"ab", keep=6)  # a repeat of old bytes: nothing changes
    assert (tail.start, tail.data) == (0, b"abcdef")
    tail.add(6, b"gh", keep=6)
    assert (tail.start, tail.data) == (2, b"cdefgh")
    assert tail.since(0) == (2, b"cdefgh")  # the reader sees that 0..2 are gone
    assert tail.since(7) == (7, b"h")
    assert tail.since(99) == (8, b"")
    tail.add(20, b"z", keep=6)  # a lost chunk: the stream goes on after the gap
    assert tail.since(8) == (20, b"z")


def test_job_outputs_follow_the_newest_attempt_and_forget_old_jobs() -> None:
    outputs = JobOutputs(keep_bytes=100, keep_jobs=2)
    a, b, c = (uuid.UUID(int=n) for n in (1, 2, 3))
    outputs.add(a, 1, stdout_at=0, stdout=b"first try", stderr_at=0, stderr=b"")
    outputs.add(a, 2, stdout_at=0, stdout=b"again", stderr_at=0, stderr=b"e")
    outputs.add(a, 1, stdout_at=9, stdout=b" more", stderr_at=0, stderr=b"")  # stale attempt
    assert outputs.since(a, 0, 0) == ((0, b"again"), (0, b"e"))
    outputs.add(b, 1, stdout_at=0, stdout=b"b", stderr_at=0, stderr=b"")
    outputs.add(c, 1, stdout_at=0, stdout=b"c", stderr_at=0, stderr=b"")
    assert len(outputs) == 2
    assert outputs.since(a, 0, 0) == ((0, b""), (0, b""))
