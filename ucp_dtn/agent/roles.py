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
    """What is known of one node's roles."""

    roles: frozenset[str]
    """Its roles."""
    expires_at: float
    """When this knowledge lapses unless refreshed (``inf`` for our own node)."""
    via: EndpointID | None = None
    """The neighbour whose route advertisement told us (``None``: our own, or discovery)."""


class RoleDirectory:
    """Roles of this node and of the nodes it has heard of."""

    def __init__(self, node_id: EndpointID, local_roles: Iterable[str] = ()) -> None:
        self.node_id = node_id
        self._entries: dict[EndpointID, RoleEntry] = {}
        self.set_local(local_roles)

    def set_local(self, roles: Iterable[str]) -> None:
        """Replace this node's own roles."""
        self._entries[self.node_id] = RoleEntry(_clean(roles), float("inf"))

    @property
    def local_roles(self) -> frozenset[str]:
        """This node's own roles."""
        return self._entries[self.node_id].roles

    def learn(
        self,
        node: EndpointID,
        roles: Iterable[str],
        *,
        expires_at: float,
        via: EndpointID | None = None,
    ) -> None:
        """Record ``node``'s roles until ``expires_at`` (our own entry is never overwritten),
        as told by neighbour ``via`` (``None``: discovery)."""
        if node == self.node_id:
            return
        self._entries[node] = RoleEntry(_clean(roles), expires_at, via)

    def learn_many(
        self,
        roles: Mapping[EndpointID, Iterable[str]],
        *,
        expires_at: float,
        via: EndpointID | None = None,
    ) -> None:
        """:meth:`learn` for every node of an advertisement (from neighbour ``via``)."""
        for node, node_roles in roles.items():
            self.learn(node, node_roles, expires_at=expires_at, via=via)

    def refresh_via(self, advertiser: EndpointID, *, expires_at: float) -> None:
        """Extend what ``advertiser``'s advertisements told us until ``expires_at`` (a change
        list from it says the rest still holds)."""
        for node, entry in self._entries.items():
            if entry.via == advertiser and entry.expires_at < expires_at:
                self._entries[node] = RoleEntry(entry.roles, expires_at, advertiser)

    def roles_of(self, node: EndpointID, *, now: float) -> frozenset[str]:
        """The known roles of ``node`` (empty when unknown or lapsed)."""
        entry = self._entries.get(node)
        if entry is None or entry.expires_at <= now:
            return frozenset()
        return entry.roles

    def nodes_with_role(self, role: str, *, now: float) -> list[EndpointID]:
        """Every node known to run ``role`` (in no particular order)."""
        return [
            node
            for node, entry in self._entries.items()
            if role in entry.roles and entry.expires_at > now
        ]

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
        return {
            node: entry.roles
            for node, entry in self._entries.items()
            if entry.roles and entry.expires_at > now
        }

    def expire(self, now: float) -> None:
        """Forget lapsed entries."""
        for node in [n for n, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[node]


def _clean(roles: Iterable[str]) -> frozenset[str]:
    cleaned = {role.strip().lower() for role in roles if role and role.strip()}
    return frozenset(sorted(cleaned)[:MAX_ROLES_PER_NODE])
