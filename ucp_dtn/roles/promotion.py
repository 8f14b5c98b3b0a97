"""When a node without a broker promotes itself to broker (sans-IO).

Theory of operation
-------------------
The UCP paper's answer to the loss of the last broker: nodes left without one (orphans) first
try to rejoin another broker; a node that finds none for a while becomes a broker itself, with
some probability per check so that not every orphan promotes at once.

:class:`PromotionWatch` is that decision. The role runner calls :meth:`PromotionWatch.check`
every heartbeat interval with the time and whether any broker is reachable now (the agent's
role directory: roles travel with routes and lapse with them). Once no broker has been
reachable for ``timeout_s``, each check promotes with ``probability`` (one draw of the given
random generator per check); a broker seen again resets the wait. After it said "promote"
once, the watch is done and never says so again.

Several orphans may still promote in the same round (or in partitions that later heal). That
is harmless: brokers share their jobs and names through broker syncs, and every executor and
datastore heartbeats to every broker it can reach while reporting each job to the broker that
dispatched it (or, when that one is gone, to the nearest live broker, ties to the smaller node
ID). A promoted node stays a broker; see docs/disruption.md.
"""

from __future__ import annotations

import random

__all__ = ["PromotionWatch"]


class PromotionWatch:
    """Whether this node should promote itself to broker now (see the module docstring)."""

    def __init__(self, timeout_s: float, probability: float, rng: random.Random) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        self.timeout_s = timeout_s
        """How long without any broker before promotion is considered."""
        self.probability = probability
        """Chance of promoting at each check after that."""
        self._rng = rng
        self.missing_since: float | None = None
        """Since when no broker has been reachable (``None`` while one is)."""
        self.checks = 0
        """Checks made while promotion was considered (draws)."""
        self.promoted = False
        """Whether :meth:`check` has said "promote" (it then says it never again)."""

    def check(self, now: float, *, broker_reachable: bool) -> bool:
        """Note whether a broker is reachable at ``now``; ``True``: promote now."""
        if self.promoted:
            return False
        if broker_reachable:
            self.missing_since = None
            return False
        if self.missing_since is None:
            self.missing_since = now
        if now - self.missing_since < self.timeout_s:
            return False
        self.checks += 1
        # probability 1.0 always promotes: random() is in [0, 1).
        if self._rng.random() < self.probability:
            self.promoted = True
        return self.promoted
