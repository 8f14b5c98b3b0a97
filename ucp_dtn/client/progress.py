"""How far the client's transfers have got: :class:`TransferWatch`, for a progress display.

The client is a bundle node of its own, so what it uploads is whatever waits in its store to be
forwarded, and what it downloads is whatever arrives on its sessions. A watch compares the
node's counters with those at its start:

* **upload** — done: octets the peers acknowledged since the start (cumulative over sessions and
  cuts: after a cut the acknowledged part stays done, RFC 9171 §5.8); left: the octets still
  waiting in the store, less the acknowledged part of the transfers in flight.
* **download** — done: octets of incoming transfers received since the start; left: known only
  for the transfers in progress that announced their length (RFC 9174 §5.2.5.1).

The rate is smoothed over the last few seconds, the time left is what is left at that rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from .session import ClientSession

__all__ = ["TransferFigures", "TransferWatch"]

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
