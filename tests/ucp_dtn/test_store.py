"""Behaviour every bundle store shares, run against MemoryBundleStore and SqliteBundleStore."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from ucp_dtn.store import (
    BundleNotFoundError,
    BundleState,
    BundleStore,
    MemoryBundleStore,
    SqliteBundleStore,
    StoreClosedError,
    StoredBundle,
    StoreFullError,
)

QUOTA = 100_000
StoreFactory = Callable[..., Awaitable[BundleStore]]


def make_meta(
    number: int,
    size: int = 100,
    *,
    destination: str = "dtn://far/app",
    **changes: object,
) -> StoredBundle:
    meta = StoredBundle(
        key=f"dtn://src/-{number}-0",
        destination=destination,
        source="dtn://src/",
        size=size,
        received_at=1_000.0 + number,
        expires_at=5_000.0 + number,
    )
    return dataclasses.replace(meta, **changes)  # type: ignore[arg-type]


def make_raw(number: int, size: int = 100) -> bytes:
    return bytes((number + i) % 251 for i in range(size))


@pytest.fixture(params=["memory", "sqlite"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of fresh stores of one kind (closed at the end of the test)."""
    opened: list[BundleStore] = []

    async def factory(quota_bytes: int = QUOTA, quota_bundles: int | None = None) -> BundleStore:
        store: BundleStore
        if request.param == "memory":
            store = MemoryBundleStore(quota_bytes, quota_bundles=quota_bundles)
        else:
            store = await SqliteBundleStore.open(
                tmp_path / f"store{len(opened)}",
                quota_bytes=quota_bytes,
                quota_bundles=quota_bundles,
                inline_limit=1_000,
            )
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: StoreFactory) -> BundleStore:
    return await open_store()


async def put_numbers(store: BundleStore, *numbers: int, size: int = 100) -> None:
    for number in numbers:
        assert await store.put(make_meta(number, size), make_raw(number, size))


# -- put / get / meta / contains -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 999, 1_000, 1_001, 20_000])
async def test_put_then_get_returns_the_same_bytes_and_meta(store: BundleStore, size: int) -> None:
    meta = make_meta(1, size, extra={"previous": "dtn://hop/"}, forwarded_to=frozenset({"a"}))
    assert await store.put(meta, make_raw(1, size)) is True
    assert await store.get(meta.key) == make_raw(1, size)
    assert await store.meta(meta.key) == meta
    assert await store.contains(meta.key)


async def test_unknown_key_is_absent(store: BundleStore) -> None:
    assert await store.get("nope") is None
    assert await store.meta("nope") is None
    assert not await store.contains("nope")


async def test_second_put_of_a_key_is_a_duplicate_and_changes_nothing(store: BundleStore) -> None:
    await put_numbers(store, 1)
    other = make_meta(1, 100, destination="dtn://elsewhere/")
    assert await store.put(other, make_raw(2)) is False
    assert await store.get(other.key) == make_raw(1)
    assert await store.meta(other.key) == make_meta(1)
    stats = store.statistics()
    assert (stats.puts, stats.duplicates, stats.bundles) == (1, 1, 1)


async def test_concurrent_puts_of_one_key_store_it_once(store: BundleStore) -> None:
    results: list[bool] = []

    async def put() -> None:
        results.append(await store.put(make_meta(7), make_raw(7)))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(put)
    assert sorted(results) == [False] * 9 + [True]
    assert store.statistics().bundles == 1
    assert store.statistics().reserved_bytes == 0


async def test_many_concurrent_puts_all_land(store: BundleStore) -> None:
    async with trio.open_nursery() as nursery:
        for number in range(200):
            nursery.start_soon(put_numbers, store, number)
    assert store.statistics().bundles == 200
    for number in range(200):
        assert await store.get(make_meta(number).key) == make_raw(number)


async def test_put_with_wrong_size_is_local_misuse(store: BundleStore) -> None:
    with pytest.raises(ValueError, match=r"meta.size is 100, raw has 99"):
        await store.put(make_meta(1, 100), make_raw(1, 99))
    assert store.statistics().bundles == 0


async def test_put_copies_mutable_buffers(store: BundleStore) -> None:
    raw = bytearray(make_raw(1))
    await store.put(make_meta(1), raw)  # type: ignore[arg-type]
    raw[0] ^= 0xFF
    assert await store.get(make_meta(1).key) == make_raw(1)


# -- update / delete -------------------------------------------------------------------------


async def test_update_replaces_metadata(store: BundleStore) -> None:
    await put_numbers(store, 1)
    changed = make_meta(
        1,
        state=BundleState.CUSTODY_WAIT,
        custody=True,
        next_retry_at=2_000.0,
        attempts=3,
        forwarded_to=frozenset({"dtn://n1/", "dtn://n2/"}),
        extra={"k": "v"},
    )
    await store.update(changed)
    assert await store.meta(changed.key) == changed
    assert await store.get(changed.key) == make_raw(1)
    assert store.statistics().updates == 1


async def test_update_of_unknown_bundle_raises(store: BundleStore) -> None:
    with pytest.raises(BundleNotFoundError, match=r"no stored bundle 'dtn://src/-1-0'"):
        await store.update(make_meta(1))


async def test_update_cannot_change_the_size(store: BundleStore) -> None:
    await put_numbers(store, 1)
    with pytest.raises(ValueError, match=r"size is fixed at 100, update says 5"):
        await store.update(make_meta(1, 5))
    assert await store.meta(make_meta(1).key) == make_meta(1)


async def test_delete(store: BundleStore) -> None:
    await put_numbers(store, 1, 2)
    assert await store.delete(make_meta(1).key) is True
    assert await store.delete(make_meta(1).key) is False
    assert await store.get(make_meta(1).key) is None
    assert not await store.contains(make_meta(1).key)
    assert await store.get(make_meta(2).key) == make_raw(2)
    stats = store.statistics()
    assert (stats.bundles, stats.bytes, stats.deletes) == (1, 100, 1)


async def test_a_deleted_key_can_be_stored_again(store: BundleStore) -> None:
    await put_numbers(store, 1)
    await store.delete(make_meta(1).key)
    assert await store.put(make_meta(1, 50), make_raw(3, 50)) is True
    assert await store.get(make_meta(1).key) == make_raw(3, 50)


# -- queries ---------------------------------------------------------------------------------


async def test_query_by_destination_prefix_state_and_limit(store: BundleStore) -> None:
    destinations = ["dtn://n1/a", "dtn://n1/b", "dtn://n10/a", "ipn:5.1", "ipn:55.1", "dtn://n1/a"]
    for number, destination in enumerate(destinations):
        await store.put(make_meta(number, destination=destination), make_raw(number))
    await store.update(make_meta(1, destination="dtn://n1/b", state=BundleState.CUSTODY_WAIT))

    def keys(found: list[StoredBundle]) -> list[str]:
        return [meta.key.split("-")[1] for meta in found]

    assert keys(await store.query(destination="dtn://n1/a")) == ["0", "5"]
    assert keys(await store.query(destination_prefix="dtn://n1/")) == ["0", "1", "5"]
    assert keys(await store.query(destination_prefix="ipn:5.")) == ["3"]
    assert keys(await store.query(destination="ipn:5.1", destination_prefix="dtn:")) == []
    forward = {BundleState.PENDING_FORWARD}
    assert keys(await store.query(destination_prefix="dtn://n1/", states=forward)) == ["0", "5"]
    assert keys(await store.query(states={BundleState.CUSTODY_WAIT})) == ["1"]
    assert keys(await store.query(limit=2)) == ["0", "1"]
    assert keys(await store.query()) == ["0", "1", "2", "3", "4", "5"]


async def test_query_orders_by_reception_time(store: BundleStore) -> None:
    for number, received in [(1, 30.0), (2, 10.0), (3, 20.0)]:
        await store.put(make_meta(number, received_at=received), make_raw(number))
    assert [meta.received_at for meta in await store.query()] == [10.0, 20.0, 30.0]


async def test_expired_includes_the_expiry_instant_and_follows_updates(store: BundleStore) -> None:
    for number, expires in [(1, 300.0), (2, 100.0), (3, 200.0)]:
        await store.put(make_meta(number, expires_at=expires), make_raw(number))
    assert await store.expired(99.9) == []
    assert [m.expires_at for m in await store.expired(200.0)] == [100.0, 200.0]
    assert [m.expires_at for m in await store.expired(1e9, limit=1)] == [100.0]
    await store.update(make_meta(2, expires_at=250.0))
    await store.delete(make_meta(3).key)
    assert [m.expires_at for m in await store.expired(260.0)] == [250.0]
    assert await store.next_deadline() == 250.0


async def test_due_for_retry_and_next_deadline(store: BundleStore) -> None:
    assert await store.next_deadline() is None
    await put_numbers(store, 1, 2, 3)  # expiring at 5001, 5002, 5003
    assert await store.due_for_retry(1e9) == []
    assert await store.next_deadline() == 5_001.0
    for number, retry in [(1, 40.0), (2, 20.0)]:
        meta = make_meta(number, state=BundleState.CUSTODY_WAIT, next_retry_at=retry)
        await store.update(meta)
    assert [m.next_retry_at for m in await store.due_for_retry(40.0)] == [20.0, 40.0]
    assert [m.next_retry_at for m in await store.due_for_retry(39.0)] == [20.0]
    assert await store.next_deadline() == 20.0
    await store.update(make_meta(2))  # retransmitted: no retry scheduled any more
    assert [m.key for m in await store.due_for_retry(1e9)] == [make_meta(1).key]
    await store.delete(make_meta(1).key)
    assert await store.due_for_retry(1e9) == []
    assert await store.next_deadline() == 5_002.0


async def test_statistics_count_states_and_bytes(store: BundleStore) -> None:
    await put_numbers(store, 1, 2, 3)
    await store.update(make_meta(2, state=BundleState.PENDING_DELIVERY))
    stats = store.statistics()
    assert stats.bundles == 3
    assert stats.bytes == 300
    assert stats.quota_bytes == QUOTA
    assert stats.free_bytes == QUOTA - 300
    assert stats.by_state == {
        BundleState.PENDING_FORWARD: 2,
        BundleState.PENDING_DELIVERY: 1,
        BundleState.CUSTODY_WAIT: 0,
    }
    assert (stats.puts, stats.updates, stats.deletes, stats.refused) == (3, 1, 0, 0)


# -- quota and reservations -------------------------------------------------------------------


async def test_put_beyond_the_byte_quota_is_refused_and_leaves_nothing(
    open_store: StoreFactory,
) -> None:
    store = await open_store(quota_bytes=250)
    await put_numbers(store, 1, 2)
    assert store.can_accept(50)
    assert not store.can_accept(51)
    with pytest.raises(StoreFullError, match=r"^store full: 100 bytes needed, 50 of 250 free$"):
        await store.put(make_meta(3), make_raw(3))
    assert not await store.contains(make_meta(3).key)
    stats = store.statistics()
    assert (stats.bundles, stats.bytes, stats.reserved_bytes, stats.refused) == (2, 200, 0, 1)
    await store.delete(make_meta(1).key)
    await put_numbers(store, 3)


async def test_bundle_count_quota(open_store: StoreFactory) -> None:
    store = await open_store(quota_bundles=2)
    await put_numbers(store, 1, 2)
    assert not store.can_accept(0)
    with pytest.raises(StoreFullError, match=r"bundle quota of 2 reached"):
        await store.put(make_meta(3), make_raw(3))


async def test_duplicate_of_a_stored_bundle_is_accepted_even_when_full(
    open_store: StoreFactory,
) -> None:
    store = await open_store(quota_bytes=100)
    await put_numbers(store, 1)
    assert await store.put(make_meta(1), make_raw(1)) is False


async def test_reservation_holds_space_until_put(open_store: StoreFactory) -> None:
    store = await open_store(quota_bytes=300)
    reservation = store.reserve(200)
    assert store.statistics().reserved_bytes == 200
    assert not store.can_accept(101)
    with pytest.raises(StoreFullError):
        store.reserve(101)
    assert await store.put(make_meta(1, 200), make_raw(1, 200), reservation=reservation)
    assert reservation.released
    stats = store.statistics()
    assert (stats.bytes, stats.reserved_bytes) == (200, 0)


async def test_reservation_grows_when_the_bundle_is_larger(open_store: StoreFactory) -> None:
    store = await open_store(quota_bytes=300)
    reservation = store.reserve(100)
    await store.put(make_meta(1, 250), make_raw(1, 250), reservation=reservation)
    reservation = store.reserve(50)
    with pytest.raises(StoreFullError, match=r"100 bytes needed, 0 of 300 free"):
        await store.put(make_meta(2, 150), make_raw(2, 150), reservation=reservation)
    assert reservation.released
    assert store.statistics().reserved_bytes == 0


async def test_unused_reservation_is_released_by_its_context(store: BundleStore) -> None:
    with store.reserve(1_000) as reservation:
        assert store.statistics().reserved_bytes == 1_000
    assert reservation.released
    assert store.statistics().reserved_bytes == 0
    reservation.release()
    assert store.statistics().reserved_bytes == 0


async def test_reservation_is_consumed_by_a_duplicate_put(store: BundleStore) -> None:
    await put_numbers(store, 1)
    reservation = store.reserve(100)
    assert await store.put(make_meta(1), make_raw(1), reservation=reservation) is False
    assert reservation.released
    assert store.statistics().reserved_bytes == 0


# -- cancellation and closing ------------------------------------------------------------------


async def test_cancelled_puts_leave_consistent_accounting(store: BundleStore) -> None:
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            for number in range(50):
                nursery.start_soon(put_numbers, store, number)
            await trio.sleep(0)
            await trio.sleep(0)
            scope.cancel()
    stats = store.statistics()
    assert stats.reserved_bytes == 0
    stored = [n for n in range(50) if await store.contains(make_meta(n).key)]
    assert stats.bundles == len(stored)
    assert stats.bytes == 100 * len(stored)
    for number in stored:
        assert await store.get(make_meta(number).key) == make_raw(number)


async def test_closed_store_refuses_everything(store: BundleStore) -> None:
    await put_numbers(store, 1)
    await store.close()
    await store.close()
    key = make_meta(1).key
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.put(make_meta(2), make_raw(2)),
        lambda: store.get(key),
        lambda: store.meta(key),
        lambda: store.contains(key),
        lambda: store.update(make_meta(1)),
        lambda: store.delete(key),
        lambda: store.query(),
        lambda: store.expired(0.0),
        lambda: store.due_for_retry(0.0),
        lambda: store.next_deadline(),
    ]
    for call in calls:
        with pytest.raises(StoreClosedError, match=r"closed"):
            await call()
    with pytest.raises(StoreClosedError):
        store.reserve(1)
    assert not store.can_accept(1)


async def test_async_context_manager_closes(open_store: StoreFactory) -> None:
    store = await open_store()
    async with store as entered:
        assert entered is store
    with pytest.raises(StoreClosedError):
        await store.contains("x")


async def test_put_many_stores_each_and_reports_each_outcome(open_store: StoreFactory) -> None:
    store = await open_store(quota_bytes=5_000)
    await put_numbers(store, 1)
    items = [
        (make_meta(2), make_raw(2), None),
        (make_meta(1), make_raw(1), None),  # already stored
        (make_meta(3, 2_000), make_raw(3, 2_000), store.reserve(2_000)),  # a file (> inline)
        (make_meta(4, 4_000), make_raw(4, 4_000), None),  # does not fit any more
        (make_meta(2), make_raw(2), None),  # twice in the batch
    ]
    results = await store.put_many(items)
    assert results[:3] == [True, False, True]
    assert isinstance(results[3], StoreFullError)
    assert results[4] is False
    for number, size in ((1, 100), (2, 100), (3, 2_000)):
        assert await store.get(make_meta(number).key) == make_raw(number, size)
    assert await store.meta(make_meta(4).key) is None
    stats = store.statistics()
    assert (stats.bundles, stats.reserved_bytes) == (3, 0)


async def test_put_many_checks_sizes_before_storing_anything(store: BundleStore) -> None:
    reservation = store.reserve(100)
    with pytest.raises(ValueError, match=r"meta\.size"):
        await store.put_many(
            [(make_meta(1), make_raw(1), reservation), (make_meta(2), make_raw(2, 50), None)]
        )
    assert store.statistics().bundles == 0
    assert store.statistics().reserved_bytes == 0


async def test_delete_many_removes_each_and_says_which_were_stored(store: BundleStore) -> None:
    await put_numbers(store, 1, 2, 3)
    keys = [make_meta(n).key for n in (1, 9, 3, 1)]
    assert await store.delete_many(keys) == [True, False, True, False]
    assert [m.key for m in await store.query()] == [make_meta(2).key]
    assert await store.delete_many([]) == []


async def test_put_many_is_one_group_commit_in_the_sqlite_store(tmp_path: Path) -> None:
    store = await SqliteBundleStore.open(tmp_path / "s", quota_bytes=QUOTA)
    async with store:
        before = store.statistics().commits
        results = await store.put_many([(make_meta(n), make_raw(n), None) for n in range(50)])
        assert results == [True] * 50
        assert await store.delete_many([make_meta(n).key for n in range(50)]) == [True] * 50
        assert store.statistics().commits - before == 2
    reopened = await SqliteBundleStore.open(tmp_path / "s", quota_bytes=QUOTA)
    async with reopened:
        assert reopened.statistics().bundles == 0
