"""``ucp submit PLAN``: send a plan's uploads and jobs to a broker; print the jobs' names and
UUIDs.

Returns once the broker accepted every job — or, when no broker is reachable within
``--wait``, at once, with everything queued in the client's store: it leaves with the next
``ucp`` command that reaches a broker. A plan with an error is rejected before anything is sent
(one line naming the file, job and field; exit status 2).
"""

from __future__ import annotations

import argparse
import json

import trio

from ucp_dtn.client import SubmitOutcome, SubmitReport, submit_plan
from ucp_dtn.ucp import ExecutionPlan, load_plan

from .client_options import add_client_arguments, client_errors, client_session
from .command import Subcommand

__all__ = ["SUBMIT", "format_submit_report", "read_plan", "report_json"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="the execution plan (TOML, ours or REC's)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_client_arguments(parser)


async def read_plan(path: str) -> ExecutionPlan:
    """Load and check the plan (one-line error, exit 2, if it cannot be used)."""
    with client_errors():
        return await trio.to_thread.run_sync(load_plan, path)


def report_json(report: SubmitReport) -> dict[str, object]:
    """The ``--json`` form of a submission."""
    return {
        "outcome": report.outcome.value,
        "broker": report.broker,
        "uploads": report.uploads,
        "uploads_confirmed": report.uploads_confirmed,
        "jobs": [
            {"name": job.name, "job_id": str(job.job_id), "accepted": job.accepted}
            for job in report.jobs
        ],
    }


def format_submit_report(report: SubmitReport, plan: str, home: str) -> str:
    """The human-readable form of a submission."""
    count = len(report.jobs)
    jobs = f"{count} job{'s' if count != 1 else ''}"
    if report.outcome is SubmitOutcome.ACCEPTED:
        head = f"{plan}: {jobs} accepted by {report.broker}"
    elif report.outcome is SubmitOutcome.SENT:
        waiting = sum(1 for job in report.jobs if not job.accepted)
        head = (
            f"{plan}: {jobs} sent to {report.broker}; {waiting} not confirmed yet (see ucp status)"
        )
    else:
        head = (
            f"{plan}: no broker reachable: {jobs} queued in {home}; they leave with the "
            "next ucp command that reaches a broker"
        )
    width = max((len(job.name) for job in report.jobs), default=0)
    lines = [head]
    lines += [f"  {job.name:<{width}}  {job.job_id}" for job in report.jobs]
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    plan = await read_plan(args.plan)
    async with client_session(args, progress=True) as session:
        with client_errors():
            report = await submit_plan(session, plan)
        home = str(session.home.path)
    if args.json:
        print(json.dumps(report_json(report), sort_keys=True))
    else:
        print(format_submit_report(report, args.plan, home), flush=True)
    return 0


SUBMIT = Subcommand(
    name="submit",
    help="submit an execution plan's jobs to a broker (queued locally while none is reachable)",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp submit`` subcommand."""
