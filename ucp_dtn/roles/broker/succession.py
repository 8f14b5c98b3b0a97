"""Jobs changing brokers: taking over the jobs of a lost broker, handing jobs back when two
brokers own one, and holding queued jobs back after a restart.

Theory of operation
-------------------
Broker syncs (:mod:`.sync`) give every broker the unfinished jobs of the others, each with its
``JobInfo`` and inline data. :class:`Succession` uses them three ways (the rules are in
:mod:`.redeploy`):

* **Takeover.** When a broker has been gone — not listed by the role directory, no sync from it
  — for longer than ``broker_timeout_s`` (plus a sync round per live broker with a smaller node
  ID, :func:`~.redeploy.takeover_wait`), this broker makes each of its unfinished jobs its own
  (:func:`~.redeploy.adopted`): a queued job is dispatched from here, with its inline data; a
  dispatched or running one waits for its executor's report here (or is redeployed if that
  executor is lost too). The job's client gets a ``JobAccepted`` from this broker, so
  ``ucp status`` shows who answers for it now. The same happens at once when an executor
  reports on a job whose broker it no longer reaches.
* **Two owners.** A broker that comes back finds its jobs in the syncs of the one that took them
  over. :func:`~.redeploy.keeps_job` decides, the same on both sides, which keeps each; the other
  drops its record (and the job becomes foreign there).
* **After a restart,** a broker that had peers holds back the jobs it had queued
  (:class:`~.redeploy.RestartHold`) until each remembered peer has sent a full sync (which
  lists every job it owns, those it took over included) or two sync rounds passed. Its own
  first sync is full and goes back in sequence, which tells the peers it restarted: they send
  it a full sync at their next round. So a job is dispatched once even when its
  first broker returns.

Duplicates can still happen when both sides of a partition take over the same broker's jobs;
the first result wins, as for a redeployed job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable

import trio

from ...ucp.messages import JobAccepted, SyncedJob
from ..directory import BrokerDirectory
from ..endpoints import node_of
from ..settings import RoleSettings
from .job_records import JobRecord
from .jobs import JobBook
from .journal import AsyncJournal
from .redeploy import RestartHold, adopted, keeps_job, orphaned_jobs, takeover_wait
from .relay import SendMessage
from .sync import BrokerPeering

__all__ = ["Succession"]

logger = logging.getLogger(__name__)


class Succession:
    """Takeovers, hand-backs and the restart hold of one broker run (see the module
    docstring). The broker calls it with its lock held."""

    def __init__(
        self,
        own: str,
        settings: RoleSettings,
        jobs: JobBook,
        journal: AsyncJournal,
        peering: BrokerPeering,
        directory: BrokerDirectory,
        send: SendMessage,
        save: Callable[[JobRecord], Awaitable[None]],
        announce: Callable[[JobRecord], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self.own = own
        """This broker's endpoint (text)."""
        self.settings = settings
        self._jobs = jobs
        self._journal = journal
        self._peering = peering
        self._directory = directory
        self._send = send
        self._save = save
        self._announce = announce
        self._clock = clock
        self._known: set[str] = set()
        self._hold = RestartHold((), (), 0.0)
        self._serving_since = float("inf")
        self.takeovers = 0
        """Jobs of other brokers made this broker's own."""
        self.handed_back = 0
        """Own jobs dropped because another broker keeps them."""

    def start(self, known_brokers: Iterable[str]) -> None:
        """The broker (re)starts: hold its queued jobs if it had peers."""
        self._known = set(known_brokers)
        self._hold = RestartHold(
            (record.job_id for record in self._jobs.queued()),
            self._known,
            trio.current_time() + 2 * self._peering.interval_s,
        )
        if self._hold:
            logger.info(
                "broker %s: %d queued jobs wait for the syncs of %s (one may have taken them over)",
                self.own,
                len(self._hold),
                ", ".join(sorted(self._hold.awaited)),
            )

    def serving(self, since: float) -> None:
        """The broker serves since ``since`` (its clock): a broker it has not heard from
        since then has been gone at least that long."""
        self._serving_since = since

    def holds(self, job_id: uuid.UUID) -> bool:
        """Whether a queued job may not be dispatched yet (the restart hold)."""
        return self._hold.holds(job_id)

    def release_held(self) -> None:
        """End the restart hold if it is time."""
        released = self._hold.release(trio.current_time())
        if released:
            logger.info("broker %s: %d held jobs may be dispatched now", self.own, released)

    # -- takeovers ------------------------------------------------------------------------------

    async def take_over(self, job_id: uuid.UUID, why: str = "") -> JobRecord | None:
        """Make a job another broker owns (known from its syncs) this broker's own and tell its
        client which broker answers for it now; ``None`` if that is not possible."""
        foreign = self._jobs.foreign(job_id)
        if foreign is None:
            return None
        record = adopted(foreign, self._jobs.next_sequence(), self._clock())
        if record is None:
            return None
        await self._save(record)
        self.takeovers += 1
        logger.info("job %s taken over from broker %s%s", job_id, foreign.broker, why)
        accepted = JobAccepted(job_id=job_id, broker=self.own)
        await self._send(record.client, accepted, lifetime_s=self.settings.result_lifetime_s)
        await self._announce(record)
        return record

    async def take_over_orphans(self, now: float) -> list[JobRecord]:
        """Take over the unfinished jobs of brokers gone too long; returns the new records."""
        live = {str(node) for node in self._directory.live_broker_nodes()}
        own_node = str(node_of(self.own))
        wait = takeover_wait(
            live, own_node, self.settings.broker_timeout_s, self._peering.interval_s
        )

        def gone_for(broker: str) -> float:
            if str(node_of(broker)) in live:
                return 0.0
            heard = self._peering.heard(broker)
            return now - max(self._serving_since, heard if heard is not None else 0.0)

        orphans = orphaned_jobs(self._jobs.foreign_jobs(), gone_for, wait)
        taken = []
        for foreign in sorted(orphans, key=lambda f: (f.status.updated_at, str(f.status.job_id))):
            record = await self.take_over(foreign.status.job_id, f" (gone for over {wait:.0f} s)")
            if record is not None:
                taken.append(record)
        return taken

    # -- syncs ----------------------------------------------------------------------------------

    async def synced(
        self, sender: str, contested: list[SyncedJob], *, full: bool
    ) -> list[uuid.UUID]:
        """A sync from ``sender`` was taken in: remember the broker, hand back the contested
        jobs it keeps, and — a ``full`` sync, which lists every job the sender owns — end the
        restart hold's wait for it. Returns the jobs handed back."""
        if sender not in self._known:
            self._known.add(sender)
            await self._journal.put_brokers([(sender, self._clock())])
        handed_back = []
        for synced in contested:
            record = self._jobs.get(synced.status.job_id)
            if record is None or keeps_job(record, self.own, synced, sender):
                continue
            await self._journal.delete_jobs([record.job_id])
            self._jobs.drop(record.job_id)
            self._jobs.take_foreign(sender, synced)
            self._hold.discard(record.job_id)
            self.handed_back += 1
            handed_back.append(record.job_id)
            logger.info(
                "job %s is %s's (it took the job over): dropping this broker's record",
                record.job_id,
                sender,
            )
        if full:
            self._hold.heard(sender)
            self.release_held()
        return handed_back
