"""How the broker passes data requests on to datastores: a client's uploads, queries and
deletions, an executor's input fetches and published results.

* ``DataPut`` goes to one datastore: the one the name cache says holds the name if it is live,
  else the live one with the most free space. The broker notes name → datastore in its cache.
* ``DataGet`` goes, for each name the query selects that a live datastore is known to hold
  (the name cache, and the holders of replicas, :mod:`.replicas`), to one such holder: the one
  the role directory reaches by the smallest route metric (a holder that was just lost has no
  route any more), ties to the smaller node ID; to every live datastore when none is known.
  Any replica serves a read.
* ``DataList`` and ``DataFreeSpace`` go to every live datastore (the requester merges the
  answers).
* ``DataDelete`` goes to every live datastore *and* to every datastore seen within the
  tombstone lifetime that is away now: its bundle waits in the network until that datastore
  is back, so a replica that was partitioned away at the time is deleted too. A delete also
  drops the names it removes from the cache and from the replica holders.

The relayed request keeps the requester's ``request_id`` and carries ``reply_to`` = the
requester, so datastores answer it directly. While no datastore is live the request is queued
durably (the journal) and relayed, in order, when one appears; a queued query (get, list, free
space) older than the requester's patience (``settings.request_timeout_s``) is dropped then
instead — the requester has asked again by now. Puts and deletes change state: they travel with
custody and the results' lifetime; queries without custody and with a short lifetime.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from bpv7 import BPv7Error, EndpointID

from ...ucp.messages import (
    DataDelete,
    DataEntry,
    DataFreeSpace,
    DataGet,
    DataList,
    DataPut,
    Role,
    UcpMessage,
)
from ...ucp.versions import DataVersion
from ..endpoints import RoleName, node_of, role_endpoint
from ..settings import RoleSettings
from .journal import AsyncJournal, PendingRequest
from .name_cache import NameCache
from .registry import NodeRegistry

if TYPE_CHECKING:
    from .replica_keeper import ReplicaKeeper

__all__ = ["DataRelay", "DataRequest", "SendMessage", "is_state_changing", "with_reply_to"]

logger = logging.getLogger(__name__)

DataRequest = DataPut | DataGet | DataList | DataDelete | DataFreeSpace
"""The requests the broker relays to datastores."""


class SendMessage(Protocol):
    """How the relay sends (the broker's mailbox send)."""

    async def __call__(
        self,
        destination: str | EndpointID,
        message: UcpMessage,
        *,
        custody: bool = False,
        lifetime_s: float | None = None,
    ) -> object: ...


def is_state_changing(message: UcpMessage) -> bool:
    """Whether a data request changes what the datastores hold (put, delete)."""
    return isinstance(message, DataPut | DataDelete)


class DataRelay:
    """The broker's data request relay (see the module docstring)."""

    def __init__(
        self,
        registry: NodeRegistry,
        names: NameCache,
        settings: RoleSettings,
        journal: AsyncJournal,
        send: SendMessage,
        clock: Callable[[], float],
    ) -> None:
        self._registry = registry
        self._names = names
        self._settings = settings
        self._journal = journal
        self._send = send
        self._clock = clock
        self.pending: list[PendingRequest] = []
        """Requests waiting for a datastore, oldest first."""
        self.defer_names: Callable[[list[DataEntry]], bool] = lambda entries: False
        """Takes name cache entries to write later with the rest of a handling round
        (returns ``True``), or declines (they are written at once)."""
        self.relayed = 0
        """Requests relayed."""
        self.dropped = 0
        """Queued queries dropped as too old."""
        self.replicas: ReplicaKeeper | None = None
        """Replica holders and the datastores a delete must reach (set once the broker's
        mailbox runs)."""

    def _lifetime(self, message: UcpMessage) -> float:
        if is_state_changing(message):
            return self._settings.result_lifetime_s
        return 2 * self._settings.request_timeout_s

    async def relay(self, message: DataRequest) -> None:
        """Relay ``message`` now, or queue it durably if no datastore is live."""
        if self.pending:
            await self.flush()
        if self.pending or not await self._relay_now(message):
            sequence = await self._journal.add_pending(
                message, custody=is_state_changing(message), queued_at=self._clock()
            )
            self.pending.append(
                PendingRequest(sequence, message, is_state_changing(message), self._clock())
            )
            logger.info(
                "no datastore known: queued %s %d (%d waiting)",
                message.KIND,
                message.request_id,
                len(self.pending),
            )

    async def flush(self) -> None:
        """Relay queued requests, oldest first, while datastores are live."""
        done: list[int] = []
        try:
            for request in list(self.pending):
                message = request.message
                age = self._clock() - request.queued_at
                if not isinstance(message, DataRequest):  # only data requests are queued
                    done.append(request.sequence)
                elif not is_state_changing(message) and age > self._settings.request_timeout_s:
                    self.dropped += 1
                    logger.info("dropping queued %s: %.0f s old", message.KIND, age)
                    done.append(request.sequence)
                elif await self._relay_now(message):
                    done.append(request.sequence)
                else:
                    break
        finally:
            if done:
                await self._journal.remove_pending(done)
                gone = set(done)
                self.pending = [p for p in self.pending if p.sequence not in gone]

    async def _relay_now(self, message: DataRequest) -> bool:
        now = self._clock()
        targets: list[str]
        if isinstance(message, DataPut):
            holder = self._names.holder(message.name)
            node = self._registry.choose_datastore(
                len(message.data), now, preferred=None if holder is None else _node_text(holder)
            )
            targets = [] if node is None else [node]
        else:
            live = [entry.node for entry in self._registry.live(Role.DATASTORE, now)]
            targets = live
            if isinstance(message, DataGet):
                targets = self._readers(message.query, live) or live
            elif isinstance(message, DataDelete) and self.replicas is not None:
                targets = self.replicas.delete_targets(now)
        if not targets:
            return False
        custody = is_state_changing(message)
        for node in targets:
            await self._send(
                role_endpoint(node, RoleName.DATASTORE),
                message,
                custody=custody,
                lifetime_s=self._lifetime(message),
            )
        self.relayed += 1
        logger.debug("relayed %s %d to %s", message.KIND, message.request_id, ", ".join(targets))
        await self._update_cache(message, targets)
        return True

    def _readers(self, query: str, live: list[str]) -> list[str]:
        """One live holder for each name ``query`` selects that a live datastore is known to
        hold (see the module docstring)."""
        holders: dict[str, set[str]] = {}
        for name, holder in self._names.by_name(query).items():
            holders.setdefault(name, set()).add(_node_text(holder))
        if self.replicas is not None:
            for name, replica_nodes in self.replicas.planner.holders(query).items():
                holders.setdefault(name, set()).update(replica_nodes)
        metrics = {} if self.replicas is None else self.replicas.metrics()
        alive = set(live)
        chosen: set[str] = set()
        for nodes in holders.values():
            usable = [n for n in nodes if n in alive]
            if usable:
                chosen.add(min(usable, key=lambda n: (metrics.get(n, math.inf), n)))
        return sorted(chosen)

    async def _update_cache(self, message: DataRequest, targets: list[str]) -> None:
        if isinstance(message, DataPut) and NameCache.cacheable(message.name):
            entry = self._names.record(
                DataEntry(
                    name=message.name,
                    size=len(message.data),
                    written_at=message.written_at,
                    job_id=message.job_id,
                    holder=str(role_endpoint(targets[0], RoleName.DATASTORE)),
                )
            )
            if entry is not None and not self.defer_names([entry]):
                await self._journal.put_names([entry])
        elif isinstance(message, DataDelete):
            gone = self._names.forget(
                name=message.name, job_id=message.job_id, keep_result=message.keep_result
            )
            if gone:
                await self._journal.delete_names(gone)
            if self.replicas is not None:
                now = self._clock()
                at = now if message.deleted_at is None else message.deleted_at
                self.replicas.planner.note_delete(
                    query=message.name,
                    job_id=message.job_id,
                    keep_result=message.keep_result,
                    version=DataVersion.of_delete(at, message.reply_to or ""),
                    now=now,
                )


def _node_text(endpoint: str) -> str:
    try:
        return str(node_of(endpoint))
    except BPv7Error:  # a bad holder from another broker's sync matches no datastore
        return ""


def with_reply_to(message: DataRequest, requester: str) -> DataRequest:
    """``message`` with ``reply_to`` set to ``requester`` unless it names one already."""
    if message.reply_to is not None:
        return message
    return dataclasses.replace(message, reply_to=requester)
