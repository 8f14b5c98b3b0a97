"""Reception details (RFC 9171 §5.6): unknown blocks, expired bundles, advertisements from
strangers; configuration checks; discovery bringing two nodes together."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import trio

from bpv7 import BlockFlags, BundleAgeBlock, BundleFlags, CanonicalBlock, CRCType, parse_eid
from bpv7.admin import BundleStatusReport, StatusKind, StatusReportReason, admin_record_from_bundle
from convergence.tcpcl.link import TransferOutcome
from ucp_dtn.agent import ConfigError, NodeConfig, RouteAdvertisement, parse_node_id

from .agent_support import bare_peer, make_bundle, start_node, wait_until

TIMEOUT = 20


def unknown_block(flags: int) -> CanonicalBlock:
    return CanonicalBlock(200, 5, BlockFlags(flags), CRCType.CRC32C, b"\x01")


async def test_unknown_block_that_asks_for_deletion_deletes_the_bundle() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            async with bare_peer(b) as peer:
                bundle = make_bundle(
                    "dtn://b/app",
                    flags=BundleFlags.REPORT_DELETION,
                    report_to="dtn://t/",
                    extra_blocks=[
                        unknown_block(
                            BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE
                            | BlockFlags.REPORT_IF_UNPROCESSABLE
                        )
                    ],
                )
                assert (await peer.link.send(bundle.encode())).outcome is TransferOutcome.ACKED
                kinds = set()
                for _ in range(2):
                    record = admin_record_from_bundle(await peer.receive())
                    assert isinstance(record, BundleStatusReport)
                    assert record.reason == StatusReportReason.BLOCK_UNSUPPORTED
                    kinds.update(record.asserted_kinds)
            assert kinds == {StatusKind.RECEIVED, StatusKind.DELETED}
            assert b.node.statistics().deleted == {"block_unsupported": 1}
            nursery.cancel_scope.cancel()


async def test_unknown_block_that_asks_to_be_discarded_is_removed() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            inbox = b.node.register("dtn://b/app")
            async with bare_peer(b) as peer:
                bundle = make_bundle(
                    "dtn://b/app",
                    b"kept",
                    extra_blocks=[unknown_block(BlockFlags.DISCARD_IF_UNPROCESSABLE)],
                )
                await peer.link.send(bundle.encode())
                delivery = await inbox.receive()
            assert delivery.payload == b"kept"
            assert delivery.bundle.find_block(200) is None
            nursery.cancel_scope.cancel()


async def test_unknown_block_without_flags_is_carried_along() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c")
            b = await start_node(nursery, "b", static_peers=(c.address,))
            inbox = c.node.register("dtn://c/app")
            await wait_until(lambda: b.node.statistics().sessions == 1)
            async with bare_peer(b) as peer:
                bundle = make_bundle("dtn://c/app", extra_blocks=[unknown_block(0)])
                await peer.link.send(bundle.encode())
                delivery = await inbox.receive()
            block = delivery.bundle.find_block(200)
            assert block is not None and block.data == b"\x01"
            nursery.cancel_scope.cancel()


async def test_expired_bundle_is_dropped_on_reception() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            async with bare_peer(b) as peer:
                stale = make_bundle("dtn://b/app", time_ms=800_000_000_000, lifetime_ms=1000)
                assert (await peer.link.send(stale.encode())).outcome is TransferOutcome.ACKED
            stats = b.node.statistics()
            assert (stats.deleted, stats.stored_bundles) == ({"lifetime_expired": 1}, 0)
            nursery.cancel_scope.cancel()


async def test_route_advertisement_from_a_stranger_is_ignored() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            advert = RouteAdvertisement(30.0, ((parse_eid("dtn://far/"), 1),))
            async with bare_peer(b) as peer:
                # From our neighbour t: learned.
                own = make_bundle("dtn://b/~routing", advert.encode())
                await peer.link.send(own.encode())
                await wait_until(lambda: any(r.pattern == "dtn://far/" for r in b.node.routes()))
                # Relayed from somebody else: still only t's session counts as the advertiser.
                bad = make_bundle("dtn://b/~routing", b"\x00", sequence=1)
                await peer.link.send(bad.encode())
            assert b.node.statistics().adverts_received == 1
            assert b.node.statistics().invalid == 1
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"node_id": "dtn://a/app"}, "not a node ID"),
        ({"node_id": "nonsense"}, "invalid node ID"),
        ({"listen": (("127.0.0.1", 70000),)}, "out of range"),
        ({"static_peers": (("127.0.0.1",),)}, "host, port"),
        ({"static_routes": (("dtn://x/*",),)}, "pattern, next hop"),
        ({"static_routes": (("http://x/*", "dtn://b/"),)}, "must start with dtn: or ipn:"),
        ({"static_routes": (("*", "dtn://b/app"),)}, "not a node ID"),
        ({"roles": ("",)}, "roles"),
        ({"store_quota_bytes": 0}, "store_quota_bytes"),
        ({"keepalive_s": 70000}, "keepalive_s"),
        ({"custody_retransmit_s": 0}, "custody_retransmit_s"),
        ({"janitor_interval_s": float("nan")}, "janitor_interval_s"),
        ({"hop_limit": 256}, "hop_limit"),
    ],
)
def test_config_is_validated(changes: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"node_id": "dtn://a/", "workdir": None, **changes}
    with pytest.raises(ConfigError, match=message):
        NodeConfig(**settings)  # type: ignore[arg-type]


def test_config_normalises_sequences_and_paths() -> None:
    config = NodeConfig(
        "ipn:7.0",
        "/tmp/x",  # type: ignore[arg-type]
        listen=[("127.0.0.1", 0)],  # type: ignore[arg-type]
        roles=["broker"],  # type: ignore[arg-type]
    )
    assert config.workdir == Path("/tmp/x")
    assert config.store_path == Path("/tmp/x/store")
    assert config.listen == (("127.0.0.1", 0),) and config.roles == ("broker",)
    assert str(config.node_eid) == "ipn:7.0"
    assert NodeConfig("dtn://a/", None).store_path is None
    assert str(parse_node_id("dtn://b/")) == "dtn://b/"


async def test_discovery_connects_two_nodes() -> None:
    service = f"_u{secrets.token_hex(5)}._tcp.local."
    discovery = {
        "discovery": True,
        "discovery_interfaces": ("127.0.0.1",),
        "discovery_service_type": service,
    }
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", roles=("broker",), **discovery)
            b = await start_node(nursery, "b", **discovery)
            inbox = b.node.register("dtn://b/app")
            await wait_until(lambda: a.node.statistics().sessions >= 1, timeout=25)
            await a.node.send("dtn://b/app", b"found you")
            assert (await inbox.receive()).payload == b"found you"
            assert b.node.peers()[0].node_id == "dtn://a/"
            nursery.cancel_scope.cancel()


async def test_sessions_over_tls(tmp_path: Path) -> None:
    import trustme

    from tests.convergence.link_fixtures import tls_settings

    ca = trustme.CA()
    tls_a = tls_settings(tmp_path, "a", ca, require=True, bundle_eids=["dtn://a/"])
    tls_b = tls_settings(tmp_path, "b", ca, require=True, bundle_eids=["dtn://b/"])
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b", tls=tls_b)
            a = await start_node(nursery, "a", tls=tls_a, static_peers=(b.address,))
            inbox = b.node.register("dtn://b/app")
            await a.node.send("dtn://b/app", b"secret")
            assert (await inbox.receive()).payload == b"secret"
            assert [p.tls for p in a.node.peers()] == [True]
            nursery.cancel_scope.cancel()


async def test_bundle_age_grows_while_a_bundle_waits() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            b = await start_node(nursery, "b")
            async with bare_peer(b) as peer:
                clockless = make_bundle(
                    "dtn://c/app", b"old", time_ms=0, extra_blocks=[BundleAgeBlock(1000)]
                )
                await peer.link.send(clockless.encode())
            await trio.sleep(0.3)  # b holds it: no route to c yet
            c = await start_node(nursery, "c", static_peers=(b.address,))
            delivery = await c.node.register("dtn://c/app").receive()
            age = delivery.bundle.bundle_age_ms
            assert age is not None and age >= 1300
            nursery.cancel_scope.cancel()
