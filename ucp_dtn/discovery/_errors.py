"""Errors of neighbour discovery, in the two usual families.

- :class:`DiscoveryConfigError`: the local caller misused the API (a node ID too long for a TXT
  string, an unspecified port, running one :class:`~ucp_dtn.discovery.Discovery` twice...).
- :class:`MalformedAnnouncement`: a remote announcement does not follow our TXT schema. Discovery
  never raises it to its user (such services are logged, counted and ignored); the pure decoder
  :func:`~ucp_dtn.discovery.peer_from_announcement` does.
- :class:`PeerUnreachable`: none of a peer's announced addresses could be connected to.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConnectAttemptFailure",
    "DiscoveryConfigError",
    "DiscoveryError",
    "MalformedAnnouncement",
    "PeerUnreachable",
]


class DiscoveryError(Exception):
    """Base class of every error this package raises on purpose."""


class DiscoveryConfigError(DiscoveryError, ValueError):
    """The local caller passed a configuration or made a call that cannot work."""


class MalformedAnnouncement(DiscoveryError):
    """A DNS-SD service of our type carries TXT data that does not follow our schema."""

    def __init__(self, service_name: str, reason: str) -> None:
        super().__init__(f"{service_name}: {reason}")
        self.service_name = service_name
        """Full DNS-SD instance name of the offending service."""
        self.reason = reason
        """What is wrong with it, in words."""


@dataclass(frozen=True, slots=True)
class ConnectAttemptFailure:
    """One address that :func:`~ucp_dtn.discovery.connect_first` tried in vain."""

    address: tuple[str, int]
    """The (host, port) tried."""
    error: BaseException
    """What the connect callable raised (or ``trio.TooSlowError`` for a per-attempt timeout)."""

    def describe(self) -> str:
        """One line: ``host:port: ErrorType: message``."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{port}: {type(self.error).__name__}: {self.error}"


class PeerUnreachable(DiscoveryError):
    """No announced address of a peer accepted a connection; lists every failed attempt."""

    def __init__(self, node_id: str, failures: tuple[ConnectAttemptFailure, ...]) -> None:
        if failures:
            detail = "; ".join(failure.describe() for failure in failures)
        else:
            detail = "it announced no address"
        super().__init__(f"could not connect to {node_id}: {detail}")
        self.node_id = node_id
        """Node ID of the peer we failed to reach."""
        self.failures = failures
        """Every attempt, in the order tried."""
