"""The forwarding queue (bundles assigned to next hops), the raw-bytes cache, bundle keys and
the memory of finished bundles."""

from __future__ import annotations

import pytest
import trio

from bpv7 import BundleAgeBlock, BundleFlags, CreationTimestamp, parse_eid
from bpv7.fragment import fragment_bundle
from ucp_dtn.agent.bundle_records import (
    EXTRA_AGE,
    EXTRA_FLAGS,
    EXTRA_PREVIOUS,
    bundle_key,
    expiry_of,
    key_of,
    stored_bundle_for,
    stored_flags,
)
from ucp_dtn.agent.duplicates import RecentBundles
from ucp_dtn.agent.forwarding import ForwardQueue, RawCache, backoff_delay
from ucp_dtn.agent.routing import RoutingTable
from ucp_dtn.store import BundleState

from .agent_support import make_bundle

A, B, C = (parse_eid(f"dtn://{n}/") for n in "abc")


def queue_with(*neighbours: object) -> tuple[RoutingTable, ForwardQueue]:
    routing = RoutingTable(A)
    for node in neighbours:
        routing.neighbour_up(parse_eid(str(node)))
    return routing, ForwardQueue(routing, lambda: 1000.0)


async def test_bundles_wait_unrouted_until_a_route_appears(autojump_clock: trio.abc.Clock) -> None:
    routing, queue = queue_with()
    queue.add("k1", parse_eid("dtn://b/x"))
    queue.add("k2", parse_eid("dtn://c/x"))
    assert (queue.unrouted, len(queue)) == (2, 2)
    assert not queue.is_routed("k1")
    taken: list[str] = []

    async def sender() -> None:
        key, destination, previous = await queue.take(B)
        taken.append(key)
        assert (str(destination), previous) == ("dtn://b/x", None)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.sleep(1)
        assert taken == []
        routing.neighbour_up(B)
        queue.sync()
    assert taken == ["k1"]
    assert (queue.unrouted, len(queue), queue.waiting_for(B)) == (1, 1, 0)


async def test_fifo_per_hop_with_front_requeue(autojump_clock: trio.abc.Clock) -> None:
    _, queue = queue_with(B)
    for key in ("k1", "k2", "k3"):
        queue.add(key, parse_eid("dtn://b/x"))
    assert queue.waiting_for(B) == 3 and queue.is_routed("k2")
    first, _, _ = await queue.take(B)
    assert first == "k1"
    queue.add("k1", parse_eid("dtn://b/x"), front=True)
    assert [(await queue.take(B))[0] for _ in range(3)] == ["k1", "k2", "k3"]


def test_previous_node_is_excluded_and_remove_works() -> None:
    routing, queue = queue_with(B, C)
    routing.add_static("*", "dtn://b/")
    queue.add("back", parse_eid("dtn://z/x"), previous=B)
    queue.add("on", parse_eid("dtn://z/x"), previous=C)
    assert not queue.is_routed("back") and queue.is_routed("on")
    assert queue.remove("back") and not queue.remove("back")
    assert "on" in queue and "back" not in queue


def test_raw_cache_is_bounded() -> None:
    cache = RawCache(limit_bytes=800)
    cache.put("huge", b"x" * 101)  # more than an eighth of the limit: not kept
    assert cache.get("huge") is None
    for i in range(10):
        cache.put(f"k{i}", b"y" * 100)
    assert cache.get("k0") is None and cache.get("k9") == b"y" * 100
    cache.drop("k9")
    assert cache.get("k9") is None


def test_backoff_doubles_up_to_a_limit() -> None:
    assert [backoff_delay(n, base=1, limit=5) for n in range(5)] == [0, 1, 2, 4, 5]


def test_recent_bundles_forget_the_oldest() -> None:
    recent = RecentBundles(capacity=2)
    for key in ("a", "b", "a", "c"):
        recent.add(key)
    assert "a" in recent and "c" in recent and "b" not in recent and len(recent) == 2
    recent.discard("a")
    assert "a" not in recent
    with pytest.raises(ValueError, match="capacity"):
        RecentBundles(0)


def test_keys_and_records() -> None:
    bundle = make_bundle(
        "dtn://b/app",
        flags=BundleFlags.REPORT_DELIVERY,
        time_ms=1000,
        sequence=7,
        lifetime_ms=5000,
    )
    assert bundle_key(bundle.bundle_id) == "dtn://t/|1000.7" == key_of(bundle)
    fragment = fragment_bundle(make_bundle("dtn://b/app", bytes(100)), 80)[1]
    assert key_of(fragment) == bundle_key(fragment.bundle_id)
    assert key_of(fragment).endswith(f"|{fragment.primary.fragment_offset}+{len(fragment.payload)}")
    meta = stored_bundle_for(
        bundle, 99, received_at=5.0, state=BundleState.PENDING_DELIVERY, previous="dtn://t/"
    )
    assert (meta.destination, meta.source, meta.size) == ("dtn://b/app", "dtn://t/", 99)
    assert meta.extra[EXTRA_PREVIOUS] == "dtn://t/" and EXTRA_AGE not in meta.extra
    assert stored_flags(meta.extra) == int(BundleFlags.REPORT_DELIVERY)
    assert meta.extra[EXTRA_FLAGS] == str(int(BundleFlags.REPORT_DELIVERY))
    assert meta.expires_at == pytest.approx(946_684_800 + 6.0)
    quiet = stored_bundle_for(make_bundle("dtn://b/"), 1, received_at=0, state=BundleState(1))
    assert stored_flags(quiet.extra) == 0


def test_expiry_of_a_bundle_without_clock_uses_its_age() -> None:
    bundle = make_bundle(
        "dtn://b/app", time_ms=0, lifetime_ms=10_000, extra_blocks=[BundleAgeBlock(4_000)]
    )
    assert bundle.primary.creation == CreationTimestamp(0, 0)
    assert expiry_of(bundle, 100.0) == pytest.approx(106.0)
    meta = stored_bundle_for(bundle, 1, received_at=100.0, state=BundleState.PENDING_FORWARD)
    assert meta.extra[EXTRA_AGE] == "1"
