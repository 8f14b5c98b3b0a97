"""Snapshots of real in-process nodes: the map of a chain (neighbour, node behind it by a
learned route), rates from two snapshots (clock passed in), bundles with no route."""

from __future__ import annotations

import itertools

import trio

from ucp_dtn.dashboard import NodeSources, SnapshotBuilder

from ..agent_support import start_node, wait_until


async def test_map_of_a_chain_shows_the_node_behind_the_neighbour() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            fast = {"route_advert_interval_s": 0.2}
            a = await start_node(nursery, "a", **fast)
            b = await start_node(nursery, "b", roles=("broker",), **fast)
            c = await start_node(nursery, "c", roles=("executor",), **fast)
            await a.node.connect(*b.address)
            await b.node.connect(*c.address)
            await wait_until(
                lambda: any(r.pattern == "dtn://c/" and r.usable for r in a.node.routes())
            )
            await wait_until(lambda: "dtn://c/" in a.node.known_roles())
            snapshot = SnapshotBuilder(NodeSources(a.node)).build()
            nursery.cancel_scope.cancel()
    nodes = {n.node_id: (n.kind, n.roles, n.reachable, n.hops) for n in snapshot.mesh_nodes}
    assert nodes == {
        "dtn://a/": ("self", (), True, 0),
        "dtn://b/": ("neighbour", ("broker",), True, 1),
        "dtn://c/": ("remote", ("executor",), True, 2),
    }
    links = {(link.source, link.target, link.kind) for link in snapshot.mesh_links}
    assert links == {("dtn://a/", "dtn://b/", "session"), ("dtn://b/", "dtn://c/", "route")}
    assert snapshot.broker is None and snapshot.executors == ()


async def test_rates_are_differences_between_two_snapshots() -> None:
    clock = itertools.count(100.0, 2.0)  # two seconds between snapshots
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            b = await start_node(nursery, "b")
            await a.node.connect(*b.address)
            builder = SnapshotBuilder(NodeSources(a.node), clock=lambda: next(clock))
            first = builder.build()
            for n in range(6):
                await a.node.send("dtn://b/inbox", b"x" * 1000 + bytes([n]))
            await wait_until(lambda: a.node.statistics().forwarded >= 6)
            second = builder.build()
            # A bundle for a node nobody knows a route to waits in the store.
            await a.node.send("dtn://nowhere/inbox", b"later")
            third = builder.build()
            nursery.cancel_scope.cancel()
    assert first.rates["forwarded"] is None and first.peers[0].send_bps is None
    assert second.rates["forwarded"] == 3.0 and second.rates["created"] == 3.0
    (peer,) = second.peers
    assert peer.node_id == "dtn://b/" and peer.bundles_sent == 6
    assert peer.send_bps is not None and peer.send_bps >= 6 * 1000 / 2.0
    assert third.store.unrouted == 1 and third.store.pending_forward == 1
    assert third.store.waiting_by_hop == {}
