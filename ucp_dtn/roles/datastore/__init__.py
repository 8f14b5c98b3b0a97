"""The datastore role and its storage engine.

* :class:`NamedDataStore` — named data with hierarchical keys, durable in
  ``<workdir>/datastore`` (sqlite in WAL mode, files for large values, written atomically) or in
  memory: queries by name with its subkeys *by segment* or by ``prefix*`` pattern answered from
  the name index, last write wins, paged listings and fetches, deletion by name or by job, a
  quota bounded by the disk's real free space. Pure of networking.
* :class:`DatastoreRole` — puts a store on a bundle node's ``…/ucp/datastore`` endpoint:
  answers ``data-*`` requests and sends heartbeats to the brokers.
* :class:`Replicator` — sends the replica copies a broker asked for, paced per link behind
  every other bundle (:mod:`.replicator`); :class:`Tombstone` — what a delete leaves behind.
"""

from .database import DEFAULT_INLINE_LIMIT
from .errors import DataStoreClosedError, DataStoreError, DataStoreFullError, InvalidCursorError
from .named_data_store import DEFAULT_GET_BYTES, DEFAULT_PAGE_ITEMS, NamedDataStore
from .replicator import Replicator, ReplicatorStatistics
from .role import MAX_REPLY_BYTES, MAX_REPLY_ITEMS, DatastoreRole, DatastoreStatistics
from .store_results import (
    Datum,
    DatumInfo,
    GetPage,
    ListPage,
    NamedDataStatistics,
    PutOutcome,
    SpaceInfo,
)
from .tombstones import DEFAULT_TOMBSTONE_LIFETIME_S, Tombstone

__all__ = [
    "DEFAULT_GET_BYTES",
    "DEFAULT_TOMBSTONE_LIFETIME_S",
    "DEFAULT_INLINE_LIMIT",
    "DEFAULT_PAGE_ITEMS",
    "MAX_REPLY_BYTES",
    "MAX_REPLY_ITEMS",
    "DataStoreClosedError",
    "DataStoreError",
    "DataStoreFullError",
    "NamedDataStatistics",
    "DatastoreRole",
    "DatastoreStatistics",
    "Datum",
    "DatumInfo",
    "GetPage",
    "InvalidCursorError",
    "ListPage",
    "NamedDataStore",
    "PutOutcome",
    "Replicator",
    "ReplicatorStatistics",
    "SpaceInfo",
    "Tombstone",
]
