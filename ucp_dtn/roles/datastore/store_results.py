"""What the named-data store hands out: data, their metadata, pages and space figures."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from ...ucp.versions import DataVersion

__all__ = [
    "Datum",
    "DatumInfo",
    "GetPage",
    "ListPage",
    "PutOutcome",
    "SpaceInfo",
    "NamedDataStatistics",
]


class PutOutcome(enum.Enum):
    """What a put did (last write wins by version: ``(written_at, writer, digest)``)."""

    STORED = "stored"
    """The datum is new, or newer than the one it replaced."""
    UNCHANGED = "unchanged"
    """The same write (same version) was already stored: a duplicate, harmless."""
    STALE = "stale"
    """A newer write of the name is stored, or a newer delete buried it; ignored."""
    TAKEN = "taken"
    """An exclusive put found the name's live datum written by no job or by another job (and
    not the same write); nothing was stored (REC's "name already taken")."""


@dataclass(frozen=True, slots=True)
class DatumInfo:
    """One stored datum, without its content."""

    name: str
    """Its data name: ``/``-separated segments, no wildcard (:mod:`ucp_dtn.ucp.names`)."""
    size: int
    """Its content's length in bytes."""
    written_at: float
    """When it was written (the writer's clock); the newest write wins."""
    writer: str
    """Who wrote it (EID text); breaks ties between writes with equal ``written_at``."""
    job_id: uuid.UUID | None
    """The job it belongs to (given with the put, or the job UUID its name starts with)."""
    stored_at: float
    """When this store took it (this store's clock)."""
    digest: bytes = b""
    """SHA-256 of its content."""
    replicas: int = 1
    """The replication factor it was stored with."""
    replicated: bool = False
    """Stored with a factor above 1, or replacing a datum that was: brokers track it."""

    @property
    def version(self) -> DataVersion:
        """``(written_at, writer, digest)``: what orders two writes of the name."""
        return DataVersion(self.written_at, self.writer, self.digest)


@dataclass(frozen=True, slots=True)
class Datum:
    """One stored datum with its content."""

    info: DatumInfo
    """Name, size, who wrote it when, its job."""
    data: bytes
    """Its content, ``info.size`` bytes."""


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing."""

    entries: tuple[DatumInfo, ...]
    """The data, sorted by name."""
    cursor: str | None
    """Continue with this cursor; ``None``: nothing follows."""


@dataclass(frozen=True, slots=True)
class GetPage:
    """One page of data fetched by a query."""

    items: tuple[Datum, ...]
    """The data, sorted by name."""
    cursor: str | None
    """Continue with this cursor; ``None``: nothing follows."""


@dataclass(frozen=True, slots=True)
class SpaceInfo:
    """How much the store holds and how much more it can take."""

    used: int
    """Content bytes stored."""
    items: int
    """Data stored."""
    quota: int
    """The configured limit of content bytes."""
    disk_free: int | None
    """Free bytes of the file system holding the store (``None`` in memory)."""

    @property
    def free(self) -> int:
        """Bytes a new datum may still take: the rest of the quota, or the disk's free space if
        that is smaller."""
        free = max(0, self.quota - self.used)
        return free if self.disk_free is None else max(0, min(free, self.disk_free))


@dataclass(frozen=True, slots=True)
class NamedDataStatistics:
    """What one open store holds, and counters since it was opened."""

    used: int
    """Content bytes stored."""
    items: int
    """Data stored."""
    quota: int
    """The configured limit of content bytes."""
    stored: int
    """Puts that stored a datum."""
    unchanged: int
    """Duplicate puts."""
    stale: int
    """Puts that lost to a newer write."""
    refused: int
    """Puts refused for lack of space."""
    taken: int
    """Exclusive puts refused because another write holds the name."""
    deleted: int
    """Data deleted."""
    gets: int
    """Get pages served."""
    lists: int
    """List pages served."""
