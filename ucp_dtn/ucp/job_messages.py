"""The messages of a job's life: submission, acceptance, state, dispatch and result
(``job-submit`` … ``job-result``), and cancelling and following a job (``job-cancel``,
``job-output``, ``job-log``). The wire format and the catalogue of every kind are in
:mod:`ucp_dtn.ucp.messages`, which re-exports these classes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from ucp_dtn.wire_schema import Wire

from .job import JobInfo
from .message_base import (
    JobStatus,
    JobStatusEntry,
    ResultStatus,
    Timings,
    UcpMessage,
    _freeze_inline_data,
)
from .names import DataName

__all__ = [
    "JobAccepted",
    "JobCancel",
    "JobCancelReply",
    "JobDispatch",
    "JobLogQuery",
    "JobLogReply",
    "JobOutput",
    "JobResult",
    "JobState",
    "JobSubmission",
]

# -- jobs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSubmission(UcpMessage):
    """A client submits one job (``job-submit``)."""

    _EIDS = ("moved_from",)

    KIND: ClassVar[str] = "job-submit"
    job: JobInfo
    """What to run: the module, its inputs, limits, requirements and result routing."""
    inline_data: Mapping[DataName, bytes] = field(default_factory=dict)
    """Small named data sent along so the executor need not fetch it (REC's job data)."""
    moved_from: str | None = None
    """The broker (EID) that accepted this job before and was lost before any other broker
    heard of it: the client sends the job again to another broker, which records it as
    taken over from that one (so if the lost broker comes back, the new one keeps the job).
    Absent on a first submission."""

    def __post_init__(self) -> None:
        UcpMessage.__post_init__(self)
        _freeze_inline_data(self)


@dataclass(frozen=True, slots=True)
class JobAccepted(UcpMessage):
    """The broker has recorded the job (``job-accepted``); the client may go offline."""

    _EIDS = ("broker",)

    KIND: ClassVar[str] = "job-accepted"
    job_id: uuid.UUID
    """The UUID of the job the broker recorded (the client's ``JobInfo.job_id``)."""
    broker: str
    """The broker that took it (EID)."""
    duplicate: Annotated[bool, Wire(always=True)] = False
    """The broker already had this job (the submission was a duplicate)."""
    warning: str = ""
    """One line the submitter should see, e.g. that no node is known at the job's result
    address (its results would wait in the network until their lifetime ends)."""


@dataclass(frozen=True, slots=True)
class JobState(UcpMessage):
    """A job changed state (``job-state``)."""

    _EIDS = ("executor",)

    KIND: ClassVar[str] = "job-state"
    job_id: uuid.UUID
    """The UUID of the job whose state changed."""
    state: JobStatus | int
    """The state it moved to; an unknown code from a newer peer stays a plain ``int``."""
    at: float
    """When (the broker's clock)."""
    detail: str = ""
    """One line about it (``"waiting for a node with 2 GiB memory"``, the failure text...)."""
    executor: str | None = None
    """The executor concerned (EID)."""
    attempt: int = 0
    """Dispatch attempt (0 before the first dispatch)."""


@dataclass(frozen=True, slots=True)
class JobDispatch(UcpMessage):
    """The broker hands a job to an executor (``job-dispatch``)."""

    _EIDS = ("broker", "client")

    KIND: ClassVar[str] = "job-dispatch"
    job: JobInfo
    """What to run, as the client submitted it (the executor checks its requirements again)."""
    broker: str
    """The dispatching broker (EID): data requests and state reports go there."""
    client: str
    """The submitter (EID): the result goes there if the job names no result address."""
    attempt: Annotated[int, Wire(required=True)] = 1
    """1 for the first dispatch, more for redeployments after a lost executor."""
    inline_data: Mapping[DataName, bytes] = field(default_factory=dict)
    """The submission's inline data."""

    def __post_init__(self) -> None:
        UcpMessage.__post_init__(self)
        _freeze_inline_data(self)


@dataclass(frozen=True, slots=True)
class JobResult(UcpMessage):
    """How a job ended, with its results (``job-result``)."""

    _NAMES = ("archive_ref", "published")
    _EIDS = ("executor",)
    _WIRE_ORDER = ("job_id", "executor", "status", "attempt", "started_at", "finished_at")

    KIND: ClassVar[str] = "job-result"
    job_id: uuid.UUID
    """The UUID of the job this is the result of."""
    executor: str
    """The executor that ran it (EID)."""
    status: ResultStatus | int
    """How the run ended; only :attr:`ResultStatus.OK` is success."""
    exit_code: Annotated[int | None, Wire(min=-(2**63))] = None
    """The module's exit status, when it exited."""
    message: str = ""
    """One line: the trap or error text, the limit hit; empty on success."""
    stdout_tail: bytes = b""
    """The end of standard output (:data:`RESULT_TAIL_BYTES` at most; shorter: all of it)."""
    stderr_tail: bytes = b""
    """The end of standard error (:data:`RESULT_TAIL_BYTES` at most; shorter: all of it)."""
    archive: bytes | None = None
    """The zip of the job's ``zip_results``, when small enough to travel here."""
    archive_ref: DataName | None = None
    """Where the zip is stored as named data, when it does not travel here."""
    published: tuple[DataName, ...] = ()
    """The named results that were published."""
    started_at: Annotated[float, Wire(required=True)] = 0.0
    """When the run started (the executor's clock)."""
    finished_at: Annotated[float, Wire(required=True)] = 0.0
    """When it ended (the executor's clock)."""
    timings: Annotated[Timings, Wire(always=True)] = field(default_factory=Timings)
    """Where the time went."""
    fuel_consumed: Annotated[int | None, Wire(key="fuel")] = None
    """Fuel used, when metered."""
    attempt: Annotated[int, Wire(required=True)] = 1
    """The dispatch attempt that produced this result."""
    sealed: bytes | None = None
    """In a trusted mesh, :attr:`message`, :attr:`stdout_tail`, :attr:`stderr_tail` and
    :attr:`archive` sealed to the job's client (:attr:`JobInfo.result_key`), those fields
    then empty; a stored archive (:attr:`archive_ref`) is sealed the same way. The client
    opens it with its key (:func:`ucp_dtn.trust.sealing.open_sealed`)."""

    @property
    def ok(self) -> bool:
        """Whether the job succeeded."""
        return self.status == ResultStatus.OK


# -- cancelling and following jobs -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobCancel(UcpMessage):
    """Cancel jobs (``job-cancel``): from a client to the broker that owns them, and from that
    broker to the executor running one."""

    _EIDS = ("reply_to",)
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "job-cancel"
    request_id: int
    """The requester's id, echoed in the reply (a broker sends none to an executor)."""
    job_ids: Annotated[tuple[uuid.UUID, ...], Wire(always=True)] = ()
    """The jobs to cancel."""
    reason: str = ""
    """One line saying why, kept as the jobs' detail (default: "cancelled")."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""


@dataclass(frozen=True, slots=True)
class JobCancelReply(UcpMessage):
    """What a ``job-cancel`` did (``job-cancel-reply``)."""

    _EIDS = ("broker",)

    KIND: ClassVar[str] = "job-cancel-reply"
    request_id: int
    """The ``request_id`` of the ``job-cancel`` this answers."""
    broker: str
    """The answering broker (EID)."""
    jobs: Annotated[tuple[JobStatusEntry, ...], Wire(always=True)] = ()
    """The jobs it owns, as they stand now: cancelled, or the final state they had reached
    before (a finished job is not cancelled)."""
    unknown: tuple[uuid.UUID, ...] = ()
    """Jobs it does not own (unknown, another broker's, or another client's)."""


@dataclass(frozen=True, slots=True)
class JobOutput(UcpMessage):
    """What a running job wrote since the last ``job-output`` (``job-output``). Offsets count
    the bytes of each stream from its start, so a receiver that missed an update sees the
    gap."""

    _EIDS = ("executor",)

    KIND: ClassVar[str] = "job-output"
    job_id: uuid.UUID
    """The job that wrote it."""
    executor: str
    """The executor running it (EID)."""
    attempt: Annotated[int, Wire(required=True)] = 1
    """The dispatch attempt running (output of an older attempt is stale)."""
    stdout_at: int = 0
    """Offset in standard output of the first byte of :attr:`stdout`."""
    stdout: bytes = b""
    """New standard output (the newest part, if more was written than one message carries)."""
    stderr_at: int = 0
    """Offset in standard error of the first byte of :attr:`stderr`."""
    stderr: bytes = b""
    """New standard error."""


@dataclass(frozen=True, slots=True)
class JobLogQuery(UcpMessage):
    """Ask a broker for a job's output so far (``job-log``)."""

    _EIDS = ("reply_to",)
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "job-log"
    request_id: int
    """The requester's id, echoed in the reply."""
    job_id: uuid.UUID
    """The job."""
    stdout_from: int = 0
    """Send standard output from this offset on (what the requester has not seen)."""
    stderr_from: int = 0
    """Send standard error from this offset on."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""


@dataclass(frozen=True, slots=True)
class JobLogReply(UcpMessage):
    """A job's output as the broker holds it (``job-log-reply``): the end of each stream, from
    the offset asked for or, if the broker no longer holds that far back, from the oldest byte
    it holds."""

    KIND: ClassVar[str] = "job-log-reply"
    request_id: int
    """The ``request_id`` of the ``job-log`` query this answers."""
    job_id: uuid.UUID
    """The job."""
    found: Annotated[bool, Wire(always=True)] = False
    """Whether the broker knows the job (nothing else is meaningful otherwise)."""
    state: JobStatus | int = JobStatus.QUEUED
    """The job's state."""
    stdout_at: int = 0
    """Offset of the first byte of :attr:`stdout` in the job's standard output."""
    stdout: bytes = b""
    """Standard output from ``stdout_at`` on."""
    stderr_at: int = 0
    """Offset of the first byte of :attr:`stderr` in the job's standard error."""
    stderr: bytes = b""
    """Standard error from ``stderr_at`` on."""
