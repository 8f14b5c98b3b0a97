"""The client subcommands' output for people: tables and lines made from the documents the
client operations return (:mod:`ucp_dtn.client.documents`; ``--json`` prints those as they
are). Pure functions of the standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "TAIL_LINES",
    "collect_status",
    "format_cancel",
    "format_collected",
    "format_jobs",
    "format_listing",
    "format_nodes",
    "format_replicas",
    "format_space",
    "format_submit",
    "size_text",
    "table",
]

TAIL_LINES = 10
"""Lines of stdout (and, for failed jobs, stderr) shown per collected job."""

Document = dict[str, Any]


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _when(at: float | None, *, day: bool = False) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if day else "%H:%M:%S", time.localtime(at))


def size_text(count: int | None) -> str:
    """Bytes as people read them (``1.5 GiB``)."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def format_submit(document: Document, *, reasons: bool = True) -> str:
    """What ``ucp submit`` says about a submission (with ``reasons``, a line per rejected job
    saying why; ``ucp run`` says it when it collects)."""
    jobs = document["jobs"]
    count = _plural(len(jobs), "job")
    plan = document["plan"]
    if document["outcome"] == "accepted":
        head = f"{plan}: {count} accepted by {document['broker']}"
    elif document["outcome"] == "sent":
        rejected = sum(1 for job in jobs if job.get("rejected"))
        waiting = sum(1 for job in jobs if not job["accepted"] and not job.get("rejected"))
        parts = [f"{rejected} rejected"] if rejected else []
        if waiting:
            parts.append(f"{waiting} not confirmed yet (see ucp status)")
        head = f"{plan}: {count} sent to {document['broker']}; {', '.join(parts)}"
    else:
        head = (
            f"{plan}: no broker reachable: {count} queued in {document['home']}; they leave "
            "as soon as a broker is reachable (the client agent keeps trying; with --no-agent, "
            "at the next command)"
        )
        if document.get("why"):
            head += f"\n{document['why']}"
    width = max((len(job["name"]) for job in jobs), default=0)
    lines = [head]
    for job in jobs:
        lines.append(f"  {job['name']:<{width}}  {job['job_id']}")
    for job in jobs:
        if job.get("warning"):
            lines.append(f"warning: {job['name']} ({job['short_id']}): {job['warning']}")
        if reasons and job.get("rejected"):
            lines.append(f"rejected: {job['name']} ({job['short_id']}): {job['rejected']}")
    return "\n".join(lines)


def format_jobs(documents: Sequence[Document], *, plan: bool = False) -> str:
    """The job table of ``ucp status`` (and, with the plan column, ``ucp jobs``)."""
    head = ["JOB", "ID", *(["PLAN"] if plan else []), "STATE", "SINCE", "DETAIL"]
    rows = [head]
    for job in documents:
        row = [job["name"], job["short_id"]]
        if plan:
            row.append(_plan_name(job.get("plan")))
        row += [
            job["state"],
            _when(job.get("updated_at") or job.get("submitted_at")),
            job["detail"],
        ]
        rows.append(row)
    return table(rows)


def _plan_name(path: str | None) -> str:
    if not path:
        return "-"
    return path.rsplit("/", 1)[-1]


def format_nodes(nodes: Sequence[Document]) -> str:
    """The ``--nodes`` table of ``ucp status``."""
    lines = [f"nodes ({len(nodes)}):"]
    for node in nodes:
        load = f"  jobs {node['running_jobs']}/{node['max_jobs']}" if node["max_jobs"] else ""
        roles = ",".join(node["roles"])
        lines.append(f"  {node['node']}  {roles}  seen {_when(node['last_seen'])}{load}")
    return "\n".join(lines)


def _tail(text: str | None, lines: int = TAIL_LINES) -> list[str]:
    text = (text or "").rstrip("\n")
    return text.splitlines()[-lines:] if text else []


def format_collected(documents: Sequence[Document]) -> str:
    """What ``ucp collect`` and ``ucp run`` say about each job collected."""
    out: list[str] = []
    for job in documents:
        head = f"{job['label']}: {job['summary']}"
        if job.get("directory") is not None:
            head += f" -> {job['directory']}/ ({_plural(len(job['files']), 'file')})"
        out.append(head)
        for line in _tail(job.get("stdout_tail")):
            out.append(f"  | {line}")
        result = job.get("result")
        if result is not None and not result["ok"]:
            for line in _tail(job.get("stderr_tail")):
                out.append(f"  ! {line}")
        for skipped in job.get("skipped", []):
            out.append(f"  skipped {skipped}")
    return "\n".join(out)


def collect_status(documents: Sequence[Document], *, pending_fails: bool) -> int:
    """0 when everything succeeded; 1 for a job failed, rejected or cancelled (or, if it
    counts, one without a result yet)."""
    bad = {"failed", "rejected", "cancelled"}
    if pending_fails:
        bad.add("pending")
    return 1 if any(job["collect"] in bad for job in documents) else 0


def format_cancel(document: Document) -> str:
    """What ``ucp cancel`` did to each job."""
    lines = []
    for job in document["jobs"]:
        if not job["known"]:
            what = "not known to the broker (its submission has not arrived, or another broker "
            what += "has it)"
        elif job["cancelled"]:
            what = "cancelled"
        else:
            what = f"not cancelled: already {job['state']}"
        lines.append(f"{job['label']}: {what}")
    return "\n".join(lines)


def format_listing(document: Document) -> str:
    """The ``ucp data ls`` table."""
    rows = [["NAME", "SIZE", "WRITTEN", "JOB", "HOLDER"]]
    for entry in document["entries"]:
        rows.append(
            [
                entry["name"],
                str(entry["size"]),
                _when(entry["written_at"], day=True),
                "-" if entry["job_id"] is None else entry["job_id"][:8],
                entry["holder"] or "-",
            ]
        )
    return table(rows)


def format_replicas(document: Document) -> str:
    """The ``ucp data ls --replicas`` table: one line per datum, its copies against its factor
    and the datastores holding it."""
    rows = [["NAME", "SIZE", "WRITTEN", "REPLICAS", "HOLDERS"]]
    for entry in document["entries"]:
        copies = f"{len(entry['holders'])}/{entry['replicas']}"
        if not entry["meets_factor"]:
            copies += " below"
        holders = ", ".join(entry["holders"])
        if entry["stale"]:
            holders += " (older write: " + ", ".join(entry["stale"]) + ")"
        rows.append(
            [
                entry["name"],
                str(entry["size"]),
                _when(entry["written_at"], day=True),
                copies,
                holders,
            ]
        )
    return table(rows)


def format_space(document: Document) -> str:
    """The ``ucp data df`` table."""
    rows = [["DATASTORE", "FREE", "USED", "DATA", "QUOTA"]]
    for store in document["datastores"]:
        rows.append(
            [
                store["node"],
                size_text(store["free"]),
                size_text(store["used"]),
                str(store["items"]),
                size_text(store["quota"]),
            ]
        )
    return table(rows)
