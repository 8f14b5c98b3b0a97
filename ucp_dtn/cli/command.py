"""What every ``ucp`` subcommand shares: the :class:`Subcommand` shape, one-line errors, and
opening the daemon connection (``--socket`` or ``$UCP_BPNODE_SOCKET``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ucp_dtn.appapi import SOCKET_ENV, AppApiClient, AppApiUsageError

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "CommandError", "Subcommand", "add_socket_flag", "daemon"]

EXIT_FAILURE = 1
"""Exit status when the operation failed (daemon unreachable, store full, timeout...)."""
EXIT_USAGE = 2
"""Exit status for a bad command line."""


class CommandError(Exception):
    """A subcommand failed; ``ucp`` prints the message on one line and exits with ``status``."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status
        """The process exit status ``ucp`` ends with (1 unless the subcommand says
        otherwise)."""


@dataclass(frozen=True, slots=True)
class Subcommand:
    """One ``ucp`` subcommand, defined in its own module."""

    name: str
    """What the user types (``send``)."""
    help: str
    """One line for ``ucp --help``."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the subcommand's flags to its parser."""
    run: Callable[[argparse.Namespace], Awaitable[int]]
    """Runs it (under trio); returns the exit status or raises :class:`CommandError`."""


def add_socket_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--socket PATH`` flag every subcommand talking to the daemon has."""
    parser.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help=f"the daemon's application socket (default: ${SOCKET_ENV})",
    )


@asynccontextmanager
async def daemon(args: argparse.Namespace) -> AsyncIterator[AppApiClient]:
    """Connect to the daemon named by ``--socket`` or the environment."""
    path: Path | None = getattr(args, "socket", None)
    if path is None and not os.environ.get(SOCKET_ENV):
        raise CommandError(
            f"no daemon socket given: use --socket PATH or set {SOCKET_ENV}", EXIT_USAGE
        )
    try:
        async with AppApiClient.connect(path) as client:
            yield client
    except AppApiUsageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
