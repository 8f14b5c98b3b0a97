"""BundleIndex (the pure query engine both stores share) against a brute-force model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.store import BundleState, StoredBundle
from ucp_dtn.store.index import BundleIndex

KEYS = [f"k{i}" for i in range(8)]
DESTINATIONS = ["dtn://a/x", "dtn://a/y", "dtn://ab/x", "ipn:1.1", "ipn:11.1"]
TIMES = st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, 8.0])

records = st.builds(
    StoredBundle,
    key=st.sampled_from(KEYS),
    destination=st.sampled_from(DESTINATIONS),
    source=st.just("dtn://src/"),
    size=st.integers(0, 3),
    received_at=TIMES,
    expires_at=TIMES,
    state=st.sampled_from(BundleState),
    next_retry_at=st.none() | TIMES,
)
operations = st.lists(
    st.tuples(st.sampled_from(["add", "replace", "remove"]), records), max_size=300
)


def check_against_model(index: BundleIndex, model: dict[str, StoredBundle]) -> None:
    every = sorted(model.values(), key=lambda m: (m.received_at, m.key))
    assert index.query() == every
    assert len(index) == len(model)
    assert index.total_bytes == sum(m.size for m in model.values())
    for prefix in ["dtn://a/", "dtn://a", "ipn:1.", "a/", ""]:
        assert index.query(destination_prefix=prefix) == [
            m for m in every if m.destination.startswith(prefix)
        ]
    for destination in DESTINATIONS:
        assert index.query(destination=destination) == [
            m for m in every if m.destination == destination
        ]
    for state in BundleState:
        assert index.query(states={state}) == [m for m in every if m.state is state]
        assert index.count_by_state()[state] == sum(1 for m in every if m.state is state)
        assert index.bytes_by_state()[state] == sum(m.size for m in every if m.state is state)
    for now in [-1.0, 0.0, 2.0, 4.0, 9.0]:
        expired = index.expired(now)
        assert sorted(m.key for m in expired) == sorted(m.key for m in every if m.expires_at <= now)
        assert [m.expires_at for m in expired] == sorted(m.expires_at for m in expired)
        retry = index.due_for_retry(now, limit=3)
        due = [m for m in every if m.next_retry_at is not None and m.next_retry_at <= now]
        assert len(retry) == min(3, len(due))
        assert {m.key for m in retry} <= {m.key for m in due}
        assert all(r.next_retry_at is not None for r in retry)
    assert index.next_expiry() == min((m.expires_at for m in every), default=None)
    assert index.next_retry() == min(
        (m.next_retry_at for m in every if m.next_retry_at is not None), default=None
    )


@settings(max_examples=200, deadline=None)
@given(operations)
def test_index_answers_like_a_brute_force_scan(ops: list[tuple[str, StoredBundle]]) -> None:
    index = BundleIndex()
    model: dict[str, StoredBundle] = {}
    for step, (kind, meta) in enumerate(ops):
        old = model.get(meta.key)
        if kind == "add":
            if old is None:
                index.add(meta)
                model[meta.key] = meta
            else:
                with pytest.raises(ValueError, match="already indexed"):
                    index.add(meta)
        elif kind == "replace":
            if old is None:
                with pytest.raises(KeyError):
                    index.replace(meta)
            elif old.size != meta.size:
                with pytest.raises(ValueError, match="size is fixed"):
                    index.replace(meta)
            else:
                assert index.replace(meta) == old
                model[meta.key] = meta
        else:
            assert index.remove(meta.key) == old
            model.pop(meta.key, None)
        if step % 10 == 0:
            check_against_model(index, model)
    check_against_model(index, model)


def test_stale_deadlines_do_not_pile_up() -> None:
    index = BundleIndex()
    meta = StoredBundle(
        key="k", destination="d", source="s", size=1, received_at=0.0, expires_at=0.0
    )
    index.add(meta)
    for step in range(10_000):
        meta = StoredBundle(
            key="k", destination="d", source="s", size=1, received_at=0.0,
            expires_at=float(step), next_retry_at=float(step),
        )  # fmt: skip
        index.replace(meta)
    assert index.expired(1e9) == [meta]
    assert index.due_for_retry(1e9) == [meta]
    heaps = (index._expiry._heap, index._retry._heap)  # private: checking the bound
    assert all(len(heap) <= 2 + 64 for heap in heaps)


def test_stored_bundle_validates_and_freezes_its_fields() -> None:
    extra = {"a": "b"}
    meta = StoredBundle(
        key="k", destination="d", source="s", size=1, received_at=0.0, expires_at=0.0,
        forwarded_to={"x"},  # type: ignore[arg-type]
        extra=extra,
    )  # fmt: skip
    extra["a"] = "changed"
    assert meta.extra == {"a": "b"}
    assert meta.forwarded_to == frozenset({"x"})
    with pytest.raises(TypeError):
        meta.extra["a"] = "c"  # type: ignore[index]
    assert hash(meta) == hash(StoredBundle(**{f: getattr(meta, f) for f in meta.__slots__}))
    bad_fields: list[tuple[dict[str, object], str]] = [
        ({"key": ""}, "key"),
        ({"size": -1}, "size"),
        ({"attempts": -1}, "attempts"),
    ]
    for bad, message in bad_fields:
        fields: dict[str, object] = {
            "key": "k",
            "destination": "d",
            "source": "s",
            "size": 1,
            "received_at": 0.0,
            "expires_at": 0.0,
            **bad,
        }
        with pytest.raises(ValueError, match=message):
            StoredBundle(**fields)  # type: ignore[arg-type]
