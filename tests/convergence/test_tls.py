"""TLS for TCPCLv4 sessions: Node IDs in certificates (RFC 9174 §4.4.1), NODE-ID
authentication (§4.4.4.3) and the TLS policy (§4.3), over real loopback sockets with
certificates from a ``trustme`` CA."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trustme

from convergence.tcpcl import SessTermReason
from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.link_errors import (
    EstablishmentError,
    LinkClosedError,
    NodeIdMismatchError,
    TlsError,
    TlsRequiredError,
)
from convergence.tcpcl.listener import TcpclListener, open_link
from convergence.tcpcl.tls import (
    NodeIdAuthResult,
    TlsSettings,
    _bundle_eid_value,
    authenticate_node_id,
    load_tls_settings,
    peer_node_ids_from_certificate,
)

from .link_fixtures import ia5_string, node_certificate, tls_settings

TIMEOUT = 20


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


# -- certificates --------------------------------------------------------------------------------


def test_node_ids_come_from_bundle_eid_other_names_and_uris(ca: trustme.CA) -> None:
    cert, _ = node_certificate(
        ca,
        bundle_eids=["ipn:7.0", "dtn://a/"],
        uris=["dtn://legacy/"],
        dns_names=["example.org"],
    )
    assert peer_node_ids_from_certificate(_der(cert)) == {"ipn:7.0", "dtn://a/", "dtn://legacy/"}


def test_long_node_id_uses_the_long_der_length_form(ca: trustme.CA) -> None:
    eid = "dtn://" + "n" * 300 + "/"
    cert, _ = node_certificate(ca, bundle_eids=[eid])
    assert peer_node_ids_from_certificate(_der(cert)) == {eid}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # The [0] EXPLICIT wrapper of the otherName value, as some encoders leave it.
        (b"\xa0\x09" + ia5_string("ipn:1.0"), {"ipn:1.0"}),
        (b"\x0c\x07ipn:2.0", {"ipn:2.0"}),  # UTF8String holding the same ASCII URI
        (b"\x04\x07ipn:3.0", set()),  # OCTET STRING: not a BundleEID
        (b"\x16\x03\xff\xfe\xfd", set()),  # not ASCII
        (b"\x16\x00", set()),  # empty
    ],
)
def test_bundle_eid_values_are_decoded_strictly(
    ca: trustme.CA, raw: bytes, expected: set[str]
) -> None:
    cert, _ = node_certificate(ca, raw_other_names=[raw])
    assert peer_node_ids_from_certificate(_der(cert)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x09ipn:3.0",  # length beyond the value
        b"\x16\x05ipn:3.0",  # trailing octets
        b"\x16\x81\x07ipn:3.0",  # long length form for a short value (not DER)
        b"\x16\x82\x00\x80" + b"x" * 128,  # leading zero length octet (not DER)
        b"\x16\x85" + b"\x00" * 5,  # absurd length of length
        b"\x16",  # truncated
        b"\xa0\x02\x04\x00",  # wrapper around a non-string
    ],
)
def test_malformed_bundle_eid_values_name_nothing(raw: bytes) -> None:
    # cryptography refuses to put invalid DER into a certificate, so the value decoder is
    # tested directly.
    assert _bundle_eid_value(raw) is None


def test_certificates_without_node_ids(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("localhost")  # trustme: DNS SAN only
    assert peer_node_ids_from_certificate(_der(leaf.cert_chain_pems[0].bytes())) == set()
    assert peer_node_ids_from_certificate(b"\x30\x03\x02\x01\x00") == set()  # not a certificate
    assert peer_node_ids_from_certificate(b"") == set()


@pytest.mark.parametrize(
    ("claimed", "names", "result"),
    [
        ("dtn://a/", ["dtn://a/"], NodeIdAuthResult.SUCCESS),
        ("dtn://a/", ["dtn://b/", "dtn://a/"], NodeIdAuthResult.SUCCESS),
        ("dtn://a/", ["dtn://b/"], NodeIdAuthResult.FAILURE),
        ("dtn://A/", ["dtn://a/"], NodeIdAuthResult.FAILURE),  # exact comparison
        ("dtn://a/", [], NodeIdAuthResult.ABSENT),
        ("", ["dtn://a/"], NodeIdAuthResult.ABSENT),  # nothing claimed
    ],
)
def test_authenticate_node_id(
    ca: trustme.CA, claimed: str, names: list[str], result: NodeIdAuthResult
) -> None:
    cert, _ = node_certificate(ca, bundle_eids=names)
    assert authenticate_node_id(claimed, _der(cert)) is result


def test_authenticate_without_certificate() -> None:
    assert authenticate_node_id("dtn://a/", None) is NodeIdAuthResult.ABSENT


def test_load_tls_settings_checks_its_arguments(tmp_path: Path, ca: trustme.CA) -> None:
    cert_pem, _ = node_certificate(ca, bundle_eids=["dtn://a/"])
    (tmp_path / "a.crt").write_bytes(cert_pem)
    with pytest.raises(ValueError, match="needs its private key"):
        load_tls_settings(tmp_path / "a.crt", None, None, require=False)
    with pytest.raises(ValueError, match="TLS is required"):
        load_tls_settings(None, None, None, require=True)
    client_only = load_tls_settings(None, None, None, require=False)
    assert client_only.server_context is None
    assert client_only.client_context is not None
    assert client_only.context_for(active=False) is None


def test_loaded_contexts_validate_peers(tmp_path: Path, ca: trustme.CA) -> None:
    settings = tls_settings(tmp_path, "a", ca, bundle_eids=["dtn://a/"])
    assert settings.server_context is not None and settings.client_context is not None
    assert settings.server_context.verify_mode is ssl.CERT_REQUIRED
    assert settings.client_context.verify_mode is ssl.CERT_REQUIRED
    assert settings.client_context.minimum_version is ssl.TLSVersion.TLSv1_3


# -- sessions over loopback ------------------------------------------------------------------------


@asynccontextmanager
async def _server(config: LinkConfig) -> AsyncIterator[tuple[TcpclListener, int, list[str]]]:
    """A listener that echoes every bundle back and records the peers it saw."""
    peers: list[str] = []

    async def echo(link: TcpclLink) -> None:
        peers.append(f"{link.peer_node_id} tls={link.tls}")
        async for transfer in link:
            await transfer.accept()
            link.start_send(transfer.data)

    listener = TcpclListener(config, echo)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(listener.run)
        yield listener, port, peers
        nursery.cancel_scope.cancel()


async def _wait_for(predicate: Callable[[], bool]) -> None:
    """Poll a condition that another task makes true (the listener's counters)."""
    while not predicate():
        await trio.sleep(0.01)


async def _echo_once(link: TcpclLink, data: bytes) -> bytes:
    await link.send(data)
    transfer = await link.receive()
    await transfer.accept()
    return transfer.data


@pytest.mark.parametrize("names", ["bundle_eids", "uris"])
async def test_tls_session_with_authenticated_node_ids(
    tmp_path: Path, ca: trustme.CA, names: str
) -> None:
    server_names: dict[str, list[str]] = {names: ["dtn://b/"]}
    client_names: dict[str, list[str]] = {names: ["ipn:7.0"]}
    server_tls = tls_settings(tmp_path, "b", ca, **server_names)  # type: ignore[arg-type]
    client_tls = tls_settings(tmp_path, "a", ca, **client_names)  # type: ignore[arg-type]
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (listener, port, peers):
            async with open_link("127.0.0.1", port, LinkConfig("ipn:7.0", tls=client_tls)) as link:
                assert link.tls and link.parameters.tls
                assert link.peer_node_id == "dtn://b/"
                payload = bytes(range(256)) * 4000
                assert await _echo_once(link, payload) == payload
                assert link.statistics().tls
            assert peers == ["ipn:7.0 tls=True"]
            assert listener.statistics().established == 1


async def test_wrong_node_id_in_server_certificate_is_refused(
    tmp_path: Path, ca: trustme.CA
) -> None:
    server_tls = tls_settings(tmp_path, "b", ca, bundle_eids=["dtn://somebody-else/"])
    client_tls = tls_settings(tmp_path, "a", ca, bundle_eids=["dtn://a/"])
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (listener, port, _):
            with pytest.raises(NodeIdMismatchError, match=r"'dtn://b/' does not match"):
                async with open_link("127.0.0.1", port, LinkConfig("dtn://a/", tls=client_tls)):
                    pytest.fail("established")  # pragma: no cover
            # The server had sent its SESS_INIT, so its session was established when our
            # SESS_TERM "Contact Failure" arrived; it ends at once.
            await _wait_for(lambda: listener.statistics().active == 0)


async def test_wrong_node_id_in_client_certificate_is_refused(
    tmp_path: Path, ca: trustme.CA
) -> None:
    server_tls = tls_settings(tmp_path, "b", ca, bundle_eids=["dtn://b/"])
    client_tls = tls_settings(tmp_path, "a", ca, bundle_eids=["dtn://mallory/"])
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (listener, port, peers):
            # The passive entity sends its SESS_INIT before it can check ours (RFC 9174 §4.6
            # order), so we may see the session established for an instant before its
            # SESS_TERM "Contact Failure" arrives; either way nothing can be sent.
            try:
                async with open_link(
                    "127.0.0.1", port, LinkConfig("dtn://a/", tls=client_tls)
                ) as link:
                    closed = await link.wait_closed()
                    assert closed.reason == SessTermReason.CONTACT_FAILURE
                    with pytest.raises(LinkClosedError):
                        link.start_send(b"x")
            except EstablishmentError as exc:
                assert "CONTACT_FAILURE" in str(exc)
            assert peers == []
            await _wait_for(lambda: listener.statistics().failed == 1)


@pytest.mark.parametrize("require_node_id", [True, False])
async def test_certificate_without_node_id(
    tmp_path: Path, ca: trustme.CA, require_node_id: bool
) -> None:
    server_tls = tls_settings(tmp_path, "b", ca, dns_names=["localhost"])
    client_tls = tls_settings(tmp_path, "a", ca, bundle_eids=["dtn://a/"])
    client_tls = TlsSettings(
        client_tls.server_context, client_tls.client_context, require_node_id=require_node_id
    )
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (_, port, _peers):
            config = LinkConfig("dtn://a/", tls=client_tls)
            if require_node_id:
                with pytest.raises(NodeIdMismatchError, match="names no node ID"):
                    async with open_link("127.0.0.1", port, config):
                        pytest.fail("established")  # pragma: no cover
            else:
                async with open_link("127.0.0.1", port, config) as link:
                    assert link.tls
                    assert await _echo_once(link, b"x") == b"x"


async def test_tls_required_but_peer_cannot(tmp_path: Path, ca: trustme.CA) -> None:
    client_tls = tls_settings(tmp_path, "a", ca, require=True, bundle_eids=["dtn://a/"])
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/")) as (_, port, peers):
            with pytest.raises(TlsRequiredError, match="does not offer it"):
                async with open_link("127.0.0.1", port, LinkConfig("dtn://a/", tls=client_tls)):
                    pytest.fail("established")  # pragma: no cover
            assert peers == []


async def test_server_requiring_tls_refuses_plain_peer(tmp_path: Path, ca: trustme.CA) -> None:
    server_tls = tls_settings(tmp_path, "b", ca, require=True, bundle_eids=["dtn://b/"])
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (listener, port, peers):
            with pytest.raises(EstablishmentError, match=r"CONTACT_FAILURE.*may require TLS"):
                async with open_link("127.0.0.1", port, LinkConfig("dtn://a/")):
                    pytest.fail("established")  # pragma: no cover
            await _wait_for(lambda: listener.statistics().failed == 1)
            assert peers == []


async def test_optional_tls_falls_back_to_plain_tcp(tmp_path: Path, ca: trustme.CA) -> None:
    server_tls = tls_settings(tmp_path, "b", ca, bundle_eids=["dtn://b/"])
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (_, port, peers):
            async with open_link("127.0.0.1", port, LinkConfig("dtn://a/")) as link:
                assert not link.tls
                assert await _echo_once(link, b"plain") == b"plain"
            assert peers == ["dtn://a/ tls=False"]


async def test_untrusted_server_certificate_fails_the_handshake(
    tmp_path: Path, ca: trustme.CA
) -> None:
    other_ca = trustme.CA()
    server_tls = tls_settings(tmp_path, "b", other_ca, bundle_eids=["dtn://b/"])
    client_tls = tls_settings(tmp_path, "a", ca, bundle_eids=["dtn://a/"])
    with trio.fail_after(TIMEOUT):
        async with _server(LinkConfig("dtn://b/", tls=server_tls)) as (listener, port, _):
            with pytest.raises(TlsError, match=r"TLS handshake .* failed: TLS: CERTIFICATE_VERIFY"):
                async with open_link("127.0.0.1", port, LinkConfig("dtn://a/", tls=client_tls)):
                    pytest.fail("established")  # pragma: no cover
            await _wait_for(lambda: listener.statistics().failed == 1)
