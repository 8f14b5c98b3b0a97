"""Two daemons find each other through zeroconf (``--discovery``) and exchange bundles."""

from __future__ import annotations

import secrets

import pytest
import trio

from .daemons import Network, wait_until

WAIT = 60

# zeroconf passes bytes formats to struct.pack, which under ``python -bb`` raises BytesWarning
# (CPython gh-85943); the daemons run without -bb, but this keeps the test module consistent.
pytestmark = pytest.mark.filterwarnings("ignore::BytesWarning")


@pytest.mark.slow
async def test_two_daemons_find_each_other(network: Network) -> None:
    # A service type of this run only, on loopback: parallel runs never see each other.
    suffix = secrets.token_hex(3)
    discovery = [
        "--discovery",
        "--discovery-interface",
        "127.0.0.1",
        "--discovery-service-type",
        f"_u{suffix}._tcp.local.",
    ]
    a_name, b_name = f"disc-a-{suffix}", f"disc-b-{suffix}"
    a = await network.start(a_name, *discovery, "--roles", "broker", in_memory=True)
    b = await network.start(b_name, *discovery, in_memory=True)

    async def connected() -> bool:
        peers = (await a.info())["peers"]
        return any(peer["node_id"] == f"dtn://{b_name}/" for peer in peers)

    await wait_until(connected, timeout=WAIT, interval=0.5, what="a session between a and b")
    sent = await a.ucp("send", "-d", f"dtn://{b_name}/inbox", stdin=b"found you")
    assert sent.returncode == 0, sent.stderr
    got = await b.ucp("recv", "-e", "inbox", "--count", "1", "--timeout", "30s", timeout=WAIT)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"found you"
    with trio.fail_after(WAIT):
        assert await a.stop() == 0
        assert await b.stop() == 0
