"""``ucp cancel JOB...``: cancel jobs of this client.

A job still in the client's outbox (never sent) is taken out of it; the broker cancels the
others: a queued job is never dispatched, a running one is stopped by its executor. Either way
its state becomes ``cancelled`` and a result that still comes is dropped; jobs that run after it
are rejected. A finished job stays as it is. Exit status 1 if the broker does not know a job.
"""

from __future__ import annotations

import argparse
import json

from .client_options import call
from .command import CommandError, Subcommand
from .formatting import format_cancel

__all__ = ["CANCEL"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="+", metavar="JOB", help="job name, UUID or UUID prefix")
    parser.add_argument("--reason", metavar="TEXT", help="why (kept as the jobs' detail)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace) -> int:
    document = call(args, "cancel", {"jobs": args.jobs, "reason": args.reason or ""})
    if args.json:
        print(json.dumps(document, sort_keys=True), flush=True)
    else:
        print(format_cancel(document), flush=True)
    unknown = [job["label"] for job in document["jobs"] if not job["known"]]
    if unknown:
        raise CommandError(f"not found at the broker: {', '.join(unknown)}")
    return 0


CANCEL = Subcommand(
    name="cancel",
    help="cancel jobs (queued: never run; running: stopped)",
    add_arguments=_add_arguments,
    run=_run,
    interrupted="a cancel that reached the client agent is carried out",
)
"""The ``ucp cancel`` subcommand."""
