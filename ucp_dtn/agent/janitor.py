"""The janitor: the agent's clock-driven chores, in one task.

* Expiry (RFC 9171 §5.5, §4.2.2 lifetime): a stored bundle whose lifetime has passed is deleted
  for the reason "Lifetime expired", with a "deleted" status report if it asked for one.
* Retry times: a custodial bundle whose custody signal did not come by ``next_retry_at`` is sent
  again; a bundle whose retry was scheduled (custody refused) goes back to the forwarding queue.
* Learned routes and roles whose advertisements stopped coming lapse; partially reassembled
  ADUs whose lifetime ended are forgotten.

It sleeps until the store's next deadline (``store.next_deadline()``), at most
``janitor_interval_s``, and is woken early when a nearer deadline appears.
"""

from __future__ import annotations

import logging

import trio

from bpv7 import dtn_time_from_unix
from bpv7.admin import StatusReportReason
from ucp_dtn.store import StoreError

from .contracts import JanitorHost

__all__ = ["Janitor"]

logger = logging.getLogger(__name__)

_BATCH = 256
"""Bundles handled per store query; the rest in the next round, at once."""


class Janitor:
    """Expiry, retry times and route lapse for one agent."""

    def __init__(self, core: JanitorHost) -> None:
        self._core = core
        self.rounds = 0
        """Rounds run (for tests and statistics)."""

    async def run_once(self) -> bool:
        """One round of chores; ``True`` if a batch was full (more may be due now)."""
        core = self._core
        now = core.now()
        expired = await core.store.expired(now, limit=_BATCH)
        for meta in expired:
            try:
                await core.delete(meta.key, StatusReportReason.LIFETIME_EXPIRED, meta=meta)
            except StoreError as exc:
                logger.warning("cannot delete expired bundle %s: %s", meta.key, exc)
        due = await core.store.due_for_retry(now, limit=_BATCH)
        for meta in due:
            if core.custody is not None:
                await core.custody.on_retry_due(meta)
        for original in core.fragments.expire(dtn_time_from_unix(now)):
            # The fragments themselves expire from the store (above); forget the partial ADU.
            core.forget_partial(original)
        if core.routing.expire(now):
            core.routes_updated()
        core.roles.expire(now)
        self.rounds += 1
        return len(expired) == _BATCH or len(due) == _BATCH

    async def run(self) -> None:
        """Do the chores whenever due, until cancelled."""
        core = self._core
        interval = core.config.janitor_interval_s
        while True:
            wakeup = core.new_janitor_round()
            if await self.run_once():
                await trio.lowlevel.checkpoint()
                continue
            deadline = await core.store.next_deadline()
            learned = core.routing.next_learned_expiry()
            if learned is not None:
                deadline = learned if deadline is None else min(deadline, learned)
            delay = interval
            if deadline is not None:
                delay = min(interval, max(0.0, deadline - core.now()))
            with trio.move_on_after(delay):
                await wakeup.wait()
