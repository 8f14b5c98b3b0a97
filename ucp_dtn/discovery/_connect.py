"""Connecting to a discovered peer: try its announced addresses in order, keep the first that works.

A node announces every address it listens on, and some may be dead from where we stand (an
interface we share no network with, a firewall, a stale port). :func:`connect_first` tries them
one after the other, in the peer's order, so a dead first address never hides a live second one.
Attempts are sequential on purpose: the order is the peer's preference, and TCPCL sessions are
long-lived, so a few seconds lost to a dead address once per session are cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from ._announcement import DiscoveredPeer
from ._errors import ConnectAttemptFailure, PeerUnreachable

__all__ = ["DEFAULT_ATTEMPT_TIMEOUT", "connect_first"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ATTEMPT_TIMEOUT = 5.0
"""Seconds one address may take before the next is tried (a blackholed SYN takes minutes)."""


def _only(group: BaseExceptionGroup[BaseException], kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether every leaf of ``group`` is one of ``kinds``."""
    matched, rest = group.split(kinds)
    return matched is not None and rest is None


async def connect_first(
    peer: DiscoveredPeer,
    connect: Callable[[str, int], Awaitable[T]],
    *,
    attempt_timeout: float | None = DEFAULT_ATTEMPT_TIMEOUT,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
) -> T:
    """Call ``connect(host, port)`` on each of ``peer.addresses`` in order; return the first result.

    An attempt fails when it raises one of ``retry_on`` (by default OSError, which covers refused,
    unreachable and reset connections; add e.g. a TCPCL contact-header error to skip an address
    where something else answers), an exception group made only of those, or exceeds
    ``attempt_timeout`` seconds (None: no limit). Any other exception propagates at once.
    Raises PeerUnreachable listing every failed attempt when none succeeds (or there are none).
    Cancellation of the caller propagates as usual.
    """
    failures: list[ConnectAttemptFailure] = []
    for host, port in peer.addresses:
        try:
            if attempt_timeout is None:
                return await connect(host, port)
            with trio.fail_after(attempt_timeout):
                return await connect(host, port)
        except trio.TooSlowError as exc:
            failures.append(ConnectAttemptFailure((host, port), exc))
        except BaseExceptionGroup as group:
            if not _only(group, retry_on):
                raise
            failures.append(ConnectAttemptFailure((host, port), group))
        except retry_on as exc:
            failures.append(ConnectAttemptFailure((host, port), exc))
        logger.debug("connecting to %s: %s", peer.node_id, failures[-1].describe())
    raise PeerUnreachable(peer.node_id, tuple(failures))
