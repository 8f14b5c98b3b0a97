"""Which brokers a role talks to.

A node's roles find brokers in this order: the brokers named in the settings (``--broker``), the
node itself when it runs the broker role, then brokers the agent knows of through its role
directory (roles travel in route advertisements and zeroconf announcements), nearest first.
"""

from __future__ import annotations

from bpv7 import EndpointID, parse_eid

from ..agent import BundleNode
from .endpoints import RoleName, role_endpoint
from .settings import RoleSettings

__all__ = ["BrokerDirectory"]


class BrokerDirectory:
    """The brokers this node's roles use, nearest first."""

    def __init__(self, node: BundleNode, settings: RoleSettings) -> None:
        self.node = node
        self.settings = settings

    def broker_nodes(self) -> list[EndpointID]:
        """Node IDs of usable brokers, in order of preference, without duplicates."""
        found: list[EndpointID] = [parse_eid(text).node_id for text in self.settings.brokers]
        if RoleName.BROKER in self.settings.roles:
            found.append(self.node.node_id)
        found.extend(node_id for node_id, _metric in self.node.nodes_with_role(RoleName.BROKER))
        unique: list[EndpointID] = []
        for node_id in found:
            if node_id not in unique:
                unique.append(node_id)
        return unique

    def brokers(self) -> list[EndpointID]:
        """Broker endpoints (``…/ucp/broker``) of :meth:`broker_nodes`."""
        return [role_endpoint(node_id, RoleName.BROKER) for node_id in self.broker_nodes()]

    def nearest(self) -> EndpointID | None:
        """The preferred broker endpoint, or ``None`` while none is known."""
        brokers = self.brokers()
        return brokers[0] if brokers else None
