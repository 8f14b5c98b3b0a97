"""Two brokers over real bundle nodes: a job still queued at a broker that is lost is taken over
by the other — inline data included — dispatched once, and its client told; when the lost broker
comes back it holds its queued jobs until the other's sync, then drops the one taken over."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.ucp_dtn.agent_support import RunningNode, start_node, wait_until
from tests.ucp_dtn.roles.test_broker import (
    caps,
    make_job,
    result,
    start_actor,
    start_broker,
)
from ucp_dtn.roles import RoleName
from ucp_dtn.roles.broker import BrokerJournal
from ucp_dtn.roles.broker.job_records import JobRecord
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.ucp import (
    BrokerSync,
    JobAccepted,
    JobDispatch,
    JobResult,
    JobState,
    JobStatus,
    JobSubmission,
    Requirements,
)

FAST = {"heartbeat_interval_s": 0.2, "broker_timeout_s": 1.0, "executor_timeout_s": 3.0}
"""Syncs every 0.6 s; a broker gone for 1 s has its jobs taken over."""


async def broker_node(nursery: trio.Nursery, name: str, hub: RunningNode) -> RunningNode:
    running = await start_node(nursery, name, roles=("broker",), route_advert_interval_s=0.3)
    await running.node.connect(*hub.address)
    return running


async def test_a_queued_job_of_a_lost_broker_runs_once_through_the_other(
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            hub = await start_node(nursery, "hub", route_advert_interval_s=0.3)
            b = await broker_node(nursery, "b", hub)
            broker_b = await start_broker(nursery, b, RoleSettings(**FAST))
            a = await broker_node(nursery, "a", hub)
            broker_a = await start_broker(nursery, a, RoleSettings(workdir=tmp_path / "a", **FAST))
            client_node = await start_node(nursery, "c", route_advert_interval_s=0.3)
            await client_node.node.connect(*hub.address)
            executor_node = await start_node(nursery, "x", route_advert_interval_s=0.3)
            await executor_node.node.connect(*hub.address)
            client = await start_actor(nursery, client_node, RoleName.CLIENT)
            executor = await start_actor(nursery, executor_node, RoleName.EXECUTOR)
            to_a, to_b = str(broker_a.broker.endpoint), str(broker_b.broker.endpoint)

            # Nobody can run the job yet: it waits at a, which syncs it, inline data too, to b.
            job = make_job(name="waits", requirements=Requirements(extra={"gpu": True}))
            await client.send(to_a, JobSubmission(job, {"in.txt": b"inline"}), custody=True)
            accepted = await client.expect(JobAccepted)
            assert accepted.broker == to_a
            await wait_until(lambda: broker_b.broker.statistics().foreign_jobs == 1, timeout=10)

            # a is lost (its node with it). After the broker timeout b takes the job over and
            # tells the client; an executor that can run it appears and gets it, whole.
            await broker_a.stop()
            await a.stop()
            taken = await client.expect(JobAccepted, lambda m: m.broker == to_b, timeout=15)
            assert taken.job_id == job.job_id
            await executor.heartbeat(to_b, capabilities=caps(gpu=True))
            dispatch = await executor.expect(JobDispatch, timeout=10)
            assert dispatch.broker == to_b and dispatch.job == job
            assert dict(dispatch.inline_data) == {"in.txt": b"inline"}
            await executor.send(to_b, result(job, executor), custody=True)
            await client.expect(JobResult)
            await client.expect(
                JobState, lambda m: m.job_id == job.job_id and m.state == JobStatus.DONE
            )
            assert broker_b.broker.statistics().takeovers == 1

            # a comes back with its journal (the job still queued there). It holds the job
            # until b's sync says b has it, then drops it; the executor it hears from never
            # gets the job a second time.
            a = await broker_node(nursery, "a", hub)
            broker_a = await start_broker(nursery, a, RoleSettings(workdir=tmp_path / "a", **FAST))
            await executor.heartbeat(to_a, capabilities=caps(gpu=True))
            await wait_until(lambda: broker_a.broker.statistics().jobs == 0, timeout=10)
            await executor.heartbeat(to_a, capabilities=caps(gpu=True))
            await trio.sleep(1.0)
            assert len(executor.got(JobDispatch)) == 0  # the one dispatch was taken already
            assert broker_a.broker.statistics().dispatches == 0
            await broker_a.stop()
            journal = BrokerJournal.open(tmp_path / "a" / "broker")
            try:
                assert journal.load().jobs == ()
                assert journal.load().brokers == (to_b,)
            finally:
                journal.close()
            nursery.cancel_scope.cancel()


async def test_a_job_its_client_moved_here_stays_here_when_its_first_broker_comes_back() -> None:
    # Broker a accepted two jobs and was lost before its first sync; their client sent them
    # again to b, one marked as moved from a. Then a comes back with both still queued, and
    # its sync lists them: two owners for each. a sorts before b, so b would hand both back —
    # but the moved one b keeps, as a job it took over from a.
    lost = "dtn://a/ucp/broker"
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", listen=())
            broker = (await start_broker(nursery, b, RoleSettings(**FAST))).broker
            client = await start_actor(nursery, b, RoleName.CLIENT)
            to = str(broker.endpoint)
            waits = Requirements(extra={"gpu": True})  # no executor: both stay queued
            moved = make_job(name="moved", requirements=waits)
            plain = make_job(name="plain", requirements=waits)
            await client.send(to, JobSubmission(moved, {"in.txt": b"x"}, moved_from=lost))
            await client.send(to, JobSubmission(plain))
            for job in (moved, plain):
                await client.expect(JobAccepted, lambda m, job=job: m.job_id == job.job_id)
            assert broker.statistics().queued == 2

            at_a = [
                JobRecord(JobSubmission(job), client.endpoint, n, JobStatus.QUEUED, 1.0, 1.0)
                for n, job in enumerate((moved, plain), 1)
            ]
            sync = BrokerSync(
                broker=lost,
                sequence=1,
                sent_at=2.0,
                full=True,
                jobs=tuple(record.synced() for record in at_a),
            )
            await client.send(to, sync)
            await wait_until(lambda: broker.statistics().foreign_jobs == 1)
            _, records = broker.jobs_changed_since(0)
            assert [(r.job.name, r.taken_from) for r in records] == [("moved", lost)]
            assert broker.statistics().jobs == 1
            nursery.cancel_scope.cancel()
