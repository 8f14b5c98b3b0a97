"""Incoming transfers into sinks (convergence.tcpcl.sink): a segment is acknowledged only once
its sink took it, a sink can refuse mid-transfer, a cut transfer goes back to its sink with the
length that was acknowledged, a shared receive budget bounds memory across links, and the send
window bounds what is unacknowledged."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from convergence.tcpcl import XferRefuseReason
from convergence.tcpcl.link import LinkConfig, TransferOutcome
from convergence.tcpcl.link_errors import LinkClosedError
from convergence.tcpcl.sink import (
    IncomingTransferStart,
    MemorySink,
    ReceiveBudget,
    SinkRefusal,
    TransferSink,
)

from .link_fixtures import link_pair

TIMEOUT = 30
SEGMENT = 1000


class RecordingSink(MemorySink):
    """A memory sink that records its calls and can be held up or told to refuse."""

    def __init__(
        self,
        log: list[tuple[str, int]],
        *,
        refuse_after: int | None = None,
        hold_after: int | None = None,
    ) -> None:
        super().__init__()
        self.log = log
        self.gate: trio.Event | None = None
        self.refuse_after = refuse_after
        self.hold_after = hold_after
        self.released = trio.Event()

    async def write(self, data: bytes | memoryview) -> None:
        if self.hold_after is not None and self.size >= self.hold_after:
            await self.released.wait()
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse_after is not None and self.size + len(data) > self.refuse_after:
            raise SinkRefusal(XferRefuseReason.NO_RESOURCES, "full")
        await super().write(data)
        self.log.append(("write", self.size))

    async def finish(self) -> None:
        self.log.append(("finish", self.size))

    async def abandon(self, acknowledged: int) -> None:
        self.log.append(("abandon", acknowledged))
        self.log.append(("held", self.size))
        await super().abandon(acknowledged)


def _config(name: str, **kwargs: object) -> LinkConfig:
    return LinkConfig(name, max_segment_size=SEGMENT, **kwargs)  # type: ignore[arg-type]


async def test_segments_are_acknowledged_only_once_the_sink_took_them() -> None:
    log: list[tuple[str, int]] = []
    sinks: list[RecordingSink] = []

    def factory(start: IncomingTransferStart) -> TransferSink:
        sink = RecordingSink(log)
        sink.gate = trio.Event()
        sinks.append(sink)
        return sink

    progress: list[int] = []
    with trio.fail_after(TIMEOUT):
        async with link_pair(_config("dtn://a/"), _config("dtn://b/", sink_factory=factory)) as (
            a,
            b,
        ):
            handle = a.start_send(b"x" * 5500, lambda done, total: progress.append(done))
            await trio.testing.wait_all_tasks_blocked()
            # The sink holds the first segment: nothing may be acknowledged yet.
            assert handle.acknowledged == 0 and log == []
            assert sinks[0].log is log
            sinks[0].gate.set()  # type: ignore[union-attr]
            transfer = await b.receive()
            assert transfer.length == 5500 and await transfer.read() == b"x" * 5500
            assert [entry for entry in log if entry[0] == "write"] == [
                ("write", n) for n in (1000, 2000, 3000, 4000, 5000, 5500)
            ]
            assert log[-1] == ("finish", 5500)
            await trio.testing.wait_all_tasks_blocked()
            # Every segment but the last is acknowledged; the last waits for accept().
            assert progress == [1000, 2000, 3000, 4000, 5000]
            await transfer.accept()
            result = await handle.wait()
            assert result.outcome is TransferOutcome.ACKED


async def test_a_sink_refuses_mid_transfer() -> None:
    log: list[tuple[str, int]] = []

    def factory(start: IncomingTransferStart) -> TransferSink:
        return RecordingSink(log, refuse_after=2500)

    with trio.fail_after(TIMEOUT):
        async with link_pair(_config("dtn://a/"), _config("dtn://b/", sink_factory=factory)) as (
            a,
            b,
        ):
            result = await a.send(b"y" * 8000)
            assert result.outcome is TransferOutcome.REFUSED
            assert result.refuse_reason == XferRefuseReason.NO_RESOURCES
            # The session goes on: a small transfer still arrives.
            handle = a.start_send(b"small")
            transfer = await b.receive()
            assert transfer.data == b"small"
            await transfer.accept()
            assert (await handle.wait()).outcome is TransferOutcome.ACKED
    assert ("write", 2000) in log and ("write", 3000) not in log


async def test_a_cut_transfer_goes_back_to_its_sink_with_what_was_acknowledged() -> None:
    log: list[tuple[str, int]] = []
    sinks: list[RecordingSink] = []

    def factory(start: IncomingTransferStart) -> TransferSink:
        sinks.append(RecordingSink(log, hold_after=3000))  # the 4th write waits
        return sinks[-1]

    with trio.fail_after(TIMEOUT):
        async with link_pair(_config("dtn://a/"), _config("dtn://b/", sink_factory=factory)) as (
            a,
            b,
        ):
            handle = a.start_send(b"z" * 10_000)
            while handle.acknowledged < 3000:
                await trio.sleep(0.001)
            await trio.testing.wait_all_tasks_blocked()
            a.abort()
            with pytest.raises(LinkClosedError):
                await handle.wait()
            # The 4th segment arrived before the cut; its write finishes after the cut, so
            # its acknowledgement never reaches the sender.
            sinks[0].released.set()
            await b.wait_closed()
    assert handle.acknowledged == 3000
    # The receiver acknowledged at least what the sender saw acknowledged (acknowledgements
    # can be lost), and holds at least what it acknowledged (here: all it read before the
    # end of the stream).
    (abandoned,) = [n for what, n in log if what == "abandon"]
    (held,) = [n for what, n in log if what == "held"]
    assert handle.acknowledged <= abandoned <= held and held >= 4000


async def test_a_complete_transfer_nobody_took_goes_back_to_its_sink() -> None:
    log: list[tuple[str, int]] = []

    def factory(start: IncomingTransferStart) -> TransferSink:
        return RecordingSink(log)

    with trio.fail_after(TIMEOUT):
        async with link_pair(_config("dtn://a/"), _config("dtn://b/", sink_factory=factory)) as (
            a,
            b,
        ):
            handle = a.start_send(b"q" * 4500)
            while handle.acknowledged < 4000:
                await trio.sleep(0.001)
            await trio.testing.wait_all_tasks_blocked()
            assert b.statistics().incoming_queued == 1
            a.abort()
            with pytest.raises(LinkClosedError):
                await handle.wait()
    # Complete, never taken by a consumer: handed back whole (the final XFER_ACK was not sent).
    assert log[-3:] == [("finish", 4500), ("abandon", 4000), ("held", 4500)]


async def test_a_shared_receive_budget_bounds_memory_across_links() -> None:
    budget = ReceiveBudget(4 * SEGMENT)
    peak = 0

    def factory(start: IncomingTransferStart) -> TransferSink:
        return MemorySink()

    receiver = _config("dtn://b/", sink_factory=factory, receive_budget=budget, segment_mru=SEGMENT)
    payloads = [bytes([n]) * 20_000 for n in range(3)]
    with trio.fail_after(TIMEOUT):
        async with (
            link_pair(_config("dtn://a/"), receiver) as (a1, b1),
            link_pair(_config("dtn://c/"), receiver) as (a2, b2),
            link_pair(_config("dtn://d/"), receiver) as (a3, b3),
            trio.open_nursery() as nursery,
        ):

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, budget.in_use)
                    await trio.sleep(0)

            nursery.start_soon(watch)
            for sender, payload in zip((a1, a2, a3), payloads, strict=True):
                sender.start_send(payload)
            for link, payload in zip((b1, b2, b3), payloads, strict=True):
                transfer = await link.receive()
                assert transfer.data == payload
                await transfer.accept()
            nursery.cancel_scope.cancel()
    statistics = budget.statistics()
    assert statistics.peak <= budget.limit and peak <= budget.limit
    assert statistics.peak > 0


async def test_receive_budget_waits_first_come_first_served() -> None:
    budget = ReceiveBudget(10)
    order: list[str] = []
    await budget.acquire(8)
    async with trio.open_nursery() as nursery:

        async def want(name: str, octets: int) -> None:
            await budget.acquire(octets)
            order.append(name)

        nursery.start_soon(want, "first", 5)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(want, "second", 1)
        await trio.testing.wait_all_tasks_blocked()
        # "second" would fit, but waits behind "first".
        assert order == [] and not budget.try_acquire(1)
        budget.release(3)  # room for "first" only
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["first"] and budget.in_use == 10
        budget.release(5)
    assert order == ["first", "second"]
    assert budget.in_use == 6
    # A request larger than the whole budget is granted once nothing is held.
    budget.release(6)
    await budget.acquire(50)
    assert budget.statistics().peak == 50


async def test_the_send_window_bounds_unacknowledged_octets() -> None:
    sinks: list[RecordingSink] = []

    def factory(start: IncomingTransferStart) -> TransferSink:
        sink = RecordingSink([])
        sink.gate = trio.Event()
        sinks.append(sink)
        return sink

    sender = _config("dtn://a/", send_window_min=3 * SEGMENT)
    with trio.fail_after(TIMEOUT):
        async with link_pair(sender, _config("dtn://b/", sink_factory=factory)) as (a, b):
            handle = a.start_send(b"w" * 50_000)
            await trio.testing.wait_all_tasks_blocked()
            # The receiver holds the first segment: the sender stops at its window.
            statistics = a.statistics()
            assert statistics.in_flight == 3 * SEGMENT
            assert statistics.send_window == 3 * SEGMENT
            (outgoing,) = statistics.transfers
            assert outgoing.outgoing and outgoing.total == 50_000 and outgoing.done == 0
            (incoming,) = b.statistics().transfers
            assert not incoming.outgoing and incoming.total == 50_000
            sinks[0].gate.set()  # type: ignore[union-attr]
            transfer = await b.receive()
            await transfer.accept()
            assert (await handle.wait()).outcome is TransferOutcome.ACKED
            assert a.statistics().in_flight == 0
