"""``ucp collect [JOB...] [-o DIR]``: unpack finished jobs' results into ``DIR/<job-name>/``.

Results that waited in the network for this client arrive as soon as it is connected; a job
the broker reports finished whose result bundle does not come (expired, or waiting on a node
this client no longer meets) is fetched from the datastores (``<job-uuid>/result``). Each job
shows how it ended and the end of its standard output. No JOB: every job not collected yet
(``--all``: every job). Collecting again is harmless.

Exit status: 0 when every job asked for succeeded and was collected; 1 when one failed or was
rejected, or (named explicitly) has no result yet.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ucp_dtn.client import Collected, CollectState, collect_results, result_summary

from .client_options import add_client_arguments, client_errors, client_session
from .command import EXIT_FAILURE, Subcommand
from .status import job_json

__all__ = ["COLLECT", "collected_json", "format_collected"]

TAIL_LINES = 10
"""Lines of stdout (and, for failed jobs, stderr) shown per job."""


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="job name, UUID or UUID prefix")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="unpack into DIR/<job-name>/ (default: the current directory)",
    )
    parser.add_argument("--all", action="store_true", help="every job, also those collected before")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_client_arguments(parser)


def _tail(data: bytes, lines: int = TAIL_LINES) -> list[str]:
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    return text.splitlines()[-lines:] if text else []


def format_collected(items: Sequence[Collected]) -> str:
    """The human-readable form of collected jobs."""
    out: list[str] = []
    for item in items:
        entry = item.entry
        head = f"{entry.name} ({str(entry.job_id)[:8]}): {result_summary(entry)}"
        if item.directory is not None:
            count = len(item.files)
            head += f" -> {item.directory}/ ({count} file{'s' if count != 1 else ''})"
        out.append(head)
        result = entry.result
        if result is not None:
            for line in _tail(result.stdout_tail):
                out.append(f"  | {line}")
            if not result.ok:
                for line in _tail(result.stderr_tail):
                    out.append(f"  ! {line}")
        for skipped in item.skipped:
            out.append(f"  skipped {skipped}")
    return "\n".join(out)


def collected_json(item: Collected) -> dict[str, object]:
    """The ``--json`` form of a collected job."""
    document = job_json(item.entry)
    result = item.entry.result
    document.update(
        {
            "collect": item.state.value,
            "directory": None if item.directory is None else str(item.directory),
            "files": list(item.files),
            "skipped": list(item.skipped),
            "stdout_tail": None if result is None else result.stdout_tail.decode(errors="replace"),
            "stderr_tail": None if result is None else result.stderr_tail.decode(errors="replace"),
        }
    )
    return document


def exit_status(items: Sequence[Collected], *, pending_fails: bool) -> int:
    """0 when everything succeeded; 1 for a failure (or a missing result, if it counts)."""
    bad = {CollectState.FAILED, CollectState.REJECTED}
    if pending_fails:
        bad.add(CollectState.PENDING)
    return EXIT_FAILURE if any(item.state in bad for item in items) else 0


async def _run(args: argparse.Namespace) -> int:
    async with client_session(args) as session:
        with client_errors():
            if args.jobs:
                entries = [await session.journal.find(ref) for ref in args.jobs]
            else:
                entries = [
                    entry
                    for entry in await session.journal.jobs()
                    if args.all or entry.collected_at is None
                ]
            items = await collect_results(session, entries, args.output) if entries else []
    if args.json:
        print(json.dumps([collected_json(item) for item in items], sort_keys=True))
    elif not items:
        print("nothing to collect")
    else:
        print(format_collected(items))
        pending = sum(1 for item in items if item.state is CollectState.PENDING)
        if pending:
            print(f"{pending} job{'s' if pending != 1 else ''} not finished yet (see ucp status)")
    return exit_status(items, pending_fails=bool(args.jobs))


COLLECT = Subcommand(
    name="collect",
    help="unpack finished jobs' results into DIR/<job-name>/",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp collect`` subcommand."""
