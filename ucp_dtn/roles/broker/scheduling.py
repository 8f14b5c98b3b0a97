"""Scheduling at the broker: which queued job goes to which executor, and which is rejected.

:class:`JobScheduler` holds the broker's dispatch rules. A queued job that the restart hold
(:mod:`.succession`) keeps back, or whose ``after`` jobs have not finished (:mod:`.jobs`),
waits with a detail saying why (kept in memory only); a job whose ``after`` jobs failed is
rejected, and so, transitively, are the queued jobs waiting for it. A job that may run goes to
a capable executor with a free slot (:mod:`.registry`), preferring one near its inputs
(:mod:`.placement`). A dispatch is sent (with custody) before it is recorded: a crash in
between dispatches the job again after the restart, which is harmless (the first result wins).
Every state change is written to the journal first, then announced to the job's result address.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ...ucp.capabilities import Requirements
from ...ucp.messages import JobDispatch, JobStatus
from ..endpoints import RoleName, role_endpoint
from ..settings import RoleSettings
from .job_records import JobRecord
from .jobs import JobBook, Readiness
from .placement import InputPlacement
from .registry import NodeRegistry
from .relay import SendMessage
from .succession import Succession

__all__ = ["JobScheduler"]

logger = logging.getLogger(__name__)

_RequirementsKey = tuple[Any, ...]


def _requirements_key(requirements: Requirements) -> _RequirementsKey:
    """``requirements`` as a hashable value (its ``extra`` is a mapping): equal keys, equal
    requirements."""
    return (
        requirements.memory,
        requirements.disk,
        requirements.cpu_cores,
        requirements.cpu_freq,
        requirements.free_cpu,
        requirements.max_cpu_load,
        requirements.min_power,
        requirements.no_battery,
        tuple(sorted(requirements.extra.items())),
    )


class JobScheduler:
    """Dispatches and rejects the queued jobs of one broker run (see the module docstring).
    The broker calls it with its lock held; ``save`` journals a record and ``announce``
    tells the job's result address about its state."""

    def __init__(
        self,
        own: str,
        settings: RoleSettings,
        jobs: JobBook,
        registry: NodeRegistry,
        placement: InputPlacement,
        succession: Succession,
        send: SendMessage,
        save: Callable[[JobRecord], Awaitable[None]],
        announce: Callable[[JobRecord], Awaitable[None]],
        clock: Callable[[], float],
        counts: dict[str, int],
        each_job: Callable[[], None] = lambda: None,
    ) -> None:
        """``each_job`` is called before the effects of each job a pass dispatches or
        rejects: in a handling round, each job's dispatch and record are a handler of their
        own (:meth:`.HandlingRound.begin_message`), independent of the jobs before it — as
        one handler, every dispatch followed by its record would have moved the next one a
        level up, one bundle and one transaction per dispatch."""
        self.own = own
        """This broker's endpoint (text)."""
        self.settings = settings
        self._jobs = jobs
        self._registry = registry
        self._placement = placement
        self._succession = succession
        self._send = send
        self._save = save
        self._announce = announce
        self._clock = clock
        self._counts = counts
        self._each_job = each_job
        self._waited_for_room: dict[uuid.UUID, tuple[str, _RequirementsKey]] = {}
        """Queued jobs last told they wait for room: the detail given and their requirements."""
        self._deferring = False
        self._deferred = False
        self.passes = 0
        """Full passes over the queue so far (a statistic: one per round, not per message)."""

    def defer(self) -> None:
        """Until :meth:`run_deferred`, a pass over the whole queue (:meth:`schedule` without
        candidates) is only noted: the handlers of one round of messages (forty results, a
        plan's submissions) each ask for one, and one pass at the end of the round does what
        all of them would have done (each frees a slot or adds a job; none needs the pass before
        the next message is handled)."""
        self._deferring = True

    def stop_deferring(self) -> None:
        """End :meth:`defer` without running the pass: the next :meth:`schedule` runs it."""
        self._deferring = False

    async def run_deferred(self) -> None:
        """End :meth:`defer`; run the pass it held back, if any was asked for."""
        self._deferring = False
        if self._deferred:
            self._deferred = False
            await self.schedule()

    async def schedule(self, candidates: list[JobRecord] | None = None) -> None:
        """Dispatch every queued job (of ``candidates``, default all) that may run and has a
        capable executor with a free slot; reject the ones whose ``after`` jobs failed.

        Once no executor has room for any job, a queued job that already waited for room
        (and whose detail nobody changed since) only has its reason refreshed from this pass's
        answer for its requirements: a result frees one slot, and checking thousands of queued
        jobs in full to find that nothing else fits was the hub's biggest cost per job in a
        large plan (O(queued) full checks per result)."""
        if candidates is None:
            if self._deferring:
                self._deferred = True
                return
            self.passes += 1
        # Requirements no executor had room for in this pass: a later job asking the same
        # finds no room either (dispatches only fill slots), so it is not asked again — a
        # plan of thousands of queued jobs costs one registry query per result, not one per
        # queued job.
        no_room: dict[_RequirementsKey, str] = {}
        room = True
        queue = self._jobs.queued() if candidates is None else candidates
        if len(self._waited_for_room) > 2 * len(queue) + 64:
            # Forget jobs that left the queue some other way (cancelled, taken by a sync).
            self._waited_for_room = {
                job_id: given
                for job_id, given in self._waited_for_room.items()
                if self._jobs.state_of(job_id) == JobStatus.QUEUED
            }
        for queued in queue:
            record = self._jobs.get(queued.job_id)
            if record is None or record.state != JobStatus.QUEUED:
                continue  # changed meanwhile (rejected with a failed dependency)
            if not room:
                given = self._waited_for_room.get(record.job_id)
                if given is not None and given[0] == record.detail and given[1] in no_room:
                    # Nothing can be dispatched any more in this pass and this job only waited
                    # for room (a dependency that fails rejects its dependents at once:
                    # reject_dependents): refresh its reason, skip the full check.
                    self._wait_for_room(record, given[1], no_room[given[1]])
                    continue
            if self._succession.holds(record.job_id):
                self._set_queued_detail(record, "waiting for other brokers' syncs (restart)")
                continue
            verdict = self._jobs.verdict(record)
            if verdict.readiness is Readiness.REJECT:
                self._each_job()
                await self.reject(record, verdict.reason)
                continue
            if verdict.readiness is Readiness.WAIT:
                self._set_queued_detail(record, verdict.reason)
                continue
            requirements = record.job.requirements
            key = _requirements_key(requirements)
            reason = no_room.get(key)
            if reason is not None:
                self._wait_for_room(record, key, reason)
                continue
            now = self._clock()
            choice = self._registry.choose_executor(requirements, now)
            if choice.node is None:
                no_room[key] = choice.reason
                self._wait_for_room(record, key, choice.reason)
                room = room and self._registry.has_room(now)
                continue
            # Jobs go to their data: worked out only for a job that can go somewhere now.
            inline = record.submission.inline_data
            near = self._placement.near(record.job, inline)
            node = choice.node
            if near:
                nearer = self._registry.choose_executor(record.job.requirements, now, near=near)
                node = nearer.node or node  # the same executors have room
            self._placement.note_dispatch(record.job, inline, node)
            self._each_job()
            await self._dispatch(record, node, now)
            room = self._registry.has_room(now)

    def _wait_for_room(self, record: JobRecord, key: _RequirementsKey, reason: str) -> None:
        """``record`` waits because no executor has room for requirements ``key``."""
        self._waited_for_room[record.job_id] = (self._set_queued_detail(record, reason), key)

    def _set_queued_detail(self, record: JobRecord, detail: str) -> str:
        """Set why ``record`` waits; the detail as set."""
        # Why a job waits changes with every heartbeat: kept in memory, not journalled.
        if record.attempts:
            detail = f"{detail} (attempt {record.attempts} lost)"
        if record.detail != detail:
            self._jobs.put(dataclasses.replace(record, detail=detail))
        return detail

    async def _dispatch(self, record: JobRecord, node: str, now: float) -> None:
        executor = role_endpoint(node, RoleName.EXECUTOR)
        attempt = record.attempts + 1
        dispatch = JobDispatch(
            job=record.job,
            broker=self.own,
            client=record.client,
            attempt=attempt,
            inline_data=record.submission.inline_data,
        )
        self._waited_for_room.pop(record.job_id, None)
        await self._send(
            executor, dispatch, custody=True, lifetime_s=self.settings.result_lifetime_s
        )
        self._registry.note_dispatch(node, record.job_id, now)
        record = dataclasses.replace(
            record,
            state=JobStatus.DISPATCHED,
            updated_at=now,
            dispatched_at=now,
            attempts=attempt,
            executor=str(executor),
            detail=f"dispatched to {executor}",
        )
        await self._save(record)
        self._counts["dispatches"] += 1
        logger.info("job %s dispatched to %s (attempt %d)", record.job_id, executor, attempt)
        await self._announce(record)

    async def reject(self, record: JobRecord, reason: str) -> None:
        """Reject ``record`` and, transitively, the queued jobs waiting for it."""
        work = [(record, reason)]
        while work:
            record, reason = work.pop()
            now = self._clock()
            record = dataclasses.replace(
                record, state=JobStatus.REJECTED, updated_at=now, finished_at=now, detail=reason
            )
            await self._save(record)
            logger.info("job %s rejected: %s", record.job_id, reason)
            await self._announce(record)
            for dependent in self._jobs.dependents(record.job_id):
                verdict = self._jobs.verdict(dependent)
                if verdict.readiness is Readiness.REJECT:
                    work.append((dependent, verdict.reason))

    async def reject_dependents(self, job_ids: list[uuid.UUID]) -> None:
        """Reject the queued jobs waiting for these failed or rejected jobs."""
        for job_id in job_ids:
            for dependent in self._jobs.dependents(job_id):
                current = self._jobs.get(dependent.job_id)
                if current is None or current.state != JobStatus.QUEUED:
                    continue  # rejected meanwhile through another dependency
                verdict = self._jobs.verdict(current)
                if verdict.readiness is Readiness.REJECT:
                    await self.reject(current, verdict.reason)
