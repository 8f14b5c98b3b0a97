"""The routing table and route advertisements (pure: no I/O, time passed in)."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpv7 import parse_eid
from ucp_dtn.agent import (
    MAX_METRIC,
    ConfigError,
    RouteAdvertisement,
    RouteAdvertisementError,
    RouteOrigin,
    RoutePattern,
    RoutingTable,
    is_routing_endpoint,
    routing_endpoint,
)

A, B, C, D, E = (parse_eid(f"dtn://{n}/") for n in "abcde")
NOW = 1_000.0


def table(*neighbours: object) -> RoutingTable:
    routing = RoutingTable(A)
    for node in neighbours:
        routing.neighbour_up(parse_eid(str(node)))
    return routing


# -- patterns ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "eid", "matches"),
    [
        ("*", "dtn://x/y", True),
        ("*", "ipn:5.1", True),
        ("dtn://b/*", "dtn://b/app", True),
        ("dtn://b/*", "dtn://b/", True),
        ("dtn://b/*", "dtn://bb/app", False),
        ("dtn://b/", "dtn://b/app/x", True),
        ("dtn://b/", "dtn://c/app", False),
        ("ipn:5.*", "ipn:5.7", True),
        ("ipn:5.*", "ipn:5.3.1", False),  # allocator 5, node 3: another node
        ("ipn:5.0", "ipn:5.99", True),
        ("ipn:5.0", "ipn:6.99", False),
        ("dtn://b/app", "dtn://b/app", True),
        ("dtn://b/app", "dtn://b/app2", False),
        ("dtn://b/ap*", "dtn://b/app2", True),
        ("dtn://b/ap*", "dtn://b/other", False),
    ],
)
def test_pattern_matching(pattern: str, eid: str, matches: bool) -> None:
    parsed = RoutePattern.parse(pattern)
    destination = parse_eid(eid)
    assert parsed.matches(destination, str(destination)) is matches


def test_pattern_specificity_orders_exact_node_prefix_default() -> None:
    exact = RoutePattern.parse("dtn://b/app").specificity
    prefix = RoutePattern.parse("dtn://b/ap*").specificity
    node = RoutePattern.parse("dtn://b/*").specificity
    assert RoutePattern.parse("dtn://b/").specificity == node
    assert exact > prefix > node > RoutePattern.parse("*").specificity == 0


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "non-empty"),
        ("http://x/*", "must start with dtn: or ipn:"),
        ("dtn:none", "null endpoint"),
        ("dtn://", "invalid route pattern"),
        ("ipn:x.y", "invalid route pattern"),
    ],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RoutePattern.parse(pattern)


# -- lookups ----------------------------------------------------------------------------------


def test_neighbour_route_and_no_route() -> None:
    routing = table(B)
    assert routing.next_hop(parse_eid("dtn://b/app"), now=NOW) == B
    assert routing.next_hop(parse_eid("dtn://c/app"), now=NOW) is None
    assert routing.next_hop(parse_eid("dtn:none"), now=NOW) is None


def test_static_route_needs_a_connected_next_hop() -> None:
    routing = table()
    routing.add_static("dtn://c/*", "dtn://b/")
    destination = parse_eid("dtn://c/x")
    assert routing.next_hop(destination, now=NOW) is None
    routing.neighbour_up(B)
    assert routing.next_hop(destination, now=NOW) == B
    routing.neighbour_down(B)
    assert routing.next_hop(destination, now=NOW) is None


def test_longest_pattern_wins_then_falls_back_when_its_hop_is_down() -> None:
    routing = table(B, C)
    routing.add_static("*", "dtn://b/")
    routing.add_static("dtn://x/*", "dtn://c/")
    assert routing.next_hop(parse_eid("dtn://x/1"), now=NOW) == C
    assert routing.next_hop(parse_eid("dtn://y/1"), now=NOW) == B
    routing.neighbour_down(C)
    assert routing.next_hop(parse_eid("dtn://x/1"), now=NOW) == B


def test_direct_neighbour_beats_static_route_of_same_specificity() -> None:
    routing = table(B, C)
    routing.add_static("dtn://c/*", "dtn://b/")
    assert routing.next_hop(parse_eid("dtn://c/app"), now=NOW) == C


def test_static_next_hop_resolved_through_other_routes() -> None:
    routing = table(B)
    routing.add_static("dtn://far/*", "dtn://c/")  # c is not a neighbour
    routing.add_static("dtn://c/*", "dtn://b/")
    assert routing.next_hop(parse_eid("dtn://far/x"), now=NOW) == B


def test_recursive_static_routes_do_not_loop() -> None:
    routing = table()
    routing.add_static("dtn://c/*", "dtn://d/")
    routing.add_static("dtn://d/*", "dtn://c/")
    assert routing.next_hop(parse_eid("dtn://c/x"), now=NOW) is None


def test_excluded_previous_hop_unless_it_is_the_destination() -> None:
    routing = table(B, C)
    routing.add_static("*", "dtn://b/")
    assert routing.next_hop(parse_eid("dtn://z/1"), now=NOW, exclude=[B]) is None
    assert routing.next_hop(parse_eid("dtn://b/1"), now=NOW, exclude=[B]) == B


def test_static_route_replaced_and_removed() -> None:
    routing = table(B)
    routing.add_static("dtn://c/*", "dtn://b/")
    routing.add_static("dtn://c/*", "dtn://b/", metric=5)
    assert [r.metric for r in routing.routes(now=NOW) if r.origin is RouteOrigin.STATIC] == [5]
    assert routing.remove_static("dtn://c/*", "dtn://b/")
    assert not routing.remove_static("dtn://c/*", "dtn://b/")
    with pytest.raises(ConfigError, match="metric"):
        routing.add_static("dtn://c/*", "dtn://b/", metric=MAX_METRIC)
    with pytest.raises(ConfigError, match="not a node ID"):
        routing.add_static("dtn://c/*", "dtn://b/app")


def test_version_moves_only_on_changes() -> None:
    routing = table()
    version = routing.version
    routing.neighbour_up(B)
    assert routing.version == version + 1
    routing.neighbour_up(B)  # a second session: nothing new
    routing.neighbour_down(B)
    assert routing.version == version + 1
    routing.neighbour_down(B)
    assert routing.version == version + 2
    assert not routing.neighbour_down(B)


# -- learned routes ---------------------------------------------------------------------------


def test_learned_routes_metric_expiry_and_best_choice() -> None:
    routing = table(B, C)
    routing.learn(B, {D: 1, E: 3}, expires_at=NOW + 30)
    routing.learn(C, {D: 2, E: 1}, expires_at=NOW + 30)
    assert routing.next_hop(parse_eid("dtn://d/x"), now=NOW) == B
    assert routing.next_hop(parse_eid("dtn://e/x"), now=NOW) == C
    # C goes away: its routes stay but are unusable, so e is reached via b.
    routing.neighbour_down(C)
    assert routing.next_hop(parse_eid("dtn://e/x"), now=NOW) == B
    assert routing.next_hop(parse_eid("dtn://e/x"), now=NOW + 31) is None
    assert routing.expire(NOW + 31) == 4
    assert routing.next_learned_expiry() is None


def test_advertisement_replaces_previous_one_and_ignores_self_and_far_routes() -> None:
    routing = table(B)
    routing.learn(B, {D: 1, E: 1}, expires_at=NOW + 30)
    version = routing.version
    routing.learn(B, {D: 1, E: 1}, expires_at=NOW + 60)  # a refresh changes no answer
    assert routing.version == version
    routing.learn(B, {D: 1, A: 1, B: 0, E: MAX_METRIC - 1}, expires_at=NOW + 60)
    learned = {r.pattern: r for r in routing.routes(now=NOW) if r.origin is RouteOrigin.LEARNED}
    assert set(learned) == {"dtn://d/"}
    assert learned["dtn://d/"].metric == 2
    assert learned["dtn://d/"].expires_at == NOW + 60
    assert routing.forget_learned_via(B) == 1
    assert routing.next_hop(parse_eid("dtn://d/x"), now=NOW) is None


def test_reachable_uses_split_horizon() -> None:
    routing = table(B, C)
    routing.learn(B, {D: 1}, expires_at=NOW + 30)
    routing.learn(C, {E: 2}, expires_at=NOW + 30)
    assert routing.reachable(now=NOW) == {B: 1, C: 1, D: 2, E: 3}
    assert routing.reachable(now=NOW, exclude_via=B) == {C: 1, E: 3}
    assert routing.reachable(now=NOW, exclude_via=C) == {B: 1, D: 2}
    assert routing.reachable(now=NOW + 31) == {B: 1, C: 1}


def test_routes_view_lists_every_kind() -> None:
    routing = table(B)
    routing.add_static("*", "dtn://c/")
    routing.learn(B, {D: 1}, expires_at=NOW + 30)
    kinds = {(r.pattern, r.next_hop, r.origin, r.usable) for r in routing.routes(now=NOW)}
    assert kinds == {
        ("dtn://b/", "dtn://b/", RouteOrigin.NEIGHBOUR, True),
        ("*", "dtn://c/", RouteOrigin.STATIC, False),
        ("dtn://d/", "dtn://b/", RouteOrigin.LEARNED, True),
    }
    assert routing.routes(now=NOW)[-1].pattern == "*"


def test_three_tables_converge_over_a_line() -> None:
    """a - b - c: each learns the far end through the middle; no counting to infinity after
    the middle is lost, because routes through a lost neighbour are unusable and lapse."""
    tables = {name: RoutingTable(parse_eid(f"dtn://{name}/")) for name in "abc"}
    tables["a"].neighbour_up(B)
    tables["b"].neighbour_up(A)
    tables["b"].neighbour_up(C)
    tables["c"].neighbour_up(B)
    links = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")]
    for _ in range(3):
        for sender, receiver in links:
            sender_node = parse_eid(f"dtn://{sender}/")
            receiver_node = parse_eid(f"dtn://{receiver}/")
            advert = tables[sender].reachable(now=NOW, exclude_via=receiver_node)
            tables[receiver].learn(sender_node, advert, expires_at=NOW + 30)
    assert tables["a"].next_hop(parse_eid("dtn://c/x"), now=NOW) == B
    assert tables["c"].next_hop(parse_eid("dtn://a/x"), now=NOW) == B
    assert tables["a"].reachable(now=NOW) == {B: 1, C: 2}


# -- advertisements ---------------------------------------------------------------------------


def test_advertisement_round_trip() -> None:
    advert = RouteAdvertisement(30.0, ((B, 1), (parse_eid("ipn:7.0"), 3)))
    assert RouteAdvertisement.decode(advert.encode()) == advert


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x83\x01", "not CBOR"),
        (cbor2.dumps({"v": 1}), "must be a 3"),
        (cbor2.dumps([2, 1000, []]), "version"),
        (cbor2.dumps([1, 0, []]), "lifetime"),
        (cbor2.dumps([1, 1000, {}]), "entries"),
        (cbor2.dumps([1, 1000, [["dtn://b/", 17]]]), "bad route advertisement entry"),
        (cbor2.dumps([1, 1000, [["dtn://b/", "1"]]]), "bad route advertisement entry"),
        (cbor2.dumps([1, 1000, [["dtn://b/app", 1]]]), "not a node ID"),
        (cbor2.dumps([1, 1000, [["nope", 1]]]), "bad node ID"),
    ],
)
def test_bad_advertisements(payload: bytes, message: str) -> None:
    with pytest.raises(RouteAdvertisementError, match=message):
        RouteAdvertisement.decode(payload)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_advertisement_errors(data: bytes) -> None:
    with contextlib.suppress(RouteAdvertisementError):
        RouteAdvertisement.decode(data)


@pytest.mark.parametrize(
    ("node", "endpoint"),
    [("dtn://b/", "dtn://b/~routing"), ("ipn:7.0", "ipn:7.65534"), ("ipn:3.7.0", "ipn:3.7.65534")],
)
def test_routing_endpoints(node: str, endpoint: str) -> None:
    eid = routing_endpoint(parse_eid(node))
    assert str(eid) == endpoint
    assert is_routing_endpoint(eid)
    assert not is_routing_endpoint(parse_eid(node))
