"""One directory of bundle files, written so that a crash never leaves a half-written bundle.

Large bundles live outside the database, one file each. :meth:`BlobDirectory.write` creates
``<token>.tmp`` with ``O_EXCL``, writes every byte, ``fsync``\\ s the file and renames it to
``<token>.bundle``; :meth:`BlobDirectory.sync` then ``fsync``\\ s the directory so the rename itself
survives a power cut (one directory sync covers a whole group of writes). Only after that does the
database row that names the file get committed, so a committed row always names a complete
file. Removing goes the other way round: row first, file afterwards. A crash in between leaves
at worst a ``.tmp`` file or a ``.bundle`` file no row names; :meth:`BlobDirectory.scan` lists both
so the store can reconcile them when it opens.

Synchronous and blocking: called only from the store's database worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .sqlite_files import FILE_MODE, make_private_directory

__all__ = ["BlobDirectory", "BlobScan", "FileWrite"]

FileWrite = Callable[[int, memoryview], int]
"""Signature of :func:`os.write`; a store can be given another one to inject write failures."""

_FINAL_SUFFIX = ".bundle"
_TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True, slots=True)
class BlobScan:
    """What :meth:`BlobDirectory.scan` found on disk."""

    sizes: dict[str, int]
    """Size of every complete bundle file, by file name."""
    temporary: list[str]
    """Names of leftover temporary files (writes a crash interrupted)."""


class BlobDirectory:
    """Bundle files (mode 0600) in one directory (created mode 0700 if missing)."""

    __slots__ = ("_dir_fd", "_path", "_suffix", "_write")

    def __init__(
        self, path: Path, *, file_write: FileWrite = os.write, suffix: str = _FINAL_SUFFIX
    ) -> None:
        """``suffix`` names complete files (``.bundle`` for the bundle store; other users of
        this durable-file scheme, like the datastore role, pick their own)."""
        if not suffix.startswith(".") or suffix == _TEMP_SUFFIX:
            raise ValueError(f"bad file suffix {suffix!r}")
        make_private_directory(path)
        self._path = path
        self._suffix = suffix
        self._write = file_write
        self._dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    @property
    def path(self) -> Path:
        """The directory holding the files, as given."""
        return self._path

    def write(self, data: bytes) -> str:
        """Write ``data`` to a new file, fsync'd and renamed into place; return its name.

        The rename is not durable until :meth:`sync`. On any error the temporary file is
        removed and the :class:`OSError` propagates (``ENOSPC`` included).
        """
        token = secrets.token_hex(16)
        temp = token + _TEMP_SUFFIX
        name = token + self._suffix
        fd = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
            FILE_MODE,
            dir_fd=self._dir_fd,
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
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self._dir_fd)
            raise
        return name

    def sync(self) -> None:
        """Make earlier renames and removals in the directory durable (fsync of the directory)."""
        os.fsync(self._dir_fd)

    def read(self, name: str) -> bytes:
        """The whole content of bundle file ``name`` (:class:`OSError` if it cannot be read)."""
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._dir_fd)
        with open(fd, "rb") as file:
            return file.read()

    def remove(self, name: str) -> None:
        """Delete file ``name`` if it exists (not synced: a lost removal leaves an orphan that
        the next :meth:`scan` finds)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self._dir_fd)

    def remove_durably(self, names: list[str]) -> None:
        """Delete the files ``names`` (missing ones are ignored) and make that durable."""
        if not names:
            return
        for name in names:
            self.remove(name)
        self.sync()

    def scan(self) -> BlobScan:
        """List complete bundle files with their sizes, and leftover temporary files."""
        sizes: dict[str, int] = {}
        temporary: list[str] = []
        with os.scandir(self._path) as entries:
            for entry in entries:
                if entry.name.endswith(self._suffix) and entry.is_file(follow_symlinks=False):
                    sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
                elif entry.name.endswith(_TEMP_SUFFIX):
                    temporary.append(entry.name)
        return BlobScan(sizes=sizes, temporary=temporary)

    def close(self) -> None:
        """Release the directory handle."""
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
