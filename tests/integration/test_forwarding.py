"""Bundles crossing real daemons: several hops, nodes that come later, expiry reports, a full
store."""

from __future__ import annotations

import json
import subprocess

import pytest
import trio

from ucp_dtn.appapi import RequestFailed

from .daemons import Daemon, Network, wait_until

WAIT = 60


@pytest.mark.parametrize("routing", ["static", "learned"])
async def test_a_bundle_crosses_three_hops(network: Network, routing: str) -> None:
    # A <- B <- C <- D: each node connects to the one before it (static peers).
    learned = routing == "learned"
    route_flags = ["--route-interval", "500ms"]
    a = await network.start(
        "a", *route_flags, *([] if learned else ["-r", "dtn://d/*=dtn://b/"]), in_memory=True
    )
    b = await network.start(
        "b", "-s", a.url, *route_flags, *([] if learned else ["-r", "dtn://d/*=dtn://c/"])
    )
    c = await network.start("c", "-s", b.url, *route_flags)
    d = await network.start("d", "-s", c.url, *route_flags, in_memory=True)

    sent = await a.ucp("send", "-d", "dtn://d/inbox", stdin=b"over three hops")
    assert sent.returncode == 0, sent.stderr
    got = await d.ucp("recv", "-e", "inbox", "--count", "1", "--timeout", "45s", timeout=WAIT)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"over three hops"
    # ...and back, over the same hops the other way.
    sent = await d.ucp("send", "-d", "dtn://a/back", stdin=b"and back")
    assert sent.returncode == 0, sent.stderr
    if not learned:
        # Static routes only lead to d: the way back needs routes too.
        async with b.client() as client:
            await client.add_route("dtn://a/*", "dtn://a/")
        async with c.client() as client:
            await client.add_route("dtn://a/*", "dtn://b/")
        async with d.client() as client:
            await client.add_route("dtn://a/*", "dtn://c/")
    got = await a.ucp("recv", "-e", "back", "--count", "1", "--timeout", "45s", timeout=WAIT)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"and back"
    b_stats = (await b.info())["statistics"]
    assert b_stats["forwarded"] >= 2 and b_stats["stored_bundles"] == 0
    for daemon in (a, b, c, d):
        assert await daemon.stop() == 0


async def test_bundles_wait_for_a_node_that_comes_later(network: Network) -> None:
    a = await network.start("a")
    ids = []
    async with a.client() as client:
        for number in range(20):
            ids.append(await client.send("dtn://late/inbox", b"waiting %d" % number))
    info = await a.info()
    assert info["statistics"]["pending_forward"] == 20
    # A restart does not lose them either.
    assert await a.stop() == 0
    a = await network.restart(a)
    late = await network.start("late", "-s", a.url, in_memory=True)
    payloads: list[bytes] = []
    async with late.client() as client:
        registration = await client.register("inbox")
        with trio.fail_after(WAIT):
            while len(payloads) < 20:
                bundle = await registration.receive()
                payloads.append(bundle.payload)
                await bundle.confirm()
    assert sorted(payloads) == sorted(b"waiting %d" % n for n in range(20))
    await wait_until(lambda: _stored(a, 0), timeout=WAIT, what="a to drop what late acknowledged")


async def _stored(daemon: Daemon, count: int) -> bool:
    return bool((await daemon.info())["statistics"]["stored_bundles"] == count)


async def test_expiry_produces_a_deletion_status_report(network: Network) -> None:
    a = await network.start("a", in_memory=True)
    async with a.client() as client:
        # Status reports for this node go to a registration on its node ID (see
        # /work/helpers/requests-agent.md #2 for other report-to endpoints).
        reports = await client.register("dtn://a/")
        sent = await a.ucp(
            "send",
            "-d",
            "dtn://nowhere/x",
            "--lifetime",
            "1s",
            "--report",
            "deleted",
            "--report-to",
            "dtn://a/",
            stdin=b"doomed",
        )
        assert sent.returncode == 0, sent.stderr
        bundle_id = sent.stdout.decode().strip()
        with trio.fail_after(WAIT):
            report = await reports.receive()
        assert report.is_admin_record
        assert report.destination == "dtn://a/"
        await report.confirm()
        await reports.aclose()
    # The same report, read with `ucp recv --json` this time. The receiver registers first: a
    # report with no registration for its destination is logged and dropped.
    received: list[subprocess.CompletedProcess[bytes]] = []
    open_registrations = (await a.info())["statistics"]["registrations"]

    async def recv() -> None:
        received.append(
            await a.ucp("recv", "-e", "dtn://a/", "--json", "--count", "1", "--timeout", "60s")
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(recv)

        async def recv_registered() -> bool:
            return (await a.info())["statistics"]["registrations"] > open_registrations

        await wait_until(recv_registered, timeout=WAIT, what="ucp recv to register")
        sent = await a.ucp(
            "send", "-d", "dtn://nowhere/y", "--lifetime", "1s", "--report", "deleted", stdin=b"x"
        )
    second_id = sent.stdout.decode().strip()
    (got,) = received
    assert got.returncode == 0, got.stderr
    record = json.loads(got.stdout)
    assert record["admin_record"] is True
    status = record["status_report"]
    assert status["subject"] == second_id
    assert status["reason"] == "lifetime_expired"
    assert set(status["asserted"]) == {"deleted"}
    assert bundle_id != second_id
    stats = (await a.info())["statistics"]
    assert stats["deleted"].get("lifetime_expired") == 2


async def test_a_full_store_refuses_and_the_sender_succeeds_later(network: Network) -> None:
    # b's store holds about two of these bundles.
    b = await network.start("b", "--quota", "20KiB")
    a = await network.start("a", "-s", b.url, in_memory=True)
    payloads = [bytes([n]) * 8000 for n in range(6)]
    async with a.client() as client:
        for payload in payloads:
            await client.send("dtn://b/in", payload)
    # b fills up and refuses the rest; a keeps them.
    await wait_until(
        lambda: _refused(b), timeout=WAIT, what="b to refuse a transfer with its store full"
    )
    assert (await a.info())["statistics"]["stored_bundles"] >= 3
    # Sending locally on the full node fails too...
    async with b.client() as client:
        with pytest.raises(RequestFailed, match="store is full") as info:
            await client.send("dtn://b/in", bytes(8000))
        assert info.value.code == "store-full"
    refused = await b.ucp("send", "-d", "dtn://b/in", stdin=bytes(8000))
    assert refused.returncode == 1 and b"store-full" in refused.stderr
    # ...until it is drained by receiving: then everything arrives.
    got = await b.ucp("recv", "-e", "in", "--count", "6", "--timeout", "50s", timeout=WAIT)
    assert got.returncode == 0, got.stderr
    assert sorted(got.stdout[i : i + 8000] for i in range(0, 48000, 8000)) == payloads
    assert (await b.ucp("send", "-d", "dtn://b/in", stdin=bytes(8000))).returncode == 0


async def _refused(daemon: Daemon) -> bool:
    return bool((await daemon.info())["statistics"]["refused_transfers"] > 0)
