"""Custody transfer over BIBE (draft-ietf-dtn-bibect-05) between bundle nodes over TCPCLv4."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from bpv7 import Bundle, BundleFlags, CreationTimestamp
from bpv7.admin import (
    BibePdu,
    CustodyDisposition,
    CustodySignal,
    admin_record_from_bundle,
    encapsulate_bundle,
    encode_admin_record,
)
from convergence.tcpcl.link import TransferOutcome
from ucp_dtn.agent import StatusItem
from ucp_dtn.store import SqliteBundleStore

from .agent_support import BarePeer, bare_peer, make_bundle, start_node, wait_until

TIMEOUT = 20


def signal_bundle(disposition: int, ids: list[int], *, to: str, sequence: int = 0) -> bytes:
    """A custody signal from the bare peer ``dtn://t/``."""
    signal = CustodySignal.for_ids(disposition, ids)
    return Bundle.build(
        source="dtn://t/",
        destination=to,
        payload=encode_admin_record(signal),
        creation=CreationTimestamp(849_000_000_000, 1000 + sequence),
        lifetime_ms=3_600_000 * 1000,
        flags=BundleFlags.ADMIN_RECORD,
    ).encode()


async def next_signal(peer: BarePeer) -> CustodySignal:
    while True:
        bundle = await peer.receive()
        if bundle.is_admin_record:
            record = admin_record_from_bundle(bundle)
            if isinstance(record, CustodySignal):
                return record


async def next_bpdu(peer: BarePeer) -> BibePdu:
    while True:
        bundle = await peer.receive()
        if bundle.is_admin_record:
            record = admin_record_from_bundle(bundle)
            if isinstance(record, BibePdu):
                return record


async def test_custody_travels_hop_by_hop_and_releases_each_copy() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c")
            b = await start_node(nursery, "b", static_peers=(c.address,))
            a = await start_node(nursery, "a", static_peers=(b.address,))
            a.node.add_route("*", "dtn://b/")
            inbox = c.node.register("dtn://c/in")
            await a.node.send("dtn://c/in", b"precious", custody=True)
            delivery = await inbox.receive()
            assert delivery.payload == b"precious"
            await delivery.done()
            await wait_until(lambda: a.node.statistics().custody_released == 1)
            await wait_until(lambda: b.node.statistics().custody_released == 1)
            for running in (a, b, c):
                await wait_until(lambda r=running: r.node.statistics().stored_bundles == 0)  # type: ignore[misc]
            stats_b = b.node.statistics()
            assert (stats_b.custody_accepted, stats_b.custody_signals_sent) == (1, 1)
            assert c.node.statistics().custody_accepted == 1
            assert a.node.statistics().custody_retransmitted == 0
            nursery.cancel_scope.cancel()


async def test_custodian_keeps_the_bundle_until_the_signal_comes() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            # b stores the bundle and acknowledges the transfer but is slow to signal.
            b = await start_node(nursery, "b", custody_signal_delay_s=1.0)
            a = await start_node(nursery, "a", static_peers=(b.address,))
            await a.node.send("dtn://b/app", b"kept", custody=True)
            await wait_until(lambda: b.node.statistics().custody_accepted == 1)
            await wait_until(lambda: a.node.statistics().custody_wait == 1)
            assert a.node.statistics().stored_bundles == 1
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            assert a.node.statistics().custody_released == 1
            nursery.cancel_scope.cancel()


async def test_retransmission_when_the_next_custodian_lost_the_bundle() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", custody_retransmit_s=0.5)
            # b takes the bundle, acknowledges the transfer, and dies before it signals.
            b = await start_node(
                nursery, "b", static_peers=(a.address,), custody_signal_delay_s=60.0
            )
            await a.node.send("dtn://b/app", b"survivor", custody=True)
            await wait_until(lambda: b.node.statistics().custody_accepted == 1)
            await wait_until(lambda: a.node.statistics().custody_wait == 1)
            await b.stop()
            # A new b (empty store) comes up; a's timer fires and it sends the bundle again.
            b = await start_node(nursery, "b", static_peers=(a.address,))
            inbox = b.node.register("dtn://b/app")
            delivery = await inbox.receive()
            assert delivery.payload == b"survivor"
            await delivery.done()
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            stats_a = a.node.statistics()
            assert stats_a.custody_retransmitted >= 1
            assert stats_a.custody_released == 1
            nursery.cancel_scope.cancel()


async def test_duplicate_bpdu_is_signalled_again_but_stored_once() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            inner = make_bundle("dtn://b/app", b"twice")
            async with bare_peer(b) as peer:
                for transmission_id in (5, 6):
                    outer = encapsulate_bundle(
                        inner,
                        source="dtn://t/",
                        destination="dtn://b/",
                        now_dtn_ms=849_000_000_000,
                        sequence=transmission_id,
                        transmission_id=transmission_id,
                        retransmission_time_ms=849_000_060_000,
                    )
                    result = await peer.link.send(outer.encode())
                    assert result.outcome is TransferOutcome.ACKED
                    signal = await next_signal(peer)
                    assert signal.disposition == CustodyDisposition.ACCEPTED
                    assert signal.covers(transmission_id)
            stats = b.node.statistics()
            assert (stats.custody_accepted, stats.duplicates, stats.pending_delivery) == (1, 1, 1)
            assert stats.custody_signals_sent == 2
            nursery.cancel_scope.cancel()


async def test_full_store_refuses_custody_with_depleted_storage() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", store_quota_bytes=500)
            inner = make_bundle("dtn://b/app", b"z" * 1000)
            outer = encapsulate_bundle(
                inner,
                source="dtn://t/",
                destination="dtn://b/",
                now_dtn_ms=849_000_000_000,
                transmission_id=9,
                retransmission_time_ms=849_000_060_000,
            )
            async with bare_peer(b) as peer:
                assert (await peer.link.send(outer.encode())).outcome is TransferOutcome.ACKED
                signal = await next_signal(peer)
            assert signal.disposition == CustodyDisposition.DEPLETED_STORAGE
            assert signal.covers(9)
            stats = b.node.statistics()
            assert (stats.custody_refusals_sent, stats.stored_bundles) == (1, 0)
            nursery.cancel_scope.cancel()


async def test_refused_custody_is_retried_until_accepted() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", store_quota_bytes=1500)
            a = await start_node(nursery, "a", static_peers=(b.address,), custody_retransmit_s=0.3)
            await a.node.send("dtn://b/app", b"1" * 1000)  # fills most of b's store
            await wait_until(lambda: b.node.statistics().stored_bundles == 1)
            await a.node.send("dtn://b/app", b"2" * 1000, custody=True)
            await wait_until(lambda: a.node.statistics().custody_refused >= 1)
            assert b.node.statistics().custody_refusals_sent >= 1
            inbox = b.node.register("dtn://b/app")
            payloads = []
            for _ in range(2):
                delivery = await inbox.receive()
                payloads.append(delivery.payload[:1])
                await delivery.done()
            assert payloads == [b"1", b"2"]
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            assert a.node.statistics().custody_released == 1
            nursery.cancel_scope.cancel()


async def test_custody_refused_for_an_unintelligible_block_deletes_with_a_report() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            reports = a.node.register("dtn://a/")
            async with bare_peer(a) as peer:
                await wait_until(lambda: a.node.statistics().sessions == 1)
                await a.node.send(
                    "dtn://t/x",
                    b"bad luck",
                    custody=True,
                    status_reports=frozenset({StatusItem.DELETED}),
                )
                pdu = await next_bpdu(peer)
                assert pdu.custody_requested
                assert pdu.bundle().payload == b"bad luck"
                refusal = signal_bundle(
                    CustodyDisposition.BLOCK_UNINTELLIGIBLE, [pdu.transmission_id], to="dtn://a/"
                )
                assert (await peer.link.send(refusal)).outcome is TransferOutcome.ACKED
                report = await reports.receive()
                await report.done()
            record = admin_record_from_bundle(report.bundle)
            assert record.reason == 8  # type: ignore[union-attr]
            stats = a.node.statistics()
            assert stats.custody_refused == 1
            assert stats.deleted == {"block_unintelligible": 1}
            assert stats.stored_bundles == 0
            nursery.cancel_scope.cancel()


async def test_custody_signals_for_many_bundles_are_aggregated() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", custody_signal_delay_s=0.3)
            async with bare_peer(b) as peer:
                for tid in range(1, 11):
                    inner = make_bundle("dtn://b/app", b"n", sequence=tid)
                    outer = encapsulate_bundle(
                        inner,
                        source="dtn://t/",
                        destination="dtn://b/",
                        now_dtn_ms=849_000_000_000,
                        sequence=tid,
                        transmission_id=tid,
                        retransmission_time_ms=849_000_060_000,
                    )
                    peer.link.start_send(outer.encode())
                signal = await next_signal(peer)
            assert signal.disposition == CustodyDisposition.ACCEPTED
            assert [(r.first, r.count) for r in signal.ranges] == [(1, 10)]
            assert b.node.statistics().custody_signals_sent == 1
            nursery.cancel_scope.cancel()


async def test_one_signal_releases_its_bundles_in_one_group_commit(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            store = await SqliteBundleStore.open(tmp_path / "a", quota_bytes=10**7)
            # b takes custody of all ten, then answers with one signal for all of them.
            b = await start_node(nursery, "b", custody_signal_delay_s=2.0)
            a = await start_node(nursery, "a", static_peers=(b.address,), store=store)
            for number in range(10):
                await a.node.send("dtn://b/app", f"m{number}".encode(), custody=True)
            await wait_until(lambda: a.node.statistics().custody_wait == 10)
            commits = store.statistics().commits
            # The bundles leave the index before the signal's handler counts them (it awaits
            # the store in between): wait for the count, then nothing may be left.
            await wait_until(lambda: a.node.statistics().custody_released == 10)
            assert a.node.statistics().stored_bundles == 0
            await store.flush()  # the deletions are committed (if nothing took them along)
            # At most one commit per signal (one, unless the ten straddled b's flush), not one
            # per bundle.
            signals = b.node.statistics().custody_signals_sent
            assert 0 < store.statistics().commits - commits <= signals <= 2
            nursery.cancel_scope.cancel()


async def test_an_idle_node_keeps_no_custody_timer(mock_clock: trio.testing.MockClock) -> None:
    # Custody signals wait custody_signal_delay_s (50 ms) for others to the same custodian;
    # with none pending, nothing should wake (it woke 20 times a second on every idle node).
    async with trio.open_nursery() as nursery:
        running = await start_node(nursery, "idle", listen=())
        await trio.testing.wait_all_tasks_blocked()
        delay = running.node.config.custody_signal_delay_s
        assert trio.lowlevel.current_statistics().seconds_to_next_deadline > 10 * delay
        await running.stop()
