"""From a finished run to its ``job-result``: publishing, sealing, the message itself.

:class:`JobResultMaker` takes a :class:`~.execution.JobRun` once the job gave its slot back:

* publishes the named results (``data-put`` with custody through :class:`~.publish.DataPublisher`,
  waiting a while for the datastores' answers) and an archive larger than
  ``inline_limit_bytes``, stored as ``<job-uuid>/archive`` and referenced; a smaller archive
  travels inline;
* seals the result (and a stored archive) to the certificate the job names as its result key
  (its client's): in a trusted mesh that certificate must be one the authority issued to the
  job's client; one that is not is logged, and the result is still sealed to it;
* makes the ``job-result`` itself, also for the runs that never got that far (an executor
  error, a cancel).

A result that could not be published ends as an executor error whose message says which.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import trio
from cryptography import x509

from bpv7.bpsec import OperationFailure

from ...trust import TrustError, certificate_facts
from ...trust.sealing import seal, seal_result
from ...ucp.messages import JobDispatch, JobResult, ResultStatus, Timings
from ...ucp.names import DataName, job_name
from ..endpoints import node_of
from ..mailbox import Mailbox
from .execution import JobRun
from .jobdir import JobDirectory
from .publish import DataPublisher

__all__ = ["JobResultMaker"]

logger = logging.getLogger(__name__)

_ARCHIVE_SEGMENT = "archive"


class JobResultMaker:
    """Publishes what a job's run produced and makes its ``job-result`` (see the module
    docstring)."""

    def __init__(
        self,
        publisher: DataPublisher,
        mailbox: Mailbox,
        *,
        executor: str,
        report_to: Callable[[str], str],
        inline_limit_bytes: int,
    ) -> None:
        """``mailbox``: the executor's (its :attr:`~.mailbox.Mailbox.mesh` checks result
        keys); ``executor``: its endpoint; ``report_to``: the broker a job reports to, given
        the one that dispatched it; ``inline_limit_bytes``: the largest archive sent inline."""
        self._publisher = publisher
        self._mailbox = mailbox
        self._executor = executor
        self._report_to = report_to
        self._inline_limit_bytes = inline_limit_bytes

    async def publish(self, dispatch: JobDispatch, tree: JobDirectory, run: JobRun) -> JobResult:
        """Publish the named results and a large archive; the job's result (sealed to its
        owner if it names one). A named result that could not be collected or published
        turns ``run`` into an executor error."""
        job_id = dispatch.job.job_id
        began = trio.current_time()
        puts: list[tuple[DataName, bytes]] = []
        if run.named is not None:
            if run.named.problems:
                run.status = ResultStatus.EXECUTOR_ERROR
                run.message = "named results: " + "; ".join(run.named.problems)
            else:
                puts.extend(run.named.data)
        archive: bytes | None = None
        archive_ref: DataName | None = None
        if run.archive_size is not None:
            data = await trio.to_thread.run_sync(tree.archive_path.read_bytes)
            if len(data) <= self._inline_limit_bytes:
                archive = data
            else:
                archive_ref = job_name(job_id, _ARCHIVE_SEGMENT)
                owner = self.result_owner(dispatch)
                if owner is not None:  # stored sealed: datastores hold ciphertext
                    data = await trio.to_thread.run_sync(seal, data, owner)
                puts.append((archive_ref, data))
        named: set[DataName] = set()
        if run.named is not None and not dispatch.job.replace_results:
            named = {name for name, _ in run.named.data}
        refused = await self._publisher.put_all(
            self._report_to(dispatch.broker),
            job_id,
            puts,
            replicas=dispatch.job.replicas,
            exclusive=named,
        )
        if refused:
            run.status = ResultStatus.EXECUTOR_ERROR
            run.message = "publishing failed: " + "; ".join(
                f"{name!r}: {why}" for name, why in sorted(refused.items())
            )
            if archive_ref in refused:
                archive_ref = None
        run.timings["collect"] = run.timings.get("collect", 0.0) + trio.current_time() - began
        published = tuple(name for name, _ in puts if name != archive_ref and name not in refused)
        result = self.result(
            dispatch, run, archive=archive, archive_ref=archive_ref, published=published
        )
        owner = self.result_owner(dispatch)
        return (
            result if owner is None else await trio.to_thread.run_sync(seal_result, result, owner)
        )

    def result_owner(self, dispatch: JobDispatch) -> x509.Certificate | None:
        """The certificate a job's result is sealed to (its client's), if the job names one.
        In a trusted mesh it must be a valid certificate of the authority naming the job's
        client; one that is not is logged, and the result is still sealed to it (it never
        travels in the clear)."""
        key = dispatch.job.result_key
        if key is None:
            return None
        try:
            certificate = x509.load_der_x509_certificate(key)
        except ValueError as exc:
            logger.warning("job %s: unreadable result key: %s", dispatch.job.job_id, exc)
            return None
        mesh = self._mailbox.mesh
        if mesh is not None:
            client = str(node_of(dispatch.client))
            try:
                facts = certificate_facts(mesh.verify([certificate], _now_utc()))
                if facts.node_id != client:
                    raise TrustError(f"it names {facts.node_id}, the job's client is {client}")
            except (OperationFailure, TrustError) as exc:
                logger.warning(
                    "job %s: the result key is not its client's: %s", dispatch.job.job_id, exc
                )
        return certificate

    def result(
        self,
        dispatch: JobDispatch,
        run: JobRun,
        *,
        archive: bytes | None = None,
        archive_ref: DataName | None = None,
        published: tuple[DataName, ...] = (),
    ) -> JobResult:
        """The ``job-result`` of ``run`` (not sealed)."""
        return JobResult(
            job_id=dispatch.job.job_id,
            executor=self._executor,
            status=run.status,
            exit_code=run.exit_code,
            message=run.message,
            stdout_tail=run.stdout_tail,
            stderr_tail=run.stderr_tail,
            archive=archive,
            archive_ref=archive_ref,
            published=published,
            started_at=run.started_at,
            finished_at=run.finished_at,
            timings=Timings(
                queued=run.timings.get("queued", 0.0),
                fetch=run.timings.get("fetch", 0.0),
                run=run.timings.get("run", 0.0),
                collect=run.timings.get("collect", 0.0),
            ),
            fuel_consumed=run.fuel_consumed,
            attempt=dispatch.attempt,
        )


def _now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
