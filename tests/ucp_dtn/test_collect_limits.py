"""Unpacking a results archive trusts nothing: a bomb (a small archive of a huge run of zeros)
or a swarm of files is refused before a byte is written, within limits the user can raise;
paths leading outside the target are skipped; what is written is for its owner only."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import uuid
import warnings
import zipfile
from pathlib import Path

import pytest

from ucp_dtn.client import ClientSession, CollectState, collect_results
from ucp_dtn.client import collect as collect
from ucp_dtn.client.collect import ArchiveLimitError, unpack_archive
from ucp_dtn.client.errors import ClientUsageError
from ucp_dtn.client.settings import DEFAULT_COLLECT_MAX_BYTES, ClientSettings
from ucp_dtn.ucp import JobResult


def zip_of(members: dict[str, bytes] | list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    pairs = members.items() if isinstance(members, dict) else members
    with (
        warnings.catch_warnings(),  # (zipfile warns of a name written twice)
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore")
        for name, data in pairs:
            archive.writestr(name, data)
    return buffer.getvalue()


def zeros_archive(size: int) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("zeros", "w", force_zip64=True) as sink,
    ):
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            sink.write(chunk)
    return buffer.getvalue()


def leftovers(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


def test_a_512_mib_run_of_zeros_is_refused_by_default(tmp_path: Path) -> None:
    archive = zeros_archive(512 << 20)
    assert len(archive) < 4 << 20  # what travelled was small
    with pytest.raises(ArchiveLimitError) as caught:
        unpack_archive(archive, tmp_path / "out" / "job")
    message = str(caught.value)
    assert "512MiB, over the limit of 256MiB (--collect-max-size)" in message
    assert "collect again with a higher limit" in message and "\n" not in message
    assert leftovers(tmp_path) == []  # refused before anything was written


def test_the_size_limit_counts_every_file_and_a_higher_one_unpacks(tmp_path: Path) -> None:
    archive = zip_of({"a": b"x" * 600, "b/c": b"y" * 600})
    with pytest.raises(ArchiveLimitError, match=r"1200 bytes, over the limit of 1000 bytes"):
        unpack_archive(archive, tmp_path / "job", max_bytes=1000)
    assert leftovers(tmp_path) == []
    written, skipped = unpack_archive(archive, tmp_path / "job", max_bytes=1200)
    assert sorted(written) == ["a", "b/c"] and skipped == []
    assert (tmp_path / "job" / "b" / "c").read_bytes() == b"y" * 600


def test_the_file_count_is_limited(tmp_path: Path) -> None:
    archive = zip_of({f"f{i}": b"" for i in range(11)})
    with pytest.raises(
        ArchiveLimitError,
        match=r"11 files, over the limit of 10 files "
        r"\(--collect-max-files\)",
    ):
        unpack_archive(archive, tmp_path / "job", max_files=10)
    assert leftovers(tmp_path) == []
    assert len(unpack_archive(archive, tmp_path / "job", max_files=11)[0]) == 11


def test_a_link_already_in_the_target_does_not_lead_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "job"
    target.mkdir()
    (target / "sub").symlink_to(outside)
    (target / "file").symlink_to(outside / "file")
    written, skipped = unpack_archive(zip_of({"sub/x": b"1", "file": b"2", "ok": b"3"}), target)
    assert written == ["ok"]
    assert sorted(skipped) == ["file (outside the directory)", "sub/x (outside the directory)"]
    assert leftovers(outside) == []


def test_what_is_unpacked_is_for_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        unpack_archive(zip_of({"results/deep/f": b"1", "stdout": b"2"}), tmp_path / "o" / "job")
    finally:
        os.umask(old)
    for path in [tmp_path / "o", *(tmp_path / "o").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {mode:o}"


def test_the_limits_are_client_settings() -> None:
    assert ClientSettings().collect_max_bytes == DEFAULT_COLLECT_MAX_BYTES
    settings = ClientSettings(collect_max_bytes=1 << 30, collect_max_files=5)
    assert ClientSettings.from_plain(settings.to_plain()) == settings
    with pytest.raises(ClientUsageError, match="collect_max_files must be a positive"):
        ClientSettings(collect_max_files=0)


def test_a_file_and_a_folder_of_one_name_are_skipped_not_fatal(tmp_path: Path) -> None:
    archive = zip_of([("a/b", b"1"), ("a", b"2"), ("c", b"3"), ("c", b"4"), ("d", b"5")])
    written, skipped = unpack_archive(archive, tmp_path / "job")
    assert sorted(written) == ["a/b", "c", "d"]
    assert skipped == ["a (a file and a folder of the same name)"]
    assert (tmp_path / "job" / "c").read_bytes() == b"4"
    # Collected again over what is there: a folder where the archive now has a file.
    written, skipped = unpack_archive(zip_of({"a": b"x", "d/e": b"y"}), tmp_path / "job")
    assert written == [] and len(skipped) == 2
    assert (tmp_path / "job" / "a" / "b").read_bytes() == b"1"
    assert leftovers(tmp_path) == ["job", "job/a", "job/a/b", "job/c", "job/d"]


def test_an_unusable_target_is_a_one_line_error(tmp_path: Path) -> None:
    from ucp_dtn.client.errors import ClientError

    (tmp_path / "file").write_text("in the way")
    with pytest.raises(ClientError, match=r"cannot unpack into .*file/job: Not a directory"):
        unpack_archive(zip_of({"a": b"1"}), tmp_path / "file" / "job")


async def test_collecting_many_marks_what_was_unpacked_even_when_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Groups of 4: the first group unpacks whole; the second stops at the archive over the
    # limit, after two more. The six unpacked are marked collected (in one journal call per
    # group), the refused one and those after it are not.
    monkeypatch.setattr(collect, "_COLLECT_GROUP", 4)
    settings = ClientSettings(
        home=tmp_path / "home", via=(("127.0.0.1", 1),), wait_s=0.0, collect_max_bytes=1000
    )
    ids = [uuid.UUID(int=n + 1) for n in range(9)]
    async with ClientSession.open(settings) as session:
        journal = session.journal
        await journal.add_jobs("p.toml", [(f"j{n}", i) for n, i in enumerate(ids)], broker=None)
        for n, job_id in enumerate(ids):
            archive = (
                zip_of({"big": bytes(5000)}) if n == 6 else zip_of({"stdout": f"{n}\n".encode()})
            )
            result = JobResult(job_id=job_id, executor="dtn://e/", status=0, archive=archive)
            await journal.store_result(result, "delivered")
        entries = [await journal.get(i) for i in ids]
        with pytest.raises(ArchiveLimitError, match="j6"):
            await collect_results(
                session, [e for e in entries if e is not None], tmp_path / "out", reach_broker=False
            )
        after = await journal.get_many(ids)
        assert [after[i].collected_to is not None for i in ids] == [True] * 6 + [False] * 3
        assert (tmp_path / "out" / "j5" / "stdout").read_text() == "5\n"
        assert not (tmp_path / "out" / "j6").exists()
        # Each staging directory became its job's folder (or was removed): nothing else left.
        assert sorted(os.listdir(tmp_path / "out")) == [f"j{n}" for n in range(6)]
        assert stat.S_IMODE((tmp_path / "out" / "j0").stat().st_mode) == 0o700
        # A higher limit collects the rest; collecting the others again is harmless.
        relaxed = dataclasses.replace(session.settings, collect_max_bytes=10_000)
        monkeypatch.setattr(session, "settings", relaxed)
        again = await collect_results(
            session, list((await journal.get_many(ids)).values()), tmp_path / "out",
            reach_broker=False,
        )  # fmt: skip
        assert [c.state for c in again] == [CollectState.DONE] * 9
        assert all(e.collected_to for e in (await journal.get_many(ids)).values())
