"""Partition running links: switch them down and up per a partition schedule or by hand.

A :class:`PartitionController` holds a set of links keyed by the two nodes each joins
(``"A->B"`` or ``("A", "B")``); each is anything with ``set_down(bool)``: a
:class:`~convergence.lossy.relay.LossyRelay` or a :class:`~convergence.lossy.link.LossyLink`.
At every moment a link is down when the schedule's active partitions or the partition set by
hand (:meth:`PartitionController.partition`) put its two nodes in different groups, and up
otherwise. :meth:`PartitionController.run` follows the schedule; the hand-set partition applies
at once, with or without ``run``. The controller owns its links' down switches: do not also
switch them by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

import trio

from .partition import Partition, PartitionSchedule, link_nodes

__all__ = ["PartitionController", "Switchable"]

logger = logging.getLogger(__name__)


class Switchable(Protocol):
    """Anything a partition controller can switch down and up."""

    def set_down(self, down: bool) -> None:
        """Switch down (cutting open connections) when ``down``, else back up."""


class PartitionController:
    """Switch links down and up as partitions come and go.

    ``links`` maps each link's name (``"A->B"``) or node pair to its switch; ``schedule`` is
    followed by :meth:`run`, in seconds after ``epoch`` (the trio time at construction by
    default, so make the controller inside ``trio.run``).
    """

    def __init__(
        self,
        links: Mapping[str, Switchable] | Mapping[tuple[str, str], Switchable],
        schedule: PartitionSchedule | None = None,
        *,
        epoch: float | None = None,
    ) -> None:
        self._links: dict[str, tuple[tuple[str, str], Switchable]] = {}
        for key, switch in links.items():
            nodes = link_nodes(key)
            self._links[f"{nodes[0]}->{nodes[1]}"] = (nodes, switch)
        self.schedule = schedule if schedule is not None else PartitionSchedule()
        """The partitions :meth:`run` follows."""
        self.epoch = trio.current_time() if epoch is None else epoch
        """The trio time at which the schedule starts."""
        self._manual: Partition | None = None
        self._down: dict[str, bool] = {}
        self._apply()

    @property
    def manual_partition(self) -> Partition | None:
        """The partition set by hand, if any."""
        return self._manual

    def partition(self, *groups: Iterable[str]) -> None:
        """Partition the network by hand now (see :class:`~convergence.lossy.partition.Partition`
        for groups), on top of the schedule, until :meth:`heal`."""
        self._manual = Partition.of(*groups)
        logger.info("partition set by hand: %s", _describe(self._manual))
        self._apply()

    def heal(self) -> None:
        """Drop the partition set by hand; scheduled partitions still apply."""
        self._manual = None
        logger.info("partition by hand healed")
        self._apply()

    def separated(self, a: str, b: str) -> bool:
        """Whether nodes ``a`` and ``b`` are cut off from each other now."""
        now = trio.current_time() - self.epoch
        manual = self._manual is not None and self._manual.separates(a, b)
        return manual or self.schedule.separated(a, b, now)

    def down_links(self) -> tuple[str, ...]:
        """Names (``"A->B"``) of the links switched down now, sorted."""
        return tuple(sorted(name for name, down in self._down.items() if down))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the schedule until cancelled (it keeps the last state once the schedule ends)."""
        self._apply()
        task_status.started()
        for change in self.schedule.change_times():
            await trio.sleep_until(self.epoch + change)
            self._apply()
        await trio.sleep_forever()

    def _apply(self) -> None:
        for name, ((a, b), switch) in self._links.items():
            down = self.separated(a, b)
            previous = self._down.get(name)
            if previous == down:
                continue
            self._down[name] = down
            switch.set_down(down)
            if down:
                logger.info("link %s partitioned", name)
            elif previous is not None:
                logger.info("link %s healed", name)


def _describe(partition: Partition) -> str:
    groups = ["{" + ", ".join(sorted(group)) + "}" for group in partition.groups]
    return " | ".join([*groups, "rest"])
