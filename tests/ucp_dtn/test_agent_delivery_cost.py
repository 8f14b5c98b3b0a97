"""The cheap path of local delivery (issue #16): a bundle just stored for a local endpoint is
handed to its registration without being read back from the store and decoded again; the
store read remains the path for whatever the bounded memory no longer holds."""

from __future__ import annotations

import trio

from bpv7 import decode_bundle
from ucp_dtn.agent.bundle_records import bundle_key
from ucp_dtn.agent.core import FreshDeliveries
from ucp_dtn.store import MemoryBundleStore

from .agent_support import make_bundle, start_node

TIMEOUT = 20


class CountingStore(MemoryBundleStore):
    """The in-memory store, counting the bundles read back."""

    def __init__(self) -> None:
        super().__init__(10**8)
        self.reads: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.reads.append(key)
        return await super().get(key)

    async def peek(self, key: str) -> bytes | None:
        """Read without counting (the test's own look)."""
        return await super().get(key)


async def test_a_fresh_bundle_is_delivered_without_reading_the_store() -> None:
    store = CountingStore()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", listen=(), store=store)
            registration = a.node.register("dtn://a/app")
            sent = [await a.node.send("dtn://a/app", f"m{i}".encode()) for i in range(3)]
            for number, bundle_id in enumerate(sent):
                delivery = await registration.receive()
                assert (delivery.bundle_id, delivery.payload) == (bundle_id, f"m{number}".encode())
                # What the application gets is what the store holds.
                raw = await store.peek(bundle_key(bundle_id))
                assert raw is not None and decode_bundle(raw) == delivery.bundle
                await delivery.done()
            assert store.reads == []
            assert a.node.statistics().stored_bundles == 0
            nursery.cancel_scope.cancel()


async def test_bundles_the_memory_let_go_are_read_back_from_the_store() -> None:
    store = CountingStore()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", listen=(), store=store)
            # 40 bundles of ~200 KiB: more than the 4 MiB kept decoded, so the oldest go.
            payloads = [bytes([i]) * 200_000 for i in range(40)]
            for payload in payloads:
                await a.node.send("dtn://a/app", payload)
            registration = a.node.register("dtn://a/app")
            got = []
            for _ in payloads:
                delivery = await registration.receive()
                got.append(delivery.payload)
                await delivery.done()
            assert got == payloads
            assert 0 < len(store.reads) < len(payloads)
            nursery.cancel_scope.cancel()


def test_fresh_deliveries_are_bounded_and_taken_once() -> None:
    bundle = make_bundle("dtn://a/app", b"x")
    fresh = FreshDeliveries(limit_bytes=1_000)
    for number in range(5):
        fresh.put(f"k{number}", bundle, 300)
    assert len(fresh) == 3  # 900 bytes: the two oldest went
    assert fresh.take("k0") is None and fresh.take("k4") is bundle
    assert fresh.take("k4") is None  # taken once
    fresh.put("big", bundle, 300_000)  # above the largest kept
    assert fresh.take("big") is None
