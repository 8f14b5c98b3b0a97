"""TlsStream: TLS 1.3 over any trio stream (in-memory here), with ``trustme`` certificates."""

from __future__ import annotations

import random
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trustme

from convergence.tcpcl.tlsstream import TlsStream

BODY_DEADLINE_S = 30
"""Bound on a test's work after the handshake (3 MB each way takes well under a second)."""


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("server.test").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    return server, client


@asynccontextmanager
async def _pair(ca: trustme.CA) -> AsyncIterator[tuple[TlsStream, TlsStream]]:
    """A client and a server stream after their handshake. The test's body runs under a
    deadline too: a call that blocks for ever fails the test (TooSlowError) instead of hanging
    the suite."""
    server_context, client_context = _contexts(ca)
    left, right = trio.testing.memory_stream_pair()
    client = TlsStream(left, client_context, server_side=False, server_hostname="server.test")
    server = TlsStream(right, server_context, server_side=True)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
    with trio.fail_after(BODY_DEADLINE_S):
        yield client, server


async def _receive_exactly(stream: TlsStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some()
        assert chunk
        data += chunk
    return bytes(data)


async def test_bulk_data_both_ways(ca: trustme.CA) -> None:
    payload = random.Random(5).randbytes(3_000_000)
    async with _pair(ca) as (client, server):
        assert client.version() == "TLSv1.3"
        assert client.cipher() is not None
        assert client.getpeercert() is not None
        assert server.getpeercert() is None  # the server did not ask for one
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            assert await _receive_exactly(server, len(payload)) == payload
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.send_all, memoryview(payload)[:1000])
            assert await _receive_exactly(client, 1000) == payload[:1000]
        await client.send_all(b"")  # nothing to send: still a checkpoint


async def test_receive_limit(ca: trustme.CA) -> None:
    async with _pair(ca) as (client, server):
        await client.send_all(b"abcdefgh")
        assert await server.receive_some(3) == b"abc"
        assert await server.receive_some(100) == b"defgh"
        with pytest.raises(ValueError, match="at least 1"):
            await server.receive_some(0)


async def test_half_close_lets_the_peer_finish(ca: trustme.CA) -> None:
    async with _pair(ca) as (client, server):
        await client.send_all(b"last words")
        await client.send_eof()
        await client.send_eof()  # idempotent
        with pytest.raises(trio.ClosedResourceError, match="send_eof"):
            await client.send_all(b"more")
        assert await _receive_exactly(server, 10) == b"last words"
        assert await server.receive_some() == b""
        # The other direction still works until the server closes too.
        await server.send_all(b"reply")
        await server.send_eof()
        assert await _receive_exactly(client, 5) == b"reply"
        assert await client.receive_some() == b""
        await client.aclose()
        await server.aclose()
        await client.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await client.receive_some()


async def test_aclose_sends_close_notify(ca: trustme.CA) -> None:
    async with _pair(ca) as (client, server):
        await client.aclose()
        assert await server.receive_some() == b""


async def test_eof_without_close_notify_is_an_error(ca: trustme.CA) -> None:
    async with _pair(ca) as (client, server):
        await client.transport.aclose()  # TCP-level close, no close_notify
        with pytest.raises(trio.BrokenResourceError, match="TLS failed") as info:
            await server.receive_some()
        assert isinstance(info.value.__cause__, ssl.SSLError)
        with pytest.raises(trio.BrokenResourceError, match="broken"):
            await server.send_all(b"x")


async def test_untrusted_certificate_fails_the_handshake(ca: trustme.CA) -> None:
    server_context, _ = _contexts(ca)
    client_context = ssl.create_default_context()
    trustme.CA().configure_trust(client_context)  # a CA that did not sign the server's cert
    left, right = trio.testing.memory_stream_pair()
    client = TlsStream(left, client_context, server_side=False, server_hostname="server.test")
    server = TlsStream(right, server_context, server_side=True)
    errors: list[BaseException] = []

    async def handshake(stream: TlsStream) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            errors.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handshake, client)
            nursery.start_soon(handshake, server)
    assert len(errors) == 2
    causes = {type(e.__cause__) for e in errors}
    assert ssl.SSLCertVerificationError in causes  # the client's verdict
    assert all(isinstance(e.__cause__, ssl.SSLError) for e in errors)  # the server saw the alert


async def test_only_binary_peer_certificate(ca: trustme.CA) -> None:
    async with _pair(ca) as (client, _):
        with pytest.raises(ValueError, match="binary"):
            client.getpeercert(binary_form=False)


async def test_wait_send_all_might_not_block(ca: trustme.CA) -> None:
    async with _pair(ca) as (client, server):
        # The in-memory transport always takes more: the wait returns at once (a wait that
        # never returns fails here, not under _pair's deadline).
        with trio.fail_after(5):
            await client.wait_send_all_might_not_block()
        # The wait leaves the stream usable (its send lock released).
        await client.send_all(b"after the wait")
        assert await _receive_exactly(server, 14) == b"after the wait"
