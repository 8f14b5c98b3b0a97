"""Execution plans: named data to upload and jobs to run, with their dependency graph.

An :class:`ExecutionPlan` comes from :func:`~ucp_dtn.ucp.plan_loader.load_plan`, which reads
our TOML format or REC's (see ``docs/plans.md``). By the time a plan exists it is fully checked:
every job has its UUID, every file is found and small ones are read, every dependency is known
and the graph has no cycle — so a client can send all of it, or nothing.

Jobs run in parallel unless something orders them. Job B runs after job A when

* B lists A in ``after`` (explicit), or
* B reads a data name that A publishes as a named result (implicit: a pipeline), where names
  and ``*`` patterns that could denote a common name count
  (:func:`~ucp_dtn.ucp.names.patterns_overlap`).

:meth:`ExecutionPlan.waves` groups the jobs into rounds that can each run at once; the order of
:attr:`ExecutionPlan.jobs` is one topological order (the plan's own order among jobs that are
ready together). Every job's :attr:`JobInfo.after <ucp_dtn.ucp.job.JobInfo.after>` holds the
UUIDs of all the jobs it waits for, so a broker can hold it back until they are done.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from .errors import PlanError
from .job import JobInfo
from .names import DataName, is_wildcard, patterns_overlap

__all__ = [
    "Dependency",
    "DraftJob",
    "ExecutionPlan",
    "PlanFormat",
    "PlannedJob",
    "Upload",
    "assemble_plan",
]

PlanFormat = Literal["ucp", "rec"]
"""Which syntax a plan was written in: ours (``"ucp"``) or REC's (``"rec"``)."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One datum the client uploads (``DataPut``) before it submits the plan's jobs."""

    name: DataName
    """Its data name."""
    size: int
    """Its size in bytes (when the plan was loaded)."""
    file: Path | None = None
    """The file to read it from (absolute); ``None`` when :attr:`data` holds it."""
    data: bytes | None = None
    """The content, for inline text; ``None`` when it is read from :attr:`file`."""
    job: str | None = None
    """The job it was declared for (a large file of the job, or a REC ``[jobs.data]`` entry);
    ``None`` for the plan's own named data."""
    replicas: int | None = None
    """Its replication factor (copies on distinct datastores); ``None``: the datastores'
    default for the name."""

    def read(self) -> bytes:
        """The content (reads :attr:`file`; may raise :class:`OSError`)."""
        if self.data is not None:
            return self.data
        assert self.file is not None
        return self.file.read_bytes()


@dataclass(frozen=True, slots=True)
class Dependency:
    """Why one job waits for another."""

    job: str
    """The job that waits."""
    on: str
    """The job it waits for."""
    reason: str
    """``"after"`` for an explicit dependency; for an implicit one, what the waiting job reads
    that the other publishes: ``"reads 'resampled/*'"``."""


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """A job of the plan, ready to submit."""

    name: str
    """Its name in the plan (``jobs[0]``, ``jobs[1]``... for REC plans, which have none)."""
    info: JobInfo
    """The job; ``info.after`` holds the UUIDs of :attr:`after`."""
    after: frozenset[str] = frozenset()
    """Names of the jobs it waits for (explicit and implicit)."""
    inline_data: Mapping[DataName, bytes] = field(default_factory=dict)
    """Small named data to attach to the job's submission, so the executor need not fetch it
    (REC's ``[jobs.data]``); the same data is also among the plan's uploads."""


@dataclass(frozen=True, slots=True)
class DraftJob:
    """A job as a format parser produces it, before the dependency graph is built."""

    name: str
    """Its name in the plan."""
    info: JobInfo
    """The job, with ``after`` still empty."""
    after: tuple[str, ...] = ()
    """Names of the jobs it explicitly waits for."""
    inline_data: Mapping[DataName, bytes] = field(default_factory=dict)
    """See :attr:`PlannedJob.inline_data`."""


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """A checked plan: uploads first, then jobs, in an order that respects dependencies."""

    source: Path
    """The plan file."""
    format: PlanFormat
    """The syntax it was written in."""
    uploads: tuple[Upload, ...]
    """Named data to upload before any job is submitted."""
    jobs: tuple[PlannedJob, ...]
    """Every job, in a topological order."""
    dependencies: tuple[Dependency, ...] = ()
    """Every edge of the dependency graph, with its reason."""

    def job(self, name: str) -> PlannedJob:
        """The job called ``name``; :class:`KeyError` if there is none."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def job_by_id(self, job_id: uuid.UUID) -> PlannedJob:
        """The job with UUID ``job_id``; :class:`KeyError` if there is none."""
        for job in self.jobs:
            if job.info.job_id == job_id:
                return job
        raise KeyError(job_id)

    def waves(self) -> tuple[tuple[str, ...], ...]:
        """The jobs in rounds: each round's jobs depend only on earlier rounds, so they can
        run in parallel."""
        level: dict[str, int] = {}
        for job in self.jobs:  # topological order: dependencies come first
            level[job.name] = 1 + max((level[dep] for dep in job.after), default=-1)
        rounds: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
        for job in self.jobs:
            rounds[level[job.name]].append(job.name)
        return tuple(tuple(names) for names in rounds)

    def total_upload_size(self) -> int:
        """Bytes of all uploads."""
        return sum(upload.size for upload in self.uploads)


def _implicit_dependencies(drafts: Sequence[DraftJob]) -> list[Dependency]:
    edges = []
    for reader in drafts:
        for producer in drafts:
            if producer is reader:
                continue
            for wanted in sorted(reader.info.referenced_names()):
                produced = [
                    name
                    for name in sorted(producer.info.published_names())
                    if patterns_overlap(wanted, name)
                ]
                if produced:
                    edges.append(Dependency(reader.name, producer.name, f"reads {wanted!r}"))
                    break
    return edges


def _find_cycle(names: Sequence[str], edges: Mapping[str, list[Dependency]]) -> list[Dependency]:
    """One cycle of the graph (as its edges), or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Dependency] = []

    def visit(name: str) -> list[Dependency]:
        state[name] = 1
        for edge in edges.get(name, []):
            if state.get(edge.on) == 1:
                start = next((i for i, e in enumerate(path) if e.job == edge.on), len(path))
                return [*path[start:], edge]
            if edge.on not in state:
                path.append(edge)
                found = visit(edge.on)
                if found:
                    return found
                path.pop()
        state[name] = 2
        return []

    for name in names:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


def _describe_cycle(cycle: Iterable[Dependency]) -> str:
    steps = []
    for edge in cycle:
        if edge.reason == "after":
            steps.append(f"{edge.job!r} runs after {edge.on!r}")
        else:
            steps.append(f"{edge.job!r} {edge.reason} published by {edge.on!r}")
    return "dependency cycle: " + ", ".join(steps)


def _check_publications(file: str, uploads: Sequence[Upload], drafts: Sequence[DraftJob]) -> None:
    owner: dict[str, str] = {}
    for draft in drafts:
        for name in sorted(draft.info.published_names()):
            for upload in uploads:
                if patterns_overlap(name, upload.name):
                    raise PlanError(
                        file,
                        f"publishes {name!r}, which the plan also uploads as {upload.name!r}",
                        job=draft.name,
                        field="named_results",
                    )
            if not is_wildcard(name):
                if name in owner:
                    raise PlanError(
                        file,
                        f"publishes {name!r}, which job {owner[name]!r} publishes too",
                        job=draft.name,
                        field="named_results",
                    )
                owner[name] = draft.name


def assemble_plan(
    file: str,
    source: Path,
    format: PlanFormat,
    uploads: Sequence[Upload],
    drafts: Sequence[DraftJob],
) -> ExecutionPlan:
    """Build the dependency graph of ``drafts`` and order them; :class:`PlanError` (naming
    ``file``) for a duplicate job name, an unknown ``after`` entry, a name published twice or
    also uploaded, or a cycle."""
    names = [draft.name for draft in drafts]
    seen: set[str] = set()
    for name in names:
        if name in seen:  # pragma: no cover - TOML tables cannot repeat a key
            raise PlanError(file, "job name appears twice", job=name)
        seen.add(name)
    _check_publications(file, uploads, drafts)

    edges: dict[str, list[Dependency]] = {name: [] for name in names}
    for draft in drafts:
        for index, other in enumerate(draft.after):
            if other not in seen:
                raise PlanError(
                    file, f"no job is called {other!r}", job=draft.name, field=f"after[{index}]"
                )
            if other == draft.name:
                raise PlanError(
                    file, "a job cannot run after itself", job=draft.name, field=f"after[{index}]"
                )
            edges[draft.name].append(Dependency(draft.name, other, "after"))
    for edge in _implicit_dependencies(drafts):
        if all(existing.on != edge.on for existing in edges[edge.job]):
            edges[edge.job].append(edge)

    cycle = _find_cycle(names, edges)
    if cycle:
        raise PlanError(file, _describe_cycle(cycle))

    # Kahn's algorithm, taking ready jobs in plan order.
    waiting = {name: {edge.on for edge in edges[name]} for name in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [name for name in names if name not in ordered and not waiting[name]]
        assert ready, "a cycle slipped through"
        for name in ready:
            ordered.append(name)
        for name in names:
            waiting[name] -= set(ready)

    by_name = {draft.name: draft for draft in drafts}
    ids = {draft.name: draft.info.job_id for draft in drafts}
    planned = []
    for name in ordered:
        draft = by_name[name]
        after = frozenset(edge.on for edge in edges[name])
        info = dataclasses.replace(
            draft.info, after=tuple(ids[dep] for dep in names if dep in after)
        )
        planned.append(PlannedJob(name, info, after, MappingProxyType(dict(draft.inline_data))))
    dependencies = tuple(edge for name in ordered for edge in edges[name])
    return ExecutionPlan(source, format, tuple(uploads), tuple(planned), dependencies)
