"""The executor's input cache: fetched named data kept by content, so that a second job on the
same data fetches nothing.

Theory of operation
-------------------
Every datum a datastore hands out carries the SHA-256 ``digest`` of its value
(:class:`~ucp_dtn.ucp.messages.DataItem`). The cache keeps values in files named by that digest
(``<workdir>/executor/inputs/<hex>``), after checking that the bytes hash to it, and remembers
which digest each data name had when it was last fetched. Before the next fetch of a query the
executor lists in the ``data-get``'s ``have`` the digests it holds for the names the query
selects (:meth:`InputCache.have_for`); the datastore answers every datum as usual but leaves
out the value of those whose *current* digest is in the list (``cached``), and the executor
reads them here (:meth:`InputCache.read`). The datastore decides, from what it holds now, so
a name's new version is always fetched: the cache can make a fetch smaller, never stale. (A job
whose only named datum is its standard input starts on the value noted here while that answer
is on its way, and counts only if the answer confirms it: :class:`~.execution.JobRunner`.)

Bounded by size (``--input-cache``; 0 turns it off): the least recently used values go first;
a value larger than the bound is not kept. Keys are content, so two names with the same bytes
share one file. The files survive a restart (their sizes and order are read from the
directory); the name → digest notes do not, so the first fetch after a restart moves the bytes
again.

Blocking methods (:meth:`open`, :meth:`read`, :meth:`store`) touch the disk: call them through
``trio.to_thread``. The others are bookkeeping in memory.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from ...store.sqlite_files import make_private_directory
from ...ucp.messages import DIGEST_SIZE, MAX_HAVE
from ...ucp.names import DataName, name_matches

__all__ = ["InputCache", "InputCacheStatistics"]

logger = logging.getLogger(__name__)

_NAMES_KEPT = 65536
"""Name → digest notes kept at most (the oldest go first)."""


@dataclass(frozen=True, slots=True)
class InputCacheStatistics:
    """Counters of an :class:`InputCache`."""

    limit: int
    """Bytes it may hold (0: off)."""
    size: int
    """Bytes it holds."""
    values: int
    """Values (files) it holds."""
    hits: int
    """Data served from the cache instead of fetched."""
    bytes_saved: int
    """Content bytes served from the cache instead of fetched."""
    stored: int
    """Values added."""
    evicted: int
    """Values removed to make room."""
    rejected: int
    """Fetched values not kept: larger than the bound, or not matching their digest."""


class InputCache:
    """Fetched values by SHA-256 (see the module docstring)."""

    def __init__(self, directory: Path, limit_bytes: int) -> None:
        self.directory = directory
        """Where the values are (one file per digest)."""
        self.limit = max(0, limit_bytes)
        """Bytes it holds at most; 0: nothing is kept."""
        self._sizes: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._names: collections.OrderedDict[DataName, bytes] = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # the blocking methods run in worker threads
        self.hits = 0
        self.bytes_saved = 0
        self._stored = 0
        self._evicted = 0
        self._rejected = 0

    @property
    def enabled(self) -> bool:
        """Whether values are kept at all."""
        return self.limit > 0

    def open(self) -> None:
        """Create the directory, or take in the values a previous run left (oldest use
        first, by modification time; the newest beyond the bound stay). Blocking."""
        if not self.enabled:
            return
        make_private_directory(self.directory)
        found: list[tuple[float, bytes, int, Path]] = []
        for path in self.directory.iterdir():
            try:
                digest = bytes.fromhex(path.name)
                stat = path.stat()
            except (ValueError, OSError):
                digest, stat = b"", None
            if len(digest) != DIGEST_SIZE or stat is None:
                with contextlib.suppress(OSError):
                    path.unlink()  # a partial write (".tmp") or something not ours
                continue
            found.append((stat.st_mtime, digest, stat.st_size, path))
        with self._lock:
            for _, digest, size, _ in sorted(found):
                self._sizes[digest] = size
                self._size += size
            doomed = self._evict_locked()
        for gone in doomed:
            with contextlib.suppress(OSError):
                self._path(gone).unlink()

    def statistics(self) -> InputCacheStatistics:
        """A snapshot of the counters."""
        return InputCacheStatistics(
            limit=self.limit,
            size=self._size,
            values=len(self._sizes),
            hits=self.hits,
            bytes_saved=self.bytes_saved,
            stored=self._stored,
            evicted=self._evicted,
            rejected=self._rejected,
        )

    # -- in memory --------------------------------------------------------------------------

    def have_for(self, query: DataName) -> tuple[bytes, ...]:
        """Digests held for the names ``query`` selects, as last fetched (for a ``data-get``'s
        ``have``; at most :data:`~ucp_dtn.ucp.messages.MAX_HAVE`, the most recent)."""
        if not self.enabled:
            return ()
        digests: dict[bytes, None] = {}
        exact = self._names.get(query)
        if exact is not None and exact in self._sizes:
            digests[exact] = None
        for name in reversed(self._names):
            if len(digests) >= MAX_HAVE:
                break
            digest = self._names[name]
            if digest in self._sizes and name_matches(query, name):
                digests[digest] = None
        return tuple(digests)

    def noted(self, name: DataName) -> bytes | None:
        """The digest ``name`` had when it was last fetched, if that value is held here (the
        guess a job may start on while its datastore confirms it: see
        :class:`~.execution.JobRunner`)."""
        digest = self._names.get(name) if self.enabled else None
        return digest if digest is not None and digest in self._sizes else None

    def note(self, name: DataName, digest: bytes) -> None:
        """``name`` had the value ``digest`` when it was fetched just now."""
        if not self.enabled:
            return
        self._names[name] = digest
        self._names.move_to_end(name)
        while len(self._names) > _NAMES_KEPT:
            self._names.popitem(last=False)

    # -- on disk ----------------------------------------------------------------------------

    def _path(self, digest: bytes) -> Path:
        return self.directory / digest.hex()

    def holds(self, digest: bytes) -> bool:
        """Whether the value with this digest is here now."""
        return digest in self._sizes

    def link(self, digest: bytes, target: Path, *, hit: bool = True) -> bool:
        """Make ``target`` a hard link to the value (a copy where links fail), for a file the
        job cannot write (its standard input); counts a hit unless ``hit`` is false (a value
        fetched and kept just now). False if the value is gone. Blocking."""
        with self._lock:
            size = self._sizes.get(digest)
            if size is None:
                return False
            self._sizes.move_to_end(digest)
        source = self._path(digest)
        try:
            try:
                os.link(source, target)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                shutil.copyfile(source, target)
        except OSError as exc:
            logger.warning("input cache: cannot use %s: %s", digest.hex()[:16], exc)
            self._forget(digest)
            return False
        if hit:
            with self._lock:
                self.hits += 1
                self.bytes_saved += size
        return True

    def read(self, digest: bytes) -> bytes | None:
        """The value with this digest, or ``None`` if it is not (or no longer) here; counts a
        hit. Blocking."""
        with self._lock:
            if digest not in self._sizes:
                return None
            self._sizes.move_to_end(digest)
        try:
            data = self._path(digest).read_bytes()
        except OSError as exc:
            logger.warning("input cache: cannot read %s: %s", digest.hex()[:16], exc)
            self._forget(digest)
            return None
        with self._lock:
            self.hits += 1
            self.bytes_saved += len(data)
        return data

    def store(self, digest: bytes, data: bytes) -> bool:
        """Keep ``data`` under ``digest`` if it hashes to it and fits (making room by dropping
        the least recently used values); whether it is held now. Blocking."""
        if not self.enabled:
            return False
        with self._lock:
            if digest in self._sizes:
                self._sizes.move_to_end(digest)
                return True
        if len(data) > self.limit or hashlib.sha256(data).digest() != digest:
            if len(data) <= self.limit:
                logger.warning("input cache: a value does not match its digest; not kept")
            with self._lock:
                self._rejected += 1
            return False
        path = self._path(digest)
        partial = path.with_name(path.name + ".tmp")
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(partial, path)
        except OSError as exc:
            logger.warning("input cache: cannot keep %s: %s", digest.hex()[:16], exc)
            with contextlib.suppress(OSError):
                partial.unlink()
            return False
        with self._lock:
            if digest not in self._sizes:
                self._sizes[digest] = len(data)
                self._size += len(data)
                self._stored += 1
            doomed = self._evict_locked(keep=digest)
        for gone in doomed:
            with contextlib.suppress(OSError):
                self._path(gone).unlink()
        return True

    def _evict_locked(self, keep: bytes | None = None) -> list[bytes]:
        """Drop the least recently used values until the bound holds; their digests (the
        caller removes the files)."""
        doomed: list[bytes] = []
        while self._size > self.limit and self._sizes:
            digest, size = next(iter(self._sizes.items()))
            if digest == keep:
                self._sizes.move_to_end(digest)
                if len(self._sizes) == 1:
                    break
                continue
            del self._sizes[digest]
            self._size -= size
            self._evicted += 1
            doomed.append(digest)
        return doomed

    def _forget(self, digest: bytes) -> None:
        with self._lock:
            size = self._sizes.pop(digest, None)
            if size is not None:
                self._size -= size
