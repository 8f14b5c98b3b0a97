"""Files only their owner can read: created so whatever the umask, and what an older version
left wider is tightened when the daemon or the client opens its directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ucp_dtn.client.home import ClientHome
from ucp_dtn.daemon.bpnode import _workdir_lock
from ucp_dtn.private_files import (
    make_private_directory,
    open_private,
    tighten_tree,
    write_private,
)
from ucp_dtn.roles.executor.jobdir import JobDirectory
from ucp_dtn.ucp.names import validate_path


@pytest.fixture(autouse=True)
def wide_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def wide(*paths: Path) -> None:
    for path in paths:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def test_created_private_whatever_the_umask(tmp_path: Path) -> None:
    make_private_directory(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    write_private(tmp_path / "a" / "f", b"x")
    assert mode(tmp_path / "a" / "f") == 0o600
    (tmp_path / "old").write_bytes(b"old")
    wide(tmp_path / "old")
    os.close(open_private(tmp_path / "old"))
    assert mode(tmp_path / "old") == 0o600 and (tmp_path / "old").read_bytes() == b"old"


def test_tighten_tree_keeps_the_owner_and_follows_no_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("not ours")
    wide(outside)
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("x")
    os.chmod(root / "d" / "f", 0o754)
    (root / "link").symlink_to(outside)
    assert tighten_tree(root) == 3
    assert [mode(root), mode(root / "d"), mode(root / "d" / "f")] == [0o700, 0o700, 0o700]
    assert mode(outside) == 0o644
    assert tighten_tree(root) == 0
    assert tighten_tree(tmp_path / "missing") == 0


def test_the_daemon_tightens_its_own_files_only(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    for directory in ("store/files", "spool", "roles/executor/jobs/j", "roles/executor/modules"):
        (workdir / directory).mkdir(parents=True)
    for file in ("store/bundles.sqlite3", "spool/x.meta", "roles/executor/jobs/j/out", "mine"):
        (workdir / file).write_text("x")
    wide(workdir, *workdir.rglob("*"))
    with _workdir_lock(workdir, [workdir / "store", workdir / "roles"]):
        assert mode(workdir / "bpnode.lock") == 0o600
    others = [p for p in [workdir, *workdir.rglob("*")] if mode(p) & 0o077]
    assert others == [workdir / "mine"]


def test_the_client_home_is_tightened_when_opened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ClientHome.open(home):
        pass
    assert mode(home) == 0o700
    assert mode(home / "identity") == mode(home / "lock") == 0o600
    (home / "spool").mkdir()
    (home / "spool" / "x.meta").write_text("{}")
    (home / "agent.log").write_text("")
    wide(home, home / "identity", home / "lock", home / "spool", home / "spool" / "x.meta")
    wide(home / "agent.log")
    with ClientHome.open(home) as opened:
        assert opened.node_id.startswith("dtn://client-")
    assert [p.name for p in [home, *home.rglob("*")] if mode(p) & 0o077] == []


def test_job_directories_are_private(tmp_path: Path) -> None:
    tree = JobDirectory(tmp_path / "jobs" / "j1")
    tree.create(
        dirs=[validate_path("out/deep", "dirs")],
        files={validate_path("in/a.txt", "files"): b"input"},
        stdin=b"stdin",
    )
    assert [
        p for p in [tmp_path / "jobs", *(tmp_path / "jobs").rglob("*")] if mode(p) & 0o077
    ] == []
