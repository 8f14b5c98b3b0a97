"""What replication costs, and how fast a lost replica is made again, with real daemons.

Set-up: a hub daemon (broker) and four datastore daemons, each connected to the hub (a star, as
a shelter's server with volunteers' machines around it); the client runs in this process and
reaches the hub. Every figure comes from the daemons' own TCPCL counters (``bytes_sent`` of
every session, read over the application API) and the client's.

1. **Idle traffic** (the baseline of the same run): link bytes per second while nothing is
   stored — heartbeats, route advertisements, broker syncs. It is subtracted from what follows.
2. **Cost per factor**: for replication factors 1, 2 and 3, ``--data`` data of ``--size`` bytes
   are put, and the run waits until every datum has its copies (``ucp data ls --replicas``).
   Reported: bytes sent on all links per byte stored (user bytes, once), split into the
   client's upload and the network's own links, beside the model of a star — every copy
   crosses two links (holder → hub → new holder), the first from the client crosses two too:
   ``2 x factor``.
3. **Restore after a loss**: ``kill -9`` of the datastore holding most replicated data; the
   time until every datum meets its factor again on the others (``ucp data ls --replicas``
   polled every 0.2 s; while the broker still counts the lost datastore — 3 s, its executor
   timeout — a listing waits up to 2 s for its answer). Reported beside the replica timeout it
   must wait out first (``--replica-timeout``) and beside the least time the copies need at
   the replication rate (bytes to copy / ``--rate``; copies from several holders run in
   parallel, one per link).

Run: ``.venv/bin/python bench/replication.py [--data 20] [--size 256KiB] [--rate 8MiB]``
(about a minute). Always exits 0.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from convergence.quantities import format_size, parse_duration, parse_size
from ucp_dtn.client import ClientSession, ClientSettings, put_data, replica_listing
from ucp_dtn.client.data import ReplicaEntry
from ucp_dtn.localnet import LocalNetwork, LocalNode

DATASTORES = 4
HEARTBEAT = "1s"
FACTORS = (1, 2, 3)


async def link_bytes(nodes: list[LocalNode]) -> int:
    """Bytes sent on every session of the live daemons."""
    total = 0
    for node in nodes:
        if not node.alive:
            continue
        info = await node.info()
        for peer in info["peers"]:
            stats: dict[str, Any] = peer.get("stats") or {}
            total += int(stats.get("bytes_sent", 0))
    return total


def client_bytes(session: ClientSession) -> int:
    total = 0
    for peer in session.node.peers():
        stats = peer.stats
        total += int(getattr(stats, "bytes_sent", 0))
    return total


async def wait_settled(
    session: ClientSession, names: set[str], timeout: float
) -> list[ReplicaEntry]:
    """Until every name of ``names`` meets its factor with no older write anywhere."""
    with trio.fail_after(timeout):
        while True:
            entries, _ = await replica_listing(session)
            found = [e for e in entries if e.name in names]
            if len(found) == len(names) and all(e.meets_factor and not e.stale for e in found):
                return found
            await trio.sleep(0.2)


async def run(args: argparse.Namespace) -> None:
    size = parse_size(args.size)
    rate = parse_size(args.rate)
    with tempfile.TemporaryDirectory() as base:
        network = LocalNetwork(Path(base))
        try:
            common = ["--heartbeat", HEARTBEAT, "--executor-timeout", "3s"]
            hub = await network.start(
                "hub",
                "--roles",
                "broker",
                "--replica-timeout",
                args.replica_timeout,
                *common,
                in_memory=True,
            )
            stores = [
                await network.start(
                    f"d{n}",
                    "--roles",
                    "datastore",
                    "-s",
                    hub.url,
                    "--replication-rate",
                    args.rate,
                    *common,
                )
                for n in range(1, DATASTORES + 1)
            ]
            daemons = [hub, *stores]
            settings = ClientSettings(
                home=Path(base) / "client", via=(hub.address,), request_timeout_s=2.0
            )
            async with ClientSession.open(settings) as session:
                with trio.fail_after(60):
                    while len(await session.datastores()) < DATASTORES:
                        await trio.sleep(0.5)
                await trio.sleep(2)

                # 1. Idle traffic.
                before, began = await link_bytes(daemons), time.monotonic()
                await trio.sleep(args.idle)
                idle_rate = (await link_bytes(daemons) - before) / (time.monotonic() - began)
                print(
                    f"idle traffic (heartbeats, routes, syncs): {idle_rate:,.0f} B/s on all links"
                )

                # 2. Cost per factor.
                stored = args.data * size
                print(
                    f"\n{args.data} data of {format_size(size)} per factor "
                    f"({format_size(stored)} stored), replication rate {args.rate}/s per link"
                )
                print(f"{'factor':>6}  {'link bytes / byte':>17}  {'client':>6}  {'network':>7}  "
                      f"{'model 2f':>8}  {'seconds':>7}")  # fmt: skip
                payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
                for factor in FACTORS:
                    names = {f"bench/f{factor}/{n}" for n in range(args.data)}
                    net0, client0 = await link_bytes(daemons), client_bytes(session)
                    began = time.monotonic()
                    for name in sorted(names):
                        outcome = await put_data(session, name, payload, replicas=factor)
                        if not outcome.stored:
                            raise RuntimeError(f"{name}: {outcome.detail}")
                    await wait_settled(session, names, timeout=120)
                    elapsed = time.monotonic() - began
                    network_sent = await link_bytes(daemons) - net0 - idle_rate * elapsed
                    client_sent = client_bytes(session) - client0
                    total = (network_sent + client_sent) / stored
                    print(
                        f"{factor:>6}  {total:>17.2f}  {client_sent / stored:>6.2f}  "
                        f"{network_sent / stored:>7.2f}  {2 * factor:>8}  {elapsed:>7.1f}"
                    )

                # 3. Restore after a loss.
                entries, _ = await replica_listing(session)
                replicated = [e for e in entries if e.replicas > 1]
                load: dict[str, int] = {}
                for entry in replicated:
                    for holder in entry.holders:
                        load[holder] = load.get(holder, 0) + entry.size
                victim_endpoint = max(load, key=lambda h: (load[h], h))
                victim = next(s for s in stores if victim_endpoint.startswith(s.node_id))
                to_copy = load[victim_endpoint]
                victim.kill()
                killed = time.monotonic()
                await wait_settled(session, {e.name for e in replicated}, timeout=300)
                restored = time.monotonic() - killed
                timeout_s = parse_duration(args.replica_timeout)
                print(
                    f"\nrestore after kill -9 of {victim.node_id} "
                    f"({len([e for e in replicated if victim_endpoint in e.holders])} replicas, "
                    f"{format_size(to_copy)} to copy again):"
                )
                print(
                    f"  every datum at its factor again after {restored:.1f} s; "
                    f"replica timeout {timeout_s:g} s first, then {restored - timeout_s:.1f} s "
                    f"of detection and copying (copying at the rate alone, one link: "
                    f"{to_copy / rate:.1f} s)"
                )
        finally:
            await network.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=int, default=20, help="data per factor (default 20)")
    parser.add_argument("--size", default="256KiB", help="size of each datum (default 256KiB)")
    parser.add_argument(
        "--rate", default="8MiB", help="replication rate per link, per second (default 8MiB)"
    )
    parser.add_argument("--replica-timeout", default="2s", help="the brokers' (default 2s)")
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of idle traffic measured (default 5)"
    )
    args = parser.parse_args()
    print(
        f"replication: Python {platform.python_version()}, {platform.machine()}, "
        f"{sys.platform}; a hub broker and {DATASTORES} datastores, real daemons on loopback"
    )
    trio.run(run, args)


if __name__ == "__main__":
    main()
