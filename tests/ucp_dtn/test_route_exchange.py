"""Route advertisements as changes (ucp_dtn.agent.route_exchange), over simulated meshes.

Every node is the agent's own RoutingTable, RoleDirectory and RouteExchange; every session an
AdvertisementStream; advertisements go through their real encoding. No I/O, no clock: a round
is one advertisement interval. The meshes have the shape of bench/mesh.py: clusters whose hubs
form a ring, members attached to one hub each.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from bpv7 import EndpointID, parse_eid
from ucp_dtn.agent.advertisement import RouteAdvertisement
from ucp_dtn.agent.roles import RoleDirectory
from ucp_dtn.agent.route_exchange import (
    AdvertisementStream,
    Applied,
    RouteExchange,
    apply_advertisement,
    next_advertisement,
)
from ucp_dtn.agent.routing import RoutingTable

INTERVAL = 10.0


@dataclass
class Node:
    eid: EndpointID
    routing: RoutingTable
    roles: RoleDirectory
    exchange: RouteExchange = field(default_factory=RouteExchange)


@dataclass
class Sent:
    sender: str
    receiver: str
    advert: RouteAdvertisement
    octets: int


class Mesh:
    """Nodes, sessions (one stream each way) and an advertisement round."""

    def __init__(self, names: list[str], roles: dict[str, list[str]]) -> None:
        self.now = 1_000.0
        self.rng = random.Random(7)
        self.nodes = {
            name: Node(
                parse_eid(f"dtn://{name}/"),
                RoutingTable(parse_eid(f"dtn://{name}/")),
                RoleDirectory(parse_eid(f"dtn://{name}/"), roles.get(name, ())),
            )
            for name in names
        }
        self.streams: dict[tuple[str, str], AdvertisementStream] = {}

    def connect(self, a: str, b: str) -> None:
        for here, there in ((a, b), (b, a)):
            node = self.nodes[here]
            node.routing.neighbour_up(self.nodes[there].eid)
            stream = AdvertisementStream.new(3 * INTERVAL, self.rng)
            stream.answered = node.exchange.requests(self.nodes[there].eid)
            self.streams[(here, there)] = stream

    def disconnect(self, a: str, b: str) -> None:
        for here, there in ((a, b), (b, a)):
            node = self.nodes[here]
            if node.routing.neighbour_down(self.nodes[there].eid):
                node.exchange.forget(self.nodes[there].eid)
            del self.streams[(here, there)]

    def round(self, *, refresh: bool) -> list[Sent]:
        """Every session sends what it has to say (all first, then all are delivered)."""
        sent = []
        for (here, there), stream in sorted(self.streams.items()):
            node = self.nodes[here]
            advert = next_advertisement(
                stream,
                node.routing,
                node.roles,
                node.exchange,
                self.nodes[there].eid,
                now=self.now,
                refresh=refresh,
            )
            if advert is not None:
                sent.append(Sent(here, there, advert, len(advert.encode())))
        for item in sent:
            self.deliver(item)
        return sent

    def deliver(self, item: Sent) -> Applied:
        receiver = self.nodes[item.receiver]
        advert = RouteAdvertisement.decode(item.advert.encode())
        return apply_advertisement(
            receiver.routing,
            receiver.roles,
            receiver.exchange,
            self.nodes[item.sender].eid,
            advert,
            now=self.now,
        )

    def settle(self) -> int:
        """Change rounds until nothing is sent; how many rounds it took."""
        for rounds in range(1, 100):
            if not self.round(refresh=False):
                return rounds
        raise AssertionError("advertisements never stopped")

    def metrics(self, name: str) -> dict[str, int]:
        reachable = self.nodes[name].routing.reachable(now=self.now)
        return {str(node)[6:-1]: metric for node, metric in reachable.items()}


def clustered(n: int) -> tuple[Mesh, list[tuple[str, str]]]:
    """bench/mesh.py's shape: max(3, round(n / 8)) clusters, hubs in a ring."""
    clusters = max(3, round(n / 8))
    hubs = [f"hub{i}" for i in range(clusters)]
    members = [f"m{j}" for j in range(n - clusters)]
    roles = {hub: ["broker"] for hub in hubs[::2]} | {m: ["executor"] for m in members}
    mesh = Mesh([*hubs, *members], roles)
    edges = [(hubs[i], hubs[(i + 1) % clusters]) for i in range(clusters)]
    edges += [(member, hubs[j % clusters]) for j, member in enumerate(members)]
    for a, b in edges:
        mesh.connect(a, b)
    return mesh, edges


def shortest(edges: list[tuple[str, str]], start: str) -> dict[str, int]:
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    seen = {start: 0}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for there in neighbours[here]:
            if there not in seen:
                seen[there] = seen[here] + 1
                queue.append(there)
    del seen[start]
    return seen


def assert_shortest_paths(mesh: Mesh, edges: list[tuple[str, str]]) -> None:
    for name in mesh.nodes:
        assert mesh.metrics(name) == shortest(edges, name), name


def assert_brokers_known(mesh: Mesh) -> None:
    brokers = [name for name in mesh.nodes if "broker" in mesh.nodes[name].roles.local_roles]
    for name, node in mesh.nodes.items():
        for broker in brokers:
            roles = node.roles.roles_of(mesh.nodes[broker].eid, now=mesh.now)
            assert roles == {"broker"}, (name, broker)


@pytest.mark.parametrize("n", [25, 50])
def test_routes_and_roles_settle_and_follow_a_cut_and_its_return(n: int) -> None:
    mesh, edges = clustered(n)
    mesh.settle()
    assert_shortest_paths(mesh, edges)
    assert_brokers_known(mesh)
    mesh.disconnect("hub0", "hub1")
    mesh.settle()
    assert_shortest_paths(mesh, [e for e in edges if set(e) != {"hub0", "hub1"}])
    # (The roles of nodes that stayed reachable are not lost on the way: a neighbour that
    # briefly lost a node withdraws only what it said itself.)
    assert_brokers_known(mesh)
    mesh.connect("hub0", "hub1")
    mesh.settle()
    assert_shortest_paths(mesh, edges)
    assert_brokers_known(mesh)
    for _ in range(5):  # and they stay, refreshed by empty change lists
        mesh.now += INTERVAL
        mesh.round(refresh=True)
    assert_brokers_known(mesh)


@pytest.mark.parametrize("n", [10, 25, 50])
def test_a_quiet_mesh_costs_each_node_the_same_per_session_whatever_its_size(n: int) -> None:
    mesh, _ = clustered(n)
    mesh.settle()
    # One interval with nothing changing: each session carries one empty change list.
    sent = mesh.round(refresh=True)
    assert len(sent) == len(mesh.streams)
    assert all(not s.advert.complete and not s.advert.reachable for s in sent)
    per_session = {s.octets for s in sent}
    # The same few octets per session at every size (the stream's epoch and sequence vary in
    # their CBOR length by a byte or so): control traffic grows with a node's neighbours only.
    assert max(per_session) <= 32
    for routing_node in mesh.nodes.values():
        assert routing_node.exchange.resyncs == 0
    # ... while one complete table, what every interval used to carry, grows with the mesh.
    hub = mesh.nodes["hub0"]
    member = next(m for m, h in mesh.streams if h == "hub0" and m.startswith("m"))
    table = AdvertisementStream.new(3 * INTERVAL, random.Random(1))
    complete = next_advertisement(
        table,
        hub.routing,
        hub.roles,
        hub.exchange,
        mesh.nodes[member].eid,
        now=mesh.now,
        refresh=True,
    )
    assert complete is not None and complete.complete
    assert len(complete.reachable) == n - 2  # everyone but the member and the hub
    assert len(complete.encode()) > 8 * max(per_session) * (n / 10)


def test_quiet_traffic_per_node_does_not_grow_from_10_to_50_nodes() -> None:
    def per_node(n: int) -> float:
        mesh, _ = clustered(n)
        mesh.settle()
        sent = mesh.round(refresh=True)
        return sum(s.octets for s in sent) / len(mesh.nodes)

    small, large = per_node(10), per_node(50)
    # Per node: 2 * (sessions / nodes) small messages; the average degree stays about 2.
    assert large <= small * 1.15


def test_a_change_list_carries_only_what_changed() -> None:
    mesh, edges = clustered(50)
    mesh.settle()
    mesh.disconnect("hub0", "hub1")
    sent: list[Sent] = []
    for _ in range(100):
        batch = mesh.round(refresh=False)
        if not batch:
            break
        sent += batch
    assert sent and all(not item.advert.complete for item in sent)
    # Only sessions whose sender's view changed say anything: members of clusters far from
    # the cut hear of it, but nothing that did not change is repeated to anybody.
    senders = {item.sender for item in sent}
    assert len(senders) < len(mesh.nodes)
    # Far fewer entries than complete tables would have carried.
    entries = sum(len(item.advert.reachable) for item in sent)
    assert entries < len(sent) * (len(mesh.nodes) - 2) / 3
    assert_shortest_paths(mesh, [e for e in edges if set(e) != {"hub0", "hub1"}])


def test_a_change_list_out_of_sequence_asks_for_the_complete_table() -> None:
    mesh = Mesh(["a", "b", "c", "d"], {})
    for a, b in (("a", "b"), ("b", "c")):
        mesh.connect(a, b)
    mesh.settle()
    # Two changes at b, its two change lists to a delivered in the wrong order.
    mesh.connect("c", "d")
    first = next_advertisement(
        mesh.streams[("c", "b")], mesh.nodes["c"].routing, mesh.nodes["c"].roles,
        mesh.nodes["c"].exchange, mesh.nodes["b"].eid, now=mesh.now, refresh=False,
    )  # fmt: skip
    assert first is not None
    mesh.deliver(Sent("c", "b", first, 0))
    to_a = mesh.streams[("b", "a")]
    b = mesh.nodes["b"]
    one = next_advertisement(
        to_a, b.routing, b.roles, b.exchange, mesh.nodes["a"].eid, now=mesh.now, refresh=True
    )
    two = next_advertisement(
        to_a, b.routing, b.roles, b.exchange, mesh.nodes["a"].eid, now=mesh.now, refresh=True
    )
    assert one is not None and two is not None and one.reachable and not two.reachable
    assert mesh.deliver(Sent("b", "a", two, 0)) is Applied.OUT_OF_SYNC
    assert mesh.deliver(Sent("b", "a", one, 0)) is Applied.OUT_OF_SYNC  # its stream is lost
    assert "d" not in mesh.metrics("a")
    # a's next advertisement asks b for everything; b's answer is complete; a catches up.
    mesh.settle()
    assert mesh.nodes["a"].exchange.resyncs == 2
    assert mesh.metrics("a") == {"b": 1, "c": 2, "d": 3}
    assert not mesh.nodes["a"].exchange.wants_complete_from(mesh.nodes["b"].eid)


def test_empty_change_lists_keep_routes_and_roles_alive_and_silence_lets_them_lapse() -> None:
    mesh = Mesh(["a", "b", "c"], {"c": ["broker"]})
    mesh.connect("a", "b")
    mesh.connect("b", "c")
    mesh.settle()
    a = mesh.nodes["a"]
    c = mesh.nodes["c"].eid
    for _ in range(10):  # ten intervals of refreshes: far beyond the 3-interval lifetime
        mesh.now += INTERVAL
        mesh.round(refresh=True)
    assert a.routing.next_hop(c, now=mesh.now) == mesh.nodes["b"].eid
    assert a.roles.roles_of(c, now=mesh.now) == {"broker"}
    mesh.now += 3 * INTERVAL + 1  # nothing heard for three intervals
    a.routing.expire(mesh.now)
    assert a.routing.next_hop(c, now=mesh.now) is None
    assert a.roles.roles_of(c, now=mesh.now) == frozenset()


def test_a_role_change_travels_as_a_change() -> None:
    mesh = Mesh(["a", "b", "c"], {"c": ["executor"]})
    mesh.connect("a", "b")
    mesh.connect("b", "c")
    mesh.settle()
    mesh.nodes["c"].roles.set_local(["executor", "broker"])
    sent = []
    for _ in range(5):
        sent += mesh.round(refresh=False)
    assert all(not s.advert.complete and not s.advert.reachable for s in sent)
    assert mesh.nodes["a"].roles.roles_of(mesh.nodes["c"].eid, now=mesh.now) == {
        "broker",
        "executor",
    }


def test_two_sessions_with_one_neighbour_are_two_streams() -> None:
    mesh = Mesh(["a", "b", "c"], {})
    mesh.connect("a", "b")
    mesh.connect("b", "c")
    mesh.settle()
    # A second session a-b: its own streams, complete first, then both streams' change lists
    # apply (neither confuses the other).
    second = AdvertisementStream.new(3 * INTERVAL, random.Random(3))
    b = mesh.nodes["b"]
    full = next_advertisement(
        second, b.routing, b.roles, b.exchange, mesh.nodes["a"].eid, now=mesh.now, refresh=True
    )
    assert full is not None and full.complete
    assert mesh.deliver(Sent("b", "a", full, 0)) is Applied.COMPLETE
    for _ in range(3):
        mesh.round(refresh=True)
        again = next_advertisement(
            second, b.routing, b.roles, b.exchange, mesh.nodes["a"].eid, now=mesh.now,
            refresh=True,
        )  # fmt: skip
        assert again is not None
        assert mesh.deliver(Sent("b", "a", again, 0)) is Applied.CHANGES
    assert mesh.nodes["a"].exchange.resyncs == 0
