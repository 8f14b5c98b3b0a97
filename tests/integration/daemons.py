"""Real ``ucp-bpnode`` processes for the integration tests.

:class:`Network` is :class:`ucp_dtn.localnet.LocalNetwork` (daemons on 127.0.0.1 with port 0,
ready lines, restarts on the same port, lossy-link relays) with verbose daemon logs, which
:meth:`Network.logs` shows when a test fails, and everything killed at the end. The rest of this
module are helpers that send and receive many bundles through the daemons' API. Every wait is
bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ucp_dtn.appapi import AppApiClient, AppApiClosedError
from ucp_dtn.localnet import LocalNetwork, Ready, parse_ready_line, run_ucp
from ucp_dtn.localnet import LocalNode as Daemon

__all__ = [
    "Daemon",
    "Inbox",
    "Network",
    "Ready",
    "parse_ready_line",
    "run_ucp",
    "send_many",
    "stats_line",
    "ucp_sender",
    "wait_until",
]


class Network(LocalNetwork):
    """The daemons and relays of one test: verbose logs (shown when the test fails), and
    everything killed at the end (no graceful shutdown to wait for)."""

    def __init__(self, base: Path) -> None:
        super().__init__(base, verbose=True)

    @property
    def daemons(self) -> list[Daemon]:
        return list(self.nodes.values())

    async def close(self, *, graceful: bool = False) -> None:
        await super().close(graceful=graceful)


async def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll the async ``predicate`` until it returns something true; bounded by ``timeout``."""
    with trio.move_on_after(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await trio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def stats_line(info: dict[str, Any]) -> str:
    return json.dumps(info["statistics"], sort_keys=True)


class Inbox:
    """Receives on one daemon's endpoint in the background; counts every payload."""

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self.arrived = trio.Event()
        self.on_count: dict[int, trio.Event] = {}

    def reached(self, count: int) -> trio.Event:
        event = self.on_count.setdefault(count, trio.Event())
        if len(self.counts) >= count:
            event.set()
        return event

    async def run(self, daemon: Daemon, endpoint: str) -> None:
        async with daemon.client() as client:
            registration = await client.register(endpoint, window=64)
            async for bundle in registration:
                self.counts[bundle.payload] = self.counts.get(bundle.payload, 0) + 1
                await bundle.confirm()
                for count, event in self.on_count.items():
                    if len(self.counts) >= count:
                        event.set()

    def duplicates(self) -> list[bytes]:
        return [payload for payload, n in self.counts.items() if n > 1]


async def send_many(
    daemon: Daemon,
    payloads: list[bytes],
    acknowledged: set[bytes],
    destination: str = "dtn://c/inbox",
) -> None:
    """Send ``payloads`` (pipelined); those whose ID came back go into ``acknowledged``.
    Stops quietly when the daemon dies."""

    async def one(client: AppApiClient, payload: bytes) -> None:
        try:
            await client.send(destination, payload)
        except AppApiClosedError:
            return
        acknowledged.add(payload)

    try:
        async with daemon.client() as client, trio.open_nursery() as nursery:
            limiter = trio.Semaphore(64)
            for payload in payloads:
                await limiter.acquire()

                async def task(payload: bytes = payload) -> None:
                    try:
                        await one(client, payload)
                    finally:
                        limiter.release()

                nursery.start_soon(task)
    except AppApiClosedError:
        pass


async def ucp_sender(daemon: Daemon, payloads: list[bytes], acknowledged: set[bytes]) -> None:
    """``ucp send`` each payload in turn; an ID printed means acknowledged."""
    for payload in payloads:
        result = await daemon.ucp("send", "-d", "dtn://c/inbox", stdin=payload)
        if result.returncode == 0 and result.stdout.startswith(b"dtn://a/-"):
            acknowledged.add(payload)
