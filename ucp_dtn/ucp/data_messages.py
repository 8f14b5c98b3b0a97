"""The messages of the datastores: put, get, list, delete, replicate and free space
(``data-put`` … ``data-free-space-reply``). The wire format and the catalogue of every kind are
in :mod:`ucp_dtn.ucp.messages`, which re-exports these classes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, ClassVar

from bpv7 import BPv7Error, parse_eid
from ucp_dtn.wire_schema import Wire

from .errors import FieldError, UcpUsageError
from .job import MAX_REPLICAS
from .message_base import (
    DIGEST_SIZE,
    MAX_HAVE,
    DataEntry,
    DataItem,
    DataStatus,
    UcpMessage,
    _Checked,
)
from .names import DataName

__all__ = [
    "DataDelete",
    "DataFreeSpace",
    "DataFreeSpaceReply",
    "DataGet",
    "DataGetReply",
    "DataHeld",
    "DataList",
    "DataListReply",
    "DataPut",
    "DataReplicate",
    "DataReply",
]

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
