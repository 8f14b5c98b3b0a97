"""Large values as files, each written so that a crash never leaves half of one in use.

:meth:`ValueDirectory.write` creates ``<token>.tmp`` exclusively, writes every byte, ``fsync``\\ s
it, renames it to ``<token>.value`` and ``fsync``\\ s the directory, so the file and its name are
on disk before the database row naming it is committed. Removal goes the other way round: row
first, file afterwards. A crash in between leaves at worst a ``.tmp`` file or a ``.value`` file
that no row names; :meth:`ValueDirectory.scan` lists both so the store removes them on open.

Synchronous and blocking: called only from the store's worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["FileWrite", "ValueDirectory"]

FileWrite = Callable[[int, memoryview], int]
"""Signature of :func:`os.write`; tests pass another one to provoke a full disk."""

_FINAL_SUFFIX = ".value"
_TEMP_SUFFIX = ".tmp"


class ValueDirectory:
    """Value files in one directory (created if missing)."""

    __slots__ = ("_dir_fd", "_path", "_write")

    def __init__(self, path: Path, *, file_write: FileWrite = os.write) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._write = file_write
        self._dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    @property
    def path(self) -> Path:
        """The directory."""
        return self._path

    def write(self, data: bytes) -> str:
        """Write ``data`` to a new file, durably (file and directory fsync'd), and return its
        name. On any error nothing is left behind and the :class:`OSError` (``ENOSPC``
        included) propagates."""
        token = secrets.token_hex(16)
        temp, name = token + _TEMP_SUFFIX, token + _FINAL_SUFFIX
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=self._dir_fd
        )
        try:
            try:
                view = memoryview(data)
                while view:
                    written = self._write(fd, view)
                    if written <= 0:
                        raise OSError(f"write returned {written}")
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            os.fsync(self._dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self._dir_fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self._dir_fd)
            raise
        return name

    def read(self, name: str) -> bytes:
        """The content of file ``name`` (:class:`OSError` if it cannot be read)."""
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._dir_fd)
        with open(fd, "rb") as file:
            return file.read()

    def remove(self, names: list[str]) -> None:
        """Delete the files ``names`` (missing ones are ignored) and make that durable."""
        if not names:
            return
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._dir_fd)
        os.fsync(self._dir_fd)

    def scan(self) -> tuple[set[str], list[str]]:
        """The complete value files, and leftover temporary files."""
        values: set[str] = set()
        temporary: list[str] = []
        with os.scandir(self._path) as entries:
            for entry in entries:
                if entry.name.endswith(_FINAL_SUFFIX) and entry.is_file(follow_symlinks=False):
                    values.add(entry.name)
                elif entry.name.endswith(_TEMP_SUFFIX):
                    temporary.append(entry.name)
        return values, temporary

    def close(self) -> None:
        """Release the directory handle."""
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
