"""What the client subcommands (``submit``, ``status``, ``collect``, ``run``, ``data``) share:
the flags saying how to reach a broker, turning them into
:class:`~ucp_dtn.client.ClientSettings`, and client errors as one-line ``ucp`` errors."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from convergence.lossy.units import QuantityError, parse_duration
from ucp_dtn.client import ClientError, ClientSession, ClientSettings
from ucp_dtn.daemon.config import parse_interface, parse_service_type, parse_static_peer
from ucp_dtn.ucp import PlanError

from .command import EXIT_USAGE, CommandError

__all__ = [
    "BROKER_ENV",
    "VIA_ENV",
    "add_client_arguments",
    "client_errors",
    "client_session",
    "duration",
    "settings_from",
    "short_id",
]

VIA_ENV = "UCP_VIA"
"""Environment variable with ``--via`` addresses (comma-separated)."""
BROKER_ENV = "UCP_BROKER"
"""Environment variable with the ``--broker`` node ID."""


def duration(text: str) -> float:
    """An argparse type: ``10s``, ``2m``, ``1h15s`` or seconds (zero allowed)."""
    try:
        value = parse_duration(text)
    except QuantityError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"duration must not be negative, got {text!r}")
    return value


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so argparse reports its message (it hides a ValueError's text)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_client_arguments(parser: argparse.ArgumentParser, *, wait: bool = True) -> None:
    """The flags of every client subcommand."""
    group = parser.add_argument_group("reaching a broker")
    add = group.add_argument
    add(
        "--home",
        type=Path,
        metavar="DIR",
        help="client home: identity, bundle store, job journal "
        "(default: $UCP_HOME or ~/.local/share/ucp)",
    )
    add(
        "--via",
        action="append",
        type=_typed(parse_static_peer),
        metavar="tcp://HOST:PORT",
        help=f"node to connect to, a broker's or one on the way (repeatable; default: ${VIA_ENV}, "
        "else the last one given)",
    )
    add("--discover", action="store_true", help="find nodes with zeroconf")
    add(
        "--discovery-interface",
        action="append",
        type=_typed(parse_interface),
        metavar="ADDRESS",
        help="IP address of an interface discovery runs on (repeatable; default: all)",
    )
    add(
        "--discovery-service-type",
        type=_typed(parse_service_type),
        metavar="TYPE",
        help="DNS-SD service type (default: the daemons' default)",
    )
    add(
        "--broker",
        metavar="EID",
        help=f"the broker's node ID (default: ${BROKER_ENV}, else the node --via reaches, "
        "or the nearest broker found)",
    )
    add(
        "--quiet",
        action="store_true",
        help="no progress bars for large transfers (they show only on a terminal anyway)",
    )
    if wait:
        add(
            "--wait",
            type=duration,
            default=10.0,
            metavar="DURATION",
            help="how long to look for a broker (default 10s)",
        )


def settings_from(args: argparse.Namespace) -> ClientSettings:
    """The client settings the flags (and environment) describe."""
    via: list[tuple[str, int]] = list(args.via or [])
    if not via and os.environ.get(VIA_ENV):
        for item in os.environ[VIA_ENV].split(","):
            if item.strip():
                try:
                    via.append(parse_static_peer(item))
                except ValueError as exc:
                    raise CommandError(f"${VIA_ENV}: {exc}", EXIT_USAGE) from None
    interfaces = args.discovery_interface
    wait = getattr(args, "wait", 10.0)
    try:
        return ClientSettings(
            home=args.home,
            via=tuple(via),
            discover=args.discover,
            discovery_interfaces=tuple(interfaces) if interfaces else None,
            discovery_service_type=args.discovery_service_type,
            broker=args.broker or os.environ.get(BROKER_ENV) or None,
            wait_s=wait,
            request_timeout_s=max(wait, 5.0),
        )
    except ClientError as exc:
        raise CommandError(str(exc), exc.status) from None


@contextmanager
def client_errors() -> Iterator[None]:
    """Client and plan errors become one-line ``ucp`` errors."""
    try:
        yield
    except PlanError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except ClientError as exc:
        raise CommandError(str(exc), exc.status) from None


@asynccontextmanager
async def client_session(
    args: argparse.Namespace, *, progress: bool = False
) -> AsyncIterator[ClientSession]:
    """A client session from the flags, with client errors as ``ucp`` errors. ``progress``:
    show large uploads and downloads (also while what is left to send leaves, at the end)
    unless ``--quiet``."""
    settings = settings_from(args)
    with client_errors():
        async with ClientSession.open(settings) as session:
            if not progress:
                yield session
                return
            from .progress import show_transfers

            async with show_transfers(session, enabled=not getattr(args, "quiet", False)):
                yield session
                await session.drain()


def short_id(text: object) -> str:
    """The first 8 characters of a UUID, as ``ucp status`` shows them."""
    return str(text)[:8]
