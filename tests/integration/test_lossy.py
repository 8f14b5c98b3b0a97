"""1,000 bundles over three hops whose links drop at random (lossy-link relays between the
daemons): every one delivered, exactly once."""

from __future__ import annotations

import pytest
import trio

from .daemons import Inbox, Network, send_many, wait_until

WAIT = 100
COUNT = 1000


@pytest.mark.slow
async def test_a_thousand_bundles_cross_three_lossy_hops(network: Network) -> None:
    # a <- relay <- b <- relay <- c <- relay <- d: each node dials the previous one through a
    # relay that cuts the connection at random (twice a second on average, seeded), adds latency
    # and caps the bandwidth (so that the bundles take several seconds per hop: many cuts hit
    # transfers in flight).
    peer = ["--reconnect-max", "500ms", "--keepalive", "2s"]
    a = await network.start("a", "-r", "dtn://d/*=dtn://b/", *peer)
    hops = [a]
    for index, name in enumerate(("b", "c", "d")):
        relay = await network.relay(
            hops[-1].address,
            "--seed",
            str(17 + index),
            "--drop-every",
            "1.5s",
            # Besides the random cuts (whose number depends on how fast this machine is), the
            # first connections are cut after exact byte counts, mid-transfer: at least five
            # cuts per link on any machine.
            "--cut-after-bytes",
            "6KiB,9KiB,7KiB,11KiB,8KiB",
            "--latency",
            "2ms",
            "--jitter",
            "1ms",
        )
        routes = ["-r", "dtn://d/*=dtn://c/"] if name == "b" else []
        hops.append(await network.start(name, "-s", f"tcp://{relay[0]}:{relay[1]}", *routes, *peer))
    d = hops[-1]
    inbox = Inbox()
    acknowledged: set[bytes] = set()
    payloads = [b"lossy-%04d" % n for n in range(COUNT)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbox.run, d, "inbox")
        with trio.fail_after(WAIT):
            await send_many(a, payloads, acknowledged, destination="dtn://d/inbox")
        assert acknowledged == set(payloads)
        await wait_until(
            lambda: _arrived(inbox, COUNT), timeout=WAIT, interval=0.5, what="1,000 bundles at d"
        )
        nursery.cancel_scope.cancel()
    assert set(inbox.counts) == set(payloads)
    assert inbox.duplicates() == []
    b_stats = (await hops[1].info())["statistics"]
    assert b_stats["sessions_opened"] > 4, "the links were hardly cut"


async def _arrived(inbox: Inbox, count: int) -> bool:
    return len(inbox.counts) >= count
