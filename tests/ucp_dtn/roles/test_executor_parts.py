"""The executor's parts without worker processes: the job directory (never following the job's
symlinks), the results archive and named results, placing inputs, the journal, the fetcher's
retries."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
import trio

from tests.ucp_dtn.agent_support import start_node
from ucp_dtn.roles import Mailbox, RoleName, role_endpoint
from ucp_dtn.roles.executor import (
    DataFetcher,
    FetchError,
    JobDirectory,
    JobDirectoryError,
    JobJournal,
    JournalState,
    archive_entries,
    collect_named_results,
    queries_for,
    resolve_inputs,
    write_archive,
)
from ucp_dtn.ucp.job import DataRef, InlineData, JobInfo
from ucp_dtn.ucp.messages import DataItem, JobDispatch, JobResult, ResultStatus

from .executor_support import unzip

WASM = InlineData(b"\0asm\1\0\0\0")


def make_tree(root: Path, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> JobDirectory:
    tree = JobDirectory(root)
    tree.create(dirs=dirs, files=files)
    return tree


# -- job directory ------------------------------------------------------------------------------


def test_job_directory_layout_and_conflicts(tmp_path: Path) -> None:
    tree = JobDirectory(tmp_path / "job")
    tree.create(dirs=("out", "a/b"), files={"in/x.txt": b"x", "top": b"t"}, stdin=b"input")
    assert tree.stdin_path.read_bytes() == b"input"
    assert (tree.job_dir / "in" / "x.txt").read_bytes() == b"x"
    assert (tree.job_dir / "a" / "b").is_dir()
    assert tree.regular_files() == ["in/x.txt", "top"]
    assert (tree.kind("in"), tree.kind("top"), tree.kind("nope")) == ("dir", "file", None)
    # The staging files live beside the job directory, out of the module's view.
    assert tree.stdout_path.parent == tree.job_dir.parent

    with pytest.raises(JobDirectoryError, match="'top/x': 'top' is a file"):
        tree.create(files={"top": b"t", "top/x": b"x"})
    with pytest.raises(JobDirectoryError, match="'out' has two sources"):
        tree.create(dirs=("out",), files={"out": b"x"})
    with pytest.raises(JobDirectoryError, match=r"invalid job path '\.\./x'"):
        tree.create(files={"../x": b"x"})
    assert not (tmp_path / "x").exists()
    # A fresh create starts from nothing.
    tree.create(files={"only": b"1"})
    assert tree.regular_files() == ["only"]
    tree.remove()
    assert not tree.root.exists()


def test_job_directory_never_follows_the_jobs_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    tree = make_tree(tmp_path / "job", {"real.txt": b"real"})
    os.symlink(outside, tree.job_dir / "logs")
    os.symlink(outside / "secret", tree.job_dir / "link.txt")
    os.mkfifo(tree.job_dir / "fifo")

    assert tree.regular_files() == ["real.txt"]
    assert tree.kind("link.txt") is None and tree.kind("logs") is None
    with pytest.raises(FileNotFoundError):
        tree.read("link.txt")
    with pytest.raises(FileNotFoundError):
        tree.read("logs/secret")
    with pytest.raises(FileNotFoundError):
        tree.read("fifo")
    # Writing the captured stdout through a symlinked directory is refused.
    source = tmp_path / "captured"
    source.write_bytes(b"stdout")
    assert not tree.copy_in(source, "logs/out.log")
    assert not (outside / "out.log").exists()
    assert tree.copy_in(source, "own/out.log")
    assert tree.read("own/out.log") == b"stdout"
    # Nothing of the job's results picks up what the symlinks point at.
    assert archive_entries(tree, ["logs", "link.txt", "*"]) == ["own/out.log", "real.txt"]
    named = collect_named_results(tree, {"link.txt": "n/link", "logs": "n/logs"})
    assert named.data == ()
    assert named.problems == (
        "the job did not produce 'link.txt' (for 'n/link')",
        "the job did not produce 'logs' (for 'n/logs')",
    )
    tree.remove()
    assert (outside / "secret").read_bytes() == b"secret"


# -- results ------------------------------------------------------------------------------------


def test_archive_is_deterministic_and_selects_by_segment(tmp_path: Path) -> None:
    files = {"stdin": b"1", "stdin2": b"2", "out/a": b"a", "out/deep/b": b"b", "stdout": b"mine"}
    first = make_tree(tmp_path / "one", files)
    second = make_tree(tmp_path / "two", dict(reversed(list(files.items()))))
    stream = tmp_path / "captured-stdout"
    stream.write_bytes(b"captured")
    err = tmp_path / "captured-stderr"
    err.write_bytes(b"err")
    streams = {"stdout": stream, "stderr": err}

    entries = archive_entries(first, ["stdin", "out", "stdout"])
    assert entries == ["out/a", "out/deep/b", "stdin", "stdout"]
    # A pattern matches names longer than its prefix.
    assert archive_entries(first, ["stdin*"]) == ["stdin2"]
    size = write_archive(first, entries, tmp_path / "one.zip", streams=streams)
    write_archive(second, entries, tmp_path / "two.zip", streams=streams)
    data = (tmp_path / "one.zip").read_bytes()
    assert size == len(data) and data == (tmp_path / "two.zip").read_bytes()
    # The job's own "stdout" wins over the captured stream of the same name.
    assert unzip(data) == {
        "out/a": b"a",
        "out/deep/b": b"b",
        "stdin": b"1",
        "stdout": b"mine",
        "stderr": b"err",
    }


def test_named_results_files_directories_and_wildcards(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path / "job",
        {
            "r.txt": b"r",
            "dir/a": b"a",
            "dir/s/b": b"b",
            "out/x": b"x",
            "out/y z": b"bad",
            "deep/er/c": b"c",
        },
    )
    named = collect_named_results(
        tree,
        {
            "r.txt": "res/r",
            "dir": "res/dir",
            "deep/er": "res/deeper",
            "out/*": "res/out/*",
            "none/*": "res/none/*",
        },
    )
    data = dict(named.data)
    assert sorted(data) == ["res/deeper", "res/dir", "res/out/x", "res/r"]
    assert data["res/r"] == b"r" and data["res/out/x"] == b"x"
    # A directory's archive holds its files under the directory's own name (REC's layout).
    assert unzip(data["res/dir"]) == {"dir/a": b"a", "dir/s/b": b"b"}
    assert unzip(data["res/deeper"]) == {"er/c": b"c"}
    [problem] = named.problems
    assert problem.startswith("'out/y z' cannot be published")


# -- inputs -------------------------------------------------------------------------------------


def _items(*pairs: tuple[str, bytes]) -> dict[str, DataItem]:
    return {name: DataItem(name, data, written_at=1.0) for name, data in pairs}


def test_inputs_are_files_subkey_directories_and_wildcard_matches() -> None:
    job = JobInfo(
        job_id=uuid.uuid4(),
        wasm=DataRef("mod"),
        stdin=DataRef("carried"),
        job_data={"jd": InlineData(b"jd")},
        inputs={"f": "file", "d": "tree", "w/*": "pre*", "gone": "nothing", "i": "carried"},
    )
    inline = {"carried": b"inline"}
    assert queries_for(job, inline) == ["file", "mod", "nothing", "pre*", "tree"]
    fetched = {
        "mod": _items(("mod", b"wasm")),
        "file": _items(("file", b"F"), ("file/sub", b"ignored: the datum itself exists")),
        "tree": _items(("tree/a", b"A"), ("tree/b/c", b"C")),
        "pre*": _items(("pre1", b"1"), ("prefix/2", b"2")),
        "nothing": {},
    }
    resolved = resolve_inputs(job, inline, fetched)
    assert resolved.wasm == b"wasm" and resolved.stdin == b"inline"
    assert dict(resolved.files) == {
        "jd": b"jd",
        "d/a": b"A",
        "d/b/c": b"C",
        "f": b"F",
        "i": b"inline",
        "w/1": b"1",
        "w/fix/2": b"2",
    }
    assert resolved.missing == ("nothing",)
    assert resolved.problems == ()

    resolved = resolve_inputs(job, {}, {})
    assert resolved.wasm is None
    assert resolved.missing == ("carried", "file", "mod", "nothing", "pre*", "tree")


# -- journal ------------------------------------------------------------------------------------


def _dispatch(job_id: uuid.UUID) -> JobDispatch:
    return JobDispatch(
        job=JobInfo(job_id=job_id, wasm=WASM), broker="dtn://b/ucp/broker", client="dtn://c/"
    )


async def test_journal_dedupes_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = await JobJournal.open(path)
    first, second, third = (uuid.UUID(int=n) for n in (1, 2, 3))
    assert await journal.add(_dispatch(first), 10.0) is None
    assert await journal.add(_dispatch(second), 11.0) is None
    assert await journal.add(_dispatch(third), 12.0) is None
    duplicate = await journal.add(_dispatch(first), 13.0)
    assert duplicate is not None and duplicate.state is JournalState.RECEIVED
    assert duplicate.received_at == 10.0
    result = JobResult(job_id=second, executor="dtn://e/ucp/executor", status=ResultStatus.OK)
    await journal.finish(result, 20.0)
    await journal.finish(
        JobResult(job_id=third, executor="dtn://e/ucp/executor", status=ResultStatus.TRAP), 21.0
    )
    await journal.mark_sent(third)
    await journal.aclose()

    journal = await JobJournal.open(path)
    unfinished = await journal.unfinished()
    assert [(e.job_id, e.state) for e in unfinished] == [
        (first, JournalState.RECEIVED),
        (second, JournalState.FINISHED),
    ]
    assert unfinished[1].result == result and unfinished[1].dispatch == _dispatch(second)
    sent = await journal.get(third)
    assert sent is not None and sent.state is JournalState.SENT and sent.dispatch is None
    assert await journal.prune(finished_before=0.0, keep=10) == 0
    assert await journal.prune(finished_before=100.0, keep=10) == 1
    assert await journal.get(third) is None
    await journal.aclose()

    # A row that no longer decodes is dropped (and logged), not fatal.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jobs SET dispatch = ? WHERE job_id = ?", (b"junk", str(first)))
    journal = await JobJournal.open(path)
    assert [e.job_id for e in await journal.unfinished()] == [second]
    assert await journal.add(_dispatch(first), 30.0) is None
    await journal.aclose()


async def test_a_sent_mark_rides_with_the_next_write_and_a_lost_one_only_resends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    journal = await JobJournal.open(path)
    first, second, third = (uuid.UUID(int=n) for n in (1, 2, 3))
    for job_id in (first, second):
        await journal.add(_dispatch(job_id), 1.0)
        result = JobResult(job_id=job_id, executor="dtn://e/", status=ResultStatus.OK)
        await journal.finish(result, 2.0)
    commits = journal.commits
    journal.mark_sent_soon(first)
    entry = await journal.get(first)
    assert entry is not None and entry.state is JournalState.FINISHED  # not written yet
    # The next write (a new job's dispatch) carries the mark: one commit for both.
    assert await journal.add(_dispatch(third), 3.0) is None
    assert journal.commits == commits + 1 and journal.sent_unwritten == 0
    entry = await journal.get(first)
    assert entry is not None and entry.state is JournalState.SENT and entry.dispatch is None
    await journal.flush_sent()  # nothing waiting: no commit
    assert journal.commits == commits + 1

    # A mark that never got written (a crash: the connection dropped without aclose) leaves
    # the job FINISHED with its result, to be sent again after the restart.
    journal.mark_sent_soon(second)
    crashed = journal
    journal = await JobJournal.open(path)
    unfinished = await journal.unfinished()
    assert [(e.job_id, e.state) for e in unfinished] == [
        (second, JournalState.FINISHED),
        (third, JournalState.RECEIVED),
    ]
    assert unfinished[0].result is not None
    # A clean close writes the marks still waiting.
    journal.mark_sent_soon(second)
    await journal.aclose()
    await crashed._call(crashed._db.close)
    journal = await JobJournal.open(path)
    assert [e.job_id for e in await journal.unfinished()] == [third]
    await journal.aclose()


async def test_journal_prunes_all_but_the_newest(tmp_path: Path) -> None:
    journal = await JobJournal.open(None)
    for n in range(5):
        job_id = uuid.UUID(int=n + 1)
        await journal.add(_dispatch(job_id), float(n))
        await journal.finish(
            JobResult(job_id=job_id, executor="dtn://e/", status=ResultStatus.OK), float(n)
        )
        await journal.mark_sent(job_id)
    assert await journal.prune(finished_before=0.0, keep=2) == 3
    assert await journal.get(uuid.UUID(int=5)) is not None
    assert await journal.get(uuid.UUID(int=3)) is None
    await journal.aclose()


# -- fetcher ------------------------------------------------------------------------------------


async def test_fetch_without_answer_fails_after_its_attempts(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        lone = await start_node(nursery, "e", listen=())
        mailbox = Mailbox(lone.node, role_endpoint(lone.node.node_id, RoleName.EXECUTOR))
        await nursery.start(mailbox.run)
        fetcher = DataFetcher(mailbox, timeout_s=5.0, attempts=3)
        with pytest.raises(
            FetchError, match=r"could not fetch 'x': no reply from .* \(3 attempts\)"
        ):
            await fetcher.fetch_all("dtn://nowhere/ucp/broker", ["x"])
        assert fetcher.requests == 3
        nursery.cancel_scope.cancel()
