"""``ucp logs JOB [-f]``: a job's standard output and standard error so far (to this command's
stdout and stderr).

While a job runs its executor sends what it writes to the broker every second; the broker keeps
the newest 64 KiB of each stream. ``-f`` follows the job until it ends. A finished job whose
output the broker no longer holds shows the end of each stream from its result (the whole of
them is in its results archive: ``ucp collect``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .client_options import call
from .command import Subcommand

__all__ = ["LOGS"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="job name, UUID or UUID prefix")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="follow the job's output until it ends"
    )


def _run(args: argparse.Namespace) -> int:
    shown = 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal shown
        kind = event.get("event")
        if kind == "output":
            target = sys.stdout if event["stream"] == "stdout" else sys.stderr
            target.flush()
            target.buffer.write(event["data"])
            target.buffer.flush()
            shown += len(event["data"])
        elif kind == "gap":
            print(
                f"ucp logs: {event['missing']} bytes of {event['stream']} are no longer held "
                "(see the results archive)",
                file=sys.stderr,
                flush=True,
            )

    document = call(args, "logs", {"job": args.job, "follow": args.follow}, on_event=on_event)
    if shown == 0:
        job = document["job"]
        print(f"ucp logs: no output from {job['label']} ({job['state']})", file=sys.stderr)
    return 0


LOGS = Subcommand(
    name="logs",
    help="show a job's output so far (-f: follow it while it runs)",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp logs`` subcommand."""
