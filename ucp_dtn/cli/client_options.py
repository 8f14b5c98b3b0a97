"""What the client subcommands (``submit``, ``status``, ``collect``, ``run``, ``data``) share:
the flags saying how to reach a broker (:data:`CLIENT_SETTINGS`, a settings table of their own),
turning them into :class:`~ucp_dtn.client.ClientSettings`, and client errors as one-line ``ucp``
errors."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from convergence.quantities import parse_duration
from ucp_dtn.client import ClientError, ClientSession, ClientSettings
from ucp_dtn.settings import (
    BOOL,
    DURATION,
    INTERFACE,
    PATH,
    PEER,
    SERVICE_TYPE,
    TEXT,
    Setting,
    SettingsError,
    SettingsTable,
    argument_type,
)
from ucp_dtn.ucp import PlanError

from .command import EXIT_USAGE, CommandError

__all__ = [
    "BROKER_ENV",
    "CLIENT_SETTINGS",
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

duration = argument_type(parse_duration)
"""An argparse type: ``10s``, ``2m``, ``1h15s`` or seconds (zero allowed)."""

_REQUEST_TIMEOUT_MIN_S = 5.0
"""Requests wait at least this long for an answer, however short ``--wait``."""

CLIENT_SETTINGS = SettingsTable(
    [
        Setting(
            "home",
            PATH,
            "client home: identity, bundle store, job journal",
            feeds=("client.home",),
            metavar="DIR",
            default_help="$UCP_HOME or ~/.local/share/ucp",
            in_file=False,
        ),
        Setting(
            "via",
            PEER,
            "node to connect to, a broker's or one that knows the way; without --via or "
            f"${VIA_ENV}, the last one given",
            feeds=("client.via",),
            many=True,
            env=VIA_ENV,
            in_file=False,
        ),
        Setting(
            "discover",
            BOOL,
            "find nodes with zeroconf instead",
            feeds=("client.discover",),
            in_file=False,
        ),
        Setting(
            "discovery_interface",
            INTERFACE,
            "IP address of an interface discovery runs on",
            feeds=("client.discovery_interfaces",),
            many=True,
            default_help="all",
            in_file=False,
        ),
        Setting(
            "discovery_service_type",
            SERVICE_TYPE,
            "DNS-SD service type",
            feeds=("client.discovery_service_type",),
            default_help="the daemons' default",
            in_file=False,
        ),
        Setting(
            "broker",
            TEXT,
            "the broker to use; without it, the nearest node announcing the broker role, else the "
            "node --via reached",
            feeds=("client.broker",),
            metavar="EID",
            env=BROKER_ENV,
            in_file=False,
        ),
        Setting(
            "wait",
            DURATION,
            "how long to look for a reachable broker",
            feeds=("client.wait_s",),
            in_file=False,
        ),
    ],
    targets={"client": ClientSettings},
)
"""The flags (and environment variables) of the client subcommands."""


def add_client_arguments(parser: argparse.ArgumentParser, *, wait: bool = True) -> None:
    """The flags of every client subcommand (``--wait`` only where it waits for a broker)."""
    group = parser.add_argument_group("reaching a broker")
    names = [setting.name for setting in CLIENT_SETTINGS if wait or setting.name != "wait"]
    CLIENT_SETTINGS.add_arguments(group, only=names)
    group.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars for large transfers (they show only on a terminal anyway)",
    )


def settings_from(args: argparse.Namespace) -> ClientSettings:
    """The client settings the flags (and environment) describe."""
    try:
        resolved = CLIENT_SETTINGS.resolve_namespace(args)
    except SettingsError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    arguments = resolved.arguments("client")
    try:
        return ClientSettings(
            request_timeout_s=max(resolved.get("wait"), _REQUEST_TIMEOUT_MIN_S), **arguments
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
