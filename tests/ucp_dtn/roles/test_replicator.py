"""The datastore's replica copies: paced per link (rate and queue), kept across a wait for a
route, dropped when the datum is gone or the target unreachable too long; and, over real bundle
nodes, a replicated put reported to the broker, a copy that keeps its version and factor, and
the node's default factor by name."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from bpv7 import EndpointID, parse_eid
from tests.ucp_dtn.agent_support import start_node, wait_until
from tests.ucp_dtn.roles.test_datastore_role import mesh, put
from ucp_dtn.roles import RoleName
from ucp_dtn.roles.datastore import DatastoreRole, Datum, DatumInfo, Replicator
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.ucp import (
    DataGet,
    DataGetReply,
    DataHeld,
    DataPut,
    DataReplicate,
    DataReply,
    DataStatus,
    UcpMessage,
    content_digest,
)

WRITER = "dtn://a/ucp/client"
HOP = parse_eid("dtn://relay/")
TARGET = "dtn://c/ucp/datastore"


@dataclass
class FakeNode:
    """What the replicator asks of a bundle node: the next hop to a target and its backlog."""

    hop: EndpointID | None = HOP
    backlog: int = 0

    def forwarding_backlog(self, destination: str) -> tuple[EndpointID | None, int]:
        return self.hop, self.backlog


@dataclass
class FakeMailbox:
    """Records what is sent, and when (trio's clock)."""

    endpoint: EndpointID = field(default_factory=lambda: parse_eid("dtn://b/ucp/datastore"))
    sent: list[tuple[float, str, UcpMessage]] = field(default_factory=list)
    _ids: int = 0

    def next_request_id(self) -> int:
        self._ids += 1
        return self._ids

    async def send(self, destination: str, message: UcpMessage, **_: object) -> None:
        self.sent.append((trio.current_time(), destination, message))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStore:
    """The store calls the replicator makes, without worker threads (trio's autojump clock
    would jump while a thread works): data and the queue of copies in dictionaries."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.data: dict[str, Datum] = {}
        self.copies: dict[tuple[str, str], float] = {}

    def put(self, name: str, data: bytes, *, replicas: int = 1) -> None:
        info = DatumInfo(name, len(data), 5.0, WRITER, None, 0.0, content_digest(data), replicas)
        self.data[name] = Datum(info, data)

    def queue(self, name: str, target: str = TARGET) -> None:
        self.copies.setdefault((name, target), self.clock())

    async def queued_copies(self, limit: int = 1000) -> list[tuple[str, str, float]]:
        ordered = sorted(self.copies.items(), key=lambda item: (item[1], item[0]))
        return [(name, target, at) for (name, target), at in ordered[:limit]]

    async def datum(self, name: str) -> Datum | None:
        return self.data.get(name)

    async def private_among(self, names: list[str]) -> set[str]:
        return set()

    async def remove_copy(self, name: str, target: str) -> None:
        self.copies.pop((name, target), None)


def replicator(
    node: FakeNode, *, rate: int = 1000, timeout: float = 60.0
) -> tuple[Replicator, FakeStore, FakeMailbox, Clock]:
    clock = Clock()
    store = FakeStore(clock)
    mailbox = FakeMailbox()
    settings = RoleSettings(replication_rate=rate, replica_timeout_s=timeout)
    rep = Replicator(node, store, mailbox, settings, clock=clock)  # type: ignore[arg-type]
    return rep, store, mailbox, clock


async def test_copies_on_one_link_are_paced_to_its_rate(autojump_clock: trio.abc.Clock) -> None:
    node = FakeNode()
    rep, store, mailbox, _ = replicator(node, rate=1000)
    async with trio.open_nursery() as nursery:
        for name in ("a", "b", "c"):
            store.put(name, b"x" * 800, replicas=2)
            store.queue(name)
        start = trio.current_time()
        nursery.start_soon(rep.run)
        rep.wake()
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    times = [at - start for at, _, _ in mailbox.sent]
    # 800 bytes + 200 of overhead at 1000 B/s: one copy a second.
    assert [round(t, 3) for t in times] == [0.0, 1.0, 2.0]
    copies = [m for _, _, m in mailbox.sent]
    assert all(isinstance(m, DataPut) for m in copies)
    first = copies[0]
    assert isinstance(first, DataPut)
    assert (first.writer, first.written_at, first.replicas) == (WRITER, 5.0, 2)
    assert first.reply_to == "dtn://b/ucp/datastore"
    assert store.copies == {}
    assert rep.statistics().sent == 3 and rep.statistics().bytes_sent == 2400


async def test_a_copy_waits_while_anything_else_waits_for_its_link(
    autojump_clock: trio.abc.Clock,
) -> None:
    node = FakeNode(backlog=3)
    rep, store, mailbox, _ = replicator(node, rate=0)
    async with trio.open_nursery() as nursery:
        store.put("a", b"x")
        store.queue("a")
        nursery.start_soon(rep.run)
        rep.wake()
        await trio.sleep(30)
        assert mailbox.sent == []  # job and result bundles first
        node.backlog = 0
        await trio.sleep(1)
        assert [destination for _, destination, _ in mailbox.sent] == [TARGET]
        nursery.cancel_scope.cancel()


async def test_a_copy_without_a_route_waits_then_is_dropped_after_the_replica_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    node = FakeNode(hop=None)
    rep, store, mailbox, clock = replicator(node, timeout=60.0)
    store.put("a", b"x")
    store.queue("a")
    await rep.send_ready()
    assert len(store.copies) == 1  # waits for a route
    node.hop = HOP
    clock.now += 30
    await rep.send_ready()
    assert len(mailbox.sent) == 1  # the route came back in time

    store.queue("a", "dtn://d/ucp/datastore")
    node.hop = None
    clock.now += 61
    await rep.send_ready()
    assert store.copies == {}
    assert rep.statistics().dropped == 1


async def test_a_copy_of_a_datum_deleted_meanwhile_is_dropped() -> None:
    rep, store, mailbox, _ = replicator(FakeNode())
    store.queue("a")  # queued, then deleted before it left
    await rep.send_ready()
    assert mailbox.sent == [] and store.copies == {}
    rep.note_reply(DataReply(1, DataStatus.NO_SPACE, "full"))
    assert rep.statistics().dropped == 1 and rep.statistics().refused == 1


# -- over real bundle nodes ---------------------------------------------------------------------


async def test_a_replicated_put_is_reported_and_copied_with_its_version() -> None:
    async with mesh() as m:
        role_b, _ = await m.start_role(replica_defaults={"survey": 2})
        c = await start_node(m.nursery, "c")
        await c.node.connect(*m.a.address)
        await m.b.node.connect(*c.address)
        await wait_until(lambda: len(c.node.peers()) == 2)
        role_c = DatastoreRole(
            c.node,
            RoleSettings(
                roles=(RoleName.DATASTORE,), brokers=("dtn://a/",), heartbeat_interval_s=60.0
            ),
        )
        await m.nursery.start(role_c.run)
        held: list[DataHeld] = []

        async def broker_inbox() -> None:
            while True:
                incoming = await m.broker.receive()
                if isinstance(incoming.message, DataHeld):
                    held.append(incoming.message)
                await incoming.done()

        m.nursery.start_soon(broker_inbox)

        # A put without a factor gets the node's default for its name: reported as held.
        reply = await m.ask(put(m.rid(), "survey/a", b"audio", written_at=7.0, reply_to=WRITER))
        assert isinstance(reply, DataReply) and reply.status == DataStatus.OK
        await wait_until(lambda: len(held) == 1)
        [entry] = held[0].entries
        assert held[0].node == "dtn://b/ucp/datastore"
        assert (entry.name, entry.replicas, entry.writer) == ("survey/a", 2, WRITER)
        assert entry.digest == content_digest(b"audio")
        # Factor 1 (no default for the name): nothing reported.
        await m.ask(put(m.rid(), "other", b"x"))

        # The broker asks b for a copy on c: c stores it with the original version and says so.
        reply = await m.ask(DataReplicate(m.rid(), "survey/a", (TARGET,)), via=m.broker)
        assert isinstance(reply, DataReply) and (reply.status, reply.count) == (DataStatus.OK, 1)
        await wait_until(lambda: len(held) == 2)
        assert held[1].node == TARGET
        copy = held[1].entries[0]
        assert (copy.name, copy.replicas, copy.writer, copy.written_at, copy.digest) == (
            "survey/a",
            2,
            WRITER,
            7.0,
            entry.digest,
        )
        await wait_until(lambda: _confirmed(role_b) == 1)
        [answer] = await m.client.request(TARGET, DataGet(m.rid(), "survey/a"), timeout_s=10)
        assert isinstance(answer.message, DataGetReply)
        assert answer.message.items[0].data == b"audio"
        # Asked for a datum it does not hold, a datastore says so.
        reply = await m.ask(DataReplicate(m.rid(), "nothing", (TARGET,)), via=m.broker)
        assert isinstance(reply, DataReply) and reply.status == DataStatus.NOT_FOUND
        assert role_b.statistics().replicate_requests == 2


def _confirmed(role: DatastoreRole) -> int:
    replication = role.statistics().replication
    return 0 if replication is None else replication.confirmed
