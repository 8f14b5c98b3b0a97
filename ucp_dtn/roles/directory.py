"""Which brokers a role talks to.

A node's roles find brokers in this order: the brokers named in the settings (``--broker``), the
node itself when it runs the broker role, then brokers the agent knows of through its role
directory (roles travel in route advertisements and zeroconf announcements), nearest first
(ties: the smaller node ID). A configured broker that the role directory does not list as
reachable while some other broker is comes after the reachable ones: when a broker is lost
(its routes, and with them its role, lapse) the nearest live broker takes over.

Work handed out by one broker is reported back to it while it is reachable, else to the
nearest live broker (:meth:`BrokerDirectory.report_to`): see docs/disruption.md.
"""

from __future__ import annotations

from bpv7 import BPv7Error, EndpointID, parse_eid

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
        configured = [parse_eid(text).node_id for text in self.settings.brokers]
        announced = self.live_broker_nodes()
        found: list[EndpointID] = [b for b in configured if b in announced]
        if RoleName.BROKER in self.settings.roles:
            found.append(self.node.node_id)
        found.extend(announced)
        found.extend(configured)
        unique: list[EndpointID] = []
        for node_id in found:
            if node_id not in unique:
                unique.append(node_id)
        return unique

    def live_broker_nodes(self) -> list[EndpointID]:
        """Node IDs of the brokers the agent's role directory lists as reachable now (this
        node first if it runs the broker role), nearest first."""
        return [node_id for node_id, _metric in self.node.nodes_with_role(RoleName.BROKER)]

    def report_to(self, broker: str) -> str:
        """Where to send reports about work ``broker`` (an endpoint, text) handed out: to it
        while the role directory lists it as reachable, else to the nearest broker it does
        list, else still to it (the bundle waits in the network for it to come back). Any
        endpoint other than a broker's is returned unchanged."""
        try:
            eid = parse_eid(broker)
        except BPv7Error:
            return broker
        node_id = eid.node_id
        if eid != role_endpoint(node_id, RoleName.BROKER):
            return broker  # not a broker (a datastore answering with a cursor)
        live = self.live_broker_nodes()
        if node_id in live or not live:
            return broker
        return str(role_endpoint(live[0], RoleName.BROKER))

    def brokers(self) -> list[EndpointID]:
        """Broker endpoints (``…/ucp/broker``) of :meth:`broker_nodes`."""
        return [role_endpoint(node_id, RoleName.BROKER) for node_id in self.broker_nodes()]

    def nearest(self) -> EndpointID | None:
        """The preferred broker endpoint, or ``None`` while none is known."""
        brokers = self.brokers()
        return brokers[0] if brokers else None
