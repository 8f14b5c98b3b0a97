"""Bundle nodes talking real TCPCLv4 over 127.0.0.1 inside one trio run: delivery, forwarding,
store-and-forward, duplicates, invalid bundles, hop limits, full stores, registrations."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bpv7 import BundleFlags, HopCountBlock, decode_bundle
from bpv7.admin import BundleStatusReport, StatusKind, StatusReportReason, admin_record_from_bundle
from convergence.tcpcl import XferRefuseReason
from convergence.tcpcl.link import TransferOutcome
from ucp_dtn.agent import (
    BundleNode,
    EndpointError,
    NodeConfig,
    NodeNotRunningError,
    RegistrationError,
    RouteOrigin,
)
from ucp_dtn.store import SqliteBundleStore

from .agent_support import bare_peer, make_bundle, start_node, wait_until

TIMEOUT = 20


async def test_direct_delivery() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            b = await start_node(nursery, "b")
            registration = b.node.register("dtn://b/app")
            assert await a.node.connect(*b.address) == "dtn://b/"
            bundle_id = await a.node.send("dtn://b/app", b"hello")
            delivery = await registration.receive()
            assert delivery.payload == b"hello"
            assert delivery.bundle_id == bundle_id
            assert str(delivery.source) == "dtn://a/"
            assert str(delivery.destination) == "dtn://b/app"
            await delivery.done()
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            stats_a, stats_b = a.node.statistics(), b.node.statistics()
            assert (stats_a.created, stats_a.forwarded, stats_a.sessions) == (1, 1, 1)
            assert (stats_b.received, stats_b.delivered, stats_b.stored_bundles) == (1, 1, 0)
            assert [p.node_id for p in a.node.peers()] == ["dtn://b/"]
            assert a.node.peers()[0].active and not b.node.peers()[0].active
            nursery.cancel_scope.cancel()


async def test_local_delivery_without_sessions(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_node(nursery, "a", listen=())
        registration = a.node.register("dtn://a/inbox")
        await a.node.send("dtn://a/inbox", b"to myself", source="dtn://a/outbox")
        with trio.fail_after(5):
            delivery = await registration.receive()
        assert (delivery.payload, str(delivery.source)) == (b"to myself", "dtn://a/outbox")
        await delivery.done()
        assert a.node.statistics().delivered == 1
        nursery.cancel_scope.cancel()


async def test_api_misuse(autojump_clock: trio.abc.Clock) -> None:
    node = BundleNode(NodeConfig("dtn://a/", None, listen=()))
    with pytest.raises(NodeNotRunningError, match="not running"):
        node.register("dtn://a/x")
    with pytest.raises(NodeNotRunningError, match="not running"):
        await node.send("dtn://b/x", b"")
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with pytest.raises(EndpointError, match="not an endpoint of this node"):
            node.register("dtn://b/x")
        with pytest.raises(EndpointError, match="invalid endpoint"):
            node.register("nonsense")
        registration = node.register("dtn://a/x")
        with pytest.raises(RegistrationError, match="already registered"):
            node.register("dtn://a/x")
        await registration.aclose()
        node.register("dtn://a/x")
        with pytest.raises(EndpointError, match="not an endpoint of this node"):
            await node.send("dtn://b/x", b"", source="dtn://c/")
        with pytest.raises(EndpointError, match="null endpoint"):
            await node.send("dtn:none", b"")
        with pytest.raises(ValueError, match="lifetime_s"):
            await node.send("dtn://b/x", b"", lifetime_s=0)
        with pytest.raises(ValueError, match="hop_limit"):
            await node.send("dtn://b/x", b"", hop_limit=256)
        nursery.cancel_scope.cancel()


async def test_three_hops_over_static_routes() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            d = await start_node(nursery, "d")
            c = await start_node(nursery, "c", static_peers=(d.address,))
            b = await start_node(
                nursery, "b", static_peers=(c.address,), static_routes=(("dtn://d/*", "dtn://c/"),)
            )
            a = await start_node(
                nursery, "a", static_peers=(b.address,), static_routes=(("*", "dtn://b/"),)
            )
            registration = d.node.register("dtn://d/svc")
            await a.node.send("dtn://d/svc", b"far away")
            delivery = await registration.receive()
            assert delivery.payload == b"far away"
            hops = delivery.bundle.hop_count
            assert hops is not None and hops.count == 3
            assert str(delivery.bundle.previous_node) == "dtn://c/"
            await delivery.done()
            await wait_until(lambda: c.node.statistics().stored_bundles == 0)
            assert b.node.statistics().forwarded == 1 and c.node.statistics().forwarded == 1
            nursery.cancel_scope.cancel()


async def test_three_hops_over_learned_routes() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            interval = {"route_advert_interval_s": 0.2}
            d = await start_node(nursery, "d", **interval)
            c = await start_node(nursery, "c", static_peers=(d.address,), **interval)
            b = await start_node(nursery, "b", static_peers=(c.address,), **interval)
            a = await start_node(nursery, "a", static_peers=(b.address,), **interval)

            def a_knows_d() -> bool:
                return any(
                    r.pattern == "dtn://d/" and r.usable and r.next_hop == "dtn://b/"
                    for r in a.node.routes()
                )

            await wait_until(a_knows_d)
            learned = [r for r in a.node.routes() if r.pattern == "dtn://d/"]
            assert learned[0].origin is RouteOrigin.LEARNED and learned[0].metric == 3
            registration = d.node.register("dtn://d/svc")
            await a.node.send("dtn://d/svc", b"learned")
            delivery = await registration.receive()
            assert delivery.payload == b"learned"
            await delivery.done()
            # ... and back the other way.
            reply = a.node.register("dtn://a/reply")
            await d.node.send("dtn://a/reply", b"pong")
            assert (await reply.receive()).payload == b"pong"
            assert a.node.statistics().adverts_received > 0
            nursery.cancel_scope.cancel()


async def test_bundles_wait_for_a_node_that_connects_later() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            ids = [await a.node.send("dtn://b/app", f"#{i}".encode()) for i in range(5)]
            assert a.node.statistics().pending_forward == 5
            b = await start_node(nursery, "b", static_peers=(a.address,))
            registration = b.node.register("dtn://b/app")
            received = []
            for _ in ids:
                delivery = await registration.receive()
                received.append(delivery.bundle_id)
                await delivery.done()
            assert sorted(received, key=ids.index) == ids
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            nursery.cancel_scope.cancel()


async def test_bundles_survive_a_restart_of_the_sender(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", workdir=tmp_path / "a")
            await a.node.send("dtn://b/app", b"persisted", lifetime_s=600)
            await a.stop()
            a = await start_node(nursery, "a", workdir=tmp_path / "a")
            assert a.node.statistics().pending_forward == 1
            b = await start_node(nursery, "b", static_peers=(a.address,))
            registration = b.node.register("dtn://b/app")
            delivery = await registration.receive()
            assert delivery.payload == b"persisted"
            await delivery.done()
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            nursery.cancel_scope.cancel()


async def test_duplicates_are_acknowledged_and_dropped() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            registration = b.node.register("dtn://b/app")
            raw = make_bundle("dtn://b/app", b"once").encode()
            async with bare_peer(b) as peer:
                link = peer.link
                for _ in range(3):
                    result = await link.send(raw)
                    assert result.outcome is TransferOutcome.ACKED
                delivery = await registration.receive()
                assert delivery.payload == b"once"
                await delivery.done()
                # Delivered and gone from the store: still recognised.
                assert (await link.send(raw)).outcome is TransferOutcome.ACKED
            assert b.node.statistics().duplicates == 3
            assert b.node.statistics().delivered == 1
            assert registration.waiting == 0
            nursery.cancel_scope.cancel()


async def test_invalid_bundle_is_refused_and_the_session_goes_on() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            registration = b.node.register("dtn://b/app")
            async with bare_peer(b) as peer:
                link = peer.link
                result = await link.send(b"\x9f\x00\xff not a bundle")
                assert result.outcome is TransferOutcome.REFUSED
                assert result.refuse_reason == XferRefuseReason.NOT_ACCEPTABLE
                good = make_bundle("dtn://b/app", b"fine").encode()
                assert (await link.send(good)).outcome is TransferOutcome.ACKED
                assert (await registration.receive()).payload == b"fine"
            stats = b.node.statistics()
            assert (stats.invalid, stats.refused_transfers, stats.received) == (1, 1, 1)
            nursery.cancel_scope.cancel()


async def test_hop_limit_exceeded_deletes_with_a_report() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            async with bare_peer(b) as peer:
                link = peer.link
                bundle = make_bundle(
                    "dtn://elsewhere/x",
                    flags=BundleFlags.REPORT_DELETION,
                    report_to="dtn://t/reports",
                    extra_blocks=[HopCountBlock(2, 2)],
                )
                assert (await link.send(bundle.encode())).outcome is TransferOutcome.ACKED
                report_bundle = await peer.receive()
            assert str(report_bundle.primary.destination) == "dtn://t/reports"
            record = admin_record_from_bundle(report_bundle)
            assert isinstance(record, BundleStatusReport)
            assert record.asserted_kinds == (StatusKind.DELETED,)
            assert record.reason == StatusReportReason.HOP_LIMIT_EXCEEDED
            assert record.subject_id == bundle.bundle_id
            await wait_until(lambda: b.node.statistics().stored_bundles == 0)
            assert b.node.statistics().deleted == {"hop_limit_exceeded": 1}
            nursery.cancel_scope.cancel()


async def test_expiry_deletes_with_a_report_to_report_to(autojump_clock: trio.abc.Clock) -> None:
    def clock() -> float:
        return 1_800_000_000.0 + trio.current_time()

    async with trio.open_nursery() as nursery:
        a = await start_node(nursery, "a", listen=(), clock=clock)
        reports = a.node.register("dtn://a/")
        await a.node.send(
            "dtn://nowhere/x",
            b"doomed",
            lifetime_s=30,
            status_reports=frozenset({StatusKind.DELETED}),
        )
        assert a.node.statistics().pending_forward == 1
        with trio.fail_after(60):
            delivery = await reports.receive()
        record = admin_record_from_bundle(delivery.bundle)
        assert isinstance(record, BundleStatusReport)
        assert record.asserted_kinds == (StatusKind.DELETED,)
        assert record.reason == StatusReportReason.LIFETIME_EXPIRED
        assert trio.current_time() >= 30
        await delivery.done()
        stats = a.node.statistics()
        assert stats.deleted == {"lifetime_expired": 1}
        assert (stats.stored_bundles, stats.reports_sent, stats.reports_received) == (0, 1, 1)
        nursery.cancel_scope.cancel()


async def test_status_reports_along_the_way() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c")
            b = await start_node(nursery, "b", static_peers=(c.address,))
            a = await start_node(nursery, "a", static_peers=(b.address,))
            a.node.add_route("dtn://c/*", "dtn://b/")
            reports = a.node.register("dtn://a/")
            inbox = c.node.register("dtn://c/in")
            await a.node.send(
                "dtn://c/in",
                b"tracked",
                status_reports=frozenset(StatusKind),
            )
            delivery = await inbox.receive()
            await delivery.done()
            expected = {
                ("dtn://a/", StatusKind.FORWARDED),
                ("dtn://b/", StatusKind.RECEIVED),
                ("dtn://b/", StatusKind.FORWARDED),
                ("dtn://c/", StatusKind.RECEIVED),
                ("dtn://c/", StatusKind.DELIVERED),
            }
            seen = set()
            while len(seen) < len(expected):
                report = await reports.receive()
                record = admin_record_from_bundle(report.bundle)
                assert isinstance(record, BundleStatusReport)
                seen.add((str(report.source), record.asserted_kinds[0]))
                await report.done()
            assert seen == expected
            nursery.cancel_scope.cancel()


async def test_full_store_refuses_then_accepts_when_space_frees() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", store_quota_bytes=2500)
            a = await start_node(nursery, "a", static_peers=(b.address,))
            payloads = [bytes([i]) * 1000 for i in range(5)]
            for payload in payloads:
                await a.node.send("dtn://b/app", payload)
            await wait_until(lambda: b.node.statistics().refused_transfers > 0)
            assert b.node.statistics().stored_bundles == 2
            await wait_until(lambda: a.node.statistics().stored_bundles == 3)
            registration = b.node.register("dtn://b/app")
            received = []
            while len(received) < len(payloads):
                delivery = await registration.receive()
                received.append(delivery.payload)
                await delivery.done()
            assert sorted(received) == payloads
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            assert a.node.statistics().send_failures > 0
            nursery.cancel_scope.cancel()


async def test_transfer_refused_before_its_data_when_announced_too_large() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", store_quota_bytes=10_000)
            async with bare_peer(b) as peer:
                link = peer.link
                # More than one segment: the Transfer Length extension announces the size.
                big = make_bundle("dtn://b/app", b"x" * 20_000).encode()
                handle = link.start_send(big)
                result = await handle.wait()
                assert result.refuse_reason == XferRefuseReason.NO_RESOURCES
            nursery.cancel_scope.cancel()


async def test_registration_close_and_redelivery() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", listen=())
            first = a.node.register("dtn://a/app")
            await a.node.send("dtn://a/app", b"one")
            await a.node.send("dtn://a/app", b"two")
            delivery = await first.receive()
            assert delivery.payload == b"one"
            await first.aclose()  # "one" not confirmed: it stays
            assert [d async for d in first] == []
            second = a.node.register("dtn://a/app")
            payloads = []
            for _ in range(2):
                again = await second.receive()
                payloads.append(again.payload)
                await again.done()
                await again.done()  # idempotent
            assert payloads == [b"one", b"two"]
            assert a.node.statistics().stored_bundles == 0
            assert a.node.statistics().registrations == 1
            nursery.cancel_scope.cancel()


async def test_bundles_waiting_before_registration_come_first(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            store = await SqliteBundleStore.open(tmp_path / "store", quota_bytes=10**7)
            a = await start_node(nursery, "a", listen=(), store=store)
            for i in range(3):
                await a.node.send("dtn://a/app", f"early {i}".encode())
            registration = a.node.register("dtn://a/app")
            await a.node.send("dtn://a/app", b"late")
            payloads = []
            async for delivery in registration:
                payloads.append(delivery.payload)
                await delivery.done()
                if len(payloads) == 4:
                    break
            assert payloads == [b"early 0", b"early 1", b"early 2", b"late"]
            nursery.cancel_scope.cancel()


async def test_forwarding_through_a_durable_store(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c")
            b = await start_node(nursery, "b", workdir=tmp_path / "b", static_peers=(c.address,))
            a = await start_node(nursery, "a", static_peers=(b.address,))
            a.node.add_route("*", "dtn://b/")
            registration = c.node.register("dtn://c/app")
            count = 50
            for i in range(count):
                await a.node.send("dtn://c/app", i.to_bytes(2, "big") * 512)
            got = set()
            while len(got) < count:
                delivery = await registration.receive()
                got.add(int.from_bytes(delivery.payload[:2], "big"))
                await delivery.done()
            assert got == set(range(count))
            await wait_until(lambda: b.node.statistics().stored_bundles == 0)
            assert b.node.statistics().forwarded == count
            nursery.cancel_scope.cancel()


async def test_statistics_before_running_and_repr() -> None:
    node = BundleNode(NodeConfig("ipn:7.0", None))
    stats = node.statistics()
    assert (stats.node_id, stats.stored_bundles, stats.sessions) == ("ipn:7.0", 0, 0)
    assert node.peers() == [] and node.routes() == []
    assert "stopped" in repr(node)


def test_bundle_flags_of_sent_bundles_decode() -> None:
    # make_bundle is what the bare peer sends: sanity of the helper itself.
    bundle = make_bundle("dtn://b/x", b"p", flags=BundleFlags.REPORT_RECEPTION)
    assert decode_bundle(bundle.encode()) == bundle
