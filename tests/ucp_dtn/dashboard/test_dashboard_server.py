"""The dashboard served by a real in-process node over real loopback HTTP: the snapshot, the
page and its assets (nothing from elsewhere), /metrics in Prometheus' format, the job API's
errors, the event stream, the Host check, the warning off loopback, and TLS that requires a
client certificate (how the trusted mesh will guard it)."""

from __future__ import annotations

import json
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trustme
from prometheus_client.parser import text_string_to_metric_families

from ucp_dtn.agent import BundleNode
from ucp_dtn.dashboard import DashboardServer, NodeSources, client_certificate_context, is_loopback
from ucp_dtn.roles import RoleName
from ucp_dtn.roles.runner import run_roles
from ucp_dtn.roles.settings import RoleSettings

from ..agent_support import start_node, wait_until
from .http_support import NoReply, request

ROLES = RoleSettings(roles=(RoleName.BROKER, RoleName.DATASTORE), heartbeat_interval_s=0.5)


@asynccontextmanager
async def dashboard_node(
    host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[BundleNode, BundleNode, DashboardServer]]:
    """Node a (broker, datastore) with its dashboard, connected to node b."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", roles=("broker", "datastore"))
            b = await start_node(nursery, "b")
            services = await nursery.start(run_roles, a.node, ROLES)
            server = DashboardServer(
                NodeSources(a.node, services, "ucp-bpnode test"),
                host,
                0,
                ssl_context=ssl_context,
            )
            await nursery.start(server.run)
            await a.node.connect(*b.address)
            yield a.node, b.node, server
            nursery.cancel_scope.cancel()


async def test_snapshot_shows_the_node_its_peer_roles_and_mesh() -> None:
    async with dashboard_node() as (a, _b, server):
        assert server.address is not None
        reply = await request(server.address[1], "/api/v1/snapshot")
        assert reply.status == 200 and reply.headers["content-type"] == "application/json"
        snapshot = json.loads(reply.body)
        assert snapshot["version"] == 1 and snapshot["node_id"] == "dtn://a/"
        assert snapshot["roles"] == ["broker", "datastore"]
        assert [p["node_id"] for p in snapshot["peers"]] == ["dtn://b/"]
        assert snapshot["peers"][0]["rtt_ms"] > 0  # a real TCP session: the kernel measures
        assert [(n["node_id"], n["kind"]) for n in snapshot["mesh_nodes"]] == [
            ("dtn://a/", "self"),
            ("dtn://b/", "neighbour"),
        ]
        assert snapshot["mesh_links"][0]["kind"] == "session"
        assert snapshot["broker"]["endpoint"] == "dtn://a/ucp/broker"
        assert [d["node_id"] for d in snapshot["datastores"]] == ["dtn://a/"]
        assert snapshot["counters"]["sessions_opened"] == a.statistics().sessions_opened


async def test_page_and_assets_ship_in_the_package_and_load_nothing_from_elsewhere() -> None:
    async with dashboard_node() as (_, _, server):
        assert server.address is not None
        port = server.address[1]
        page = await request(port, "/")
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        html = page.body.decode()
        links = re.findall(r'(?:src|href)="([^"]+)"', html)
        assets = [link for link in links if link.startswith("/static/")]
        assert len(assets) == 3
        assert all(link.startswith("/") for link in links)  # same origin only
        for asset in assets:
            reply = await request(port, asset)
            assert reply.status == 200 and reply.body
            # No fetch of another site from script or style either.
            assert not re.search(rb"(?:url\(|fetch\(|EventSource\()\s*['\"]?https?:", reply.body)
        assert (await request(port, "/static/nope.js")).status == 404


async def test_metrics_parse_and_match_the_node_statistics() -> None:
    async with dashboard_node() as (a, _b, server):
        assert server.address is not None
        for n in range(3):
            await a.send("dtn://b/inbox", b"m%d" % n)
        await wait_until(lambda: a.statistics().forwarded >= 3)
        before = a.statistics()
        reply = await request(server.address[1], "/metrics")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.body.decode())
            for sample in family.samples
        }
        # The node keeps making bundles of its own (advertisements, heartbeats) meanwhile: the
        # scrape is between what the node said just before and just after it.
        stats = a.statistics()
        assert before.created <= samples[("ucp_bundles_created_total", ())] <= stats.created
        assert before.forwarded <= samples[("ucp_bundles_forwarded_total", ())] <= stats.forwarded
        assert samples[("ucp_store_quota_bytes", ())] == stats.store_quota_bytes
        assert samples[("ucp_session_bundles_sent_total", (("peer", "dtn://b/"),))] >= 3
        assert samples[("ucp_jobs", (("state", "queued"),))] == 0
        assert ("ucp_job_run_seconds_count", ()) in samples
        assert samples[("ucp_process_resident_memory_bytes", ())] > 0


async def test_the_api_is_read_only_and_says_what_is_wrong() -> None:
    async with dashboard_node() as (_, _, server):
        assert server.address is not None
        port = server.address[1]
        assert (await request(port, "/api/v1/snapshot", method="POST")).status == 405
        bad = await request(port, "/api/v1/jobs?state=finished")
        assert bad.status == 400 and b"unknown state 'finished'" in bad.body
        assert (await request(port, "/api/v1/jobs?limit=0")).status == 400
        assert (await request(port, "/api/v1/jobs/not-a-uuid")).status == 400
        missing = await request(port, f"/api/v1/jobs/{uuid.uuid4()}")
        assert missing.status == 404
        jobs = json.loads((await request(port, "/api/v1/jobs?state=done,failed")).body)
        assert jobs["broker"] == "dtn://a/ucp/broker" and jobs["jobs"] == []
        # DNS rebinding: another site's name pointing at 127.0.0.1 gets nothing.
        assert (await request(port, "/api/v1/snapshot", host_header="evil.example")).status == 421
        assert (await request(port, "/", host_header="localhost:1234")).status == 200


async def test_event_stream_sends_snapshots() -> None:
    async with dashboard_node() as (_, _, server):
        assert server.address is not None
        reply = await request(
            server.address[1], "/api/v1/events", until=b'"node_id":"dtn://a/"', timeout=20
        )
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        event = reply.body.split(b"event: snapshot\ndata: ", 1)[1]
        assert event.startswith(b'{"version":1')
    assert server.dashboard is not None and server.dashboard.feed.subscribers == 0


async def test_off_loopback_it_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    caplog.set_level(logging.WARNING, logger="ucp_dtn.dashboard")
    async with dashboard_node(host="0.0.0.0") as (_, _, server):
        assert server.address is not None
        # Any Host is answered there (the address was chosen on purpose).
        reply = await request(server.address[1], "/api/v1/snapshot", host_header="hub.local")
        assert reply.status == 200
    assert "THE DASHBOARD IS OPEN TO THE NETWORK" in caplog.text


async def test_with_a_client_certificate_context_only_certified_clients_get_in(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    client_cert = ca.issue_cert("laptop.mesh")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    context = client_certificate_context(cert, key, ca_file)
    async with dashboard_node(ssl_context=context) as (_, _, server):
        assert server.address is not None and server.url.startswith("https://")
        anonymous = ssl.create_default_context()
        ca.configure_trust(anonymous)
        # Refused in the TLS handshake (with TLS 1.3 the client may see it only when it reads).
        with pytest.raises((trio.BrokenResourceError, ssl.SSLError, NoReply)):
            await request(server.address[1], "/metrics", ssl_context=anonymous)
        certified = ssl.create_default_context()
        ca.configure_trust(certified)
        client_cert.configure_cert(certified)
        reply = await request(server.address[1], "/metrics", ssl_context=certified)
        assert reply.status == 200 and b"ucp_bundles_received_total" in reply.body
