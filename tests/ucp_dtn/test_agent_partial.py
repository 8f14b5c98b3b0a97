"""What the agent keeps of transfers cut short (reactive fragmentation, RFC 9171 §5.8 at the
TCPCLv4 acknowledged length) and how it holds incoming transfers: spool files, quota, memory
budget, recovery after a crash. A bare TCPCL peer in the test plays the other side."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from bpv7 import Bundle, decode_bundle
from bpv7.admin import BibePdu, CustodySignal, admin_record_from_bundle, encapsulate_bundle
from bpv7.fragment import fragment_at, reactive_cut, read_bundle_head
from convergence.tcpcl import (
    ContactHeader,
    ExtensionItem,
    MessageReader,
    SegmentFlags,
    SessInit,
    SessionExtensionType,
    XferRefuse,
    XferRefuseReason,
    encode_contact_header,
    encode_message,
    encode_segment_header,
)
from convergence.tcpcl.link import LinkConfig, TcpclLink, TransferOutcome
from convergence.tcpcl.link_errors import LinkClosedError
from convergence.tcpcl.listener import open_link
from ucp_dtn.agent.partial import find_cut
from ucp_dtn.store import BundleState

from .agent_support import RunningNode, bare_peer, make_bundle, start_node, wait_until

TIMEOUT = 30
REACTIVE = (ExtensionItem(SessionExtensionType.REACTIVE_FRAGMENTATION),)
PAYLOAD = bytes(range(256)) * 200  # 51,200 octets


@asynccontextmanager
async def peer_link(node: RunningNode, *, reactive: bool = True) -> AsyncIterator[TcpclLink]:
    """A bare peer ``dtn://t/`` sending in 1,000-octet segments with at most 4,000 octets
    unacknowledged (so that a transfer can be cut in the middle), announcing reactive
    fragmentation unless told not to."""
    config = LinkConfig(
        node_id="dtn://t/",
        keepalive_s=0,
        max_segment_size=1000,
        send_window_min=4000,
        send_window_delay_s=1e-6,
        session_extensions=REACTIVE if reactive else (),
    )

    async def accept_everything(link: TcpclLink) -> None:
        async for transfer in link:  # route advertisements
            await transfer.accept()

    async with open_link(*node.address, config) as link, trio.open_nursery() as nursery:
        nursery.start_soon(accept_everything, link)
        yield link
        nursery.cancel_scope.cancel()


async def _send_part(node: RunningNode, data: bytes, acknowledged: int, *, reactive: bool) -> int:
    """Send ``data`` to ``node`` and break the session as soon as at least ``acknowledged``
    octets were acknowledged; returns how many were."""
    async with peer_link(node, reactive=reactive) as link:

        def cut_when_far_enough(done: int, total: int) -> None:
            if done >= acknowledged:
                link.abort()

        handle = link.start_send(data, cut_when_far_enough)
        with pytest.raises(LinkClosedError):
            await handle.wait()
        assert acknowledged <= handle.acknowledged < len(data)
        return handle.acknowledged


def _spool_files(node: RunningNode) -> list[str]:
    workdir = node.node.config.workdir
    assert workdir is not None
    spool = workdir / "spool"
    return sorted(path.name for path in spool.iterdir()) if spool.exists() else []


async def test_the_acknowledged_prefix_is_kept_and_the_rest_completes_it(tmp_path: Path) -> None:
    bundle = make_bundle("dtn://b/app", PAYLOAD)
    data = bundle.encode()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            # A small spool threshold: the transfer goes to a file.
            b = await start_node(nursery, "b", workdir=tmp_path / "b", spool_threshold_bytes=4096)
            registration = b.node.register("dtn://b/app")
            acknowledged = await _send_part(b, data, 20_000, reactive=True)
            await wait_until(lambda: b.node.statistics().partial_kept == 1)
            statistics = b.node.statistics()
            assert statistics.stored_bundles == 1 and statistics.incoming_transfers == 0
            assert _spool_files(b) == []
            # The sender derives its cut from what it saw acknowledged and sends the rest.
            head = read_bundle_head(data)
            assert head is not None
            cut = reactive_cut(head, acknowledged)
            assert 0 < cut < len(PAYLOAD)
            assert statistics.partial_kept_bytes >= cut
            rest = fragment_at(bundle, [cut])[1]
            async with peer_link(b) as link:
                assert (await link.send(rest.encode())).outcome is TransferOutcome.ACKED
            with trio.fail_after(5):
                delivery = await registration.receive()
            assert delivery.payload == PAYLOAD
            assert delivery.bundle_id == bundle.bundle_id
            await delivery.done()
            await wait_until(lambda: b.node.statistics().stored_bundles == 0)
            assert b.node.statistics().reassembled == 1
            nursery.cancel_scope.cancel()


async def test_nothing_is_kept_for_a_peer_that_did_not_announce_it(tmp_path: Path) -> None:
    data = make_bundle("dtn://b/app", PAYLOAD).encode()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", workdir=tmp_path / "b", spool_threshold_bytes=4096)
            await _send_part(b, data, 20_000, reactive=False)
            # The peer will send it whole again: the partial transfer is dropped.
            await wait_until(lambda: b.node.statistics().incoming_transfers == 0)
            await wait_until(lambda: _spool_files(b) == [])
            statistics = b.node.statistics()
            assert (statistics.partial_kept, statistics.stored_bundles) == (0, 0)
            assert b.node.receive_budget() is not None
            nursery.cancel_scope.cancel()


async def test_a_custodial_bpdu_cut_short_keeps_the_encapsulated_prefix_in_custody(
    tmp_path: Path,
) -> None:
    inner = make_bundle("dtn://b/app", PAYLOAD)
    outer = encapsulate_bundle(
        inner,
        source="dtn://t/",
        destination="dtn://b/",
        now_dtn_ms=849_000_000_000,
        transmission_id=9,
        retransmission_time_ms=849_000_060_000,
    )
    data = outer.encode()
    cut = find_cut(data, 30_000)
    assert cut is not None and cut.custody and cut.base > 0 and cut.cut > 0
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", workdir=tmp_path / "b")
            registration = b.node.register("dtn://b/app")
            await _send_part(b, data, 30_000, reactive=True)
            await wait_until(lambda: b.node.statistics().partial_kept == 1)
            kept = await b.node._running_core().store.query(states={BundleState.PENDING_DELIVERY})
            assert len(kept) == 1 and kept[0].custody  # b is custodian of the prefix
            # The custodian sends the rest of the encapsulated bundle in a new BPDU.
            acknowledged_cut = find_cut(data, 30_000)
            assert acknowledged_cut is not None
            rest = fragment_at(inner, [acknowledged_cut.cut])[1]
            second = encapsulate_bundle(
                rest,
                source="dtn://t/",
                destination="dtn://b/",
                now_dtn_ms=849_000_000_000,
                sequence=1,
                transmission_id=10,
                retransmission_time_ms=849_000_060_000,
            )
            async with bare_peer(b) as peer:
                assert (await peer.link.send(second.encode())).outcome is TransferOutcome.ACKED
                signal = await _next_signal(peer.bundles)
            assert signal.covers(10) and not signal.covers(9)
            with trio.fail_after(5):
                delivery = await registration.receive()
            assert delivery.payload == PAYLOAD
            await delivery.done()
            nursery.cancel_scope.cancel()


async def _next_signal(bundles: trio.MemoryReceiveChannel[Bundle]) -> CustodySignal:
    with trio.fail_after(5):
        while True:
            record = admin_record_from_bundle(await bundles.receive())
            if isinstance(record, CustodySignal):
                return record
            assert not isinstance(record, BibePdu)


async def test_spool_files_left_by_a_crash_become_fragments_at_start(tmp_path: Path) -> None:
    bundle = make_bundle("dtn://b/app", PAYLOAD)
    data = bundle.encode()
    spool = tmp_path / "b" / "spool"
    spool.mkdir(parents=True)
    (spool / "left.part").write_bytes(data[:30_000])
    (spool / "left.json").write_text(json.dumps({"peer": "dtn://t/", "reactive": True}))
    (spool / "whole.done").write_bytes(make_bundle("dtn://b/app", b"done", sequence=1).encode())
    (spool / "whole.json").write_text(json.dumps({"peer": "dtn://t/", "reactive": False}))
    (spool / "junk.part").write_bytes(b"not a bundle")
    (spool / "junk.json").write_text(json.dumps({"peer": "dtn://t/", "reactive": True}))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", workdir=tmp_path / "b")
            statistics = b.node.statistics()
            assert statistics.spool_recovered == 3
            # The interrupted transfer's prefix as a fragment, the complete one as a bundle.
            assert statistics.partial_kept == 1 and statistics.stored_bundles == 2
            assert _spool_files(b) == []
            registration = b.node.register("dtn://b/app")
            with trio.fail_after(5):
                delivery = await registration.receive()
            assert delivery.payload == b"done"
            await delivery.done()
            nursery.cancel_scope.cancel()


# -- holding incoming transfers: quota and memory ----------------------------------------------


async def _raw_transfer(
    address: tuple[str, int], octets: int, *, segment: int, name: str
) -> list[object]:
    """A bare peer that sends ``octets`` of one transfer (no END, no Transfer Length) and then
    waits; returns the messages the node answered (filled in as they come)."""
    answers: list[object] = []
    stream = await trio.open_tcp_stream(*address)
    async with stream, trio.open_nursery() as nursery:

        async def read() -> None:
            reader = MessageReader()
            while data := await stream.receive_some(65536):
                reader.feed(data)
                while (message := reader.next_message()) is not None:
                    answers.append(message)

        nursery.start_soon(read)
        await stream.send_all(
            encode_contact_header(ContactHeader())
            + encode_message(SessInit(0, 1 << 20, 1 << 30, f"dtn://{name}/"))
        )
        chunk = os.urandom(segment)
        for index in range(0, octets, segment):
            flags = SegmentFlags.START if index == 0 else SegmentFlags(0)
            try:
                await stream.send_all(encode_segment_header(flags, 0, segment) + chunk)
            except trio.BrokenResourceError:
                break
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    return answers


async def test_memory_for_incoming_transfers_is_bounded_however_many_sessions(
    tmp_path: Path,
) -> None:
    budget = 256 * 1024
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(
                nursery,
                "b",
                workdir=tmp_path / "b",
                receive_memory_bytes=budget,
                segment_bytes=64 * 1024,
                spool_threshold_bytes=64 * 1024,
            )
            registration = b.node.register("dtn://b/app")
            spooled: list[int] = []

            async def watch() -> None:
                while True:
                    spooled.append(b.node.statistics().incoming_spooled_bytes)
                    await trio.sleep(0.01)

            nursery.start_soon(watch)
            async with trio.open_nursery() as floods:
                for index in range(4):
                    floods.start_soon(
                        functools.partial(_raw_transfer, segment=64 * 1024, name=f"f{index}"),
                        b.address,
                        3_000_000,
                    )
                # Meanwhile another peer's bundle gets through.
                async with bare_peer(b) as peer:
                    small = make_bundle("dtn://b/app", b"still served")
                    assert (await peer.link.send(small.encode())).outcome is TransferOutcome.ACKED
                with trio.fail_after(10):
                    delivery = await registration.receive()
                assert delivery.payload == b"still served"
                await delivery.done()
            statistics = b.node.receive_budget()
            assert statistics is not None and 0 < statistics.peak <= budget
            # The transfers went to spool files, and were dropped when their sessions ended.
            assert max(spooled) >= 4 * 2_000_000
            await wait_until(lambda: b.node.statistics().incoming_transfers == 0)
            await wait_until(lambda: _spool_files(b) == [])
            assert b.node._running_core().store.statistics().reserved_bytes == 0
            nursery.cancel_scope.cancel()


async def test_a_transfer_that_outgrows_the_quota_is_refused_mid_way(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(
                nursery,
                "b",
                workdir=tmp_path / "b",
                store_quota_bytes=200_000,
                segment_bytes=64 * 1024,
                spool_threshold_bytes=64 * 1024,
            )
            answers = await _raw_transfer(b.address, 1_000_000, segment=64 * 1024, name="big")
            # RFC 9174 §5.2.4: XFER_REFUSE "No Resources" as soon as the quota is reached, with
            # the segments before it acknowledged; the spool never held more than the quota.
            refusals = [a for a in answers if isinstance(a, XferRefuse)]
            assert refusals and refusals[0].reason == XferRefuseReason.NO_RESOURCES
            assert b.node.statistics().refused_transfers >= 1
            await wait_until(lambda: _spool_files(b) == [])
            assert b.node._running_core().store.statistics().reserved_bytes == 0
            nursery.cancel_scope.cancel()


async def test_a_fragment_of_a_bundle_already_delivered_is_a_duplicate(tmp_path: Path) -> None:
    bundle = make_bundle("dtn://b/app", PAYLOAD)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            registration = b.node.register("dtn://b/app")
            async with bare_peer(b) as peer:
                assert (await peer.link.send(bundle.encode())).outcome is TransferOutcome.ACKED
                delivery = await registration.receive()
                await delivery.done()
                # A prefix kept elsewhere after a cut, then forwarded here: nothing new.
                first, rest = fragment_at(bundle, [10_000])
                for piece in (first, rest):
                    result = await peer.link.send(piece.encode())
                    assert result.outcome is TransferOutcome.ACKED
            await wait_until(lambda: b.node.statistics().duplicates == 2)
            assert b.node.statistics().delivered == 1 and b.node.statistics().stored_bundles == 0
            # The other way round: fragments first, then the whole bundle sent again.
            second = make_bundle("dtn://b/app", PAYLOAD, sequence=5)
            head, _ = fragment_at(second, [10_000])
            async with bare_peer(b) as peer:
                await peer.link.send(head.encode())
                await wait_until(lambda: b.node.statistics().stored_bundles == 1)
                await peer.link.send(second.encode())
            delivery = await registration.receive()
            assert delivery.payload == PAYLOAD
            await delivery.done()
            # The whole one is delivered once; the fragment collected of it is dropped.
            await wait_until(lambda: b.node.statistics().stored_bundles == 0)
            assert decode_bundle(second.encode()).payload == PAYLOAD
            nursery.cancel_scope.cancel()
