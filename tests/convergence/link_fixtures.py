"""Helpers for the tests of the TCPCLv4 trio adapter.

* :func:`link_pair`: an active and a passive :class:`TcpclLink` over any pair of connected trio
  streams (in-memory by default), both established.
* :class:`RecordingStream`: wraps a stream and keeps every byte that crossed it, each direction
  in order (to write pcaps of real sessions).
* :func:`node_certificate`: a leaf certificate signed by a ``trustme`` CA naming Node IDs in
  id-on-bundleEID otherName SANs (trustme cannot make those) and/or URI SANs, built with
  ``cryptography``; :func:`tls_settings` writes PEM files and loads them.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trio.testing
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.listener import open_stream_link
from convergence.tcpcl.tls import BUNDLE_EID_OID, TlsSettings, load_tls_settings

StreamPair = Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]]


@asynccontextmanager
async def link_pair(
    client: LinkConfig,
    server: LinkConfig,
    *,
    streams: StreamPair = trio.testing.memory_stream_pair,
) -> AsyncIterator[tuple[TcpclLink, TcpclLink]]:
    """``(active, passive)`` links over a fresh stream pair; closed cleanly on exit (from the
    active side, unless the body closed them)."""
    left, right = streams()
    passive: list[TcpclLink] = []
    ready = trio.Event()
    done = trio.Event()

    async def serve() -> None:
        async with open_stream_link(right, server, active=False) as link:
            passive.append(link)
            ready.set()
            await done.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with open_stream_link(left, client, active=True) as active:
            await ready.wait()
            yield active, passive[0]
        done.set()


class RecordingStream(trio.abc.HalfCloseableStream):
    """A stream that records what it sends and receives (both in order)."""

    def __init__(self, inner: trio.abc.HalfCloseableStream) -> None:
        self.inner = inner
        self.sent = bytearray()
        self.received = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        self.received += data
        return bytes(data)

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- certificates ------------------------------------------------------------------------------


def node_certificate(
    ca: trustme.CA,
    *,
    bundle_eids: Iterable[str] = (),
    uris: Iterable[str] = (),
    dns_names: Iterable[str] = ("localhost",),
    raw_other_names: Iterable[bytes] = (),
) -> tuple[bytes, bytes]:
    """``(certificate PEM, private key PEM)`` of a leaf signed by ``ca``.

    ``bundle_eids`` go into otherName id-on-bundleEID SANs as DER IA5Strings (RFC 9174 §4.4.1);
    ``raw_other_names`` are id-on-bundleEID values given as raw DER (to test bad encodings).
    """
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.OtherName(BUNDLE_EID_OID, ia5_string(eid)) for eid in bundle_eids
    ]
    names += [x509.OtherName(BUNDLE_EID_OID, raw) for raw in raw_other_names]
    names += [x509.UniformResourceIdentifier(uri) for uri in uris]
    names += [x509.DNSName(name) for name in dns_names]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tcpcl node")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ia5_string(text: str) -> bytes:
    """DER IA5String (short or long length form)."""
    data = text.encode("ascii")
    if len(data) < 0x80:
        return bytes([0x16, len(data)]) + data
    length = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x16, 0x80 | len(length)]) + length + data


def tls_settings(
    tmp_path: Path,
    name: str,
    ca: trustme.CA,
    *,
    require: bool = False,
    trust: trustme.CA | None = None,
    **names: Iterable[str],
) -> TlsSettings:
    """Write a node certificate (see :func:`node_certificate`) and ``trust``'s CA (default:
    ``ca``) to ``tmp_path`` and load them with :func:`load_tls_settings`."""
    cert_pem, key_pem = node_certificate(ca, **names)  # type: ignore[arg-type]
    cert = tmp_path / f"{name}.crt"
    key = tmp_path / f"{name}.key"
    anchor = tmp_path / f"{name}-ca.crt"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    anchor.write_bytes((trust or ca).cert_pem.bytes())
    return load_tls_settings(cert, key, anchor, require=require)
