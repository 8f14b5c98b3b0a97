"""TCPCLv4 over loopback: the trio adapter's throughput and latency beside a raw trio socket.

Both ends run in this one process and thread (as the raw socket baseline does), so every figure
includes the receiver's work too.

- raw: a trio ``SocketStream`` pair moving the same 10 MiB of random bytes per unit (one
  ``send_all``; ``receive_some(4 MiB)`` on the other end). Random, not ``bytes(n)``: a buffer
  of zeros that was never written is the kernel's shared zero page, which the sender then reads
  from cache, inflating the baseline by up to a third.
- raw TlsStream: the same through the TLS stream the adapter uses, without TCPCL (context for
  the TLS figure: it bounds what TCPCL over TLS can do in one process).
- 10 MiB bundles: ``TcpclLink.start_send`` keeps 4 transfers in flight; the receiving handler
  ``accept()``\\ s each (the final XFER_ACK is held back until then), with and without TLS
  (TLS 1.3, node IDs authenticated against id-on-bundleEID certificates).
- 100-byte bundles: 1,000 transfers in flight, rate of acknowledged transfers.
- round trip: a 1-byte bundle sent, echoed back by the peer's handler, received and accepted;
  one at a time; median and 99th percentile.

Targets (docs: shared/design/anchors.md): 10 MiB bundles >= 50% of raw throughput (>= 30% with
TLS); round trip median < 1 ms. Always exits 0; the table says which targets were met.

Run: ``.venv/bin/python bench/tcpcl.py [--seconds 3]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from convergence.tcpcl.link import LinkConfig, TcpclLink, TransferHandle
from convergence.tcpcl.listener import TcpclListener, open_link
from convergence.tcpcl.tls import BUNDLE_EID_OID, TlsSettings, load_tls_settings
from convergence.tcpcl.tlsstream import TlsStream

MIB = 1024 * 1024
BIG = 10 * MIB
SMALL = 100
TARGET_RATIO = 0.5
TARGET_RATIO_TLS = 0.3
TARGET_RTT_MS = 1.0

Handler = Callable[[TcpclLink], Awaitable[None]]


# -- measurements ----------------------------------------------------------------------------------

#: One timed batch: run ``n`` units of work, return when done.
Batch = Callable[[int], Awaitable[None]]


async def raw_pair(
    nursery: trio.Nursery,
) -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    return client, server


def raw_batch(client: trio.abc.Stream, server: trio.abc.Stream, data: bytes) -> Batch:
    """``n`` x ``data`` through a stream pair (one ``send_all`` each, in 4 MiB pieces for TLS),
    received on the other end with ``receive_some(4 MiB)``."""
    piece = 4 * MIB if isinstance(client, TlsStream) else len(data)

    async def run(n: int) -> None:
        async def receive() -> None:
            left = n * len(data)
            while left:
                left -= len(await server.receive_some(min(left, 4 * MIB)))

        view = memoryview(data)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            for _ in range(n):
                for start in range(0, len(data), piece):
                    await client.send_all(view[start : start + piece])

    return run


async def tls_pair(
    client: trio.abc.Stream, server: trio.abc.Stream, tls: tuple[TlsSettings, TlsSettings]
) -> tuple[TlsStream, TlsStream]:
    """The TLS streams the adapter uses, without TCPCL, over a connected pair."""
    assert tls[1].client_context is not None and tls[0].server_context is not None
    tls_client = TlsStream(client, tls[1].client_context, server_side=False)
    tls_server = TlsStream(server, tls[0].server_context, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tls_client.do_handshake)
        nursery.start_soon(tls_server.do_handshake)
    return tls_client, tls_server


def transfer_batch(link: TcpclLink, data: bytes, window: int) -> Batch:
    """``n`` transfers of ``data`` with up to ``window`` in flight, all acknowledged (the
    peer's handler accepts each: the final XFER_ACK waits until then)."""

    async def run(n: int) -> None:
        pending: deque[TransferHandle] = deque()
        for _ in range(n):
            if len(pending) >= window:
                await pending.popleft().wait()
            pending.append(link.start_send(data))
        while pending:
            await pending.popleft().wait()

    return run


async def best_rates(batches: list[tuple[Batch, int]], seconds: float) -> list[float]:
    """Units per second of each batch: the best of rounds of about ``seconds / 6`` each, the
    batches taking turns, so that a burst of load elsewhere on the machine slows all alike.
    Each pair is (batch, units in a first trial run); the trial sizes the rounds."""
    sizes = []
    for batch, trial in batches:
        start = time.perf_counter()
        await batch(trial)
        elapsed = time.perf_counter() - start
        sizes.append(max(1, int(trial * seconds / 6 / len(batches) / elapsed)))
    best = [0.0] * len(batches)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for index, ((batch, _), size) in enumerate(zip(batches, sizes, strict=True)):
            start = time.perf_counter()
            await batch(size)
            best[index] = max(best[index], size / (time.perf_counter() - start))
    return best


async def round_trips(link: TcpclLink, count: int) -> list[float]:
    """Seconds from sending a 1-byte bundle to having received and accepted its echo."""
    times: list[float] = []
    for i in range(count + 50):
        start = time.perf_counter()
        link.start_send(b"x")
        transfer = await link.receive()
        await transfer.accept()
        if i >= 50:  # warm up
            times.append(time.perf_counter() - start)
    return times


# -- TCPCL sessions --------------------------------------------------------------------------------


@asynccontextmanager
async def session(
    handler: Handler, *, tls: tuple[TlsSettings, TlsSettings] | None = None
) -> AsyncIterator[TcpclLink]:
    server = LinkConfig("dtn://server/", tls=tls[0] if tls else None)
    client = LinkConfig("dtn://client/", tls=tls[1] if tls else None)
    listener = TcpclListener(server, handler)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(listener.run)
        async with open_link("127.0.0.1", port, client) as link:
            assert link.tls == (tls is not None)
            yield link
        nursery.cancel_scope.cancel()


async def accept_all(link: TcpclLink) -> None:
    async for transfer in link:
        await transfer.accept()


async def echo(link: TcpclLink) -> None:
    async for transfer in link:
        await transfer.accept()
        link.start_send(transfer.data)


# -- certificates ----------------------------------------------------------------------------------


def node_tls(directory: Path, ca: trustme.CA, node_id: str) -> TlsSettings:
    """A certificate naming ``node_id`` in an id-on-bundleEID SAN, signed by ``ca``."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    eid = node_id.encode("ascii")
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.OtherName(BUNDLE_EID_OID, bytes([0x16, len(eid)]) + eid)]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    name = node_id.strip("/").split("/")[-1]
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / "ca.crt").write_bytes(ca.cert_pem.bytes())
    return load_tls_settings(
        directory / f"{name}.crt", directory / f"{name}.key", directory / "ca.crt", require=True
    )


# -- report ----------------------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value / 1e6:9.0f} MB/s"


async def run(seconds: float, round_trip_count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        tls = (node_tls(Path(tmp), ca, "dtn://server/"), node_tls(Path(tmp), ca, "dtn://client/"))
    async with (
        trio.open_nursery() as nursery,
        session(accept_all) as plain,
        session(accept_all, tls=tls) as secure,
    ):
        data = os.urandom(BIG)
        client, server = await raw_pair(nursery)
        tls_client, tls_server = await tls_pair(*await raw_pair(nursery), tls)
        raw_rate, tls_rate, plain_rate, secure_rate = await best_rates(
            [
                (raw_batch(client, server, data), 4),
                (raw_batch(tls_client, tls_server, data), 2),
                (transfer_batch(plain, data, 4), 4),
                (transfer_batch(secure, data, 4), 2),
            ],
            4 * seconds,
        )
        small = os.urandom(SMALL)
        (small_rate,) = await best_rates([(transfer_batch(plain, small, 1000), 2000)], seconds)
        for stream in (client, server, tls_client, tls_server):
            await stream.aclose()
    raw, raw_tls = raw_rate * BIG, tls_rate * BIG
    plain_bytes, secure_bytes = plain_rate * BIG, secure_rate * BIG
    async with session(echo) as link:
        rtts = sorted(await round_trips(link, round_trip_count))
    median = statistics.median(rtts) * 1e3
    p99 = rtts[int(len(rtts) * 0.99) - 1] * 1e3

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print()
    print(f"{'measurement':<34}{'value':>16}{'vs raw':>10}   target")
    print("-" * 78)
    print(f"{'raw trio socket':<34}{_rate(raw):>16}{1:>9.0%}")
    print(f"{'raw TlsStream (TLS 1.3, no TCPCL)':<34}{_rate(raw_tls):>16}{raw_tls / raw:>9.0%}")
    ratio = plain_bytes / raw
    print(
        f"{'TCPCLv4, 10 MiB bundles':<34}{_rate(plain_bytes):>16}{ratio:>9.0%}   "
        f">= {TARGET_RATIO:.0%}: {verdict(ratio >= TARGET_RATIO)}"
    )
    ratio_tls = secure_bytes / raw
    print(
        f"{'TCPCLv4 + TLS, 10 MiB bundles':<34}{_rate(secure_bytes):>16}{ratio_tls:>9.0%}   "
        f">= {TARGET_RATIO_TLS:.0%}: {verdict(ratio_tls >= TARGET_RATIO_TLS)}"
    )
    print(f"{'  (TCPCLv4 + TLS vs raw TlsStream)':<34}{'':>16}{secure_bytes / raw_tls:>9.0%}")
    print(f"{'TCPCLv4, 100-byte bundles':<34}{small_rate:>10.0f} /s")
    print(
        f"{'1-byte round trip, median':<34}{median:>13.3f} ms{'':>10}   "
        f"< {TARGET_RTT_MS:g} ms: {verdict(median < TARGET_RTT_MS)}"
    )
    print(f"{'1-byte round trip, p99':<34}{p99:>13.3f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="per throughput measurement (4 of them)"
    )
    parser.add_argument("--round-trips", type=int, default=3000, help="1-byte echoes timed")
    args = parser.parse_args(argv)
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"trio {trio.__version__}",
        flush=True,
    )
    print(
        f"loopback, both ends in one process; best of rounds taking turns, "
        f"{args.seconds:g} s per throughput cell; ...",
        flush=True,
    )
    trio.run(run, args.seconds, args.round_trips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
