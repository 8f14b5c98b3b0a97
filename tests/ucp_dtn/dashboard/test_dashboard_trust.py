"""The dashboard in a trusted mesh: off loopback, HTTPS for holders of a member's certificate
only (MeshTrust.dashboard_context)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization

from ucp_dtn.trust import MeshAuthority, MeshRole, MeshTrust

from .http_support import NoReply, request
from .test_dashboard_server import dashboard_node


def _browser(authority: MeshAuthority, certificate: Path | None) -> ssl.SSLContext:
    """A client that trusts the mesh's authority and shows ``certificate`` (a trust file)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the node's certificate names its node ID, not a host
    pem = authority.certificate.public_bytes(serialization.Encoding.PEM).decode()
    context.load_verify_locations(cadata=pem)
    if certificate is not None:
        context.load_cert_chain(str(certificate))
    return context


async def test_only_members_see_the_dashboard(tmp_path: Path) -> None:
    authority = MeshAuthority.create(tmp_path / "authority", "Test mesh")
    authority.issue("dtn://a/", MeshRole.NODE).write(tmp_path / "a.pem")
    authority.issue("dtn://alice/", MeshRole.CLIENT).write(tmp_path / "alice.pem")
    other = MeshAuthority.create(tmp_path / "other", "Other mesh")
    other.issue("dtn://alice/", MeshRole.CLIENT).write(tmp_path / "foreign.pem")
    context = MeshTrust.load(tmp_path / "a.pem").dashboard_context()
    async with dashboard_node(ssl_context=context) as (_, _, server):
        assert server.address is not None and server.url.startswith("https://")
        port = server.address[1]
        for stranger in (None, tmp_path / "foreign.pem"):
            with pytest.raises((trio.BrokenResourceError, ssl.SSLError, NoReply)):
                await request(port, "/metrics", ssl_context=_browser(authority, stranger))
        member = _browser(authority, tmp_path / "alice.pem")
        reply = await request(port, "/metrics", ssl_context=member)
        assert reply.status == 200 and b"ucp_bundles_received_total" in reply.body
