"""``ucp jobs``: this client's jobs as its journal knows them, newest last — or, with
``--all``, every job the broker knows, of every client.

Filters: ``--state STATE`` (repeatable), ``--plan FILE`` (the plan file, by name or path),
``--limit N`` (the N newest). Without ``--all`` nothing is asked of the network (``ucp status``
asks the broker about this client's jobs).
"""

from __future__ import annotations

import argparse
import json

from .client_options import call
from .command import Subcommand
from .formatting import format_jobs

__all__ = ["JOBS", "STATES"]

STATES = (
    "outbox",
    "sent",
    "accepted",
    "queued",
    "dispatched",
    "running",
    "done",
    "failed",
    "rejected",
    "cancelled",
)
"""The states a job of the journal can be in (the broker knows those from ``queued`` on)."""


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"limit must be a positive integer, got {text!r}")
    return int(text)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        action="append",
        choices=STATES,
        default=[],
        metavar="STATE",
        help=f"only jobs in this state (repeatable): {', '.join(STATES)}",
    )
    parser.add_argument("--plan", metavar="FILE", help="only jobs of this plan file")
    parser.add_argument("--limit", type=_limit, metavar="N", help="only the N newest")
    parser.add_argument(
        "--all", action="store_true", help="every job the broker knows, of every client"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace) -> int:
    document = call(
        args,
        "jobs",
        {"states": args.state, "plan": args.plan, "all": args.all, "limit": args.limit or 0},
    )
    if args.json:
        print(json.dumps(document, sort_keys=True), flush=True)
        return 0
    jobs = document["jobs"]
    print(format_jobs(jobs, plan=True) if jobs else "no jobs", flush=True)
    if document.get("more"):
        print(f"({document['more']} more not shown: --limit)", flush=True)
    return 0


JOBS = Subcommand(
    name="jobs",
    help="list this client's jobs (--all: every job the broker knows)",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp jobs`` subcommand."""
