"""The TCP relay and LossyStream over real loopback sockets (real clock, short timeouts)."""

import contextlib
import gc
import random
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trio

from convergence.lossy import (
    LinkProfile,
    LossyLink,
    LossyRelay,
    LossyStream,
    PartitionController,
    RelayStatistics,
    Window,
)


@dataclass
class EchoServer:
    """A TCP echo server on 127.0.0.1 that counts its connections."""

    port: int = 0
    connections: int = 0
    resets: int = 0
    received: list[int] = field(default_factory=list)

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        total = 0
        try:
            while data := await stream.receive_some():
                total += len(data)
                await stream.send_all(data)
            await stream.send_eof()
        except trio.BrokenResourceError:
            self.resets += 1
        finally:
            self.received.append(total)
            await trio.aclose_forcefully(stream)


@pytest.fixture
async def echo(nursery: trio.Nursery) -> AsyncIterator[EchoServer]:
    server = EchoServer()
    listeners = await nursery.start(trio.serve_tcp, server.handle, 0)
    server.port = listeners[0].socket.getsockname()[1]
    yield server


async def _start(nursery: trio.Nursery, echo: EchoServer, **kwargs: object) -> LossyRelay:
    relay = LossyRelay(target=("127.0.0.1", echo.port), **kwargs)  # type: ignore[arg-type]
    await nursery.start(relay.run)
    return relay


async def _exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, and read the echo to end-of-stream."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        received = bytearray()

        async def send() -> None:
            await stream.send_all(payload)
            await stream.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            while data := await stream.receive_some():
                received += data
        return bytes(received)


async def _read_until_broken(stream: trio.abc.ReceiveStream) -> int:
    """Read until the connection breaks (reset) or ends; return the bytes read."""
    total = 0
    try:
        while data := await stream.receive_some():
            total += len(data)
    except trio.BrokenResourceError:
        pass
    return total


async def _connect_and_read(port: int) -> int:
    async with await trio.open_tcp_stream("127.0.0.1", port) as client:
        return await _read_until_broken(client)


SLOW_BUT_WHOLE = LinkProfile(
    seed=1, latency=0.005, jitter=0.003, bandwidth=20e6, stall_every=0.05, stall_for=0.01
)


@pytest.mark.parametrize("profile", [LinkProfile(), SLOW_BUT_WHOLE])
async def test_relay_forwards_intact(
    nursery: trio.Nursery, echo: EchoServer, profile: LinkProfile
) -> None:
    relay = await _start(nursery, echo, link=profile)
    payloads = [random.Random(i).randbytes(200_000) for i in range(3)]
    with trio.fail_after(10):
        results: list[bytes] = [b""] * 3

        async def one(i: int) -> None:
            results[i] = await _exchange(relay.port, payloads[i])

        async with trio.open_nursery() as clients:
            for i in range(3):
                clients.start_soon(one, i)
        while relay.statistics().active:
            await trio.sleep(0.01)
    assert results == payloads
    assert relay.statistics() == RelayStatistics(
        connections=3,
        active=0,
        refused=0,
        target_failures=0,
        cuts=0,
        bytes_to_target=600_000,
        bytes_to_client=600_000,
        down=False,
    )
    assert relay.address == ("127.0.0.1", relay.port)


async def test_relay_stops_cleanly(echo: EchoServer) -> None:
    relay = LossyRelay(target=("127.0.0.1", echo.port))
    with trio.fail_after(5):
        async with trio.open_nursery() as relay_nursery:
            await relay_nursery.start(relay.run)
            client = await trio.open_tcp_stream("127.0.0.1", relay.port)
            await client.send_all(b"x")
            assert await client.receive_some() == b"x"
            relay_nursery.cancel_scope.cancel()
        async with client:
            assert await _read_until_broken(client) == 0
    assert relay.statistics().active == 0
    gc.collect()  # an unclosed socket would raise ResourceWarning here


async def test_relay_cuts_mid_transfer(nursery: trio.Nursery, echo: EchoServer) -> None:
    relay = await _start(nursery, echo, link=LinkProfile(cut_after_bytes=(30_000,)))
    with trio.fail_after(10):
        client = await trio.open_tcp_stream("127.0.0.1", relay.port)
        async with client, trio.open_nursery() as n:
            n.start_soon(_send_ignoring_breaks, client, bytes(100_000))
            echoed = await _read_until_broken(client)
        while echo.connections and not echo.received:
            await trio.sleep(0.01)
        # The second connection has no byte budget.
        payload = random.Random(3).randbytes(100_000)
        assert await _exchange(relay.port, payload) == payload
    stats = relay.statistics()
    assert echo.received[0] <= 30_000 and echoed < 30_000
    assert echo.resets == 1  # the target saw a reset, not a clean close
    assert (stats.connections, stats.cuts) == (2, 1)


async def _send_ignoring_breaks(stream: trio.abc.SendStream, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError):
        await stream.send_all(data)


async def test_relay_scheduled_cut(nursery: trio.Nursery, echo: EchoServer) -> None:
    relay = await _start(nursery, echo, link=LinkProfile(cut_at=(0.3,)))
    with trio.fail_after(5):
        async with await trio.open_tcp_stream("127.0.0.1", relay.port) as client:
            await client.send_all(b"hello")
            assert await client.receive_some() == b"hello"
            with pytest.raises(trio.BrokenResourceError):
                await client.receive_some()  # reset at 0.3 s
    assert relay.statistics().cuts == 1


async def test_relay_down_by_hand(nursery: trio.Nursery, echo: EchoServer) -> None:
    relay = LossyRelay(target=("127.0.0.1", echo.port), name="A->B")
    relay.set_down(True)  # before it runs
    await nursery.start(relay.run)
    with trio.fail_after(5):
        assert await _connect_and_read(relay.port) == 0
        assert echo.connections == 0  # the target was never contacted
        relay.set_down(False)
        assert await _exchange(relay.port, b"up again") == b"up again"
        async with await trio.open_tcp_stream("127.0.0.1", relay.port) as client:
            await client.send_all(b"x")
            assert await client.receive_some() == b"x"
            assert relay.cut_all() == 1
            assert await _read_until_broken(client) == 0
    stats = relay.statistics()
    assert (stats.refused, stats.connections, stats.cuts) == (1, 2, 1)


async def test_relay_down_window(nursery: trio.Nursery, echo: EchoServer) -> None:
    relay = await _start(nursery, echo, link=LinkProfile(down=(Window(0, 0.3),)))
    with trio.fail_after(5):
        assert await _connect_and_read(relay.port) == 0
        await trio.sleep_until(relay.link.model.epoch + 0.35)
        assert await _exchange(relay.port, b"after") == b"after"
    assert relay.statistics().refused == 1


async def test_relay_unreachable_target(nursery: trio.Nursery) -> None:
    with trio.socket.socket() as unused:
        await unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    relay = LossyRelay(target=("127.0.0.1", closed_port))
    assert relay.statistics().connections == 0
    with pytest.raises(RuntimeError, match="not running"):
        relay.port  # noqa: B018
    await nursery.start(relay.run)
    with trio.fail_after(5):
        assert await _connect_and_read(relay.port) == 0
    assert relay.statistics().target_failures == 1


async def test_relays_partitioned_by_a_controller(nursery: trio.Nursery, echo: EchoServer) -> None:
    relays = {name: await _start(nursery, echo, name=name) for name in ("A->B", "B->C")}
    controller = PartitionController(relays)
    with trio.fail_after(5):
        controller.partition({"A"})
        assert controller.down_links() == ("A->B",)
        assert await _connect_and_read(relays["A->B"].port) == 0
        assert await _exchange(relays["B->C"].port, b"B-C") == b"B-C"
        controller.heal()
        assert await _exchange(relays["A->B"].port, b"A-B") == b"A-B"


async def test_shared_link_between_relays(nursery: trio.Nursery, echo: EchoServer) -> None:
    link = LossyLink(name="A<->B")
    there = await _start(nursery, echo, link=link)
    back = await _start(nursery, echo, link=link)
    with trio.fail_after(5):
        assert await _exchange(there.port, b"1") == b"1"
        assert await _exchange(back.port, b"2") == b"2"
    assert link.statistics().connections == 2
    assert there.link is back.link is link


# -- LossyStream over a real TCP connection ----------------------------------------------------


async def _tcp_pair(nursery: trio.Nursery) -> tuple[trio.SocketStream, trio.SocketStream]:
    """Both ends of a loopback TCP connection, closed when the test ends."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()

    async def close_at_end() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(client)
                await trio.aclose_forcefully(server)

    nursery.start_soon(close_at_end)
    return client, server


async def test_cut_resets_a_real_peer(nursery: trio.Nursery) -> None:
    client, server = await _tcp_pair(nursery)
    with trio.fail_after(5):
        stream = LossyStream(client, LinkProfile(latency=0.01))
        await nursery.start(stream.run)
        await stream.send_all(b"hi")
        assert await server.receive_some() == b"hi"
        stream.cut()
        with pytest.raises(trio.BrokenResourceError):
            await server.receive_some()  # ECONNRESET, not a clean end-of-stream


async def test_peer_reset_breaks_the_stream(nursery: trio.Nursery) -> None:
    client, server = await _tcp_pair(nursery)
    with trio.fail_after(5):
        stream = LossyStream(client)
        await nursery.start(stream.run)
        await server.send_all(b"bye")
        assert await stream.receive_some() == b"bye"
        # Reset from the peer's side.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await server.aclose()
        with pytest.raises(trio.BrokenResourceError, match="peer"):
            await stream.receive_some()
        with pytest.raises(trio.BrokenResourceError, match="peer"):
            await stream.send_all(b"x")
        assert not stream.is_cut
        await stream.aclose()
