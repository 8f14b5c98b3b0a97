"""Errors of the named-data store.

Two families, as elsewhere in ucp-dtn: :class:`DataStoreFullError` and
:class:`InvalidCursorError` describe what a request asked for and are answered to the requester
(``no-space``, ``invalid``); :class:`DataStoreClosedError` and a plain :class:`DataStoreError`
are local trouble (misuse, a locked or damaged directory). Bad data names raise the UCP layer's
:class:`~ucp_dtn.ucp.errors.DataNameError`.
"""

from __future__ import annotations

__all__ = [
    "DataStoreClosedError",
    "DataStoreError",
    "DataStoreFullError",
    "InvalidCursorError",
]


class DataStoreError(Exception):
    """Base of the named-data store's errors; raised as such when the store directory cannot
    be used (another process has it open, the database is damaged)."""


class DataStoreFullError(DataStoreError):
    """A datum does not fit: the quota or the disk is full. Nothing of it was stored."""

    def __init__(self, message: str, *, needed: int, free: int) -> None:
        super().__init__(message)
        self.needed = needed
        """Bytes the write needed."""
        self.free = free
        """Bytes that were free for it."""


class InvalidCursorError(DataStoreError, ValueError):
    """A paging cursor that this store did not hand out (or that was damaged on the way)."""


class DataStoreClosedError(DataStoreError):
    """The store was used after :meth:`~.named_data_store.NamedDataStore.aclose`."""
