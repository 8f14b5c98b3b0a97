"""What every ``ucp`` subcommand shares: the :class:`Subcommand` shape, one-line errors and the
exit statuses, and running the subcommands that talk to a local daemon under trio.

Nothing heavy is imported here (``ucp --help`` must start fast): trio and the application API
come in only when a daemon subcommand runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ucp_dtn.appapi import AppApiClient

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OUTPUT_CLOSED",
    "EXIT_USAGE",
    "SOCKET_ENV",
    "CommandError",
    "Subcommand",
    "add_socket_flag",
    "daemon",
    "run_async",
]

EXIT_FAILURE = 1
"""Exit status when the operation failed (nothing reachable, a job failed, not found...)."""
EXIT_USAGE = 2
"""Exit status for a bad command line or plan, or an unknown job."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT)."""
EXIT_OUTPUT_CLOSED = 141
"""Exit status when the output was closed early, e.g. piped into ``head`` (128 + SIGPIPE)."""
SOCKET_ENV = "UCP_BPNODE_SOCKET"
"""Environment variable with the daemon's application socket (same as
:data:`ucp_dtn.appapi.SOCKET_ENV`)."""


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
    run: Callable[[argparse.Namespace], int]
    """Runs it; returns the exit status or raises :class:`CommandError`."""
    client: bool = True
    """Whether it is a client subcommand (it takes the flags saying how to reach a broker);
    the others talk to a local daemon (``--socket``)."""
    interrupted: str = ""
    """What to add to "interrupted" after Ctrl-C (what goes on without the command)."""


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
    from ucp_dtn.appapi import AppApiClient, AppApiUsageError

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


def run_async(
    function: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run ``function(args)`` under trio; its application API and OS errors become one-line
    ``ucp`` errors — except our output closed early (``BrokenPipeError``, ``| head``), which
    goes on to :func:`~.main.main` to end quietly with status 141."""
    import trio

    from ucp_dtn.appapi import AppApiError

    try:
        return trio.run(function, args)
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        for leaf in leaves:
            if isinstance(leaf, KeyboardInterrupt | BrokenPipeError):
                raise leaf from None
        first = leaves[0]
        if isinstance(first, CommandError | AppApiError | OSError):
            return run_failed(first)
        raise
    except BrokenPipeError:
        raise
    except (AppApiError, OSError) as error:
        return run_failed(error)


def run_failed(error: BaseException) -> NoReturn:
    """Raise ``error`` as a :class:`CommandError` (application API errors say which request
    failed)."""
    from ucp_dtn.appapi import RequestFailed

    if isinstance(error, CommandError):
        raise error
    if isinstance(error, RequestFailed):
        raise CommandError(f"{error.message} ({error.code})") from None
    raise CommandError(str(error)) from None


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
