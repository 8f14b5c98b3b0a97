"""Broker peering: what a broker tells the other brokers it knows, and what it takes from them
(so that any broker can answer for, and take over, another's jobs).

Every ``3 * heartbeat_interval_s`` a broker sends a :class:`BrokerSync` to each other broker it
knows — the node's :class:`BrokerDirectory` (configured brokers and the agent's role
directory), brokers that sent it a sync, and brokers whose heartbeats it saw. A sync carries the
broker's own jobs (the job itself while it is not final, so another broker could take it over)
and its name → datastore cache. A job that is not final travels with its inline data, so a
broker that takes it over can run it whole (the price: that data crosses to each peer with
every change of the job and every full sync). A peer that has not had a sync yet, a peer that
restarted, and every peer every tenth round, gets everything (``full``); otherwise a sync
carries what changed since the previous round. A broker that accepted a job syncs at its next
tick instead of waiting for the round, so the job reaches the others soon. Syncs travel
without custody and live for three rounds: the next one supersedes them.

A received sync is stale when its sequence and send time are not newer than the last one from
that broker (a sequence that went back with a later send time is a restarted broker: it gets a
full sync next). Otherwise its jobs (those this broker does not own) become known for status
queries, ``after`` dependencies and takeovers, and its names are merged into the cache (last
write wins). Jobs it lists that this broker owns too are handed back as *contested*.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import trio

from bpv7 import BPv7Error, parse_eid

from ...ucp.messages import BrokerSync, DataEntry, Role, SyncedJob
from ..directory import BrokerDirectory
from ..endpoints import RoleName, role_endpoint
from ..settings import RoleSettings
from .jobs import JobBook
from .name_cache import NameCache
from .registry import NodeRegistry
from .relay import SendMessage

__all__ = ["SYNC_HEARTBEATS", "BrokerPeering", "SyncOutcome"]

logger = logging.getLogger(__name__)

SYNC_HEARTBEATS = 3
"""A broker syncs every this many heartbeat intervals."""
_FULL_EVERY = 10
"""Every this many rounds a sync carries everything."""
_REMEMBER_ROUNDS = 20
"""A broker known only from its syncs is forgotten after this many silent rounds."""


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What taking in one sync changed (:meth:`BrokerPeering.accept`)."""

    sender: str
    """The broker that sent it (EID text)."""
    full: bool
    """It lists everything the sender owns (not only what changed)."""
    became_final: list[uuid.UUID]
    """Its jobs that became final here (their dependents may move)."""
    contested: list[SyncedJob]
    """Jobs it lists as its own that this broker owns too."""
    names: list[DataEntry]
    """Name cache entries that changed."""


class BrokerPeering:
    """Sending and taking in broker syncs (see the module docstring)."""

    def __init__(
        self,
        own: str,
        directory: BrokerDirectory,
        settings: RoleSettings,
        clock: Callable[[], float],
    ) -> None:
        self.own = own
        """This broker's endpoint (text)."""
        self._directory = directory
        self._settings = settings
        self._clock = clock
        self.interval_s = SYNC_HEARTBEATS * settings.heartbeat_interval_s
        """Seconds between sync rounds."""
        self.sent = 0
        """Syncs sent."""
        self.received = 0
        """Syncs taken in."""
        self._jobs = JobBook()
        self._names = NameCache()
        self.reset(self._jobs, self._names)

    def reset(self, jobs: JobBook, names: NameCache) -> None:
        """Start over with the broker's (re)loaded state."""
        self._jobs = jobs
        self._names = names
        self._job_mark = 0
        self._name_mark = 0
        self._round = 0
        self._sequence = 0
        self._next_round: float | None = None
        self._synced: set[str] = set()
        self._heard: dict[str, float] = {}
        self._latest: dict[str, tuple[int, float]] = {}

    # -- sending ------------------------------------------------------------------------------

    def known_peers(self, registry: NodeRegistry, now: float) -> list[str]:
        """Endpoints of the other brokers to sync with."""
        peers = self._directory_brokers()
        peers.extend(
            str(role_endpoint(e.node, RoleName.BROKER)) for e in registry.live(Role.BROKER, now)
        )
        forget_after = _REMEMBER_ROUNDS * self.interval_s
        peers.extend(b for b, at in self._heard.items() if now - at <= forget_after)
        return [p for p in dict.fromkeys(peers) if p != self.own]

    def _directory_brokers(self) -> list[str]:
        try:
            return [str(b) for b in self._directory.brokers()]
        except BPv7Error as exc:  # a configured broker that is no EID
            logger.warning("broker directory: %s", exc)
            return []

    def soon(self) -> None:
        """Sync at the next chance instead of waiting for the round (a job was accepted)."""
        self._next_round = None

    def heard(self, broker: str) -> float | None:
        """When a sync from ``broker`` (EID text) last arrived (the broker's clock)."""
        return self._heard.get(broker)

    async def maybe_sync(self, send: SendMessage, registry: NodeRegistry, now: float) -> None:
        """Send a sync round if one is due (timed by trio's clock)."""
        current = trio.current_time()
        if self._next_round is not None and current < self._next_round:
            return
        self._next_round = current + self.interval_s
        await self.sync_now(send, registry, now)

    async def sync_now(self, send: SendMessage, registry: NodeRegistry, now: float) -> None:
        """Send one sync round to every known peer."""
        peers = self.known_peers(registry, now)
        self._round += 1
        job_mark, name_mark = self._jobs.change_mark, self._names.change_mark
        if not peers:
            self._job_mark, self._name_mark = job_mark, name_mark
            return
        full_round = self._round % _FULL_EVERY == 1
        delta: BrokerSync | None = None
        full: BrokerSync | None = None
        for peer in peers:
            if full_round or peer not in self._synced:
                if full is None:
                    full = self._build(now, full=True)
                message = full
            else:
                if delta is None:
                    delta = self._build(now, full=False)
                message = delta
            await send(peer, message, lifetime_s=3 * self.interval_s)
            self._synced.add(peer)
            self.sent += 1
        self._job_mark, self._name_mark = job_mark, name_mark

    def _build(self, now: float, *, full: bool) -> BrokerSync:
        self._sequence += 1
        if full:
            jobs = self._jobs.records()
            names = self._names.entries()
        else:
            jobs = self._jobs.changed_since(self._job_mark)
            names = self._names.changed_since(self._name_mark)
        return BrokerSync(
            broker=self.own,
            sequence=self._sequence,
            sent_at=now,
            full=full,
            jobs=tuple(record.synced() for record in jobs),
            data=tuple(names),
        )

    # -- receiving ----------------------------------------------------------------------------

    def accept(self, message: BrokerSync) -> SyncOutcome | None:
        """Take in a sync (see the module docstring); ``None`` for a stale sync or one of our
        own. Raises ``ValueError`` (a :class:`bpv7.EIDError`) if its broker is not an EID."""
        sender = str(parse_eid(message.broker))
        if sender == self.own:
            return None
        latest = self._latest.get(sender)
        if latest is not None and message.sequence <= latest[0]:
            if message.sent_at <= latest[1]:
                return None
            logger.info("broker %s restarted: it gets everything in the next sync", sender)
            self._synced.discard(sender)
        self._latest[sender] = (message.sequence, message.sent_at)
        self._heard[sender] = self._clock()
        self.received += 1
        became_final, contested = self._jobs.merge_foreign(sender, message.jobs)
        names = self._names.merge(message.data)
        logger.debug(
            "sync %d from %s: %d jobs, %d names",
            message.sequence,
            sender,
            len(message.jobs),
            len(message.data),
        )
        return SyncOutcome(sender, message.full, became_final, contested, names)
