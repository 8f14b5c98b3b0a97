"""Network partitions over named nodes, and schedules of them. Pure: no I/O, no clock.

A :class:`Partition` splits node names into groups that cannot reach each other: a link between
two nodes is down while they sit in different groups. Nodes named in no group together form one
more group, "the rest", so ``Partition.of({"C"})`` cuts C off from everyone and
``Partition.of({"A", "B"}, {"C", "D"})`` splits four nodes in two.

A :class:`PartitionSchedule` says which partitions hold when, in seconds after an epoch; where
windows overlap, a link is down if any active partition separates its nodes. Schedules are
written out, or drawn from a seed (:meth:`PartitionSchedule.random`). The trio side,
:class:`~convergence.lossy.controller.PartitionController`, applies a schedule to running links;
:meth:`PartitionSchedule.down_windows` instead folds it into one link's profile ahead of time.

Links are named by their two nodes: a pair ``("A", "B")`` or a string ``"A->B"`` (``"A<->B"``
also reads). Direction does not matter for partitions: A->B and B->A are down together.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from .model import Window

__all__ = [
    "Partition",
    "PartitionSchedule",
    "ScheduledPartition",
    "link_nodes",
]


def link_nodes(link: str | tuple[str, str]) -> tuple[str, str]:
    """The two node names of a link written ``"A->B"``, ``"A<->B"`` or ``("A", "B")``."""
    if isinstance(link, tuple):
        a, b = link
    else:
        separator = "<->" if "<->" in link else "->"
        a, found, b = link.partition(separator)
        if not found:
            raise ValueError(f"link name {link!r} is not of the form 'A->B'")
        a, b = a.strip(), b.strip()
    if not a or not b or a == b:
        raise ValueError(f"link {link!r} must join two different, named nodes")
    return a, b


@dataclass(frozen=True, slots=True)
class Partition:
    """A split of the network into groups of nodes that cannot reach each other."""

    groups: tuple[frozenset[str], ...]
    """Disjoint groups of node names; nodes named in none of them form one more group."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for group in self.groups:
            if not group:
                raise ValueError("a partition group must name at least one node")
            overlap = seen & group
            if overlap:
                raise ValueError(f"nodes {sorted(overlap)} appear in more than one group")
            seen |= group

    @classmethod
    def of(cls, *groups: Iterable[str]) -> Partition:
        """Build a partition from groups written as any iterables of node names."""
        return cls(tuple(frozenset(group) for group in groups))

    def group_of(self, node: str) -> int:
        """The index of ``node``'s group; ``len(groups)`` for the rest."""
        for index, group in enumerate(self.groups):
            if node in group:
                return index
        return len(self.groups)

    def separates(self, a: str, b: str) -> bool:
        """Whether nodes ``a`` and ``b`` are in different groups."""
        return self.group_of(a) != self.group_of(b)


@dataclass(frozen=True, slots=True)
class ScheduledPartition:
    """A partition that holds during one window of a schedule."""

    window: Window
    """When the partition holds, in seconds after the schedule's epoch."""
    partition: Partition
    """Who is cut off from whom meanwhile."""


@dataclass(frozen=True, slots=True)
class PartitionSchedule:
    """Which partitions hold when; outside every window the network is whole."""

    entries: tuple[ScheduledPartition, ...] = ()
    """The scheduled partitions, in any order; windows may overlap."""

    @classmethod
    def random(
        cls,
        nodes: Iterable[str],
        *,
        seed: int,
        every: float,
        length: float,
        until: float,
    ) -> PartitionSchedule:
        """Draw partitions splitting ``nodes`` in two, from ``random.Random(seed)``.

        Gaps between partitions (from the end of one to the start of the next) are exponential
        with mean ``every``; each partition lasts ``length`` seconds; none starts after
        ``until``. Each draw shuffles the nodes and cuts the list at a random point, so both
        groups are non-empty.
        """
        names = sorted(set(nodes))
        if len(names) < 2:
            raise ValueError("a random partition needs at least two nodes")
        if every <= 0 or length <= 0:
            raise ValueError("every and length must be > 0")
        rng = random.Random(seed)
        entries: list[ScheduledPartition] = []
        end = 0.0
        while True:
            start = end + rng.expovariate(1.0 / every)
            if start > until:
                break
            end = start + length
            shuffled = names[:]
            rng.shuffle(shuffled)
            split = rng.randint(1, len(shuffled) - 1)
            partition = Partition.of(shuffled[:split], shuffled[split:])
            entries.append(ScheduledPartition(Window(start, end), partition))
        return cls(tuple(entries))

    def active(self, at: float) -> tuple[Partition, ...]:
        """The partitions holding ``at`` seconds after the epoch."""
        return tuple(entry.partition for entry in self.entries if at in entry.window)

    def separated(self, a: str, b: str, at: float) -> bool:
        """Whether any partition holding at ``at`` separates nodes ``a`` and ``b``."""
        return any(partition.separates(a, b) for partition in self.active(at))

    def change_times(self) -> tuple[float, ...]:
        """Every instant at which some partition starts or ends, sorted, without repeats."""
        times = {entry.window.start for entry in self.entries}
        times |= {entry.window.end for entry in self.entries}
        return tuple(sorted(times))

    def down_windows(self, link: str | tuple[str, str]) -> tuple[Window, ...]:
        """The windows during which ``link`` is down, merged where they touch or overlap.

        Fold them into a :class:`~convergence.lossy.model.LinkProfile`'s ``down`` to
        partition a link without a controller.
        """
        a, b = link_nodes(link)
        windows = sorted(entry.window for entry in self.entries if entry.partition.separates(a, b))
        merged: list[Window] = []
        for window in windows:
            if merged and window.start <= merged[-1].end:
                last = merged.pop()
                window = Window(last.start, max(last.end, window.end))
            merged.append(window)
        return tuple(merged)
