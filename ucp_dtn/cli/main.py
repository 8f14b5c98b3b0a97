"""The ``ucp`` command: one parser, one module per subcommand (:data:`SUBCOMMANDS`).

Every failure prints one line, ``ucp <subcommand>: error: ...``, on stderr and exits non-zero
(2: bad command line, 1: the operation failed). ``-v``/``-vv`` before the subcommand turn on
logging to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

import trio

from ucp_dtn.appapi import AppApiError, RequestFailed

from .collect import COLLECT
from .command import EXIT_FAILURE, EXIT_USAGE, CommandError, Subcommand
from .data import DATA
from .demo import DEMO
from .nodes import NODES
from .recv import RECV
from .run import RUN
from .send import SEND
from .status import STATUS
from .submit import SUBMIT

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

SUBCOMMANDS: tuple[Subcommand, ...] = (
    SUBMIT,
    STATUS,
    COLLECT,
    RUN,
    DATA,
    SEND,
    RECV,
    NODES,
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ucp`` and its subcommands."""
    parser = _Parser(
        prog="ucp",
        description=(
            "Client of the ucp-dtn platform: submit/status/collect/run/data act as a node of "
            "their own (--via, --discover); send/recv/nodes talk to the local ucp-bpnode daemon."
        ),
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(subcommand=command)
    return parser


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ucp``; return its exit status."""
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as exc:
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.verbose:
        logging.basicConfig(
            level=logging.INFO if args.verbose == 1 else logging.DEBUG,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    command: Subcommand = args.subcommand
    prog = f"ucp {command.name}"
    try:
        return trio.run(command.run, args)
    except KeyboardInterrupt:
        return 130
    except BaseException as error:
        leaves = _leaves(error)
        first = leaves[0]
        if isinstance(first, CommandError):
            print(f"{prog}: error: {first}", file=sys.stderr)
            return first.status
        if isinstance(first, RequestFailed):
            print(f"{prog}: error: {first.message} ({first.code})", file=sys.stderr)
            return EXIT_FAILURE
        if isinstance(first, AppApiError | OSError):
            print(f"{prog}: error: {first}", file=sys.stderr)
            return EXIT_FAILURE
        raise
