"""The client home: the directory a ``ucp`` client keeps its identity and state in.

Layout (created on first use)::

    <home>/identity     the client's node ID, dtn://client-<random>/, chosen once
    <home>/store/       the client's own bundle store (SqliteBundleStore): what it sends waits
                        here until a broker is reachable, what arrives for it waits here until
                        a command reads it
    <home>/journal.db   the journal of submitted jobs (ClientJournal)
    <home>/lock         held by the one process using the home at a time: the client agent
                        (agent.sock, agent.log) or a program with its own ClientSession
    <home>/agent.sock   where ``ucp`` commands reach the client agent (ucp_dtn.client.agent)
    <home>/agent.log    what the client agent logs
    <home>/spool/       large bundles being received
    <home>/trust.pem    in a trusted mesh, the client's trust file (``ucp trust use``): its key
                        and certificate, whose node ID replaces the one in ``identity``

Everything in it is for the user only (files 0600, directories 0700, see
:mod:`ucp_dtn.private_files`); what an older version left readable by others is tightened when
the home is opened.

The home is ``--home DIR``, else ``$UCP_HOME``, else ``$XDG_DATA_HOME/ucp``, else
``~/.local/share/ucp``. Blocking file work: call :meth:`ClientHome.open` through
``trio.to_thread`` (it may wait for the lock).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..agent import ConfigError, parse_node_id
from ..private_files import make_private_directory, open_private, tighten, tighten_tree
from .errors import HomeError
from .settings import HOME_ENV, default_home

__all__ = ["HOME_ENV", "ClientHome", "default_home"]

logger = logging.getLogger(__name__)

IDENTITY_FILE = "identity"
STORE_DIR = "store"
JOURNAL_FILE = "journal.db"
LOCK_FILE = "lock"
SPOOL_DIR = "spool"
TRUST_FILE = "trust.pem"


def new_node_id() -> str:
    """A fresh client node ID, ``dtn://client-<12 hex digits>/``."""
    return f"dtn://client-{secrets.token_hex(6)}/"


@dataclass
class ClientHome:
    """An open client home (holding its lock until :meth:`close`)."""

    path: Path
    """The home directory: ``--home``, else :func:`default_home`."""
    node_id: str
    """The client's node ID (from ``identity``)."""
    _lock: IO[str] | None = field(default=None, repr=False)

    @property
    def store_path(self) -> Path:
        """The bundle store's directory."""
        return self.path / STORE_DIR

    @property
    def trust_path(self) -> Path:
        """Where ``ucp trust use`` puts the client's trust file."""
        return self.path / TRUST_FILE

    @property
    def journal_path(self) -> Path:
        """The job journal's sqlite file."""
        return self.path / JOURNAL_FILE

    @classmethod
    def open(cls, path: Path | None = None, *, lock_timeout_s: float = 10.0) -> ClientHome:
        """Open (creating it if needed) the home at ``path`` (default: :func:`default_home`),
        waiting up to ``lock_timeout_s`` for another ``ucp`` command to release it."""
        home = default_home() if path is None else path.expanduser()
        try:
            make_private_directory(home)
            lock = os.fdopen(open_private(home / LOCK_FILE, os.O_RDWR | os.O_APPEND), "a+")
            _tighten(home)
        except OSError as exc:
            raise HomeError(f"cannot use the client home {home}: {exc.strerror or exc}") from None
        try:
            _acquire(lock, home, lock_timeout_s)
            node_id = _identity(home)
        except BaseException:
            lock.close()
            raise
        return cls(home, node_id, lock)

    def close(self) -> None:
        """Release the lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ClientHome:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_OWN_FILES = (
    IDENTITY_FILE,
    LOCK_FILE,
    JOURNAL_FILE,
    JOURNAL_FILE + "-wal",
    JOURNAL_FILE + "-shm",
    "agent.sock",
    "agent.log",
    "agent.log.1",
    "agent.lock",
    STORE_DIR,
    STORE_DIR + "/files",
)
"""What the home holds (the store's files and databases are the store's own care)."""


def _tighten(home: Path) -> None:
    """Take group and other permissions from what an older version left in ``home``."""
    for name in _OWN_FILES:
        tighten(home / name)
    tighten_tree(home / SPOOL_DIR)


def _acquire(lock: IO[str], home: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise HomeError(f"cannot lock the client home {home}: {exc.strerror}") from None
        if time.monotonic() >= deadline:
            raise HomeError(f"another program is using the client home {home}")
        time.sleep(0.1)


def _identity(home: Path) -> str:
    """Read the node ID, choosing and writing one on first use."""
    path = home / IDENTITY_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = new_node_id()
        temporary = path.with_suffix(".tmp")
        try:
            with os.fdopen(open_private(temporary, os.O_WRONLY | os.O_TRUNC), "w") as stream:
                stream.write(text + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            raise HomeError(f"cannot write {path}: {exc.strerror or exc}") from None
        logger.info("new client identity %s in %s", text, home)
        return text
    except (OSError, UnicodeDecodeError) as exc:
        raise HomeError(f"cannot read {path}: {exc}") from None
    try:
        parse_node_id(text)
    except ConfigError as exc:
        raise HomeError(f"{path}: {exc}") from None
    return text
