"""The executors, datastores and brokers a broker knows, from their heartbeats (sans-IO).

Theory of operation
-------------------
Every heartbeat updates one entry per role it announces (executor, datastore, broker), keyed by
(node ID, role): an executor and a datastore on one node send their own heartbeats with their
own sequence numbers. A heartbeat older than the entry's (lower sequence and not sent later — a
restarted node starts its sequence again) is stale and ignored. An entry silent for longer than
the timeout is gone: :meth:`NodeRegistry.expire` drops it, and every query already leaves it out.

Load: an executor's load is the union of the jobs its last heartbeat lists as running and the
jobs this broker dispatched to it that no heartbeat listed yet (for at most the timeout, so a
lost dispatch does not block a slot for ever). Counting those dispatches spreads a burst of
jobs over all capable executors instead of sending it all to the best one before its next
heartbeat. An executor with ``max_jobs`` slots takes no new job while its load fills them —
unless no capable executor has a free slot: then one may be sent up to ``dispatch_ahead`` more,
which wait there for a slot (it starts the next job the moment one ends, not a round trip
later; many short jobs need that). An executor whose jobs are short may be sent more: as many
as its slots get through in ``ahead_time_s``, judged by how long its recent jobs ran there (a
moving average of the results' ``finished_at - started_at``, the executor's own clock), at
most :data:`MAX_AHEAD` — unless one of its jobs has been out (since dispatch) for longer than
that: a long job holds a slot, and nothing more should queue behind it. The queue at an
executor is then bounded by time rather than by count: a few hundred milliseconds of trivial
jobs, or one job of a minute.

Ranking: first the bytes of the job's named inputs already on the executor's node (its
datastore holds them, or its input cache fetched them lately: :mod:`.placement`), then
:func:`~ucp_dtn.ucp.executor_score` with that load, ties by node ID. Data decides only among
executors that meet the requirements and have room, so a busy executor next to the data does
not keep a job from an idle one elsewhere.

Datastores are ranked by free space (the last heartbeat's ``store_free`` minus what was relayed
to them since).

Time is passed in (``now``, the broker's clock); nothing here blocks or sends.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from bpv7 import BPv7Error, parse_eid

from ...ucp.capabilities import Capabilities, Requirements, executor_score
from ...ucp.messages import Heartbeat, NodeEntry, Role

__all__ = ["MAX_AHEAD", "ExecutorChoice", "KnownNode", "MemberInfo", "NodeRegistry"]

_TRACKED_ROLES = (Role.EXECUTOR, Role.DATASTORE, Role.BROKER)

MAX_AHEAD = 64
"""Jobs an executor may be sent beyond its slots by its jobs' run time, at most."""

_RUN_WEIGHT = 0.25
"""Weight of the newest job in an executor's moving-average run time."""


@dataclass(slots=True)
class KnownNode:
    """The registry's entry for one role of one node."""

    node: str
    """The node ID (text)."""
    role: Role
    """The role this entry is about (one flag)."""
    heartbeat: Heartbeat
    """Its newest heartbeat (by sequence and send time; older ones are ignored)."""
    last_seen: float
    """When that heartbeat arrived (the broker's clock)."""
    dispatched: dict[uuid.UUID, float] = field(default_factory=dict)
    """Executors: jobs dispatched to it that no heartbeat listed yet → when."""
    relayed_bytes: int = 0
    """Datastores: bytes relayed to it since its last heartbeat."""
    outstanding: dict[uuid.UUID, float] = field(default_factory=dict)
    """Executors: jobs this broker sent it that have not ended (result or cancel) → when."""
    run_s: float | None = None
    """Executors: moving average of how long its recent jobs ran (their results' times)."""

    @property
    def free_space(self) -> int:
        """Datastores: estimated free bytes."""
        return max(0, (self.heartbeat.store_free or 0) - self.relayed_bytes)

    def load(self, now: float, horizon: float) -> int:
        """Executors: jobs it runs or was just sent."""
        running = set(self.heartbeat.running_jobs)
        running.update(job for job, at in self.dispatched.items() if now - at <= horizon)
        return len(running)

    @property
    def slots(self) -> int:
        """Executors: jobs it runs at once (at least 1)."""
        return max(1, self.heartbeat.max_jobs)


@dataclass(frozen=True, slots=True)
class ExecutorChoice:
    """The outcome of :meth:`NodeRegistry.choose_executor`."""

    node: str | None
    """The chosen executor's node ID, or ``None``."""
    reason: str = ""
    """Why none was chosen (for the job's detail)."""
    capable: int = 0
    """How many live executors meet the requirements."""
    near_bytes: int = 0
    """Bytes of the job's inputs already on the chosen executor's node."""


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A read-only view of one live registry entry (:meth:`NodeRegistry.members`)."""

    node: str
    """The node ID (text)."""
    role: Role
    """The role this entry is about (one flag)."""
    last_seen: float
    """When its latest heartbeat arrived (the broker's clock)."""
    capabilities: Capabilities | None
    """Executors: the capabilities of its latest heartbeat."""
    load: int
    """Executors: jobs it runs or was just sent (what scheduling counts)."""
    max_jobs: int
    """Executors: jobs it runs at once (0: not an executor)."""
    store_free: int | None
    """Datastores: estimated free bytes (its latest figure minus what was relayed since)."""
    store_used: int | None
    """Datastores: bytes it held at its latest heartbeat."""


class NodeRegistry:
    """Executors, datastores and brokers known from heartbeats (see the module docstring)."""

    def __init__(
        self, timeout_s: float, *, dispatch_ahead: int = 0, ahead_time_s: float = 0.0
    ) -> None:
        self.timeout_s = timeout_s
        """Entries silent for longer than this are gone."""
        self.dispatch_ahead = dispatch_ahead
        """Jobs an executor may be sent beyond its slots when no capable one has a free
        slot."""
        self.ahead_time_s = ahead_time_s
        """More beyond its slots for an executor whose jobs are short: what its slots get
        through in this time (0: only :attr:`dispatch_ahead`)."""
        self._entries: dict[tuple[str, Role], KnownNode] = {}

    # -- heartbeats ---------------------------------------------------------------------------

    def observe(self, heartbeat: Heartbeat, now: float) -> frozenset[Role]:
        """Take in a heartbeat. Returns the roles for which the node is new (or back after
        expiring); raises ``ValueError`` if its node is not a valid node ID."""
        try:
            node = str(parse_eid(heartbeat.node).node_id)
        except BPv7Error as exc:
            raise ValueError(f"heartbeat from an invalid node {heartbeat.node!r}") from exc
        new: set[Role] = set()
        for role in _TRACKED_ROLES:
            if not heartbeat.roles & role:
                continue
            key = (node, role)
            entry = self._entries.get(key)
            if entry is not None and not self._alive(entry, now):
                del self._entries[key]
                entry = None
            if entry is None:
                self._entries[key] = KnownNode(node, role, heartbeat, now)
                new.add(role)
                continue
            previous = entry.heartbeat
            if heartbeat.sequence <= previous.sequence and heartbeat.sent_at <= previous.sent_at:
                continue  # stale or duplicate
            entry.heartbeat = heartbeat
            entry.last_seen = now
            entry.relayed_bytes = 0
            listed = set(heartbeat.running_jobs)
            entry.dispatched = {
                job: at
                for job, at in entry.dispatched.items()
                if job not in listed and now - at <= self.timeout_s
            }
            # A job the executor no longer lists, long after it was sent, ended without a
            # result reaching this broker (or it went to another broker): forget it.
            entry.outstanding = {
                job: at
                for job, at in entry.outstanding.items()
                if job in listed or now - at <= self.timeout_s
            }
        return frozenset(new)

    def expire(self, now: float) -> list[KnownNode]:
        """Drop the entries silent for longer than the timeout; returns them."""
        gone = [entry for entry in self._entries.values() if not self._alive(entry, now)]
        for entry in gone:
            del self._entries[(entry.node, entry.role)]
        return gone

    def _alive(self, entry: KnownNode, now: float) -> bool:
        return now - entry.last_seen <= self.timeout_s

    def live(self, role: Role, now: float) -> list[KnownNode]:
        """Live entries of ``role``, by node ID."""
        return sorted(
            (e for e in self._entries.values() if e.role == role and self._alive(e, now)),
            key=lambda e: e.node,
        )

    def get(self, node: str, role: Role, now: float) -> KnownNode | None:
        """The live entry of ``node`` for ``role``."""
        entry = self._entries.get((node, role))
        return entry if entry is not None and self._alive(entry, now) else None

    # -- executors ----------------------------------------------------------------------------

    def choose_executor(
        self,
        requirements: Requirements,
        now: float,
        *,
        near: Mapping[str, int] | None = None,
    ) -> ExecutorChoice:
        """The best live executor with room whose capabilities meet ``requirements`` (see the
        module docstring); ``near``: node ID → bytes of the job's inputs on that node."""
        executors = self.live(Role.EXECUTOR, now)
        if not executors:
            return ExecutorChoice(None, "no executor known")
        near = near or {}
        best: tuple[int, float, str] | None = None
        ahead: tuple[int, float, str] | None = None
        capable = 0
        first_reason = ""
        for entry in executors:
            capabilities = entry.heartbeat.capabilities
            if capabilities is None:
                first_reason = first_reason or f"{entry.node}: announced no capabilities"
                continue
            reason = requirements.unsatisfied_reason(capabilities)
            if reason is not None:
                first_reason = first_reason or f"{entry.node}: {reason}"
                continue
            capable += 1
            load = entry.load(now, self.timeout_s)
            if load >= entry.slots + self.ahead_of(entry, now):
                continue
            score = executor_score(capabilities, running_jobs=load)
            # Most input bytes at hand, then the highest score; among equals the smallest
            # node ID (the list is sorted, and only a greater key replaces).
            key = (near.get(entry.node, 0), score, entry.node)
            if load < entry.slots:
                if best is None or key[:2] > best[:2]:
                    best = key
            elif ahead is None or key[:2] > ahead[:2]:
                ahead = key
        chosen = best or ahead
        if chosen is not None:
            return ExecutorChoice(chosen[2], capable=capable, near_bytes=chosen[0])
        if capable:
            noun = "the capable executor is" if capable == 1 else f"{capable} capable executors are"
            return ExecutorChoice(None, f"waiting for a free slot: {noun} busy", capable)
        return ExecutorChoice(None, f"no executor meets the requirements ({first_reason})")

    def has_room(self, now: float) -> bool:
        """Whether some live executor that announced capabilities may be sent one more job
        now (a free slot or room to dispatch ahead): when none may, no queued job can go
        anywhere, whatever it requires."""
        return any(
            entry.heartbeat.capabilities is not None
            and entry.load(now, self.timeout_s) < entry.slots + self.ahead_of(entry, now)
            for entry in self.live(Role.EXECUTOR, now)
        )

    def ahead_of(self, entry: KnownNode, now: float) -> int:
        """Jobs ``entry`` (an executor) may be sent beyond its slots when no capable executor
        has a free one (see the module docstring)."""
        base = self.dispatch_ahead
        run_s = entry.run_s
        if base == 0 or self.ahead_time_s <= 0 or run_s is None:
            return base
        if entry.outstanding and now - min(entry.outstanding.values()) > self.ahead_time_s:
            return base  # a job out that long holds a slot: queue nothing more behind it
        by_time = int(entry.slots * self.ahead_time_s / max(run_s, 1e-3))
        return max(base, min(MAX_AHEAD, by_time))

    def note_dispatch(self, node: str, job_id: uuid.UUID, now: float) -> None:
        """A job went to ``node`` (it counts towards its load until a heartbeat lists it)."""
        entry = self._entries.get((node, Role.EXECUTOR))
        if entry is not None:
            entry.dispatched[job_id] = now
            entry.outstanding[job_id] = now

    def note_finished(
        self, node: str | None, job_id: uuid.UUID, run_s: float | None = None
    ) -> None:
        """A job ended (its result came, or it was cancelled): stop counting the dispatch. With
        ``run_s`` (a result: how long it ran there), the run joins the executor's moving
        average."""
        if node is None:
            return
        entry = self._entries.get((node, Role.EXECUTOR))
        if entry is None:
            return
        entry.dispatched.pop(job_id, None)
        sent = entry.outstanding.pop(job_id, None)
        if run_s is not None and sent is not None and math.isfinite(run_s) and run_s >= 0:
            previous = entry.run_s
            entry.run_s = run_s if previous is None else previous + _RUN_WEIGHT * (run_s - previous)

    # -- datastores ---------------------------------------------------------------------------

    def choose_datastore(
        self, size: int, now: float, *, preferred: str | None = None
    ) -> str | None:
        """Where to store ``size`` bytes: ``preferred`` (the node that holds the name) if it is
        live, else the live datastore with the most free space; ``None`` if none is live. The
        bytes are counted against the chosen one's free space."""
        entry = self.get(preferred, Role.DATASTORE, now) if preferred is not None else None
        if entry is None:
            stores = self.live(Role.DATASTORE, now)
            if not stores:
                return None
            # max() keeps the first of equals: the smallest node ID.
            entry = max(stores, key=lambda e: e.free_space)
        entry.relayed_bytes += size
        return entry.node

    # -- reporting ----------------------------------------------------------------------------

    def node_entries(self, now: float) -> tuple[NodeEntry, ...]:
        """Every live node, roles merged, for status replies."""
        merged: dict[str, NodeEntry] = {}
        for entry in sorted(self._entries.values(), key=lambda e: (e.node, e.role)):
            if not self._alive(entry, now):
                continue
            heartbeat = entry.heartbeat
            known = merged.get(entry.node)
            if known is None:
                known = NodeEntry(node=entry.node, roles=Role(0), last_seen=entry.last_seen)
            roles = known.roles | heartbeat.roles
            if entry.role == Role.EXECUTOR:
                known = NodeEntry(
                    node=entry.node,
                    roles=roles,
                    last_seen=max(known.last_seen, entry.last_seen),
                    capabilities=heartbeat.capabilities,
                    running_jobs=len(heartbeat.running_jobs),
                    max_jobs=heartbeat.max_jobs,
                )
            else:
                known = NodeEntry(
                    node=entry.node,
                    roles=roles,
                    last_seen=max(known.last_seen, entry.last_seen),
                    capabilities=known.capabilities or heartbeat.capabilities,
                    running_jobs=known.running_jobs,
                    max_jobs=known.max_jobs,
                )
            merged[entry.node] = known
        return tuple(merged.values())

    def members(self, now: float) -> tuple[MemberInfo, ...]:
        """Every live entry, by node ID and role."""
        return tuple(
            MemberInfo(
                node=entry.node,
                role=entry.role,
                last_seen=entry.last_seen,
                capabilities=entry.heartbeat.capabilities,
                load=entry.load(now, self.timeout_s) if entry.role == Role.EXECUTOR else 0,
                max_jobs=entry.heartbeat.max_jobs,
                store_free=entry.free_space if entry.role == Role.DATASTORE else None,
                store_used=entry.heartbeat.store_used,
            )
            for entry in sorted(self._entries.values(), key=lambda e: (e.node, e.role))
            if self._alive(entry, now)
        )

    def count(self, role: Role, now: float) -> int:
        """Live entries of ``role``."""
        return len(self.live(role, now))
