"""``ucp run PLAN``: submit a plan, follow its jobs (one progress line per state change) and
collect their results into ``-o DIR``; exit status 1 if any job failed or was rejected.

Unlike ``ucp submit`` it waits for a broker as long as ``--timeout`` allows (default: no limit).
Interrupting it loses nothing: the jobs go on, and ``ucp status`` / ``ucp collect`` pick them up.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ucp_dtn.client import (
    ClientSession,
    JobEvent,
    SubmitOutcome,
    collect_results,
    result_summary,
    submit_plan,
    wait_for_jobs,
)
from ucp_dtn.ucp import ExecutionPlan, JobAccepted, JobResult, JobState, JobStatus

from .client_options import add_client_arguments, client_errors, client_session, duration
from .collect import collected_json, exit_status, format_collected
from .command import CommandError, Subcommand
from .submit import format_submit_report, read_plan, report_json

__all__ = ["RUN", "progress_line"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="the execution plan (TOML, ours or REC's)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="unpack results into DIR/<job-name>/ (default: the current directory)",
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        metavar="DURATION",
        help="give up waiting after this long (default: wait until every job finished)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_client_arguments(parser)


def progress_line(event: JobEvent) -> str | None:
    """One line for a change to a job, or ``None`` if not worth a line."""
    entry, message = event.entry, event.message
    name = entry.name
    if isinstance(message, JobAccepted):
        return f"{name}: accepted by {message.broker}"
    if isinstance(message, JobState):
        state = message.state
        word = state.name.lower() if isinstance(state, JobStatus) else f"state {state}"
        if state == JobStatus.DISPATCHED:
            return None  # "running" follows at once
        if state in (JobStatus.DONE, JobStatus.FAILED) and entry.result is not None:
            return None  # the result's line said it
        if state == JobStatus.RUNNING and message.executor:
            return f"{name}: running on {message.executor}"
        if message.detail and message.detail != word:
            return f"{name}: {word}: {message.detail}"
        return f"{name}: {word}"
    if isinstance(message, JobResult):
        return None if entry.final else f"{name}: {result_summary(entry)}"
    return None


async def _submit_and_wait(
    args: argparse.Namespace, session: ClientSession, plan: ExecutionPlan
) -> int:
    timeout = math.inf if args.timeout is None else args.timeout

    reported = False

    def show(event: JobEvent) -> None:
        line = progress_line(event)
        if line is not None and reported and not args.json:
            print(line, flush=True)

    session.watch(show)
    report = await submit_plan(session, plan)
    if not args.json:
        print(format_submit_report(report, args.plan, str(session.home.path)), flush=True)
    reported = True
    if report.outcome is SubmitOutcome.QUEUED:
        print("waiting for a broker...", file=sys.stderr, flush=True)
        if await session.find_broker(timeout) is None:
            raise CommandError("no broker reachable: the jobs stay queued (see ucp status)")
    job_ids = [job.job_id for job in report.jobs]
    entries = await wait_for_jobs(session, job_ids, timeout_s=timeout)
    items = await collect_results(session, entries, args.output)
    if args.json:
        print(
            json.dumps(
                {"submit": report_json(report), "jobs": [collected_json(i) for i in items]},
                sort_keys=True,
            )
        )
    else:
        print(format_collected(items), flush=True)
    unfinished = sum(1 for entry in entries if not entry.settled)
    if unfinished:
        raise CommandError(
            f"timed out: {unfinished} job{'s' if unfinished != 1 else ''} not finished "
            "(see ucp status; ucp collect picks them up later)"
        )
    return exit_status(items, pending_fails=True)


async def _run(args: argparse.Namespace) -> int:
    plan = await read_plan(args.plan)
    async with client_session(args, progress=True) as session:
        with client_errors():
            return await _submit_and_wait(args, session, plan)


RUN = Subcommand(
    name="run",
    help="submit a plan, wait for its jobs and collect their results",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp run`` subcommand."""
