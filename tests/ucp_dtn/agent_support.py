"""Helpers for the bundle node tests: start and stop nodes inside one trio run, wait for a
condition, talk TCPCL to a node as a bare peer (no agent behind it)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from bpv7 import Bundle, CreationTimestamp, decode_bundle
from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.listener import open_link
from ucp_dtn.agent import BundleNode, NodeConfig, is_routing_endpoint
from ucp_dtn.store import BundleStore, MemoryBundleStore, StoreClosedError

LOOPBACK = (("127.0.0.1", 0),)


@dataclass
class RunningNode:
    """A node started by :func:`start_node`; ``stop()`` cancels just this node."""

    node: BundleNode
    scope: trio.CancelScope
    stopped: trio.Event

    @property
    def address(self) -> tuple[str, int]:
        return self.node.listen_addresses[0]

    async def stop(self) -> None:
        self.scope.cancel()
        await self.stopped.wait()


async def start_node(
    nursery: trio.Nursery,
    name: str,
    *,
    store: BundleStore | None = None,
    clock: Callable[[], float] | None = None,
    listen: tuple[tuple[str, int], ...] = LOOPBACK,
    **config: Any,
) -> RunningNode:
    """Start node ``dtn://<name>/`` (in memory unless ``workdir`` or ``store`` is given)."""
    config.setdefault("workdir", None)
    node_config = NodeConfig(node_id=f"dtn://{name}/", listen=listen, **config)
    node = (
        BundleNode(node_config, store=store)
        if clock is None
        else BundleNode(node_config, store=store, clock=clock)
    )
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(task_status: trio.TaskStatus[BundleNode] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await node.run(task_status=task_status)
        finally:
            stopped.set()

    await nursery.start(run)
    return RunningNode(node, scope, stopped)


async def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


@dataclass
class BarePeer:
    """A TCPCL peer with no agent behind it: the test drives it by hand."""

    link: TcpclLink
    bundles: trio.MemoryReceiveChannel[Bundle]

    async def receive(self, *, timeout: float = 10.0) -> Bundle:
        """The next bundle the node sent us (route advertisements left out)."""
        with trio.fail_after(timeout):
            return await self.bundles.receive()


@asynccontextmanager
async def bare_peer(node: RunningNode, name: str = "t") -> AsyncIterator[BarePeer]:
    """A session with ``node`` from a bare peer ``dtn://<name>/``; everything the node sends
    is acknowledged and collected in ``bundles``."""
    config = LinkConfig(node_id=f"dtn://{name}/", keepalive_s=0)
    send, receive = trio.open_memory_channel[Bundle](math.inf)

    async def collect(link: TcpclLink) -> None:
        async for transfer in link:
            await transfer.accept()
            bundle = decode_bundle(transfer.data)
            if not is_routing_endpoint(bundle.primary.destination):
                send.send_nowait(bundle)

    async with open_link(*node.address, config) as link, trio.open_nursery() as nursery:
        nursery.start_soon(collect, link)
        yield BarePeer(link, receive)
        nursery.cancel_scope.cancel()


def make_bundle(
    destination: str,
    payload: bytes = b"data",
    *,
    source: str = "dtn://t/",
    time_ms: int = 849_000_000_000,
    sequence: int = 0,
    lifetime_ms: int = 3_600_000 * 1000,
    **kwargs: Any,
) -> Bundle:
    """A bundle as a bare peer would send it."""
    return Bundle.build(
        source=source,
        destination=destination,
        payload=payload,
        creation=CreationTimestamp(time_ms, sequence),
        lifetime_ms=lifetime_ms,
        **kwargs,
    )


class StoreClosingAtConfirm(MemoryBundleStore):
    """A node's in-memory store that answers a role's confirmation as a store its node's
    shutdown has just closed does (the node and its roles cancelled at once, the store's close
    first); the rest of the node goes on as usual."""

    def __init__(self) -> None:
        super().__init__(10**8)
        self.closing = False

    async def delete_later(self, keys: Sequence[str]) -> list[bool]:
        if self.closing:
            raise StoreClosedError("the bundle store is closed")
        return await super().delete_later(keys)
