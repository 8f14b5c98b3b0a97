"""Tombstones: what a datastore remembers of a delete, so that the deleted writes stay deleted.

Theory of operation
-------------------
A delete removes the stored data it selects — a name with its subkeys, a ``prefix*`` pattern,
or a job's data — whose version is older than the delete's own (:mod:`ucp_dtn.ucp.versions`:
``(deleted_at, deleter)``, above any write of the same time and writer). The datastore then
keeps a :class:`Tombstone` of the delete: the selection and its version. A write that arrives
later and that the tombstone covers is *stale* if it is older than the delete, wherever it comes
from: a put that was on its way through a partition, a replica copy made by a holder that has
not heard of the delete yet, a client's retry. A newer write of the name is stored as usual (a
delete does not forbid the name for ever).

A tombstone is kept for ``tombstone_lifetime_s`` (a datastore setting, 7 days by default): a
put older than the delete can only arrive while its bundle lives, and the bundles that carry
puts — clients' uploads, executors' results, replica copies — live as long as the results' and
the clients' bundle lifetimes (7 days and 1 day by default). A tombstone that outlives them
guards against every write that can still arrive; one kept longer only costs a row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ...ucp.names import job_result_name, name_matches
from ...ucp.versions import DataVersion

__all__ = ["DEFAULT_TOMBSTONE_LIFETIME_S", "Tombstone"]

DEFAULT_TOMBSTONE_LIFETIME_S = 7 * 24 * 3600.0
"""How long a datastore keeps a tombstone unless configured otherwise: the default lifetime of
result and replica bundles (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Tombstone:
    """One delete as a datastore remembers it."""

    query: str | None
    """The name (with its subkeys) or ``prefix*`` pattern deleted; ``None`` for a job's data."""
    job_id: uuid.UUID | None
    """The job whose data was deleted; ``None`` for a query."""
    keep_result: bool
    """With :attr:`job_id`: the job's ``<job-uuid>/result`` was kept."""
    version: DataVersion
    """The delete's version (``DataVersion.of_delete``)."""
    expires_at: float
    """When the datastore forgets it (its own clock)."""

    def covers(self, name: str, job_id: uuid.UUID | None) -> bool:
        """Whether a datum ``name`` of job ``job_id`` is one this delete selects."""
        if self.query is not None:
            return name_matches(self.query, name)
        if self.job_id is None or job_id != self.job_id:
            return False
        return not (self.keep_result and name == job_result_name(self.job_id))

    def buries(self, name: str, job_id: uuid.UUID | None, version: DataVersion) -> bool:
        """Whether a write of ``name`` with ``version`` is older than this delete, which
        covers it: such a write is stale."""
        return version < self.version and self.covers(name, job_id)
