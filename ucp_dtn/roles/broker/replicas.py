"""Where replicated data lives, and which copies to make (sans-IO).

Theory of operation
-------------------
A datum stored with a replication factor ``f`` above 1 should be held by ``f`` distinct
datastores. Every broker keeps a :class:`ReplicaPlanner` with what it hears: each datastore's
``data-held`` reports (sent when it stores a replicated datum) and the listings of replicated
data the planning broker asks every live datastore for now and then (``data-list`` with
``replicated``). For each name it knows the holders and the version each one holds
(:mod:`ucp_dtn.ucp.versions`). Only one broker of those that reach each other plans: the one
with the smallest node ID among the brokers its node's role directory lists (each side of a
partition has its own, which is what each side needs).

Planning a name (:meth:`ReplicaPlanner.plan`):

* the **winning version** is the greatest any holder has; the name's factor is the one the
  winning write was stored with;
* a holder **counts** if it holds the winning version and is live (its heartbeats arrive) or
  has been silent for less than ``replica_timeout_s`` — a datastore that restarts or is cut off
  for a moment does not cause new copies;
* a live holder of an **older version** gets the winning one (concurrent writes converge:
  every replica ends with the same value);
* while the counted holders (and the copies already asked for) are fewer than the factor, the
  missing copies go to live datastores that hold no version of the name, preferring those the
  role directory reaches, then the closer (route metric), then the ones with more free space,
  then the smaller node ID; a datastore without room for the datum is never chosen;
* the copies are asked of one live holder of the winning version (the closest):
  :class:`CopyOrder`. An order is not repeated until ``pending_s`` passed without the target
  reporting the copy.

A delete the broker relays (:meth:`ReplicaPlanner.note_delete`) drops the names it removes and
is remembered for the tombstone lifetime, so that a holder that has not heard of it yet does not
get its older copy spread again (the datastores' own tombstones refuse such copies anyway).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bpv7 import BPv7Error

from ...ucp.messages import DataEntry
from ...ucp.names import job_of_name, name_matches
from ...ucp.versions import DataVersion
from ..datastore.tombstones import Tombstone
from ..endpoints import node_of

__all__ = ["Candidate", "CopyOrder", "Held", "ReplicaPlanner", "ReplicaStatus"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """One holder's copy of a name."""

    version: DataVersion
    """The write it holds."""
    replicas: int
    """The factor that write was stored with."""
    size: int
    """Its size in bytes."""
    job_id: uuid.UUID | None = None
    """The job it belongs to."""
    heard_at: float = 0.0
    """When the broker last heard of it (its clock)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A live datastore, as the broker sees it when planning."""

    node: str
    """Its node ID (text)."""
    free: int
    """Bytes it can still store (its latest heartbeat, minus what was sent to it since)."""
    metric: int | None
    """Route metric from the broker's node (``None``: the role directory does not list it as
    reachable now)."""


@dataclass(frozen=True, slots=True)
class CopyOrder:
    """Ask ``source`` to copy ``name`` to ``targets`` (datastore node IDs)."""

    source: str
    """A live holder of the winning version (node ID)."""
    name: str
    """The datum."""
    targets: tuple[str, ...]
    """Where the copies go (node IDs)."""


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """What the planner knows of one replicated name (for logs and statistics)."""

    name: str
    """The datum."""
    replicas: int
    """Its factor."""
    holders: tuple[str, ...]
    """Holders of the winning version that count (node IDs)."""
    stale: tuple[str, ...]
    """Holders of an older version."""


def _node(holder: str) -> str | None:
    try:
        return str(node_of(holder))
    except BPv7Error:
        return None


class ReplicaPlanner:
    """Holders of replicated data and the copies still needed (see the module docstring)."""

    def __init__(
        self,
        *,
        replica_timeout_s: float,
        tombstone_lifetime_s: float,
        pending_s: float,
        started_at: float,
    ) -> None:
        self.replica_timeout_s = replica_timeout_s
        """A silent holder counts for this long."""
        self.tombstone_lifetime_s = tombstone_lifetime_s
        """Deletes are remembered this long."""
        self.pending_s = pending_s
        """An order waits this long for its copy before it may be given again."""
        self._started_at = started_at
        self._holders: dict[str, dict[str, Held]] = {}
        self._seen: dict[str, float] = {}
        self._gone: set[str] = set()
        self._pending: dict[tuple[str, str], tuple[float, DataVersion]] = {}
        """(name, target) → (until when, the version ordered) of the copies asked for."""
        self._deletes: list[Tombstone] = []
        self._dirty: set[str] = set()
        self._all_dirty = True
        self.orders = 0
        """Copy orders planned."""
        self.copies = 0
        """Copies those orders asked for."""

    # -- what is held ---------------------------------------------------------------------------

    def observe(self, holder: str, entries: Iterable[DataEntry], now: float) -> None:
        """Take in what ``holder`` (a datastore endpoint or node ID) says it holds."""
        node = _node(holder)
        if node is None:
            return
        for entry in entries:
            self._record(node, entry, now)

    def observe_listing(
        self, holder: str, entries: Sequence[DataEntry], *, asked_at: float, now: float
    ) -> None:
        """Take in ``holder``'s complete listing of replicated data, asked for at
        ``asked_at``: names it does not list are no longer held there (unless reported after
        the listing was asked for)."""
        node = _node(holder)
        if node is None:
            return
        listed = {entry.name for entry in entries}
        for name, held in list(self._holders.items()):
            known = held.get(node)
            if known is not None and name not in listed and known.heard_at < asked_at:
                del held[node]
                self._mark(name)
                if not held:
                    del self._holders[name]
        for entry in entries:
            self._record(node, entry, now)

    def _record(self, node: str, entry: DataEntry, now: float) -> None:
        if entry.writer is None or entry.digest is None:
            return  # an older datastore: no version to compare
        version = DataVersion(entry.written_at, entry.writer, entry.digest)
        if self._buried(entry.name, entry.job_id, version):
            return
        held = self._holders.setdefault(entry.name, {})
        known = held.get(node)
        changed = known is None or known.version != version or known.replicas != entry.replicas
        held[node] = Held(version, entry.replicas, entry.size, entry.job_id, now)
        if changed:
            self._mark(entry.name)
        ordered = self._pending.get((entry.name, node))
        if ordered is not None and version >= ordered[1]:
            self._pending.pop((entry.name, node))  # the copy arrived (or a newer write)

    def note_delete(
        self,
        *,
        query: str | None,
        job_id: uuid.UUID | None,
        keep_result: bool,
        version: DataVersion,
        now: float,
    ) -> None:
        """A delete was relayed: forget the holders of what it removes, and remember it."""
        tombstone = Tombstone(query, job_id, keep_result, version, now + self.tombstone_lifetime_s)
        self._deletes = [d for d in self._deletes if d.expires_at > now]
        self._deletes.append(tombstone)
        for name, held in list(self._holders.items()):
            for node, copy in list(held.items()):
                if tombstone.buries(name, copy.job_id or job_of_name(name), copy.version):
                    del held[node]
            if not held:
                del self._holders[name]
        self._pending = {k: v for k, v in self._pending.items() if k[0] in self._holders}

    def _buried(self, name: str, job_id: uuid.UUID | None, version: DataVersion) -> bool:
        job = job_id or job_of_name(name)
        return any(d.buries(name, job, version) for d in self._deletes)

    def holders(self, query: str) -> dict[str, list[str]]:
        """Names ``query`` selects → nodes holding their winning version."""
        found: dict[str, list[str]] = {}
        for name, held in self._holders.items():
            if not name_matches(query, name) or not held:
                continue
            winner = max(h.version for h in held.values())
            found[name] = sorted(n for n, h in held.items() if h.version == winner)
        return found

    # -- datastores coming and going ------------------------------------------------------------

    def seen(self, node: str, at: float) -> None:
        """A datastore's heartbeat arrived (or its last one, read from the journal)."""
        previous = self._seen.get(node)
        if previous is None or at > previous:
            self._seen[node] = at
        if node in self._gone:
            self._gone.discard(node)
            self._all_dirty = True

    def appeared(self, node: str, at: float) -> None:
        """A datastore the broker did not know as live appeared: data below their factor may
        go there now."""
        self.seen(node, at)
        self._all_dirty = True

    def check_departures(self, live: Iterable[str], now: float) -> list[str]:
        """Datastores silent for longer than the replica timeout since the last check: their
        copies no longer count (everything is planned again)."""
        alive = set(live)
        departed = [
            node
            for node, at in self._seen.items()
            if node not in alive
            and node not in self._gone
            and now - max(at, self._started_at) > self.replica_timeout_s
        ]
        if departed:
            self._gone.update(departed)
            self._all_dirty = True
        return departed

    def departed_datastores(self, live: Iterable[str], now: float) -> list[str]:
        """Datastores seen within the tombstone lifetime that are not live now (a delete goes
        to them too: the bundle waits for them)."""
        alive = set(live)
        return sorted(
            node
            for node, at in self._seen.items()
            if node not in alive and now - at <= self.tombstone_lifetime_s
        )

    def forget_old(self, now: float) -> list[str]:
        """Forget datastores silent for longer than the tombstone lifetime; returns them."""
        old = [n for n, at in self._seen.items() if now - at > self.tombstone_lifetime_s]
        for node in old:
            del self._seen[node]
            self._gone.discard(node)
        return old

    # -- planning -------------------------------------------------------------------------------

    def _mark(self, name: str) -> None:
        self._dirty.add(name)

    @property
    def due(self) -> bool:
        """Whether something changed since the last :meth:`plan`."""
        return self._all_dirty or bool(self._dirty)

    def mark_all(self) -> None:
        """Plan every name at the next :meth:`plan` (after a listing, or periodically)."""
        self._all_dirty = True

    def plan(self, now: float, candidates: Sequence[Candidate]) -> list[CopyOrder]:
        """The copies to ask for now (see the module docstring), for the names that changed
        since the last call (every name after :meth:`mark_all` or a datastore's coming or
        going). The orders are noted as pending."""
        names = list(self._holders) if self._all_dirty else sorted(self._dirty)
        self._all_dirty = False
        self._dirty.clear()
        self._pending = {k: v for k, v in self._pending.items() if v[0] > now}
        live = {c.node: c for c in candidates}
        orders = []
        for name in names:
            order = self._plan_name(name, now, live)
            if order is not None:
                orders.append(order)
                winner = self._holders[name][order.source].version
                for target in order.targets:
                    self._pending[(name, target)] = (now + self.pending_s, winner)
                    if target in live:
                        candidate = live[target]
                        size = self._holders[name][order.source].size
                        live[target] = Candidate(target, candidate.free - size, candidate.metric)
                self.orders += 1
                self.copies += len(order.targets)
        return orders

    def _counts(self, node: str, now: float, live: dict[str, Candidate]) -> bool:
        if node in live:
            return True
        last = max(self._seen.get(node, self._started_at), self._started_at)
        return now - last <= self.replica_timeout_s

    def _plan_name(self, name: str, now: float, live: dict[str, Candidate]) -> CopyOrder | None:
        held = self._holders.get(name)
        if not held:
            return None
        winner = max(h.version for h in held.values())
        holders = [n for n, h in held.items() if h.version == winner]
        factor = max(held[n].replicas for n in holders)
        size = held[holders[0]].size
        sources = sorted((n for n in holders if n in live), key=lambda n: (_metric(live[n]), n))
        if not sources:
            return None
        # A copy of an older write that is still on its way does not count: the target will
        # be stale when it arrives, and is asked for the winner then.
        pending = {t for (n, t), (_, v) in self._pending.items() if n == name and v == winner}
        counted = {n for n in holders if self._counts(n, now, live)}
        stale = sorted(
            n for n, h in held.items() if h.version < winner and n in live and n not in pending
        )
        missing = factor - len(counted) - len(pending - counted) - len(stale)
        targets = list(stale)
        if missing > 0:
            fresh = [
                c
                for c in live.values()
                if c.node not in held and c.node not in pending and c.free >= size
            ]
            fresh.sort(key=lambda c: (c.metric is None, _metric(c), -c.free, c.node))
            targets.extend(c.node for c in fresh[:missing])
        if not targets:
            return None
        logger.info(
            "%r: %d of %d replicas%s: copying from %s to %s",
            name,
            len(counted),
            factor,
            f", {len(stale)} stale" if stale else "",
            sources[0],
            ", ".join(targets),
        )
        return CopyOrder(sources[0], name, tuple(targets))

    def status(self, now: float, live: Iterable[str]) -> list[ReplicaStatus]:
        """Every replicated name: its factor and holders (those that count), by name."""
        alive = {node: Candidate(node, 0, None) for node in live}
        found = []
        for name in sorted(self._holders):
            held = self._holders[name]
            winner = max(h.version for h in held.values())
            holders = sorted(
                n for n, h in held.items() if h.version == winner and self._counts(n, now, alive)
            )
            stale = sorted(n for n, h in held.items() if h.version < winner)
            factor = max(h.replicas for h in held.values() if h.version == winner)
            found.append(ReplicaStatus(name, factor, tuple(holders), tuple(stale)))
        return found

    def __len__(self) -> int:
        return len(self._holders)


def _metric(candidate: Candidate) -> float:
    return math.inf if candidate.metric is None else candidate.metric
