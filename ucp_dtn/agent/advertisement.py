"""Route advertisements: the bundles neighbours exchange to learn routes (see docs/routing.md).

Every node sends each neighbour, over each session, one bundle to the neighbour's routing
endpoint (:func:`routing_endpoint`: ``dtn://<node>/~routing``, or service
:data:`ROUTING_IPN_SERVICE` of an ipn node) whose payload lists nodes the sender can reach and at
what metric, leaving out routes through that neighbour (split horizon). The receiver installs
"node → sender, metric + 1" routes that expire after the advertisement's ``lifetime_s`` unless
refreshed.

Since version 2 (:mod:`.route_exchange` says when each kind is sent), an advertisement is either
*complete* — the whole table: routes via the sender that it does not list go — or a list of
*changes* since the previous advertisement of the same stream: an entry at metric
:data:`~ucp_dtn.agent.routing.MAX_METRIC` withdraws a node, a node with no roles lost them. A
change list, even an empty one, also refreshes every route and role learned from the sender. So
in a quiet mesh each session carries one small advertisement per interval, whatever the size of
the mesh.

Payload (CBOR):

* version 1 (complete only; still read): ``[1, lifetime_ms, [[node_id_text, metric], ...]]``,
  optionally followed by ``[[node_id_text, [role, ...]], ...]``: the UCP roles of the sender
  and of nodes it advertises (see :mod:`.roles`);
* version 2: ``[2, lifetime_ms, entries, roles, epoch, sequence, flags]`` — ``epoch`` names the
  sender's stream (one per session), ``sequence`` counts its advertisements from 0 (a change
  list applies only right after ``sequence - 1``), ``flags`` bit 0: complete, bit 1: "send me
  your complete table" (the receiver of one of our streams lost track).

An advertisement with the defaults of the version 2 fields (complete, epoch and sequence 0, no
request) is written in the version 1 form.
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

ADVERTISEMENT_VERSION = 2
"""The payload format version this module writes (it reads version 1 too)."""
_VERSION_1 = 1
_COMPLETE = 1
_RESYNC = 2

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
    """One advertisement: what its sender can reach (or what changed)."""

    lifetime_s: float
    """How long the receiver keeps the routes unless a newer advertisement refreshes them."""
    reachable: tuple[tuple[EndpointID, int], ...]
    """``(node ID, metric)`` pairs; metric 1 = the sender's neighbour; in a change list,
    :data:`MAX_METRIC` withdraws the node."""
    roles: tuple[tuple[EndpointID, frozenset[str]], ...] = ()
    """Roles of the sender and of advertised nodes (only nodes that have some; in a change
    list, an empty set: the node has none any more)."""
    epoch: int = 0
    """The sender's stream (one per session; 0: a version 1 advertisement)."""
    sequence: int = 0
    """Position in the stream, from 0."""
    complete: bool = True
    """The whole table (``False``: the changes since the previous advertisement)."""
    resync: bool = False
    """The sender asks the receiver for its complete table."""

    def encode(self) -> bytes:
        """The bundle payload."""
        entries = [[str(node), metric] for node, metric in self.reachable]
        roles = [[str(node), sorted(roles)] for node, roles in self.roles]
        lifetime_ms = round(self.lifetime_s * 1000)
        if self.complete and not (self.epoch or self.sequence or self.resync):
            item: list[object] = [_VERSION_1, lifetime_ms, entries]
            if roles:
                item.append(roles)
            return cbor2.dumps(item)
        flags = (_COMPLETE if self.complete else 0) | (_RESYNC if self.resync else 0)
        return cbor2.dumps(
            [ADVERTISEMENT_VERSION, lifetime_ms, entries, roles, self.epoch, self.sequence, flags]
        )

    @classmethod
    def decode(cls, data: bytes) -> RouteAdvertisement:
        """Parse a payload; raises only :class:`RouteAdvertisementError`."""
        if len(data) > _MAX_PAYLOAD:
            raise RouteAdvertisementError(f"route advertisement of {len(data)} bytes is too large")
        try:
            item = cbor2.loads(data)
        except Exception as exc:  # cbor2 raises many kinds; none may leak (house rule)
            raise RouteAdvertisementError(f"route advertisement is not CBOR: {exc}") from None
        if not isinstance(item, list) or len(item) < 3:
            raise RouteAdvertisementError("route advertisement must be a 3- to 7-item array")
        version, lifetime_ms, entries = item[:3]
        if type(version) is not int or version not in (_VERSION_1, ADVERTISEMENT_VERSION):
            raise RouteAdvertisementError(f"unsupported route advertisement version {version!r}")
        if version == _VERSION_1 and len(item) not in (3, 4):
            raise RouteAdvertisementError("route advertisement must be a 3- or 4-item array")
        if version == ADVERTISEMENT_VERSION and len(item) != 7:
            raise RouteAdvertisementError("route advertisement version 2 must be a 7-item array")
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
        roles = _decode_roles(item[3]) if len(item) >= 4 else ()
        if version == _VERSION_1:
            return cls(lifetime_s, tuple(reachable), roles)
        epoch, sequence, flags = item[4:]
        for name, value in (("epoch", epoch), ("sequence", sequence), ("flags", flags)):
            if type(value) is not int or not 0 <= value < 2**64:
                raise RouteAdvertisementError(f"bad advertisement {name} {value!r:.40}")
        return cls(
            lifetime_s,
            tuple(reachable),
            roles,
            epoch,
            sequence,
            complete=bool(flags & _COMPLETE),
            resync=bool(flags & _RESYNC),
        )


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
