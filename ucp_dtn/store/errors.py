"""Exceptions of the bundle store.

A store has no remote peer, so there is one family, :class:`StoreError`, for everything the store
itself cannot do (no space, closed, data damaged on disk, bundle unknown). Passing arguments that
contradict each other (e.g. ``meta.size != len(raw)``) is plain local misuse and raises
:class:`ValueError`. Messages are one line and safe to log.
"""

from __future__ import annotations

__all__ = [
    "BundleNotFoundError",
    "StoreClosedError",
    "StoreCorruptionError",
    "StoreError",
    "StoreFullError",
]


class StoreError(Exception):
    """Base class of every exception raised by :mod:`ucp_dtn.store`."""


class StoreFullError(StoreError):
    """The bundle does not fit: the byte or bundle quota is exhausted, or the disk is full.

    The agent answers a transfer it cannot store with TCPCLv4 XFER_REFUSE "No Resources"
    (RFC 9174 §5.2.4). Nothing of the refused bundle is left behind in the store.
    """

    needed: int
    """Bytes the refused operation needed (0 when unknown)."""
    available: int
    """Bytes still free under the quota when the operation was refused (0 when unknown)."""

    def __init__(self, message: str, *, needed: int = 0, available: int = 0) -> None:
        self.needed = needed
        self.available = available
        super().__init__(message)


class StoreClosedError(StoreError):
    """The store has been closed; no operation is possible any more."""


class BundleNotFoundError(StoreError, LookupError):
    """No bundle with the given key is stored (e.g. :meth:`update` after a concurrent delete)."""


class StoreCorruptionError(StoreError):
    """Stored data cannot be read back as it was written (missing file, wrong size, bad row)."""
