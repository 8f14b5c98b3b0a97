"""Route advertisements: the bundles neighbours exchange to learn routes (see docs/routing.md).

Every node sends each neighbour, when the session comes up and then every
``route_advert_interval_s``, one bundle to the neighbour's routing endpoint
(:func:`routing_endpoint`: ``dtn://<node>/~routing``, or service :data:`ROUTING_IPN_SERVICE` of
an ipn node) whose payload lists the nodes the sender can reach and at what metric, leaving out
routes through that neighbour (split horizon). The receiver installs "node → sender, metric + 1"
routes that expire after the advertisement's ``lifetime_s`` unless refreshed.

Payload (CBOR): ``[1, lifetime_ms, [[node_id_text, metric], ...]]``, optionally followed by a
fourth item ``[[node_id_text, [role, ...]], ...]``: the UCP roles of the sender and of nodes it
advertises (see :mod:`.roles`). Version 1 is the only one; receivers accept both lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cbor2

from bpv7 import DecodeError, DtnEID, EndpointID, IpnEID, parse_eid

from .errors import RouteAdvertisementError
from .roles import MAX_ROLES_PER_NODE
from .routing import MAX_METRIC

__all__ = [
    "ADVERTISEMENT_VERSION",
    "ROUTING_DEMUX",
    "ROUTING_IPN_SERVICE",
    "RouteAdvertisement",
    "is_routing_endpoint",
    "routing_endpoint",
]

ADVERTISEMENT_VERSION = 1
"""The payload format version this module writes and reads."""

ROUTING_DEMUX = "~routing"
"""Demux of the routing endpoint of a dtn node (``~``: not a singleton endpoint, RFC 9171
§4.2.5.1.1 — every node has one)."""

ROUTING_IPN_SERVICE = 0xFFFE
"""Service number of the routing endpoint of an ipn node (ucp-dtn's choice; documented in
docs/routing.md)."""

_MAX_ENTRIES = 65536
_MAX_PAYLOAD = 8 * 1024 * 1024


def routing_endpoint(node: EndpointID) -> EndpointID:
    """The routing endpoint of ``node``."""
    if isinstance(node, IpnEID):
        return IpnEID(node.allocator, node.node, ROUTING_IPN_SERVICE, node.three_element)
    return DtnEID(node.node_name, ROUTING_DEMUX)


def is_routing_endpoint(eid: EndpointID) -> bool:
    """Whether ``eid`` is the routing endpoint of its node."""
    if isinstance(eid, IpnEID):
        return eid.service == ROUTING_IPN_SERVICE and not eid.is_null
    return eid.demux == ROUTING_DEMUX and not eid.is_null


@dataclass(frozen=True, slots=True)
class RouteAdvertisement:
    """One advertisement: what its sender can reach."""

    lifetime_s: float
    """How long the receiver keeps the routes unless a newer advertisement refreshes them."""
    reachable: tuple[tuple[EndpointID, int], ...]
    """``(node ID, metric)`` pairs; metric 1 = the sender's neighbour."""
    roles: tuple[tuple[EndpointID, frozenset[str]], ...] = ()
    """Roles of the sender and of advertised nodes (only nodes that have some)."""

    def encode(self) -> bytes:
        """The bundle payload."""
        entries = [[str(node), metric] for node, metric in self.reachable]
        item: list[object] = [ADVERTISEMENT_VERSION, round(self.lifetime_s * 1000), entries]
        if self.roles:
            item.append([[str(node), sorted(roles)] for node, roles in self.roles])
        return cbor2.dumps(item)

    @classmethod
    def decode(cls, data: bytes) -> RouteAdvertisement:
        """Parse a payload; raises only :class:`RouteAdvertisementError`."""
        if len(data) > _MAX_PAYLOAD:
            raise RouteAdvertisementError(f"route advertisement of {len(data)} bytes is too large")
        try:
            item = cbor2.loads(data)
        except Exception as exc:  # cbor2 raises many kinds; none may leak (house rule)
            raise RouteAdvertisementError(f"route advertisement is not CBOR: {exc}") from None
        if not isinstance(item, list) or len(item) not in (3, 4):
            raise RouteAdvertisementError("route advertisement must be a 3- or 4-item array")
        version, lifetime_ms, entries = item[:3]
        if version != ADVERTISEMENT_VERSION or type(version) is not int:
            raise RouteAdvertisementError(f"unsupported route advertisement version {version!r}")
        if type(lifetime_ms) is not int or lifetime_ms <= 0:
            raise RouteAdvertisementError(f"bad advertisement lifetime {lifetime_ms!r}")
        if not isinstance(entries, list) or len(entries) > _MAX_ENTRIES:
            raise RouteAdvertisementError("route advertisement entries must be an array")
        reachable: list[tuple[EndpointID, int]] = []
        for entry in entries:
            if (
                not isinstance(entry, list)
                or len(entry) != 2
                or not isinstance(entry[0], str)
                or type(entry[1]) is not int
                or not 0 <= entry[1] <= MAX_METRIC
            ):
                raise RouteAdvertisementError(f"bad route advertisement entry {entry!r:.80}")
            try:
                node = parse_eid(entry[0])
            except DecodeError as exc:
                raise RouteAdvertisementError(f"bad node ID in advertisement: {exc}") from None
            if not node.is_node_id:
                raise RouteAdvertisementError(f"{entry[0]!r} in advertisement is not a node ID")
            reachable.append((node, entry[1]))
        lifetime_s = lifetime_ms / 1000
        if not math.isfinite(lifetime_s):
            raise RouteAdvertisementError(f"bad advertisement lifetime {lifetime_ms!r}")
        roles = _decode_roles(item[3]) if len(item) == 4 else ()
        return cls(lifetime_s, tuple(reachable), roles)


def _decode_roles(value: object) -> tuple[tuple[EndpointID, frozenset[str]], ...]:
    if not isinstance(value, list) or len(value) > _MAX_ENTRIES:
        raise RouteAdvertisementError("route advertisement roles must be an array")
    result: list[tuple[EndpointID, frozenset[str]]] = []
    for entry in value:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or not isinstance(entry[1], list)
            or len(entry[1]) > MAX_ROLES_PER_NODE
            or not all(isinstance(r, str) and 0 < len(r) <= 64 for r in entry[1])
        ):
            raise RouteAdvertisementError(f"bad role entry in advertisement {entry!r:.80}")
        try:
            node = parse_eid(entry[0])
        except DecodeError as exc:
            raise RouteAdvertisementError(f"bad node ID in advertisement: {exc}") from None
        if not node.is_node_id:
            raise RouteAdvertisementError(f"{entry[0]!r} in advertisement is not a node ID")
        result.append((node, frozenset(entry[1])))
    return tuple(result)
