"""``ucp run PLAN``: submit a plan, follow its jobs (one progress line per state change) and
collect their results into ``-o DIR``; exit status 1 if any job failed, was rejected or
cancelled, or on timeout.

Unlike ``ucp submit`` it waits for a broker as long as ``--timeout`` allows (default: no
limit). Interrupting it loses nothing: the jobs go on, and ``ucp status`` / ``ucp collect``
pick them up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .client_options import call, duration
from .command import CommandError, Subcommand
from .formatting import collect_status, format_collected, format_submit
from .submit import plan_arguments

__all__ = ["RUN"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="the execution plan (TOML, ours or REC's)")
    parser.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="DIR",
        help="unpack results into DIR/<job>/ (default: the current directory)",
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        metavar="DURATION",
        help="give up waiting after this long (default: wait until every job finished)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _run(args: argparse.Namespace) -> int:
    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if args.json:
            return
        if kind == "submitted":
            print(format_submit(event, reasons=False), flush=True)
        elif kind == "progress":
            print(event["line"], flush=True)
        elif kind == "note":
            print(event["line"], file=sys.stderr, flush=True)

    op_args: dict[str, Any] = {
        **plan_arguments(args.plan),
        "output": os.path.abspath(args.output),
        "timeout": args.timeout,
    }
    document = call(args, "run", op_args, on_event=on_event)
    jobs = document["jobs"]
    if args.json:
        print(json.dumps({"submit": document["submit"], "jobs": jobs}, sort_keys=True))
    else:
        print(format_collected(jobs), flush=True)
    unfinished = document["unfinished"]
    if unfinished:
        raise CommandError(
            f"timed out: {unfinished} job{'s' if unfinished != 1 else ''} not finished "
            "(see ucp status; ucp collect picks them up later)"
        )
    return collect_status(jobs, pending_fails=True)


RUN = Subcommand(
    name="run",
    help="submit a plan, wait for its jobs and collect their results",
    add_arguments=_add_arguments,
    run=_run,
    interrupted="the jobs go on: ucp status, ucp logs and ucp collect pick them up",
)
"""The ``ucp run`` subcommand."""
