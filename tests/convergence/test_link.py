"""The TCPCLv4 trio adapter: sessions over real loopback sockets and in-memory streams —
transfers both ways, held-back final acknowledgements, refusals, receive backpressure,
unacknowledged transfers after a session ends, establishment failures."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from convergence.tcpcl import (
    ContactHeader,
    LocalProtocolError,
    SessInit,
    SessionState,
    SessTermReason,
    XferRefuseReason,
    encode_contact_header,
    encode_message,
)
from convergence.tcpcl.link import (
    LinkConfig,
    TcpclLink,
    TransferHandle,
    TransferOutcome,
    TransferResult,
)
from convergence.tcpcl.link_errors import (
    EstablishmentError,
    LinkClosedError,
    LinkConnectError,
    TransferTooLargeError,
)
from convergence.tcpcl.listener import TcpclListener, open_link, open_stream_link

from .link_fixtures import link_pair

TIMEOUT = 30
A = LinkConfig("dtn://a/")
B = LinkConfig("dtn://b/")


@asynccontextmanager
async def _listening(
    config: LinkConfig, handler: Callable[[TcpclLink], Awaitable[None]]
) -> AsyncIterator[tuple[TcpclListener, int]]:
    listener = TcpclListener(config, handler)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(listener.run)
        yield listener, port
        nursery.cancel_scope.cancel()


async def _consume(link: TcpclLink, into: list[bytes]) -> None:
    async for transfer in link:
        into.append(transfer.data)
        await transfer.accept()


def _bundles(seed: int, count: int, largest: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(int(largest ** rng.random())) for _ in range(count)]


# -- transfers ---------------------------------------------------------------------------------


async def test_bundles_cross_a_loopback_session_in_order() -> None:
    received: list[bytes] = []
    bundles = [b"", b"x", *_bundles(1, 30, 3_000_000)]

    async def handler(link: TcpclLink) -> None:
        assert link.peer_node_id == "dtn://a/" and not link.active
        await _consume(link, received)

    with trio.fail_after(TIMEOUT):
        async with _listening(B, handler) as (listener, port):
            async with open_link("127.0.0.1", port, A) as link:
                assert link.active and not link.tls
                assert link.peer_address == ("127.0.0.1", port)
                assert "dtn://b/" in repr(link)
                handles = [link.start_send(b) for b in bundles]
                results = [await h.wait() for h in handles]
                stats = link.statistics()
            assert [r.outcome for r in results] == [TransferOutcome.ACKED] * len(bundles)
            assert [r.transfer_id for r in results] == list(range(len(bundles)))
            assert all(h.done and h.acknowledged == h.size for h in handles)
            assert stats.transfers_sent == len(bundles)
            assert stats.bytes_sent > sum(map(len, bundles))
            assert (await link.wait_closed()).clean
            assert link.statistics().state is SessionState.CLOSED
            # The handler's iteration ended when we closed the session.
            assert received == bundles
            assert listener.statistics().established == 1


async def test_transfers_in_both_directions_at_once() -> None:
    ours = _bundles(2, 40, 2_000_000)
    theirs = _bundles(3, 40, 2_000_000)
    got_theirs: list[bytes] = []
    got_ours: list[bytes] = []

    async def handler(link: TcpclLink) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_consume, link, got_ours)
            for data in theirs:
                link.start_send(data)
            await link.wait_closed()

    with trio.fail_after(TIMEOUT):
        async with (
            _listening(B, handler) as (_, port),
            open_link("127.0.0.1", port, A) as link,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_consume, link, got_theirs)
            for data in ours:
                await link.send(data)
            while len(got_theirs) < len(theirs):
                await trio.sleep(0.01)
            await link.aclose()  # ends the consumer's iteration
    assert got_ours == ours
    assert got_theirs == theirs


async def test_final_ack_waits_for_accept_and_progress_is_reported() -> None:
    config = LinkConfig("dtn://a/", max_segment_size=1000)
    progress: list[tuple[int, int]] = []
    async with link_pair(config, B) as (a, b):
        handle = a.start_send(b"z" * 3500, lambda done, total: progress.append((done, total)))
        transfer = await b.receive()
        assert transfer.data == b"z" * 3500 and transfer.transfer_id == handle.transfer_id
        await trio.testing.wait_all_tasks_blocked()
        # Every segment but the last is acknowledged at once; the final XFER_ACK waits.
        assert not handle.done
        assert handle.acknowledged == 3000
        assert progress == [(1000, 3500), (2000, 3500), (3000, 3500)]
        await transfer.accept()
        assert await handle.wait() == TransferResult(TransferOutcome.ACKED, None, 0)
        assert progress[-1] == (3500, 3500)
        with pytest.raises(LocalProtocolError, match="already resolved"):
            await transfer.accept()


async def test_receive_many_takes_every_waiting_transfer_up_to_its_limit() -> None:
    with trio.fail_after(TIMEOUT):
        async with link_pair(A, LinkConfig("dtn://b/", incoming_queue=16)) as (ours, theirs):
            handles = [ours.start_send(bytes([n]) * 10) for n in range(5)]
            while theirs.statistics().incoming_queued < 5:
                await trio.sleep(0.01)
            with pytest.raises(ValueError, match="limit"):
                await theirs.receive_many(0)
            first = await theirs.receive_many(3)
            rest = await theirs.receive_many(10)
            assert [t.data for t in first + rest] == [bytes([n]) * 10 for n in range(5)]
            for transfer in first + rest:
                await transfer.accept()
            results = [await handle.wait() for handle in handles]
            assert {r.outcome for r in results} == {TransferOutcome.ACKED}
            await ours.aclose()
            with pytest.raises(LinkClosedError):
                await theirs.receive_many(1)


async def test_refused_transfer() -> None:
    async with link_pair(A, B) as (a, b):
        handle = a.start_send(b"unwanted")
        transfer = await b.receive()
        await transfer.refuse(XferRefuseReason.NOT_ACCEPTABLE)
        result = await handle.wait()
        assert result.outcome is TransferOutcome.REFUSED
        assert result.refuse_reason is XferRefuseReason.NOT_ACCEPTABLE
        assert handle.result == result
        assert b.statistics().transfers_refused_by_us == 1
        assert a.statistics().transfers_refused_by_peer == 1
        with pytest.raises(LocalProtocolError, match="already resolved"):
            await transfer.refuse()
        # The session goes on.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_consume, b, [])
            assert (await a.send(b"wanted")).outcome is TransferOutcome.ACKED
            await a.aclose()


async def test_transfer_filter_refuses_on_announced_length() -> None:
    seen: list[int | None] = []

    def quota(length: int | None) -> XferRefuseReason | None:
        seen.append(length)
        return XferRefuseReason.NO_RESOURCES if length is not None and length > 5000 else None

    sender = LinkConfig("dtn://a/", max_segment_size=1000)
    receiver = LinkConfig("dtn://b/", transfer_filter=quota)
    async with link_pair(sender, receiver) as (a, b), trio.open_nursery() as nursery:
        received: list[bytes] = []
        nursery.start_soon(_consume, b, received)
        big = a.start_send(b"B" * 100_000)
        small = a.start_send(b"s" * 10)
        assert (await big.wait()).refuse_reason is XferRefuseReason.NO_RESOURCES
        assert (await small.wait()).outcome is TransferOutcome.ACKED
        # One segment carries no Transfer Length item (RFC 9174 §5.2.5.1).
        assert seen == [100_000, None]
        assert received == [b"s" * 10]
        await a.aclose()


async def test_failing_transfer_filter_refuses(caplog: pytest.LogCaptureFixture) -> None:
    def broken(length: int | None) -> XferRefuseReason | None:
        raise RuntimeError("quota service down")

    async with link_pair(A, LinkConfig("dtn://b/", transfer_filter=broken)) as (a, _):
        result = await a.send(b"data")
        assert result.refuse_reason is XferRefuseReason.UNKNOWN
    assert "transfer filter failed" in caplog.text


async def test_failing_progress_callback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(done: int, total: int) -> None:
        raise RuntimeError("boom")

    async with link_pair(A, B) as (a, b), trio.open_nursery() as nursery:
        nursery.start_soon(_consume, b, [])
        assert (await a.send(b"data", broken)).outcome is TransferOutcome.ACKED
        await a.aclose()
    assert "progress callback of transfer 0 failed" in caplog.text


async def test_receive_backpressure_stops_reading() -> None:
    size = 100_000
    receiver = LinkConfig("dtn://b/", incoming_queue=2)
    async with link_pair(A, receiver, streams=trio.testing.lockstep_stream_pair) as (a, b):
        handles = [a.start_send(bytes([i]) * size) for i in range(30)]
        await trio.testing.wait_all_tasks_blocked()
        # Two complete transfers wait for the consumer: the reader stopped there, so the
        # sender is stuck too.
        received = b.statistics().bytes_received
        assert 2 * size < received < 3 * size
        assert b.statistics().incoming_queued == 2
        assert a.statistics().transfers_pending == 30
        assert not any(h.done for h in handles)
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_consume, b, got)
            for handle in handles:
                await handle.wait()
            await a.aclose()
        assert got == [bytes([i]) * size for i in range(30)]


# -- ending ------------------------------------------------------------------------------------


async def test_lost_session_reports_unacknowledged_transfers() -> None:
    bundles = [bytes([i]) * 5000 for i in range(6)]
    async with link_pair(A, B) as (a, b):
        handles = [a.start_send(data) for data in bundles]
        first = await b.receive()
        await first.accept()
        assert (await handles[0].wait()).outcome is TransferOutcome.ACKED
        await b.receive()  # received but never accepted: not acknowledged
        assert a.unacknowledged() == bundles[1:]
        b.abort()
        for handle in handles[1:]:
            with pytest.raises(LinkClosedError, match="ended before the transfer completed"):
                await handle.wait()
        closed = await a.wait_closed()
        assert not closed.clean
        assert a.unacknowledged() == bundles[1:]
        with pytest.raises(LinkClosedError):
            a.start_send(b"late")
        with pytest.raises(LinkClosedError):
            await a.receive()


async def test_done_callbacks_see_every_ending(caplog: pytest.LogCaptureFixture) -> None:
    ended: list[tuple[str, TransferResult | None]] = []

    def note(name: str) -> Callable[[TransferHandle], None]:
        return lambda handle: ended.append((name, handle.result))

    def broken(handle: TransferHandle) -> None:
        raise RuntimeError("callback bug")

    async with link_pair(A, B) as (a, b):
        acked, refused, lost = (a.start_send(data) for data in (b"acked", b"refused", b"lost"))
        acked.add_done_callback(broken)  # logged; the link and the other callbacks go on
        acked.add_done_callback(note("acked"))
        refused.add_done_callback(note("refused"))
        lost.add_done_callback(note("lost"))
        await (await b.receive()).accept()
        await (await b.receive()).refuse(XferRefuseReason.NOT_ACCEPTABLE)
        assert (await refused.wait()).outcome is TransferOutcome.REFUSED
        assert ended == [
            ("acked", TransferResult(TransferOutcome.ACKED, None, 0)),
            (
                "refused",
                TransferResult(TransferOutcome.REFUSED, XferRefuseReason.NOT_ACCEPTABLE, 1),
            ),
        ]
        await b.receive()  # never answered: lost with the session
        b.abort()
        await a.wait_closed()
        assert ended[2:] == [("lost", None)]
        # Added after the end: called at once.
        acked.add_done_callback(note("late"))
        assert ended[3:] == [("late", acked.result)]
    assert "done callback of transfer 0 failed" in caplog.text


async def test_aclose_lets_transfers_in_progress_finish() -> None:
    # Segments this large are written one by one (small messages are batched).
    sender = LinkConfig("dtn://a/", max_segment_size=100_000)
    receiver = LinkConfig("dtn://b/", incoming_queue=1)
    async with link_pair(sender, receiver, streams=trio.testing.lockstep_stream_pair) as (a, b):
        got: list[bytes] = []
        # X fills the receiver's channel, Y waits to enter it, so the reader stops and the
        # big one is stuck in its first segment: started. The last two never start.
        bundles = [b"X", b"Y", b"1" * 300_000, b"2" * 10, b"3" * 10]
        handles = [a.start_send(data) for data in bundles]
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_consume, b, got)
            await a.aclose(SessTermReason.IDLE_TIMEOUT)
        for handle in handles[:3]:
            assert (await handle.wait()).outcome is TransferOutcome.ACKED
        for handle in handles[3:]:
            with pytest.raises(LinkClosedError):
                await handle.wait()
        assert got == bundles[:3]
        closed = await a.wait_closed()
        assert closed.clean and closed.reason is SessTermReason.IDLE_TIMEOUT
        assert a.unacknowledged() == bundles[3:]
        assert (await b.wait_closed()).clean


async def test_aclose_gives_up_on_a_consumer_that_never_accepts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with link_pair(LinkConfig("dtn://a/", close_timeout_s=5), B) as (a, b):
        handle = a.start_send(b"held")
        await b.receive()
        start = trio.current_time()
        await a.aclose()
        assert trio.current_time() - start == pytest.approx(5)
        assert not (await a.wait_closed()).clean
        with pytest.raises(LinkClosedError):
            await handle.wait()


async def test_peer_closing_ends_iteration() -> None:
    async with link_pair(A, B) as (a, b):
        await b.aclose()
        assert [t async for t in a] == []
        assert (await a.wait_closed()).clean


async def test_body_exception_aborts_the_session() -> None:
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        server_closed: list[bool] = []

        async def serve() -> None:
            async with open_stream_link(right, B, active=False) as link:
                server_closed.append((await link.wait_closed()).clean)

        nursery.start_soon(serve)
        with pytest.raises(ValueError, match="application bug"):
            async with open_stream_link(left, A, active=True):
                raise ValueError("application bug")
    assert server_closed == [False]


async def test_transfer_too_large_for_peer() -> None:
    async with link_pair(A, LinkConfig("dtn://b/", transfer_mru=1000)) as (a, _):
        with pytest.raises(TransferTooLargeError, match="exceeds the peer's transfer MRU 1000"):
            a.start_send(b"x" * 1001)
        assert a.parameters.peer_transfer_mru == 1000


async def test_listener_survives_handlers_that_lose_their_session() -> None:
    async def handler(link: TcpclLink) -> None:
        await link.wait_closed()
        await link.send(b"too late")  # raises LinkClosedError: logged, not fatal

    with trio.fail_after(TIMEOUT):
        async with _listening(B, handler) as (listener, port):
            for _ in range(2):
                async with open_link("127.0.0.1", port, A):
                    pass
            while listener.statistics().active:
                await trio.sleep(0.01)
            assert listener.statistics().established == 2
            assert listener.bound == ("127.0.0.1", port)


# -- establishment failures ------------------------------------------------------------------------


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LinkConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
        async with open_link("127.0.0.1", port, A):
            pytest.fail("connected")  # pragma: no cover


@asynccontextmanager
async def _raw_server(answer: bytes, *, close: bool = False) -> AsyncIterator[int]:
    """A TCP server that reads the contact header, answers ``answer``, then closes the
    connection or waits for the client to."""

    async def serve(stream: trio.SocketStream) -> None:
        await stream.receive_some(6)
        await stream.send_all(answer)
        if not close:
            await stream.receive_some()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, serve, 0)
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("answer", "close", "message"),
    [
        (b"dtn!\x03\x00", False, "peer answered with TCPCL version 3, we sent 4"),
        (b"HTTP/1.1 400 Bad Request\r\n", False, "bad contact header magic"),
        (b"dtn!", True, "connection closed before the session terminated"),
    ],
)
async def test_establishment_failures(answer: bytes, close: bool, message: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with _raw_server(answer, close=close) as port:
            with pytest.raises(EstablishmentError, match=message):
                async with open_link("127.0.0.1", port, A):
                    pytest.fail("established")  # pragma: no cover


async def test_peer_that_terminates_during_establishment() -> None:
    contact = encode_contact_header(ContactHeader())
    init = encode_message(SessInit(30, 1 << 20, 1 << 20, "not a uri"))
    # Our SESS_INIT goes out, theirs has a bad node ID: we end the session.
    with trio.fail_after(TIMEOUT):
        async with _raw_server(contact + init) as port:
            with pytest.raises(EstablishmentError, match="failed during establishment"):
                async with open_link("127.0.0.1", port, A):
                    pytest.fail("established")  # pragma: no cover
