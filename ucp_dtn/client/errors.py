"""Exceptions of the UCP client.

Two families, as everywhere in ucp-dtn: the user asked for something that cannot be done
(:class:`ClientUsageError`: an unknown job name, no way to reach a broker configured) and the
network did not do its part (:class:`ClientError` itself and :class:`BrokerUnreachable`: no
broker reachable in time, no answer, a datastore refused). Every message is one line that can be
shown to the user as it is; ``status`` is the exit status the ``ucp`` command uses.
"""

from __future__ import annotations

__all__ = [
    "BrokerUnreachable",
    "ClientError",
    "ClientUsageError",
    "HomeError",
    "NoReply",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class ClientError(Exception):
    """Something the client was asked to do failed (one-line message)."""

    status: int = EXIT_FAILURE
    """Exit status of the ``ucp`` command for this error."""


class ClientUsageError(ClientError, ValueError):
    """The request makes no sense here (unknown job, bad name, nothing to connect to)."""

    status = EXIT_USAGE


class HomeError(ClientError):
    """The client home cannot be used (unreadable, or in use by another ``ucp`` command)."""


class BrokerUnreachable(ClientError):
    """No broker could be reached within the allowed time."""


class NoReply(ClientError):
    """A broker or datastore did not answer a request in time."""
