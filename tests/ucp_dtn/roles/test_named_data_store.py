"""The named-data store on its own: name ranges, queries by segment and pattern against a
brute-force model, last write wins, paging, deletion, quota and disk full, persistence."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import uuid
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucp_dtn.roles.datastore import (
    DataStoreClosedError,
    DataStoreError,
    DataStoreFullError,
    InvalidCursorError,
    NamedDataStore,
    PutOutcome,
)
from ucp_dtn.roles.datastore.ranges import (
    decode_cursor,
    encode_cursor,
    query_ranges,
    successor,
)
from ucp_dtn.ucp import DataNameError
from ucp_dtn.ucp.names import job_result_name, name_matches, select_names, validate_pattern

WRITER = "dtn://a/ucp/client"
JOB = uuid.UUID("6f1c1b9e-8a1d-4c4e-9a51-2b0f3c1d2e4f")
OTHER_JOB = uuid.UUID("0b7d3c2a-1111-4222-8333-444455556666")

# Characters around the segment separator in sort order ("-" and "." sort before "/", "0"
# right after it), and non-ASCII ones, whose UTF-8 bytes must sort like their code points.
_SEGMENT_CHARS = "ab0.-~é中"
segments = st.text(alphabet=_SEGMENT_CHARS, min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..")
)
names = st.lists(segments, min_size=1, max_size=3).map("/".join)
# Few segments, so that stored names and queries are often siblings: "a", "a.", "a0", "a-b".
dense_names = st.lists(
    st.sampled_from(["a", "a.", "a0", "a-b", "ab", "b", "é", "中"]), min_size=1, max_size=3
).map("/".join)


@st.composite
def queries(draw: st.DrawFn, near: list[str] | None = None) -> str:
    """A plain name or a wildcard pattern, mostly cut out of one of the names ``near`` (so
    that queries and names share prefixes, siblings like ``q.x`` and ``q0`` included)."""
    name = draw(st.sampled_from(near)) if near and draw(st.integers(0, 4)) else draw(names)
    cut = draw(st.integers(0, len(name)))
    kind = draw(st.sampled_from(["name", "cut", "pattern"]))
    if kind == "name":
        return name
    query = name[:cut] + ("*" if kind == "pattern" else "")
    try:
        return validate_pattern(query)
    except DataNameError:
        return name


async def memory_store(quota_bytes: int = 1 << 30) -> NamedDataStore:
    return await NamedDataStore.open(None, quota_bytes=quota_bytes, clock=lambda: 1000.0)


async def put_all(store: NamedDataStore, all_names: set[str] | list[str]) -> None:
    for name in all_names:
        assert await store.put(name, name.encode(), written_at=1.0, writer=WRITER) is (
            PutOutcome.STORED
        )


# -- name ranges -------------------------------------------------------------------------------


@given(st.data(), st.lists(dense_names | names, min_size=1, max_size=6))
@settings(max_examples=300)
def test_query_ranges_hold_exactly_the_matching_names(data: st.DataObject, near: list[str]) -> None:
    query = data.draw(queries(near))
    ranges = query_ranges(query)
    for name in near:
        assert any(name in r for r in ranges) == name_matches(query, name)
    # Disjoint and in order, so that a UNION ALL of them is sorted.
    for first, second in itertools.pairwise(ranges):
        assert first.high is not None and first.high <= second.low


@given(st.text(alphabet=_SEGMENT_CHARS + "\U0010ffff", max_size=4), st.text(max_size=6))
def test_successor_bounds_every_string_with_the_prefix(prefix: str, other: str) -> None:
    bound = successor(prefix)
    if other.startswith(prefix):
        assert bound is None or other < bound
    elif other > prefix:
        assert bound is not None and other >= bound


def test_successor_edges() -> None:
    assert successor("ab") == "ac"
    assert successor("a/") == "a0"
    assert successor("") is None
    assert successor("\U0010ffff") is None
    assert successor("a\U0010ffff") == "b"
    assert successor("\ud7ff") == "\ue000"  # skips the surrogates, which cannot be stored


def test_segment_query_is_not_a_string_prefix() -> None:
    assert select_names("stdin", ["stdin", "stdin2", "stdin/x", "stdin.txt", "stdi"]) == [
        "stdin",
        "stdin/x",
    ]
    assert [("stdin2" in r, "stdin.txt" in r) for r in query_ranges("stdin")] == [
        (False, False),
        (False, False),
    ]


@given(names)
def test_cursor_round_trip(name: str) -> None:
    assert decode_cursor(encode_cursor(name)) == name


@pytest.mark.parametrize("cursor", ["", "x", "c1.", "c1.!!!", "c1.Lw", "c2.YQ", "c1.YQ=", "c1.//8"])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor)


# -- queries against a brute-force model ----------------------------------------------------------


@given(st.data(), st.sets(dense_names, max_size=25), st.integers(1, 4), st.integers(0, 12))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
async def test_get_and_list_page_through_exactly_the_matches(
    data: st.DataObject, stored: set[str], page_size: int, max_bytes: int
) -> None:
    query = data.draw(queries(sorted(stored)))
    expected = select_names(query, stored)
    async with await memory_store() as store:
        await put_all(store, stored)
        fetched: list[str] = []
        cursor: str | None = None
        while True:
            page = await store.get(query, cursor=cursor, max_bytes=max_bytes, max_items=page_size)
            assert 1 <= len(page.items) <= page_size or (not page.items and page.cursor is None)
            if len(page.items) > 1:
                assert sum(item.info.size for item in page.items) <= max_bytes
            assert all(item.data == item.info.name.encode() for item in page.items)
            fetched.extend(item.info.name for item in page.items)
            if page.cursor is None:
                break
            cursor = page.cursor
        assert fetched == expected

        listed: list[str] = []
        cursor = None
        while True:
            listing = await store.listing(query, page_size=page_size, cursor=cursor)
            assert len(listing.entries) <= page_size
            listed.extend(entry.name for entry in listing.entries)
            if listing.cursor is None:
                break
            cursor = listing.cursor
        assert listed == expected


async def test_paging_sees_every_name_present_throughout_exactly_once() -> None:
    async with await memory_store() as store:
        await put_all(store, [f"d/{i:02}" for i in range(10)])
        first = await store.listing("d", page_size=4)
        assert [e.name for e in first.entries] == ["d/00", "d/01", "d/02", "d/03"]
        # Changes behind and ahead of the cursor while the client pages.
        await put_all(store, ["d/015", "d/055"])
        assert await store.delete("d/07") == 1
        seen = [e.name for e in first.entries]
        cursor = first.cursor
        while cursor is not None:
            page = await store.listing("d", page_size=4, cursor=cursor)
            seen.extend(e.name for e in page.entries)
            cursor = page.cursor
        expected = ["d/00", "d/01", "d/02", "d/03", "d/04", "d/05", "d/055", "d/06", "d/08"]
        assert seen == [*expected, "d/09"]


async def test_a_datum_larger_than_max_bytes_comes_alone() -> None:
    async with await memory_store() as store:
        await store.put("big/a", b"x" * 100, written_at=1.0, writer=WRITER)
        await store.put("big/b", b"y" * 10, written_at=1.0, writer=WRITER)
        page = await store.get("big", max_bytes=50)
        assert [(i.info.name, len(i.data)) for i in page.items] == [("big/a", 100)]
        page = await store.get("big", max_bytes=50, cursor=page.cursor)
        assert [(i.info.name, len(i.data)) for i in page.items] == [("big/b", 10)]
        assert page.cursor is None
        assert (await store.get("nothing")).items == ()
        with pytest.raises(InvalidCursorError):
            await store.get("big", cursor="c1.!")


async def test_values_the_requester_holds_come_empty_and_take_no_room() -> None:
    async with await memory_store() as store:
        await store.put("big/a", b"x" * 100, written_at=1.0, writer=WRITER)
        await store.put("big/b", b"y" * 10, written_at=1.0, writer=WRITER)
        a = (await store.get("big")).items[0]
        assert a.info.digest == hashlib.sha256(b"x" * 100).digest()
        # The requester has big/a's value: it comes empty and does not count in max_bytes.
        page = await store.get("big", max_bytes=50, have=frozenset({a.info.digest}))
        assert [(i.info.name, i.data) for i in page.items] == [("big/a", b""), ("big/b", b"y" * 10)]
        assert page.cursor is None
        # A new version has another digest: its bytes come.
        await store.put("big/a", b"z" * 5, written_at=2.0, writer=WRITER)
        page = await store.get("big/a", have=frozenset({a.info.digest}))
        assert [i.data for i in page.items] == [b"z" * 5]


# -- last write wins ----------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["dtn://a/", "dtn://b/", "dtn://c/x"])),
        min_size=1,
        max_size=8,
        unique=True,
    )
)
@settings(max_examples=100, deadline=None)
async def test_last_write_wins_in_any_arrival_order(writes: list[tuple[int, str]]) -> None:
    async with await memory_store() as store:
        best: tuple[int, str] | None = None
        for written_at, writer in writes:
            outcome = await store.put(
                "k", f"{written_at}{writer}".encode(), written_at=written_at, writer=writer
            )
            if best is None or (written_at, writer) > best:
                assert outcome is PutOutcome.STORED
                best = (written_at, writer)
            else:
                assert outcome is PutOutcome.STALE
        assert best is not None
        [item] = (await store.get("k")).items
        assert (item.info.written_at, item.info.writer) == best
        assert item.data == f"{best[0]}{best[1]}".encode()
        assert (await store.space()).items == 1


async def test_the_same_write_again_is_a_harmless_duplicate() -> None:
    async with await memory_store() as store:
        assert await store.put("k", b"v", written_at=2.0, writer=WRITER) is PutOutcome.STORED
        assert await store.put("k", b"v", written_at=2.0, writer=WRITER) is PutOutcome.UNCHANGED
        assert await store.put("k", b"old", written_at=1.0, writer=WRITER) is PutOutcome.STALE
        stats = store.statistics()
        assert (stats.stored, stats.unchanged, stats.stale, stats.items) == (1, 1, 1, 1)


async def test_an_exclusive_put_never_replaces_another_write() -> None:
    async with await memory_store() as store:

        async def put(name: str, data: bytes, at: float, job: uuid.UUID | None) -> PutOutcome:
            return await store.put(
                name, data, written_at=at, writer=WRITER, job_id=job, exclusive=True
            )

        assert await put("out", b"first", 1.0, JOB) is PutOutcome.STORED
        # Another job, a newer write: refused (REC: "already taken"); the first value stays.
        assert await put("out", b"second", 2.0, OTHER_JOB) is PutOutcome.TAKEN
        # The same job again (a redeployed attempt): last write wins as usual.
        assert await put("out", b"again", 3.0, JOB) is PutOutcome.STORED
        assert await put("out", b"late", 0.5, JOB) is PutOutcome.STALE
        # A name written by no job is taken for every exclusive put; a plain put still wins.
        await store.put("plain", b"p", written_at=1.0, writer=WRITER)
        assert await put("plain", b"x", 2.0, JOB) is PutOutcome.TAKEN
        assert await put("plain", b"x", 2.0, None) is PutOutcome.TAKEN
        assert await put("free", b"f", 1.0, None) is PutOutcome.STORED
        assert (
            await store.put("out", b"plain", written_at=9.0, writer=WRITER, job_id=OTHER_JOB)
            is PutOutcome.STORED
        )
        [item] = (await store.get("out")).items
        assert item.data == b"plain"
        assert store.statistics().taken == 3


@pytest.mark.parametrize(
    ("name", "data", "written_at", "writer", "error", "match"),
    [
        ("a//b", b"", 1.0, WRITER, DataNameError, "empty segment"),
        ("a/*", b"", 1.0, WRITER, DataNameError, "'\\*'"),
        ("a", "text", 1.0, WRITER, TypeError, "data must be bytes"),
        ("a", b"", float("nan"), WRITER, ValueError, "written_at must be a finite number"),
        ("a", b"", 1.0, None, TypeError, "writer must be EID text"),
    ],
)
async def test_put_refuses_misuse(
    name: str, data: object, written_at: float, writer: object, error: type, match: str
) -> None:
    async with await memory_store() as store:
        with pytest.raises(error, match=match):
            await store.put(name, data, written_at=written_at, writer=writer)  # type: ignore[arg-type]


# -- jobs and deletion --------------------------------------------------------------------------


async def test_job_listing_and_deletion_keep_the_result() -> None:
    async with await memory_store() as store:
        for name in (f"{JOB}/in", f"{JOB}/out/x", job_result_name(JOB), f"{OTHER_JOB}/in"):
            await store.put(name, b"1", written_at=1.0, writer=WRITER)
        await store.put("shared/archive", b"2", written_at=1.0, writer=WRITER, job_id=JOB)
        listing = await store.listing(job_id=JOB)
        assert [e.name for e in listing.entries] == [
            f"{JOB}/in",
            f"{JOB}/out/x",
            f"{JOB}/result",
            "shared/archive",
        ]
        assert all(e.job_id == JOB for e in listing.entries)
        narrowed = await store.listing(f"{JOB}/out", job_id=JOB)
        assert [e.name for e in narrowed.entries] == [f"{JOB}/out/x"]
        paged = await store.listing(job_id=JOB, page_size=3)
        rest = await store.listing(job_id=JOB, page_size=3, cursor=paged.cursor)
        assert [e.name for e in paged.entries + rest.entries] == [e.name for e in listing.entries]

        assert await store.delete_job(JOB) == 3
        assert [e.name for e in (await store.listing()).entries] == [
            f"{OTHER_JOB}/in",
            f"{JOB}/result",
        ]
        assert await store.delete_job(JOB, keep_result=False) == 1
        assert await store.delete_job(JOB) == 0
        assert (await store.space()).items == 1


async def test_delete_by_segment_and_by_pattern() -> None:
    async with await memory_store() as store:
        await put_all(store, ["stdin", "stdin2", "stdin/a", "stdin/b/c", "stdin.txt", "x"])
        assert await store.delete("stdin") == 3
        assert [e.name for e in (await store.listing()).entries] == ["stdin.txt", "stdin2", "x"]
        assert await store.delete("stdin*") == 2
        assert await store.delete("missing") == 0
        space = await store.space()
        assert (space.items, space.used) == (1, 1)
        assert store.statistics().deleted == 5


# -- space ----------------------------------------------------------------------------------


async def test_quota_refuses_a_datum_whole_and_counts_replacements() -> None:
    async with await memory_store(quota_bytes=100) as store:
        await store.put("a", b"x" * 60, written_at=1.0, writer=WRITER)
        with pytest.raises(DataStoreFullError, match="quota of 100 bytes full") as caught:
            await store.put("b", b"y" * 50, written_at=1.0, writer=WRITER)
        assert (caught.value.needed, caught.value.free) == (50, 40)
        assert (await store.get("b")).items == ()
        # Replacing "a" frees its 60 bytes first.
        await store.put("a", b"z" * 100, written_at=2.0, writer=WRITER)
        space = await store.space()
        assert (space.used, space.free, space.items, space.quota) == (100, 0, 1, 100)
        assert store.statistics().refused == 1


async def test_free_space_is_the_smaller_of_quota_and_disk(tmp_path: Path) -> None:
    disk = [10_000]
    async with await NamedDataStore.open(
        tmp_path, quota_bytes=5_000, disk_free=lambda path: disk[0]
    ) as store:
        assert (await store.space()).free == 5_000
        disk[0] = 300
        space = await store.space()
        assert (space.free, space.disk_free) == (300, 300)
        with pytest.raises(DataStoreFullError, match="disk full: 'a' needs 400 bytes, 300 free"):
            await store.put("a", b"x" * 400, written_at=1.0, writer=WRITER)
        assert (await store.space()).items == 0


async def test_enospc_writing_a_value_file_leaves_nothing(tmp_path: Path) -> None:
    def full_disk(fd: int, data: memoryview) -> int:
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    async with await NamedDataStore.open(
        tmp_path, quota_bytes=1 << 20, inline_limit=16, file_write=full_disk
    ) as store:
        with pytest.raises(DataStoreFullError, match="no room on disk for 'big'"):
            await store.put("big", b"x" * 1000, written_at=1.0, writer=WRITER)
        await store.put("small", b"x" * 16, written_at=1.0, writer=WRITER)  # inline: fine
        assert [e.name for e in (await store.listing()).entries] == ["small"]
        assert os.listdir(tmp_path / "values") == []


async def test_a_full_database_refuses_the_put_whole(tmp_path: Path) -> None:
    async with await NamedDataStore.open(
        tmp_path, quota_bytes=1 << 30, inline_limit=1 << 20, max_database_bytes=64 * 1024
    ) as store:
        await store.put("fits", b"x" * 1000, written_at=1.0, writer=WRITER)
        with pytest.raises(DataStoreFullError, match="no room in the database for 'huge'"):
            await store.put("huge", b"y" * 200_000, written_at=1.0, writer=WRITER)
        space = await store.space()
        assert (space.items, space.used) == (1, 1000)
        assert [i.data for i in (await store.get("*")).items] == [b"x" * 1000]


# -- persistence --------------------------------------------------------------------------------


async def test_data_survive_reopening_and_leftovers_are_removed(tmp_path: Path) -> None:
    async with await NamedDataStore.open(tmp_path, quota_bytes=1 << 20, inline_limit=64) as store:
        assert store.path == tmp_path
        await store.put("small", b"s" * 10, written_at=1.0, writer=WRITER)
        await store.put(f"{JOB}/big", b"b" * 5000, written_at=2.0, writer=WRITER)
        await store.put("gone", b"g" * 500, written_at=2.0, writer=WRITER)
        await store.put("replaced", b"r" * 500, written_at=1.0, writer=WRITER)
        await store.put("replaced", b"R" * 400, written_at=3.0, writer=WRITER)
        assert await store.delete("gone") == 1
        assert len(os.listdir(tmp_path / "values")) == 2  # no file of replaced or deleted data
        with pytest.raises(DataStoreError, match="in use by another process"):
            await NamedDataStore.open(tmp_path, quota_bytes=1 << 20)
    # What a crash can leave behind: a half-written temporary file, a file no row names.
    (tmp_path / "values" / "0123.tmp").write_bytes(b"half")
    (tmp_path / "values" / "4567.value").write_bytes(b"orphan")

    async with await NamedDataStore.open(tmp_path, quota_bytes=1 << 20, inline_limit=64) as store:
        items = {i.info.name: i for i in (await store.get("*")).items}
        assert {name: item.data for name, item in items.items()} == {
            "small": b"s" * 10,
            f"{JOB}/big": b"b" * 5000,
            "replaced": b"R" * 400,
        }
        assert items[f"{JOB}/big"].info.job_id == JOB
        assert items["replaced"].info.written_at == 3.0
        space = await store.space()
        assert (space.items, space.used) == (3, 5410)
        assert sorted(os.listdir(tmp_path / "values")) == sorted(
            name for name in os.listdir(tmp_path / "values") if name.endswith(".value")
        )
        assert len(os.listdir(tmp_path / "values")) == 2
        # The last write still wins against the data from before the restart.
        assert await store.put("replaced", b"x", written_at=2.0, writer=WRITER) is (
            PutOutcome.STALE
        )


async def test_a_row_whose_file_vanished_is_dropped_on_open(tmp_path: Path) -> None:
    async with await NamedDataStore.open(tmp_path, quota_bytes=1 << 20, inline_limit=4) as store:
        await store.put("a", b"aaaaaaaa", written_at=1.0, writer=WRITER)
        await store.put("b", b"bbbbbbbb", written_at=1.0, writer=WRITER)
        [first, _] = sorted(os.listdir(tmp_path / "values"))
    (tmp_path / "values" / first).unlink()
    async with await NamedDataStore.open(tmp_path, quota_bytes=1 << 20, inline_limit=4) as store:
        assert (await store.space()).items == 1
        assert len((await store.get("*")).items) == 1


async def test_a_closed_store_says_so() -> None:
    store = await memory_store()
    await store.aclose()
    await store.aclose()
    with pytest.raises(DataStoreClosedError, match="closed"):
        await store.put("a", b"", written_at=1.0, writer=WRITER)
    with pytest.raises(DataStoreClosedError):
        await store.space()


async def test_cancelled_put_still_completes_or_leaves_nothing(tmp_path: Path) -> None:
    async with await NamedDataStore.open(tmp_path, quota_bytes=1 << 20, inline_limit=8) as store:
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.put("a", b"x" * 100, written_at=1.0, writer=WRITER)
        space = await store.space()
        files = os.listdir(tmp_path / "values")
        assert (space.items, len(files)) in ((0, 0), (1, 1))
