"""The pure link model and partition schedules: deterministic, no I/O, no event loop."""

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergence.lossy import (
    Direction,
    Fault,
    FaultKind,
    LinkModel,
    LinkProfile,
    Partition,
    PartitionSchedule,
    ScheduledPartition,
    Window,
    link_nodes,
)

NOISY = LinkProfile(
    seed=7,
    drop_every=5.0,
    stall_every=10.0,
    stall_for=2.0,
    down_every=30.0,
    down_for=5.0,
    latency=0.02,
    jitter=0.005,
)


def _deliveries(model: LinkModel, connections: int = 3) -> list[tuple[float, float]]:
    """Chunk timings of a few connections, each sending 20 chunks."""
    timings = []
    for index in range(connections):
        connection = model.open_connection(float(index))
        for step in range(20):
            tx = connection.transmit(Direction.FORWARD, index + step * 0.01, 100)
            timings.append((tx.sent_at, tx.deliver_at))
    return timings


def test_same_seed_same_schedule() -> None:
    first, second = LinkModel(NOISY), LinkModel(NOISY)
    assert first.faults(600) == second.faults(600)
    assert _deliveries(first) == _deliveries(second)


def test_different_seed_different_schedule() -> None:
    first = LinkModel(NOISY)
    other = LinkModel(dataclasses.replace(NOISY, seed=8))
    assert first.faults(600) != other.faults(600)
    assert _deliveries(first) != _deliveries(other)


def test_answers_do_not_depend_on_the_order_of_questions() -> None:
    forwards, backwards = LinkModel(NOISY), LinkModel(NOISY)
    times = [i * 0.7 for i in range(400)]
    ahead = [(forwards.is_down(t), forwards.next_cut(t), forwards.release_time(t)) for t in times]
    behind = [
        (backwards.is_down(t), backwards.next_cut(t), backwards.release_time(t))
        for t in reversed(times)
    ]
    assert ahead == behind[::-1]


def test_timelines_are_independent() -> None:
    """Turning stalls on does not move the cuts or the down windows."""
    cuts_only = LinkModel(LinkProfile(seed=3, drop_every=5.0, down_every=20.0))
    with_stalls = LinkModel(LinkProfile(seed=3, drop_every=5.0, down_every=20.0, stall_every=1.0))
    without = [f for f in with_stalls.faults(300) if f.kind is not FaultKind.STALL]
    assert without == list(cuts_only.faults(300))


def test_random_cuts_have_the_mean_interval() -> None:
    model = LinkModel(LinkProfile(seed=1, drop_every=5.0))
    cuts = [f.start for f in model.faults(10_000)]
    assert all(f.kind is FaultKind.CUT and f.end == f.start for f in model.faults(100))
    assert 10_000 / len(cuts) == pytest.approx(5.0, rel=0.1)
    assert cuts == sorted(cuts)


def test_epoch_shifts_everything() -> None:
    profile = LinkProfile(seed=2, drop_every=3.0, down=(Window(10, 20),))
    at_zero, at_hundred = LinkModel(profile), LinkModel(profile, epoch=100.0)
    assert at_zero.faults(60) == at_hundred.faults(60)
    for t in (0.0, 5.0, 15.0, 25.0):
        assert at_zero.is_down(t) == at_hundred.is_down(t + 100)
        cut = at_zero.next_cut(t)
        assert cut is not None
        assert at_hundred.next_cut(t + 100) == pytest.approx(cut + 100)


def test_scheduled_cuts_and_deadlines() -> None:
    model = LinkModel(LinkProfile(cut_at=(5.0, 2.0), down=(Window(8, 9),)))
    assert model.faults(10) == (
        Fault(2.0, 2.0, FaultKind.CUT),
        Fault(5.0, 5.0, FaultKind.CUT),
        Fault(8.0, 9.0, FaultKind.DOWN),
    )
    assert model.next_cut(0) == 2.0
    assert model.next_cut(2.0) == 5.0  # strictly after
    assert model.next_cut(5.0) is None
    assert model.cut_deadline(0) == 2.0
    assert model.cut_deadline(6) == 8.0  # the down window starts
    assert model.cut_deadline(8.5) == 8.5  # opened while down: cut at once
    assert model.cut_deadline(9) is None
    assert model.open_connection(6).cut_at == 8.0


def test_down_windows() -> None:
    model = LinkModel(LinkProfile(down=(Window(30, 40), Window(38, 45), Window(60, 65))))
    assert not model.is_down(29.9)
    assert model.is_down(30)
    assert model.down_until(31) == 45  # overlapping windows chain
    assert not model.is_down(45)
    assert model.down_until(50) is None
    assert model.next_down(45) == 60


def test_random_down_windows_do_not_overlap() -> None:
    model = LinkModel(LinkProfile(seed=4, down_every=10.0, down_for=3.0))
    downs = [f for f in model.faults(1000) if f.kind is FaultKind.DOWN]
    assert len(downs) > 20
    assert all(f.end - f.start == pytest.approx(3.0) for f in downs)
    assert all(a.end <= b.start for a, b in itertools.pairwise(downs))
    assert model.is_down(downs[3].start) and not model.is_down(downs[3].end)


def test_latency_and_bandwidth() -> None:
    model = LinkModel(LinkProfile(latency=0.1, bandwidth=1000.0))
    connection = model.open_connection(0.0)
    first = connection.transmit(Direction.FORWARD, 0.0, 500)
    assert (first.size, first.sent_at, round(first.deliver_at, 9)) == (500, 0.5, 0.6)
    # The sender is busy until 0.5: the next chunk queues behind the first.
    second = connection.transmit(Direction.FORWARD, 0.1, 1000)
    assert (second.sent_at, round(second.deliver_at, 9)) == (1.5, 1.6)
    # The other direction has its own capacity.
    back = connection.transmit(Direction.BACKWARD, 0.1, 100)
    assert (round(back.sent_at, 9), round(back.deliver_at, 9)) == (0.2, 0.3)
    assert connection.bytes_carried == 1600


def test_jitter_stays_in_bounds_and_keeps_order() -> None:
    model = LinkModel(LinkProfile(seed=5, latency=0.05, jitter=0.02))
    connection = model.open_connection(0.0)
    sparse = [
        connection.transmit(Direction.FORWARD, i * 0.1, 10).deliver_at - i * 0.1 for i in range(200)
    ]
    assert all(0.03 - 1e-9 <= delay <= 0.07 + 1e-9 for delay in sparse)
    assert len({round(delay, 9) for delay in sparse}) > 150  # it does vary
    # Chunks sent close together never overtake each other.
    dense = [connection.transmit(Direction.BACKWARD, i * 0.001, 10).deliver_at for i in range(200)]
    assert dense == sorted(dense)


def test_stalls_hold_transmission_and_delivery() -> None:
    model = LinkModel(LinkProfile(latency=1.0, stalls=(Window(10, 12),)))
    connection = model.open_connection(0.0)
    during = connection.transmit(Direction.FORWARD, 10.5, 10)
    assert (during.sent_at, during.deliver_at) == (12.0, 13.0)
    # In flight when the stall starts: held until it ends.
    before = model.open_connection(0.0).transmit(Direction.FORWARD, 9.5, 10)
    assert (before.sent_at, before.deliver_at) == (9.5, 12.0)
    assert model.is_stalled(11) and not model.is_stalled(12)
    assert model.release_time(11) == 12 and model.release_time(13) == 13


def test_byte_budget_cuts_mid_transfer() -> None:
    model = LinkModel(LinkProfile(cut_after_bytes=(250, 0)))
    first = model.open_connection(0.0)
    assert first.byte_budget == 250
    assert first.transmit(Direction.FORWARD, 0, 100).cut_after is False
    assert first.transmit(Direction.BACKWARD, 0, 0).cut_after is False
    last = first.transmit(Direction.BACKWARD, 0, 200)
    assert (last.size, last.cut_after) == (150, True)
    assert first.budget_spent
    assert first.transmit(Direction.FORWARD, 0, 10).size == 0
    second = model.open_connection(1.0)
    assert second.transmit(Direction.FORWARD, 1, 0).cut_after is True
    third = model.open_connection(2.0)
    assert third.byte_budget is None and third.index == 2
    assert model.connections_opened == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"drop_every": 0.0}, "drop_every"),
        ({"bandwidth": -1.0}, "bandwidth"),
        ({"latency": float("nan")}, "latency"),
        ({"cut_at": (-1.0,)}, "cut_at"),
        ({"cut_after_bytes": (-1,)}, "cut_after_bytes"),
        ({"stall_for": 0.0}, "stall_for"),
    ],
)
def test_profile_rejects_nonsense(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkProfile(**fields)  # type: ignore[arg-type]


def test_profile_and_window_checks() -> None:
    with pytest.raises(ValueError, match="not after its start"):
        Window(5, 5)
    with pytest.raises(TypeError, match="Window objects"):
        LinkProfile(down=((1.0, 2.0),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        LinkModel().open_connection(0).transmit(Direction.FORWARD, 0, -1)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=30),
    gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=30, max_size=30),
    bandwidth=st.none() | st.floats(100, 1e6),
)
def test_delivery_invariants(
    seed: int, sizes: list[int], gaps: list[float], bandwidth: float | None
) -> None:
    profile = LinkProfile(
        seed=seed, latency=0.05, jitter=0.03, stall_every=3.0, stall_for=0.5, bandwidth=bandwidth
    )
    model = LinkModel(profile)
    connection = model.open_connection(0.0)
    now, last_delivery, last_sent = 0.0, 0.0, 0.0
    for size, gap in zip(sizes, gaps, strict=False):
        now += gap
        tx = connection.transmit(Direction.FORWARD, now, size)
        assert tx.size == size
        assert tx.sent_at >= max(now, last_sent)
        assert tx.deliver_at >= max(tx.sent_at + 0.02 - 1e-9, last_delivery)
        assert not model.is_stalled(tx.deliver_at)
        last_delivery, last_sent = tx.deliver_at, tx.sent_at


# -- partitions ---------------------------------------------------------------------------------


def test_partition_groups_and_the_rest() -> None:
    split = Partition.of({"A", "B"}, {"C", "D"})
    assert not split.separates("A", "B")
    assert split.separates("A", "C")
    isolate = Partition.of({"C"})
    assert isolate.separates("C", "A")
    assert not isolate.separates("A", "B")  # the rest stay together
    with pytest.raises(ValueError, match="more than one group"):
        Partition.of({"A"}, {"A", "B"})
    with pytest.raises(ValueError, match="at least one node"):
        Partition.of(set())


@pytest.mark.parametrize(
    ("name", "nodes"),
    [
        ("A->B", ("A", "B")),
        ("shelter-3 <-> laptop-7", ("shelter-3", "laptop-7")),
        (("x", "y"), ("x", "y")),
    ],
)
def test_link_nodes(name: str | tuple[str, str], nodes: tuple[str, str]) -> None:
    assert link_nodes(name) == nodes


@pytest.mark.parametrize("name", ["AB", "A->A", "->B"])
def test_link_nodes_rejects(name: str) -> None:
    with pytest.raises(ValueError, match="link"):
        link_nodes(name)


def test_partition_schedule() -> None:
    schedule = PartitionSchedule(
        (
            ScheduledPartition(Window(10, 20), Partition.of({"A"})),
            ScheduledPartition(Window(15, 30), Partition.of({"A", "B"}, {"C"})),
        )
    )
    assert schedule.change_times() == (10, 15, 20, 30)
    assert not schedule.separated("A", "B", 5)
    assert schedule.separated("A", "B", 12)
    assert schedule.separated("A", "B", 16)  # the first window still holds
    assert not schedule.separated("A", "B", 25)
    assert schedule.separated("B", "C", 25)
    assert schedule.down_windows("A->B") == (Window(10, 20),)
    assert schedule.down_windows("A->C") == (Window(10, 30),)  # merged
    assert schedule.down_windows(("B", "C")) == (Window(15, 30),)


def test_random_partition_schedule_is_seeded() -> None:
    nodes = ["A", "B", "C", "D"]
    first = PartitionSchedule.random(nodes, seed=1, every=10, length=3, until=500)
    assert first == PartitionSchedule.random(nodes, seed=1, every=10, length=3, until=500)
    assert first != PartitionSchedule.random(nodes, seed=2, every=10, length=3, until=500)
    assert len(first.entries) > 10
    for entry in first.entries:
        assert entry.window.end - entry.window.start == 3
        groups = entry.partition.groups
        assert len(groups) == 2 and all(groups) and set().union(*groups) == set(nodes)
    with pytest.raises(ValueError, match="two nodes"):
        PartitionSchedule.random(["A"], seed=1, every=1, length=1, until=1)


def test_a_chunk_handed_over_a_little_late_still_follows_back_to_back() -> None:
    # The relay's own tasks wake up a few ms late; that must not cap the link below its rate.
    connection = LinkModel(LinkProfile(bandwidth=1e6)).open_connection(0.0)
    now = 0.0
    for _ in range(100):
        tx = connection.transmit(Direction.FORWARD, now, 10_000)  # 10 ms each
        now = tx.sent_at + 0.003
    assert tx.sent_at == pytest.approx(1.0)
    # A real pause is idle time: the next chunk starts when it is offered.
    tx = connection.transmit(Direction.FORWARD, tx.sent_at + 0.5, 10_000)
    assert tx.sent_at == pytest.approx(1.51)
