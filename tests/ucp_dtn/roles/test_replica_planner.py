"""The replica planner on its own (sans-IO): where copies go, when a lost holder stops counting,
stale replicas brought up to date, new datastores used, deletes honoured."""

from __future__ import annotations

from ucp_dtn.roles.broker.replicas import Candidate, CopyOrder, ReplicaPlanner
from ucp_dtn.ucp import DataEntry, content_digest
from ucp_dtn.ucp.versions import DataVersion

WRITER = "dtn://laptop/ucp/client"
TIMEOUT = 60.0


def planner(now: float = 0.0) -> ReplicaPlanner:
    return ReplicaPlanner(
        replica_timeout_s=TIMEOUT, tombstone_lifetime_s=3600.0, pending_s=30.0, started_at=now
    )


def entry(
    name: str = "x", data: bytes = b"v", at: float = 1.0, replicas: int = 2, size: int = 10
) -> DataEntry:
    return DataEntry(name, size, at, replicas=replicas, writer=WRITER, digest=content_digest(data))


def store(node: str, free: int = 1000, metric: int | None = 1) -> Candidate:
    return Candidate(f"dtn://{node}/", free, metric)


def held_by(p: ReplicaPlanner, node: str, *entries: DataEntry, at: float = 0.0) -> None:
    p.observe(f"dtn://{node}/ucp/datastore", entries, at)


def test_missing_copies_go_to_reachable_close_roomy_datastores_first() -> None:
    p = planner()
    held_by(p, "d1", entry(replicas=3))
    candidates = [
        store("d1"),
        store("far", metric=3),
        store("near", metric=1, free=500),
        store("roomy", metric=1, free=900),
        store("lost", metric=None, free=10_000),
        store("full", metric=1, free=5),
    ]
    assert p.plan(0.0, candidates) == [CopyOrder("dtn://d1/", "x", ("dtn://roomy/", "dtn://near/"))]


def test_an_order_is_not_repeated_while_it_is_pending_and_a_report_settles_it() -> None:
    p = planner()
    held_by(p, "d1", entry())
    candidates = [store("d1"), store("d2")]
    assert len(p.plan(0.0, candidates)) == 1
    p.mark_all()
    assert p.plan(10.0, candidates) == []  # still pending
    held_by(p, "d2", entry())
    p.mark_all()
    assert p.plan(40.0, candidates) == []  # done: two holders
    [status] = p.status(40.0, ["dtn://d1/", "dtn://d2/"])
    assert status.holders == ("dtn://d1/", "dtn://d2/") and status.replicas == 2


def test_a_silent_holder_counts_until_the_replica_timeout() -> None:
    p = planner()
    for node in ("d1", "d2"):
        p.appeared(f"dtn://{node}/", 0.0)
        held_by(p, node, entry())
    p.appeared("dtn://d3/", 0.0)
    p.plan(0.0, [store("d1"), store("d2"), store("d3")])
    # d2 is killed: live are d1 and d3; it still counts for the replica timeout...
    alive = [store("d1"), store("d3")]
    p.seen("dtn://d2/", 5.0)
    assert p.check_departures(["dtn://d1/", "dtn://d3/"], 30.0) == []
    assert p.plan(30.0, alive) == []
    # ... then no longer: the missing copy goes to d3.
    assert p.check_departures(["dtn://d1/", "dtn://d3/"], 66.0) == ["dtn://d2/"]
    assert p.plan(66.0, alive) == [CopyOrder("dtn://d1/", "x", ("dtn://d3/",))]
    # d2 comes back: three holders of a factor-2 datum are harmless; nothing to do.
    held_by(p, "d3", entry())
    p.seen("dtn://d2/", 70.0)
    assert p.plan(70.0, [*alive, store("d2")]) == []


def test_a_holder_of_an_older_write_gets_the_winning_one() -> None:
    p = planner()
    held_by(p, "d1", entry(data=b"new", at=2.0))
    held_by(p, "d2", entry(data=b"old", at=1.0))
    assert p.plan(0.0, [store("d1"), store("d2"), store("d3")]) == [
        CopyOrder("dtn://d1/", "x", ("dtn://d2/",))
    ]
    # Same time, same writer: the greater digest wins, so every replica converges on it.
    p2 = planner()
    low, high = sorted([b"p", b"q"], key=content_digest)
    held_by(p2, "d1", entry(data=low, at=5.0))
    held_by(p2, "d2", entry(data=high, at=5.0))
    assert p2.plan(0.0, [store("d1"), store("d2")]) == [CopyOrder("dtn://d2/", "x", ("dtn://d1/",))]


def test_a_datum_below_its_factor_goes_to_a_datastore_that_joins_later() -> None:
    p = planner()
    held_by(p, "d1", entry())
    assert p.plan(0.0, [store("d1")]) == []  # nowhere to put the second copy yet
    assert not p.due
    p.appeared("dtn://d2/", 5.0)
    assert p.due
    assert p.plan(5.0, [store("d1"), store("d2")]) == [CopyOrder("dtn://d1/", "x", ("dtn://d2/",))]


def test_a_relayed_delete_forgets_the_holders_and_buries_older_reports() -> None:
    p = planner()
    held_by(p, "d1", entry(at=1.0))
    p.note_delete(
        query="x",
        job_id=None,
        keep_result=True,
        version=DataVersion.of_delete(2.0, WRITER),
        now=2.0,
    )
    assert len(p) == 0
    held_by(p, "d2", entry(at=1.0))  # a holder that had not heard of the delete
    assert len(p) == 0 and p.plan(3.0, [store("d1"), store("d2"), store("d3")]) == []
    held_by(p, "d2", entry(at=3.0))  # a new write after the delete counts
    assert p.holders("x") == {"x": ["dtn://d2/"]}


def test_a_listing_replaces_what_a_holder_was_known_to_hold() -> None:
    p = planner()
    held_by(p, "d1", entry("a"), entry("b"), at=1.0)
    held_by(p, "d1", entry("c"), at=6.0)  # reported after the listing was asked for
    p.observe_listing("dtn://d1/ucp/datastore", [entry("b")], asked_at=5.0, now=7.0)
    assert p.holders("*") == {"b": ["dtn://d1/"], "c": ["dtn://d1/"]}


def test_datastores_away_are_delete_targets_within_the_tombstone_lifetime() -> None:
    p = planner()
    p.seen("dtn://d1/", 0.0)
    p.seen("dtn://d2/", 0.0)
    assert p.departed_datastores(["dtn://d1/"], 100.0) == ["dtn://d2/"]
    assert p.departed_datastores(["dtn://d1/"], 4000.0) == []
    assert p.forget_old(4000.0) == ["dtn://d1/", "dtn://d2/"]


def test_a_newer_write_while_copies_of_the_older_one_travel_reaches_every_replica() -> None:
    p = planner()
    candidates = [store("d1"), store("d2")]
    held_by(p, "d1", entry(data=b"first", at=1.0))
    assert p.plan(0.0, candidates) == [CopyOrder("dtn://d1/", "x", ("dtn://d2/",))]
    # The second write arrives at d1 while the copy of the first is on its way to d2: d2 is
    # asked for the second one too.
    held_by(p, "d1", entry(data=b"second", at=2.0))
    assert p.plan(1.0, candidates) == [CopyOrder("dtn://d1/", "x", ("dtn://d2/",))]
    held_by(p, "d2", entry(data=b"first", at=1.0))  # the first copy lands: still waiting
    assert p.plan(2.0, candidates) == []
    held_by(p, "d2", entry(data=b"second", at=2.0))
    assert p.plan(3.0, candidates) == []
    [status] = p.status(3.0, ["dtn://d1/", "dtn://d2/"])
    assert status.holders == ("dtn://d1/", "dtn://d2/") and status.stale == ()
