"""Which nodes run which UCP roles: the agent's role directory.

Applications above the agent (the UCP roles) need to find, for example, the nearest broker. The
agent learns roles in band, with no extra protocol:

* its own roles come from :attr:`NodeConfig.roles` (and :meth:`RoleDirectory.set_local`, e.g.
  when a node promotes itself to broker);
* route advertisements carry the roles of the advertiser and of the nodes it advertises (the
  optional fourth item of the advertisement payload, see :mod:`.advertisement`), so roles spread
  exactly as far as routes do and expire with them;
* zeroconf announcements carry the announcing node's roles (``roles=`` in the TXT record).

Role names are plain lower-case text; the agent does not interpret them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bpv7 import EndpointID

__all__ = ["MAX_ROLES_PER_NODE", "RoleDirectory", "RoleEntry"]

MAX_ROLES_PER_NODE = 16
"""Roles kept per node (a hostile advertisement cannot grow the directory without bound)."""


@dataclass(frozen=True, slots=True)
class RoleEntry:
    """What one source told us of one node's roles."""

    roles: frozenset[str]
    """The roles (``broker``, ``executor``, ``datastore``, ...) the source says the node runs."""
    expires_at: float
    """When this knowledge lapses unless refreshed (``inf`` for our own node)."""
    via: EndpointID | None = None
    """The neighbour whose route advertisement told us (``None``: our own, or discovery)."""


_Heard = dict[EndpointID | None, RoleEntry]


class RoleDirectory:
    """Roles of this node and of the nodes it has heard of.

    What each source (a neighbour's advertisements, discovery) says of a node is kept apart, as
    routes are: a neighbour's change list then changes only what that neighbour said, and a
    node's roles are what any source says that has not lapsed."""

    def __init__(self, node_id: EndpointID, local_roles: Iterable[str] = ()) -> None:
        self.node_id = node_id
        self._local = RoleEntry(frozenset(), float("inf"))
        self._heard: dict[EndpointID, _Heard] = {}
        self.set_local(local_roles)

    def set_local(self, roles: Iterable[str]) -> None:
        """Replace this node's own roles."""
        self._local = RoleEntry(_clean(roles), float("inf"))

    @property
    def local_roles(self) -> frozenset[str]:
        """This node's own roles."""
        return self._local.roles

    def learn(
        self,
        node: EndpointID,
        roles: Iterable[str],
        *,
        expires_at: float,
        via: EndpointID | None = None,
    ) -> None:
        """Record that ``via`` (a neighbour; ``None``: discovery) says ``node`` has ``roles``
        (none: forget what it said) until ``expires_at``. Our own roles are never overwritten."""
        if node == self.node_id:
            return
        cleaned = _clean(roles)
        heard = self._heard.setdefault(node, {})
        if cleaned:
            heard[via] = RoleEntry(cleaned, expires_at, via)
        else:
            heard.pop(via, None)
            if not heard:
                del self._heard[node]

    def learn_many(
        self,
        roles: Mapping[EndpointID, Iterable[str]],
        *,
        expires_at: float,
        via: EndpointID | None = None,
        complete: bool = False,
    ) -> None:
        """:meth:`learn` for every node of an advertisement from neighbour ``via``;
        ``complete``: it lists every node ``via`` knows roles of (what it said of others
        goes)."""
        if complete:
            for node in [n for n, heard in self._heard.items() if via in heard and n not in roles]:
                self.learn(node, (), expires_at=expires_at, via=via)
        for node, node_roles in roles.items():
            self.learn(node, node_roles, expires_at=expires_at, via=via)

    def refresh_via(self, advertiser: EndpointID, *, expires_at: float) -> None:
        """Extend what ``advertiser``'s advertisements told us until ``expires_at`` (a change
        list from it says the rest still holds)."""
        for heard in self._heard.values():
            entry = heard.get(advertiser)
            if entry is not None and entry.expires_at < expires_at:
                heard[advertiser] = RoleEntry(entry.roles, expires_at, advertiser)

    def roles_of(self, node: EndpointID, *, now: float) -> frozenset[str]:
        """The known roles of ``node``: what any source says that has not lapsed (empty when
        unknown)."""
        if node == self.node_id:
            return self._local.roles
        heard = self._heard.get(node)
        if not heard:
            return frozenset()
        live = [entry.roles for entry in heard.values() if entry.expires_at > now]
        if not live:
            return frozenset()
        return live[0] if len(live) == 1 else frozenset().union(*live)

    def nodes_with_role(self, role: str, *, now: float) -> list[EndpointID]:
        """Every node known to run ``role`` (in no particular order)."""
        found = [self.node_id] if role in self._local.roles else []
        found += [node for node in self._heard if role in self.roles_of(node, now=now)]
        return found

    def known(self, nodes: Iterable[EndpointID], *, now: float) -> dict[EndpointID, frozenset[str]]:
        """The roles of those of ``nodes`` (plus this node) that have any: what an
        advertisement carries."""
        result: dict[EndpointID, frozenset[str]] = {}
        for node in (self.node_id, *nodes):
            roles = self.roles_of(node, now=now)
            if roles:
                result[node] = roles
        return result

    def entries(self, *, now: float) -> dict[EndpointID, frozenset[str]]:
        """Every node with known roles that have not lapsed (this node included)."""
        result = {self.node_id: self._local.roles} if self._local.roles else {}
        for node in self._heard:
            roles = self.roles_of(node, now=now)
            if roles:
                result[node] = roles
        return result

    def expire(self, now: float) -> None:
        """Forget lapsed entries."""
        for node in list(self._heard):
            heard = self._heard[node]
            for via in [v for v, entry in heard.items() if entry.expires_at <= now]:
                del heard[via]
            if not heard:
                del self._heard[node]


def _clean(roles: Iterable[str]) -> frozenset[str]:
    cleaned = {role.strip().lower() for role in roles if role and role.strip()}
    return frozenset(sorted(cleaned)[:MAX_ROLES_PER_NODE])
