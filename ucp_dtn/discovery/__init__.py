"""Neighbour discovery: announce our TCPCLv4 listener over DNS-SD/mDNS and find other nodes.

See :mod:`ucp_dtn.discovery._announcement` for the wire schema (service type
``_dtn-bundle._tcp.local.``, TXT keys) and :mod:`ucp_dtn.discovery._discovery` for how the trio
shell drives python-zeroconf's threads. ``python -m ucp_dtn.discovery`` runs one node's
discovery from the command line and prints what it sees as JSON lines.
"""

from zeroconf import IPVersion

from ._announcement import (
    DEFAULT_SERVICE_TYPE,
    TCPCL_VERSION,
    TXT_SCHEMA_VERSION,
    DiscoveredPeer,
    check_instance_name,
    check_service_type,
    encode_announcement,
    expand_unspecified,
    format_address,
    instance_name_for,
    parse_address,
    peer_from_announcement,
)
from ._connect import DEFAULT_ATTEMPT_TIMEOUT, connect_first
from ._discovery import (
    DEFAULT_RECORD_TTL,
    Discovery,
    DiscoveryStatistics,
    PeerAppeared,
    PeerDisappeared,
    PeerEvent,
    PeerUpdated,
)
from ._errors import (
    ConnectAttemptFailure,
    DiscoveryConfigError,
    DiscoveryError,
    MalformedAnnouncement,
    PeerUnreachable,
)

__all__ = [
    "DEFAULT_ATTEMPT_TIMEOUT",
    "DEFAULT_RECORD_TTL",
    "DEFAULT_SERVICE_TYPE",
    "TCPCL_VERSION",
    "TXT_SCHEMA_VERSION",
    "ConnectAttemptFailure",
    "DiscoveredPeer",
    "Discovery",
    "DiscoveryConfigError",
    "DiscoveryError",
    "DiscoveryStatistics",
    "IPVersion",
    "MalformedAnnouncement",
    "PeerAppeared",
    "PeerDisappeared",
    "PeerEvent",
    "PeerUnreachable",
    "PeerUpdated",
    "check_instance_name",
    "check_service_type",
    "connect_first",
    "encode_announcement",
    "expand_unspecified",
    "format_address",
    "instance_name_for",
    "parse_address",
    "peer_from_announcement",
]
