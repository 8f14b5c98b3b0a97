"""The ``ucp`` command-line client (one module per subcommand; see :mod:`ucp_dtn.cli.main`)."""

from .command import EXIT_FAILURE, EXIT_USAGE, CommandError, Subcommand
from .main import SUBCOMMANDS, build_parser, main

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "SUBCOMMANDS",
    "CommandError",
    "Subcommand",
    "build_parser",
    "main",
]
