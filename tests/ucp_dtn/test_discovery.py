"""Discovery over real multicast DNS on loopback, between this process and separate processes.

The other nodes run ``python -m ucp_dtn.discovery`` (printing JSON lines); every test uses a
random service type so parallel test runs on one machine never see each other's nodes.
"""

from __future__ import annotations

import ipaddress
import json
import math
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import ifaddr
import pytest
import trio

from ucp_dtn.discovery import (
    DiscoveredPeer,
    Discovery,
    DiscoveryConfigError,
    IPVersion,
    PeerAppeared,
    PeerDisappeared,
    PeerEvent,
    PeerUpdated,
    connect_first,
)

# zeroconf passes bytes formats to struct.pack, which under ``python -bb`` raises BytesWarning
# when the equal str format is already in struct's cache (CPython gh-85943). Not our bug.
pytestmark = pytest.mark.filterwarnings("ignore::BytesWarning:zeroconf._utils.net")

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = {"interfaces": ["127.0.0.1"], "ip_version": IPVersion.V4Only}
WAIT = 15  # seconds: bound on any single wait for the network (mDNS probing takes ~1.7 s)


def random_service_type() -> str:
    # Fresh randomness on purpose (not seeded): uniqueness across concurrent runs is the point.
    return f"_u{secrets.token_hex(5)}._tcp.local."


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class PeerProcess:
    """A ``python -m ucp_dtn.discovery`` child; its JSON output lines are read on demand."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._buffer = b""
        self._read = 0

    async def next_line(self) -> dict[str, Any] | None:
        """The next JSON line of output, or None at end of output."""
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        parsed: dict[str, Any] = json.loads(line)
        self.lines.append(parsed)
        return parsed

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read output until a line satisfies ``predicate`` (bounded by WAIT seconds)."""
        with trio.fail_after(WAIT):
            while True:
                line = await self.next_line()
                if line is None:
                    raise AssertionError(f"output ended; saw {self.lines}")
                if predicate(line):
                    return line

    async def stop(self) -> list[dict[str, Any]]:
        """Close its stdin (it stops cleanly), read the rest of its output, check its status."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with trio.fail_after(WAIT):
            while await self.next_line() is not None:
                pass
            assert await self.process.wait() == 0
        return self.lines


@asynccontextmanager
async def peer_process(
    node_id: str,
    service_type: str,
    listen: Sequence[str],
    *extra: str,
) -> AsyncIterator[PeerProcess]:
    command = [sys.executable, "-bb", "-m", "ucp_dtn.discovery", "--node-id", node_id]
    command += ["--service-type", service_type, "--interface", "127.0.0.1", "--ip-version", "v4"]
    for address in listen:
        command += ["--listen", address]
    command += ["--stop-on-eof", *extra]
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        peer = PeerProcess(process)
        started = await peer.wait_for(lambda line: True)
        assert started["event"] == "started", started
        yield peer
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                await pipe.aclose()


async def next_event(
    discovery: Discovery, predicate: Callable[[PeerEvent], bool] = lambda e: True
) -> PeerEvent:
    """The next event of ``discovery`` satisfying ``predicate`` (bounded by WAIT seconds)."""
    with trio.fail_after(WAIT):
        async for event in discovery.events:
            if predicate(event):
                return event
    raise AssertionError("event channel closed")


async def start_all(nursery: trio.Nursery, *discoveries: Discovery) -> None:
    """Start every discovery in ``nursery``, concurrently (each probes its name for ~1.7 s)."""
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as starters:
            for discovery in discoveries:
                starters.start_soon(nursery.start, discovery.run)


def about(node_id: str, kind: type) -> Callable[[PeerEvent], bool]:
    return lambda event: isinstance(event, kind) and event.peer.node_id == node_id


def json_about(node_id: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == kind and line["peer"]["node_id"] == node_id


async def test_two_processes_find_each_other_connect_and_see_the_goodbye() -> None:
    service_type = random_service_type()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    live = listeners[0].socket.getsockname()[1]
    dead = closed_port()
    here = Discovery(
        "dtn://here/",
        [("127.0.0.1", 4556), ("127.0.0.1", 4557)],
        roles={"client"},
        service_type=service_type,
        **LOOPBACK,
    )
    async with trio.open_nursery() as nursery, listeners[0]:
        with trio.fail_after(WAIT):
            own_name = await nursery.start(here.run)
        assert own_name == f"dtn-here.{service_type}"
        async with peer_process(
            "dtn://shelter-3/",
            service_type,
            [f"127.0.0.1:{dead}", f"127.0.0.1:{live}", f"[::1]:{live}"],
            "--roles",
            "broker,executor,datastore",
            "--tls",
        ) as there:
            # This process sees the other one, with every address in its order, roles and TLS.
            appeared = await next_event(here, about("dtn://shelter-3/", PeerAppeared))
            assert appeared.peer == DiscoveredPeer(
                node_id="dtn://shelter-3/",
                addresses=(("127.0.0.1", dead), ("127.0.0.1", live), ("::1", live)),
                roles=frozenset({"broker", "executor", "datastore"}),
                tls=True,
                tcpcl_version=4,
                service_name=f"dtn-shelter-3.{service_type}",
            )
            assert here.peers() == (appeared.peer,)

            # ... and the other process sees this one.
            seen = await there.wait_for(json_about("dtn://here/", "appeared"))
            assert seen["peer"]["addresses"] == [["127.0.0.1", 4556], ["127.0.0.1", 4557]]
            assert seen["peer"]["roles"] == ["client"]
            assert seen["peer"]["tls"] is False

            # The dead first address does not prevent using the live second one.
            attempts: list[tuple[str, int]] = []

            async def connect(host: str, port: int) -> trio.SocketStream:
                attempts.append((host, port))
                return await trio.open_tcp_stream(host, port)

            with trio.fail_after(WAIT):
                stream = await connect_first(appeared.peer, connect)
                async with stream, await listeners[0].accept() as accepted:
                    await stream.send_all(b"contact")
                    assert await accepted.receive_some(7) == b"contact"
            assert attempts == [("127.0.0.1", dead), ("127.0.0.1", live)]

            # Unregistration (the child stops cleanly) is a disappearance here.
            lines = await there.stop()
            gone = await next_event(here, about("dtn://shelter-3/", PeerDisappeared))
            assert gone.peer == appeared.peer
            assert here.peers() == ()

        # Neither node ever reported itself, though each saw its own announcement.
        assert all(
            line["peer"]["node_id"] != "dtn://shelter-3/" for line in lines if "peer" in line
        )
        assert lines[-1]["event"] == "stopped"
        assert lines[-1]["statistics"]["ignored_self"] >= 1
        stats = here.statistics()
        assert (stats.appeared, stats.disappeared, stats.peers) == (1, 1, 0)
        assert stats.ignored_self >= 1
        assert (stats.malformed, stats.events_dropped) == (0, 0)
        assert stats.running and stats.service_name == own_name
        nursery.cancel_scope.cancel()
    assert not here.statistics().running
    assert [event async for event in here.events] == []  # closed when run() returned


async def test_updates_are_seen_and_other_service_types_are_not() -> None:
    service_type = random_service_type()
    here = Discovery("dtn://here/", [("127.0.0.1", 4556)], service_type=service_type, **LOOPBACK)
    observer = Discovery(
        "dtn://observer/", [("127.0.0.1", 1)], service_type=service_type, **LOOPBACK
    )
    elsewhere = Discovery(
        "dtn://elsewhere/", [("127.0.0.1", 4556)], service_type=random_service_type(), **LOOPBACK
    )
    async with trio.open_nursery() as nursery:
        await start_all(nursery, here, observer, elsewhere)
        async with peer_process("ipn:7.0", service_type, ["127.0.0.1:9"]) as there:
            await there.wait_for(json_about("dtn://here/", "appeared"))
            await next_event(here, about("ipn:7.0", PeerAppeared))

            # A node promoting itself to broker (and adding an address) re-announces.
            with trio.fail_after(WAIT):
                await here.update(roles={"broker"}, listen=[("127.0.0.1", 4556), ("::1", 4556)])
            updated = await there.wait_for(json_about("dtn://here/", "updated"))
            assert updated["peer"]["roles"] == ["broker"]
            assert updated["peer"]["addresses"] == [["127.0.0.1", 4556], ["::1", 4556]]
            # Two discoveries in one process work too; the update carries the previous state.
            await next_event(observer, about("dtn://here/", PeerAppeared))
            change = await next_event(observer, about("dtn://here/", PeerUpdated))
            assert isinstance(change, PeerUpdated)
            assert (change.previous.roles, change.peer.roles) == (frozenset(), {"broker"})
            assert change.peer.addresses == (("127.0.0.1", 4556), ("::1", 4556))
            await there.stop()
            await next_event(here, about("ipn:7.0", PeerDisappeared))
        # A discovery on another service type saw none of this.
        assert elsewhere.peers() == ()
        assert elsewhere.statistics().appeared == 0
        nursery.cancel_scope.cancel()


async def test_another_process_claiming_our_node_id_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service_type = random_service_type()
    here = Discovery("dtn://twin/", [("127.0.0.1", 1)], service_type=service_type, **LOOPBACK)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(here.run)
        async with peer_process(
            "dtn://twin/", service_type, ["127.0.0.1:2"], "--instance-name", "impostor"
        ) as there:
            with trio.fail_after(WAIT):
                while not any("also claims our node ID" in r.message for r in caplog.records):
                    await trio.sleep(0.05)
            await there.stop()
        assert here.peers() == ()
        assert here.statistics().appeared == 0
        nursery.cancel_scope.cancel()


async def test_a_silent_peer_disappears_and_comes_back_when_it_answers_again() -> None:
    service_type = random_service_type()
    here = Discovery(
        "dtn://here/",
        [("127.0.0.1", 1)],
        service_type=service_type,
        record_ttl=2,  # sweep every second
        resolve_timeout=1.0,
        **LOOPBACK,
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(here.run)
        async with peer_process(
            "dtn://flaky/", service_type, ["127.0.0.1:2"], "--record-ttl", "2"
        ) as there:
            appeared = await next_event(here, about("dtn://flaky/", PeerAppeared))
            # A partition: the process is frozen and answers nothing, and sends no goodbye.
            # Its records expire within 2 s, the next sweep re-queries, 1 s without an answer.
            there.process.send_signal(signal.SIGSTOP)
            try:
                await next_event(here, about("dtn://flaky/", PeerDisappeared))
                assert here.peers() == ()
            finally:
                there.process.send_signal(signal.SIGCONT)
            # The partition heals: the sweep keeps asking, and it answers again.
            back = await next_event(here, about("dtn://flaky/", PeerAppeared))
            assert back.peer == appeared.peer
            # A crash: gone for good.
            there.process.send_signal(signal.SIGKILL)
            with trio.fail_after(WAIT):
                await there.process.wait()
            await next_event(here, about("dtn://flaky/", PeerDisappeared))
        stats = here.statistics()
        assert (stats.appeared, stats.disappeared, stats.expired) == (2, 2, 2)
        nursery.cancel_scope.cancel()


async def test_cancelling_during_registration_stops_cleanly_and_a_discovery_runs_once() -> None:
    here = Discovery(
        "dtn://here/", [("127.0.0.1", 1)], service_type=random_service_type(), **LOOPBACK
    )
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(here.run)
            await trio.sleep(0.3)  # zeroconf is up, probing our name (which takes ~1.5 s)
            assert here.statistics().running
            assert here.service_name is None
            nursery.cancel_scope.cancel()
    assert not here.statistics().running
    with pytest.raises(DiscoveryConfigError, match="runs only once"):
        await here.run()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"service_type": "_dtn-bundle._udp.local."}, "RFC 6335"),
        ({"instance_name": "a.b"}, "RFC 6763"),
        ({"roles": {"Broker"}}, "lowercase"),
        ({"record_ttl": 0}, "positive"),
        ({"resolve_timeout": 0.0}, "positive"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DiscoveryConfigError, match=match):
        Discovery("dtn://a/", [("127.0.0.1", 1)], **kwargs)


async def test_unspecified_listen_address_is_expanded_not_announced() -> None:
    # A listener on 0.0.0.0 is announced as this machine's IPv4 addresses: never 0.0.0.0
    # itself, and loopback only when the machine has no other IPv4 address.
    machine = {ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips}
    ipv4 = {ipaddress.IPv4Address(ip) for ip in machine if isinstance(ip, str)}
    service_type = random_service_type()
    here = Discovery("dtn://here/", [("0.0.0.0", 4556)], service_type=service_type, **LOOPBACK)
    observer = Discovery(
        "dtn://observer/", [("127.0.0.1", 1)], service_type=service_type, **LOOPBACK
    )
    async with trio.open_nursery() as nursery:
        await start_all(nursery, here, observer)
        appeared = await next_event(observer, about("dtn://here/", PeerAppeared))
        nursery.cancel_scope.cancel()
    announced = [(ipaddress.ip_address(host), port) for host, port in appeared.peer.addresses]
    assert announced, "no address announced"
    for ip, port in announced:
        assert port == 4556 and not ip.is_unspecified, announced
        assert ip in ipv4, f"{ip} is not an IPv4 address of this machine ({sorted(machine)})"
    if any(not ip.is_loopback and not ip.is_link_local for ip in ipv4):
        assert not any(ip.is_loopback for ip, _ in announced), announced


async def test_a_full_event_channel_drops_and_counts_but_peers_stay_current() -> None:
    service_type = random_service_type()
    here = Discovery(
        "dtn://here/",
        [("127.0.0.1", 1)],
        service_type=service_type,
        max_buffered_events=0,
        **LOOPBACK,
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            await nursery.start(here.run)
        async with peer_process("dtn://p/", service_type, ["127.0.0.1:2"]) as there:
            with trio.fail_after(WAIT):
                while not here.peers():
                    await trio.sleep(0.1)
            assert here.peers()[0].node_id == "dtn://p/"
            assert here.statistics().events_dropped == 1
            await there.stop()
        nursery.cancel_scope.cancel()


def test_unbounded_event_buffer_is_accepted() -> None:
    Discovery("dtn://a/", [("127.0.0.1", 1)], max_buffered_events=math.inf)
