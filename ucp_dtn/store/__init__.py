"""The bundle store of the bundle protocol agent: every accepted bundle, durably.

The agent hands the store raw bundle bytes plus a :class:`StoredBundle` it built when decoding
them, and sends the final TCPCLv4 XFER_ACK only after :meth:`BundleStore.put` returned.

* :class:`SqliteBundleStore` — persistent: sqlite in WAL mode (``synchronous=FULL``) for metadata
  and small bundles, fsync'd files for large ones, group commit, crash reconciliation on open.
* :class:`MemoryBundleStore` — the same contract in memory, for tests and throwaway nodes.

Both keep all metadata in memory, so queries (by destination, expiry, custody retry, counts and
bytes) never touch the disk.
"""

from .errors import (
    BundleNotFoundError,
    StoreClosedError,
    StoreCorruptionError,
    StoreError,
    StoreFullError,
)
from .interface import BundleStore, PutItem
from .memory import MemoryBundleStore
from .quota import Reservation
from .sqlite import DEFAULT_INLINE_LIMIT, SqliteBundleStore
from .stored_bundle import BundleState, StoredBundle, StoreStatistics

__all__ = [
    "DEFAULT_INLINE_LIMIT",
    "BundleNotFoundError",
    "BundleState",
    "BundleStore",
    "MemoryBundleStore",
    "PutItem",
    "Reservation",
    "SqliteBundleStore",
    "StoreClosedError",
    "StoreCorruptionError",
    "StoreError",
    "StoreFullError",
    "StoreStatistics",
    "StoredBundle",
]
