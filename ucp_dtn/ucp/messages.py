"""UCP messages: one frozen dataclass per kind; a bundle payload holds one message, or a batch.

Wire format (version 1)
-----------------------
Every payload is one CBOR map with ``"v"`` (the message format version, ``1``), ``"t"`` (the
kind, text) and the kind's fields under hyphenated text keys. Job UUIDs travel as 16-byte byte
strings, times as seconds since the Unix epoch (float, the sender's clock), sizes as unsigned
integers. Optional fields are left out when empty. A decoder ignores fields it does not know
(newer senders may add some) and rejects an unknown version or kind; everything else wrong is
a :class:`~ucp_dtn.ucp.errors.MessageDecodeError`. :mod:`ucp_dtn.ucp.codec` encodes and
decodes; each message also has ``to_cbor()`` and ``from_cbor()``.

The dataclasses below are the schema: their fields' type hints, and ``Wire(...)`` where the
hints do not say it all (a key that is not the field's name, a default that is still written or
required), give the wire form of each kind (:mod:`ucp_dtn.wire_schema` has the rules). To add a
message, write its frozen dataclass deriving from :class:`UcpMessage` with a new ``KIND``, and
add it to the :data:`Message` union at the end of this module, which registers the kind for
decoding; then add it to the catalogue below and pin its bytes in
``tests/ucp_dtn/ucp/test_wire_pinned.py``.

Requests carry a ``request-id`` (an unsigned integer of the requester's choice) and an optional
``reply-to`` EID; the reply carries the same id and goes to ``reply-to`` or else to the request
bundle's source. A broker may relay a data request to a datastore with ``reply-to`` set to the
client, so the answer need not travel back through it.

Catalogue (→ direction; ``?`` optional)::

    kind              class               direction                  fields
    job-submit        JobSubmission       client → broker            job, inline-data
    job-accepted      JobAccepted         broker → client            job-id, broker, duplicate,
                                                                     ?warning
    job-state         JobState            broker → client            job-id, state, detail, at,
                                                                     ?executor, attempt
    job-dispatch      JobDispatch         broker → executor          job, inline-data, broker,
                                                                     client, attempt
    job-result        JobResult           executor → client/broker   job-id, executor, status,
                                                                     ?exit-code, message, tails,
                                                                     ?archive | ?archive-ref,
                                                                     published, timings...
    heartbeat         Heartbeat           executor/datastore →       node, roles, sequence, sent-at,
                                          broker; broker → broker    interval, ?capabilities,
                                                                     running, max-jobs, ...
    data-put          DataPut             any → broker/datastore     request-id, name, data,
                                                                     written-at, ?job-id,
                                                                     ?replicas, ?writer,
                                                                     ?exclusive
    data-reply        DataReply           datastore → requester      request-id, status, detail,
                                                                     count (puts and deletes)
    data-get          DataGet             any → broker/datastore     request-id, query, ?cursor,
                                                                     max-bytes, ?have
    data-get-reply    DataGetReply        datastore → requester      request-id, status, items
                                                                     (?digest, ?cached), ?cursor
    data-list         DataList            any → broker/datastore     request-id, ?prefix, ?job-id,
                                                                     page-size, ?cursor,
                                                                     ?replicated
    data-list-reply   DataListReply       datastore → requester      request-id, status, entries,
                                                                     ?cursor
    data-delete       DataDelete          client → broker/datastore  request-id, name | job-id,
                                                                     keep-result, ?at
    data-replicate    DataReplicate       broker → datastore         request-id, name, targets
    data-held         DataHeld            datastore → broker         node, entries
    data-free-space   DataFreeSpace       any → datastore            request-id
    data-free-space-reply DataFreeSpaceReply  datastore → requester  request-id, node, free, used,
                                                                     ?quota, items
    status-query      StatusQuery         client → broker            request-id, job-ids, ?client,
                                                                     nodes, ?states, ?limit
    status-reply      StatusReply         broker → client            request-id, broker, jobs,
                                                                     nodes, ?more
    broker-sync       BrokerSync          broker → broker            broker, sequence, sent-at,
                                                                     full, jobs, data
    job-cancel        JobCancel           client → broker;           request-id, job-ids, reason
                                          broker → executor
    job-cancel-reply  JobCancelReply      broker → client            request-id, broker, jobs,
                                                                     unknown
    job-output        JobOutput           executor → broker          job-id, executor, attempt,
                                                                     stdout-at, stdout, stderr-at,
                                                                     stderr
    job-log           JobLogQuery         client → broker            request-id, job-id,
                                                                     stdout-from, stderr-from
    job-log-reply     JobLogReply         broker → client            request-id, job-id, found,
                                                                     state, stdout-at, stdout,
                                                                     stderr-at, stderr
    batch             MessageBatch        any → any                  messages (2..256 whole
                                                                     messages, no batch)

Several messages in one bundle (``batch``): a sender may put messages that go to the same
endpoint at the same moment into one bundle, ``{"v": 1, "t": "batch", "messages": [m1, m2,
...]}``, each ``m`` a whole message map with its own ``"v"`` and ``"t"`` (never another
batch). The receiver takes them one by one, in order, exactly as if each had come in a bundle of
its own from the same source, and confirms the bundle to its agent only when it has acted on
every one (:mod:`ucp_dtn.roles.mailbox`). A receiver drops a bad message inside a batch alone
and handles the others (:func:`~ucp_dtn.ucp.codec.decode_messages`); the strict
:class:`MessageBatch` decoding rejects the whole batch. A node of a version before the batch
reads ``batch`` as an unknown kind and drops the bundle as malformed, so all nodes of a
network must run a version that reads it (all do since issue #16).

A job's life as the client sees it: ``job-submit`` → ``job-accepted`` (duplicates are
acknowledged again with ``duplicate``) → ``job-state`` updates (queued, dispatched, running) →
``job-result`` (from the executor, to the job's result address; also kept in the datastores at
``<job-uuid>/result``) and a final ``job-state`` (done or failed). ``job-cancel`` ends a job
early: the broker marks it cancelled at once (a queued job is never dispatched; a dispatched
one's executor gets the ``job-cancel`` too and stops it) and drops a result that comes later.
While a job runs its executor sends ``job-output`` with what the job wrote since the last one;
the broker keeps the end of each stream, which ``job-log`` asks for. A query by name matches the
name and its subkeys by path segment, or a ``prefix*`` pattern (:mod:`ucp_dtn.ucp.names`);
a listing or a get is paged by an opaque ``cursor`` the datastore hands out.

Replication (docs/disruption.md): a put may ask for ``replicas`` copies on distinct datastores.
The datastore that stores a replicated datum tells the brokers (``data-held``); one broker plans
where the missing copies go and asks a holder to make them (``data-replicate``), and the holder
sends each copy as a ``data-put`` that keeps the original ``written-at`` and ``writer``, so every
replica orders writes the same way (:mod:`ucp_dtn.ucp.versions`). A copy is never ``exclusive``
and never refused as taken: the write it carries was already accepted.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, ClassVar, Self

from bpv7 import BPv7Error, parse_eid
from ucp_dtn.wire_schema import Wire, WireCodec, WireError, to_wire

from ._wire import decode_envelope, decode_payload, encode_payload
from .capabilities import Capabilities
from .errors import FieldError, MessageDecodeError, UcpUsageError
from .job import MAX_REPLICAS, JobInfo
from .message_base import (
    DIGEST_SIZE,
    MAX_HAVE,
    PROTOCOL_VERSION,
    RESULT_TAIL_BYTES,
    SUPPORTED_VERSIONS,
    DataEntry,
    DataItem,
    DataStatus,
    JobStatus,
    JobStatusEntry,
    NodeEntry,
    ResultStatus,
    Role,
    SyncedJob,
    Timings,
    _Checked,
    _freeze_inline_data,
)
from .names import DataName

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "BrokerSync",
    "DataDelete",
    "DataEntry",
    "DataFreeSpace",
    "DataFreeSpaceReply",
    "DataGet",
    "DataGetReply",
    "DataHeld",
    "DataItem",
    "DataList",
    "DataListReply",
    "DataPut",
    "DataReplicate",
    "DataReply",
    "DIGEST_SIZE",
    "MAX_BATCH_MESSAGES",
    "MessageBatch",
    "DataStatus",
    "Heartbeat",
    "JobAccepted",
    "JobCancel",
    "JobCancelReply",
    "JobDispatch",
    "JobLogQuery",
    "JobLogReply",
    "JobOutput",
    "JobResult",
    "JobState",
    "JobStatus",
    "JobStatusEntry",
    "JobSubmission",
    "MAX_HAVE",
    "MESSAGE_KINDS",
    "RESULT_TAIL_BYTES",
    "Message",
    "NodeEntry",
    "ResultStatus",
    "Role",
    "StatusQuery",
    "StatusReply",
    "SyncedJob",
    "Timings",
    "UcpMessage",
]


class UcpMessage(_Checked):
    """Base of every message class: ``KIND`` and the CBOR round trip."""

    __slots__ = ()
    KIND: ClassVar[str] = ""
    """The message's ``"t"`` value."""
    _WIRE_ORDER: ClassVar[tuple[str, ...]] = ()
    """Fields written first, in this order; the others follow in declaration order (kept from
    version 1, whose key order was chosen by hand)."""

    def to_cbor(self) -> bytes:
        """The bundle payload of this message."""
        return encode_payload(self, self.KIND, PROTOCOL_VERSION)

    @classmethod
    def from_cbor(cls, data: bytes) -> Self:
        """Decode ``data``, which must be a message of this class;
        :class:`~ucp_dtn.ucp.errors.MessageDecodeError` otherwise."""
        message = decode_payload(data, MESSAGE_KINDS, SUPPORTED_VERSIONS)
        if not isinstance(message, cls):
            raise MessageDecodeError(f"expected a {cls.KIND} message, got {message.KIND}")
        return message


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


# -- nodes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat(UcpMessage):
    """A node is alive (``heartbeat``): its roles, resources and work."""

    _EIDS = ("node", "broker")

    KIND: ClassVar[str] = "heartbeat"
    node: str
    """The node ID (EID)."""
    roles: Role
    """The roles the node runs now (a node may add the broker role by promotion)."""
    sequence: int
    """Increases with every heartbeat of this node; older ones are stale."""
    sent_at: float
    """When it was sent (the node's clock)."""
    interval: float
    """Seconds until the next one; a receiver may forget the node after a few missed."""
    capabilities: Capabilities | None = None
    """Its resources (executors)."""
    running_jobs: Annotated[tuple[uuid.UUID, ...], Wire(key="running")] = ()
    """Jobs it runs now."""
    max_jobs: int = 0
    """Jobs it runs at most at once (0: not an executor)."""
    broker: str | None = None
    """The broker it is attached to (EID), if any."""
    store_free: int | None = None
    """Free bytes of its datastore (datastores)."""
    store_used: int | None = None
    """Bytes its datastore holds (datastores)."""
    started: tuple[uuid.UUID, ...] = ()
    """Executors: the jobs of :attr:`running_jobs` that hold a slot (have started). A broker
    marks a job it dispatched here RUNNING when it is listed, so an executor need not send a
    ``job-state`` for a short job (:mod:`ucp_dtn.roles.executor`)."""

    @property
    def load(self) -> float:
        """Fraction of its job slots in use (0 when it has none)."""
        return len(self.running_jobs) / self.max_jobs if self.max_jobs else 0.0


# -- data -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataPut(UcpMessage):
    """Store one datum (``data-put``); last write wins by ``written_at`` (then writer, then
    content: :mod:`ucp_dtn.ucp.versions`)."""

    _NAMES = ("name",)
    _EIDS = ("reply_to", "writer")
    _FACTORS = ("replicas",)
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "data-put"
    request_id: int
    """The requester's id, echoed in the reply."""
    name: DataName
    """Its name (no wildcard)."""
    data: bytes
    """The value to store; a put replaces an older value of the same name (last write wins)."""
    written_at: Annotated[float, Wire(key="at")]
    """When it was written (the writer's clock)."""
    job_id: uuid.UUID | None = None
    """The job it belongs to (deleted with it)."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""
    replicas: Annotated[int | None, Wire(min=1, max=MAX_REPLICAS)] = None
    """Copies wanted on distinct datastores; ``None``: the storing datastore's default for
    the name (1 unless configured)."""
    writer: str | None = None
    """The original writer (EID) of a replica copy; ``None``: the requester (``reply_to``,
    else the bundle's source) wrote it."""
    exclusive: bool = False
    """Store it only if the name is free, or taken by an earlier write of the same
    :attr:`job_id` (another attempt of that job); otherwise the datastore answers
    :attr:`DataStatus.TAKEN` and keeps what it has. Named results travel this way (REC refuses
    a second publish of a name); without it the last write wins."""
    private: bool = False
    """In a trusted mesh, only its owner (its writer's node), admins and mesh nodes may read
    it (``ucp data put --private``); otherwise every member may (docs/security.md)."""


@dataclass(frozen=True, slots=True)
class DataReply(UcpMessage):
    """Outcome of a put or delete (``data-reply``)."""

    KIND: ClassVar[str] = "data-reply"
    request_id: int
    """The ``request_id`` of the request this answers (chosen by the requester)."""
    status: DataStatus | int
    """Success or why it failed; an unknown code from a newer peer stays a plain ``int``."""
    detail: str = ""
    """One line about it."""
    count: int = 0
    """Data stored or deleted."""


@dataclass(frozen=True, slots=True)
class DataGet(UcpMessage):
    """Fetch data (``data-get``): a name and its subkeys, or a ``prefix*`` pattern."""

    _PATTERNS = ("query",)
    _EIDS = ("reply_to",)
    _WIRE_ORDER = ("request_id", "reply_to", "query", "max_bytes")

    KIND: ClassVar[str] = "data-get"
    request_id: int
    """The requester's id, echoed in the reply."""
    query: DataName
    """Name or pattern."""
    cursor: str | None = None
    """Where to continue (from the previous reply); ``None``: from the start."""
    max_bytes: Annotated[int, Wire(required=True)] = 1 << 20
    """Content bytes per reply at most (a single larger datum still comes, alone)."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""
    have: tuple[bytes, ...] = ()
    """SHA-256 digests of values the requester holds already (an executor's input cache): an
    item whose value has one of them comes without its data, marked :attr:`DataItem.cached`.
    A datastore that predates this field sends the data anyway, which is also correct."""

    def __post_init__(self) -> None:
        _Checked.__post_init__(self)
        if len(self.have) > MAX_HAVE:
            raise FieldError("have", f"at most {MAX_HAVE} digests")
        for digest in self.have:
            if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
                raise FieldError("have", f"each digest must be {DIGEST_SIZE} bytes (SHA-256)")


@dataclass(frozen=True, slots=True)
class DataGetReply(UcpMessage):
    """Data for a ``data-get`` (``data-get-reply``), one page."""

    KIND: ClassVar[str] = "data-get-reply"
    request_id: int
    """The ``request_id`` of the ``data-get`` this answers."""
    status: DataStatus | int
    """Success or why it failed (e.g. not found); unknown codes stay plain ``int``."""
    items: tuple[DataItem, ...] = ()
    """The data, sorted by name."""
    cursor: str | None = None
    """Ask again with this for the next page; ``None``: this was the last."""
    detail: str = ""
    """One line about it."""


@dataclass(frozen=True, slots=True)
class DataList(UcpMessage):
    """List data without content (``data-list``)."""

    _PATTERNS = ("prefix",)
    _EIDS = ("reply_to",)
    _WIRE_ORDER = ("request_id", "reply_to", "page_size")

    KIND: ClassVar[str] = "data-list"
    request_id: int
    """The requester's id, echoed in the reply."""
    prefix: DataName | None = None
    """Name (with subkeys) or pattern to list; ``None``: everything."""
    job_id: uuid.UUID | None = None
    """Only data of this job."""
    page_size: Annotated[int, Wire(required=True)] = 1000
    """Entries per reply at most."""
    cursor: str | None = None
    """Where to continue; ``None``: from the start."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""
    replicated: bool = False
    """Only data stored with a replication factor above 1 (or replacing such a datum): what a
    broker reads to see where replicas live."""


@dataclass(frozen=True, slots=True)
class DataListReply(UcpMessage):
    """One page of a listing (``data-list-reply``)."""

    KIND: ClassVar[str] = "data-list-reply"
    request_id: int
    """The ``request_id`` of the ``data-list`` this answers."""
    status: DataStatus | int
    """Success or why it failed; unknown codes stay plain ``int``."""
    entries: tuple[DataEntry, ...] = ()
    """The data, sorted by name."""
    cursor: str | None = None
    """Ask again with this for the next page; ``None``: this was the last."""
    detail: str = ""
    """One line about it."""


@dataclass(frozen=True, slots=True)
class DataDelete(UcpMessage):
    """Delete a name with its subkeys, or all data of a job (``data-delete``)."""

    _PATTERNS = ("name",)
    _EIDS = ("reply_to",)
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "data-delete"
    request_id: int
    """The requester's id, echoed in the reply."""
    name: DataName | None = None
    """Name (with subkeys) or pattern to delete; exactly one of this and :attr:`job_id`."""
    job_id: uuid.UUID | None = None
    """Delete every datum of this job."""
    keep_result: Annotated[bool, Wire(always=True)] = True
    """With :attr:`job_id`: keep the job's result (``<job-uuid>/result``)."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""
    deleted_at: Annotated[float | None, Wire(key="at")] = None
    """When the delete was made (the deleter's clock): it removes the writes older than
    that, and later arrivals of them (a tombstone). ``None``: when the datastore receives it."""

    def __post_init__(self) -> None:
        UcpMessage.__post_init__(self)
        if (self.name is None) == (self.job_id is None):
            raise UcpUsageError("data-delete needs exactly one of name and job_id")


@dataclass(frozen=True, slots=True)
class DataReplicate(UcpMessage):
    """A broker asks a datastore holding ``name`` to copy it to other datastores
    (``data-replicate``): to restore its replication factor, or to bring a replica holding an
    older write up to date. The copies leave paced (docs/disruption.md); the datastore answers
    with a ``data-reply`` counting the copies it queued (``not-found`` if it no longer holds
    the datum)."""

    _NAMES = ("name",)
    _EIDS = ("reply_to",)
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "data-replicate"
    request_id: int
    """The requester's id, echoed in the reply."""
    name: DataName
    """The datum to copy (no wildcard)."""
    targets: tuple[str, ...]
    """The datastores to copy it to (``…/ucp/datastore`` EIDs)."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""

    def __post_init__(self) -> None:
        UcpMessage.__post_init__(self)
        if not self.targets:
            raise FieldError("targets", "must name at least one datastore")
        for index, target in enumerate(self.targets):
            if not isinstance(target, str):
                raise FieldError(f"targets[{index}]", "must be EID text")
            try:
                parse_eid(target)
            except BPv7Error as exc:
                raise FieldError(f"targets[{index}]", exc.message) from None


@dataclass(frozen=True, slots=True)
class DataHeld(UcpMessage):
    """A datastore tells the brokers which replicated data it now holds (``data-held``): sent
    after it stored a datum whose replication factor is above 1 (or a copy of one), so the
    broker that plans replicas need not wait for its next listing."""

    _EIDS = ("node",)

    KIND: ClassVar[str] = "data-held"
    node: str
    """The datastore (``…/ucp/datastore`` EID)."""
    entries: Annotated[tuple[DataEntry, ...], Wire(always=True)] = ()
    """The data, each with its factor, writer and digest (its version)."""


@dataclass(frozen=True, slots=True)
class DataFreeSpace(UcpMessage):
    """Ask a datastore how much room it has (``data-free-space``)."""

    _EIDS = ("reply_to",)

    KIND: ClassVar[str] = "data-free-space"
    request_id: int
    """The requester's id, echoed in the reply."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""


@dataclass(frozen=True, slots=True)
class DataFreeSpaceReply(UcpMessage):
    """A datastore's room (``data-free-space-reply``)."""

    _EIDS = ("node",)

    KIND: ClassVar[str] = "data-free-space-reply"
    request_id: int
    """The ``request_id`` of the ``data-free-space`` query this answers."""
    node: str
    """The datastore (EID)."""
    free: int
    """Bytes it can still store."""
    used: int
    """Bytes it stores."""
    items: Annotated[int, Wire(always=True)] = 0
    """Data it stores."""
    quota: int | None = None
    """Its configured limit in bytes, if any."""


# -- status and brokers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusQuery(UcpMessage):
    """Ask a broker about jobs and nodes (``status-query``)."""

    _EIDS = ("client", "reply_to")
    _WIRE_ORDER = ("request_id", "reply_to")

    KIND: ClassVar[str] = "status-query"
    request_id: int
    """The requester's id, echoed in the reply."""
    job_ids: tuple[uuid.UUID, ...] = ()
    """These jobs; empty: every job (of :attr:`client`, if given)."""
    client: str | None = None
    """Only jobs submitted by this EID."""
    include_nodes: Annotated[bool, Wire(key="nodes")] = False
    """Also list the nodes the broker knows."""
    reply_to: str | None = None
    """Where the reply goes (EID); default: the bundle's source."""
    states: tuple[JobStatus | int, ...] = ()
    """Only jobs in one of these states; empty: in any state."""
    limit: int = 0
    """At most this many jobs, the most recently changed first; 0: all of them."""


@dataclass(frozen=True, slots=True)
class StatusReply(UcpMessage):
    """A broker's answer to ``status-query`` (``status-reply``)."""

    _EIDS = ("broker",)

    KIND: ClassVar[str] = "status-reply"
    request_id: int
    """The ``request_id`` of the ``status-query`` this answers."""
    broker: str
    """The answering broker (EID)."""
    jobs: Annotated[tuple[JobStatusEntry, ...], Wire(always=True)] = ()
    """The jobs asked for that it knows."""
    nodes: Annotated[tuple[NodeEntry, ...], Wire(always=True)] = ()
    """The nodes it knows, if asked."""
    more: int = 0
    """Jobs that matched the query but were left out by its ``limit``."""


@dataclass(frozen=True, slots=True)
class BrokerSync(UcpMessage):
    """One broker's job and data metadata for another (``broker-sync``), so that either can
    answer for both and take over the other's jobs."""

    _EIDS = ("broker",)

    KIND: ClassVar[str] = "broker-sync"
    broker: str
    """The sending broker (EID)."""
    sequence: int
    """Increases with every sync of this broker; older ones are stale."""
    sent_at: float
    """When it was sent (the broker's clock)."""
    full: Annotated[bool, Wire(always=True)] = False
    """Everything it knows (else only what changed since the previous sync)."""
    jobs: Annotated[tuple[SyncedJob, ...], Wire(always=True)] = ()
    """Jobs the sending broker owns: every non-final one with its JobInfo (so another broker
    can take it over), final ones without."""
    data: Annotated[tuple[DataEntry, ...], Wire(always=True)] = ()
    """Named data and where it is held."""


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


MAX_BATCH_MESSAGES = 256
"""Most messages in one :class:`MessageBatch` (a sender also bounds its bytes)."""


def _encode_batched(message: UcpMessage) -> object:
    if not isinstance(message, UcpMessage) or isinstance(message, MessageBatch):
        raise UcpUsageError(f"a batch holds UCP messages other than batches, not {message!r}")
    return to_wire(message, {"v": PROTOCOL_VERSION, "t": message.KIND})


def _decode_batched(wire: object) -> UcpMessage:
    try:
        message: UcpMessage = decode_envelope(wire, _BATCHABLE_KINDS, SUPPORTED_VERSIONS)
    except MessageDecodeError as exc:
        if isinstance(wire, dict) and wire.get("t") == MessageBatch.KIND:
            raise WireError("is a batch inside a batch") from None
        raise WireError(str(exc)) from None
    return message


@dataclass(frozen=True, slots=True)
class MessageBatch(UcpMessage):
    """Several messages for one endpoint in one bundle (``batch``): the receiver handles them
    in order as if each had come alone, and confirms the bundle once it acted on all."""

    KIND: ClassVar[str] = "batch"
    messages: Annotated[
        tuple[UcpMessage, ...],
        Wire(
            required=True,
            codec=WireCodec("a message map (not a batch)", _decode_batched, _encode_batched),
        ),
    ] = ()
    """The messages, 2 to :data:`MAX_BATCH_MESSAGES` of them, none a batch."""

    def __post_init__(self) -> None:
        UcpMessage.__post_init__(self)
        if not isinstance(self.messages, tuple):
            raise FieldError("messages", "must be a tuple of messages")
        if not 2 <= len(self.messages) <= MAX_BATCH_MESSAGES:
            raise FieldError(
                "messages",
                f"a batch holds 2 to {MAX_BATCH_MESSAGES} messages, not {len(self.messages)}",
            )
        for index, message in enumerate(self.messages):
            if not isinstance(message, UcpMessage) or isinstance(message, MessageBatch):
                raise FieldError(f"messages[{index}]", "must be a UCP message other than a batch")


# Every message kind: MESSAGE_KINDS below is built from this union.
Message = (
    JobSubmission
    | JobAccepted
    | JobState
    | JobDispatch
    | JobResult
    | Heartbeat
    | DataPut
    | DataReply
    | DataGet
    | DataGetReply
    | DataList
    | DataListReply
    | DataDelete
    | DataReplicate
    | DataHeld
    | DataFreeSpace
    | DataFreeSpaceReply
    | StatusQuery
    | StatusReply
    | BrokerSync
    | JobCancel
    | JobCancelReply
    | JobOutput
    | JobLogQuery
    | JobLogReply
    | MessageBatch
)
"""Any UCP message."""

MESSAGE_KINDS: Mapping[str, type[UcpMessage]] = MappingProxyType(
    {cls.KIND: cls for cls in typing.get_args(Message)}
)
"""Every message class by its ``"t"`` value: the kinds a decoder reads."""

_BATCHABLE_KINDS: Mapping[str, type[UcpMessage]] = MappingProxyType(
    {kind: cls for kind, cls in MESSAGE_KINDS.items() if cls is not MessageBatch}
)
"""The kinds a batch may hold: every kind but the batch itself."""
