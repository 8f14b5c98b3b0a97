"""The datastore role over real bundle nodes on 127.0.0.1: node ``a`` plays client and broker
with plain mailboxes, node ``b`` runs the role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from tests.ucp_dtn.agent_support import RunningNode, StoreClosingAtConfirm, start_node, wait_until
from ucp_dtn.roles import Mailbox, RoleName, role_endpoint
from ucp_dtn.roles.broker import BrokerRole
from ucp_dtn.roles.datastore import DatastoreRole
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.ucp.messages import (
    DataDelete,
    DataFreeSpace,
    DataFreeSpaceReply,
    DataGet,
    DataGetReply,
    DataList,
    DataListReply,
    DataPut,
    DataReply,
    DataStatus,
    Heartbeat,
    Role,
    StatusQuery,
    StatusReply,
    UcpMessage,
)
from ucp_dtn.ucp.names import job_result_name

DATASTORE = "dtn://b/ucp/datastore"
CLIENT = "dtn://a/ucp/client"
JOB = uuid.UUID("6f1c1b9e-8a1d-4c4e-9a51-2b0f3c1d2e4f")


@dataclass
class Mesh:
    a: RunningNode
    b: RunningNode
    client: Mailbox
    broker: Mailbox
    nursery: trio.Nursery

    async def ask(self, message: UcpMessage, *, via: Mailbox | None = None) -> UcpMessage:
        mailbox = via or self.client
        [reply] = await mailbox.request(DATASTORE, message, timeout_s=10)
        return reply.message

    def rid(self) -> int:
        return self.client.next_request_id()

    async def start_role(
        self, **settings: Any
    ) -> tuple[DatastoreRole, Callable[[], Awaitable[None]]]:
        """Run a datastore role on ``b``; returns it and a function that stops it."""
        settings.setdefault("heartbeat_interval_s", 60.0)
        role = DatastoreRole(
            self.b.node,
            RoleSettings(roles=(RoleName.DATASTORE,), brokers=("dtn://a/",), **settings),
        )
        scope = trio.CancelScope()
        stopped = trio.Event()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await role.run(task_status=task_status)
            finally:
                stopped.set()

        async def stop() -> None:
            scope.cancel()
            await stopped.wait()

        await self.nursery.start(run)
        return role, stop


@asynccontextmanager
async def mesh() -> AsyncIterator[Mesh]:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            b = await start_node(nursery, "b")
            await a.node.connect(*b.address)
            await wait_until(lambda: any(p.node_id == "dtn://a/" for p in b.node.peers()))
            client = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.CLIENT))
            broker = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.BROKER))
            await nursery.start(client.run)
            await nursery.start(broker.run)
            yield Mesh(a, b, client, broker, nursery)
            nursery.cancel_scope.cancel()


def put(rid: int, name: str, data: bytes, written_at: float = 1.0, **kw: Any) -> DataPut:
    return DataPut(request_id=rid, name=name, data=data, written_at=written_at, **kw)


async def test_put_get_list_delete_and_free_space_round_trips() -> None:
    async with mesh() as m:
        role, _ = await m.start_role(datastore_quota_bytes=1_000_000)

        reply = await m.ask(put(rid := m.rid(), "survey/a.wav", b"a" * 300))
        assert reply == DataReply(rid, DataStatus.OK, count=1)
        reply = await m.ask(put(rid := m.rid(), "survey/a.wav", b"a" * 300))
        assert reply == DataReply(rid, DataStatus.OK, "already stored", count=0)
        reply = await m.ask(put(rid := m.rid(), "survey/a.wav", b"old", written_at=0.5))
        assert isinstance(reply, DataReply) and reply.status is DataStatus.STALE
        for name in ("survey/b/c", "survey2/x", "survey.txt"):
            assert isinstance(await m.ask(put(m.rid(), name, b"b" * 200)), DataReply)

        # A query selects the name and its subkeys by segment, never survey2 or survey.txt.
        got = await m.ask(DataGet(rid := m.rid(), "survey"))
        assert isinstance(got, DataGetReply) and got.status is DataStatus.OK
        assert [(i.name, i.data) for i in got.items] == [
            ("survey/a.wav", b"a" * 300),
            ("survey/b/c", b"b" * 200),
        ]
        assert got.cursor is None and got.request_id == rid

        # Paged by max-bytes: one datum per page here.
        pages: list[list[str]] = []
        cursor = None
        while True:
            got = await m.ask(DataGet(m.rid(), "survey*", cursor=cursor, max_bytes=250))
            assert isinstance(got, DataGetReply) and got.status is DataStatus.OK
            pages.append([i.name for i in got.items])
            if got.cursor is None:
                break
            cursor = got.cursor
        assert pages == [["survey.txt"], ["survey/a.wav"], ["survey/b/c"], ["survey2/x"]]

        got = await m.ask(DataGet(m.rid(), "nothing/here"))
        assert isinstance(got, DataGetReply) and got.status is DataStatus.NOT_FOUND
        got = await m.ask(DataGet(m.rid(), "survey", cursor="not-ours"))
        assert isinstance(got, DataGetReply) and got.status is DataStatus.INVALID

        listed = await m.ask(DataList(m.rid(), prefix="survey", page_size=1))
        assert isinstance(listed, DataListReply) and listed.status is DataStatus.OK
        [entry] = listed.entries
        assert (entry.name, entry.size, entry.holder) == ("survey/a.wav", 300, DATASTORE)
        listed = await m.ask(DataList(m.rid(), prefix="survey", cursor=listed.cursor))
        assert isinstance(listed, DataListReply)
        assert [e.name for e in listed.entries] == ["survey/b/c"] and listed.cursor is None

        space = await m.ask(DataFreeSpace(rid := m.rid()))
        assert space == DataFreeSpaceReply(
            rid,
            node="dtn://b/",
            free=1_000_000 - 900,
            used=900,
            items=4,
            quota=1_000_000,
        )

        reply = await m.ask(DataDelete(rid := m.rid(), name="survey"))
        assert reply == DataReply(rid, DataStatus.OK, count=2)
        reply = await m.ask(DataDelete(m.rid(), name="survey"))
        assert isinstance(reply, DataReply) and reply.status is DataStatus.NOT_FOUND

        # A job's data go, its result stays.
        for name in (f"{JOB}/in", f"{JOB}/out/log", job_result_name(JOB)):
            await m.ask(put(m.rid(), name, b"j"))
        reply = await m.ask(DataDelete(m.rid(), job_id=JOB))
        assert isinstance(reply, DataReply) and reply.count == 2
        listed = await m.ask(DataList(m.rid(), job_id=JOB))
        assert isinstance(listed, DataListReply)
        assert [e.name for e in listed.entries] == [job_result_name(JOB)]
        assert listed.entries[0].job_id == JOB

        # Not a data request: dropped, and the role goes on.
        await m.client.send(DATASTORE, StatusQuery(m.rid()))
        await wait_until(lambda: role.statistics().dropped == 1)
        stats = role.statistics()
        assert (stats.puts, stats.gets, stats.deletes, stats.free_space_queries) == (9, 7, 3, 1)
        assert (stats.invalid, stats.no_space, stats.send_failures) == (1, 0, 0)
        assert stats.store is not None and stats.store.items == 3


async def test_reply_to_is_honoured_and_names_the_writer() -> None:
    async with mesh() as m:
        await m.start_role()
        # The broker relays a client's put: the answer goes straight to the client.
        rid = m.rid()
        relayed = put(rid, "shared/k", b"from-client", written_at=5.0, reply_to=CLIENT)
        await m.broker.send(DATASTORE, relayed, custody=True)
        with trio.fail_after(10):
            incoming = await m.client.receive()
        assert incoming.message == DataReply(rid, DataStatus.OK, count=1)
        assert str(incoming.source) == DATASTORE
        # The same time from the broker itself: the writer breaks the tie, and
        # "dtn://a/ucp/broker" < "dtn://a/ucp/client", so the client's write stays.
        reply = await m.ask(put(m.rid(), "shared/k", b"from-broker", written_at=5.0), via=m.broker)
        assert isinstance(reply, DataReply) and reply.status is DataStatus.STALE

        await m.broker.send(DATASTORE, DataGet(rid := m.rid(), "shared", reply_to=CLIENT))
        with trio.fail_after(10):
            incoming = await m.client.receive()
        assert isinstance(incoming.message, DataGetReply)
        assert incoming.message.request_id == rid
        assert [i.data for i in incoming.message.items] == [b"from-client"]


async def test_an_exclusive_put_of_a_taken_name_is_refused_but_never_a_replica_copy() -> None:
    other = uuid.UUID("0d7c2f3a-5b6e-4f70-8a91-b2c3d4e5f607")
    async with mesh() as m:
        await m.start_role()
        reply = await m.ask(put(m.rid(), "runs/out", b"one", 5.0, job_id=JOB, exclusive=True))
        assert isinstance(reply, DataReply) and reply.status is DataStatus.OK
        # Another job's named result: taken (REC's rule); what is stored stays.
        rid = m.rid()
        reply = await m.ask(put(rid, "runs/out", b"two", 6.0, job_id=other, exclusive=True))
        assert reply == DataReply(rid, DataStatus.TAKEN, "name 'runs/out' already taken")
        # The same job's write as a replica copy from another datastore (it names its writer):
        # accepted there, so never refused here, whatever it says; the newer version wins.
        copy = put(
            m.rid(),
            "runs/out",
            b"two",
            6.0,
            job_id=other,
            exclusive=True,
            writer="dtn://c/ucp/executor",
            replicas=2,
        )
        reply = await m.ask(copy, via=m.broker)
        assert isinstance(reply, DataReply) and reply.status is DataStatus.OK
        reply = await m.ask(DataGet(m.rid(), "runs/out"))
        assert isinstance(reply, DataGetReply) and [i.data for i in reply.items] == [b"two"]


async def test_heartbeats_reach_the_brokers_with_free_space() -> None:
    async with mesh() as m:
        await m.start_role(heartbeat_interval_s=0.2, datastore_quota_bytes=10_000)

        async def next_heartbeat() -> Heartbeat:
            with trio.fail_after(10):
                while True:
                    incoming = await m.broker.receive()
                    await incoming.done()
                    if isinstance(incoming.message, Heartbeat):
                        return incoming.message

        first = await next_heartbeat()
        assert first.node == "dtn://b/"
        assert first.roles == Role.DATASTORE  # only its own role: an executor speaks for itself
        assert first.broker == "dtn://a/ucp/broker"
        assert (first.store_free, first.store_used) == (10_000, 0)
        assert first.interval == 0.2 and first.capabilities is not None
        await m.ask(put(m.rid(), "x", b"x" * 1000))
        later = await next_heartbeat()
        while later.store_used == 0:
            later = await next_heartbeat()
        assert later.sequence > first.sequence and later.sent_at >= first.sent_at
        assert (later.store_free, later.store_used) == (9_000, 1000)


async def test_capability_overrides_reach_a_broker_in_the_heartbeats() -> None:
    """``--capability`` (``RoleSettings.capability_overrides``) replaces what the datastore's
    node measures, and a real broker on another node lists what it announced."""
    memory = 3 * 2**30 + 12_345  # no machine measures exactly this
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            b = await start_node(nursery, "b")
            await a.node.connect(*b.address)
            await wait_until(lambda: any(p.node_id == "dtn://a/" for p in b.node.peers()))
            broker = BrokerRole(a.node, RoleSettings(roles=(RoleName.BROKER,)))
            await nursery.start(broker.run)
            client = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.CLIENT))
            await nursery.start(client.run)
            settings = RoleSettings(
                roles=(RoleName.DATASTORE,),
                brokers=("dtn://a/",),
                heartbeat_interval_s=0.2,
                capability_overrides={"memory": memory, "site": "x"},
            )
            await nursery.start(DatastoreRole(b.node, settings).run)

            while True:
                query = StatusQuery(client.next_request_id(), include_nodes=True)
                [reply] = await client.request("dtn://a/ucp/broker", query, timeout_s=10)
                assert isinstance(reply.message, StatusReply)
                entries = [n for n in reply.message.nodes if n.node == "dtn://b/"]
                if entries:
                    break
                await trio.sleep(0.1)
            [entry] = entries
            assert entry.roles == Role.DATASTORE
            assert entry.capabilities is not None
            assert entry.capabilities.memory == memory
            assert entry.capabilities.extra == {"site": "x"}
            assert entry.capabilities.cpu_cores >= 1  # measured: not overridden
            assert broker.statistics().datastores == 1
            nursery.cancel_scope.cancel()


async def test_no_brokers_no_heartbeats() -> None:
    async with mesh() as m:
        role = DatastoreRole(m.b.node, RoleSettings(roles=(RoleName.DATASTORE,)))
        await m.nursery.start(role.run)
        assert await role.send_heartbeat() == 0
        assert role.statistics().heartbeats_sent == 0


async def test_no_space_and_data_kept_across_restart(tmp_path: Path) -> None:
    async with mesh() as m:
        role, stop = await m.start_role(workdir=tmp_path, datastore_quota_bytes=1000)
        reply = await m.ask(put(m.rid(), "too/big", b"x" * 2000))
        assert isinstance(reply, DataReply) and reply.status is DataStatus.NO_SPACE
        assert "quota of 1000 bytes full" in reply.detail
        large = bytes(range(256)) * 3  # stored in a file
        reply = await m.ask(put(m.rid(), f"{JOB}/input", large, job_id=JOB))
        assert isinstance(reply, DataReply) and reply.status is DataStatus.OK
        assert role.statistics().no_space == 1

        await stop()
        stats = role.statistics().store
        assert stats is not None and (stats.items, stats.refused) == (1, 1)
        assert (tmp_path / "datastore" / "data.sqlite3").exists()

        again, _ = await m.start_role(workdir=tmp_path, datastore_quota_bytes=1000)
        got = await m.ask(DataGet(m.rid(), str(JOB)))
        assert isinstance(got, DataGetReply) and [i.data for i in got.items] == [large]
        assert got.items[0].job_id == JOB
        space = await m.ask(DataFreeSpace(m.rid()))
        assert isinstance(space, DataFreeSpaceReply)
        assert (space.used, space.free, space.items) == (768, 232, 1)
        assert again.statistics().store is not None


async def test_a_datastore_whose_node_store_closes_under_it_stops_quietly() -> None:
    """What CI met once: a request confirmed while the node's store was being closed raised
    StoreClosedError out of the role. The role now takes it as its node's stop and ends."""
    store = StoreClosingAtConfirm()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            b = await start_node(nursery, "b", store=store)
            await a.node.connect(*b.address)
            await wait_until(lambda: any(p.node_id == "dtn://a/" for p in b.node.peers()))
            client = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.CLIENT))
            await nursery.start(client.run)
            role = DatastoreRole(
                b.node,
                RoleSettings(
                    roles=(RoleName.DATASTORE,), brokers=("dtn://a/",), heartbeat_interval_s=60.0
                ),
            )
            ended = trio.Event()

            async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                await role.run(task_status=task_status)
                ended.set()

            await nursery.start(run)
            store.closing = True
            [reply] = await client.request(
                DATASTORE, put(client.next_request_id(), "n", b"x"), timeout_s=10
            )
            assert isinstance(reply.message, DataReply) and reply.message.status is DataStatus.OK
            await ended.wait()
            nursery.cancel_scope.cancel()
