"""The snapshot feed: nothing built while nobody watches, one build per interval however many
pages watch, every subscriber gets the newest snapshot, a slow one skips what it missed."""

from __future__ import annotations

import trio
import trio.testing

from ucp_dtn.dashboard import SnapshotFeed


def counting_feed(interval_s: float = 1.0) -> SnapshotFeed:
    builds = iter(range(1, 1_000_000))
    return SnapshotFeed(lambda: b"snapshot %d" % next(builds), interval_s)


async def test_nothing_is_built_while_nobody_watches(autojump_clock: trio.abc.Clock) -> None:
    feed = counting_feed()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        await trio.sleep(60)
        assert feed.builds == 0
        nursery.cancel_scope.cancel()


async def test_many_subscribers_share_one_build_per_interval(
    autojump_clock: trio.abc.Clock,
) -> None:
    feed = counting_feed(interval_s=1.0)
    seen: dict[int, list[bytes]] = {n: [] for n in range(5)}

    async def watch(n: int) -> None:
        async with feed.subscribe() as subscription:
            for _ in range(4):
                seen[n].append(await subscription.next())

    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        async with trio.open_nursery() as watchers:
            for n in range(5):
                watchers.start_soon(watch, n)
        assert feed.subscribers == 0
        built = feed.builds
        await trio.sleep(30)  # nobody watches any more: no more builds
        assert feed.builds == built
        nursery.cancel_scope.cancel()
    # Five pages, four snapshots each: four builds, the same bytes for everybody.
    assert built == 4
    assert all(values == [b"snapshot 1", b"snapshot 2", b"snapshot 3", b"snapshot 4"]
               for values in seen.values())  # fmt: skip


async def test_a_slow_subscriber_gets_the_newest_and_skips_the_rest(
    autojump_clock: trio.abc.Clock,
) -> None:
    feed = counting_feed(interval_s=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        async with feed.subscribe() as subscription:
            assert await subscription.next() == b"snapshot 1"
            await trio.sleep(5.5)  # five more built meanwhile
            assert await subscription.next() == b"snapshot 6"
        nursery.cancel_scope.cancel()


async def test_current_is_cached_for_one_interval(autojump_clock: trio.abc.Clock) -> None:
    feed = counting_feed(interval_s=2.0)
    assert feed.current() == b"snapshot 1"
    await trio.sleep(1.0)
    assert feed.current() == b"snapshot 1"
    await trio.sleep(1.5)
    assert feed.current() == b"snapshot 2"
