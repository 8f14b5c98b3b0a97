"""What the broker tells a client about its jobs beyond their states (sans-IO): the job list a
status query asks for, a job's output so far, and whether its result address leads anywhere.

* :func:`job_list` filters status entries by state and keeps the ``limit`` most recently
  changed, saying how many it left out.
* :func:`log_reply` answers a ``job-log`` query from the output the broker holds
  (:class:`~.outputs.JobOutputs`).
* :func:`result_address_warning` is the line a ``job-accepted`` carries when no route of the
  broker's node leads to the job's result address: REC let such results wait out their lifetime
  silently (an hour); the submitter should hear of it while it can still fix the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bpv7 import BPv7Error, EndpointID, parse_eid

from ...agent import ConfigError, RouteInfo, RoutePattern
from ...ucp.messages import JobLogQuery, JobLogReply, JobStatus, JobStatusEntry
from .outputs import JobOutputs

__all__ = ["job_list", "log_reply", "result_address_warning"]


def job_list(
    entries: Sequence[JobStatusEntry], states: Iterable[JobStatus | int], limit: int
) -> tuple[tuple[JobStatusEntry, ...], int]:
    """The entries in one of ``states`` (all if none), the ``limit`` most recently changed of
    them if ``limit`` (0: all), and how many matched but were left out."""
    wanted = {int(state) for state in states}
    chosen = [entry for entry in entries if not wanted or int(entry.state) in wanted]
    if not limit or len(chosen) <= limit:
        return tuple(chosen), 0
    newest = sorted(chosen, key=lambda entry: entry.updated_at, reverse=True)
    return tuple(newest[:limit]), len(chosen) - limit


def log_reply(
    query: JobLogQuery, state: JobStatus | int | None, outputs: JobOutputs
) -> JobLogReply:
    """The answer to ``query`` for a job in ``state`` (``None``: unknown here)."""
    (out_at, out), (err_at, err) = outputs.since(query.job_id, query.stdout_from, query.stderr_from)
    return JobLogReply(
        request_id=query.request_id,
        job_id=query.job_id,
        found=state is not None,
        state=JobStatus.QUEUED if state is None else state,
        stdout_at=out_at,
        stdout=out,
        stderr_at=err_at,
        stderr=err,
    )


def result_address_warning(
    address: str | None,
    client: EndpointID,
    own_node: EndpointID,
    routes: Iterable[RouteInfo],
    lifetime_s: float,
) -> str:
    """A line for the client when no route of this node leads to ``address`` (the job's result
    address, when it is not the client's own node); empty when there is one."""
    if address is None:
        return ""
    try:
        destination = parse_eid(address)
    except BPv7Error:
        return ""
    if destination.node_id in (client.node_id, own_node):
        return ""
    text = str(destination)
    for route in routes:
        try:
            if RoutePattern.parse(route.pattern).matches(destination, text):
                return ""
        except ConfigError:
            continue
    return (
        f"no node {destination.node_id} is known here: the results wait in the network until "
        f"it appears (up to {_duration_text(lifetime_s)})"
    )


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
