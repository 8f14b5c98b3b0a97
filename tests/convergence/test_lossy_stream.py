"""LossyStream under trio's virtual clock: every behaviour of the link, seen through a stream.

The virtual clock (``autojump_clock``) is deterministic, so the tests state exact times.
"""

import random

import pytest
import trio
import trio.testing

from convergence.lossy import (
    LinkProfile,
    LossyLink,
    LossyStream,
    Partition,
    PartitionController,
    PartitionSchedule,
    ScheduledPartition,
    Window,
    open_lossy_stream,
    open_lossy_stream_pair,
)


async def _receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some()
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def _receive_all(stream: trio.abc.ReceiveStream) -> bytes:
    """Everything until end-of-stream."""
    data = bytearray()
    while chunk := await stream.receive_some():
        data += chunk
    return bytes(data)


def _elapsed(start: float) -> float:
    return round(trio.current_time() - start, 9)


# -- conformance --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile", [LinkProfile(), LinkProfile(seed=3, latency=0.01, jitter=0.005)]
)
async def test_behaves_as_a_half_closeable_stream(
    autojump_clock: trio.testing.MockClock, profile: LinkProfile
) -> None:
    async with trio.open_nursery() as nursery:

        async def make() -> tuple[LossyStream, LossyStream]:
            near, far = trio.testing.memory_stream_pair()
            streams = LossyStream(near, profile), LossyStream(far, profile)
            for stream in streams:
                await nursery.start(stream.run)
            return streams

        await trio.testing.check_half_closeable_stream(make, None)
        nursery.cancel_scope.cancel()


# -- a perfect link -----------------------------------------------------------------------------


async def test_perfect_link_is_transparent(autojump_clock: trio.testing.MockClock) -> None:
    payload = random.Random(1).randbytes(300_000)
    start = trio.current_time()
    async with open_lossy_stream_pair() as (near, far):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(near.send_all, payload)
            assert await _receive_exactly(far, len(payload)) == payload
        await far.send_all(payload[:1000])
        assert await _receive_exactly(near, 1000) == payload[:1000]
        stats = near.link.statistics()
        assert (stats.bytes_forward, stats.bytes_backward) == (300_000, 1000)
    assert _elapsed(start) == 0
    assert near.link.statistics().active == 0


# -- latency, jitter, bandwidth, stalls ---------------------------------------------------------


async def test_latency_each_way(autojump_clock: trio.testing.MockClock) -> None:
    async with open_lossy_stream_pair(LinkProfile(latency=0.1)) as (near, far):
        start = trio.current_time()
        await near.send_all(b"ping")
        assert _elapsed(start) == 0  # send_all does not wait for the latency
        assert await far.receive_some() == b"ping"
        assert _elapsed(start) == 0.1
        await far.send_all(b"pong")
        assert await near.receive_some() == b"pong"
        assert _elapsed(start) == 0.2


async def _arrival_times(profile: LinkProfile) -> list[float]:
    times = []
    async with open_lossy_stream_pair(profile, segment_size=100) as (near, far):
        start = trio.current_time()
        for _ in range(20):
            await near.send_all(b"x" * 100)
            await trio.sleep(0.05)
        received = 0
        while received < 2000:
            received += len(await far.receive_some(100))
            times.append(_elapsed(start))
    return times


async def test_jitter_is_seeded(autojump_clock: trio.testing.MockClock) -> None:
    profile = LinkProfile(seed=11, latency=0.5, jitter=0.2)
    first = await _arrival_times(profile)
    assert first == await _arrival_times(profile)
    assert first != await _arrival_times(LinkProfile(seed=12, latency=0.5, jitter=0.2))


async def test_bandwidth_paces_the_sender(autojump_clock: trio.testing.MockClock) -> None:
    profile = LinkProfile(latency=0.5, bandwidth=10_000.0)
    async with open_lossy_stream_pair(profile) as (near, far):
        start = trio.current_time()
        await near.send_all(bytes(100_000))
        assert _elapsed(start) == 10.0
        assert len(await _receive_exactly(far, 100_000)) == 100_000
        assert _elapsed(start) == 10.5
        # The backward direction is capped too, and the receiver is paced by the link.
        start = trio.current_time()
        await far.send_all(bytes(50_000))
        assert len(await _receive_exactly(near, 50_000)) == 50_000
        assert _elapsed(start) == 5.5


async def test_stall_holds_data_without_closing(autojump_clock: trio.testing.MockClock) -> None:
    profile = LinkProfile(latency=0.1, stalls=(Window(1.0, 4.0),))
    async with open_lossy_stream_pair(profile) as (near, far):
        start = trio.current_time()
        await trio.sleep(0.95)
        await near.send_all(b"in flight")  # would arrive at 1.05, inside the stall
        await trio.sleep(1.05)
        await near.send_all(b"during")  # blocks until the stall ends
        assert _elapsed(start) == 4.0
        assert await _receive_exactly(far, 15) == b"in flightduring"
        assert _elapsed(start) == 4.1
        assert not near.is_cut
        await far.send_all(b"still open")
        assert await near.receive_some() == b"still open"


async def test_random_stalls_follow_the_seed(autojump_clock: trio.testing.MockClock) -> None:
    profile = LinkProfile(seed=2, stall_every=2.0, stall_for=1.0)
    link = LossyLink(profile)
    stalls = [f for f in link.model.faults(30)]
    assert len(stalls) > 5
    async with open_lossy_stream_pair(link) as (near, far):
        start = trio.current_time()
        for fault in stalls:
            await trio.sleep_until(start + (fault.start + fault.end) / 2)
            await near.send_all(b"!")
            assert await far.receive_some() == b"!"
            assert _elapsed(start) == pytest.approx(fault.end)


# -- cuts ---------------------------------------------------------------------------------------


async def test_scheduled_cut(autojump_clock: trio.testing.MockClock) -> None:
    link = LossyLink(LinkProfile(cut_at=(5.0,)))
    async with open_lossy_stream_pair(link) as (near, far):
        start = trio.current_time()
        await near.send_all(b"before")
        assert await far.receive_some() == b"before"
        assert await far.receive_some() == b""  # the link closed it
        assert _elapsed(start) == 5.0
        assert near.is_cut
        with pytest.raises(trio.BrokenResourceError, match="cut"):
            await near.receive_some()
        with pytest.raises(trio.BrokenResourceError, match="cut"):
            await near.send_all(b"after")
        with pytest.raises(trio.BrokenResourceError):
            await far.send_all(b"after")
    stats = link.statistics()
    assert (stats.connections, stats.cuts, stats.active) == (1, 1, 0)


async def test_cut_loses_data_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    link = LossyLink(LinkProfile(latency=1.0, cut_at=(5.0,)))
    async with open_lossy_stream_pair(link) as (near, far):
        await trio.sleep(3.5)
        await near.send_all(b"arrives")
        await far.send_all(b"arrives too")
        await trio.sleep(1.0)
        await near.send_all(b"lost")
        await far.send_all(b"lost too")
        assert await _receive_all(far) == b"arrives"
        assert await near.receive_some() == b"arrives too"  # arrived before the cut
        with pytest.raises(trio.BrokenResourceError):
            await near.receive_some()


async def test_cut_mid_transfer_by_byte_count(autojump_clock: trio.testing.MockClock) -> None:
    payload = random.Random(2).randbytes(100_000)
    link = LossyLink(LinkProfile(cut_after_bytes=(40_000,), latency=0.01))
    async with open_lossy_stream_pair(link) as (near, far):
        with pytest.raises(trio.BrokenResourceError):
            await near.send_all(payload)
        assert await _receive_all(far) == payload[:40_000]
    # The next connection over the link has no budget.
    async with open_lossy_stream_pair(link) as (near, far):
        await near.send_all(payload)
        assert await _receive_exactly(far, len(payload)) == payload
    assert link.statistics().cuts == 1


async def test_byte_budget_counts_both_directions(autojump_clock: trio.testing.MockClock) -> None:
    link = LossyLink(LinkProfile(cut_after_bytes=(30,), latency=0.1))
    async with open_lossy_stream_pair(link) as (near, far):
        await near.send_all(b"a" * 10)
        assert await far.receive_some() == b"a" * 10
        await far.send_all(b"b" * 50)
        assert await _receive_exactly(near, 20) == b"b" * 20
        with pytest.raises(trio.BrokenResourceError):
            await near.receive_some()
        assert near.is_cut


async def test_random_cuts_follow_the_seed(autojump_clock: trio.testing.MockClock) -> None:
    link = LossyLink(LinkProfile(seed=5, drop_every=3.0))
    cuts = [fault.start for fault in link.model.faults(60)]
    start = trio.current_time()
    lifetimes = []
    while trio.current_time() - start < 30:
        async with open_lossy_stream_pair(link) as (near, far):
            opened = trio.current_time() - start
            assert await _receive_all(far) == b""
            lifetimes.append((round(opened, 9), _elapsed(start)))
            assert near.is_cut
    assert [end for _, end in lifetimes] == pytest.approx(cuts[: len(lifetimes)])
    assert link.statistics().cuts == len(lifetimes)


async def test_cut_during_a_stall_unblocks_the_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = LossyLink(LinkProfile(stalls=(Window(1, 30),), cut_at=(5.0,)))
    async with open_lossy_stream_pair(link) as (near, far):
        start = link.model.epoch
        await trio.sleep_until(start + 2)
        with pytest.raises(trio.BrokenResourceError, match="cut"):
            await near.send_all(b"stuck")
        assert _elapsed(start) == 5
        assert await far.receive_some() == b""


async def test_cut_by_hand(autojump_clock: trio.testing.MockClock) -> None:
    async with open_lossy_stream_pair() as (near, far):
        near.cut()
        assert await far.receive_some() == b""
        with pytest.raises(trio.BrokenResourceError):
            await near.send_all(b"x")
        assert near.link.statistics().cuts == 1


# -- down windows and switching ----------------------------------------------------------------


async def test_down_window_cuts_and_refuses(autojump_clock: trio.testing.MockClock) -> None:
    link = LossyLink(LinkProfile(down=(Window(10.0, 20.0),)))
    start = link.model.epoch
    async with open_lossy_stream_pair(link) as (near, far):
        assert await far.receive_some() == b""
        assert _elapsed(start) == 10.0
    await trio.sleep_until(start + 12.0)
    assert link.is_down()
    async with open_lossy_stream_pair(link) as (near, far):
        assert near.is_cut and near.connection is None
        with pytest.raises(trio.BrokenResourceError):
            await near.send_all(b"x")
        assert await far.receive_some() == b""
    await trio.sleep_until(start + 20.0)
    async with open_lossy_stream_pair(link) as (near, far):
        await near.send_all(b"back up")
        assert await far.receive_some() == b"back up"
    stats = link.statistics()
    assert (stats.connections, stats.refused, stats.cuts) == (2, 1, 1)


async def test_set_down_by_hand(autojump_clock: trio.testing.MockClock) -> None:
    link = LossyLink(name="A->B")
    async with (
        open_lossy_stream_pair(link) as (first, far1),
        open_lossy_stream_pair(link) as (
            second,
            far2,
        ),
    ):
        assert link.statistics().active == 2
        link.set_down(True)
        assert link.statistics().down
        assert await far1.receive_some() == b""
        assert await far2.receive_some() == b""
        assert first.is_cut and second.is_cut
    async with open_lossy_stream_pair(link) as (refused, _):
        assert refused.is_cut
    link.set_down(False)
    async with open_lossy_stream_pair(link) as (near, far):
        await near.send_all(b"up")
        assert await far.receive_some() == b"up"
    stats = link.statistics()
    assert (stats.cuts, stats.refused, stats.down) == (2, 1, False)


# -- partitions ---------------------------------------------------------------------------------


async def test_scheduled_partition(autojump_clock: trio.testing.MockClock) -> None:
    links = {name: LossyLink(name=name) for name in ("A->B", "B->C", "A->C")}
    schedule = PartitionSchedule((ScheduledPartition(Window(10, 20), Partition.of({"A"})),))
    controller = PartitionController(links, schedule)
    start = controller.epoch
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        async with (
            open_lossy_stream_pair(links["A->B"]) as (ab, ab_far),
            open_lossy_stream_pair(links["B->C"]) as (bc, bc_far),
        ):
            assert await ab_far.receive_some() == b""
            assert _elapsed(start) == 10
            assert controller.down_links() == ("A->B", "A->C")
            assert controller.separated("A", "C") and not controller.separated("B", "C")
            await bc.send_all(b"B and C still talk")
            assert await bc_far.receive_some() == b"B and C still talk"
        await trio.sleep_until(start + 20)
        await trio.testing.wait_all_tasks_blocked()  # the controller wakes at 20 too
        assert controller.down_links() == ()
        async with open_lossy_stream_pair(links["A->B"]) as (ab, ab_far):
            await ab.send_all(b"healed")
            assert await ab_far.receive_some() == b"healed"
        nursery.cancel_scope.cancel()


async def test_partition_by_hand(autojump_clock: trio.testing.MockClock) -> None:
    links = {("A", "B"): LossyLink(), ("C", "D"): LossyLink(), ("B", "C"): LossyLink()}
    controller = PartitionController(links)
    controller.partition({"A", "B"}, {"C", "D"})
    assert controller.down_links() == ("B->C",)
    assert links["B", "C"].is_down() and not links["A", "B"].is_down()
    controller.heal()
    assert controller.down_links() == ()
    assert controller.manual_partition is None


async def test_partition_folded_into_a_profile(autojump_clock: trio.testing.MockClock) -> None:
    schedule = PartitionSchedule((ScheduledPartition(Window(3, 4), Partition.of({"B"})),))
    link = LossyLink(LinkProfile(down=schedule.down_windows("A->B")))
    async with open_lossy_stream_pair(link) as (_, far):
        start = trio.current_time()
        assert await far.receive_some() == b""
        assert _elapsed(start) == 3


# -- closing ------------------------------------------------------------------------------------


async def test_graceful_close_delivers_data_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    near_end, far = trio.testing.memory_stream_pair()
    async with open_lossy_stream(near_end, LinkProfile(latency=2.0)) as near:
        start = trio.current_time()
        await near.send_all(b"last words")
        await near.aclose()
        assert _elapsed(start) == 2.0
        with pytest.raises(trio.ClosedResourceError):
            await near.send_all(b"more")
    assert await _receive_all(far) == b"last words"


async def test_send_eof_and_peer_close(autojump_clock: trio.testing.MockClock) -> None:
    async with open_lossy_stream_pair(LinkProfile(latency=0.5)) as (near, far):
        start = trio.current_time()
        await near.send_all(b"request")
        await near.send_eof()
        with pytest.raises(trio.ClosedResourceError, match="send_eof"):
            await near.send_all(b"more")
        assert await _receive_all(far) == b"request"
        assert _elapsed(start) == 0.5
        await far.send_all(b"response")
        await far.aclose()
        assert await _receive_all(near) == b"response"
        assert _elapsed(start) == 1.0


async def test_run_is_required_once(autojump_clock: trio.testing.MockClock) -> None:
    near_end, _ = trio.testing.memory_stream_pair()
    stream = LossyStream(near_end)
    async with trio.open_nursery() as nursery:
        await nursery.start(stream.run)
        with pytest.raises(RuntimeError, match="once"):
            await stream.run()
        await stream.aclose()
    await stream.aclose()  # idempotent


async def test_close_without_run(autojump_clock: trio.testing.MockClock) -> None:
    near_end, far = trio.testing.memory_stream_pair()
    stream = LossyStream(near_end)
    await stream.aclose()
    assert await far.receive_some() == b""
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive_some()
    assert stream.link.statistics().active == 0


async def test_bad_arguments() -> None:
    near_end, _ = trio.testing.memory_stream_pair()
    with pytest.raises(ValueError, match="segment_size"):
        LossyStream(near_end, segment_size=0)
    async with open_lossy_stream(near_end) as stream:
        with pytest.raises(ValueError, match="max_bytes"):
            await stream.receive_some(0)


# -- the pattern integration tests use ---------------------------------------------------------


async def _deliver_all(link: LossyLink, messages: int) -> list[int]:
    """Send numbered 4-byte messages, each acknowledged; reconnect and resend after cuts."""
    received: list[int] = []
    next_message = 0
    while next_message < messages:
        async with open_lossy_stream_pair(link) as (near, far):
            try:
                while next_message < messages:
                    await near.send_all(next_message.to_bytes(4, "big"))
                    data = await _receive_exactly(far, 4)
                    if len(data) < 4:
                        break
                    number = int.from_bytes(data, "big")
                    if not received or received[-1] != number:
                        received.append(number)
                    await far.send_all(b"ack")
                    if await _receive_exactly(near, 3) != b"ack":
                        break
                    next_message += 1
            except trio.BrokenResourceError:
                pass
        await trio.sleep(0.5)  # back off before reconnecting
    return received


async def test_messages_cross_a_link_that_drops_every_few_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = LossyLink(LinkProfile(seed=9, drop_every=3.0, latency=0.02, jitter=0.01))
    assert await _deliver_all(link, 1000) == list(range(1000))
    assert link.statistics().cuts >= 5
