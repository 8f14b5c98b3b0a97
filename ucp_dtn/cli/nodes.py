"""``ucp nodes``: what the daemon knows: its peers, routes and store statistics."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .command import Subcommand, add_socket_flag, daemon, run_async

if TYPE_CHECKING:
    from ucp_dtn.appapi import NodeInfo

__all__ = ["NODES", "format_node_info"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print everything as one JSON object")
    add_socket_flag(parser)


def _size(count: object) -> str:
    if not isinstance(count, int):
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def _since(value: object) -> str:
    if not isinstance(value, int | float):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _address(value: object) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]}:{value[1]}"
    return str(value)


def _transfer_line(transfer: Mapping[str, Any]) -> str:
    """One transfer in progress: direction, octets done of the total, rate."""
    done = transfer.get("done", 0)
    total = transfer.get("total")
    seconds = transfer.get("seconds") or 0
    direction = "sending" if transfer.get("outgoing") else "receiving"
    of = f" of {_size(total)}" if isinstance(total, int) else ""
    percent = f" ({100 * done / total:.0f}%)" if isinstance(total, int) and total else ""
    rate = done / seconds if isinstance(done, int) and seconds else 0.0
    return f"{direction} {_size(done)}{of}{percent} at {_size(round(rate))}/s"


def format_node_info(info: NodeInfo) -> str:
    """The human-readable form of ``info``."""
    stats: Mapping[str, Any] = info.statistics
    roles = f" (roles: {', '.join(info.roles)})" if info.roles else ""
    lines = [f"node {info.node_id}{roles}"]
    lines.append(
        f"store: {stats.get('stored_bundles', '?')} bundles, {_size(stats.get('stored_bytes'))}"
        f" of {_size(stats.get('store_quota_bytes'))}"
        f" ({stats.get('pending_forward', 0)} to forward,"
        f" {stats.get('pending_delivery', 0)} to deliver,"
        f" {stats.get('custody_wait', 0)} awaiting custody signals)"
    )
    if stats.get("incoming_transfers"):
        lines.append(
            f"incoming: {stats.get('incoming_transfers')} transfers,"
            f" {_size(stats.get('incoming_memory_bytes'))} in memory,"
            f" {_size(stats.get('incoming_spooled_bytes'))} in spool files"
        )
    lines.append(f"peers ({len(info.peers)}):")
    for peer in info.peers:
        direction = "outgoing" if peer.get("active") else "incoming"
        lines.append(
            f"  {peer.get('node_id')}  {_address(peer.get('address'))}  {direction}"
            f"  tls={'yes' if peer.get('tls') else 'no'}  since {_since(peer.get('since'))}"
            f"  sent {peer.get('bundles_sent', 0)}  received {peer.get('bundles_received', 0)}"
            f"  in flight {peer.get('in_flight', 0)}"
        )
        transfers = peer.get("transfers")
        for transfer in transfers if isinstance(transfers, list) else ():
            lines.append("    " + _transfer_line(transfer))
    lines.append(f"routes ({len(info.routes)}):")
    for route in info.routes:
        usable = "usable" if route.get("usable") else "waiting"
        lines.append(
            f"  {route.get('pattern')}  via {route.get('next_hop')}  {route.get('origin')}"
            f"  metric {route.get('metric')}  {usable}"
        )
    counters = (
        "received",
        "created",
        "forwarded",
        "delivered",
        "duplicates",
        "refused_transfers",
        "custody_accepted",
        "custody_retransmitted",
        "partial_sent",
        "partial_kept",
    )
    lines.append(
        "counters: "
        + ", ".join(f"{name.replace('_', ' ')} {stats.get(name, 0)}" for name in counters)
    )
    deleted = stats.get("deleted")
    if isinstance(deleted, Mapping) and deleted:
        lines.append(
            "deleted: "
            + ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in sorted(deleted.items()))
        )
    return "\n".join(lines)


async def _nodes(args: argparse.Namespace) -> int:
    async with daemon(args) as client:
        info = await client.node_info()
    if args.json:
        print(json.dumps(asdict(info), sort_keys=True, default=str))
    else:
        print(format_node_info(info))
    return 0


NODES = Subcommand(
    name="nodes",
    help="show the daemon's node ID, peers, routes and store statistics",
    add_arguments=_add_arguments,
    run=lambda args: run_async(_nodes, args),
    client=False,
)
