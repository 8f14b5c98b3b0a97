"""One periodic snapshot for every open page: :class:`SnapshotFeed`.

Theory of operation
-------------------
The feed owns the only task that builds snapshots for the event stream. While at least one
subscriber (an open page's server-sent event stream) listens, it builds one snapshot per
interval, encodes it once, and wakes every subscriber with the same bytes: N open pages cost one
snapshot per interval, not N. With no subscriber it sleeps and builds nothing, so a node nobody
looks at pays nothing. A request for the current snapshot (``/api/v1/snapshot``) gets the latest
one if it is younger than the interval, else one built on the spot and kept for the next asker.

A slow subscriber never holds the others up: each one only ever sees the newest snapshot (it
skips what it missed), so nothing queues per subscriber.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

__all__ = ["SnapshotFeed", "Subscription"]

logger = logging.getLogger(__name__)


class Subscription:
    """One listener of a :class:`SnapshotFeed` (see :meth:`SnapshotFeed.subscribe`)."""

    def __init__(self, feed: SnapshotFeed) -> None:
        self._feed = feed
        self._seen = -1

    async def next(self) -> bytes:
        """The newest snapshot this subscriber has not had yet (waits for the next one)."""
        feed = self._feed
        while feed.version <= self._seen or feed.latest is None:
            await feed.published.wait()
        self._seen = feed.version
        return feed.latest


class SnapshotFeed:
    """Builds encoded snapshots for its subscribers (see the module docstring).

    ``build()`` returns one encoded snapshot; ``interval_s`` is the time between two while
    anybody listens (on trio's clock, so tests run it with the autojump clock).
    """

    def __init__(self, build: Callable[[], bytes], interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self._build = build
        self.interval_s = interval_s
        """Seconds between two snapshots while subscribers listen."""
        self.latest: bytes | None = None
        """The newest encoded snapshot."""
        self.version = 0
        """How many snapshots were published."""
        self._built_at = float("-inf")
        self.published = trio.Event()
        """Set when a snapshot is published (then replaced by a fresh event)."""
        self._subscribers = 0
        self._listening = trio.Event()
        self.builds = 0
        """Snapshots built (for tests and the benchmark)."""

    @property
    def subscribers(self) -> int:
        """Subscriptions open now."""
        return self._subscribers

    def current(self) -> bytes:
        """The newest snapshot if younger than the interval, else a fresh one."""
        if self.latest is None or trio.current_time() - self._built_at >= self.interval_s:
            self._publish()
        assert self.latest is not None
        return self.latest

    def _publish(self) -> None:
        self.latest = self._build()
        self._built_at = trio.current_time()
        self.builds += 1
        self.version += 1
        published, self.published = self.published, trio.Event()
        published.set()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Listen for snapshots while the block runs; the first :meth:`Subscription.next`
        returns the current one at once."""
        self._subscribers += 1
        self._listening.set()
        try:
            self.current()
            yield Subscription(self)
        finally:
            self._subscribers -= 1
            if not self._subscribers:
                self._listening = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish a snapshot per interval while anybody listens; until cancelled."""
        task_status.started()
        while True:
            await self._listening.wait()
            due = self._built_at + self.interval_s
            if trio.current_time() < due:
                await trio.sleep_until(due)
            if self._subscribers:
                try:
                    self._publish()
                except Exception:  # a bug in a reader must not take the daemon down
                    logger.exception("dashboard snapshot failed")
                    await trio.sleep(self.interval_s)
