"""The broker's side of replication: it learns where replicated data lives, notices datastores
that are gone, and asks holders for the missing copies.

Theory of operation
-------------------
:class:`ReplicaKeeper` puts a :class:`~.replicas.ReplicaPlanner` (the sans-IO rules) on the
network. Every broker keeps one up to date with what it hears — datastores' heartbeats (who is
live, and since when one is silent), their ``data-held`` reports and the deletes the broker
relays — but only the *planning* broker asks for copies: the one with the smallest node ID
among the brokers the node's role directory lists (so one per connected part of the network).
The planning broker also lists every live datastore's replicated data (``data-list`` with
``replicated``) when it starts planning, when a datastore appears and every
``replica_timeout_s``, so that what a lost report or a restart hid is found again.

It plans when something changed: a report, a listing, a datastore that appeared, one silent
for longer than ``replica_timeout_s`` (its copies stop counting), and every
``replica_timeout_s`` in any case. Each :class:`~.replicas.CopyOrder` becomes a
``data-replicate`` to the source datastore, which sends the copies paced
(:mod:`ucp_dtn.roles.datastore.replicator`).

The datastores the broker has seen are kept in its journal with when each was last heard, so
that after a restart a delete still reaches the ones that are away (:meth:`delete_targets`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio

from bpv7 import EndpointID

from ...agent import AgentError, BundleNode
from ...store import StoreError
from ...ucp.messages import (
    DataEntry,
    DataHeld,
    DataList,
    DataListReply,
    DataReplicate,
    DataStatus,
    Role,
)
from ..endpoints import RoleName, role_endpoint
from ..mailbox import Mailbox, RequestTimeout
from ..settings import RoleSettings
from .journal import AsyncJournal
from .registry import KnownNode, NodeRegistry
from .relay import SendMessage
from .replicas import Candidate, ReplicaPlanner

__all__ = ["ReplicaKeeper", "ReplicationStatistics"]

logger = logging.getLogger(__name__)

_LISTING_PAGE = 1000
"""Entries per page of a replicated-data listing."""
_MAX_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class ReplicationStatistics:
    """What a broker knows and did about replicas."""

    planning: bool
    """Whether this broker plans copies (the smallest broker it reaches)."""
    replicated_names: int
    """Replicated data names it knows holders of."""
    below_factor: int
    """Of those, how many have fewer holders that count than their factor."""
    copy_orders: int
    """``data-replicate`` requests sent."""
    copies_ordered: int
    """Copies those requests asked for."""
    listings: int
    """Listings of a datastore's replicated data completed."""


class ReplicaKeeper:
    """Replication at one broker (see the module docstring)."""

    def __init__(
        self,
        node: BundleNode,
        endpoint: EndpointID,
        settings: RoleSettings,
        registry: NodeRegistry,
        journal: AsyncJournal,
        mailbox: Mailbox,
        send: SendMessage,
        clock: Callable[[], float],
        lock: trio.Lock,
    ) -> None:
        self.node = node
        self.endpoint = endpoint
        self.settings = settings
        self._registry = registry
        self._journal = journal
        self._mailbox = mailbox
        self._send = send
        self._clock = clock
        self._lock = lock
        self.planner = ReplicaPlanner(
            replica_timeout_s=settings.replica_timeout_s,
            tombstone_lifetime_s=settings.tombstone_lifetime_s,
            pending_s=max(settings.replica_timeout_s, 2 * settings.request_timeout_s),
            started_at=clock(),
        )
        """The holders and the rules."""
        self._audits_send, self._audits_receive = trio.open_memory_channel[str | None](256)
        self._next_audit = 0.0
        self._was_planning = False
        self._listings = 0

    # -- what the broker hears ------------------------------------------------------------------

    def load(self, datastores: Iterable[tuple[str, float]]) -> None:
        """The datastores the journal remembers, with when each was last heard."""
        for node, last_seen in datastores:
            self.planner.seen(node, last_seen)

    async def heartbeat(self, node: str, new: bool, now: float) -> None:
        """A datastore's heartbeat arrived (``new``: it was not live before)."""
        if not new:
            self.planner.seen(node, now)
            return
        self.planner.appeared(node, now)
        await self._journal.put_datastores([(node, now)])
        if self.planning():
            self._request_audit(node)

    async def held(self, message: DataHeld) -> None:
        """A datastore reports replicated data it holds now."""
        self.planner.observe(message.node, message.entries, self._clock())
        await self.plan()

    async def datastores_gone(self, gone: Iterable[KnownNode]) -> None:
        """Datastores the registry dropped: remember when they were last heard."""
        rows = [(entry.node, entry.last_seen) for entry in gone if entry.role == Role.DATASTORE]
        if rows:
            await self._journal.put_datastores(rows)

    async def tick(self, now: float) -> None:
        """Once per broker tick: notice departures, list and plan when due."""
        live = [entry.node for entry in self._registry.live(Role.DATASTORE, now)]
        for node in self.planner.check_departures(live, now):
            logger.warning(
                "datastore %s silent for over %.0f s: its replicas no longer count",
                node,
                self.settings.replica_timeout_s,
            )
        old = self.planner.forget_old(now)
        if old:
            await self._journal.delete_datastores(old)
        planning = self.planning()
        current = trio.current_time()
        if planning and (not self._was_planning or current >= self._next_audit):
            self._next_audit = current + self.settings.replica_timeout_s
            self._request_audit(None)
        self._was_planning = planning
        await self.plan()

    def delete_targets(self, now: float) -> list[str]:
        """Node IDs of the datastores a delete must reach: the live ones and the ones seen
        within the tombstone lifetime (their bundle waits for them)."""
        live = [entry.node for entry in self._registry.live(Role.DATASTORE, now)]
        return sorted(set(live) | set(self.planner.departed_datastores(live, now)))

    # -- planning -------------------------------------------------------------------------------

    def planning(self) -> bool:
        """Whether this broker plans copies: no broker its role directory lists has a smaller
        node ID."""
        own = str(self.node.node_id)
        return all(own <= str(node) for node, _ in self.node.nodes_with_role(RoleName.BROKER))

    def metrics(self) -> dict[str, int]:
        """Datastore node ID → route metric, for those the role directory lists as reachable
        now (0: this node)."""
        return {str(node): metric for node, metric in self.node.nodes_with_role(RoleName.DATASTORE)}

    def candidates(self, now: float) -> list[Candidate]:
        """The live datastores with their free space and route metric."""
        metrics = self.metrics()
        return [
            Candidate(entry.node, entry.free_space, metrics.get(entry.node))
            for entry in self._registry.live(Role.DATASTORE, now)
        ]

    async def plan(self) -> None:
        """Ask for the copies the planner finds missing (only the planning broker does)."""
        if not self.planner.due or not self.planning():
            return
        now = self._clock()
        for order in self.planner.plan(now, self.candidates(now)):
            request = DataReplicate(
                request_id=self._mailbox.next_request_id(),
                name=order.name,
                targets=tuple(str(role_endpoint(t, RoleName.DATASTORE)) for t in order.targets),
                reply_to=str(self.endpoint),
            )
            try:
                await self._send(
                    role_endpoint(order.source, RoleName.DATASTORE),
                    request,
                    lifetime_s=self.planner.pending_s,
                )
            except (AgentError, StoreError, ValueError) as exc:
                logger.warning("cannot ask %s for copies of %r: %s", order.source, order.name, exc)

    # -- listings -------------------------------------------------------------------------------

    def _request_audit(self, node: str | None) -> None:
        # When plenty are queued already, the periodic listing covers this one.
        with contextlib.suppress(trio.WouldBlock):
            self._audits_send.send_nowait(node)

    async def run_audits(self) -> None:
        """List replicated data of the datastores asked for (``None``: every live one the role
        directory reaches), all at once, and plan; until cancelled."""
        while True:
            node = await self._audits_receive.receive()
            if node is None:
                reachable = self.metrics()
                live = self._registry.live(Role.DATASTORE, self._clock())
                targets = [e.node for e in live if e.node in reachable]
            else:
                targets = [node]
            async with trio.open_nursery() as nursery:
                for target in targets:
                    nursery.start_soon(self._audit, target)
            async with self._lock:
                if node is None:
                    self.planner.mark_all()
                await self.plan()

    async def _audit(self, node: str) -> None:
        asked_at = self._clock()
        entries = await self._list_replicated(node)
        if entries is None:
            return
        async with self._lock:
            self.planner.observe_listing(node, entries, asked_at=asked_at, now=self._clock())
            self._listings += 1

    async def _list_replicated(self, node: str) -> list[DataEntry] | None:
        """Every replicated datum ``node`` holds (following its cursors); ``None`` if it did
        not answer in time or could not list."""
        destination = role_endpoint(node, RoleName.DATASTORE)
        entries: list[DataEntry] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            request = DataList(
                request_id=self._mailbox.next_request_id(),
                page_size=_LISTING_PAGE,
                cursor=cursor,
                replicated=True,
            )
            try:
                [incoming] = await self._mailbox.request(
                    destination, request, timeout_s=self.settings.request_timeout_s
                )
            except (RequestTimeout, AgentError, StoreError) as exc:
                logger.info("listing the replicas of %s: %s", node, exc)
                return None
            reply = incoming.message
            if not isinstance(reply, DataListReply) or reply.status not in (
                DataStatus.OK,
                DataStatus.NOT_FOUND,
            ):
                logger.info("listing the replicas of %s: answered %r", node, reply)
                return None
            entries.extend(reply.entries)
            cursor = reply.cursor
            if cursor is None:
                return entries
        logger.warning("listing the replicas of %s: too many pages", node)
        return None

    def statistics(self) -> ReplicationStatistics:
        """Counters and gauges."""
        now = self._clock()
        live = [entry.node for entry in self._registry.live(Role.DATASTORE, now)]
        status = self.planner.status(now, live)
        return ReplicationStatistics(
            planning=self.planning(),
            replicated_names=len(status),
            below_factor=sum(1 for s in status if len(s.holders) < s.replicas),
            copy_orders=self.planner.orders,
            copies_ordered=self.planner.copies,
            listings=self._listings,
        )
