"""``python -m convergence.lossy``: run one lossy TCP relay from the command line.

The relay listens on ``--listen``, relays every connection to ``--target`` through a link that
misbehaves as the flags say, prints ``listening on HOST:PORT -> HOST:PORT`` on stdout once it is
ready (so a script started with ``--listen 127.0.0.1:0`` can read the port), and runs until
SIGINT or SIGTERM, then exits 0. ``-v`` logs connections refused and cut, ``-vv`` everything.
``--schedule 2m`` prints the cuts, stalls and down windows of the first two minutes instead, and
exits. Bad arguments print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import trio

from ..quantities import (
    DEFAULT_TCPCL_PORT,
    AddressError,
    QuantityError,
    format_address,
    format_duration,
    parse_address,
    parse_duration,
    parse_duration_list,
    parse_rate,
    parse_size_list,
    parse_window_list,
)
from .model import FaultKind, LinkModel, LinkProfile, Window
from .relay import LossyRelay

__all__ = ["build_parser", "listen_address", "main", "profile_from_args", "target_address"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Turn a parser's QuantityError or AddressError into argparse's own error, keeping our
    message (argparse hides a plain ValueError's text)."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except (QuantityError, AddressError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Report a bad argument on one line and exit 2 (no usage dump)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = _Parser(
        prog="python -m convergence.lossy",
        description="Relay TCP connections through a link that cuts, stalls, delays and "
        "throttles them on a seeded, reproducible schedule.",
        epilog="Durations: 250us, 250ms, 10s, 2m, 1h15s. Sizes: 1500, 64KiB, 1MB. Rates: 1MB/s, "
        "8Mbit/s. Windows: START-END, e.g. 30s-40s; lists are comma-separated.",
    )
    add = parser.add_argument
    add(
        "--listen",
        type=_argument(listen_address),
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:0, a free port)",
    )
    add(
        "--target",
        type=_argument(target_address),
        metavar="HOST:PORT",
        help=f"where to relay to (port {DEFAULT_TCPCL_PORT} if omitted)",
    )
    add("--name", default="relay", help="name of the link in log lines")
    add("--seed", type=int, default=0, help="seed of the schedule (default 0)")
    add(
        "--drop-every",
        type=_argument(parse_duration),
        metavar="DURATION",
        help="cut connections at random, on average this often",
    )
    add(
        "--cut-at",
        type=_argument(parse_duration_list),
        default=(),
        metavar="TIMES",
        help="cut connections at these times after start, e.g. 5s,12s",
    )
    add(
        "--cut-after-bytes",
        type=_argument(parse_size_list),
        default=(),
        metavar="SIZES",
        help="cut the 1st, 2nd... connection after it has carried this many bytes",
    )
    add(
        "--stall-every",
        type=_argument(parse_duration),
        metavar="DURATION",
        help="stall the link at random, on average this often",
    )
    add(
        "--stall-for",
        type=_argument(parse_duration),
        default=1.0,
        metavar="DURATION",
        help="length of each random stall (default 1s)",
    )
    add(
        "--stall",
        type=_argument(parse_window_list),
        default=(),
        metavar="WINDOWS",
        help="stall the link during these windows, e.g. 10s-12s",
    )
    add(
        "--down",
        type=_argument(parse_window_list),
        default=(),
        metavar="WINDOWS",
        help="take the link down during these windows, e.g. 30s-40s,60s-65s",
    )
    add(
        "--down-every",
        type=_argument(parse_duration),
        metavar="DURATION",
        help="take the link down at random, on average this often",
    )
    add(
        "--down-for",
        type=_argument(parse_duration),
        default=1.0,
        metavar="DURATION",
        help="length of each random down window (default 1s)",
    )
    add(
        "--latency",
        type=_argument(parse_duration),
        default=0.0,
        metavar="DURATION",
        help="one-way delay (default 0)",
    )
    add(
        "--jitter",
        type=_argument(parse_duration),
        default=0.0,
        metavar="DURATION",
        help="delay varies uniformly by up to this much either way (default 0)",
    )
    add(
        "--bandwidth",
        type=_argument(parse_rate),
        metavar="RATE",
        help="bytes per second each way (default unlimited)",
    )
    add(
        "--schedule",
        type=_argument(parse_duration),
        metavar="DURATION",
        help="print the schedule of faults for this long after start, then exit",
    )
    add(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log connections refused and cut (-vv: everything)",
    )
    return parser


def profile_from_args(args: argparse.Namespace) -> LinkProfile:
    """The link profile the parsed arguments describe."""
    return LinkProfile(
        seed=args.seed,
        drop_every=args.drop_every,
        cut_at=args.cut_at,
        cut_after_bytes=args.cut_after_bytes,
        stall_every=args.stall_every,
        stall_for=args.stall_for,
        stalls=tuple(Window(start, end) for start, end in args.stall),
        down_every=args.down_every,
        down_for=args.down_for,
        down=tuple(Window(start, end) for start, end in args.down),
        latency=args.latency,
        jitter=args.jitter,
        bandwidth=args.bandwidth,
    )


def listen_address(text: str) -> tuple[str, int]:
    """Where to listen: ``HOST:PORT``; a host alone listens on a free port."""
    return parse_address(text, default_port=0)


def target_address(text: str) -> tuple[str, int]:
    """Where to relay to: ``HOST:PORT``; a host alone means TCPCL's port."""
    return parse_address(text, default_port=DEFAULT_TCPCL_PORT)


def _print_schedule(profile: LinkProfile, horizon: float) -> None:
    for fault in LinkModel(profile).faults(horizon):
        start = format_duration(round(fault.start, 3))
        if fault.kind is FaultKind.CUT:
            print(f"{start:>10}  cut")
        else:
            length = format_duration(round(fault.end - fault.start, 3))
            print(f"{start:>10}  {fault.kind.value} for {length}")


async def _serve(relay: LossyRelay) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(relay.run)
            host, port = relay.address
            print(
                f"listening on {format_address(host, port)} -> {format_address(*relay.target)}",
                flush=True,
            )
            async for signum in signals:
                logger.info("%s received: stopping", signal.Signals(signum).name)
                break
            nursery.cancel_scope.cancel()
    stats = relay.statistics()
    logger.info(
        "relay %s: %d connections, %d refused, %d cut, %d bytes to target, %d bytes to client",
        relay.name,
        stats.connections,
        stats.refused,
        stats.cuts,
        stats.bytes_to_target,
        stats.bytes_to_client,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile = profile_from_args(args)
    except ValueError as exc:  # LinkProfile's checks of the values together
        parser.error(str(exc))
    if args.schedule is not None:
        _print_schedule(profile, args.schedule)
        return 0
    if args.target is None:
        parser.error("--target is required")
    level = logging.WARNING if args.verbose == 0 else logging.INFO
    if args.verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    relay = LossyRelay(target=args.target, link=profile, listen=args.listen, name=args.name)
    failure: OSError | None = None
    try:
        trio.run(_serve, relay)
    except* OSError as group:
        first = group.exceptions[0]
        failure = first if isinstance(first, OSError) else OSError(str(first))
    if failure is not None:
        print(f"{parser.prog}: error: {failure}", file=sys.stderr)
        return 1
    return 0
