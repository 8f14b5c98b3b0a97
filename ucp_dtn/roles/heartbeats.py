"""Heartbeats: how an executor or a datastore tells its brokers that it is alive.

Theory of operation
-------------------
A role that brokers must know about (executor, datastore) runs one :class:`HeartbeatSender`.
Every ``heartbeat_interval_s`` it sends one ``heartbeat`` message to every broker of the role's
:class:`~ucp_dtn.roles.directory.BrokerDirectory` (nearest first) plus any broker the role
names itself (an executor adds the brokers whose jobs it is running). What every heartbeat
carries is decided here, the same for every role:

* ``roles`` — the sending role alone: an executor and a datastore on one node send their own
  heartbeats, and the broker keeps one entry per (node, role);
* ``capabilities`` — :meth:`RoleSettings.local_capabilities
  <ucp_dtn.roles.settings.RoleSettings.local_capabilities>`: measured with psutil, then the
  node's ``--capability`` overrides applied (``None`` if they cannot be read this round);
* ``sequence`` — the clock in milliseconds (at least one more than the last), so a restarted
  role continues above its previous numbers and a broker never takes its fresh heartbeats for
  stale ones;
* ``broker`` — the nearest broker of the directory (``None`` if it lists none);
* ``interval`` — the heartbeat interval; the bundle's lifetime is three intervals and it
  travels without custody: a stale heartbeat is worthless.

What differs between roles comes from the role as :class:`HeartbeatDetails`, asked for once
per round: an executor's running jobs and slots, a datastore's free and used bytes. A role
that cannot say this round (its store failed) answers ``None`` and the round is skipped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from bpv7 import BPv7Error, EndpointID

from ..ucp.capabilities import Capabilities
from ..ucp.messages import Heartbeat, Role, UcpMessage
from .directory import BrokerDirectory
from .settings import RoleSettings

__all__ = ["HeartbeatDetails", "HeartbeatSender", "SendMessage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeartbeatDetails:
    """What one role adds to its next heartbeat (the defaults say "not an executor", "not a
    datastore")."""

    running_jobs: tuple[uuid.UUID, ...] = ()
    """Executors: the jobs running (or waiting for a slot) now."""
    started: tuple[uuid.UUID, ...] = ()
    """Executors: those of :attr:`running_jobs` holding a slot."""
    max_jobs: int = 0
    """Executors: jobs run at once; 0 for any other role."""
    store_free: int | None = None
    """Datastores: bytes the store can still take (quota or disk, the smaller)."""
    store_used: int | None = None
    """Datastores: content bytes stored."""
    extra_brokers: tuple[str, ...] = ()
    """Broker endpoints to tell besides the directory's (an executor's: those whose jobs it
    runs, even when the directory no longer lists them)."""


class SendMessage(Protocol):
    """How a role hands a message to its mailbox: ``True`` if sent, ``False`` (logged and
    counted by the role) if the agent refused it."""

    async def __call__(
        self, destination: str, message: UcpMessage, *, lifetime_s: float
    ) -> bool: ...


class HeartbeatSender:
    """Sends the heartbeats of one role of a node (see the module docstring). Run
    :meth:`run` in the role's nursery; :meth:`send_now` sends one round at once."""

    def __init__(
        self,
        node_id: EndpointID,
        role: Role,
        settings: RoleSettings,
        directory: BrokerDirectory,
        send: SendMessage,
        details: Callable[[], Awaitable[HeartbeatDetails | None]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``role`` is the one role flag the heartbeats announce; ``details`` is asked once
        per round for what the role adds (``None``: skip the round); ``clock`` gives
        ``sent_at`` and the sequence numbers (seconds since the epoch)."""
        self.node_id = node_id
        self.role = role
        self.settings = settings
        self.directory = directory
        self._send = send
        self._details = details
        self._clock = clock
        self._sequence = 0
        self.sent = 0
        """Heartbeat messages handed to the agent (one per broker and round)."""
        self.capabilities: Capabilities | None = None
        """The capabilities announced in the latest round (``None`` before the first, or
        when they could not be read)."""

    async def run(self) -> None:
        """Send a round now and then every ``heartbeat_interval_s``, until cancelled."""
        while True:
            await self.send_now()
            await trio.sleep(self.settings.heartbeat_interval_s)

    async def send_now(self) -> int:
        """Send one heartbeat to every known broker now; returns how many were sent (0 while
        no broker is known or the role skips the round)."""
        known = self._directory_brokers()
        details = await self._details()
        if details is None:
            return 0
        brokers = list(dict.fromkeys([*known, *details.extra_brokers]))
        if not brokers:
            logger.debug("%s %s: no broker known yet; no heartbeat", self.node_id, self._name)
            return 0
        capabilities = await self._capabilities()
        self.capabilities = capabilities
        self._sequence = max(self._sequence + 1, int(self._clock() * 1000))
        interval = self.settings.heartbeat_interval_s
        heartbeat = Heartbeat(
            node=str(self.node_id),
            roles=self.role,
            sequence=self._sequence,
            sent_at=self._clock(),
            interval=interval,
            capabilities=capabilities,
            running_jobs=details.running_jobs,
            max_jobs=details.max_jobs,
            broker=known[0] if known else None,
            store_free=details.store_free,
            store_used=details.store_used,
            started=details.started,
        )
        sent = 0
        for broker in brokers:
            if await self._send(broker, heartbeat, lifetime_s=3 * interval):
                sent += 1
        self.sent += sent
        return sent

    @property
    def _name(self) -> str:
        return (self.role.name or str(int(self.role))).lower()

    def _directory_brokers(self) -> list[str]:
        try:
            return [str(broker) for broker in self.directory.brokers()]
        except BPv7Error as exc:  # a configured broker that is no EID
            logger.warning("broker directory: %s", exc)
            return []

    async def _capabilities(self) -> Capabilities | None:
        try:
            return await trio.to_thread.run_sync(self.settings.local_capabilities)
        except (OSError, ValueError) as exc:  # ValueError: CapabilityError
            logger.warning("cannot read this node's capabilities: %s", exc)
            return None
