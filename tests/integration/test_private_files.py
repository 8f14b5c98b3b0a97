"""Issue #12's hardening, end to end with a real daemon and the real ``ucp`` command: nothing
the daemon or the client writes is readable by others (also what an older version left), and
a results archive over the client's limit is refused whole and stays collectable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemons import Network
from .ucp_support import CAT_WAT, Client, explain, start_roles, write_wasm

PLAN = """
[jobs.one]
wasm = "cat.wasm"
args = ["out/a.txt", "in.txt"]
files = { "in.txt" = { text = "alpha\\n" } }
dirs = ["out"]
results = ["out/a.txt"]
"""


def readable_by_others(*roots: Path) -> list[str]:
    """Every file and directory under ``roots`` with a group or other permission."""
    found = []
    for root in roots:
        for path in [root, *root.rglob("*")]:
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                found.append(f"{stat.S_IMODE(mode):o} {path}")
    return found


@pytest.fixture
def wide_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most users have: new files 0644 unless we say otherwise
    yield
    os.umask(old)


async def test_files_are_private_and_the_archive_cap_holds(
    network: Network, tmp_path: Path, wide_umask: None
) -> None:
    # A work directory an older version left readable by others (a daemon upgraded in place).
    workdir = network.workdir("hub")
    (workdir / "spool").mkdir(parents=True, mode=0o755)
    (workdir / "spool" / "old.meta").write_text("{}")
    os.chmod(workdir, 0o755)
    (workdir / "notes.txt").write_text("not the daemon's")  # left alone
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    (tmp_path / "plan.toml").write_text(PLAN)
    client = Client(tmp_path / "home", hub)
    await client.ok("submit", str(tmp_path / "plan.toml"))
    await client.wait_for_state("one", ["done"])

    # The archive (a.txt, stdout, stderr: 14 bytes) is over a 10-byte limit: refused whole.
    out = tmp_path / "results"
    refused = await client.ucp("collect", "one", "-o", str(out), "--collect-max-size", "10")
    assert refused.returncode == 1, explain(refused)
    assert refused.stderr.decode().startswith("ucp collect: error: one (")
    assert "over the limit of 10 bytes (--collect-max-size)" in refused.stderr.decode()
    assert not out.exists() or list(out.iterdir()) == []
    # It stays collectable: with the default limit it is unpacked, and only now collected.
    done = await client.ucp("collect", "-o", str(out))
    assert done.returncode == 0, explain(done)
    assert (out / "one" / "out" / "a.txt").read_text() == "alpha\n"
    assert (out / "one" / "stdout").read_text() == "cat: ok\n"

    home = tmp_path / "home"
    assert {"identity", "lock", "journal.db", "store"} <= {p.name for p in home.iterdir()}
    assert (workdir / "roles" / "executor").is_dir()
    leaks = readable_by_others(workdir, home, out)
    assert leaks == [f"644 {workdir / 'notes.txt'}"], leaks
