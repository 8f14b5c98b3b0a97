"""Which of two writes of one data name wins: one deterministic order, the same everywhere.

Theory of operation
-------------------
Every write of a datum has a :class:`DataVersion`: when it was written (``written_at``, the
*writer's* clock, seconds since the epoch), who wrote it (``writer``, the writer's EID as text)
and a digest of the content (SHA-256). Versions compare as the tuple ``(written_at, writer,
digest)``: **last writer wins by the writer's clock**, a tie in time goes to the greater writer
EID (byte order of its text), and a tie of both to the greater digest. Every datastore, every
replica and every client applies the same order to the same versions, so two concurrent writes
of one name end with the same value everywhere, whichever order they arrive in. The price of a
clock-based rule: a writer whose clock runs behind loses to an earlier write from a writer whose
clock runs ahead. Equal versions are the same write (a duplicate).

A delete is a version too (a *tombstone*): ``(deleted_at, deleter)`` with a digest above every
real one (:data:`TOMBSTONE_DIGEST`), so a delete and a put of the same time and writer leave the
name deleted. A write older than a tombstone that covers its name is stale wherever it arrives —
late, through a partition, or as a replica copy — for as long as the tombstone is kept.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

__all__ = ["TOMBSTONE_DIGEST", "DataVersion", "content_digest"]

TOMBSTONE_DIGEST = b"\xff" * 33
"""The digest part of a delete's version: greater than any SHA-256 digest (33 bytes of 0xff
sort after every 32-byte digest)."""


def content_digest(data: bytes) -> bytes:
    """SHA-256 of ``data``: the digest part of a write's version."""
    return hashlib.sha256(data).digest()


class DataVersion(NamedTuple):
    """The version of one write (or delete) of a name; tuples compare field by field."""

    written_at: float
    """When it was written (the writer's clock)."""
    writer: str
    """Who wrote it (EID text)."""
    digest: bytes
    """SHA-256 of the content (:data:`TOMBSTONE_DIGEST` for a delete)."""

    @classmethod
    def of_delete(cls, deleted_at: float, deleter: str) -> DataVersion:
        """The version of a delete made at ``deleted_at`` by ``deleter``."""
        return cls(deleted_at, deleter, TOMBSTONE_DIGEST)

    @property
    def is_delete(self) -> bool:
        """Whether this is a tombstone's version."""
        return self.digest == TOMBSTONE_DIGEST
