"""The role mailbox over two real bundle nodes talking TCPCLv4 on 127.0.0.1."""

from __future__ import annotations

import pytest
import trio

from bpv7 import DtnEID, IpnEID, parse_eid
from tests.ucp_dtn.agent_support import start_node, wait_until
from ucp_dtn.roles import Mailbox, RequestTimeout, RoleName, parse_roles, role_endpoint
from ucp_dtn.roles.endpoints import role_of_endpoint
from ucp_dtn.ucp.messages import StatusQuery, StatusReply


def test_role_endpoints_for_both_schemes() -> None:
    assert str(role_endpoint("dtn://shelter-3/", RoleName.BROKER)) == "dtn://shelter-3/ucp/broker"
    assert role_endpoint(parse_eid("dtn://n/x"), "datastore") == DtnEID("n", "ucp/datastore")
    assert role_endpoint("ipn:7.0", RoleName.EXECUTOR) == IpnEID(0, 7, 4702)
    assert role_of_endpoint("dtn://n/ucp/executor") is RoleName.EXECUTOR
    assert role_of_endpoint("ipn:7.4703") is RoleName.DATASTORE
    assert role_of_endpoint("dtn://n/other") is None
    assert parse_roles("broker, executor,broker") == (RoleName.BROKER, RoleName.EXECUTOR)


def test_bad_roles_are_named() -> None:
    with pytest.raises(ValueError, match="unknown role 'brokr'"):
        parse_roles("brokr")
    with pytest.raises(ValueError, match="not a daemon role"):
        parse_roles("client")


async def test_request_reply_and_malformed_payloads_across_two_nodes() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a")
            b = await start_node(nursery, "b")
            await a.node.connect(*b.address)
            await wait_until(lambda: any(p.node_id == "dtn://b/" for p in a.node.peers()))

            broker = Mailbox(b.node, role_endpoint(b.node.node_id, RoleName.BROKER))
            client = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.CLIENT))
            await nursery.start(broker.run)
            await nursery.start(client.run)

            async def serve() -> None:
                while True:
                    incoming = await broker.receive()
                    assert isinstance(incoming.message, StatusQuery)
                    await broker.send(
                        incoming.source,
                        StatusReply(request_id=incoming.message.request_id, broker="dtn://b/"),
                    )
                    await incoming.done()

            nursery.start_soon(serve)
            # Garbage to the broker endpoint is dropped and counted, and does not stop it.
            await a.node.send(broker.endpoint, b"\xff not cbor")
            query = StatusQuery(request_id=client.next_request_id())
            [reply] = await client.request(broker.endpoint, query, timeout_s=10)
            assert isinstance(reply.message, StatusReply)
            assert reply.message.request_id == query.request_id
            assert reply.source == broker.endpoint
            await wait_until(lambda: broker.statistics().malformed == 1)
            assert client.statistics().replies == 1
            nursery.cancel_scope.cancel()


async def test_request_without_reply_times_out(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_node(nursery, "a", listen=())
        client = Mailbox(a.node, role_endpoint(a.node.node_id, RoleName.CLIENT))
        await nursery.start(client.run)
        query = StatusQuery(request_id=client.next_request_id())
        try:
            await client.request("dtn://nowhere/ucp/broker", query, timeout_s=5)
        except RequestTimeout as exc:
            assert "no reply from dtn://nowhere/ucp/broker within 5s" in str(exc)
        else:
            raise AssertionError("expected RequestTimeout")
        nursery.cancel_scope.cancel()
