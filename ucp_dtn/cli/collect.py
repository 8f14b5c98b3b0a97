"""``ucp collect [JOB...] [-o DIR]``: unpack finished jobs' results into ``DIR/<job>/``.

Results that waited in the network for this client arrive as soon as it is connected; a job
the broker reports finished whose result bundle does not come (expired, or waiting on a node
this client no longer meets) is fetched from the datastores (``<job-uuid>/result``). Each job
shows how it ended and the end of its standard output. No JOB: every job not collected yet
(``--all``: every job). Collecting again is harmless. The folder is the job's name made safe
for shells.

Exit status: 0 when every job asked for succeeded and was collected; 1 when one failed, was
rejected or cancelled, or (named explicitly) has no result yet.
"""

from __future__ import annotations

import argparse
import json
import os

from .client_options import call
from .command import Subcommand
from .formatting import collect_status, format_collected

__all__ = ["COLLECT"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="job name, UUID or UUID prefix")
    parser.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="DIR",
        help="unpack into DIR/<job>/ (default: the current directory)",
    )
    parser.add_argument("--all", action="store_true", help="every job, also those collected before")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace) -> int:
    document = call(
        args,
        "collect",
        {"jobs": args.jobs, "output": os.path.abspath(args.output), "all": args.all},
    )
    jobs = document["jobs"]
    if args.json:
        print(json.dumps(jobs, sort_keys=True), flush=True)
    elif not jobs:
        print("nothing to collect", flush=True)
    else:
        print(format_collected(jobs), flush=True)
        pending = document["pending"]
        if pending:
            count = f"{pending} job{'s' if pending != 1 else ''}"
            print(f"{count} not finished yet (see ucp status)", flush=True)
    return collect_status(jobs, pending_fails=bool(args.jobs))


COLLECT = Subcommand(
    name="collect",
    help="unpack finished jobs' results into DIR/<job>/",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp collect`` subcommand."""
