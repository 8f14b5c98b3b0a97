"""The agent's role directory: roles travel with route advertisements and discovery."""

from __future__ import annotations

import cbor2
import pytest
import trio

from bpv7 import parse_eid
from tests.ucp_dtn.agent_support import start_node, wait_until
from ucp_dtn.agent import RouteAdvertisement, RouteAdvertisementError
from ucp_dtn.agent.roles import MAX_ROLES_PER_NODE, RoleDirectory


def test_advertisement_roles_round_trip_and_old_form() -> None:
    b, c = parse_eid("dtn://b/"), parse_eid("dtn://c/")
    advert = RouteAdvertisement(30.0, ((c, 1),), ((b, frozenset({"broker"})),))
    assert RouteAdvertisement.decode(advert.encode()) == advert
    # The three-item form (no roles) is still read, and written when there are no roles.
    plain = RouteAdvertisement(30.0, ((c, 1),))
    assert len(cbor2.loads(plain.encode())) == 3
    assert RouteAdvertisement.decode(plain.encode()) == plain


@pytest.mark.parametrize(
    "roles",
    [
        "broker",
        [["dtn://b/", "broker"]],
        [["dtn://b/x", ["broker"]]],
        [["dtn://b/", [1]]],
        [["dtn://b/", ["r"] * (MAX_ROLES_PER_NODE + 1)]],
    ],
)
def test_malformed_role_entries_are_rejected(roles: object) -> None:
    payload = cbor2.dumps([1, 30_000, [], roles])
    with pytest.raises(RouteAdvertisementError):
        RouteAdvertisement.decode(payload)


def test_directory_expiry_and_own_entry() -> None:
    me, other = parse_eid("dtn://a/"), parse_eid("dtn://b/")
    directory = RoleDirectory(me, ["Executor"])
    directory.learn(other, ["broker", " "], expires_at=10.0)
    directory.learn(me, ["broker"], expires_at=10.0)  # never overrides our own roles
    assert directory.local_roles == {"executor"}
    assert directory.nodes_with_role("broker", now=5.0) == [other]
    assert directory.nodes_with_role("broker", now=10.0) == []
    assert directory.known([other], now=5.0) == {me: {"executor"}, other: {"broker"}}
    directory.expire(11.0)
    assert directory.roles_of(other, now=0.0) == frozenset()


async def test_roles_spread_with_route_advertisements() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            fast = {"route_advert_interval_s": 0.2}
            c = await start_node(nursery, "c", roles=("broker",), **fast)
            b = await start_node(nursery, "b", **fast)
            a = await start_node(nursery, "a", **fast)
            await b.node.connect(*c.address)
            await a.node.connect(*b.address)
            node_c, node_b = parse_eid("dtn://c/"), parse_eid("dtn://b/")
            await wait_until(lambda: a.node.nodes_with_role("broker") == [(node_c, 2)])
            assert c.node.nodes_with_role("broker") == [(c.node.node_id, 0)]
            # b promotes itself: a hears of it with the next advertisement, nearest first.
            b.node.set_roles(["broker", "datastore"])
            await wait_until(lambda: a.node.nodes_with_role("broker") == [(node_b, 1), (node_c, 2)])
            assert a.node.nodes_with_role("datastore") == [(node_b, 1)]
            # c leaves: its role lapses with its routes.
            await c.stop()
            await wait_until(lambda: a.node.nodes_with_role("broker") == [(node_b, 1)])
            nursery.cancel_scope.cancel()
