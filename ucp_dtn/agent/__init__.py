"""The bundle protocol agent (RFC 9171 §5) of ucp-dtn.

A :class:`BundleNode` stores, forwards and delivers bundles: it receives them over TCPCLv4
sessions (RFC 9174), keeps them in a persistent :mod:`ucp_dtn.store`, routes them over
neighbour, static and learned routes (docs/routing.md), generates status reports (RFC 9171
§6.1.1), takes part in custody transfer over BIBE (draft-ietf-dtn-bibect-05) and hands bundles
for its endpoints to applications through :class:`Registration`\\ s. Its BPSec policy
(:mod:`~ucp_dtn.agent.security`, RFC 9172) says which security operations it adds, checks and
accepts.
"""

from typing import TYPE_CHECKING, Any

from bpv7.admin import StatusReportReason

from .advertisement import (
    ROUTING_DEMUX,
    ROUTING_IPN_SERVICE,
    RouteAdvertisement,
    is_routing_endpoint,
    routing_endpoint,
)
from .config import DEFAULT_LIFETIME_S, DEFAULT_STORE_QUOTA, NodeConfig, parse_node_id
from .errors import (
    AgentError,
    AgentUsageError,
    ConfigError,
    EndpointError,
    NodeNotRunningError,
    RegistrationClosedError,
    RegistrationError,
    RemoteDataError,
    RouteAdvertisementError,
    SecurityError,
)
from .node import BundleNode
from .registration import Accepted, Delivery, Registration
from .reports import StatusItem
from .routing import MAX_METRIC, STATIC_METRIC, RouteInfo, RouteOrigin, RoutePattern, RoutingTable
from .statistics import NodeStatistics, PeerInfo, TransferInfo

if TYPE_CHECKING:
    from .security import (
        PolicyKey,
        SecurityCheck,
        SecurityPolicy,
        SecurityRole,
        SecurityRule,
        SecurityVerdict,
        Service,
    )
    from .security_config import read_security_policy

_SECURITY_NAMES = {
    "PolicyKey": "security",
    "SecurityCheck": "security",
    "SecurityPolicy": "security",
    "SecurityRole": "security",
    "SecurityRule": "security",
    "SecurityVerdict": "security",
    "Service": "security",
    "read_security_policy": "security_config",
}


def __getattr__(name: str) -> Any:
    # BPSec brings the cryptography in (~0.1 s): programs that never configure a security
    # policy (``ucp``'s own node) do not pay for it at start-up.
    module = _SECURITY_NAMES.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Accepted",
    "PolicyKey",
    "SecurityCheck",
    "SecurityError",
    "SecurityPolicy",
    "SecurityRole",
    "SecurityRule",
    "SecurityVerdict",
    "Service",
    "read_security_policy",
    "DEFAULT_LIFETIME_S",
    "DEFAULT_STORE_QUOTA",
    "MAX_METRIC",
    "ROUTING_DEMUX",
    "ROUTING_IPN_SERVICE",
    "STATIC_METRIC",
    "AgentError",
    "AgentUsageError",
    "BundleNode",
    "ConfigError",
    "Delivery",
    "EndpointError",
    "NodeConfig",
    "NodeNotRunningError",
    "NodeStatistics",
    "PeerInfo",
    "TransferInfo",
    "Registration",
    "RegistrationClosedError",
    "RegistrationError",
    "RemoteDataError",
    "RouteAdvertisement",
    "RouteAdvertisementError",
    "RouteInfo",
    "RouteOrigin",
    "RoutePattern",
    "RoutingTable",
    "StatusItem",
    "StatusReportReason",
    "is_routing_endpoint",
    "parse_node_id",
    "routing_endpoint",
]
