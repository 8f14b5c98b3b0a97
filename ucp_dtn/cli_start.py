"""Where the ``ucp`` command starts: Ctrl-C while it is still importing ends it like Ctrl-C
later does.

The command's modules take ~50 ms to import; a Ctrl-C then used to print a Python traceback
and end the process by the signal, because :func:`ucp_dtn.cli.main.main` (which turns Ctrl-C
into one line and exit status 130) had not started yet. This module imports nothing of the
command until :func:`main` runs, inside the same handling. (A Ctrl-C in the first ~20 ms, while
Python itself starts, is Python's to report.)
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["main"]

_EXIT_INTERRUPTED = 130
"""The exit status after Ctrl-C (:data:`ucp_dtn.cli.command.EXIT_INTERRUPTED`)."""


def main() -> int:
    """Run ``ucp`` with the process's arguments; its exit status."""
    try:
        from ucp_dtn.cli.main import main as run_command
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            print("ucp: interrupted", file=sys.stderr, flush=True)
        return _EXIT_INTERRUPTED
    return run_command()
