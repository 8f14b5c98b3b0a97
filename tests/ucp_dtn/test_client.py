"""The client's parts that need no network: home, journal, archives, page tokens, settings,
and the ``ucp`` client subcommands' command-line errors."""

from __future__ import annotations

import io
import stat
import uuid
import zipfile
from pathlib import Path

import pytest
import trio

from ucp_dtn.cli import main
from ucp_dtn.client import (
    ClientError,
    ClientHome,
    ClientJournal,
    ClientSettings,
    ClientUsageError,
    HomeError,
    JobEntry,
    decode_page_token,
    default_home,
    encode_page_token,
    result_summary,
    unpack_archive,
)
from ucp_dtn.ucp import JobResult, JobStatus, ResultStatus

IDS = [uuid.UUID(int=n) for n in (0x1234_5678 << 96, 0x1234_9999 << 96, 0xABCD << 112)]


# -- home --------------------------------------------------------------------------------------


def test_the_home_gets_an_identity_once(tmp_path: Path) -> None:
    with ClientHome.open(tmp_path / "home") as home:
        node_id = home.node_id
        assert node_id.startswith("dtn://client-") and node_id.endswith("/")
        assert home.store_path == tmp_path / "home" / "store"
    with ClientHome.open(tmp_path / "home") as again:
        assert again.node_id == node_id
    with ClientHome.open(tmp_path / "other") as other:
        assert other.node_id != node_id


def test_one_process_at_a_time_holds_a_home(tmp_path: Path) -> None:
    with ClientHome.open(tmp_path), pytest.raises(HomeError, match="another program is using"):
        ClientHome.open(tmp_path, lock_timeout_s=0.0)
    ClientHome.open(tmp_path, lock_timeout_s=0.0).close()


def test_a_bad_identity_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "identity").write_text("dtn://not-a-node/ucp\n")
    with pytest.raises(HomeError, match="is not a node ID"):
        ClientHome.open(tmp_path)


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UCP_HOME", str(tmp_path / "explicit"))
    assert default_home() == tmp_path / "explicit"
    monkeypatch.delenv("UCP_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_home() == tmp_path / "data" / "ucp"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_home() == Path.home() / ".local" / "share" / "ucp"


# -- journal ------------------------------------------------------------------------------------


def result(
    job_id: uuid.UUID, status: ResultStatus | int = ResultStatus.OK, **fields: object
) -> JobResult:
    return JobResult(job_id=job_id, executor="dtn://e/ucp/executor", status=status, **fields)  # type: ignore[arg-type]


async def test_journal_finds_jobs_by_name_uuid_and_prefix() -> None:
    journal = await ClientJournal.open(None)
    await journal.add_jobs("a.toml", [("one", IDS[0]), ("two", IDS[1])], broker=None)
    await journal.add_jobs("b.toml", [("one", IDS[2])], broker="dtn://b/ucp/broker")
    assert [(e.name, e.plan) for e in await journal.jobs()] == [
        ("one", "a.toml"),
        ("two", "a.toml"),
        ("one", "b.toml"),
    ]
    assert (await journal.find("one")).job_id == IDS[2]  # the latest of that name
    assert (await journal.find(str(IDS[1]))).name == "two"
    assert (await journal.find("abcd")).job_id == IDS[2]
    assert (await journal.find(IDS[0].hex[:10])).job_id == IDS[0]
    with pytest.raises(ClientUsageError, match="fits 2 jobs"):
        await journal.find("1234")
    with pytest.raises(ClientUsageError, match="no job called 'three'"):
        await journal.find("three")
    with pytest.raises(ClientUsageError, match="no job called 'ab'"):
        await journal.find("ab")  # too short to be a prefix
    await journal.aclose()


async def test_journal_keeps_the_newest_state_and_the_first_result() -> None:
    journal = await ClientJournal.open(None)
    await journal.add_jobs("p.toml", [("job", IDS[0])], broker=None)
    assert await journal.update_state(IDS[1], JobStatus.RUNNING, 5.0) is None  # unknown job
    running = await journal.update_state(IDS[0], JobStatus.RUNNING, 5.0, executor="dtn://e/")
    assert running is not None and running.state == JobStatus.RUNNING
    assert await journal.update_state(IDS[0], JobStatus.QUEUED, 4.0) is None  # older
    assert await journal.update_state(IDS[0], JobStatus.RUNNING, 5.0, executor="dtn://e/") is None
    done = await journal.update_state(IDS[0], JobStatus.DONE, 6.0, detail="done")
    assert done is not None and done.final and done.executor == "dtn://e/"
    assert await journal.update_state(IDS[0], JobStatus.RUNNING, 7.0) is None  # final sticks
    assert (await journal.accepted(IDS[0], "dtn://b/ucp/broker")) is not None
    first = await journal.store_result(result(IDS[0], exit_code=0), "delivered")
    assert first is not None and first.settled and first.succeeded
    assert await journal.store_result(result(IDS[0], ResultStatus.TRAP), "datastore") is None
    entry = await journal.get(IDS[0])
    assert entry is not None and entry.result is not None and entry.result.ok
    assert entry.result_from == "delivered" and entry.broker == "dtn://b/ucp/broker"
    await journal.mark_collected(IDS[0], "/tmp/out/job")
    entry = await journal.get(IDS[0])
    assert entry is not None and entry.collected_to == "/tmp/out/job"
    await journal.aclose()


async def test_journal_outbox_settings_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await ClientJournal.open(path)
    await journal.queue([(b"first", True, 60.0), (b"second", False, 5.0)])
    await journal.remember("broker", "dtn://b/ucp/broker")
    await journal.remember("broker", "dtn://c/ucp/broker")
    await journal.add_jobs("p.toml", [("job", IDS[0])], broker=None)
    await journal.set_broker([IDS[0]], "dtn://c/ucp/broker")
    await journal.aclose()

    journal = await ClientJournal.open(path)
    items = await journal.outbox()
    assert [(i.payload, i.custody, i.lifetime_s) for i in items] == [
        (b"first", True, 60.0),
        (b"second", False, 5.0),
    ]
    await journal.remove_outbox(items[0].sequence)
    assert [i.payload for i in await journal.outbox()] == [b"second"]
    assert await journal.setting("broker") == "dtn://c/ucp/broker"
    assert await journal.setting("nothing") is None
    entry = await journal.get(IDS[0])
    assert entry is not None and entry.broker == "dtn://c/ucp/broker"
    await journal.aclose()


@pytest.mark.parametrize(
    ("entry", "summary"),
    [
        (JobEntry(IDS[0], "j", "p", 0.0), "not heard of at the broker yet"),
        (JobEntry(IDS[0], "j", "p", 0.0, state=JobStatus.QUEUED, detail="no executor"),
         "queued: no executor"),
        (JobEntry(IDS[0], "j", "p", 0.0, result=result(IDS[0], exit_code=0)), "done, exit code 0"),
        (JobEntry(IDS[0], "j", "p", 0.0,
                  result=result(IDS[0], ResultStatus.EXIT, exit_code=3, message="exited with 3")),
         "failed (exit), exit code 3, exited with 3"),
        (JobEntry(IDS[0], "j", "p", 0.0, result=result(IDS[0], 99)), "failed (status 99)"),
    ],
)  # fmt: skip
def test_result_summary(entry: JobEntry, summary: str) -> None:
    assert result_summary(entry) == summary


# -- archives, tokens, settings -----------------------------------------------------------------


def zip_of(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_unpack_archive_writes_job_files_and_skips_anything_else(tmp_path: Path) -> None:
    archive = zip_of(
        {
            "stdout": b"out",
            "results/deep/file.txt": b"deep",
            "../escape.txt": b"no",
            "/absolute.txt": b"no",
            "a\\b.txt": b"no",
        },
        link="link",
    )
    written, skipped = unpack_archive(archive, tmp_path / "job")
    assert sorted(written) == ["results/deep/file.txt", "stdout"]
    assert (tmp_path / "job" / "results" / "deep" / "file.txt").read_bytes() == b"deep"
    assert len(skipped) == 4 and any(s.startswith("link (not a regular") for s in skipped)
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["results", "stdout"]
    # Unpacking again gives the same files.
    assert unpack_archive(archive, tmp_path / "job")[0] == written
    with pytest.raises(ClientError, match="not a zip archive"):
        unpack_archive(b"not a zip", tmp_path / "other")


def test_page_tokens_round_trip_and_bad_ones_are_usage_errors() -> None:
    cursors = {"dtn://d1/ucp/datastore": "c1.abc", "dtn://d2/ucp/datastore": "x"}
    assert decode_page_token(encode_page_token(cursors)) == cursors
    for bad in ("%%%", encode_page_token({}).replace("e", "!"), "WzFd", "eyJhIjoxfQ"):
        with pytest.raises(ClientUsageError, match="not a page token"):
            decode_page_token(bad)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"wait_s": -1.0}, "wait_s must be a non-negative number"),
        ({"settle_s": float("nan")}, "settle_s must be"),
        ({"broker": "not an eid"}, "--broker 'not an eid'"),
    ],
)
def test_client_settings_are_checked(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ClientUsageError, match=message):
        ClientSettings(**fields)  # type: ignore[arg-type]


# -- command-line errors -----------------------------------------------------------------------


async def ucp(*argv: str) -> int:
    with trio.fail_after(30):
        status: int = await trio.to_thread.run_sync(main, list(argv))
    return status


async def test_client_commands_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCP_VIA", raising=False)
    monkeypatch.delenv("UCP_BROKER", raising=False)
    home = ["--home", str(tmp_path / "home")]
    nowhere = ["--via", "tcp://127.0.0.1:1", "--wait", "0"]

    assert await ucp("status", *home) == 2
    assert capsys.readouterr().err == (
        "ucp status: error: no way to reach a broker: give --via tcp://HOST:PORT or --discover\n"
    )
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.x]\nwasm = "x.wasm"\nlimits = { time = "soon" }\n')
    assert await ucp("submit", str(plan), *home, *nowhere) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ucp submit: error: {plan}: job 'x': field")

    assert await ucp("collect", "nosuchjob", *home, *nowhere) == 2
    assert "no job called 'nosuchjob'" in capsys.readouterr().err
    # The --via just given is remembered: no flag needed now.
    assert await ucp("status", "nosuchjob", *home, "--wait", "0") == 2
    assert "no job called 'nosuchjob'" in capsys.readouterr().err
    assert await ucp("data", "rm", "a", "--job", str(IDS[0]), *home) == 2
    assert "give a NAME or --job UUID (not both)" in capsys.readouterr().err
    assert await ucp("data", "ls", "--page", "garbage!", *home, *nowhere) == 2
    assert "not a page token" in capsys.readouterr().err
    assert await ucp("data", "get", "bad//name", *home, *nowhere) == 2
    assert "query" in capsys.readouterr().err
    (tmp_path / "datum").write_bytes(b"x")
    assert await ucp("data", "put", "a", str(tmp_path / "datum"), "--replicas", "0", *home) == 2
    assert "replicas must be a whole number from 1 to 16, got '0'" in capsys.readouterr().err
    assert await ucp("data", "ls", "--replicas", "--page", "x", *home) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert await ucp("status", *home, "--wait", "0") == 1
    captured = capsys.readouterr()
    assert captured.out == "no jobs submitted from this client\n"
    assert captured.err.startswith("ucp status: error: no broker reachable within 0 s (via ")
    assert captured.err.endswith("failed): showing the states last heard\n")
    assert captured.err.count("\n") == 1
    assert await ucp("submit", str(plan), "--wait", "-1s", *home) == 2
    assert "--wait" in capsys.readouterr().err
