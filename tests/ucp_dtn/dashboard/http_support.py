"""A small HTTP/1.1 client for the dashboard tests: one request per connection over a real
loopback socket (plain or TLS), the response read whole (or, for event streams, until enough
has arrived)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trio


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


class NoReply(Exception):
    """The server closed the connection without an HTTP reply."""


def _parse(raw: bytes) -> Reply:
    if not raw:
        raise NoReply("the connection closed without a reply")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return Reply(status, headers, body)


async def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    host: str = "127.0.0.1",
    host_header: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    until: bytes | None = None,
    timeout: float = 20.0,
) -> Reply:
    """Send one request; read the reply to the end (or until ``until`` appears in it)."""
    with trio.fail_after(timeout):
        tcp = await trio.open_tcp_stream(host, port)
        stream: trio.abc.Stream = tcp
        try:
            if ssl_context is not None:
                stream = trio.SSLStream(
                    tcp, ssl_context, server_hostname="localhost", https_compatible=True
                )
                await stream.do_handshake()
            header = host_header or f"{host}:{port}"
            await stream.send_all(
                f"{method} {path} HTTP/1.1\r\nHost: {header}\r\nConnection: close\r\n\r\n".encode()
            )
            raw = b""
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                raw += chunk
                if until is not None and until in raw:
                    break
        finally:
            await trio.aclose_forcefully(tcp)
    return _parse(raw)
