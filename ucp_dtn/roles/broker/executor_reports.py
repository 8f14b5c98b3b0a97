"""What executors report to the broker, and the delivery of results.

:class:`ExecutorReports` takes an executor's ``job-state`` (only RUNNING), the jobs its
heartbeat lists as started (short jobs send no ``job-state``), its ``job-output`` (kept for
``job-log`` queries, :mod:`.outputs`) and its ``JobResult``. Reports come only from a job's
current executor (:func:`~.redeploy.is_current`); for a job of a broker the executor no longer
reaches, the report makes the job this broker's own (:mod:`.succession`). Bundles overtake each
other, so a "running" after the result, or a second result, is dropped.

The first result makes the job DONE or FAILED. It is recorded (with ``result_delivered``
false) before it is forwarded to the result address (with custody), stored in a datastore as
``<job-uuid>/result`` and released to dependent jobs; a restart finishes the delivery of a
recorded but undelivered result (:meth:`ExecutorReports.deliver_result`). A result for a job
no broker here knows is stored for its client all the same.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable

from bpv7 import EndpointID

from ...ucp.messages import (
    RESULT_TAIL_BYTES,
    DataPut,
    JobOutput,
    JobResult,
    JobState,
    JobStatus,
    ResultStatus,
)
from ...ucp.names import job_result_name
from ..endpoints import RoleName, node_of, role_endpoint
from ..mailbox import Incoming
from .handler_parts import HandlerParts, PartsHandler
from .job_records import JobRecord
from .redeploy import is_current
from .relay import DataRelay
from .succession import Succession

__all__ = ["ExecutorReports"]

logger = logging.getLogger(__name__)


class ExecutorReports(PartsHandler):
    """Executors' reports on their jobs, and result delivery, for one broker run (see the
    module docstring). The broker calls it with its lock held; it acts through
    ``parts`` (:class:`~.handler_parts.HandlerParts`)."""

    def __init__(self, parts: HandlerParts, succession: Succession, relay: DataRelay) -> None:
        super().__init__(parts)
        self._succession = succession
        self._relay = relay

    async def on_job_state(self, incoming: Incoming, message: JobState) -> None:
        """An executor says a job runs."""
        record = await self._own_or_taken_over(message.job_id)
        if record is None:
            self._ignore(incoming, f"job {message.job_id} is unknown here")
            return
        if record.final or record.result is not None:
            # Bundles overtake each other: "running" may arrive after the result.
            logger.debug(
                "job %s: late state %r from %s", record.job_id, message.state, incoming.source
            )
            return
        if message.state != JobStatus.RUNNING:
            self._ignore(incoming, f"an executor reports only RUNNING, not {message.state!r}")
            return
        if not is_current(record, str(incoming.source.node_id)):
            logger.info(
                "job %s: ignoring 'running' from %s, it was redeployed to %s",
                record.job_id,
                incoming.source,
                record.executor,
            )
            return
        if record.state == JobStatus.RUNNING:
            return
        await self._mark_running(record, incoming.source, message.detail)

    async def on_started(self, executor: str, started: Iterable[uuid.UUID]) -> None:
        """An executor's heartbeat lists the jobs that started there: the dispatched ones it
        is the current executor of run now."""
        node = str(node_of(executor))
        for job_id in started:
            record = self._jobs.get(job_id)
            if (
                record is not None
                and record.state == JobStatus.DISPATCHED
                and record.result is None
                and is_current(record, node)
            ):
                await self._mark_running(record, executor)

    async def _mark_running(
        self, record: JobRecord, executor: str | EndpointID, detail: str = ""
    ) -> None:
        now = self._clock()
        record = dataclasses.replace(
            record,
            state=JobStatus.RUNNING,
            updated_at=now,
            started_at=now,
            executor=str(role_endpoint(executor, RoleName.EXECUTOR)),
            detail=detail or "running",
        )
        await self._save(record)
        await self._announce(record)

    async def on_result(self, message: JobResult) -> None:
        """The first result of a job makes it DONE or FAILED and is delivered; later ones are
        dropped."""
        record = await self._own_or_taken_over(message.job_id)
        if record is None:
            await self._store_orphan_result(message)
            return
        if record.result is not None or record.final:
            self._counts["late_results"] += 1
            logger.info(
                "dropping a later result for job %s from %s", message.job_id, message.executor
            )
            return
        now = self._clock()
        if message.ok:
            state, detail = JobStatus.DONE, "done"
        else:
            state = JobStatus.FAILED
            detail = message.message or f"failed: {_result_status_name(message.status)}"
        record = dataclasses.replace(
            record,
            state=state,
            updated_at=now,
            finished_at=now,
            detail=detail,
            result=message,
            result_ref=job_result_name(record.job_id),
            result_delivered=False,
        )
        await self._save(record)
        self._counts["results"] += 1
        short = max(len(message.stdout_tail), len(message.stderr_tail)) < RESULT_TAIL_BYTES
        if short and not self._outputs.knows(record.job_id):
            # A short job's executor sends no job-output: the tails are the whole streams.
            self._outputs.add(
                record.job_id,
                message.attempt,
                stdout_at=0,
                stdout=message.stdout_tail,
                stderr_at=0,
                stderr=message.stderr_tail,
            )
        if record.executor is not None:
            ran = message.finished_at - message.started_at  # both the executor's clock
            self._registry.note_finished(str(node_of(record.executor)), record.job_id, ran)
        logger.info("job %s %s", record.job_id, detail)
        await self.deliver_result(record)
        await self._scheduler.schedule()

    async def _own_or_taken_over(self, job_id: uuid.UUID) -> JobRecord | None:
        """This broker's record of a job an executor reports on: its own, or one of a broker
        the executor no longer reaches, taken over now (:mod:`.succession`)."""
        return self._jobs.get(job_id) or await self._succession.take_over(job_id)

    async def _store_orphan_result(self, message: JobResult) -> None:
        """A result for a job this broker never heard of (its broker is gone and sent no sync
        here): nobody to forward it to, so store it as ``<job-uuid>/result``, where the
        client's ``collect`` looks for results of jobs no broker knows."""
        self._counts["orphan_results"] += 1
        logger.warning(
            "result for unknown job %s from %s: storing it for its client",
            message.job_id,
            message.executor,
        )
        await self._relay.relay(
            DataPut(
                request_id=self._next_request_id(),
                name=job_result_name(message.job_id),
                data=message.to_cbor(),
                written_at=message.finished_at or self._clock(),
                job_id=message.job_id,
            )
        )

    async def deliver_result(self, record: JobRecord) -> None:
        """Store the result as ``<job-uuid>/result``, forward it, announce the final state,
        reject dependents of a failed job, then mark the result delivered."""
        result = record.result
        assert result is not None
        lifetime = self.settings.result_lifetime_s
        await self._send(record.result_address, result, custody=True, lifetime_s=lifetime)
        await self._relay.relay(
            DataPut(
                request_id=self._next_request_id(),
                name=job_result_name(record.job_id),
                data=result.to_cbor(),
                written_at=record.finished_at or self._clock(),
                job_id=record.job_id,
                replicas=record.job.replicas,
            )
        )
        await self._announce(record)
        if record.state != JobStatus.DONE:
            await self._scheduler.reject_dependents([record.job_id])
        await self._save(dataclasses.replace(record, result_delivered=True))

    def on_output(self, incoming: Incoming, message: JobOutput) -> None:
        """Keep the newest part of a running job's streams, from its current executor and
        attempt only."""
        record = self._jobs.get(message.job_id)
        if record is None or not is_current(record, str(incoming.source.node_id)):
            logger.debug(
                "job-output for %s from %s: not its executor", message.job_id, incoming.source
            )
            return
        if message.attempt != record.attempts:
            return  # output of an earlier attempt
        self._outputs.add(
            message.job_id,
            message.attempt,
            stdout_at=message.stdout_at,
            stdout=message.stdout,
            stderr_at=message.stderr_at,
            stderr=message.stderr,
        )


def _result_status_name(status: ResultStatus | int) -> str:
    return (
        status.name.lower().replace("_", " ") if isinstance(status, ResultStatus) else str(status)
    )
