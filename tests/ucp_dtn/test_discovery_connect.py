"""connect_first: announced addresses are tried in order and the first live one wins."""

from __future__ import annotations

import socket

import pytest
import trio

from ucp_dtn.discovery import (
    DiscoveredPeer,
    PeerUnreachable,
    connect_first,
)

A = ("10.0.0.1", 4556)
B = ("10.0.0.2", 4556)
C = ("::1", 4557)


def peer(*addresses: tuple[str, int]) -> DiscoveredPeer:
    return DiscoveredPeer("dtn://p/", tuple(addresses), frozenset(), False)


class FakeNetwork:
    """A connect callable whose outcome per address is scripted; records the attempts."""

    def __init__(self, outcomes: dict[tuple[str, int], BaseException | str | None]) -> None:
        self.outcomes = outcomes
        self.attempts: list[tuple[str, int]] = []

    async def connect(self, host: str, port: int) -> str:
        self.attempts.append((host, port))
        outcome = self.outcomes[(host, port)]
        if outcome is None:
            await trio.sleep_forever()
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, str)
        return outcome


async def test_first_live_address_wins_after_dead_ones() -> None:
    network = FakeNetwork({A: ConnectionRefusedError("refused"), B: "session-B", C: "session-C"})
    assert await connect_first(peer(A, B, C), network.connect) == "session-B"
    assert network.attempts == [A, B]


async def test_first_address_is_used_when_it_works() -> None:
    network = FakeNetwork({A: "session-A", B: "session-B"})
    assert await connect_first(peer(A, B), network.connect) == "session-A"
    assert network.attempts == [A]


async def test_all_dead_raises_with_every_failure_listed() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    unreachable = OSError(101, "Network is unreachable")
    network = FakeNetwork({A: refused, C: unreachable})
    with pytest.raises(
        PeerUnreachable, match=r"dtn://p/: 10\.0\.0\.1:4556: .*\[::1\]:4557"
    ) as info:
        await connect_first(peer(A, C), network.connect)
    assert info.value.node_id == "dtn://p/"
    assert [(f.address, f.error) for f in info.value.failures] == [(A, refused), (C, unreachable)]


async def test_no_address_at_all() -> None:
    with pytest.raises(PeerUnreachable, match="announced no address") as info:
        await connect_first(peer(), FakeNetwork({}).connect)
    assert info.value.failures == ()


async def test_a_hanging_address_times_out_and_the_next_is_tried(autojump_clock: object) -> None:
    network = FakeNetwork({A: None, B: "session-B"})
    start = trio.current_time()
    assert await connect_first(peer(A, B), network.connect, attempt_timeout=3.0) == "session-B"
    assert trio.current_time() - start == pytest.approx(3.0)


async def test_timeouts_are_reported_as_failures(autojump_clock: object) -> None:
    network = FakeNetwork({A: None})
    with pytest.raises(PeerUnreachable, match="TooSlowError") as info:
        await connect_first(peer(A), network.connect)
    assert isinstance(info.value.failures[0].error, trio.TooSlowError)


async def test_without_attempt_timeout_a_hanging_address_is_waited_for(
    autojump_clock: object,
) -> None:
    network = FakeNetwork({A: None, B: "session-B"})
    with trio.move_on_after(3600) as scope:
        await connect_first(peer(A, B), network.connect, attempt_timeout=None)
    assert scope.cancelled_caught
    assert network.attempts == [A]


async def test_other_errors_propagate_at_once() -> None:
    network = FakeNetwork({A: ValueError("bug in the connect callable"), B: "session-B"})
    with pytest.raises(ValueError, match="bug in the connect callable"):
        await connect_first(peer(A, B), network.connect)
    assert network.attempts == [A]


async def test_retry_on_widens_what_counts_as_a_dead_address() -> None:
    class WrongPeer(Exception):
        pass

    network = FakeNetwork({A: WrongPeer("node ID mismatch"), B: "session-B"})
    result = await connect_first(peer(A, B), network.connect, retry_on=(OSError, WrongPeer))
    assert result == "session-B"


async def test_exception_groups_of_connect_errors_count_as_failures() -> None:
    group = ExceptionGroup("happy eyeballs", [ConnectionRefusedError(), TimeoutError()])
    network = FakeNetwork({A: group, B: "session-B"})
    assert await connect_first(peer(A, B), network.connect) == "session-B"


async def test_exception_groups_with_other_errors_propagate() -> None:
    group = ExceptionGroup("mixed", [ConnectionRefusedError(), KeyError("bug")])
    network = FakeNetwork({A: group, B: "session-B"})
    with pytest.raises(ExceptionGroup, match="mixed"):
        await connect_first(peer(A, B), network.connect)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_real_loopback_dead_first_live_second() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    live = listeners[0].socket.getsockname()[1]
    dead = closed_port()
    attempts: list[tuple[str, int]] = []

    async def connect(host: str, port: int) -> trio.SocketStream:
        attempts.append((host, port))
        return await trio.open_tcp_stream(host, port)

    with trio.fail_after(10):
        async with listeners[0]:
            stream = await connect_first(peer(("127.0.0.1", dead), ("127.0.0.1", live)), connect)
            async with stream:
                server = await listeners[0].accept()
                async with server:
                    await stream.send_all(b"hello")
                    assert await server.receive_some(5) == b"hello"
    assert attempts == [("127.0.0.1", dead), ("127.0.0.1", live)]
