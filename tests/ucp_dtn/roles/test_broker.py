"""The broker role over real bundle nodes (TCPCLv4 on 127.0.0.1), driven by plain mailboxes that
play the executors, datastores and the client."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio

from bpv7 import parse_eid
from tests.ucp_dtn.agent_support import RunningNode, start_node, wait_until
from ucp_dtn.roles import Incoming, Mailbox, Outgoing, RoleName, role_endpoint
from ucp_dtn.roles.broker import BrokerJournal, BrokerRole, JobRecord
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.ucp import (
    BrokerSync,
    Capabilities,
    DataDelete,
    DataGet,
    DataList,
    DataPut,
    DataReply,
    DataStatus,
    Heartbeat,
    InlineData,
    JobAccepted,
    JobDispatch,
    JobInfo,
    JobResult,
    JobState,
    JobStatus,
    JobSubmission,
    Requirements,
    ResultStatus,
    Role,
    StatusQuery,
    StatusReply,
    UcpMessage,
)

M = TypeVar("M", bound=UcpMessage)

WASM = InlineData(b"\0asm\x01\0\0\0")
GIB = 1 << 30
_ids = itertools.count(1)


def make_job(**fields: Any) -> JobInfo:
    fields.setdefault("job_id", uuid.UUID(int=next(_ids)))
    return JobInfo(wasm=WASM, **fields)


def caps(cores: int = 4, memory: int = 8 * GIB, **extra: Any) -> Capabilities:
    return Capabilities(memory=memory, disk=100 * GIB, cpu_load=0.0, cpu_cores=cores, extra=extra)


# -- actors: plain mailboxes playing the other roles ------------------------------------------


@dataclass
class Actor:
    """A mailbox that keeps everything it receives for the test to look at."""

    mailbox: Mailbox
    inbox: list[Incoming] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def endpoint(self) -> str:
        return str(self.mailbox.endpoint)

    @property
    def node(self) -> str:
        return str(self.mailbox.endpoint.node_id)

    async def collect(self) -> None:
        while True:
            incoming = await self.mailbox.receive()
            await incoming.done()
            self.inbox.append(incoming)
            self.changed.set()
            self.changed = trio.Event()

    async def expect(
        self, kind: type[M], where: Callable[[M], bool] = lambda m: True, timeout: float = 10.0
    ) -> M:
        """The first message of ``kind`` (matching ``where``) not taken yet."""
        with trio.fail_after(timeout):
            while True:
                for index, incoming in enumerate(self.inbox):
                    message = incoming.message
                    if isinstance(message, kind) and where(message):
                        del self.inbox[index]
                        return message
                await self.changed.wait()

    def got(self, kind: type[M]) -> list[M]:
        return [i.message for i in self.inbox if isinstance(i.message, kind)]

    async def send(self, to: str, message: UcpMessage, *, custody: bool = False) -> None:
        await self.mailbox.send(to, message, custody=custody)

    async def heartbeat(self, to: str, **fields: Any) -> None:
        roles = Role.DATASTORE if "ucp/datastore" in self.endpoint else Role.EXECUTOR
        fields.setdefault("roles", roles)
        fields.setdefault("sent_at", trio.current_time())
        fields.setdefault("interval", 5.0)
        if fields["roles"] & Role.EXECUTOR:
            fields.setdefault("capabilities", caps())
            fields.setdefault("max_jobs", 4)
        message = Heartbeat(node=self.node, sequence=next(self.sequence), **fields)
        await self.send(to, message)


async def start_actor(nursery: trio.Nursery, running: RunningNode, role: RoleName) -> Actor:
    actor = Actor(Mailbox(running.node, role_endpoint(running.node.node_id, role)))
    await nursery.start(actor.mailbox.run)
    nursery.start_soon(actor.collect)
    return actor


@dataclass
class RunningBroker:
    broker: BrokerRole
    scope: trio.CancelScope
    stopped: trio.Event

    async def stop(self) -> None:
        self.scope.cancel()
        await self.stopped.wait()


async def start_broker(
    nursery: trio.Nursery, running: RunningNode, settings: RoleSettings, **kwargs: Any
) -> RunningBroker:
    broker = BrokerRole(running.node, settings, **kwargs)
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await broker.run(task_status=task_status)
        finally:
            stopped.set()

    await nursery.start(run)
    return RunningBroker(broker, scope, stopped)


@dataclass
class Net:
    """Broker on ``b``; the client on ``a``; executor and datastore on ``x1`` and ``x2``."""

    b: RunningNode
    broker: BrokerRole
    client: Actor
    x1: Actor
    x2: Actor
    d1: Actor
    d2: Actor

    @property
    def to(self) -> str:
        return str(self.broker.endpoint)

    async def submit(self, job: JobInfo) -> JobAccepted:
        await self.client.send(self.to, JobSubmission(job), custody=True)
        return await self.client.expect(JobAccepted, lambda m: m.job_id == job.job_id)

    async def state(self, job: JobInfo, state: JobStatus) -> JobState:
        return await self.client.expect(
            JobState, lambda m: m.job_id == job.job_id and m.state == state
        )

    async def status(self, **fields: Any) -> StatusReply:
        query = StatusQuery(request_id=self.client.mailbox.next_request_id(), **fields)
        [reply] = await self.client.mailbox.request(self.to, query, timeout_s=10)
        assert isinstance(reply.message, StatusReply)
        return reply.message


async def open_net(nursery: trio.Nursery, **settings: Any) -> Net:
    b = await start_node(nursery, "b")
    others = [await start_node(nursery, name) for name in ("a", "x1", "x2")]
    for running in others:
        await running.node.connect(*b.address)
        running.node.add_route("*", "dtn://b/")
    await wait_until(lambda: len(b.node.peers()) == 3)
    running_broker = await start_broker(nursery, b, RoleSettings(**settings))
    a, x1, x2 = others
    return Net(
        b=b,
        broker=running_broker.broker,
        client=await start_actor(nursery, a, RoleName.CLIENT),
        x1=await start_actor(nursery, x1, RoleName.EXECUTOR),
        x2=await start_actor(nursery, x2, RoleName.EXECUTOR),
        d1=await start_actor(nursery, x1, RoleName.DATASTORE),
        d2=await start_actor(nursery, x2, RoleName.DATASTORE),
    )


def result(
    job: JobInfo, executor: Actor | None, status: ResultStatus = ResultStatus.OK
) -> JobResult:
    return JobResult(
        job_id=job.job_id,
        executor="dtn://b/ucp/executor" if executor is None else executor.endpoint,
        status=status,
        exit_code=0 if status == ResultStatus.OK else 1,
        message="" if status == ResultStatus.OK else "exit status 1",
        stdout_tail=b"hello",
    )


# -- jobs -----------------------------------------------------------------------------------


async def test_capable_executor_runs_the_job_and_the_first_result_wins() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to, capabilities=caps(cores=16))
            await net.x2.heartbeat(net.to, capabilities=caps(cores=2, gpu=True))
            await net.d1.heartbeat(net.to, store_free=GIB)
            await wait_until(lambda: net.broker.statistics().datastores == 1)

            job = make_job(name="gpu", requirements=Requirements(extra={"gpu": True}))
            accepted = await net.submit(job)
            assert accepted.broker == net.to and not accepted.duplicate
            dispatch = await net.x2.expect(JobDispatch)
            assert dispatch.job == job and dispatch.attempt == 1
            assert dispatch.client == net.client.endpoint and dispatch.broker == net.to
            dispatched = await net.state(job, JobStatus.DISPATCHED)
            assert dispatched.executor == net.x2.endpoint
            assert not net.x1.got(JobDispatch)
            # Dispatched at once: no "queued" state went to the client before "dispatched".
            states = [m.state for m in net.client.got(JobState)]
            assert JobStatus.QUEUED not in states, states

            await net.x2.send(net.to, JobState(job.job_id, JobStatus.RUNNING, at=0.0))
            await net.state(job, JobStatus.RUNNING)
            await net.x2.send(net.to, result(job, net.x2), custody=True)
            forwarded = await net.client.expect(JobResult)
            assert forwarded == result(job, net.x2)
            done = await net.state(job, JobStatus.DONE)
            assert done.attempt == 1
            stored = await net.d1.expect(DataPut)
            assert stored.name == f"{job.job_id}/result" and stored.job_id == job.job_id
            assert JobResult.from_cbor(stored.data) == forwarded
            assert stored.reply_to is None  # the datastore answers the broker itself

            # A second result for the same job (another executor, a redeployment) is dropped.
            await net.x1.send(net.to, result(job, net.x1, ResultStatus.TRAP), custody=True)
            await wait_until(lambda: net.broker.statistics().late_results == 1)
            [entry] = (await net.status(job_ids=(job.job_id,))).jobs
            assert entry.state == JobStatus.DONE and entry.result_ref == f"{job.job_id}/result"
            assert entry.executor == net.x2.endpoint and entry.attempts == 1
            assert not net.client.got(JobResult)
            stats = net.broker.statistics()
            assert (stats.submissions, stats.dispatches, stats.results, stats.done) == (1, 1, 1, 1)
            nursery.cancel_scope.cancel()


async def test_job_waits_until_a_capable_executor_appears_and_duplicates_are_acknowledged() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to, capabilities=caps(memory=GIB))
            await wait_until(lambda: net.broker.statistics().executors == 1)
            job = make_job(requirements=Requirements(memory=4 * GIB))
            await net.submit(job)
            [entry] = (await net.status(job_ids=(job.job_id,))).jobs
            assert entry.state == JobStatus.QUEUED
            assert "no executor meets the requirements" in entry.detail
            assert "memory" in entry.detail

            again = await net.submit(job)
            assert again.duplicate
            assert net.broker.statistics().duplicates == 1

            await net.x2.heartbeat(net.to, capabilities=caps(memory=16 * GIB))
            dispatch = await net.x2.expect(JobDispatch)
            assert dispatch.job.job_id == job.job_id
            assert not net.x1.got(JobDispatch)
            assert net.broker.statistics().jobs == 1
            nursery.cancel_scope.cancel()


async def test_a_burst_spreads_over_executors_and_waits_for_free_slots() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery, dispatch_ahead=0)
            await net.x1.heartbeat(net.to, max_jobs=2)
            await net.x2.heartbeat(net.to, max_jobs=2)
            await wait_until(lambda: net.broker.statistics().executors == 2)
            jobs = [make_job(name=f"j{i}") for i in range(5)]
            for job in jobs:
                await net.submit(job)
            await wait_until(lambda: net.broker.statistics().dispatches == 4)
            on_x1 = [m.job.job_id for m in [await net.x1.expect(JobDispatch) for _ in range(2)]]
            on_x2 = [m.job.job_id for m in [await net.x2.expect(JobDispatch) for _ in range(2)]]
            # Alternating: each dispatch counts towards the executor's load at once.
            assert on_x1 == [jobs[0].job_id, jobs[2].job_id]
            assert on_x2 == [jobs[1].job_id, jobs[3].job_id]
            [last] = (await net.status(job_ids=(jobs[4].job_id,))).jobs
            assert last.state == JobStatus.QUEUED
            assert last.detail == "waiting for a free slot: 2 capable executors are busy"

            await net.x2.send(net.to, result(jobs[1], net.x2), custody=True)
            dispatch = await net.x2.expect(JobDispatch)
            assert dispatch.job.job_id == jobs[4].job_id
            nursery.cancel_scope.cancel()


async def test_with_dispatch_ahead_a_busy_executor_gets_one_more_job_to_queue() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery, dispatch_ahead=1)
            await net.x1.heartbeat(net.to, max_jobs=1)
            await net.x2.heartbeat(net.to, max_jobs=1)
            await wait_until(lambda: net.broker.statistics().executors == 2)
            jobs = [make_job(name=f"j{i}") for i in range(5)]
            for job in jobs:
                await net.submit(job)
            await wait_until(lambda: net.broker.statistics().dispatches == 4)
            on_x1 = [m.job.job_id for m in [await net.x1.expect(JobDispatch) for _ in range(2)]]
            on_x2 = [m.job.job_id for m in [await net.x2.expect(JobDispatch) for _ in range(2)]]
            # Free slots first (one each), then one ahead each; the fifth waits.
            assert on_x1 == [jobs[0].job_id, jobs[2].job_id]
            assert on_x2 == [jobs[1].job_id, jobs[3].job_id]
            [last] = (await net.status(job_ids=(jobs[4].job_id,))).jobs
            assert last.state == JobStatus.QUEUED
            assert last.detail == "waiting for a free slot: 2 capable executors are busy"
            nursery.cancel_scope.cancel()


async def test_a_heartbeat_listing_a_started_job_marks_it_running() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to, max_jobs=1)
            await wait_until(lambda: net.broker.statistics().executors == 1)
            job, other = make_job(name="short"), make_job(name="elsewhere")
            await net.submit(job)
            await net.x1.expect(JobDispatch)
            # Only the executor it went to counts, and only for its own job.
            await net.x2.heartbeat(
                net.to, max_jobs=1, running_jobs=(job.job_id,), started=(job.job_id,)
            )
            await net.x1.heartbeat(
                net.to, max_jobs=1, running_jobs=(job.job_id, other.job_id), started=(job.job_id,)
            )
            running = await net.state(job, JobStatus.RUNNING)
            assert running.executor == net.x1.endpoint
            [entry] = (await net.status(job_ids=(job.job_id,))).jobs
            assert entry.state == JobStatus.RUNNING
            nursery.cancel_scope.cancel()


async def test_after_dependencies_wait_release_and_propagate_failure() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to, max_jobs=8)
            await wait_until(lambda: net.broker.statistics().executors == 1)
            first = make_job(name="first")
            second = make_job(name="second", after=(first.job_id,))
            third = make_job(name="third", after=(second.job_id,))
            fourth = make_job(name="fourth", after=(third.job_id, first.job_id))
            stranger = make_job(name="stranger", after=(uuid.UUID(int=999_999),))
            # Submitted out of order: a dependent may arrive before the job it waits for.
            for job in (second, third, fourth, stranger, first):
                await net.submit(job)
            assert (await net.x1.expect(JobDispatch)).job == first
            entries = {e.name: e for e in (await net.status(client=net.client.endpoint)).jobs}
            assert entries["second"].detail == f"waiting for job {first.job_id}"
            assert entries["stranger"].detail.endswith("(not known here yet)")
            assert entries["third"].state == JobStatus.QUEUED

            await net.x1.send(net.to, result(first, net.x1), custody=True)
            assert (await net.x1.expect(JobDispatch)).job == second
            await net.x1.send(net.to, result(second, net.x1, ResultStatus.EXIT), custody=True)
            failed = await net.state(second, JobStatus.FAILED)
            assert failed.detail == "exit status 1"
            rejected = await net.state(third, JobStatus.REJECTED)
            assert rejected.detail == f"job {second.job_id} it runs after failed"
            rejected = await net.state(fourth, JobStatus.REJECTED)
            assert rejected.detail == f"job {third.job_id} it runs after was rejected"
            stats = net.broker.statistics()
            assert (stats.done, stats.failed, stats.rejected, stats.queued) == (1, 1, 2, 1)
            assert not net.x1.got(JobDispatch)
            nursery.cancel_scope.cancel()


# -- data -----------------------------------------------------------------------------------


async def test_data_requests_are_queued_then_relayed_with_reply_to() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            client = net.client
            put = DataPut(client.mailbox.next_request_id(), "survey/a.wav", b"audio", 1.0)
            await client.send(net.to, put, custody=True)
            await wait_until(lambda: net.broker.statistics().data_queued == 1)

            # The first datastore to appear gets it, with reply_to = the client.
            await net.d1.heartbeat(net.to, store_free=GIB)
            relayed = await net.d1.expect(DataPut)
            assert relayed.request_id == put.request_id and relayed.reply_to == client.endpoint
            await net.d1.send(relayed.reply_to, DataReply(relayed.request_id, DataStatus.OK))
            assert (await client.expect(DataReply)).request_id == put.request_id
            await wait_until(lambda: net.broker.statistics().data_queued == 0)

            # A new name goes to the datastore with the most free space...
            await net.d2.heartbeat(net.to, store_free=2 * GIB)
            await wait_until(lambda: net.broker.statistics().datastores == 2)
            other = DataPut(client.mailbox.next_request_id(), "other/b", b"b", 1.0)
            await client.send(net.to, other, custody=True)
            assert (await net.d2.expect(DataPut)).name == "other/b"
            # ... a newer write of a known name where the name is, and a get only there.
            put2 = DataPut(client.mailbox.next_request_id(), "survey/a.wav", b"audio2", 2.0)
            await client.send(net.to, put2, custody=True)
            assert (await net.d1.expect(DataPut)).data == b"audio2"
            get = DataGet(client.mailbox.next_request_id(), "survey")
            await client.send(net.to, get)
            relayed_get = await net.d1.expect(DataGet)
            assert relayed_get.reply_to == client.endpoint and relayed_get.query == "survey"
            # A get for names nobody is known to hold, a listing and a delete go everywhere.
            for request in (
                DataGet(client.mailbox.next_request_id(), "unknown"),
                DataList(client.mailbox.next_request_id(), prefix="survey"),
                DataDelete(client.mailbox.next_request_id(), name="survey"),
            ):
                await client.send(net.to, request)
                for datastore in (net.d1, net.d2):
                    # (A datastore that appears is also asked for its replicated data.)
                    got = await datastore.expect(
                        type(request), lambda m, r=request: m.request_id == r.request_id
                    )
                    assert got.reply_to == client.endpoint
            assert not net.d2.got(DataGet) and not net.d2.got(DataPut)
            # The delete dropped "survey" and its subkeys from the cache.
            await wait_until(lambda: net.broker.statistics().names_cached == 1)
            nursery.cancel_scope.cancel()


# -- status, robustness ------------------------------------------------------------------------


async def test_status_queries_and_malformed_messages() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            await net.x1.heartbeat(net.to, capabilities=caps(cores=8, gpu=False))
            await net.d2.heartbeat(net.to, store_free=5)
            await wait_until(lambda: net.broker.statistics().datastores == 1)
            mine = make_job(name="mine", requirements=Requirements(extra={"gpu": True}))
            await net.submit(mine)
            other = make_job(name="other", requirements=Requirements(extra={"gpu": True}))
            await net.x2.send(net.to, JobSubmission(other), custody=True)
            await wait_until(lambda: net.broker.statistics().jobs == 2)

            reply = await net.status(client=net.client.endpoint, include_nodes=True)
            assert [e.name for e in reply.jobs] == ["mine"]
            assert reply.jobs[0].client == net.client.endpoint
            nodes = {n.node: n for n in reply.nodes}
            assert set(nodes) == {"dtn://b/", "dtn://x1/", "dtn://x2/"}
            assert nodes["dtn://x1/"].capabilities == caps(cores=8, gpu=False)
            assert nodes["dtn://x2/"].roles == Role.DATASTORE
            assert nodes["dtn://b/"].roles == Role.BROKER
            everything = await net.status()
            assert {e.name for e in everything.jobs} == {"mine", "other"}
            unknown = await net.status(job_ids=(uuid.UUID(int=123_456_789),))
            assert unknown.jobs == () and unknown.nodes == ()

            # Garbage, kinds a broker does not take, and messages that make no sense are
            # dropped; the broker keeps serving.
            await net.client.mailbox.node.send(net.to, b"\xa1\x61v\x01 not a message")
            await net.client.send(net.to, JobAccepted(mine.job_id, broker="dtn://b/ucp/broker"))
            await net.client.send(net.to, JobState(mine.job_id, JobStatus.DONE, at=0.0))
            unknown_job = make_job()
            await net.client.send(net.to, JobState(unknown_job.job_id, JobStatus.RUNNING, at=0.0))
            await net.client.send(net.to, BrokerSync(broker=net.to, sequence=1, sent_at=0.0))
            await net.client.send(net.to, result(unknown_job, net.x1))
            await wait_until(lambda: net.broker.statistics().ignored == 4)
            # The result for an unknown job is kept for its client as <job-uuid>/result.
            await wait_until(lambda: net.broker.statistics().orphan_results == 1)
            [entry] = (await net.status(job_ids=(mine.job_id,))).jobs
            assert entry.state == JobStatus.QUEUED
            nursery.cancel_scope.cancel()


async def test_jobs_and_queued_requests_survive_a_broker_restart(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            settings = RoleSettings(workdir=tmp_path / "roles")
            a = await start_node(nursery, "a")
            x1 = await start_node(nursery, "x1")
            client = await start_actor(nursery, a, RoleName.CLIENT)
            executor = await start_actor(nursery, x1, RoleName.EXECUTOR)
            datastore = await start_actor(nursery, x1, RoleName.DATASTORE)
            job = make_job(name="persistent")
            late = make_job(name="late", after=(job.job_id,))
            put = DataPut(7, "kept", b"data", 1.0)

            async def start_b() -> tuple[RunningNode, RunningBroker]:
                b = await start_node(nursery, "b", workdir=tmp_path / "node")
                for running in (a, x1):
                    await running.node.connect(*b.address)
                    running.node.add_route("*", "dtn://b/")
                return b, await start_broker(nursery, b, settings)

            b, broker = await start_b()
            to = str(broker.broker.endpoint)
            await client.send(to, JobSubmission(job), custody=True)
            await client.send(to, JobSubmission(late), custody=True)
            await client.send(to, put, custody=True)
            for _ in range(2):
                await client.expect(JobAccepted)
            await wait_until(lambda: broker.broker.statistics().data_queued == 1)
            await broker.stop()
            await b.stop()

            b, broker = await start_b()
            assert broker.broker.statistics().queued == 2
            assert broker.broker.statistics().data_queued == 1
            await client.send(to, JobSubmission(job), custody=True)
            assert (await client.expect(JobAccepted)).duplicate
            await executor.heartbeat(to)
            assert (await executor.expect(JobDispatch)).job == job
            await datastore.heartbeat(to, store_free=GIB)
            relayed = await datastore.expect(DataPut)
            assert relayed.name == "kept" and relayed.reply_to == client.endpoint

            await executor.send(to, result(job, executor), custody=True)
            assert (await client.expect(JobResult)).job_id == job.job_id
            assert (await executor.expect(JobDispatch)).job == late
            await broker.stop()
            broker = await start_broker(nursery, b, settings)
            stats = broker.broker.statistics()
            assert (stats.jobs, stats.done, stats.dispatched, stats.data_queued) == (2, 1, 1, 0)
            nursery.cancel_scope.cancel()


async def test_a_recorded_but_undelivered_result_is_delivered_after_a_restart(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # The state a crash leaves between recording a result and handing it on.
    job = make_job(name="crashed")
    dependent = make_job(name="dependent", after=(job.job_id,))
    journal = BrokerJournal.open(tmp_path / "broker")
    records = [
        JobRecord(
            submission=JobSubmission(job),
            client="dtn://b/ucp/client",
            sequence=1,
            state=JobStatus.FAILED,
            submitted_at=1.0,
            updated_at=2.0,
            detail="exit status 1",
            attempts=1,
            executor="dtn://b/ucp/executor",
            result=result(job, None, ResultStatus.EXIT),
            result_ref=f"{job.job_id}/result",
        ),
        JobRecord(JobSubmission(dependent), "dtn://b/ucp/client", 2, JobStatus.QUEUED, 1.0, 1.0),
    ]
    journal.put_jobs(records)
    journal.close()

    async with trio.open_nursery() as nursery:
        b = await start_node(nursery, "b", listen=())
        client = await start_actor(nursery, b, RoleName.CLIENT)
        broker = await start_broker(nursery, b, RoleSettings(workdir=tmp_path))
        assert (await client.expect(JobResult)) == records[0].result
        failed = await client.expect(JobState, lambda m: m.job_id == job.job_id)
        assert failed.state == JobStatus.FAILED and failed.detail == "exit status 1"
        rejected = await client.expect(JobState, lambda m: m.job_id == dependent.job_id)
        assert rejected.state == JobStatus.REJECTED
        assert broker.broker.statistics().data_queued == 1  # the result waits for a datastore
        await broker.stop()
        reloaded = BrokerJournal.open(tmp_path / "broker").load()
        assert [r.result_delivered for r in reloaded.jobs] == [True, False]
        assert reloaded.jobs[1].state == JobStatus.REJECTED
        [pending] = reloaded.pending
        assert isinstance(pending.message, DataPut) and pending.custody
        assert pending.message.name == f"{job.job_id}/result"
        nursery.cancel_scope.cancel()


# -- brokers and time ----------------------------------------------------------------------


async def test_brokers_sync_jobs_and_names() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            b1 = await start_node(nursery, "b1")
            b2 = await start_node(nursery, "b2")
            a = await start_node(nursery, "a")
            for running in (b2, a):
                await running.node.connect(*b1.address)
            a.node.add_route("*", "dtn://b1/")
            b2.node.add_route("*", "dtn://b1/")
            await wait_until(lambda: len(b1.node.peers()) == 2)
            fast = 0.05
            settings_one = RoleSettings(brokers=("dtn://b2/",), heartbeat_interval_s=fast)
            settings_two = RoleSettings(brokers=("dtn://b1/",), heartbeat_interval_s=fast)
            one = await start_broker(nursery, b1, settings_one)
            two = await start_broker(nursery, b2, settings_two)
            client = await start_actor(nursery, a, RoleName.CLIENT)
            store_a = await start_actor(nursery, a, RoleName.DATASTORE)
            store_b2 = await start_actor(nursery, b2, RoleName.DATASTORE)
            to1, to2 = str(one.broker.endpoint), str(two.broker.endpoint)

            await store_a.heartbeat(to1, store_free=GIB)
            await store_a.heartbeat(to2, store_free=GIB)
            await store_b2.heartbeat(to2, store_free=10 * GIB)
            job = make_job(name="synced")
            await client.send(to1, JobSubmission(job), custody=True)
            await client.send(to1, DataPut(1, "shared/x", b"x", 1.0), custody=True)
            await store_a.expect(DataPut)
            await wait_until(lambda: two.broker.statistics().foreign_jobs == 1)
            await wait_until(lambda: two.broker.statistics().names_cached == 1)

            query = StatusQuery(client.mailbox.next_request_id(), job_ids=(job.job_id,))
            [reply] = await client.mailbox.request(to2, query, timeout_s=10)
            assert isinstance(reply.message, StatusReply)
            [entry] = reply.message.jobs
            assert entry.name == "synced" and entry.state == JobStatus.QUEUED

            # b2 learned where "shared/x" lives: a get there goes to that datastore only.
            await client.send(to2, DataGet(2, "shared"))
            assert (await store_a.expect(DataGet)).reply_to == client.endpoint
            assert not store_b2.got(DataGet)
            assert one.broker.statistics().syncs_received >= 1

            # A job at b2 that runs after b1's job waits for b1's sync to say it is done.
            executor = await start_actor(nursery, a, RoleName.EXECUTOR)
            follower = make_job(name="follower", after=(job.job_id,))
            await client.send(to2, JobSubmission(follower), custody=True)
            await executor.heartbeat(to2)
            await wait_until(lambda: two.broker.statistics().jobs == 1)
            query = StatusQuery(client.mailbox.next_request_id(), job_ids=(follower.job_id,))
            [reply] = await client.mailbox.request(to2, query, timeout_s=10)
            assert isinstance(reply.message, StatusReply)
            assert reply.message.jobs[0].detail == f"waiting for job {job.job_id}"
            await executor.heartbeat(to1)
            first = await executor.expect(JobDispatch)
            assert first.job == job and first.broker == to1
            await executor.send(to1, result(job, executor), custody=True)
            second = await executor.expect(JobDispatch)
            assert second.job == follower and second.broker == to2
            nursery.cancel_scope.cancel()


async def test_a_silent_executors_job_is_queued_again_and_the_first_result_wins() -> None:
    # The broker's clock is ours to move; short intervals make its timer rounds frequent.
    # (No autojump_clock: the broker's sqlite calls run in threads, and the autojump clock
    # jumps to the next deadline whenever trio waits for one.)
    now = [1000.0]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", listen=())
            settings = RoleSettings(heartbeat_interval_s=0.05, executor_timeout_s=15.0)
            broker = (await start_broker(nursery, b, settings, clock=lambda: now[0])).broker
            to = str(broker.endpoint)
            executor = await start_actor(nursery, b, RoleName.EXECUTOR)
            client = await start_actor(nursery, b, RoleName.CLIENT)
            await executor.heartbeat(to, max_jobs=1)
            await wait_until(lambda: broker.statistics().executors == 1)
            job = make_job(name="held")
            await client.send(to, JobSubmission(job))
            first = await executor.expect(JobDispatch)
            assert first.attempt == 1

            now[0] = 1015.0
            assert broker.statistics().executors == 1
            now[0] = 1015.5
            assert broker.statistics().executors == 0
            # A timer round drops the executor and takes its job back: QUEUED, saying why.
            requeued = await client.expect(
                JobState, lambda m: m.state == JobStatus.QUEUED and m.attempt == 1
            )
            assert requeued.detail == (
                "executor dtn://b/ucp/executor lost during attempt 1: redeploying"
            )
            assert broker.statistics().redeployments == 1
            [entry] = (await status_of(client, to, job)).jobs
            assert entry.state == JobStatus.QUEUED and entry.attempts == 1

            # The executor is back: the job goes out again as attempt 2.
            await executor.heartbeat(to, max_jobs=1)
            second = await executor.expect(JobDispatch)
            assert second.attempt == 2 and second.job == job
            # The first attempt's result arrives first and wins; the second one is dropped.
            await executor.send(to, dataclasses.replace(result(job, None), attempt=1))
            forwarded = await client.expect(JobResult)
            assert forwarded.attempt == 1
            await executor.send(to, dataclasses.replace(result(job, None), attempt=2))
            await wait_until(lambda: broker.statistics().late_results == 1)
            [entry] = (await status_of(client, to, job)).jobs
            assert entry.state == JobStatus.DONE and entry.attempts == 2
            nursery.cancel_scope.cancel()


async def status_of(client: Actor, to: str, job: JobInfo) -> StatusReply:
    query = StatusQuery(client.mailbox.next_request_id(), job_ids=(job.job_id,))
    [reply] = await client.mailbox.request(to, query, timeout_s=10)
    assert isinstance(reply.message, StatusReply)
    return reply.message


async def test_a_round_of_results_costs_one_pass_over_the_queue() -> None:
    # 5 slots, 30 jobs: 25 wait. Five results in one bundle are handled in one round: one
    # pass over the queue dispatches five more (not one pass per result), and the jobs left
    # behind keep saying why they wait although the pass stopped looking once nothing had room.
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery, dispatch_ahead=0)
            await net.x1.heartbeat(net.to, max_jobs=5)
            await wait_until(lambda: net.broker.statistics().executors == 1)
            jobs = [make_job(name=f"j{i}") for i in range(30)]
            to = parse_eid(net.to)
            await net.client.mailbox.send_many(
                [Outgoing(to, JobSubmission(job), custody=True) for job in jobs]
            )
            first = [(await net.x1.expect(JobDispatch)).job.job_id for _ in range(5)]
            assert first == [job.job_id for job in jobs[:5]]
            await wait_until(lambda: net.broker.statistics().submissions == 30)
            passes = net.broker.statistics().scheduling_passes
            bundles = net.x1.mailbox.statistics().bundles_received
            done = [result(job, net.x1) for job in jobs[:5]]
            await net.x1.mailbox.send_many([Outgoing(to, r, custody=True) for r in done])
            then = [(await net.x1.expect(JobDispatch)).job.job_id for _ in range(5)]
            assert then == [job.job_id for job in jobs[5:10]]
            # The pass's five dispatches, each a handler of its own in the round, share one
            # bundle (as one handler, each dispatch and its record took a level: five bundles).
            assert net.x1.mailbox.statistics().bundles_received == bundles + 1
            stats = net.broker.statistics()
            assert stats.results == 5 and stats.dispatches == 10
            assert stats.scheduling_passes == passes + 1
            [waiting] = (await net.status(job_ids=(jobs[-1].job_id,))).jobs
            assert waiting.state == JobStatus.QUEUED
            assert waiting.detail == "waiting for a free slot: the capable executor is busy"
            nursery.cancel_scope.cancel()


async def test_every_waiting_job_is_told_the_current_reason_when_nothing_has_room() -> None:
    # A pass that finds no room anywhere refreshes the other queued jobs' reasons cheaply
    # rather than checking each in full; they must still say what is true now.
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery, dispatch_ahead=0, executor_timeout_s=0.6)
            await net.x1.heartbeat(net.to, max_jobs=1)
            await wait_until(lambda: net.broker.statistics().executors == 1)
            jobs = [make_job(name=f"j{i}") for i in range(4)]
            for job in jobs:
                await net.submit(job)
            await net.x1.expect(JobDispatch)
            busy = "waiting for a free slot: the capable executor is busy"
            entries = (await net.status(job_ids=tuple(j.job_id for j in jobs[1:]))).jobs
            assert [e.detail for e in entries] == [busy] * 3
            # x1 falls silent: its job is queued again and nobody can run anything.
            await wait_until(lambda: net.broker.statistics().executors == 0)
            await wait_until(lambda: net.broker.statistics().queued == 4)
            entries = (await net.status(job_ids=tuple(j.job_id for j in jobs))).jobs
            assert entries[0].detail == "no executor known (attempt 1 lost)"
            assert [e.detail for e in entries[1:]] == ["no executor known"] * 3
            nursery.cancel_scope.cancel()
