"""The ``ucp`` command-line client (one module per subcommand; see :mod:`ucp_dtn.cli.main`).

Everything imported here is light: ``ucp --help`` and ``ucp --version`` start in about the time
Python itself takes.
"""

from .command import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_CLOSED,
    EXIT_USAGE,
    CommandError,
    Subcommand,
)
from .main import SUBCOMMANDS, build_parser, main

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OUTPUT_CLOSED",
    "EXIT_USAGE",
    "SUBCOMMANDS",
    "CommandError",
    "Subcommand",
    "build_parser",
    "main",
]
