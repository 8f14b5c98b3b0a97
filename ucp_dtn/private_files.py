"""Files only their owner can read: every file a daemon or a client writes — stores, journals,
spool files, identities, locks, logs, sockets, job directories, collected results — is mode
0600 and every directory 0700, whatever the umask.

Files are created with those modes (:func:`open_private`, :func:`write_private`,
:func:`make_private_directory`), and what an older version left with wider modes is tightened
when a daemon or a client opens its directory (:func:`tighten_tree`): group and other lose
every permission, the owner keeps theirs.

Only the standard library is imported here, so the client's light modules may use it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

__all__ = [
    "DIRECTORY_MODE",
    "FILE_MODE",
    "make_private_directory",
    "open_private",
    "tighten",
    "tighten_tree",
    "write_private",
]

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
"""Permissions of the files we create: the owner reads and writes, nobody else anything."""
DIRECTORY_MODE = 0o700
"""Permissions of the directories we create: the owner only."""
_OTHERS = 0o077
"""The permission bits of group and other."""


def make_private_directory(path: Path) -> None:
    """Create ``path`` and its missing parents with mode :data:`DIRECTORY_MODE`; an existing
    ``path`` is restricted to that mode (it is ours: it holds a database or a store). Blocking;
    raises :class:`OSError`."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # created meanwhile by someone else
            directory.mkdir(DIRECTORY_MODE)
    status = path.stat()
    if not stat.S_ISDIR(status.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    if stat.S_IMODE(status.st_mode) != DIRECTORY_MODE:
        os.chmod(path, DIRECTORY_MODE)


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """Open ``path`` with ``flags`` (plus ``O_CREAT`` and ``O_CLOEXEC``), created with mode
    :data:`FILE_MODE`; an existing file with wider permissions is tightened. Returns the file
    descriptor. Blocking; raises :class:`OSError`."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & _OTHERS:
            os.fchmod(fd, mode & ~_OTHERS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to the file ``path`` (replacing its content) with mode
    :data:`FILE_MODE`. Blocking; raises :class:`OSError`."""
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def tighten(path: Path) -> bool:
    """Take every permission of group and other from ``path`` (not following a symbolic link);
    whether it had any. A missing ``path`` is left alone."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return False
    mode = stat.S_IMODE(status.st_mode)
    if not mode & _OTHERS or stat.S_ISLNK(status.st_mode):
        return False
    os.chmod(path, mode & ~_OTHERS)
    return True


def tighten_tree(root: Path) -> int:
    """:func:`tighten` ``root`` and everything under it (links are not followed); the number
    of entries tightened, logged once. For directories an older version may have left readable
    by others (a daemon upgraded in place). Blocking; raises :class:`OSError` for ``root``."""
    tightened = int(tighten(root))
    for directory, subdirectories, files in os.walk(root):
        for name in (*subdirectories, *files):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                tightened += tighten(Path(directory, name))
    if tightened:
        logger.warning(
            "%s: %d files and directories were readable by others; now only by their owner",
            root,
            tightened,
        )
    return tightened
