"""The job directory of one job at the executor: built before the run, read after it.

Theory of operation
-------------------
Each job gets a staging directory of its own, ``jobs/<job-uuid>/`` under the executor's work
directory::

    jobs/<job-uuid>/
        dir/          the job directory: the only directory the module sees (as ``/`` and ``.``)
        stdin         what the module reads on standard input (when it has any)
        stdout        captured standard output
        stderr        captured standard error
        results.zip   the results archive, once collected

Only ``dir/`` is preopened for the module, so its captured output, its stdin file and its
archive are out of its reach, and a job file called ``stdout`` cannot collide with them.

Before the run :meth:`JobDirectory.create` fills ``dir/`` with the directories, job data and
inputs of the job. After the run the module may have left anything in ``dir/``, symlinks to
``/etc`` included: every read and write of the host after that point walks the path one
component at a time with ``O_NOFOLLOW`` relative to an open directory descriptor, so it never
follows a symlink and never leaves ``dir/``. Only regular files are read; symlinks, FIFOs and
devices are ignored.

Everything here blocks (file I/O): the role calls it through ``trio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from ...private_files import DIRECTORY_MODE, FILE_MODE, make_private_directory, write_private
from ...ucp.names import JobPath

__all__ = ["JobDirectory", "JobDirectoryError"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the job made must not wait for a writer (only regular files are
# read, and for them the flag changes nothing).
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20


class JobDirectoryError(Exception):
    """A file or directory of the job cannot be placed (two sources for one path, a file
    where a directory must go...). The message names the path."""


class JobDirectory:
    """The staging directory of one job (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        """``jobs/<job-uuid>/``."""

    @property
    def job_dir(self) -> Path:
        """The directory the module sees."""
        return self.root / "dir"

    @property
    def stdin_path(self) -> Path:
        """Standard input of the module (outside its view)."""
        return self.root / "stdin"

    @property
    def stdout_path(self) -> Path:
        """Captured standard output (outside its view)."""
        return self.root / "stdout"

    @property
    def stderr_path(self) -> Path:
        """Captured standard error (outside its view)."""
        return self.root / "stderr"

    @property
    def archive_path(self) -> Path:
        """The results archive (outside its view)."""
        return self.root / "results.zip"

    # -- before the run ---------------------------------------------------------------------

    def create(
        self,
        *,
        dirs: Iterable[JobPath] = (),
        files: Mapping[JobPath, bytes] | Iterable[tuple[JobPath, bytes]] = (),
        stdin: bytes | None = None,
    ) -> None:
        """Start afresh (whatever an earlier attempt left is removed) and fill the job
        directory: ``dirs`` first, then ``files`` (parents are created as needed). Raises
        :class:`JobDirectoryError` naming the path when a file cannot go where it should."""
        self.remove()
        make_private_directory(self.job_dir)  # (job inputs and outputs: for our user only)
        if stdin is not None:
            write_private(self.stdin_path, stdin)
        items = files.items() if isinstance(files, Mapping) else files
        with _open_root(self.job_dir) as root_fd:
            for path in dirs:
                _close(_make_dirs(root_fd, _parts(path), path))
            for path, data in items:
                parts = _parts(path)
                parent_fd = _make_dirs(root_fd, parts[:-1], path)
                try:
                    _write_new(parent_fd, parts[-1], data, path)
                finally:
                    _close(parent_fd)

    def remove(self) -> None:
        """Delete the staging directory and everything in it (never following symlinks)."""
        if self.root.is_symlink():
            self.root.unlink()
        elif self.root.exists():
            shutil.rmtree(self.root)

    # -- after the run ------------------------------------------------------------------------

    def regular_files(self) -> list[JobPath]:
        """Every regular file below the job directory, as sorted job paths (symlinks and
        other special files are left out, symlinked directories are not entered)."""
        found: list[JobPath] = []
        try:
            with _open_root(self.job_dir) as root_fd:
                _walk(root_fd, "", found)
        except FileNotFoundError:
            return []
        return sorted(found)

    def kind(self, path: JobPath) -> Literal["file", "dir"] | None:
        """Whether ``path`` is a regular file, a directory or neither (missing, a symlink...)."""
        parts = _parts(path)
        try:
            with _open_root(self.job_dir) as root_fd:
                parent_fd = _open_dirs(root_fd, parts[:-1])
                try:
                    info = os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False)
                finally:
                    _close(parent_fd)
        except OSError:
            return None
        if stat.S_ISREG(info.st_mode):
            return "file"
        if stat.S_ISDIR(info.st_mode):
            return "dir"
        return None

    @contextlib.contextmanager
    def open_file(self, path: JobPath) -> Iterator[tuple[BinaryIO, int]]:
        """The regular file at ``path`` opened for reading, and its size. Raises
        :class:`FileNotFoundError` if there is no regular file there (without following any
        symlink)."""
        parts = _parts(path)
        with _open_root(self.job_dir) as root_fd:
            try:
                parent_fd = _open_dirs(root_fd, parts[:-1])
                try:
                    fd = os.open(parts[-1], _READ_FLAGS, dir_fd=parent_fd)
                finally:
                    _close(parent_fd)
            except OSError as exc:
                raise FileNotFoundError(f"no regular file {path!r} in the job directory") from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise FileNotFoundError(f"{path!r} is not a regular file")
        os.set_blocking(fd, True)
        with open(fd, "rb") as file:
            yield file, info.st_size

    def read(self, path: JobPath) -> bytes:
        """The content of the regular file at ``path`` (see :meth:`open_file`)."""
        with self.open_file(path) as (file, _size):
            return file.read()

    def copy_in(self, source: Path, path: JobPath) -> bool:
        """Copy the host file ``source`` to ``path`` in the job directory (REC's
        ``stdout_file``), creating parent directories; an existing regular file there is
        replaced. False (nothing written) if the path is taken by something else or a parent
        is not a directory."""
        parts = _parts(path)
        try:
            with _open_root(self.job_dir) as root_fd:
                parent_fd = _make_dirs(root_fd, parts[:-1], path)
                try:
                    with contextlib.suppress(FileNotFoundError):
                        info = os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False)
                        if not stat.S_ISREG(info.st_mode):
                            return False
                        os.unlink(parts[-1], dir_fd=parent_fd)
                    fd = os.open(parts[-1], _CREATE_FLAGS, FILE_MODE, dir_fd=parent_fd)
                    with open(fd, "wb") as target, open(source, "rb") as origin:
                        shutil.copyfileobj(origin, target, _COPY_CHUNK)
                finally:
                    _close(parent_fd)
        except (OSError, JobDirectoryError):
            return False
        return True


# -- descriptor-relative path walking ---------------------------------------------------------


def _parts(path: JobPath) -> list[str]:
    # Job paths are validated (relative, no empty, '.' or '..' segment) before they get here;
    # this is the last line of defence if one was not.
    parts = path.split("/")
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise JobDirectoryError(f"invalid job path {path!r}")
    return parts


@contextlib.contextmanager
def _open_root(job_dir: Path) -> Iterator[int]:
    fd = os.open(job_dir, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _close(fd: int) -> None:
    os.close(fd)


def _open_dirs(root_fd: int, parts: list[str]) -> int:
    """A new descriptor of the directory ``parts`` below ``root_fd``, following no symlink."""
    fd = os.dup(root_fd)
    for part in parts:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _make_dirs(root_fd: int, parts: list[str], path: JobPath) -> int:
    """Like :func:`_open_dirs`, creating missing directories; :class:`JobDirectoryError` if
    a component is a file (or a symlink)."""
    fd = os.dup(root_fd)
    done: list[str] = []
    for part in parts:
        done.append(part)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, DIRECTORY_MODE, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            where = "/".join(done)
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise JobDirectoryError(
                    f"cannot create {path!r}: {where!r} is a file, not a directory"
                ) from None
            raise JobDirectoryError(f"cannot create {path!r}: {exc.strerror}") from None
        os.close(fd)
        fd = child
    return fd


def _write_new(parent_fd: int, name: str, data: bytes, path: JobPath) -> None:
    try:
        fd = os.open(name, _CREATE_FLAGS, FILE_MODE, dir_fd=parent_fd)
    except FileExistsError:
        raise JobDirectoryError(
            f"{path!r} has two sources (a file or directory is already there)"
        ) from None
    except OSError as exc:
        raise JobDirectoryError(f"cannot create {path!r}: {exc.strerror}") from None
    with open(fd, "wb") as file:
        file.write(data)


def _walk(dir_fd: int, prefix: str, found: list[JobPath]) -> None:
    with os.scandir(dir_fd) as entries:
        listing = [(entry.name, entry.is_dir(follow_symlinks=False), entry) for entry in entries]
    for name, is_dir, entry in listing:
        path = prefix + name
        if is_dir:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                _walk(child, path + "/", found)
            finally:
                os.close(child)
        elif entry.is_file(follow_symlinks=False):
            found.append(path)
