"""A running lossy link: the model, a hand-operated down switch and the connections it carries.

:class:`LossyLink` is the trio-side counterpart of :class:`~convergence.lossy.model.LinkModel`.
Its epoch is the trio time at which it was made; it reads ``trio.current_time()`` when asked
whether it is down, keeps track of the :class:`~convergence.lossy.stream.LossyStream` objects
open over it, and can be switched down by hand (:meth:`LossyLink.set_down`), which cuts them all
and makes new connections fail until it is switched up again. A
:class:`~convergence.lossy.relay.LossyRelay` runs one link for all the TCP connections it relays;
tests can also wrap in-memory streams over a link directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from .model import ConnectionModel, Direction, LinkModel, LinkProfile

if TYPE_CHECKING:
    from .stream import LossyStream

__all__ = ["LinkStatistics", "LossyLink"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Counters of one lossy link since it was made."""

    connections: int
    """Connections opened over the link while it was up."""
    refused: int
    """Connections attempted while the link was down (refused, or cut at once)."""
    cuts: int
    """Connections cut by the link: scheduled or random cuts, down windows, byte budgets, or by
    hand. Connections closed by either end are not counted."""
    active: int
    """Connections open now."""
    bytes_forward: int
    """Bytes delivered in the forward direction (towards the wrapped stream / relay target)."""
    bytes_backward: int
    """Bytes delivered in the backward direction (towards the relay's client)."""
    down: bool
    """Whether the link is down now (switched down by hand or in a down window)."""


class LossyLink:
    """One lossy link shared by every connection made over it.

    ``profile`` sets how the link misbehaves (a perfect link by default); ``name`` appears in
    log lines; ``epoch`` is the trio time at which the schedule starts (now by default, so make
    the link inside ``trio.run``).
    """

    def __init__(
        self,
        profile: LinkProfile | None = None,
        *,
        name: str = "link",
        epoch: float | None = None,
    ) -> None:
        self.name = name
        """The link's name, for log lines and partition controllers."""
        start = trio.current_time() if epoch is None else epoch
        self.model = LinkModel(profile, epoch=start)
        """The pure schedule behind the link."""
        self._forced_down = False
        self._streams: set[LossyStream] = set()
        self._connections = 0
        self._refused = 0
        self._cuts = 0
        self._bytes = dict.fromkeys(Direction, 0)

    @property
    def profile(self) -> LinkProfile:
        """The knobs of the link's model."""
        return self.model.profile

    @property
    def forced_down(self) -> bool:
        """Whether the link has been switched down by hand."""
        return self._forced_down

    def is_down(self) -> bool:
        """Whether the link is down now: switched down by hand, or in a scheduled down window."""
        return self._forced_down or self.model.is_down(trio.current_time())

    def set_down(self, down: bool) -> None:
        """Switch the link down (cutting every open connection) or back up.

        A link switched down by hand stays down until switched up; while up, its scheduled down
        windows still apply.
        """
        if down == self._forced_down:
            return
        self._forced_down = down
        logger.info("link %s switched %s by hand", self.name, "down" if down else "up")
        if down:
            self.cut_all("link switched down")

    def cut_all(self, reason: str = "cut by hand") -> int:
        """Cut every connection open over the link now; return how many were cut."""
        streams = list(self._streams)
        for stream in streams:
            stream.cut(reason)
        return len(streams)

    def statistics(self) -> LinkStatistics:
        """The link's counters now."""
        return LinkStatistics(
            connections=self._connections,
            refused=self._refused,
            cuts=self._cuts,
            active=len(self._streams),
            bytes_forward=self._bytes[Direction.FORWARD],
            bytes_backward=self._bytes[Direction.BACKWARD],
            down=self.is_down(),
        )

    # Hooks for LossyStream (same package).

    def _attach(self, stream: LossyStream) -> ConnectionModel | None:
        """Register a new connection; None when the link is down (the connection is refused)."""
        if self.is_down():
            self._refused += 1
            logger.info("link %s is down: connection refused", self.name)
            return None
        self._connections += 1
        self._streams.add(stream)
        return self.model.open_connection(trio.current_time())

    def _refuse(self) -> None:
        """Count a connection refused by a relay because the link is down."""
        self._refused += 1

    def _detach(self, stream: LossyStream) -> None:
        self._streams.discard(stream)

    def _count_cut(self) -> None:
        self._cuts += 1

    def _count_bytes(self, direction: Direction, size: int) -> None:
        self._bytes[direction] += size
