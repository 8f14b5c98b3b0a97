"""Nodes killed with SIGKILL and restarted: no acknowledged bundle is lost, none is delivered
twice; custody transfer retransmits what a next hop lost."""

from __future__ import annotations

import random
import socket

import pytest
import trio

from bpv7 import decode_bundle
from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.listener import TcpclListener
from ucp_dtn.appapi import format_bundle_id

from .daemons import Daemon, Inbox, Network, send_many, ucp_sender, wait_until

WAIT = 90


@pytest.mark.slow
async def test_sigkill_mid_transfer_loses_no_acknowledged_bundle(network: Network) -> None:
    rng = random.Random(20261126)
    a = await network.start("a", "-r", "dtn://c/*=dtn://b/", "--reconnect-max", "1s")
    c = await network.start("c", "--reconnect-max", "1s", in_memory=True)
    b = await network.start("b", "-s", a.url, "-s", c.url, "--reconnect-max", "1s")
    inbox = Inbox()
    acknowledged: set[bytes] = set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbox.run, c, "inbox")
        # 1. Kill the relay b while bundles stream through it, restart it.
        first = [b"first-%d-%d" % (n, rng.randrange(1 << 30)) for n in range(800)]
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as senders:
                senders.start_soon(send_many, a, first, acknowledged)
                await inbox.reached(50).wait()
                b.kill()
                killed_at = len(inbox.counts)
        assert killed_at < len(first), "b was killed after everything had arrived"
        await b.process.wait()
        b = await network.restart(b)

        # 2. Kill the source a while applications (and `ucp send`) are sending to it.
        second = [b"second-%d" % n for n in range(400)]
        by_ucp = [b"ucp-%d" % n for n in range(12)]
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as senders:
                senders.start_soon(send_many, a, second, acknowledged)
                for part in range(3):
                    senders.start_soon(ucp_sender, a, by_ucp[part::3], acknowledged)
                # Kill it once `ucp send` has had its first ID printed, while the rest run.
                await wait_until(
                    _any_by_ucp(acknowledged), timeout=WAIT, interval=0.02, what="a ucp send"
                )
                await trio.sleep(rng.uniform(0.0, 0.3))
                a.kill()
        await a.process.wait()
        a = await network.restart(a)

        # Everything acknowledged arrives, exactly once.
        await wait_until(
            _all_arrived(inbox, acknowledged), timeout=WAIT, what="all acknowledged bundles"
        )
        nursery.cancel_scope.cancel()
    assert inbox.duplicates() == []
    assert acknowledged <= set(inbox.counts)
    for daemon in (a, b):
        await wait_until(_store_empty(daemon), timeout=WAIT, what=f"{daemon.name}'s store to drain")


def _any_by_ucp(acknowledged: set[bytes]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return any(payload.startswith(b"ucp-") for payload in acknowledged)

    return check


def _all_arrived(inbox: Inbox, acknowledged: set[bytes]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return acknowledged <= set(inbox.counts)

    return check


def _store_empty(daemon: Daemon):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool((await daemon.info())["statistics"]["stored_bundles"] == 0)

    return check


def _custody_wait(daemon: Daemon, count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool((await daemon.info())["statistics"]["custody_wait"] == count)

    return check


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_custody_retransmits_what_the_next_hop_lost(network: Network) -> None:
    """b acknowledges the custodial bundle at the TCPCL level and then loses it (a stand-in
    that drops everything, then the real b on the same port): a's custody timer sends it
    again and it arrives."""
    port = free_port()
    c = await network.start("c", in_memory=True)
    a = await network.start(
        "a",
        "-r",
        "dtn://c/*=dtn://b/",
        "-s",
        f"tcp://127.0.0.1:{port}",
        "--custody-retransmit",
        "2s",
        "--reconnect-max",
        "1s",
    )
    dropped: list[bytes] = []
    got_bpdu = trio.Event()

    async def lose_everything(link: TcpclLink) -> None:
        async for transfer in link:
            await transfer.accept()  # "stored" - and then lost
            dropped.append(transfer.data)
            bundle = decode_bundle(transfer.data)
            if bundle.is_admin_record and str(bundle.primary.destination) == "dtn://b/":
                got_bpdu.set()

    listener = TcpclListener(LinkConfig("dtn://b/"), lose_everything, "127.0.0.1", port)
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run)
        sent = await a.ucp("send", "-d", "dtn://c/inbox", "--custody", stdin=b"precious")
        assert sent.returncode == 0, sent.stderr
        with trio.fail_after(WAIT):
            await got_bpdu.wait()
        # The stand-in stays until a has its XFER_ACK: closing at once could reset the
        # connection with the ACK unread (a then still holds the bundle as not forwarded).
        await wait_until(_custody_wait(a, 1), timeout=WAIT, what="a to wait for a custody signal")
        nursery.cancel_scope.cancel()
    # The real b comes up where the stand-in was.
    await network.start("b", "-s", c.url, listen=f"127.0.0.1:{port}")
    got = await c.ucp("recv", "-e", "inbox", "--count", "1", "--timeout", "60s", timeout=WAIT)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"precious"
    await wait_until(_store_empty(a), timeout=WAIT, what="a to release its custodial copy")
    stats = (await a.info())["statistics"]
    assert stats["custody_retransmitted"] >= 1
    assert stats["custody_released"] == 1
    # Nothing more arrives (no duplicate).
    again = await c.ucp("recv", "-e", "inbox", "--count", "1", "--timeout", "2s")
    assert again.returncode == 1


@pytest.mark.slow
async def test_custody_survives_sigkill_of_the_next_hop(network: Network) -> None:
    c = await network.start("c", in_memory=True)
    a = await network.start(
        "a", "-r", "dtn://c/*=dtn://b/", "--custody-retransmit", "3s", "--reconnect-max", "1s"
    )
    b = await network.start("b", "-s", a.url, "-s", c.url, "--reconnect-max", "1s")
    inbox = Inbox()
    ids = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbox.run, c, "inbox")
        async with a.client() as client:
            for n in range(150):
                bundle_id = await client.send("dtn://c/inbox", b"custody-%d" % n, custody=True)
                ids.append(format_bundle_id(bundle_id))
                if n == 40:
                    b.kill()
        await b.process.wait()
        b = await network.restart(b)
        with trio.fail_after(WAIT):
            await inbox.reached(150).wait()
        nursery.cancel_scope.cancel()
    assert inbox.duplicates() == []
    assert len(set(ids)) == 150
    for daemon in (a, b):
        await wait_until(_store_empty(daemon), timeout=WAIT, what=f"{daemon.name} to drain")
