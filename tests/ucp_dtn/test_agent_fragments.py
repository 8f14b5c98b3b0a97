"""Proactive fragmentation to a neighbour's Transfer MRU (RFC 9171 §5.8) and reassembly before
local delivery (§5.9)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from bpv7 import Bundle, BundleFlags, decode_bundle
from bpv7.fragment import FragmentCollector, fragment_bundle
from convergence.tcpcl.link import LinkConfig, TcpclLink, TransferOutcome
from convergence.tcpcl.listener import open_link

from .agent_support import RunningNode, bare_peer, make_bundle, start_node, wait_until

TIMEOUT = 20
MRU = 2000


@asynccontextmanager
async def small_peer(node: RunningNode) -> AsyncIterator[trio.MemoryReceiveChannel[Bundle]]:
    """A bare peer ``dtn://t/`` that accepts transfers of at most ``MRU`` bytes."""
    config = LinkConfig(node_id="dtn://t/", keepalive_s=0, transfer_mru=MRU)
    send, receive = trio.open_memory_channel[Bundle](math.inf)

    async def collect(link: TcpclLink) -> None:
        async for transfer in link:
            await transfer.accept()
            bundle = decode_bundle(transfer.data)
            if str(bundle.primary.destination) != "dtn://t/~routing":
                send.send_nowait(bundle)

    async with open_link(*node.address, config) as link, trio.open_nursery() as nursery:
        nursery.start_soon(collect, link)
        yield receive
        nursery.cancel_scope.cancel()


async def test_bundle_larger_than_the_peer_mru_is_fragmented() -> None:
    payload = bytes(range(256)) * 40  # 10 240 bytes
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            async with small_peer(a) as received:
                await wait_until(lambda: a.node.statistics().sessions == 1)
                bundle_id = await a.node.send("dtn://t/app", payload)
                collector = FragmentCollector()
                whole = None
                sizes = []
                while whole is None:
                    with trio.fail_after(5):
                        fragment = await received.receive()
                    assert fragment.is_fragment
                    sizes.append(len(fragment.encode()))
                    whole = collector.add(fragment)
            assert whole.payload == payload
            assert whole.bundle_id == bundle_id
            assert max(sizes) <= MRU
            stats = a.node.statistics()
            assert stats.fragments_created == len(sizes)
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            nursery.cancel_scope.cancel()


async def test_must_not_fragment_bundle_waits_instead() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", custody_retransmit_s=60.0)
            async with small_peer(a):
                await wait_until(lambda: a.node.statistics().sessions == 1)
                await a.node.send("dtn://t/app", b"x" * 5000, must_not_fragment=True)
                await trio.sleep(0.2)
                stats = a.node.statistics()
                assert (stats.fragments_created, stats.stored_bundles) == (0, 1)
                assert stats.forwarded == 0
            nursery.cancel_scope.cancel()


async def test_fragments_are_reassembled_before_local_delivery() -> None:
    whole = make_bundle("dtn://b/app", bytes(range(256)) * 20)
    fragments = fragment_bundle(whole, 1200)
    assert len(fragments) > 2
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            inbox = b.node.register("dtn://b/app")
            async with bare_peer(b) as peer:
                # Out of order, with one duplicate.
                for fragment in [*reversed(fragments), fragments[0]]:
                    result = await peer.link.send(fragment.encode())
                    assert result.outcome is TransferOutcome.ACKED
                delivery = await inbox.receive()
            assert delivery.payload == whole.payload
            assert not delivery.bundle.is_fragment
            assert delivery.bundle_id == whole.bundle_id
            await delivery.done()
            stats = b.node.statistics()
            assert (stats.reassembled, stats.duplicates, stats.stored_bundles) == (1, 1, 0)
            nursery.cancel_scope.cancel()


async def test_fragments_for_another_node_are_forwarded_as_they_are() -> None:
    whole = make_bundle("dtn://c/app", b"y" * 3000, flags=BundleFlags(0))
    fragments = fragment_bundle(whole, 1500)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c")
            b = await start_node(nursery, "b", static_peers=(c.address,))
            inbox = c.node.register("dtn://c/app")
            await wait_until(lambda: b.node.statistics().sessions == 1)
            async with bare_peer(b) as peer:
                for fragment in fragments:
                    await peer.link.send(fragment.encode())
                delivery = await inbox.receive()
            assert delivery.payload == whole.payload
            assert b.node.statistics().reassembled == 0
            assert c.node.statistics().reassembled == 1
            nursery.cancel_scope.cancel()
