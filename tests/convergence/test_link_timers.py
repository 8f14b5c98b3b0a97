"""Timers of the TCPCLv4 trio adapter on trio's virtual clock (``autojump_clock``), over
in-memory streams: keepalives only when idle (RFC 9174 §5.1.1), idle timeout, session idle
termination (§6.2), establishment timeout (§4.1)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from convergence.tcpcl import (
    ContactHeader,
    Keepalive,
    MessageReader,
    SessInit,
    SessTerm,
    SessTermReason,
    encode_contact_header,
    encode_message,
)
from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.link_errors import EstablishmentTimeout, LinkClosedError
from convergence.tcpcl.listener import open_stream_link

from .link_fixtures import link_pair

A = LinkConfig("dtn://a/", keepalive_s=10)
B = LinkConfig("dtn://b/", keepalive_s=10)


async def _consume(link: TcpclLink) -> None:
    async for transfer in link:
        await transfer.accept()


async def test_keepalives_only_when_idle(autojump_clock: trio.testing.MockClock) -> None:
    async with link_pair(A, B) as (a, b), trio.open_nursery() as nursery:
        nursery.start_soon(_consume, b)
        start = trio.current_time()
        # Busy: a transfer every 4 s in one direction, its acknowledgements in the other.
        for _ in range(25):
            await a.send(b"data")
            await trio.sleep(4)
        assert trio.current_time() - start == pytest.approx(100)
        assert a.statistics().keepalives_sent == 0
        assert b.statistics().keepalives_sent == 0
        # Idle for 95 s: both sides send one every 10 s, counted from their last message.
        await trio.sleep(95)
        assert a.statistics().keepalives_sent == 9
        assert b.statistics().keepalives_sent == 9
        assert not a.closed and not b.closed
        await a.aclose()


async def test_negotiated_keepalive_is_the_smaller_offer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with link_pair(LinkConfig("dtn://a/", keepalive_s=3), B) as (a, b):
        assert a.parameters.keepalive_interval == b.parameters.keepalive_interval == 3
        await trio.sleep(10)
        assert a.statistics().keepalives_sent == b.statistics().keepalives_sent == 3


async def test_keepalive_zero_disables_them(autojump_clock: trio.testing.MockClock) -> None:
    async with link_pair(LinkConfig("dtn://a/", keepalive_s=0), B) as (a, b):
        await trio.sleep(3600)
        assert a.statistics().keepalives_sent == b.statistics().keepalives_sent == 0
        assert not a.closed


async def _silent_peer(
    stream: trio.abc.Stream, *, keepalive: int, keepalives: int = 0
) -> list[tuple[float, object]]:
    """Act as a passive entity by hand: answer the contact header and SESS_INIT, send
    ``keepalives`` KEEPALIVEs every ``keepalive`` seconds, then say nothing; return what
    arrived until the connection closed."""
    reader = MessageReader(contact_header=True)
    received: list[tuple[float, object]] = []
    await stream.send_all(
        encode_contact_header(ContactHeader())
        + encode_message(SessInit(keepalive, 1 << 20, 1 << 20, "dtn://silent/"))
    )

    async def ticks() -> None:
        for _ in range(keepalives):
            await trio.sleep(keepalive)
            await stream.send_all(encode_message(Keepalive()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticks)
        while data := await stream.receive_some():
            reader.feed(data)
            while (message := reader.next_message()) is not None:
                received.append((trio.current_time(), message))
        nursery.cancel_scope.cancel()
    return received


async def test_idle_timeout_ends_the_session(autojump_clock: trio.testing.MockClock) -> None:
    left, right = trio.testing.memory_stream_pair()
    seen: list[list[tuple[float, object]]] = []

    async def peer() -> None:
        seen.append(await _silent_peer(right, keepalive=10, keepalives=3))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        async with open_stream_link(left, A, active=True) as link:
            start = trio.current_time()
            closed = await link.wait_closed()
            # Three keepalives at 10, 20, 30 s; then nothing for twice the interval.
            assert trio.current_time() - start == pytest.approx(50)
            assert not closed.clean
            assert closed.reason is SessTermReason.IDLE_TIMEOUT
            assert "nothing received for 20 s" in (closed.error or "")
    # Our keepalives at 10, 20, 30 and 40 s (we sent nothing else), then SESS_TERM at 50 s.
    messages = [message for _, message in seen[0]]
    assert messages[0] == ContactHeader()
    assert isinstance(messages[1], SessInit)
    assert messages[2:] == [Keepalive()] * 4 + [SessTerm(SessTermReason.IDLE_TIMEOUT)]


async def test_session_idle_termination(autojump_clock: trio.testing.MockClock) -> None:
    a_config = LinkConfig("dtn://a/", keepalive_s=10, idle_timeout_s=60)
    async with link_pair(a_config, B) as (a, b), trio.open_nursery() as nursery:
        nursery.start_soon(_consume, b)
        await a.send(b"one")
        start = trio.current_time()
        # Keepalives flow both ways, but no other message: a ends the session cleanly.
        closed = await a.wait_closed()
        assert trio.current_time() - start == pytest.approx(60)
        assert closed.clean and closed.reason is SessTermReason.IDLE_TIMEOUT
        assert (await b.wait_closed()).clean


async def test_establishment_timeout(autojump_clock: trio.testing.MockClock) -> None:
    left, right = trio.testing.memory_stream_pair()
    config = LinkConfig("dtn://a/", establish_timeout_s=7)
    start = trio.current_time()
    with pytest.raises(EstablishmentTimeout, match="not established within 7"):
        async with open_stream_link(left, config, active=True):
            pytest.fail("established")  # pragma: no cover
    assert trio.current_time() - start == pytest.approx(7)
    # The silent peer saw our contact header, then the connection close.
    assert await right.receive_some() == encode_contact_header(ContactHeader())
    assert await right.receive_some() == b""


async def test_aclose_gives_up_on_a_peer_that_stopped_reading(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = trio.testing.lockstep_stream_pair()  # writes block until read
    config = LinkConfig("dtn://a/", keepalive_s=0, close_timeout_s=3)

    async def peer() -> None:
        assert await right.receive_some() == encode_contact_header(ContactHeader())
        await right.send_all(
            encode_contact_header(ContactHeader())
            + encode_message(SessInit(0, 1 << 20, 1 << 30, "dtn://deaf/"))
        )
        await right.receive_some()  # our SESS_INIT; then it never reads again
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        async with open_stream_link(left, config, active=True) as link:
            handle = link.start_send(b"x" * 100_000)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with trio.fail_after(60):  # virtual seconds: a hang fails instead
                await link.aclose()
            # close_timeout_s waiting for the transfer, then 2 s for the last write.
            assert trio.current_time() - start == pytest.approx(5)
            assert not (await link.wait_closed()).clean
            with pytest.raises(LinkClosedError):
                await handle.wait()
        nursery.cancel_scope.cancel()
