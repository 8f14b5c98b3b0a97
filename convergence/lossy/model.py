"""The seeded link model: when a lossy link cuts, stalls or goes down, and when each byte arrives.

Theory of operation
-------------------
A :class:`LinkModel` is a :class:`LinkProfile` (the knobs) plus an *epoch*: the instant, in the
caller's clock, at which the link's schedule starts. Times inside the profile (scheduled cuts,
down windows...) are seconds after the epoch; every query takes an absolute ``now`` in the
caller's clock (the trio shells pass ``trio.current_time()``), so the model never reads a clock and
needs no event loop.

Everything random comes from ``random.Random(profile.seed)``. That generator draws one sub-seed
per timeline, in a fixed order, so the timelines are independent: turning stalls on does not move
the cuts. The link-wide timelines are

* **cuts**: instants at which every open connection is cut (a Poisson process with mean gap
  ``drop_every``, plus the scheduled instants ``cut_at``);
* **stalls**: windows during which nothing is forwarded but connections stay open (random windows
  of ``stall_for`` seconds with a mean gap of ``stall_every`` between them, plus ``stalls``);
* **down windows**: windows during which the link is down: open connections are cut when one
  starts and new connections are refused until it ends (``down_every``/``down_for``, plus
  ``down``).

They are generated lazily and never change once generated, so an answer depends only on the
seed, the profile and the time asked about, never on how often or in which order one asks.

Each connection over the link gets a :class:`ConnectionModel` (``open_connection``): it knows the
connection's cut deadline (the next cut instant or the start of the next down window) and, for
each chunk handed to it, computes when the chunk has finished transmitting (``bandwidth``) and
when it is delivered at the far end (``latency`` ± ``jitter``, never before an earlier chunk,
never inside a stall). Jitter is drawn from a per-connection, per-direction generator, so it
depends on the seed, the connection's index and the sequence of chunks, not on wall-clock timing.
A connection can also be cut once it has carried a set number of bytes (``cut_after_bytes``),
which puts a cut exactly in the middle of a transfer whatever the timing.
"""

from __future__ import annotations

import bisect
import enum
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

_BACK_TO_BACK = 0.01
"""Seconds after a chunk finished transmitting within which the next one still follows it
directly (see :meth:`ConnectionModel.transmit`)."""

__all__ = [
    "ConnectionModel",
    "Direction",
    "Fault",
    "FaultKind",
    "LinkModel",
    "LinkProfile",
    "Transmission",
    "Window",
]


class Direction(enum.Enum):
    """Which way a chunk travels over a connection."""

    FORWARD = "forward"
    """From the connecting side towards the wrapped stream (a relay's client towards its target)."""
    BACKWARD = "backward"
    """From the wrapped stream back towards the connecting side (a relay's target to its client)."""


class FaultKind(enum.Enum):
    """The kinds of scheduled misbehaviour a link shows."""

    CUT = "cut"
    """Every open connection is cut at this instant."""
    STALL = "stall"
    """Nothing is forwarded during the window; connections stay open."""
    DOWN = "down"
    """The link is down: connections are cut at the start and refused until the end."""


def _check_time(value: float, what: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, not {value!r}")


def _check_positive(value: float | None, what: str) -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise ValueError(f"{what} must be a finite number > 0, not {value!r}")


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A half-open time window ``[start, end)`` in seconds after a schedule's epoch."""

    start: float
    """Seconds after the epoch at which the window opens (inclusive)."""
    end: float
    """Seconds after the epoch at which the window closes (exclusive); after ``start``."""

    def __post_init__(self) -> None:
        _check_time(self.start, "window start")
        _check_time(self.end, "window end")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """How a lossy link misbehaves. The default profile is a perfect link."""

    seed: int = 0
    """Seed of ``random.Random``: same seed and profile, same schedule."""
    drop_every: float | None = None
    """Mean seconds between random cuts of all open connections (exponential gaps); None: none."""
    cut_at: tuple[float, ...] = ()
    """Scheduled cut instants, seconds after the epoch."""
    cut_after_bytes: tuple[int, ...] = ()
    """The i-th connection (0-based) is cut once it has carried this many bytes, both ways
    together; connections beyond the tuple are not cut by byte count."""
    stall_every: float | None = None
    """Mean seconds between random stalls (from the end of one to the start of the next)."""
    stall_for: float = 1.0
    """Length in seconds of each random stall."""
    stalls: tuple[Window, ...] = ()
    """Scheduled stall windows."""
    down_every: float | None = None
    """Mean seconds between random down windows (from the end of one to the start of the next)."""
    down_for: float = 1.0
    """Length in seconds of each random down window."""
    down: tuple[Window, ...] = ()
    """Scheduled down windows."""
    latency: float = 0.0
    """One-way delay in seconds added to every chunk."""
    jitter: float = 0.0
    """Each chunk's delay is drawn uniformly from ``latency ± jitter`` (never below zero)."""
    bandwidth: float | None = None
    """Bytes per second in each direction; None: unlimited."""

    def __post_init__(self) -> None:
        _check_positive(self.drop_every, "drop_every")
        _check_positive(self.stall_every, "stall_every")
        _check_positive(self.stall_for, "stall_for")
        _check_positive(self.down_every, "down_every")
        _check_positive(self.down_for, "down_for")
        _check_positive(self.bandwidth, "bandwidth")
        _check_time(self.latency, "latency")
        _check_time(self.jitter, "jitter")
        for instant in self.cut_at:
            _check_time(instant, "cut_at instant")
        for budget in self.cut_after_bytes:
            if budget < 0:
                raise ValueError(f"cut_after_bytes entries must be >= 0, not {budget}")
        for window in (*self.stalls, *self.down):
            if not isinstance(window, Window):
                raise TypeError(f"stalls and down take Window objects, not {window!r}")


@dataclass(frozen=True, slots=True)
class Fault:
    """One entry of a link's schedule, as listed by :meth:`LinkModel.faults`."""

    start: float
    """Seconds after the epoch at which the fault begins."""
    end: float
    """Seconds after the epoch at which it ends (equal to ``start`` for a cut)."""
    kind: FaultKind
    """What the link does in the window: cut its connections, stall, or go down."""


@dataclass(frozen=True, slots=True)
class Transmission:
    """What the model decided for one chunk handed to :meth:`ConnectionModel.transmit`."""

    size: int
    """Bytes of the chunk that cross the link; fewer than offered when the byte budget ran out
    (the rest is lost in the cut)."""
    sent_at: float
    """When the chunk has finished transmitting: the sender may offer more from then on."""
    deliver_at: float
    """When the chunk arrives at the far end."""
    cut_after: bool
    """True when the connection's byte budget is spent: cut it once this chunk is delivered."""


class _Instants:
    """Sorted cut instants: fixed ones merged with a lazily drawn Poisson process."""

    def __init__(self, fixed: tuple[float, ...], rng: random.Random, mean: float | None) -> None:
        self._fixed = sorted(fixed)
        self._rng = rng
        self._mean = mean
        self._drawn: list[float] = []

    def _draw_past(self, t: float) -> None:
        if self._mean is None:
            return
        while not self._drawn or self._drawn[-1] <= t:
            last = self._drawn[-1] if self._drawn else 0.0
            self._drawn.append(last + self._rng.expovariate(1.0 / self._mean))

    def first_after(self, t: float) -> float | None:
        """The first instant strictly after ``t``, or None."""
        self._draw_past(t)
        candidates = []
        for times in (self._fixed, self._drawn):
            i = bisect.bisect_right(times, t)
            if i < len(times):
                candidates.append(times[i])
        return min(candidates, default=None)

    def up_to(self, until: float) -> Iterator[float]:
        self._draw_past(until)
        yield from (t for t in self._fixed if t <= until)
        yield from (t for t in self._drawn if t <= until)


class _Windows:
    """Windows: fixed ones plus lazily drawn random ones (exponential gaps, fixed length)."""

    def __init__(
        self,
        fixed: tuple[Window, ...],
        rng: random.Random,
        mean_gap: float | None,
        length: float,
    ) -> None:
        self._fixed = sorted(fixed)
        self._rng = rng
        self._mean_gap = mean_gap
        self._length = length
        self._drawn: list[Window] = []
        self._drawn_starts: list[float] = []

    def _draw_past(self, t: float) -> None:
        """Draw random windows until one starts after ``t``."""
        if self._mean_gap is None:
            return
        while not self._drawn or self._drawn[-1].start <= t:
            last_end = self._drawn[-1].end if self._drawn else 0.0
            start = last_end + self._rng.expovariate(1.0 / self._mean_gap)
            self._drawn.append(Window(start, start + self._length))
            self._drawn_starts.append(start)

    def containing(self, t: float) -> Window | None:
        """A window that contains ``t`` (the latest-ending one if several do), or None."""
        self._draw_past(t)
        found = [w for w in self._fixed if t in w]
        i = bisect.bisect_right(self._drawn_starts, t) - 1
        if i >= 0 and t in self._drawn[i]:
            found.append(self._drawn[i])
        return max(found, key=lambda w: w.end, default=None)

    def release(self, t: float) -> float:
        """``t`` if no window contains it, else the end of the run of windows covering it."""
        while (window := self.containing(t)) is not None:
            t = window.end
        return t

    def first_start_after(self, t: float) -> float | None:
        """The first window start strictly after ``t``, or None."""
        self._draw_past(t)
        starts = [w.start for w in self._fixed if w.start > t]
        i = bisect.bisect_right(self._drawn_starts, t)
        if i < len(self._drawn_starts):
            starts.append(self._drawn_starts[i])
        return min(starts, default=None)

    def up_to(self, until: float) -> Iterator[Window]:
        self._draw_past(until)
        yield from (w for w in self._fixed if w.start <= until)
        yield from (w for w in self._drawn if w.start <= until)


class LinkModel:
    """The schedule of one link, derived from a :class:`LinkProfile` and an epoch.

    Pure: no I/O and no clock; every method takes the time it is asked about. Absolute times
    (``now``, return values) are in the caller's clock; the profile's times and :meth:`faults`
    are relative to ``epoch``.
    """

    def __init__(self, profile: LinkProfile | None = None, *, epoch: float = 0.0) -> None:
        self._profile = profile if profile is not None else LinkProfile()
        self._epoch = epoch
        p = self._profile
        master = random.Random(p.seed)
        cut_seed, stall_seed, down_seed, connection_seed = (master.getrandbits(64) for _ in "1234")
        self._cuts = _Instants(p.cut_at, random.Random(cut_seed), p.drop_every)
        self._stalls = _Windows(p.stalls, random.Random(stall_seed), p.stall_every, p.stall_for)
        self._down = _Windows(p.down, random.Random(down_seed), p.down_every, p.down_for)
        self._connection_seed = connection_seed
        self._opened = 0

    @property
    def profile(self) -> LinkProfile:
        """The knobs this model was built from."""
        return self._profile

    @property
    def epoch(self) -> float:
        """The absolute time at which the schedule starts."""
        return self._epoch

    @property
    def connections_opened(self) -> int:
        """How many connections :meth:`open_connection` has handed out."""
        return self._opened

    def is_down(self, now: float) -> bool:
        """Whether ``now`` falls in a down window."""
        return self._down.containing(now - self._epoch) is not None

    def down_until(self, now: float) -> float | None:
        """When the down period containing ``now`` ends (absolute), or None if the link is up."""
        relative = now - self._epoch
        end = self._down.release(relative)
        return None if end == relative else end + self._epoch

    def is_stalled(self, now: float) -> bool:
        """Whether ``now`` falls in a stall window."""
        return self._stalls.containing(now - self._epoch) is not None

    def release_time(self, t: float) -> float:
        """``t`` if the link is not stalled then, else the end of the stall (absolute)."""
        relative = t - self._epoch
        return self._stalls.release(relative) + self._epoch

    def next_cut(self, after: float) -> float | None:
        """The first cut instant strictly after ``after`` (absolute), or None."""
        instant = self._cuts.first_after(after - self._epoch)
        return None if instant is None else instant + self._epoch

    def next_down(self, after: float) -> float | None:
        """The first start of a down window strictly after ``after`` (absolute), or None."""
        start = self._down.first_start_after(after - self._epoch)
        return None if start is None else start + self._epoch

    def cut_deadline(self, opened_at: float) -> float | None:
        """When a connection opened at ``opened_at`` must be cut by the schedule, or None.

        That is the next cut instant or the start of the next down window, whichever comes
        first; ``opened_at`` itself if the link is down then.
        """
        if self.is_down(opened_at):
            return opened_at
        candidates = (self.next_cut(opened_at), self.next_down(opened_at))
        deadlines = [t for t in candidates if t is not None]
        return min(deadlines, default=None)

    def faults(self, until: float) -> tuple[Fault, ...]:
        """The schedule from the epoch to ``until`` seconds after it, sorted by start."""
        listed = [Fault(t, t, FaultKind.CUT) for t in self._cuts.up_to(until)]
        listed += [Fault(w.start, w.end, FaultKind.STALL) for w in self._stalls.up_to(until)]
        listed += [Fault(w.start, w.end, FaultKind.DOWN) for w in self._down.up_to(until)]
        return tuple(sorted(listed, key=lambda f: (f.start, f.end, f.kind.value)))

    def open_connection(self, now: float) -> ConnectionModel:
        """Model a new connection opened at ``now``; the i-th call gets index i."""
        index = self._opened
        self._opened += 1
        budgets = self._profile.cut_after_bytes
        budget = budgets[index] if index < len(budgets) else None
        return ConnectionModel(self, index=index, opened_at=now, byte_budget=budget)

    def _jitter_seed(self, index: int, direction: Direction) -> str:
        """The seed of connection ``index``'s jitter generator in ``direction``."""
        return f"{self._connection_seed}:{index}:{direction.value}"


class _Pipe:
    """One direction of a connection: when the sender is free, when the last chunk arrives."""

    __slots__ = ("free_at", "last_delivery", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.free_at = -math.inf
        self.last_delivery = -math.inf


class ConnectionModel:
    """The model of one connection over a link: its cut deadline and each chunk's timing."""

    def __init__(
        self, link: LinkModel, *, index: int, opened_at: float, byte_budget: int | None
    ) -> None:
        self._link = link
        self.index = index
        """0-based index of this connection among those opened over the link."""
        self.opened_at = opened_at
        """When the connection was opened (absolute)."""
        self.cut_at = link.cut_deadline(opened_at)
        """When the schedule cuts the connection (absolute), or None if it never does."""
        self.byte_budget = byte_budget
        """Bytes the connection may carry, both ways together, before it is cut; None: no limit."""
        self._carried = 0
        self._pipes = {
            direction: _Pipe(random.Random(link._jitter_seed(index, direction)))
            for direction in Direction
        }

    @property
    def bytes_carried(self) -> int:
        """Bytes accepted by :meth:`transmit` so far, both ways together."""
        return self._carried

    @property
    def budget_spent(self) -> bool:
        """Whether the byte budget has run out (the connection must be cut)."""
        return self.byte_budget is not None and self._carried >= self.byte_budget

    def transmit(self, direction: Direction, now: float, size: int) -> Transmission:
        """Decide the fate of a ``size``-byte chunk offered at ``now`` going ``direction``.

        The chunk starts transmitting when the sender is free and the link is not stalled,
        takes ``size / bandwidth`` seconds, and is delivered ``latency ± jitter`` later (at the
        end of a stall if it would arrive during one, and never before an earlier chunk). A
        zero-size chunk (an end-of-stream marker) takes no time to transmit.
        """
        if size < 0:
            raise ValueError(f"chunk size must be >= 0, not {size}")
        profile = self._link.profile
        pipe = self._pipes[direction]
        size_allowed = size
        cut_after = False
        if self.byte_budget is not None:
            remaining = max(self.byte_budget - self._carried, 0)
            if size >= remaining and (size > 0 or remaining == 0):
                size_allowed = remaining
                cut_after = True
        self._carried += size_allowed
        free_at = pipe.free_at
        duration = size_allowed / profile.bandwidth if profile.bandwidth else 0.0
        if profile.bandwidth and free_at < now <= free_at + _BACK_TO_BACK:
            # A chunk handed over just after the previous one finished follows it back to back:
            # the gap is the simulator's own scheduling delay (a relay task waking up late), not
            # the sender leaving the link idle, and counting it would cap a link below its
            # bandwidth. (It still never finishes before it was offered.)
            sent_at = max(now, self._link.release_time(free_at) + duration)
        else:
            sent_at = self._link.release_time(max(now, free_at)) + duration
        pipe.free_at = sent_at
        delay = profile.latency
        if profile.jitter:
            delay = max(0.0, delay + profile.jitter * (2.0 * pipe.rng.random() - 1.0))
        deliver_at = max(self._link.release_time(sent_at + delay), pipe.last_delivery)
        pipe.last_delivery = deliver_at
        return Transmission(size_allowed, sent_at, deliver_at, cut_after)
