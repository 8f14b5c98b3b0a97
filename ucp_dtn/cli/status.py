"""``ucp status [JOB...]``: where this client's jobs stand, as the broker says (and the
journal remembers).

JOB is a job's name (its latest submission), its UUID or a unique UUID prefix; no JOB: every
job of this client. ``--nodes`` also lists the executors and datastores the broker knows. When
no broker is reachable the states last heard are shown and the command fails.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Sequence

from ucp_dtn.client import ClientSession, JobEntry, NoReply
from ucp_dtn.ucp import JobStatus, JobStatusEntry, NodeEntry, ResultStatus, Role

from .client_options import add_client_arguments, client_errors, client_session
from .command import CommandError, Subcommand

__all__ = ["STATUS", "entry_state", "format_jobs", "job_json"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="job name, UUID or UUID prefix")
    parser.add_argument("--nodes", action="store_true", help="also list the broker's nodes")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_client_arguments(parser)


def _state_name(state: JobStatus | int) -> str:
    return state.name.lower() if isinstance(state, JobStatus) else f"state {state}"


def entry_state(entry: JobEntry) -> str:
    """One word for where a job stands in the journal."""
    if entry.result is not None:
        return "done" if entry.result.ok else "failed"
    if entry.state is not None:
        return _state_name(entry.state)
    if entry.accepted_by is not None:
        return "accepted"
    return "sent" if entry.broker is not None else "outbox"


def _detail(entry: JobEntry) -> str:
    result = entry.result
    if result is not None and not result.ok:
        status = (
            result.status.name.lower().replace("_", " ")
            if isinstance(result.status, ResultStatus)
            else str(result.status)
        )
        text = result.message or status
        if result.exit_code is not None:
            text += f" (exit code {result.exit_code})"
        return text
    if entry.state is None and entry.broker is None:
        return "queued in the client's outbox: no broker known yet"
    if entry.state is None and entry.accepted_by is None:
        return f"waiting for {entry.broker}"
    return entry.detail


def _when(at: float | None) -> str:
    return "-" if at is None else time.strftime("%H:%M:%S", time.localtime(at))


def format_jobs(entries: Sequence[JobEntry]) -> str:
    """The status table."""
    rows = [("JOB", "ID", "STATE", "SINCE", "DETAIL")]
    for entry in entries:
        rows.append(
            (
                entry.name,
                str(entry.job_id)[:8],
                entry_state(entry),
                _when(entry.state_at or entry.submitted_at),
                _detail(entry),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    ).rstrip()


def job_json(entry: JobEntry) -> dict[str, object]:
    """The ``--json`` form of a job."""
    result = entry.result
    return {
        "name": entry.name,
        "job_id": str(entry.job_id),
        "plan": entry.plan,
        "state": entry_state(entry),
        "state_code": None if entry.state is None else int(entry.state),
        "detail": _detail(entry),
        "updated_at": entry.state_at,
        "submitted_at": entry.submitted_at,
        "broker": entry.broker,
        "accepted_by": entry.accepted_by,
        "executor": entry.executor,
        "result": None
        if result is None
        else {
            "ok": result.ok,
            "status": int(result.status),
            "exit_code": result.exit_code,
            "message": result.message,
            "published": list(result.published),
            "from": entry.result_from,
        },
        "collected_to": entry.collected_to,
    }


def _node_json(node: NodeEntry) -> dict[str, object]:
    return {
        "node": node.node,
        "roles": [role.name.lower() for role in Role if role in node.roles and role.name],
        "last_seen": node.last_seen,
        "running_jobs": node.running_jobs,
        "max_jobs": node.max_jobs,
        "memory": None if node.capabilities is None else node.capabilities.memory,
    }


def format_nodes(nodes: Sequence[NodeEntry]) -> str:
    """The ``--nodes`` table."""
    lines = [f"nodes ({len(nodes)}):"]
    for node in nodes:
        roles = ",".join(role.name.lower() for role in Role if role in node.roles and role.name)
        load = f"  jobs {node.running_jobs}/{node.max_jobs}" if node.max_jobs else ""
        lines.append(f"  {node.node}  {roles}  seen {_when(node.last_seen)}{load}")
    return "\n".join(lines)


async def _foreign(session: ClientSession, entries: Sequence[JobStatusEntry]) -> list[JobEntry]:
    """Jobs the broker lists for this client that the journal does not know."""
    found = []
    for status in entries:
        if await session.journal.get(status.job_id) is None:
            found.append(
                JobEntry(
                    job_id=status.job_id,
                    name=status.name or "?",
                    plan="?",
                    submitted_at=status.updated_at,
                    state=status.state,
                    state_at=status.updated_at,
                    detail=status.detail,
                    executor=status.executor,
                )
            )
    return found


async def _run(args: argparse.Namespace) -> int:
    async with client_session(args) as session:
        with client_errors():
            chosen = [await session.journal.find(ref) for ref in args.jobs]
            job_ids: tuple[uuid.UUID, ...] = tuple(entry.job_id for entry in chosen)
            broker = await session.find_broker()
            problem: str | None = None
            nodes: tuple[NodeEntry, ...] = ()
            extra: list[JobEntry] = []
            if broker is None:
                problem = f"no broker reachable within {session.settings.wait_s:g} s"
            else:
                try:
                    reply = await session.status(job_ids, include_nodes=args.nodes)
                    nodes = reply.nodes
                    extra = await _foreign(session, reply.jobs)
                except NoReply as exc:
                    problem = str(exc)
            if job_ids:
                entries = [
                    await session.journal.get(job_id) or e
                    for job_id, e in zip(job_ids, chosen, strict=True)
                ]
            else:
                entries = await session.journal.jobs()
            entries = [*entries, *extra]
    if args.json:
        document: dict[str, object] = {"jobs": [job_json(entry) for entry in entries]}
        if args.nodes:
            document["nodes"] = [_node_json(node) for node in nodes]
        if problem:
            document["error"] = problem
        print(json.dumps(document, sort_keys=True))
    else:
        print(format_jobs(entries) if entries else "no jobs submitted from this client")
        if nodes:
            print(format_nodes(nodes))
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
