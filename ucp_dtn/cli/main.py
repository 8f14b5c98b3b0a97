"""The ``ucp`` command: one parser, one module per subcommand (:data:`SUBCOMMANDS`).

Start-up does only what the subcommand needs: this module and the subcommands' modules import
the standard library, the settings table and small light modules, nothing of the node, trio or
the roles. The client subcommands talk to the home's client agent (:mod:`.agent_link`); the
daemon subcommands import what they use when they run.

Global flags (``-v``, ``--home``, ``--via``, ...) are accepted before or after the subcommand.
Every failure prints one line, ``ucp <subcommand>: error: ...``, on stderr and exits non-zero:
1 the operation failed, 2 bad command line, plan or job name, 130 interrupted (Ctrl-C: one line,
and what was handed to the client agent goes on), 141 the output was closed (``| head``; quiet).
Library log lines appear only with ``-v`` (``-vv``: debug).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .agent import AGENT
from .cancel import CANCEL
from .client_options import add_global_arguments
from .collect import COLLECT
from .command import (
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_CLOSED,
    EXIT_USAGE,
    CommandError,
    Subcommand,
)
from .data import DATA
from .demo import DEMO
from .jobs import JOBS
from .logs import LOGS
from .nodes import NODES
from .recv import RECV
from .run import RUN
from .send import SEND
from .status import STATUS
from .submit import SUBMIT
from .trust import TRUST

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

SUBCOMMANDS: tuple[Subcommand, ...] = (
    SUBMIT,
    STATUS,
    JOBS,
    CANCEL,
    LOGS,
    COLLECT,
    RUN,
    DATA,
    AGENT,
    SEND,
    RECV,
    NODES,
    TRUST,
    DEMO,
)
"""The subcommands, in ``--help`` order."""


class _UsageError(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(self.prog, message)


def _print_version() -> None:
    from ucp_dtn import __version__

    print(f"ucp (ucp-dtn) {__version__}")


class _Version(argparse.Action):
    """``--version``: the package's version."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        _print_version()
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ucp`` and all its subcommands."""
    parser, subparsers = _parser_listing_subcommands(add_help=True)
    for command in SUBCOMMANDS:
        _add_subcommand_flags(subparsers[command.name], command)
    return parser


def _parser_listing_subcommands(
    *, add_help: bool
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The main parser, its global flags and one parser per subcommand, named and described
    but without flags of its own yet."""
    parser: argparse.ArgumentParser = _Parser(
        prog="ucp",
        description=(
            "Client of the ucp-dtn platform: submit/status/jobs/cancel/logs/collect/run/data act "
            "as a node of their own through the home's client agent (--via, --discover); "
            "send/recv/nodes talk to the local ucp-bpnode daemon."
        ),
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    add_global_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers: dict[str, argparse.ArgumentParser] = {
        command.name: subparsers.add_parser(
            command.name, help=command.help, description=command.help, add_help=add_help
        )
        for command in SUBCOMMANDS
    }
    return parser, parsers


def _add_subcommand_flags(sub: argparse.ArgumentParser, command: Subcommand) -> None:
    if not sub.add_help:
        sub.add_help = True
        sub.add_argument(
            "-h",
            "--help",
            action="help",
            default=argparse.SUPPRESS,
            help="show this help message and exit",
        )
    command.add_arguments(sub)
    if command.name != "data":  # its actions take the global flags themselves
        add_global_arguments(sub, client=command.client)
    sub.set_defaults(subcommand=command)


_BY_NAME = {command.name: command for command in SUBCOMMANDS}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """``argv`` parsed. Only the subcommand it names gets its flags built: a first pass over
    the global flags finds it (building every subcommand's parser was most of what ``ucp
    <subcommand>`` spent before doing anything). A command line that pass cannot read goes to
    the full parser, whose message is the one the user sees."""
    parser, subparsers = _parser_listing_subcommands(add_help=False)
    try:
        known, _ = parser.parse_known_args(argv)
    except _UsageError:
        return build_parser().parse_args(argv)
    _add_subcommand_flags(subparsers[known.command], _BY_NAME[known.command])
    return parser.parse_args(argv)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _quiet_output() -> None:
    """The reader of our output went away: send whatever is left nowhere, quietly."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


def _configure_logging(verbose: int) -> None:
    if verbose:
        logging.basicConfig(
            level=logging.INFO if verbose == 1 else logging.DEBUG,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:
        # No handler at all would make logging print warnings anyway ("last resort").
        logging.getLogger().addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ucp``; return its exit status."""
    prog = "ucp"
    command: Subcommand | None = None
    try:
        if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
            _print_version()  # no parser to build
            return 0
        try:
            args = parse_arguments(argv)
        except _UsageError as exc:
            print(f"{exc.prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        command = args.subcommand
        action = getattr(args, "data_command", None) or getattr(args, "trust_command", None)
        prog = " ".join(["ucp", command.name, *([action] if action else [])])
        _configure_logging(getattr(args, "verbose", 0) or 0)
        return command.run(args)
    except CommandError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return _interrupted(prog, command)
    except BrokenPipeError:
        _quiet_output()
        return EXIT_OUTPUT_CLOSED
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return _interrupted(prog, command)
        first = leaves[0]
        if isinstance(first, CommandError):
            print(f"{prog}: error: {first}", file=sys.stderr)
            return first.status
        if isinstance(first, BrokenPipeError):
            _quiet_output()
            return EXIT_OUTPUT_CLOSED
        raise


def _interrupted(prog: str, command: Subcommand | None) -> int:
    note = f": {command.interrupted}" if command is not None and command.interrupted else ""
    with contextlib.suppress(OSError):
        print(f"{prog}: interrupted{note}", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED
