"""The order of writes (:mod:`ucp_dtn.ucp.versions`) and the replication factor's bounds."""

from __future__ import annotations

import itertools
import uuid

import pytest

from ucp_dtn.ucp import (
    MAX_REPLICAS,
    DataEntry,
    DataPut,
    DataReplicate,
    DataVersion,
    FieldError,
    InlineData,
    JobInfo,
    content_digest,
)

A = "dtn://a/ucp/client"
B = "dtn://b/ucp/client"


def test_later_write_wins_then_greater_writer_then_greater_digest() -> None:
    old = DataVersion(1.0, B, content_digest(b"x"))
    new = DataVersion(2.0, A, content_digest(b"y"))
    assert new > old
    tie_a, tie_b = DataVersion(5.0, A, content_digest(b"z")), DataVersion(5.0, B, b"")
    assert tie_b > tie_a
    low, high = sorted([content_digest(b"p"), content_digest(b"q")])
    assert DataVersion(5.0, A, high) > DataVersion(5.0, A, low)


def test_every_arrival_order_picks_the_same_winner() -> None:
    versions = [
        DataVersion(3.0, A, content_digest(b"1")),
        DataVersion(3.0, B, content_digest(b"2")),
        DataVersion(3.0, B, content_digest(b"3")),
        DataVersion(2.5, "dtn://zzz/ucp/client", content_digest(b"4")),
    ]
    winners = set()
    for order in itertools.permutations(versions):
        kept = order[0]
        for arriving in order[1:]:
            kept = max(kept, arriving)
        winners.add(kept)
    assert len(winners) == 1


def test_a_delete_beats_a_write_of_the_same_time_and_writer() -> None:
    write = DataVersion(4.0, A, b"\xff" * 32)
    delete = DataVersion.of_delete(4.0, A)
    assert delete.is_delete and not write.is_delete
    assert delete > write
    assert DataVersion(4.000001, A, b"") > delete


@pytest.mark.parametrize("bad", [0, -1, MAX_REPLICAS + 1, 2.0, True])
def test_replication_factors_outside_the_range_are_refused(bad: object) -> None:
    with pytest.raises(FieldError, match="replicas: must be a whole number from 1 to 16"):
        DataPut(1, "a", b"", 1.0, replicas=bad)  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="replicas"):
        DataEntry("a", 0, 1.0, replicas=bad)  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="replicas"):
        JobInfo(job_id=uuid.uuid4(), wasm=InlineData(b""), replicas=bad)  # type: ignore[arg-type]


def test_a_replicate_request_names_at_least_one_valid_target() -> None:
    with pytest.raises(FieldError, match="targets: must name at least one"):
        DataReplicate(1, "a", ())
    with pytest.raises(FieldError, match=r"targets\[1\]"):
        DataReplicate(1, "a", ("dtn://x/ucp/datastore", "not an eid"))
