"""Route advertisements as changes: what each session sends, and what the receiver applies.

Theory of operation
-------------------
Sending a neighbour the whole routing table every interval costs every node O(N) octets per
neighbour per interval in a mesh of N nodes (O(N²) for the mesh): most of a quiet mesh's
control traffic. Instead (sans-IO; time is an argument):

* each session runs one :class:`AdvertisementStream` (a random *epoch* names it): its first
  advertisement is *complete*; after that it sends only *changes* — entries whose metric changed,
  new ones, withdrawals (metric :data:`~ucp_dtn.agent.routing.MAX_METRIC`), roles that changed
  — numbered by ``sequence``; when nothing changed it still sends an empty change list every
  interval, which refreshes what the receiver learned from it (routes lapse after three
  intervals without one). A quiet mesh thus costs each node one small advertisement per
  session per interval, whatever its size;
* the receiver (:class:`RouteExchange`, one per node) applies a change list only when it
  follows the previous advertisement of the same stream (``sequence`` = last + 1 in a known
  epoch). Otherwise — a delta arrived out of order, or from a stream whose complete table it
  never saw — it applies nothing, lets the sender's routes age, and asks for a complete table:
  its own next advertisement to that neighbour carries the *resync* flag (sent at once), and the
  neighbour answers with a complete advertisement on every session to us.

TCPCL delivers a session's advertisements in order, so a resync is rare (the agent processes
received bundles in batches on several tasks, which can reorder two advertisements; a node with
two sessions to a neighbour sees two streams, each followed on its own).

:func:`apply_advertisement` is the whole receiving side (routing table, role directory, stream
state); :func:`next_advertisement` the whole sending side. The agent's sessions and
reception call them; ``tests/ucp_dtn/test_route_exchange.py`` runs them over simulated meshes.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from bpv7 import EndpointID

from .advertisement import RouteAdvertisement
from .roles import RoleDirectory
from .routing import MAX_METRIC, RoutingTable

__all__ = [
    "AdvertisementStream",
    "Applied",
    "RouteExchange",
    "apply_advertisement",
    "next_advertisement",
]

_EPOCHS_KEPT = 4
"""Streams followed per neighbour (one per session; a few more across reconnections)."""


class Applied(enum.Enum):
    """What the receiver did with one advertisement."""

    COMPLETE = "complete"
    """A complete table: routes via the sender that it does not list went."""
    CHANGES = "changes"
    """A change list that followed the previous advertisement of its stream."""
    OUT_OF_SYNC = "out of sync"
    """A change list that did not follow: ignored, complete table asked for."""


@dataclass(slots=True)
class AdvertisementStream:
    """The advertisements of one session, as sent (see the module docstring)."""

    epoch: int
    """Names this stream (random, non-zero)."""
    lifetime_s: float
    """Lifetime given to the routes (three intervals)."""
    sequence: int = -1
    """Sequence number of the last advertisement made (-1: none yet)."""
    answered: int = 0
    """How many requests for a complete table (:meth:`RouteExchange.requests`) this stream
    has answered."""
    _sent_routes: dict[EndpointID, int] | None = None
    _sent_roles: dict[EndpointID, frozenset[str]] | None = None

    @classmethod
    def new(cls, lifetime_s: float, rng: random.Random | None = None) -> AdvertisementStream:
        """A stream with a fresh random epoch."""
        epoch = (rng or random).getrandbits(32) | 1
        return cls(epoch, lifetime_s)

    def pending(
        self,
        reachable: Mapping[EndpointID, int],
        roles: Mapping[EndpointID, frozenset[str]],
    ) -> bool:
        """Whether ``reachable`` / ``roles`` differ from what the receiver was told."""
        return self._sent_routes is None or (
            dict(reachable) != self._sent_routes or dict(roles) != self._sent_roles
        )

    def next(
        self,
        reachable: Mapping[EndpointID, int],
        roles: Mapping[EndpointID, frozenset[str]],
        *,
        complete: bool = False,
        resync: bool = False,
    ) -> RouteAdvertisement:
        """The next advertisement when the sender reaches ``reachable`` and knows ``roles``
        (both already split-horizoned for the receiver): complete if it is the first or
        ``complete`` is asked, else the changes since the last one. ``resync``: ask the
        receiver for its complete table."""
        self.sequence += 1
        routes = dict(reachable)
        role_map = dict(roles)
        sent_routes, sent_roles = self._sent_routes, self._sent_roles
        self._sent_routes, self._sent_roles = routes, role_map
        if complete or sent_routes is None or sent_roles is None:
            return RouteAdvertisement(
                self.lifetime_s,
                _ordered(routes.items()),
                _ordered(role_map.items()),
                self.epoch,
                self.sequence,
                complete=True,
                resync=resync,
            )
        changed = {node: m for node, m in routes.items() if sent_routes.get(node) != m}
        changed.update({node: MAX_METRIC for node in sent_routes if node not in routes})
        changed_roles = {node: r for node, r in role_map.items() if sent_roles.get(node) != r}
        changed_roles.update({node: frozenset() for node in sent_roles if node not in role_map})
        return RouteAdvertisement(
            self.lifetime_s,
            _ordered(changed.items()),
            _ordered(changed_roles.items()),
            self.epoch,
            self.sequence,
            complete=False,
            resync=resync,
        )


class RouteExchange:
    """The receiving side's memory of its neighbours' streams, and who asked whom for a
    complete table (one per node)."""

    def __init__(self) -> None:
        self._streams: dict[EndpointID, OrderedDict[int, int]] = {}  # epoch -> last sequence
        self._wanted: set[EndpointID] = set()
        self._requests: dict[EndpointID, int] = {}
        self.resyncs = 0
        """Change lists that did not follow their stream (each asked for a complete table)."""

    def accept(self, advertiser: EndpointID, advert: RouteAdvertisement) -> Applied:
        """Whether ``advert`` from ``advertiser`` applies (and note its place in its stream)."""
        streams = self._streams.setdefault(advertiser, OrderedDict())
        if advert.complete:
            self._wanted.discard(advertiser)
            if advert.epoch:
                streams[advert.epoch] = advert.sequence
                streams.move_to_end(advert.epoch)
                while len(streams) > _EPOCHS_KEPT:
                    streams.popitem(last=False)
            return Applied.COMPLETE
        last = streams.get(advert.epoch)
        if last is not None and advert.sequence == last + 1:
            streams[advert.epoch] = advert.sequence
            return Applied.CHANGES
        streams.pop(advert.epoch, None)
        self._wanted.add(advertiser)
        self.resyncs += 1
        return Applied.OUT_OF_SYNC

    def wants_complete_from(self, neighbour: EndpointID) -> bool:
        """Whether our next advertisement to ``neighbour`` asks for its complete table."""
        return neighbour in self._wanted

    def asked(self, neighbour: EndpointID) -> None:
        """``neighbour`` asked for our complete table: every stream to it answers."""
        self._requests[neighbour] = self._requests.get(neighbour, 0) + 1

    def requests(self, neighbour: EndpointID) -> int:
        """How many times ``neighbour`` asked for our complete table (a stream whose
        ``answered`` is lower sends one next)."""
        return self._requests.get(neighbour, 0)

    def forget(self, neighbour: EndpointID) -> None:
        """The last session with ``neighbour`` ended."""
        self._streams.pop(neighbour, None)
        self._wanted.discard(neighbour)


def next_advertisement(
    stream: AdvertisementStream,
    routing: RoutingTable,
    roles: RoleDirectory,
    exchange: RouteExchange,
    peer: EndpointID,
    *,
    now: float,
    refresh: bool,
) -> RouteAdvertisement | None:
    """The advertisement ``stream`` sends ``peer`` now, or ``None`` when there is nothing to
    say: no change, no request either way, and no ``refresh`` due (an empty change list once
    an interval keeps the peer's routes alive)."""
    reachable = routing.reachable(now=now, exclude_via=peer)
    known = roles.known(reachable, now=now)
    requests = exchange.requests(peer)
    complete = requests > stream.answered
    resync = exchange.wants_complete_from(peer)
    if not (refresh or complete or resync or stream.pending(reachable, known)):
        return None
    stream.answered = requests
    return stream.next(reachable, known, complete=complete, resync=resync)


def apply_advertisement(
    routing: RoutingTable,
    roles: RoleDirectory,
    exchange: RouteExchange,
    advertiser: EndpointID,
    advert: RouteAdvertisement,
    *,
    now: float,
) -> Applied:
    """Take ``advert`` from neighbour ``advertiser`` into ``routing`` and ``roles`` (see the
    module docstring); the caller re-routes when ``routing.version`` moved."""
    applied = exchange.accept(advertiser, advert)
    if advert.resync:
        exchange.asked(advertiser)
    expires_at = now + advert.lifetime_s
    if applied is Applied.COMPLETE:
        routing.learn(advertiser, dict(advert.reachable), expires_at=expires_at)
        roles.learn_many(dict(advert.roles), expires_at=expires_at, via=advertiser, complete=True)
    elif applied is Applied.CHANGES:
        routing.learn_changes(advertiser, dict(advert.reachable), expires_at=expires_at)
        roles.refresh_via(advertiser, expires_at=expires_at)
        roles.learn_many(dict(advert.roles), expires_at=expires_at, via=advertiser)
    return applied


_T = TypeVar("_T")


def _ordered(items: Iterable[tuple[EndpointID, _T]]) -> tuple[tuple[EndpointID, _T], ...]:
    return tuple(sorted(items, key=lambda pair: str(pair[0])))
