"""The building blocks of UCP messages: protocol constants, wire codes, the checked base class
and the entries that several messages carry (:mod:`.messages` declares the message kinds on
them and re-exports every name here)."""

from __future__ import annotations

import enum
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, ClassVar, Self

from bpv7 import BPv7Error, parse_eid
from ucp_dtn.wire_schema import Wire

from ._wire import decode_payload, encode_payload
from .capabilities import Capabilities
from .errors import FieldError, MessageDecodeError, UcpUsageError
from .job import MAX_REPLICAS, JobInfo, check_replicas
from .names import DataName, validate_name, validate_pattern

__all__ = [
    "UcpMessage",
    "DIGEST_SIZE",
    "DataEntry",
    "DataItem",
    "DataStatus",
    "JobStatus",
    "JobStatusEntry",
    "MAX_HAVE",
    "NodeEntry",
    "PROTOCOL_VERSION",
    "RESULT_TAIL_BYTES",
    "ResultStatus",
    "Role",
    "SUPPORTED_VERSIONS",
    "SyncedJob",
    "Timings",
]

DIGEST_SIZE = 32
"""Bytes of a content digest (SHA-256) in data items and ``have`` lists."""
MAX_HAVE = 256
"""Digests one ``data-get`` may list in ``have``."""
RESULT_TAIL_BYTES = 4096
"""Bytes of the end of each output stream a ``job-result`` carries at most: a shorter tail is
the whole stream."""
PROTOCOL_VERSION = 1
"""The message format version this module writes."""
SUPPORTED_VERSIONS = (1,)
"""Every version it reads."""


# -- wire codes ---------------------------------------------------------------------------------


class JobStatus(enum.IntEnum):
    """A job's state at the broker (``job-state``, status replies, broker sync). A code this
    version does not know stays a plain ``int``."""

    QUEUED = 0
    """Recorded; waiting for its ``after`` jobs or for a capable executor."""
    DISPATCHED = 1
    """Sent to an executor, not yet confirmed running."""
    RUNNING = 2
    """The executor started it."""
    DONE = 3
    """Finished successfully; the result went out."""
    FAILED = 4
    """Finished unsuccessfully (the detail and the ``job-result`` say why)."""
    REJECTED = 5
    """Will never run: invalid, an ``after`` job failed, or no executor can ever satisfy it."""
    CANCELLED = 6
    """Its client cancelled it (``job-cancel``): not dispatched again, stopped if it ran, and
    a result that comes later is dropped."""

    @property
    def final(self) -> bool:
        """Whether the job will not change state again."""
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.CANCELLED)


class ResultStatus(enum.IntEnum):
    """How a run ended (``job-result``). The first nine mirror the names of the runtime's
    ``RunStatus``; unknown codes stay plain ``int``."""

    OK = 0
    """Ran to completion with exit status 0; the only success."""
    EXIT = 1
    """Exited with a non-zero status (see ``exit_code``)."""
    TRAP = 2
    """Trapped (unreachable, out-of-bounds access, stack overflow...)."""
    OUT_OF_FUEL = 3
    """Used up its fuel limit."""
    TIMEOUT = 4
    """Hit its wall-clock limit."""
    MEMORY_LIMIT = 5
    """Needed more memory than its limit."""
    INVALID_MODULE = 6
    """The wasm bytes are not a module the executor can run."""
    WORKER_CRASHED = 7
    """The process running the job died."""
    SETUP_FAILED = 8
    """The executor could not set the run up (job directory, stdin...)."""
    INPUT_MISSING = 9
    """A named input (or the named wasm module or stdin) could not be fetched."""
    EXECUTOR_ERROR = 10
    """Anything else that went wrong at the executor (collecting or publishing results...)."""
    CANCELLED = 11
    """Stopped by a ``job-cancel`` (its broker has dropped the job already)."""


class DataStatus(enum.IntEnum):
    """Outcome of a data request. Unknown codes stay plain ``int``."""

    OK = 0
    """Done (for a put that lost to a newer write, see :attr:`STALE`)."""
    NOT_FOUND = 1
    """No datum matches."""
    NO_SPACE = 2
    """The datastore has no room for it."""
    INVALID = 3
    """The request makes no sense (a bad name, both or neither of name and job...)."""
    UNAVAILABLE = 4
    """No datastore could be reached to serve it."""
    STALE = 5
    """A put older than the stored datum was ignored (last write wins)."""
    TAKEN = 6
    """An exclusive put (:attr:`DataPut.exclusive`) found the name taken by another write (of
    no job, or of another job): nothing was stored. REC's "name already taken"."""
    DENIED = 7
    """Not allowed in a trusted mesh: the requester does not own the datum (or is not a
    member who may ask this); the detail says why (docs/security.md)."""


class Role(enum.IntFlag):
    """UCP roles a node runs (``heartbeat``); unknown bits are kept."""

    BROKER = 1
    """Accepts jobs, matches them to executors, relays data requests."""
    EXECUTOR = 2
    """Runs jobs."""
    DATASTORE = 4
    """Stores named data."""
    CLIENT = 8
    """Submits jobs and collects results."""


# -- building blocks ------------------------------------------------------------------------------


class _Checked:
    """Checks the data names and EIDs of a message or part of one on construction, so that a
    decoded message is valid throughout. Subclasses list their fields in the class variables."""

    __slots__ = ()
    _NAMES: ClassVar[tuple[str, ...]] = ()
    """Fields holding a data name (or ``None``, or a tuple of names)."""
    _PATTERNS: ClassVar[tuple[str, ...]] = ()
    """Fields holding a data name or ``prefix*`` pattern (or ``None``)."""
    _EIDS: ClassVar[tuple[str, ...]] = ()
    """Fields holding endpoint ID text (or ``None``)."""
    _FACTORS: ClassVar[tuple[str, ...]] = ()
    """Fields holding a replication factor (or ``None``)."""

    def __post_init__(self) -> None:
        for attribute in self._NAMES:
            value = getattr(self, attribute)
            for index, name in enumerate(value if isinstance(value, tuple) else (value,)):
                if name is not None:
                    where = f"{attribute}[{index}]" if isinstance(value, tuple) else attribute
                    validate_name(name, where)
        for attribute in self._PATTERNS:
            value = getattr(self, attribute)
            if value is not None:
                validate_pattern(value, attribute)
        for attribute in self._EIDS:
            value = getattr(self, attribute)
            if value is None:
                continue
            if not isinstance(value, str):
                raise FieldError(attribute, f"must be EID text, got {type(value).__name__}")
            try:
                parse_eid(value)
            except BPv7Error as exc:
                raise FieldError(attribute, exc.message) from None
        for attribute in self._FACTORS:
            value = getattr(self, attribute)
            if value is not None:
                check_replicas(value, attribute)


@dataclass(frozen=True, slots=True)
class Timings:
    """Where a job's time went, in seconds (0 when not measured). On the wire: an array of the
    four, in this order."""

    _WIRE_ARRAY: ClassVar[bool] = True

    queued: Annotated[float, Wire(min=0)] = 0.0
    """From submission at the broker to the start of the run (as far as the executor knows)."""
    fetch: Annotated[float, Wire(min=0)] = 0.0
    """Fetching named inputs and preparing the job directory."""
    run: Annotated[float, Wire(min=0)] = 0.0
    """Running the module."""
    collect: Annotated[float, Wire(min=0)] = 0.0
    """Zipping and publishing the results."""


@dataclass(frozen=True, slots=True)
class DataItem(_Checked):
    """One datum with its content (``data-get-reply``)."""

    _NAMES = ("name",)
    _EIDS = ("writer",)

    name: DataName
    """The data name (no wildcard)."""
    data: bytes
    """The stored bytes, whole."""
    written_at: Annotated[float, Wire(key="at")]
    """When it was written (the writer's clock); the newest write wins."""
    job_id: uuid.UUID | None = None
    """The job it belongs to, if any."""
    writer: str | None = None
    """Who wrote it (EID): with :attr:`written_at` it orders two writes of one name."""
    digest: bytes | None = None
    """SHA-256 of the value, when the sender knows: a requester keeps content by it (an
    executor's input cache) and names it in a later get's :attr:`DataGet.have`."""
    cached: bool = False
    """The value is left out (:attr:`data` is empty) because its :attr:`digest` was among the
    get's :attr:`DataGet.have`: the requester holds these bytes already."""

    def __post_init__(self) -> None:
        _Checked.__post_init__(self)
        if self.digest is not None and len(self.digest) != DIGEST_SIZE:
            raise FieldError("digest", f"must be {DIGEST_SIZE} bytes (SHA-256)")
        if self.cached and (self.digest is None or self.data):
            raise FieldError("cached", "a cached item has a digest and no data")


@dataclass(frozen=True, slots=True)
class DataEntry(_Checked):
    """One datum without its content (listings, broker sync)."""

    _NAMES = ("name",)
    _EIDS = ("holder", "writer")
    _FACTORS = ("replicas",)

    name: DataName
    """The data name (no wildcard)."""
    size: int
    """Length of the stored value in bytes (what a get would return)."""
    written_at: Annotated[float, Wire(key="at")]
    """When it was written (the writer's clock)."""
    job_id: uuid.UUID | None = None
    """The job it belongs to, if any."""
    holder: str | None = None
    """The datastore holding it (EID), when the sender knows."""
    replicas: Annotated[int, Wire(min=1, max=MAX_REPLICAS)] = 1
    """The replication factor it was stored with (copies wanted on distinct datastores)."""
    writer: str | None = None
    """Who wrote it (EID), when the sender knows: part of the write's version."""
    digest: bytes | None = None
    """SHA-256 of the value, when the sender knows: tells two versions apart."""


@dataclass(frozen=True, slots=True)
class JobStatusEntry(_Checked):
    """What a broker knows about one job (status replies, broker sync)."""

    _NAMES = ("result_ref",)
    _EIDS = ("client", "executor")

    job_id: uuid.UUID
    """The job's UUID (assigned by the client at submission)."""
    state: JobStatus | int
    """Where the job stands; an unknown code from a newer peer stays a plain ``int``."""
    updated_at: Annotated[float, Wire(key="at")]
    """When the state last changed (the broker's clock)."""
    name: str = ""
    """Its human-readable name."""
    detail: str = ""
    """One line about the state (why queued, why failed...)."""
    client: str | None = None
    """Who submitted it (EID)."""
    executor: str | None = None
    """The executor it was last dispatched to (EID)."""
    attempts: int = 0
    """How often it has been dispatched."""
    result_ref: DataName | None = None
    """Where its result is kept in the datastores, once there is one."""


@dataclass(frozen=True, slots=True)
class NodeEntry(_Checked):
    """What a broker knows about one node (status replies)."""

    _EIDS = ("node",)

    node: str
    """Its node ID (EID)."""
    roles: Role
    """The roles in its latest heartbeat (broker, executor, datastore bits)."""
    last_seen: float
    """When its last heartbeat arrived (the broker's clock)."""
    capabilities: Capabilities | None = None
    """Its last announced capabilities (executors)."""
    running_jobs: Annotated[int, Wire(key="running")] = 0
    """Jobs it runs now."""
    max_jobs: int = 0
    """Jobs it runs at most at once."""


class _HasInlineData(typing.Protocol):
    @property
    def inline_data(self) -> Mapping[DataName, bytes]: ...


def _freeze_inline_data(message: _HasInlineData) -> None:
    for name, data in message.inline_data.items():
        validate_name(name, f"inline_data[{name!r}]")
        if not isinstance(data, bytes):
            raise UcpUsageError(f"inline_data[{name!r}]: must be bytes, got {type(data).__name__}")
    object.__setattr__(message, "inline_data", MappingProxyType(dict(message.inline_data)))


@dataclass(frozen=True, slots=True)
class SyncedJob(_Checked):
    """A job as one broker tells another (``broker-sync``)."""

    _EIDS = ("taken_from",)

    status: JobStatusEntry
    """The job's state as the syncing broker last recorded it."""
    job: JobInfo | None = None
    """The job itself while it is not final, so the other broker can take it over if this one
    disappears; ``None`` for final jobs."""
    inline_data: Mapping[DataName, bytes] = field(default_factory=dict)
    """The submission's inline data, sent with the job while it is not final (once per peer),
    so a broker taking the job over can dispatch it whole."""
    taken_from: str | None = None
    """The broker (EID) the syncing broker took the job over from: that broker, if it comes
    back, leaves the job to this one."""

    def __post_init__(self) -> None:
        _Checked.__post_init__(self)
        _freeze_inline_data(self)


_KINDS_DEFINED: dict[str, type[UcpMessage]] = {}
"""Every message class by kind, as the classes are defined (what :meth:`UcpMessage.from_cbor`
reads; decoders use :data:`ucp_dtn.ucp.messages.MESSAGE_KINDS`, built from the ``Message``
union, which is the list of kinds)."""


class UcpMessage(_Checked):
    """Base of every message class: ``KIND`` and the CBOR round trip."""

    __slots__ = ()
    KIND: ClassVar[str] = ""
    """The message's ``"t"`` value."""
    _WIRE_ORDER: ClassVar[tuple[str, ...]] = ()
    """Fields written first, in this order; the others follow in declaration order (kept from
    version 1, whose key order was chosen by hand)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.KIND:
            # (A slotted dataclass is made twice: the class it returns registers last.)
            _KINDS_DEFINED[cls.KIND] = cls

    def to_cbor(self) -> bytes:
        """The bundle payload of this message."""
        return encode_payload(self, self.KIND, PROTOCOL_VERSION)

    @classmethod
    def from_cbor(cls, data: bytes) -> Self:
        """Decode ``data``, which must be a message of this class;
        :class:`~ucp_dtn.ucp.errors.MessageDecodeError` otherwise."""
        message = decode_payload(data, _KINDS_DEFINED, SUPPORTED_VERSIONS)
        if not isinstance(message, cls):
            raise MessageDecodeError(f"expected a {cls.KIND} message, got {message.KIND}")
        return message
