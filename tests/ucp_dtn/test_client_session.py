"""The client library against an in-process hub node running the real broker, executor and
datastore roles: submit, follow, collect, named data, and what happens while no broker is
reachable."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from tests.ucp_dtn.agent_support import RunningNode, start_node
from ucp_dtn.client import (
    BrokerUnreachable,
    ClientSession,
    ClientSettings,
    ClientUsageError,
    CollectState,
    HomeError,
    JobEvent,
    NoReply,
    ReplicaEntry,
    SubmitOutcome,
    collect_results,
    delete_data,
    fetch_result,
    get_data,
    list_data,
    put_data,
    replica_listing,
    submit_plan,
    wait_for_jobs,
)
from ucp_dtn.roles import RoleName
from ucp_dtn.roles.runner import run_roles
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.ucp import (
    DataGet,
    DataGetReply,
    JobAccepted,
    JobResult,
    JobStatus,
    ResultStatus,
    StatusQuery,
    load_plan,
)

from .runtime.wat import wasm

LIMIT = 60.0
"""Longest any test here may take (worker processes start slowly on a busy machine)."""


@asynccontextmanager
async def hub(
    nursery: trio.Nursery, roles: tuple[RoleName, ...], port: int = 0
) -> AsyncIterator[RunningNode]:
    """Node ``dtn://hub/`` with ``roles``, in memory."""
    node = await start_node(nursery, "hub", listen=(("127.0.0.1", port),), roles=roles)
    settings = RoleSettings(roles=roles, heartbeat_interval_s=0.2, max_jobs=2)
    async with trio.open_nursery() as inner:
        await inner.start(run_roles, node.node, settings)
        yield node
        inner.cancel_scope.cancel()
    await node.stop()


def settings_for(home: Path, node: RunningNode | None, **fields: object) -> ClientSettings:
    via = () if node is None else (node.address,)
    fields.setdefault("wait_s", 5.0)
    return ClientSettings(home=home, via=via, **fields)  # type: ignore[arg-type]


def write_plan(tmp_path: Path, text: str) -> Path:
    (tmp_path / "hello.wasm").write_bytes(wasm("hello"))
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    return plan


async def test_submit_follow_and_collect_a_job(tmp_path: Path) -> None:
    plan = load_plan(
        write_plan(tmp_path, '[jobs.greet]\nwasm = "hello.wasm"\n[data]\n"x/y" = { text = "z" }\n')
    )
    roles = (RoleName.BROKER, RoleName.EXECUTOR, RoleName.DATASTORE)
    events: list[JobEvent] = []
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery, hub(nursery, roles) as node:
            async with ClientSession.open(settings_for(tmp_path / "home", node)) as session:
                session.watch(events.append)
                assert session.endpoint.node_id == session.node.node_id
                report = await submit_plan(session, plan)
                assert report.outcome is SubmitOutcome.ACCEPTED
                assert report.broker == "dtn://hub/ucp/broker"
                assert (report.uploads, report.uploads_confirmed) == (1, 1)
                (job,) = report.jobs
                assert job.accepted and job.name == "greet"
                (entry,) = await wait_for_jobs(session, [job.job_id], timeout_s=LIMIT)
                assert entry.settled and entry.succeeded
                (collected,) = await collect_results(session, [entry], tmp_path / "out")
                assert collected.state is CollectState.DONE
                assert collected.directory == tmp_path / "out" / "greet"
                assert (tmp_path / "out" / "greet" / "stdout").read_bytes() == b"hello, world\n"
                # The broker also stored the result: it can be fetched again.
                again = await fetch_result(session, job.job_id)
                assert again is not None and again.result == entry.result
                reply = await session.status(include_nodes=True)
                assert [j.job_id for j in reply.jobs] == [job.job_id]
                assert {n.node for n in reply.nodes} == {"dtn://hub/"}
            nursery.cancel_scope.cancel()
    # Bundles need not arrive in the order they were sent: the acceptance and the dispatched
    # state leave the broker together, and either may come first.
    assert any(isinstance(e.message, JobAccepted) for e in events)
    # Dispatched at once (no "queued" state), then the result; a job this short reports no
    # "running" of its own (the executor's heartbeats list what started).
    assert any(e.entry.state == JobStatus.DISPATCHED for e in events)
    assert any(isinstance(e.message, JobResult) for e in events)


async def test_named_data_put_get_list_delete(tmp_path: Path) -> None:
    roles = (RoleName.BROKER, RoleName.DATASTORE)
    job = uuid.uuid4()
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery, hub(nursery, roles) as node:
            async with ClientSession.open(settings_for(tmp_path / "home", node)) as session:
                for index in range(3):
                    outcome = await put_data(session, f"docs/{index}", b"d" * index, job_id=job)
                    assert outcome.stored and outcome.size == index
                await put_data(session, "docs", b"parent")
                await put_data(session, "docs2", b"not a subkey")
                items = await get_data(session, "docs")
                assert [(i.name, i.data) for i in items] == [
                    ("docs", b"parent"),
                    ("docs/0", b""),
                    ("docs/1", b"d"),
                    ("docs/2", b"dd"),
                ]
                assert [i.name for i in await get_data(session, "docs*")][-1] == "docs2"
                assert await get_data(session, "nothing/here") == []
                first = await list_data(session, "docs", page_size=3)
                assert len(first.entries) == 3 and first.next_page is not None
                rest = await list_data(session, "docs", page_size=3, page=first.next_page)
                assert rest.next_page is None
                names = [e.name for e in (*first.entries, *rest.entries)]
                assert names == ["docs", "docs/0", "docs/1", "docs/2"]
                everything = await list_data(session, job_id=job, page_size=1, all_pages=True)
                assert [e.name for e in everything.entries] == ["docs/0", "docs/1", "docs/2"]
                assert {e.holder for e in everything.entries} == {"dtn://hub/ucp/datastore"}
                assert await delete_data(session, job_id=job) == 3
                assert await delete_data(session, "docs*") == 1  # docs2: a pattern is longer
                assert await delete_data(session, "docs") == 1
                assert (await list_data(session)).entries == ()
                with pytest.raises(ClientUsageError, match="cannot store data under a pattern"):
                    await put_data(session, "docs/*", b"")
                with pytest.raises(ClientUsageError, match="not both or neither"):
                    await delete_data(session)
            nursery.cancel_scope.cancel()


async def test_without_a_reachable_broker_messages_wait_for_the_next_session(
    tmp_path: Path,
) -> None:
    plan = load_plan(write_plan(tmp_path, '[jobs.later]\nwasm = "hello.wasm"\n'))
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    offline = ClientSettings(home=home, via=(("127.0.0.1", port),), wait_s=0.2)
    with trio.fail_after(LIMIT):
        async with ClientSession.open(offline) as session:
            report = await submit_plan(session, plan)
            assert report.outcome is SubmitOutcome.QUEUED and report.broker is None
            assert len(await session.journal.outbox()) == 1
            put = await put_data(session, "note", b"queued too")
            assert not put.stored and "outbox" in put.detail
            with pytest.raises(BrokerUnreachable, match=r"no broker reachable within 0\.2 s"):
                await get_data(session, "note")
        roles = (RoleName.BROKER, RoleName.EXECUTOR, RoleName.DATASTORE)
        async with trio.open_nursery() as nursery, hub(nursery, roles, port) as node:
            async with ClientSession.open(settings_for(home, node)) as session:
                assert await session.find_broker() is not None
                assert await session.journal.outbox() == []
                (entry,) = await wait_for_jobs(session, [report.jobs[0].job_id], timeout_s=LIMIT)
                assert entry.succeeded
                assert [i.data for i in await get_data(session, "note")] == [b"queued too"]
            nursery.cancel_scope.cancel()


async def test_sessions_need_a_way_to_a_broker_and_a_free_home(tmp_path: Path) -> None:
    with pytest.raises(ClientUsageError, match="no way to reach a broker"):
        async with ClientSession.open(ClientSettings(home=tmp_path)):
            pass
    settings = ClientSettings(home=tmp_path, via=(("127.0.0.1", 1),), wait_s=0.0)
    with trio.fail_after(LIMIT):
        async with ClientSession.open(settings) as session:
            with pytest.raises(HomeError, match="another program is using the client home"):
                async with ClientSession.open(
                    ClientSettings(home=tmp_path, via=(("127.0.0.1", 1),), lock_timeout_s=0.0)
                ):
                    pass
            assert await session.find_broker() is None
            with pytest.raises(NoReply, match="no answer from dtn://nowhere/ucp/broker"):
                query = StatusQuery(request_id=session.new_request_id())
                await session.request(query, destination="dtn://nowhere/ucp/broker", timeout_s=0.1)


async def test_replicated_puts_listed_where_they_live_and_deleted_everywhere(
    tmp_path: Path,
) -> None:
    roles = (RoleName.BROKER, RoleName.DATASTORE)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery, hub(nursery, roles) as node:
            for name in ("d2", "d3"):
                store = await start_node(nursery, name, roles=("datastore",))
                await store.node.connect(*node.address)
                await nursery.start(
                    run_roles,
                    store.node,
                    RoleSettings(roles=(RoleName.DATASTORE,), heartbeat_interval_s=0.2),
                )
            async with ClientSession.open(settings_for(tmp_path / "home", node)) as session:
                while len(await session.datastores()) < 3:
                    await trio.sleep(0.1)
                outcome = await put_data(session, "survey/a", b"audio", replicas=2)
                assert outcome.stored and outcome.replicas == 2 and outcome.holder is not None
                # Two writes of one name in a row: every replica ends with the later one.
                await put_data(session, "gauge", b"first", replicas=3)
                await put_data(session, "gauge", b"second", replicas=3)
                await put_data(session, "plain", b"one copy")

                async def settled() -> dict[str, ReplicaEntry]:
                    entries, _ = await replica_listing(session)
                    return {e.name: e for e in entries}

                listing: dict[str, ReplicaEntry] = {}
                with trio.move_on_after(30):
                    while True:
                        listing = await settled()
                        if len(listing) == 3 and all(
                            e.meets_factor and not e.stale for e in listing.values()
                        ):
                            break
                        await trio.sleep(0.2)
                assert len(listing) == 3, listing
                assert all(e.meets_factor and not e.stale for e in listing.values()), listing
                survey, gauge, plain = listing["survey/a"], listing["gauge"], listing["plain"]
                assert survey.replicas == 2 and len(survey.holders) == 2
                assert outcome.holder in survey.holders
                assert len(gauge.holders) == 3 and gauge.size == len(b"second")
                assert plain.replicas == 1 and len(plain.holders) == 1
                for holder in gauge.holders:
                    [reply] = await session.request(
                        DataGet(session.new_request_id(), "gauge"), destination=holder
                    )
                    assert isinstance(reply.message, DataGetReply)
                    assert reply.message.items[0].data == b"second"
                # A delete reaches every replica.
                assert await delete_data(session, "survey") == 2
                assert "survey/a" not in await settled()
            nursery.cancel_scope.cancel()


async def test_waiting_settles_jobs_from_what_it_hears_without_rereading_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ClientSettings(home=tmp_path / "home", via=(("127.0.0.1", 1),), wait_s=0.0)
    ids = [uuid.UUID(int=n + 1) for n in range(3)]
    with trio.fail_after(LIMIT):
        async with ClientSession.open(settings) as session:
            journal = session.journal
            await journal.add_jobs("p.toml", [(f"j{n}", i) for n, i in enumerate(ids)], broker=None)
            reads: list[int] = []
            read_many = journal.get_many

            async def counted(job_ids: list[uuid.UUID]) -> dict[uuid.UUID, object]:
                reads.append(len(job_ids))
                return await read_many(job_ids)  # type: ignore[return-value]

            monkeypatch.setattr(journal, "get_many", counted)
            waited: list[object] = []
            async with trio.open_nursery() as nursery:

                async def wait() -> None:
                    waited.extend(await wait_for_jobs(session, ids, timeout_s=LIMIT))

                nursery.start_soon(wait)
                for job_id in ids:
                    await trio.sleep(0.01)
                    await session.note_result(JobResult(job_id, "dtn://e/", ResultStatus.OK))
            assert [getattr(entry, "settled", False) for entry in waited] == [True] * 3
            # Read at the start and once at the end: the three results came as events.
            assert reads == [3, 3]
