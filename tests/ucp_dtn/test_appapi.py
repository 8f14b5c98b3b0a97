"""The application API between a real in-process BundleNode and AppApiClient over a Unix socket:
requests, deliveries and confirmation, errors, and clients that misbehave."""

from __future__ import annotations

import os
import random
import socket
import stat
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import cbor2
import pytest
import trio

from bpv7 import parse_eid
from ucp_dtn.agent import BundleNode, NodeConfig
from ucp_dtn.appapi import (
    AppApiClient,
    AppApiClosedError,
    AppApiError,
    AppApiServer,
    AppApiUsageError,
    ErrorCode,
    FrameDecoder,
    RequestFailed,
    decode_body,
    encode_frame,
    plain_data,
    resolve_endpoint,
)

WAIT = 10  # bound on every wait, seconds


def make_node(node_id: str = "dtn://a/", **options: Any) -> BundleNode:
    return BundleNode(NodeConfig(node_id, None, listen=(("127.0.0.1", 0),), **options))


@asynccontextmanager
async def serving(
    path: Path, node: BundleNode | None = None, **server_options: Any
) -> AsyncIterator[tuple[BundleNode, AppApiServer]]:
    node = node or make_node()
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        server = AppApiServer(node, path, **server_options)
        await nursery.start(server.run)
        yield node, server
        nursery.cancel_scope.cancel()


class RawClient:
    """A client that writes whatever bytes it likes and reads the daemon's messages."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()

    @classmethod
    async def open(cls, path: Path) -> RawClient:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.connect(str(path))
        return cls(trio.SocketStream(sock))

    async def message(self) -> dict[str, Any] | None:
        """The next message, or None at end of stream."""
        with trio.fail_after(WAIT):
            while (body := self.decoder.next_body()) is None:
                data = await self.stream.receive_some(65536)
                if not data:
                    return None
                self.decoder.feed(data)
        return decode_body(body)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.stream.send_all(encode_frame(message))
        reply = await self.message()
        assert reply is not None
        return reply


async def test_send_register_deliver_confirm(tmp_path: Path) -> None:
    async with (
        serving(tmp_path / "api.sock") as (node, _),
        AppApiClient.connect(tmp_path / "api.sock") as client,
    ):
        assert client.node_id == "dtn://a/"
        with trio.fail_after(WAIT):
            sent = await client.send("dtn://a/inbox", b"hello", lifetime_s=60)
            assert sent.source == parse_eid("dtn://a/")
            async with await client.register("inbox") as inbox:
                assert inbox.endpoint == "dtn://a/inbox"
                bundle = await inbox.receive()
                assert bundle.payload == b"hello"
                assert bundle.bundle_id == sent
                assert bundle.source == "dtn://a/"
                assert bundle.destination == "dtn://a/inbox"
                assert bundle.lifetime_ms == 60_000
                assert not bundle.is_admin_record
                assert node.statistics().stored_bundles == 1  # not confirmed yet
                await bundle.confirm()
                await bundle.confirm()  # idempotent
                assert bundle.confirmed
        statistics = node.statistics()
        assert statistics.stored_bundles == 0
        assert statistics.delivered == 1


async def test_an_unconfirmed_delivery_goes_to_the_next_registration(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path) as (node, _):
        with trio.fail_after(WAIT):
            async with AppApiClient.connect(path) as client:
                await client.send("dtn://a/in", b"one")
                registration = await client.register("dtn://a/in")
                first = await registration.receive()
                assert first.payload == b"one"
            # The connection closed without confirming: the bundle waits for the next one.
            async with AppApiClient.connect(path) as client:
                registration = await client.register("in")
                again = await registration.receive()
                assert again.bundle_id == first.bundle_id
                await again.confirm()
        assert node.statistics().stored_bundles == 0


async def test_at_most_window_deliveries_are_unconfirmed(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path) as (_, server), AppApiClient.connect(path) as client:
        with trio.fail_after(WAIT):
            for number in range(5):
                await client.send("dtn://a/in", b"%d" % number)
            registration = await client.register("in", window=2)
            first = await registration.receive()
            await registration.receive()
            await trio.sleep(0.2)  # time for more pushes, were the window not respected
            assert server.statistics().deliveries == 2
            await first.confirm()
            third = await registration.receive()
            assert third.payload == b"2"
            assert server.statistics().deliveries == 3


async def test_pipelined_sends_from_many_tasks(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    ids = []
    async with serving(path) as (node, _), AppApiClient.connect(path) as client:

        async def send(number: int) -> None:
            ids.append(await client.send("dtn://a/in", b"%d" % number))

        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                for number in range(300):
                    nursery.start_soon(send, number)
        assert len(set(ids)) == 300
        assert node.statistics().stored_bundles == 300


async def test_node_info_reports_peers_routes_and_statistics(tmp_path: Path) -> None:
    b = make_node("dtn://b/")
    async with (
        serving(tmp_path / "a.sock"),
        serving(tmp_path / "b.sock", b),
        AppApiClient.connect(tmp_path / "a.sock") as client,
    ):
        with trio.fail_after(WAIT):
            host, port = b.listen_addresses[0]
            assert await client.connect_peer(host, port) == "dtn://b/"
            await client.add_route("dtn://c/*", "dtn://b/")
            info = await client.node_info()
    assert info.node_id == "dtn://a/"
    assert [peer["node_id"] for peer in info.peers] == ["dtn://b/"]
    assert info.peers[0]["active"] is True
    routes = {(route["pattern"], route["next_hop"], route["origin"]) for route in info.routes}
    assert ("dtn://c/*", "dtn://b/", "static") in routes
    assert any(route[1] == "dtn://b/" and route[2] == "neighbour" for route in routes)
    assert info.statistics["node_id"] == "dtn://a/"
    assert info.statistics["sessions"] == 1
    assert info.api["connections_open"] == 1


@pytest.mark.parametrize(
    ("call", "code", "match"),
    [
        (lambda c: c.register("dtn://b/x"), ErrorCode.BAD_ENDPOINT, "not an endpoint of this"),
        (lambda c: c.register("dtn:no slashes"), ErrorCode.BAD_ENDPOINT, "invalid endpoint"),
        (lambda c: c.send("nonsense", b""), ErrorCode.BAD_REQUEST, "invalid destination"),
        (lambda c: c.send("dtn://b/", b"", source="dtn://z/"), ErrorCode.BAD_ENDPOINT, "source"),
        (lambda c: c.add_route("nope", "dtn://b/"), ErrorCode.BAD_REQUEST, "route pattern"),
        (lambda c: c.connect_peer("127.0.0.1", 1), ErrorCode.CONNECT_FAILED, "cannot reach"),
    ],
)
async def test_bad_requests_fail_with_a_code(
    tmp_path: Path, call: Any, code: str, match: str
) -> None:
    path = tmp_path / "api.sock"
    async with serving(path), AppApiClient.connect(path) as client:
        with trio.fail_after(WAIT), pytest.raises(RequestFailed, match=match) as info:
            await call(client)
        assert info.value.code == code
        assert (await client.node_info()).node_id == "dtn://a/"  # still serving


async def test_registration_conflicts_and_unknown_numbers(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path), AppApiClient.connect(path) as one, AppApiClient.connect(path) as two:
        with trio.fail_after(WAIT):
            registration = await one.register("in")
            with pytest.raises(RequestFailed, match="already registered") as info:
                await two.register("dtn://a/in")
            assert info.value.code == ErrorCode.ENDPOINT_BUSY
            await registration.aclose()
            await two.register("in")  # free again
    async with serving(tmp_path / "b.sock"):
        raw = await RawClient.open(tmp_path / "b.sock")
        assert (await raw.message() or {}).get("t") == "hello"
        reply = await raw.request({"v": 1, "t": "confirm", "id": 4, "delivery": 99})
        assert reply["code"] == ErrorCode.UNKNOWN_DELIVERY and reply["id"] == 4
        reply = await raw.request({"v": 1, "t": "unregister", "id": 5, "registration": 3})
        assert reply["code"] == ErrorCode.UNKNOWN_REGISTRATION
        await raw.stream.aclose()


async def test_a_full_store_refuses_sends(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path, make_node(store_quota_bytes=4000)), AppApiClient.connect(path) as c:
        with trio.fail_after(WAIT):
            await c.send("dtn://a/in", bytes(3000))
            with pytest.raises(RequestFailed, match="store is full") as info:
                await c.send("dtn://a/in", bytes(3000))
            assert info.value.code == ErrorCode.STORE_FULL
            registration = await c.register("in")
            await (await registration.receive()).confirm()
            await c.send("dtn://a/in", bytes(3000))  # room again


async def test_hostile_clients_never_end_the_server(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path, max_frame=1024):
        raw = await RawClient.open(path)
        hello = await raw.message()
        assert hello is not None and hello["t"] == "hello" and hello["versions"] == [1]
        # Garbage: an error without id, and the connection goes on.
        await raw.stream.send_all(struct.pack(">I", 3) + b"\xff\xfe\xfd")
        reply = await raw.message()
        assert reply is not None
        assert reply == reply | {"t": "error", "id": None, "code": ErrorCode.BAD_REQUEST}
        for body, code in [
            (cbor2.dumps([1, 2, 3]), ErrorCode.BAD_REQUEST),
            (cbor2.dumps({"v": 9, "t": "send", "id": 2}), ErrorCode.UNSUPPORTED_VERSION),
            (cbor2.dumps({"v": 1, "t": "launch", "id": 3}), ErrorCode.UNKNOWN_TYPE),
            (cbor2.dumps({"v": 1, "t": "send", "id": 4, "payload": 5}), ErrorCode.BAD_REQUEST),
        ]:
            await raw.stream.send_all(struct.pack(">I", len(body)) + body)
            reply = await raw.message()
            assert reply is not None and reply["code"] == code, reply
        reply = await raw.request({"v": 1, "t": "node-info", "id": 7})
        assert reply["t"] == "ok" and reply["id"] == 7 and reply["node-id"] == "dtn://a/"
        # A frame above the limit: told so, then closed.
        await raw.stream.send_all(struct.pack(">I", 1 << 30))
        reply = await raw.message()
        assert reply is not None and reply["code"] == ErrorCode.FRAME_TOO_LARGE
        assert await raw.message() is None
        await raw.stream.aclose()

        # Leaving in the middle of a frame, or with a send in progress.
        raw = await RawClient.open(path)
        await raw.stream.send_all(struct.pack(">I", 100) + b"\xa1")
        await raw.stream.aclose()
        raw = await RawClient.open(path)
        frame = encode_frame(
            {"v": 1, "t": "send", "id": 1, "destination": "dtn://a/x", "payload": b"p"}
        )
        await raw.stream.send_all(frame * 20)
        await raw.stream.aclose()

        async with AppApiClient.connect(path) as client:
            with trio.fail_after(WAIT):
                assert (await client.node_info()).node_id == "dtn://a/"


async def test_registrations_per_connection_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path, max_registrations=2), AppApiClient.connect(path) as client:
        await client.register("one")
        await client.register("two")
        with pytest.raises(RequestFailed, match="at most 2 registrations"):
            await client.register("three")


async def test_too_many_clients_are_told_so(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path, max_connections=1), AppApiClient.connect(path):
        with trio.fail_after(WAIT), pytest.raises(RequestFailed, match="at most 1 clients") as info:
            async with AppApiClient.connect(path):
                pass  # pragma: no cover
        assert info.value.code == ErrorCode.TOO_MANY_CONNECTIONS


async def test_the_client_sees_the_daemon_go(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with trio.open_nursery() as nursery:
        node = make_node()
        await nursery.start(node.run)
        server_scope = trio.CancelScope()

        async def run_server(task_status: trio.TaskStatus[Path]) -> None:
            with server_scope:
                await AppApiServer(node, path).run(task_status=task_status)

        await nursery.start(run_server)
        async with AppApiClient.connect(path) as client:
            registration = await client.register("in")
            server_scope.cancel()
            with trio.fail_after(WAIT), pytest.raises(AppApiClosedError):
                await registration.receive()
            with pytest.raises(AppApiClosedError):
                await client.send("dtn://a/in", b"late")
        assert not path.exists()  # the server removed its socket
        nursery.cancel_scope.cancel()


async def test_socket_file_handling(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    # A socket file left behind by a dead daemon is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    async with serving(path) as (node, _):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        # A live daemon's socket is not.
        with pytest.raises(AppApiError, match="another daemon is listening"):
            await AppApiServer(node, path).run()
    assert not path.exists()
    path.write_text("precious")
    node = make_node()
    with pytest.raises(AppApiError, match="exists and is not a socket"):
        await AppApiServer(node, path).run()
    assert path.read_text() == "precious"
    with pytest.raises(AppApiUsageError, match="socket path is too long"):
        AppApiServer(node, tmp_path / ("x" * 120))


async def test_connecting_to_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AppApiClosedError, match="no daemon socket at"):
        async with AppApiClient.connect(tmp_path / "none.sock"):
            pass  # pragma: no cover
    monkeypatch.delenv("UCP_BPNODE_SOCKET", raising=False)
    with pytest.raises(AppApiUsageError, match="UCP_BPNODE_SOCKET"):
        async with AppApiClient.connect():
            pass  # pragma: no cover
    monkeypatch.setenv("UCP_BPNODE_SOCKET", str(tmp_path / "env.sock"))
    with pytest.raises(AppApiClosedError, match=r"env\.sock"):
        async with AppApiClient.connect():
            pass  # pragma: no cover


async def test_client_checks_its_arguments(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path), AppApiClient.connect(path) as client:
        with pytest.raises(AppApiUsageError, match="unknown status report kind 'lost'"):
            await client.send("dtn://a/x", b"", reports=["lost"])
        with pytest.raises(AppApiUsageError, match="lifetime must be a positive"):
            await client.send("dtn://a/x", b"", lifetime_s=0)
        with pytest.raises(AppApiUsageError, match="window must be within"):
            await client.register("x", window=0)


@pytest.mark.parametrize(
    ("node", "text", "expected"),
    [
        ("dtn://a/", "inbox", "dtn://a/inbox"),
        ("dtn://a/", "/inbox/sub", "dtn://a/inbox/sub"),
        ("dtn://a/", "dtn://a/x", "dtn://a/x"),
        ("ipn:5.0", "7", "ipn:5.7"),
        ("ipn:5.0", "ipn:5.9", "ipn:5.9"),
    ],
)
def test_resolve_endpoint(node: str, text: str, expected: str) -> None:
    assert resolve_endpoint(parse_eid(node), text) == parse_eid(expected)


def test_plain_data() -> None:
    import enum
    from dataclasses import dataclass

    class Colour(enum.Enum):
        RED = "red"

    @dataclass
    class Inner:
        eid: object
        values: frozenset[int]
        ratio: float

    assert plain_data(
        {"a": Inner(parse_eid("dtn://a/"), frozenset({2, 1}), float("inf")), "c": Colour.RED}
    ) == {"a": {"eid": "dtn://a/", "values": [1, 2], "ratio": None}, "c": "red"}


def _mutations(rng: random.Random) -> list[bytes]:
    """Frames a careless or hostile client might write: valid requests with fields replaced by
    values of every kind, random bodies, and truncated CBOR."""
    valid: list[dict[str, Any]] = [
        {"v": 1, "t": "send", "id": 1, "destination": "dtn://a/f", "payload": b"x"},
        {"v": 1, "t": "register", "id": 2, "endpoint": "fuzz", "window": 3},
        {"v": 1, "t": "confirm", "id": 3, "delivery": 1},
        {"v": 1, "t": "unregister", "id": 4, "registration": 1},
        {"v": 1, "t": "node-info", "id": 5},
        {"v": 1, "t": "add-route", "id": 6, "pattern": "dtn://z/*", "next-hop": "dtn://y/"},
        {"v": 1, "t": "connect", "id": 7, "host": "127.0.0.1", "port": 9},
    ]
    odd_values: list[Any] = [
        None, True, -1, 0, 2**64, 2**70, 1e300, float("nan"), "", "x" * 5000, "dtn:", "ipn:1.2.3",
        "dtn://a/\x00", b"", b"\xff" * 100, [], {}, [1, [2, [3]]], {"k": "v"}, "*", "dtn://a/",
    ]  # fmt: skip
    frames = []
    for _ in range(400):
        message = dict(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*message, "extra"])
            message[key] = rng.choice(odd_values)
        if rng.random() < 0.2:
            del message[rng.choice(list(message))]
        body = cbor2.dumps(message)
        if rng.random() < 0.1:
            body = body[: rng.randrange(len(body) + 1)]
        if rng.random() < 0.1:
            body = rng.randbytes(rng.randint(0, 40))
        frames.append(struct.pack(">I", len(body)) + body)
    return frames


async def test_fuzzed_requests_never_end_the_server(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    rng = random.Random(4711)
    async with serving(path):
        raw = await RawClient.open(path)
        assert await raw.message() is not None  # hello
        frames = _mutations(rng)
        replies = 0

        async def read_all() -> None:
            nonlocal replies
            while await raw.message() is not None:
                replies += 1
                if replies >= len(frames):
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            for frame in frames:
                await raw.stream.send_all(frame)
        assert replies >= len(frames)  # every frame answered (plus deliveries pushed)
        await raw.stream.aclose()
        # Random bytes, with lengths that may or may not be sane: the connection may be
        # closed, the server goes on.
        for _ in range(20):
            raw = await RawClient.open(path)
            await raw.stream.send_all(rng.randbytes(rng.randint(1, 300)))
            await raw.stream.aclose()
        async with AppApiClient.connect(path) as client:
            with trio.fail_after(WAIT):
                assert (await client.node_info()).node_id == "dtn://a/"
