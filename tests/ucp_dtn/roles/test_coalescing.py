"""Several messages in one bundle: the packing rules, and the mailbox's coalescing and
confirmation of batches on a real bundle node."""

from __future__ import annotations

import uuid

import trio

from bpv7 import parse_eid
from tests.ucp_dtn.agent_support import start_node, wait_until
from ucp_dtn.roles import Mailbox, RoleName, role_endpoint
from ucp_dtn.roles.coalescing import (
    ALONE_BYTES,
    MAX_BATCH_BYTES,
    Outgoing,
    batch_payload,
    pack,
)
from ucp_dtn.ucp import (
    MAX_BATCH_MESSAGES,
    DataPut,
    JobAccepted,
    JobState,
    JobStatus,
    MessageBatch,
    decode_message,
    encode_message,
)

CLIENT = parse_eid("dtn://laptop/ucp/client")
OTHER = parse_eid("dtn://phone/ucp/client")
BROKER = "dtn://hub/ucp/broker"


def accepted(number: int) -> JobAccepted:
    return JobAccepted(uuid.UUID(int=number), BROKER)


def test_batch_payload_is_the_batch_message_encoded() -> None:
    for count in (2, 23, 24, 255, 256):
        messages = tuple(accepted(n) for n in range(count))
        encoded = [encode_message(m) for m in messages]
        assert batch_payload(encoded) == MessageBatch(messages).to_cbor()


def test_messages_for_one_destination_share_a_bundle_in_order() -> None:
    items = [Outgoing(CLIENT if n % 3 else OTHER, accepted(n)) for n in range(9)]
    bundles = pack(items, default_lifetime_s=100.0)
    assert [(b.destination, b.items) for b in bundles] == [
        (OTHER, (0, 3, 6)),
        (CLIENT, (1, 2, 4, 5, 7, 8)),
    ]
    batch = decode_message(bundles[1].payload)
    assert isinstance(batch, MessageBatch)
    assert batch.messages == tuple(accepted(n) for n in (1, 2, 4, 5, 7, 8))


def test_a_lone_message_goes_as_itself() -> None:
    [bundle] = pack([Outgoing(CLIENT, accepted(1), lifetime_s=None)], default_lifetime_s=100.0)
    assert bundle.payload == encode_message(accepted(1))
    assert bundle.lifetime_s is None
    assert not bundle.custody


def test_custody_if_any_asks_and_the_longest_lifetime() -> None:
    items = [
        Outgoing(CLIENT, accepted(1), lifetime_s=30.0),
        Outgoing(CLIENT, accepted(2), custody=True, lifetime_s=3600.0),
        Outgoing(CLIENT, accepted(3)),
    ]
    [bundle] = pack(items, default_lifetime_s=100.0)
    assert bundle.custody
    assert bundle.lifetime_s == 3600.0
    [short] = pack(items[::2], default_lifetime_s=100.0)
    assert not short.custody
    assert short.lifetime_s == 100.0


def test_a_batch_never_grows_past_its_bounds() -> None:
    many = [Outgoing(CLIENT, accepted(n)) for n in range(2 * MAX_BATCH_MESSAGES + 1)]
    sizes = [len(b.items) for b in pack(many, default_lifetime_s=1.0)]
    assert sizes == [MAX_BATCH_MESSAGES, MAX_BATCH_MESSAGES, 1]

    def put(number: int, size: int) -> Outgoing:
        return Outgoing(CLIENT, DataPut(number, f"d/{number}", b"x" * size, 1.0))

    medium = [put(n, ALONE_BYTES - 200) for n in range(10)]
    bundles = pack(medium, default_lifetime_s=1.0)
    assert all(len(b.payload) <= MAX_BATCH_BYTES + 16 for b in bundles)
    assert [i for b in bundles for i in b.items] == list(range(10))
    assert len(bundles) == 3  # 4 + 4 + 2 of ~16 KiB under 64 KiB each

    # A big message goes alone, and what was ready before it leaves before it.
    mixed = [put(0, 10), put(1, ALONE_BYTES), put(2, 10)]
    assert [b.items for b in pack(mixed, default_lifetime_s=1.0)] == [(0,), (1,), (2,)]


async def test_concurrent_sends_coalesce_and_the_batch_is_confirmed_after_its_last_message(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        running = await start_node(nursery, "hub", listen=())
        node = running.node
        sender = Mailbox(node, role_endpoint(node.node_id, RoleName.BROKER))
        receiver = Mailbox(node, role_endpoint(node.node_id, RoleName.CLIENT))
        await nursery.start(sender.run)
        receiver_scope = trio.CancelScope()

        async def run_receiver(task_status: trio.TaskStatus[None]) -> None:
            with receiver_scope:
                await receiver.run(task_status=task_status)

        await nursery.start(run_receiver)

        # Ten tasks each send one message at the same moment: one bundle carries them all.
        async with trio.open_nursery() as senders:
            for number in range(10):
                senders.start_soon(sender.send, receiver.endpoint, accepted(number))
        assert sender.statistics().sent == 10
        assert sender.statistics().bundles_sent == 1

        got = [await receiver.receive() for _ in range(10)]
        # (Trio runs the ten senders in no fixed order.)
        messages = sorted((incoming.message for incoming in got), key=lambda m: str(m))
        assert messages == [accepted(n) for n in range(10)]
        assert len({incoming.bundle_id for incoming in got}) == 1
        assert receiver.statistics().batches_received == 1
        delivered = node.statistics().delivered
        for incoming in got[:9]:
            await incoming.done()
            await incoming.done()  # idempotent: does not count twice
        assert node.statistics().delivered == delivered
        await got[9].done()
        assert node.statistics().delivered == delivered + 1
        nursery.cancel_scope.cancel()


async def test_a_batch_half_done_comes_back_whole_after_a_restart(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        running = await start_node(nursery, "hub", listen=())
        node = running.node
        endpoint = role_endpoint(node.node_id, RoleName.CLIENT)
        sender = Mailbox(node, role_endpoint(node.node_id, RoleName.BROKER))
        await nursery.start(sender.run)
        await sender.send_many([Outgoing(endpoint, accepted(n)) for n in range(5)])
        assert sender.statistics().bundles_sent == 1

        first = Mailbox(node, endpoint)
        scope = trio.CancelScope()

        async def run_first(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await first.run(task_status=task_status)

        await nursery.start(run_first)
        for _ in range(3):
            await (await first.receive()).done()
        scope.cancel()  # the role "crashes" with two messages of the batch not done
        await wait_until(lambda: node.statistics().registrations == 1)

        second = Mailbox(node, endpoint)
        await nursery.start(second.run)
        again = [await second.receive() for _ in range(5)]
        assert [incoming.message for incoming in again] == [accepted(n) for n in range(5)]
        for incoming in again:
            await incoming.done()
        await wait_until(lambda: node.statistics().pending_delivery == 0)
        nursery.cancel_scope.cancel()


async def test_a_bad_message_in_a_batch_is_dropped_alone(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        running = await start_node(nursery, "hub", listen=())
        node = running.node
        sender = Mailbox(node, role_endpoint(node.node_id, RoleName.BROKER))
        receiver = Mailbox(node, role_endpoint(node.node_id, RoleName.CLIENT))
        await nursery.start(sender.run)
        await nursery.start(receiver.run)
        # Encodes (the sender does not check ranges) but no receiver takes it.
        bad = JobState(uuid.UUID(int=1), JobStatus.DONE, 1.0, attempt=-1)
        await sender.send_many(
            [Outgoing(receiver.endpoint, m) for m in (accepted(1), bad, accepted(2))]
        )
        assert sender.statistics().bundles_sent == 1
        got = [await receiver.receive() for _ in range(2)]
        assert [incoming.message for incoming in got] == [accepted(1), accepted(2)]
        await wait_until(lambda: receiver.statistics().malformed == 1)
        delivered = node.statistics().delivered
        for incoming in got:
            await incoming.done()
        assert node.statistics().delivered == delivered + 1  # the batch's bundle, confirmed
        nursery.cancel_scope.cancel()


async def test_lingering_messages_wait_for_each_other_up_to_their_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_node(nursery, "a", listen=())
        mailbox = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.EXECUTOR))
        await nursery.start(mailbox.run)
        left: dict[int, float] = {}

        async def send(number: int, after: float, linger: float) -> None:
            await trio.sleep(after)
            await mailbox.send(CLIENT, accepted(number), linger_s=linger)
            left[number] = trio.current_time()

        # Three results 3 ms apart, each allowed to wait 10 ms: one bundle, which leaves at
        # the first one's deadline.
        start = trio.current_time()
        async with trio.open_nursery() as sending:
            for number in range(3):
                sending.start_soon(send, number, 0.003 * number, 0.010)
        assert mailbox.statistics().bundles_sent == 1
        assert mailbox.statistics().sent == 3
        assert set(left.values()) == {start + 0.010}

        # A lone lingering message leaves at its deadline, not later.
        start = trio.current_time()
        await send(3, 0.0, 0.010)
        assert left[3] == start + 0.010
        assert mailbox.statistics().bundles_sent == 2

        # A message that may not linger takes the lingering ones with it at once.
        start = trio.current_time()
        async with trio.open_nursery() as sending:
            sending.start_soon(send, 4, 0.0, 0.050)
            sending.start_soon(send, 5, 0.002, 0.050)
            sending.start_soon(send, 6, 0.004, 0.0)
        assert left[4] == left[5] == left[6] == start + 0.004
        assert mailbox.statistics().bundles_sent == 3

        # Without linger: one scheduling tick, as before (no time passes).
        start = trio.current_time()
        await send(7, 0.0, 0.0)
        assert left[7] == start
        nursery.cancel_scope.cancel()
