"""``ucp submit PLAN``: send a plan's uploads and jobs to a broker; print the jobs' names and
UUIDs.

Returns once the broker answered for every job (accepted, or rejected: exit status 1, saying
why) — or, when no broker is reachable within
``--wait``, at once, with everything queued in the client's store: the client agent keeps
trying, and they leave as soon as a broker is reachable. A plan with an error is rejected before
anything is sent (one line naming the file, job and field; exit status 2).
"""

from __future__ import annotations

import argparse
import json
import os

from .client_options import call
from .command import Subcommand
from .formatting import format_submit

__all__ = ["SUBMIT"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="the execution plan (TOML, ours or REC's)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def plan_arguments(plan: str) -> dict[str, str]:
    """The plan as the client operations take it: as typed (for messages) and absolute."""
    return {"plan": plan, "path": os.path.abspath(plan)}


def _run(args: argparse.Namespace) -> int:
    document = call(args, "submit", plan_arguments(args.plan))
    if args.json:
        print(json.dumps(document, sort_keys=True), flush=True)
    else:
        print(format_submit(document), flush=True)
    # A job the broker rejected (e.g. a client it does not take jobs from) is a failure.
    return 1 if any(job.get("rejected") for job in document["jobs"]) else 0


SUBMIT = Subcommand(
    name="submit",
    help="submit an execution plan's jobs to a broker (queued locally while none is reachable)",
    add_arguments=_add_arguments,
    run=_run,
    interrupted="what was submitted is on its way: see ucp jobs",
)
"""The ``ucp submit`` subcommand."""
