"""What the client subcommands share: the flags saying how to reach a broker
(:data:`CLIENT_SETTINGS`, a settings table of their own, accepted before or after the
subcommand), turning them into :class:`~ucp_dtn.client.ClientSettings`, and running an operation
— through the home's client agent, or in the command's own process with ``--no-agent``.

Light on purpose: the standard library, the settings table and the client's settings module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ucp_dtn.client.errors import ClientError
from ucp_dtn.client.settings import ClientSettings
from ucp_dtn.settings import (
    BOOL,
    DURATION,
    INTERFACE,
    PATH,
    PEER,
    POSITIVE_INT,
    SERVICE_TYPE,
    SIZE,
    TEXT,
    Setting,
    SettingsError,
    SettingsTable,
    argument_type,
)

from .command import EXIT_USAGE, CommandError

__all__ = [
    "BROKER_ENV",
    "CLIENT_SETTINGS",
    "AGENT_ENV",
    "COLLECT_MAX_FILES_ENV",
    "COLLECT_MAX_SIZE_ENV",
    "TRUST_ENV",
    "VIA_ENV",
    "add_client_arguments",
    "add_global_arguments",
    "call",
    "duration",
    "settings_from",
]

VIA_ENV = "UCP_VIA"
"""Environment variable with ``--via`` addresses (comma-separated)."""
BROKER_ENV = "UCP_BROKER"
"""Environment variable with the ``--broker`` node ID."""
TRUST_ENV = "UCP_TRUST"
"""Environment variable with the ``--trust`` file."""
AGENT_ENV = "UCP_AGENT"
"""Environment variable: ``0`` (or ``off``) runs every command without the client agent."""
COLLECT_MAX_SIZE_ENV = "UCP_COLLECT_MAX_SIZE"
"""Environment variable with the ``--collect-max-size`` limit."""
COLLECT_MAX_FILES_ENV = "UCP_COLLECT_MAX_FILES"
"""Environment variable with the ``--collect-max-files`` limit."""

_PIB = 1024**5

_REQUEST_TIMEOUT_MIN_S = 5.0
"""Requests wait at least this long for an answer, however short ``--wait``."""


def _parse_duration(text: str) -> float:
    from convergence.quantities import parse_duration

    return parse_duration(text)


duration = argument_type(_parse_duration)
"""An argparse type: ``10s``, ``2m``, ``1h15s`` or seconds (zero allowed)."""

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
            DURATION.within(0.0, 24 * 3600.0),
            "how long to look for a reachable broker",
            feeds=("client.wait_s",),
            in_file=False,
        ),
        Setting(
            "resubmit_after",
            DURATION.within(0.0, 30 * 24 * 3600.0),
            "send a job again, to the broker reached now, when it was sent this long ago to "
            "a broker that does not answer and the broker reached now does not know it (that "
            "broker was lost before telling any other); 0: never",
            feeds=("client.resubmit_after_s",),
            in_file=False,
            example="30s",
        ),
        Setting(
            "collect_max_size",
            SIZE.within(1, _PIB),
            "the most one job's results may unpack to (ucp collect, ucp run): a results "
            "archive over it is refused and stays collectable with a higher limit",
            feeds=("client.collect_max_bytes",),
            env=COLLECT_MAX_SIZE_ENV,
            in_file=False,
            example="2GiB",
        ),
        Setting(
            "collect_max_files",
            POSITIVE_INT.within(1, 10_000_000),
            "the most files one job's results may unpack to (ucp collect, ucp run)",
            feeds=("client.collect_max_files",),
            env=COLLECT_MAX_FILES_ENV,
            in_file=False,
            example="100000",
        ),
        Setting(
            "trust",
            PATH,
            "the client's trust file in a trusted mesh (ucp trust issue client); without it "
            "the one 'ucp trust use' put in the home, else open mode",
            feeds=("client.trust",),
            metavar="FILE",
            env=TRUST_ENV,
            in_file=False,
        ),
        Setting(
            "agent",
            BOOL,
            "use the home's client agent (started when none runs); --no-agent runs the "
            "command's own node, which needs the home to itself",
            default=True,
            env=AGENT_ENV,
            in_file=False,
        ),
        Setting(
            "quiet",
            BOOL,
            "no progress bars for large transfers (they show only when stderr is a terminal)",
            default=False,
            in_file=False,
        ),
    ],
    targets={"client": ClientSettings},
)
"""The flags (and environment variables) of the client subcommands."""


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the client subcommands (on the main parser and on each subcommand's)."""
    group = parser.add_argument_group("reaching a broker (before or after the subcommand)")
    CLIENT_SETTINGS.add_arguments(group)


def add_global_arguments(parser: argparse.ArgumentParser, *, client: bool = True) -> None:
    """``-v`` and (for client subcommands) the flags saying how to reach a broker; given on a
    subcommand's parser they leave the values given before the subcommand alone unless given
    again."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="show log lines (-vv: debug)",
    )
    if client:
        add_client_arguments(parser)


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


def call(
    args: argparse.Namespace,
    op: str,
    op_args: dict[str, Any],
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run client operation ``op`` (see :mod:`ucp_dtn.client.operations`) with ``op_args``:
    through the home's agent, or (``--no-agent``) in this process; its document. Events (progress
    lines, output) go to ``on_event``; ``-v`` log lines go to stderr, large transfers to progress
    bars on stderr (:mod:`.progress`) and what is left to send to a line on stderr."""
    settings = settings_from(args)
    try:
        resolved = CLIENT_SETTINGS.resolve_namespace(args)
    except SettingsError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    use_agent = bool(resolved.get("agent"))
    verbose = int(getattr(args, "verbose", 0) or 0)
    from .progress import TransferBars, unsent_line

    bars = TransferBars(quiet=bool(resolved.get("quiet")))
    if bars.enabled:
        op_args = {**op_args, "progress": True}

    def handle(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "log":
            print(event.get("line", ""), file=sys.stderr, flush=True)
        elif kind == "transfer":
            bars.show(event)
        elif kind == "unsent":
            bars.close()
            line = unsent_line(int(event.get("octets") or 0), agent=use_agent)
            print(line, file=sys.stderr, flush=True)
        elif on_event is not None:
            on_event(event)

    with bars:
        if use_agent:
            import dataclasses

            from .agent_link import call_agent

            # The home (and trust file) as this command sees them ($UCP_HOME, --home, a
            # relative --trust), not as the agent would from its own directory.
            trust = settings.trust.expanduser().absolute() if settings.trust else None
            settings = dataclasses.replace(settings, home=settings.home_path, trust=trust)
            return call_agent(
                settings.home_path,
                op,
                op_args,
                settings.to_plain(),
                verbose=verbose,
                on_event=handle,
            )
        from ucp_dtn.client.operations import run_in_process

        try:
            return run_in_process(settings, op, op_args, handle)
        except ClientError as exc:
            raise CommandError(str(exc), exc.status) from None
