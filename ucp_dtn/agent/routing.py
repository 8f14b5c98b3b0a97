"""The routing table: which neighbour a bundle for a destination EID goes to next.

Theory of operation
-------------------
Three kinds of routes live in one :class:`RoutingTable` (pure: no I/O, every time an argument):

* **neighbour** routes: every node we have a TCPCL session with is reachable directly, metric 1
  (one per peer node ID, however many sessions it has);
* **static** routes from the configuration or :meth:`RoutingTable.add_static`: an EID pattern
  and a next-hop node ID, metric 1 by default;
* **learned** routes from neighbours' route advertisements (see
  :mod:`ucp_dtn.agent.advertisement`): "node X is reachable via neighbour N with metric m",
  each with an expiry (three advertisement intervals of N); refreshed by every advertisement.

:meth:`RoutingTable.next_hop` looks at every route whose pattern matches the destination and
orders them by specificity (longest pattern first), then metric (lowest first), then origin
(neighbour, static, learned). It returns the first whose next hop is a connected neighbour —
directly, or through another route to that next hop (a static route may name a node that is
several hops away) — so a bundle takes the best route that can carry it *now* and otherwise
waits in the store (store-and-forward) until a route comes up. Routes back to the node a bundle
came from are skipped (``exclude``) unless that node is the bundle's destination.

Patterns (:class:`RoutePattern`): ``"*"`` matches everything (specificity 0); ``"dtn://b/*"``,
``"dtn://b/"``, ``"ipn:5.*"`` and ``"ipn:5.0"`` match every endpoint of one node; another
``"...*"`` text is a plain prefix of the EID text; any other text is one exact EID, more specific
than any prefix. The specificity of a pattern is the length of its prefix text.

Every change that can change an answer bumps :attr:`RoutingTable.version`, so callers may
cache answers until it moves.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bpv7 import DecodeError, EndpointID, IpnEID, parse_eid

from .errors import ConfigError

__all__ = [
    "MAX_METRIC",
    "STATIC_METRIC",
    "RouteInfo",
    "RouteOrigin",
    "RoutePattern",
    "RoutingTable",
]

MAX_METRIC = 16
"""Metrics reach at most this; a route at ``MAX_METRIC`` or more is unreachable (as in RIP,
it bounds counting-to-infinity after a link loss)."""

STATIC_METRIC = 1
"""Metric of configured static routes."""

_MAX_RESOLVE_DEPTH = 4
"""How many routes deep a next hop that is not a neighbour is resolved."""


class RouteOrigin(enum.Enum):
    """Where a route came from."""

    NEIGHBOUR = "neighbour"
    """A connected peer (metric 1)."""
    STATIC = "static"
    """Configuration or ``BundleNode.add_route``."""
    LEARNED = "learned"
    """A neighbour's route advertisement."""


_ORIGIN_RANK = {RouteOrigin.NEIGHBOUR: 0, RouteOrigin.STATIC: 1, RouteOrigin.LEARNED: 2}


@dataclass(frozen=True, slots=True)
class RoutePattern:
    """A parsed route pattern (see the module docstring for the forms)."""

    text: str
    """The pattern as written."""
    node: EndpointID | None
    """The node whose endpoints all match, for node patterns; else ``None``."""
    prefix: str | None
    """EID text prefix for plain prefix patterns (``""`` for ``"*"``); else ``None``."""
    exact: EndpointID | None
    """The one matching EID for exact patterns; else ``None``."""
    specificity: int
    """Longer is more specific: the length of the prefix text (+1 for an exact EID)."""

    @classmethod
    def parse(cls, text: str) -> RoutePattern:
        """Parse a pattern; :class:`ConfigError` if it is none of the accepted forms."""
        if not isinstance(text, str) or not text:
            raise ConfigError(f"route pattern must be a non-empty string, got {text!r}")
        if text == "*":
            return cls(text, None, "", None, 0)
        if text.endswith("*"):
            stem = text[:-1]
            node = _node_of_stem(stem)
            if node is not None:
                return cls(text, node, None, None, len(stem))
            if not stem.startswith(("dtn:", "ipn:")):
                raise ConfigError(f"route pattern {text!r} must start with dtn: or ipn:")
            return cls(text, None, stem, None, len(stem))
        try:
            eid = parse_eid(text)
        except DecodeError as exc:
            raise ConfigError(f"invalid route pattern {text!r}: {exc.message}") from None
        if eid.is_null:
            raise ConfigError("the null endpoint cannot be routed")
        if eid.is_node_id:
            return cls(text, eid, None, None, len(_node_stem(eid)))
        return cls(text, None, None, eid, len(text) + 1)

    @classmethod
    def for_node(cls, node: EndpointID) -> RoutePattern:
        """The pattern matching every endpoint of ``node``."""
        return cls(str(node), node, None, None, len(_node_stem(node)))

    def matches(self, destination: EndpointID, text: str) -> bool:
        """Whether ``destination`` (whose URI text is ``text``) matches."""
        if self.node is not None:
            return destination.node_id == self.node
        if self.prefix is not None:
            return text.startswith(self.prefix)
        return destination == self.exact


def _node_stem(node: EndpointID) -> str:
    """The EID text every endpoint of ``node`` starts with."""
    text = str(node)
    return text[:-1] if isinstance(node, IpnEID) else text


def _node_of_stem(stem: str) -> EndpointID | None:
    """The node of ``"dtn://b/"`` or ``"ipn:5."`` stems (``None`` for other prefixes): an ipn
    prefix must not be taken literally, as ``"ipn:5."`` is also the start of ``ipn:5.3.1``."""
    if stem.startswith("dtn://") and stem.endswith("/") and stem.count("/") == 3:
        candidate = stem
    elif stem.startswith("ipn:") and stem.endswith("."):
        candidate = stem + "0"
    else:
        return None
    try:
        eid = parse_eid(candidate)
    except DecodeError:
        return None
    return eid if eid.is_node_id else None


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route, as :meth:`RoutingTable.routes` reports it."""

    pattern: str
    """The destination pattern (a node ID for neighbour and learned routes)."""
    next_hop: str
    """Node ID of the neighbour (or, for static routes, the node) bundles go to."""
    origin: RouteOrigin
    """Where the route came from."""
    metric: int
    """Hops to the destination as far as we know (1 for neighbours)."""
    expires_at: float | None = None
    """When a learned route lapses unless refreshed (unix seconds); ``None`` otherwise."""
    usable: bool = False
    """Whether its next hop can be reached now (connected, directly or via another route)."""


@dataclass(slots=True)
class _Static:
    pattern: RoutePattern
    next_hop: EndpointID
    metric: int


@dataclass(slots=True)
class _Learned:
    metric: int
    expires_at: float


class RoutingTable:
    """Neighbour, static and learned routes of one node (see the module docstring)."""

    def __init__(self, local_node: EndpointID) -> None:
        self._local = local_node
        self._neighbours: dict[EndpointID, int] = {}  # node -> number of sessions
        self._static: list[_Static] = []
        # destination node -> advertising neighbour -> route
        self._learned: dict[EndpointID, dict[EndpointID, _Learned]] = {}
        self.version = 0
        """Bumped by every change that can change an answer of :meth:`next_hop`."""

    # -- neighbours ---------------------------------------------------------------------------

    def neighbour_up(self, node: EndpointID) -> bool:
        """Count one more session with ``node``; ``True`` if it was not connected before."""
        count = self._neighbours.get(node, 0)
        self._neighbours[node] = count + 1
        if count == 0:
            self.version += 1
            return True
        return False

    def neighbour_down(self, node: EndpointID) -> bool:
        """Count one session with ``node`` less; ``True`` if it is no longer connected.

        Routes learned from it stay until they expire (the node may come back soon) but are
        unusable while it is away."""
        count = self._neighbours.get(node, 0)
        if count <= 1:
            if self._neighbours.pop(node, None) is not None:
                self.version += 1
                return True
            return False
        self._neighbours[node] = count - 1
        return False

    def is_neighbour(self, node: EndpointID) -> bool:
        """Whether a session with ``node`` is up."""
        return node in self._neighbours

    @property
    def neighbours(self) -> frozenset[EndpointID]:
        """Nodes with at least one session up."""
        return frozenset(self._neighbours)

    # -- static routes ------------------------------------------------------------------------

    def add_static(
        self, pattern: str, next_hop: str | EndpointID, metric: int = STATIC_METRIC
    ) -> None:
        """Add (or replace: same pattern and next hop) a static route."""
        parsed = RoutePattern.parse(pattern)
        hop = _as_node_id(next_hop)
        if type(metric) is not int or not 1 <= metric < MAX_METRIC:
            raise ConfigError(f"route metric must be within 1..{MAX_METRIC - 1}, got {metric!r}")
        for route in self._static:
            if route.pattern.text == parsed.text and route.next_hop == hop:
                route.metric = metric
                break
        else:
            self._static.append(_Static(parsed, hop, metric))
        self.version += 1

    def remove_static(self, pattern: str, next_hop: str | EndpointID) -> bool:
        """Remove a static route; ``False`` if there was none."""
        hop = _as_node_id(next_hop)
        for index, route in enumerate(self._static):
            if route.pattern.text == pattern and route.next_hop == hop:
                del self._static[index]
                self.version += 1
                return True
        return False

    # -- learned routes -----------------------------------------------------------------------

    def learn(
        self,
        advertiser: EndpointID,
        reachable: Mapping[EndpointID, int],
        *,
        expires_at: float,
    ) -> None:
        """Install the routes of one advertisement from neighbour ``advertiser``: each node of
        ``reachable`` at the advertised metric + 1 (capped: ``MAX_METRIC`` and more is dropped).
        The advertisement is complete, so routes via ``advertiser`` that it no longer lists go.
        """
        changed = False
        listed: set[EndpointID] = set()
        for node, metric in reachable.items():
            total = metric + 1
            if node == self._local or node == advertiser or total >= MAX_METRIC:
                continue
            listed.add(node)
            via = self._learned.setdefault(node, {})
            existing = via.get(advertiser)
            if existing is None or existing.metric != total:
                changed = True
                via[advertiser] = _Learned(total, expires_at)
            else:
                existing.expires_at = expires_at
        for node, via in list(self._learned.items()):
            if node not in listed and advertiser in via:
                del via[advertiser]
                changed = True
                if not via:
                    del self._learned[node]
        if changed:
            self.version += 1

    def learn_changes(
        self,
        advertiser: EndpointID,
        changes: Mapping[EndpointID, int],
        *,
        expires_at: float,
    ) -> None:
        """Apply a change list from neighbour ``advertiser``: each node of ``changes`` at the
        advertised metric + 1, or withdrawn (advertised at ``MAX_METRIC`` or more); routes via
        ``advertiser`` it does not mention stay as they are. Every route via ``advertiser`` is
        refreshed until ``expires_at`` (a change list says the rest still holds)."""
        changed = False
        for node, metric in changes.items():
            if node == self._local or node == advertiser:
                continue
            total = metric + 1
            via = self._learned.get(node)
            if total >= MAX_METRIC:
                if via is not None and via.pop(advertiser, None) is not None:
                    changed = True
                    if not via:
                        del self._learned[node]
                continue
            if via is None:
                via = self._learned[node] = {}
            existing = via.get(advertiser)
            if existing is None or existing.metric != total:
                via[advertiser] = _Learned(total, expires_at)
                changed = True
        self.refresh_via(advertiser, expires_at=expires_at)
        if changed:
            self.version += 1

    def refresh_via(self, advertiser: EndpointID, *, expires_at: float) -> None:
        """Extend every route learned from ``advertiser`` until ``expires_at`` (no answer of
        :meth:`next_hop` changes: the routes were valid until now)."""
        for via in self._learned.values():
            route = via.get(advertiser)
            if route is not None and route.expires_at < expires_at:
                route.expires_at = expires_at

    def expire(self, now: float) -> int:
        """Drop learned routes whose expiry has passed; return how many went."""
        dropped = 0
        for node, via in list(self._learned.items()):
            for advertiser, route in list(via.items()):
                if route.expires_at <= now:
                    del via[advertiser]
                    dropped += 1
            if not via:
                del self._learned[node]
        if dropped:
            self.version += 1
        return dropped

    def forget_learned_via(self, advertiser: EndpointID) -> int:
        """Drop every route learned from ``advertiser`` (as an empty advertisement would);
        return how many went."""
        before = sum(advertiser in via for via in self._learned.values())
        self.learn(advertiser, {}, expires_at=0.0)
        return before

    def next_learned_expiry(self) -> float | None:
        """The earliest expiry of a learned route, or ``None``."""
        return min(
            (route.expires_at for via in self._learned.values() for route in via.values()),
            default=None,
        )

    # -- lookups ------------------------------------------------------------------------------

    def next_hop(
        self,
        destination: EndpointID,
        *,
        now: float,
        exclude: Iterable[EndpointID] = (),
    ) -> EndpointID | None:
        """The connected neighbour to send a bundle for ``destination`` to now, or ``None``
        (no usable route: keep the bundle). Nodes in ``exclude`` (where the bundle came from)
        are never chosen unless one is the destination's own node."""
        if destination.is_null:
            return None
        excluded = frozenset(exclude) - {destination.node_id}
        return self._resolve(destination, str(destination), now, excluded, 0)

    def _resolve(
        self,
        destination: EndpointID,
        text: str,
        now: float,
        excluded: frozenset[EndpointID],
        depth: int,
    ) -> EndpointID | None:
        for _, _, _, hop in self._candidates(destination, text, now):
            if hop in excluded or hop == self._local:
                continue
            if hop in self._neighbours:
                return hop
            if depth < _MAX_RESOLVE_DEPTH:
                via = self._resolve(hop, str(hop), now, excluded, depth + 1)
                if via is not None:
                    return via
        return None

    def _candidates(
        self, destination: EndpointID, text: str, now: float
    ) -> list[tuple[int, int, int, EndpointID]]:
        """Matching routes as sortable ``(-specificity, metric, origin rank, next hop)``."""
        found: list[tuple[int, int, int, EndpointID]] = []
        node = destination.node_id
        node_specificity = len(_node_stem(node))
        if node in self._neighbours:
            found.append((-node_specificity, 1, 0, node))
        for route in self._static:
            if route.pattern.matches(destination, text):
                found.append((-route.pattern.specificity, route.metric, 1, route.next_hop))
        for advertiser, learned in self._learned.get(node, {}).items():
            if learned.expires_at > now:
                found.append((-node_specificity, learned.metric, 2, advertiser))
        found.sort(key=lambda c: (c[0], c[1], c[2], str(c[3])))
        return found

    def reachable(
        self, *, now: float, exclude_via: EndpointID | None = None
    ) -> dict[EndpointID, int]:
        """Nodes we can reach now and at what metric — the content of a route advertisement.
        Routes through ``exclude_via`` are left out (split horizon), as is that node itself."""
        result: dict[EndpointID, int] = {}
        for node in self._neighbours:
            if node != exclude_via:
                result[node] = 1
        for node, via in self._learned.items():
            if node == exclude_via or node in result:
                continue
            best = min(
                (
                    route.metric
                    for advertiser, route in via.items()
                    if advertiser != exclude_via
                    and advertiser in self._neighbours
                    and route.expires_at > now
                ),
                default=None,
            )
            if best is not None and best < MAX_METRIC:
                result[node] = best
        return result

    def routes(self, *, now: float) -> list[RouteInfo]:
        """Every route, most specific first (for ``BundleNode.routes`` and ``ucp nodes``)."""
        infos: list[tuple[tuple[int, int, int, str], RouteInfo]] = []
        for node in self._neighbours:
            stem = len(_node_stem(node))
            info = RouteInfo(str(node), str(node), RouteOrigin.NEIGHBOUR, 1, None, True)
            infos.append(((-stem, 1, 0, str(node)), info))
        for route in self._static:
            usable = self._resolve(route.next_hop, str(route.next_hop), now, frozenset(), 0)
            info = RouteInfo(
                route.pattern.text,
                str(route.next_hop),
                RouteOrigin.STATIC,
                route.metric,
                None,
                usable is not None,
            )
            infos.append(((-route.pattern.specificity, route.metric, 1, info.pattern), info))
        for node, via in self._learned.items():
            stem = len(_node_stem(node))
            for advertiser, learned in via.items():
                info = RouteInfo(
                    str(node),
                    str(advertiser),
                    RouteOrigin.LEARNED,
                    learned.metric,
                    learned.expires_at,
                    advertiser in self._neighbours and learned.expires_at > now,
                )
                infos.append(((-stem, learned.metric, 2, str(node)), info))
        infos.sort(key=lambda item: item[0])
        return [info for _, info in infos]


def _as_node_id(value: str | EndpointID) -> EndpointID:
    if isinstance(value, str):
        try:
            eid = parse_eid(value)
        except DecodeError as exc:
            raise ConfigError(f"invalid next hop {value!r}: {exc.message}") from None
    else:
        eid = value
    if not eid.is_node_id:
        raise ConfigError(f"next hop {value} is not a node ID")
    return eid
