"""Sending replica copies: paced per link, behind every other bundle.

Theory of operation
-------------------
A broker that plans replicas asks a datastore holding a datum to copy it to other datastores
(``data-replicate``). The datastore writes each copy to make into its store's ``copies`` table
(durable: a restart resumes them) and :class:`Replicator` sends them, oldest first, as
``data-put`` messages with custody to the target datastores. A copy keeps the datum's version
(``written_at``, the original ``writer``) and factor, so the target orders it against other
writes of the name exactly as the original holder did; the target answers the copying datastore
and tells the brokers it now holds the datum (``data-held``).

Replication must not crowd out the work it protects. BPv7 has no class of service, so the
pacing happens here, at the only place that knows which bundles are copies, using two things
the bundle node tells (:meth:`~ucp_dtn.agent.BundleNode.forwarding_backlog`): the neighbour a
copy for the target would go to (the *link*), and how many bundles already wait for it.

* **After job and result traffic:** a copy is handed to the agent only while nothing waits in
  the forwarding queue for its link. The copy itself then waits there, so the next copy for
  that link waits for it to leave; a job or result bundle that arrives meanwhile queues behind
  at most one copy (plus the transfers already on the wire).
* **Rate limit per link:** every link has a budget of ``replication_rate`` bytes per second.
  A copy of ``n`` bytes sent at time ``t`` makes the link's next copy wait until
  ``max(t, ready) + n / rate``, so over any stretch of time the copies sent on a link average
  at most the rate (a single copy larger than one second's worth still goes, alone).
* A copy whose target has no route now waits (the datastore may be behind a partition). One
  queued longer than ``replica_timeout_s`` without a route is dropped: the planning broker
  chooses another target once its own wait for the copy runs out.

Pacing is at the sender: a copy crossing several hops is paced on its first one, which bounds
its rate on every later one too. Everything here uses trio's clock for pacing (tests use
``autojump_clock``) and the role's clock only for the age of queued copies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import trio

from bpv7 import BPv7Error, EndpointID

from ...agent import AgentError, BundleNode
from ...store import StoreError
from ...ucp.messages import DataPut, DataReply, DataStatus
from ..mailbox import Mailbox
from ..settings import RoleSettings
from .errors import DataStoreClosedError
from .named_data_store import NamedDataStore

__all__ = ["Replicator", "ReplicatorStatistics"]

logger = logging.getLogger(__name__)

_BATCH = 256
"""Queued copies looked at per pass."""
_IDLE_CHECK_S = 5.0
"""Longest sleep with copies queued but none sendable (a route may appear)."""
_BUSY_CHECK_S = 0.1
"""How soon to look again at a link that has bundles waiting."""
_OVERHEAD_BYTES = 200
"""Bytes a copy's bundle adds to its content (primary block, message fields), for the rate."""


@dataclass(frozen=True, slots=True)
class ReplicatorStatistics:
    """Counters of one datastore's replica copies."""

    queued: int
    """Copies waiting to be sent now."""
    sent: int
    """Copies handed to the agent."""
    bytes_sent: int
    """Content bytes of those copies."""
    confirmed: int
    """Copies a target answered as stored (or as already stored, or as older than what it
    holds: it holds the name either way)."""
    refused: int
    """Copies a target could not store (no space, failure)."""
    dropped: int
    """Copies given up: the datum was gone, or the target unreachable for too long."""


class Replicator:
    """Sends the copies queued in ``store`` (see the module docstring). Run :meth:`run` in the
    role's nursery; :meth:`wake` after queueing copies."""

    def __init__(
        self,
        node: BundleNode,
        store: NamedDataStore,
        mailbox: Mailbox,
        settings: RoleSettings,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.node = node
        self.store = store
        self.mailbox = mailbox
        self.settings = settings
        self._clock = clock
        self._wakeup = trio.Event()
        self._ready_at: dict[EndpointID, float] = {}
        self._waiting = 0
        self._sent = self._bytes = self._confirmed = self._refused = self._dropped = 0

    def wake(self) -> None:
        """Look at the queue now (copies were added)."""
        self._wakeup.set()

    def note_reply(self, reply: DataReply) -> None:
        """Count a target's answer to a copy (the only requests a datastore sends are copies,
        so every ``data-reply`` it receives answers one)."""
        if reply.status in (DataStatus.OK, DataStatus.STALE):
            self._confirmed += 1
            return
        self._refused += 1
        logger.warning(
            "%s: a replica copy was refused: %s %s",
            self.mailbox.endpoint,
            reply.status,
            reply.detail,
        )

    def statistics(self) -> ReplicatorStatistics:
        """What was sent and what waits."""
        return ReplicatorStatistics(
            queued=self._waiting,
            sent=self._sent,
            bytes_sent=self._bytes,
            confirmed=self._confirmed,
            refused=self._refused,
            dropped=self._dropped,
        )

    async def run(self) -> None:
        """Send queued copies as the links allow, until cancelled."""
        while True:
            self._wakeup = trio.Event()
            try:
                delay = await self.send_ready()
            except DataStoreClosedError:
                return
            with trio.move_on_after(delay):
                await self._wakeup.wait()

    async def send_ready(self) -> float:
        """One pass over the queue: send every copy its link allows now. Returns how long to
        wait before the next pass (``inf``: the queue is empty)."""
        copies = await self.store.queued_copies(_BATCH)
        self._waiting = len(copies)
        if not copies:
            return math.inf
        now = trio.current_time()
        wait = _IDLE_CHECK_S
        for name, target, queued_at in copies:
            try:
                hop, backlog = self.node.forwarding_backlog(target)
            except (AgentError, BPv7Error) as exc:
                await self._drop(name, target, f"bad target: {exc}")
                continue
            if hop is None:
                if self._clock() - queued_at > self.settings.replica_timeout_s:
                    await self._drop(name, target, "no route to it")
                continue
            if backlog:
                wait = min(wait, _BUSY_CHECK_S)
                continue
            ready = self._ready_at.get(hop, -math.inf)
            if ready > now:
                wait = min(wait, ready - now)
                continue
            size = await self._send_copy(name, target)
            if size is None:
                continue
            rate = self.settings.replication_rate
            if rate:
                self._ready_at[hop] = max(ready, now) + (size + _OVERHEAD_BYTES) / rate
        self._waiting = len(await self.store.queued_copies(_BATCH))
        return wait if self._waiting else math.inf

    async def _send_copy(self, name: str, target: str) -> int | None:
        """Send one copy and forget it; its content size, or ``None`` if none was sent."""
        datum = await self.store.datum(name)
        if datum is None:
            await self._drop(name, target, "no longer held here")
            return None
        info = datum.info
        private = name in await self.store.private_among([name])
        copy = DataPut(
            request_id=self.mailbox.next_request_id(),
            name=name,
            data=datum.data,
            written_at=info.written_at,
            job_id=info.job_id,
            reply_to=str(self.mailbox.endpoint),
            replicas=info.replicas,
            writer=info.writer,
            private=private,
        )
        try:
            await self.mailbox.send(
                target, copy, custody=True, lifetime_s=self.settings.result_lifetime_s
            )
        except (AgentError, StoreError, ValueError) as exc:
            logger.warning("%s: cannot send a copy of %r to %s: %s", self.node, name, target, exc)
            return None  # stays queued: tried again at the next pass
        await self.store.remove_copy(name, target)
        self._sent += 1
        self._bytes += info.size
        logger.info("copy of %r (%d bytes) sent to %s", name, info.size, target)
        return info.size

    async def _drop(self, name: str, target: str, why: str) -> None:
        await self.store.remove_copy(name, target)
        self._dropped += 1
        logger.info("dropping the copy of %r to %s: %s", name, target, why)
