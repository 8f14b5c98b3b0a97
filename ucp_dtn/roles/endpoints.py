"""Well-known endpoints of the UCP roles.

Every UCP role runs as an application on a node's bundle protocol agent and is reached at an
endpoint under that node's ID:

========== ============================ ==================
role       dtn node ``dtn://n/``        ipn node ``ipn:N.0``
========== ============================ ==================
broker     ``dtn://n/ucp/broker``       ``ipn:N.4701``
executor   ``dtn://n/ucp/executor``     ``ipn:N.4702``
datastore  ``dtn://n/ucp/datastore``    ``ipn:N.4703``
client     ``dtn://n/ucp/client``       ``ipn:N.4704``
========== ============================ ==================

The ipn service numbers are ucp-dtn's own choice (no IANA registration exists for them).
"""

from __future__ import annotations

import enum

from bpv7 import DtnEID, EndpointID, IpnEID, parse_eid

__all__ = [
    "ROLE_IPN_SERVICES",
    "RoleName",
    "node_of",
    "parse_roles",
    "role_endpoint",
    "role_of_endpoint",
]


class RoleName(enum.StrEnum):
    """The UCP roles a node can run (``ucp-bpnode --roles``) plus the client."""

    BROKER = "broker"
    """Keeps the job queue, matches jobs to executors, knows the datastores."""
    EXECUTOR = "executor"
    """Runs WebAssembly jobs."""
    DATASTORE = "datastore"
    """Keeps named data and results."""
    CLIENT = "client"
    """Submits jobs and collects results (the ``ucp`` command)."""


ROLE_IPN_SERVICES: dict[RoleName, int] = {
    RoleName.BROKER: 4701,
    RoleName.EXECUTOR: 4702,
    RoleName.DATASTORE: 4703,
    RoleName.CLIENT: 4704,
}
"""Service numbers of the role endpoints of an ipn node."""

_DTN_DEMUX_PREFIX = "ucp/"


def node_of(endpoint: EndpointID | str) -> EndpointID:
    """The node ID of the node an endpoint belongs to."""
    eid = parse_eid(endpoint) if isinstance(endpoint, str) else endpoint
    return eid.node_id


def role_endpoint(node: EndpointID | str, role: RoleName | str) -> EndpointID:
    """The endpoint of ``role`` on ``node`` (any endpoint of the node may be given)."""
    role = RoleName(role)
    node_id = node_of(node)
    if isinstance(node_id, DtnEID):
        return DtnEID(node_id.node_name, _DTN_DEMUX_PREFIX + role.value)
    assert isinstance(node_id, IpnEID)
    return IpnEID(
        node_id.allocator,
        node_id.node,
        ROLE_IPN_SERVICES[role],
        three_element=node_id.three_element,
    )


def role_of_endpoint(endpoint: EndpointID | str) -> RoleName | None:
    """Which role's well-known endpoint this is, or ``None``."""
    eid = parse_eid(endpoint) if isinstance(endpoint, str) else endpoint
    if isinstance(eid, DtnEID):
        if eid.demux.startswith(_DTN_DEMUX_PREFIX):
            try:
                return RoleName(eid.demux[len(_DTN_DEMUX_PREFIX) :])
            except ValueError:
                return None
        return None
    assert isinstance(eid, IpnEID)
    for role, service in ROLE_IPN_SERVICES.items():
        if eid.service == service:
            return role
    return None


def parse_roles(text: str | tuple[str, ...] | list[str]) -> tuple[RoleName, ...]:
    """Parse ``"broker,executor"`` (or a sequence of names) into roles, in order, without
    duplicates. The client is not a daemon role. Raises ``ValueError`` naming a bad role."""
    items = text.split(",") if isinstance(text, str) else list(text)
    roles: list[RoleName] = []
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        try:
            role = RoleName(name)
        except ValueError:
            valid = ", ".join(r.value for r in RoleName if r is not RoleName.CLIENT)
            raise ValueError(f"unknown role {item.strip()!r} (roles: {valid})") from None
        if role is RoleName.CLIENT:
            raise ValueError("'client' is not a daemon role: use the ucp command")
        if role not in roles:
            roles.append(role)
    return tuple(roles)
