"""How far the client's transfers have got: :class:`TransferWatch`, and the ``transfer`` events
the client operations send to the ``ucp`` command for its progress bars
(:func:`report_transfers`).

The client is a bundle node of its own, so what it uploads is whatever waits in its store to be
forwarded, and what it downloads is whatever arrives on its sessions. A watch compares the
node's counters with those at its start:

* **upload** — done: octets the peers acknowledged since the start (cumulative over sessions and
  cuts: after a cut the acknowledged part stays done, RFC 9171 §5.8); left: the octets still
  waiting in the store, less the acknowledged part of the transfers in flight.
* **download** — done: octets of incoming transfers received since the start; left: known only
  for the transfers in progress that announced their length (RFC 9174 §5.2.5.1).

The rate is smoothed over the last few seconds, the time left is what is left at that rate.

The client node is the home's (the client agent serves every command of the home with one node),
so the figures count every transfer of the node while the watch runs, not one command's alone.

Events: a few times a second, once a direction has moved (or has left to move) at least
:data:`LARGE_OCTETS` for :data:`MOMENT_S`, ``{"event": "transfer", "direction": "upload" |
"download", "done", "total", "rate", "seconds"}`` whenever its figures changed: small requests
send none, so a command shows bars only for large transfers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from .session import ClientSession

__all__ = ["LARGE_OCTETS", "MOMENT_S", "TransferFigures", "TransferWatch", "report_transfers"]

logger = logging.getLogger(__name__)

LARGE_OCTETS = 256 * 1024
"""A direction that moved (or has left to move) fewer octets sends no events."""
MOMENT_S = 1.0
"""Nor does one that has moved for less than this (small requests stay quiet)."""
REPORT_S = 0.25
"""How often the figures are looked at."""

_SMOOTHING_S = 3.0
"""Time constant of the rate's exponential smoothing."""


@dataclass(frozen=True, slots=True)
class TransferFigures:
    """One direction's progress."""

    done: int
    """Octets moved since the watch started."""
    total: int | None
    """Done plus what is known to be left (``None``: unknown)."""
    rate: float
    """Octets per second, smoothed."""
    seconds: float
    """Since the watch started."""

    @property
    def left(self) -> int | None:
        """Octets known to be left."""
        return None if self.total is None else max(0, self.total - self.done)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (``None``: unknown)."""
        left = self.left
        if left is None or self.rate <= 0:
            return None
        return left / self.rate


class _Rate:
    """An exponentially smoothed rate of a growing counter."""

    __slots__ = ("_at", "_done", "_measured", "rate")

    def __init__(self, now: float) -> None:
        self._at = now
        self._done = 0
        self._measured = False
        self.rate = 0.0

    def update(self, done: int, now: float) -> float:
        elapsed = now - self._at
        if elapsed > 0:
            sample = (done - self._done) / elapsed
            if self._measured:
                self.rate += (sample - self.rate) * min(1.0, elapsed / _SMOOTHING_S)
            else:
                self.rate, self._measured = sample, True
            self._at, self._done = now, done
        return self.rate


class TransferWatch:
    """Follows the client node's uploads and downloads from the moment :meth:`start` ran."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session
        self._started = trio.current_time()
        self._acknowledged = 0
        self._received = 0
        self._up = _Rate(self._started)
        self._down = _Rate(self._started)

    def start(self) -> None:
        """Take the node's counters as the zero point."""
        node = self._session.node
        self._started = trio.current_time()
        self._acknowledged = node.acknowledged_octets()
        self._received = node.received_octets()
        self._up = _Rate(self._started)
        self._down = _Rate(self._started)

    async def upload(self) -> TransferFigures:
        """What left the client since the start, and what waits to leave."""
        node = self._session.node
        now = trio.current_time()
        done = node.acknowledged_octets() - self._acknowledged
        in_flight = sum(
            transfer.done
            for peer in node.peers()
            for transfer in peer.transfers
            if transfer.outgoing
        )
        left = max(0, await node.pending_forward_bytes() - in_flight)
        return TransferFigures(done, done + left, self._up.update(done, now), now - self._started)

    def download(self) -> TransferFigures:
        """What arrived since the start, and what is known to be on its way."""
        node = self._session.node
        now = trio.current_time()
        done = node.received_octets() - self._received
        totals = [
            transfer.total - transfer.done
            for peer in node.peers()
            for transfer in peer.transfers
            if not transfer.outgoing and transfer.total is not None
        ]
        total = done + sum(totals) if totals else None
        return TransferFigures(done, total, self._down.update(done, now), now - self._started)


def worth_showing(figures: TransferFigures) -> bool:
    """Whether a direction is a large transfer (see the module docstring)."""
    moving = figures.done >= LARGE_OCTETS or (figures.left or 0) >= LARGE_OCTETS
    return moving and figures.seconds >= MOMENT_S


def transfer_event(direction: str, figures: TransferFigures) -> dict[str, Any]:
    """The ``transfer`` event of one direction's figures."""
    return {
        "event": "transfer",
        "direction": direction,
        "done": figures.done,
        "total": figures.total,
        "rate": round(figures.rate, 1),
        "seconds": round(figures.seconds, 3),
    }


@asynccontextmanager
async def report_transfers(
    session: ClientSession, emit: Callable[[dict[str, Any]], Awaitable[None]]
) -> AsyncIterator[TransferWatch]:
    """While the block runs, send ``transfer`` events of the session's node to ``emit`` (see
    the module docstring). A command gone away (``emit`` failing) ends the reports, not the
    block."""
    watch = TransferWatch(session)
    watch.start()

    async def report() -> None:
        shown: dict[str, tuple[int, int | None]] = {}
        while True:
            await trio.sleep(REPORT_S)
            for direction, figures in (
                ("upload", await watch.upload()),
                ("download", watch.download()),
            ):
                if direction not in shown and not worth_showing(figures):
                    continue
                if shown.get(direction) == (figures.done, figures.total):
                    continue
                shown[direction] = (figures.done, figures.total)
                try:
                    await emit(transfer_event(direction, figures))
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    logger.debug("transfer reports: the command went away")
                    return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report)
        try:
            yield watch
        finally:
            nursery.cancel_scope.cancel()
