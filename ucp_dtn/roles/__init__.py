"""The UCP roles — broker, executor, datastore — running as applications on a bundle node,
and the shared plumbing they use (well-known endpoints, the mailbox)."""

from .endpoints import (
    ROLE_IPN_SERVICES,
    RoleName,
    node_of,
    parse_roles,
    role_endpoint,
    role_of_endpoint,
)
from .mailbox import Incoming, Mailbox, MailboxStatistics, Outgoing, RequestTimeout

__all__ = [
    "ROLE_IPN_SERVICES",
    "Incoming",
    "Mailbox",
    "MailboxStatistics",
    "Outgoing",
    "RequestTimeout",
    "RoleName",
    "node_of",
    "parse_roles",
    "role_endpoint",
    "role_of_endpoint",
]
