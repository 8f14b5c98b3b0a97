"""Exceptions of the bundle protocol agent.

Two families, as everywhere in ucp-dtn: the local caller misused the agent's API
(:class:`AgentUsageError` and its subclasses, all ``ValueError``-like where an argument was
wrong), or a remote node sent something the agent cannot use (:class:`RemoteDataError`). Store
problems surface as :mod:`ucp_dtn.store` exceptions (e.g. ``StoreFullError`` from ``send``).
Messages are one line and safe to log.
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "AgentUsageError",
    "ConfigError",
    "EndpointError",
    "NodeNotRunningError",
    "RegistrationClosedError",
    "RegistrationError",
    "RemoteDataError",
    "RouteAdvertisementError",
    "SecurityError",
]


class AgentError(Exception):
    """Base class of every exception raised by :mod:`ucp_dtn.agent`."""


class AgentUsageError(AgentError):
    """The local caller used the agent wrongly."""


class ConfigError(AgentUsageError, ValueError):
    """A :class:`~ucp_dtn.agent.NodeConfig` value or a route pattern is invalid."""


class EndpointError(AgentUsageError, ValueError):
    """An endpoint ID is malformed, or is not an endpoint of this node where it must be."""


class SecurityError(AgentUsageError, ValueError):
    """A security operation asked for cannot be made (an unknown key name, a key that cannot
    do it, a bundle RFC 9172 forbids securing)."""


class NodeNotRunningError(AgentUsageError):
    """The operation needs a running node (``BundleNode.run`` has not started or has ended)."""


class RegistrationError(AgentUsageError):
    """An endpoint cannot be registered (e.g. it already has an open registration)."""


class RegistrationClosedError(RegistrationError):
    """The registration was closed (by the application or because the node stopped)."""


class RemoteDataError(AgentError):
    """Data received from another node cannot be used (the remote side is at fault)."""


class RouteAdvertisementError(RemoteDataError):
    """A received route advertisement payload is malformed."""
