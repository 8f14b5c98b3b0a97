"""``python -m ucp_dtn.discovery``: announce one node and print the peers it sees as JSON lines.

A debugging tool (what does this node see on the link?) and the peer process of the
multi-process tests. Each output line is one JSON object:

- ``{"event": "started", "service_name": ...}`` once our announcement went out;
- ``{"event": "appeared" | "updated" | "disappeared", "peer": {...}}`` per peer event;
- ``{"event": "stopped", "statistics": {...}}`` after a clean shutdown.

It stops on SIGINT or SIGTERM, and with ``--stop-on-eof`` when its standard input closes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import (
    DEFAULT_SERVICE_TYPE,
    DiscoveredPeer,
    Discovery,
    DiscoveryConfigError,
    IPVersion,
    PeerAppeared,
    PeerDisappeared,
    PeerEvent,
    PeerUpdated,
    parse_address,
)

_IP_VERSIONS = {"v4": IPVersion.V4Only, "v6": IPVersion.V6Only, "all": IPVersion.All}


def peer_to_json(peer: DiscoveredPeer) -> dict[str, Any]:
    """A JSON-ready dict of ``peer`` (roles sorted, addresses as [host, port] pairs)."""
    return {
        "node_id": peer.node_id,
        "addresses": [list(address) for address in peer.addresses],
        "roles": sorted(peer.roles),
        "tls": peer.tls,
        "tcpcl_version": peer.tcpcl_version,
        "service_name": peer.service_name,
    }


def event_to_json(event: PeerEvent) -> dict[str, Any]:
    """A JSON-ready dict of a peer event."""
    kind = {PeerAppeared: "appeared", PeerUpdated: "updated", PeerDisappeared: "disappeared"}
    return {"event": kind[type(event)], "peer": peer_to_json(event.peer)}


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


def _listen_address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ucp_dtn.discovery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--node-id", required=True, help="our node ID, e.g. dtn://shelter-3/")
    parser.add_argument(
        "--listen",
        type=_listen_address,
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="a TCPCL listen address to announce ([v6]:port for IPv6); repeat, preferred first",
    )
    parser.add_argument("--roles", default="", help="comma list, e.g. broker,executor")
    parser.add_argument("--tls", action="store_true", help="announce a TLS-capable listener")
    parser.add_argument("--service-type", default=DEFAULT_SERVICE_TYPE)
    parser.add_argument("--instance-name", default=None)
    parser.add_argument(
        "--interface",
        action="append",
        default=None,
        metavar="IP",
        help="run mDNS on this interface address only; repeat (default: all interfaces)",
    )
    parser.add_argument("--ip-version", choices=sorted(_IP_VERSIONS), default=None)
    parser.add_argument("--record-ttl", type=int, default=None, metavar="SECONDS")
    parser.add_argument("--stop-on-eof", action="store_true", help="stop when stdin closes")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


async def _wait_for_eof() -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some():
            pass


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _signum in signals:
            return


async def _main(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {}
    if args.record_ttl is not None:
        options["record_ttl"] = args.record_ttl
    discovery = Discovery(
        args.node_id,
        args.listen,
        roles=[role.strip() for role in args.roles.split(",") if role.strip()],
        tls=args.tls,
        interfaces=args.interface,
        ip_version=_IP_VERSIONS[args.ip_version] if args.ip_version else None,
        service_type=args.service_type,
        instance_name=args.instance_name,
        max_buffered_events=float("inf"),
        **options,
    )
    async with trio.open_nursery() as nursery:

        async def stop_after(wait: Callable[[], Awaitable[None]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(stop_after, _wait_for_signal)
        if args.stop_on_eof:
            nursery.start_soon(stop_after, _wait_for_eof)
        service_name = await nursery.start(discovery.run)
        _print({"event": "started", "service_name": service_name})
        async for event in discovery.events:
            _print(event_to_json(event))
    _print({"event": "stopped", "statistics": dataclasses.asdict(discovery.statistics())})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    # zeroconf passes bytes formats to struct.pack (_utils/net.py), which under ``python -bb``
    # raises BytesWarning when the equal str format is already in struct's cache (CPython
    # gh-85943). Harmless; silence exactly that so this tool also runs under -bb (as in tests).
    warnings.filterwarnings("ignore", category=BytesWarning, module=r"zeroconf\._utils\.net")
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        trio.run(_main, args)
    except DiscoveryConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
