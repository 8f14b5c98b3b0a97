"""``ucp status [JOB...]``: where this client's jobs stand, as the broker says (and the
journal remembers).

JOB is a job's name (its latest submission), its UUID or a unique UUID prefix; no JOB: every
job of this client. ``--nodes`` also lists the executors and datastores the broker knows. When
no broker is reachable the states last heard are shown and the command fails.
"""

from __future__ import annotations

import argparse
import json

from .client_options import call
from .command import CommandError, Subcommand
from .formatting import format_jobs, format_nodes

__all__ = ["STATUS"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="job name, UUID or UUID prefix")
    parser.add_argument("--nodes", action="store_true", help="also list the broker's nodes")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace) -> int:
    document = call(args, "status", {"jobs": args.jobs, "nodes": args.nodes})
    problem = document.get("error")
    if args.json:
        if not args.nodes:
            document.pop("nodes", None)
        if not problem:
            document.pop("error", None)
        print(json.dumps(document, sort_keys=True), flush=True)
    else:
        jobs = document["jobs"]
        print(format_jobs(jobs) if jobs else "no jobs submitted from this client", flush=True)
        if document["nodes"]:
            print(format_nodes(document["nodes"]), flush=True)
    if problem:
        raise CommandError(f"{problem}: showing the states last heard")
    return 0


STATUS = Subcommand(
    name="status",
    help="show where this client's jobs stand (asks the broker)",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp status`` subcommand."""
