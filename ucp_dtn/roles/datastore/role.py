"""The datastore role: keeps named data for the UCP and answers data requests.

Theory of operation
-------------------
The role lives on ``…/ucp/datastore`` of its node (:func:`~ucp_dtn.roles.role_endpoint`) and
keeps its data in a :class:`~.named_data_store.NamedDataStore` under ``<workdir>/datastore``
(in memory without a workdir). It does two things:

* **Heartbeats** — every ``heartbeat_interval_s`` it tells every broker of the
  :class:`~ucp_dtn.roles.directory.BrokerDirectory` that it is alive, announcing the datastore
  role only (an executor on the same node sends its own), the node's capabilities (measured,
  with the node's ``--capability`` overrides) and the store's free and used bytes; a round in
  which the store cannot say is skipped. :mod:`ucp_dtn.roles.heartbeats` sends them.
* **Requests** — a few worker tasks take messages from the mailbox:

  ============== ======================= ==================================================
  request        reply                   what happens
  ============== ======================= ==================================================
  data-put       data-reply              stored durably (last write wins by version:
                                         ``written_at``, then writer — ``writer``, else
                                         ``reply-to`` or the bundle source —, then digest);
                                         ``ok`` (count 1 stored, 0 duplicate), ``stale``
                                         (older than what is stored, or than a delete),
                                         ``no-space`` (nothing stored); an ``exclusive`` put
                                         of a name another write holds: ``taken`` (never a
                                         replica copy: it is the same write)
  data-get       data-get-reply          one page: ``max-bytes`` of content (capped by the
                                         role), at least one datum; ``cursor`` continues
  data-list      data-list-reply         one page of metadata (prefix and/or job filter, or
                                         only replicated data), with versions and factors
  data-delete    data-reply              count deleted (a name with subkeys, or a job's
                                         data, written before the delete's ``at``); a
                                         tombstone is kept
  data-replicate data-reply              copies of a datum queued for other datastores
                                         (``not-found`` if not held)
  data-free-space data-free-space-reply  free (quota or disk, the smaller), used, items
  ============== ======================= ==================================================

  A query that selects nothing is answered ``not-found`` (on its first page); a bad cursor
  ``invalid``. Replies go to ``reply-to`` or else to the bundle's source, without custody and
  with a short lifetime; a requester that misses one asks again (puts are idempotent). A
  request is confirmed to the agent (:meth:`~ucp_dtn.roles.Incoming.done`) only after it was
  acted on and answered: a put only once stored. A put the store could not take for another
  reason than space (an I/O error) is answered ``unavailable`` and left unconfirmed, so the
  agent hands it over again after a restart. A ``data-reply`` answers one of this
  datastore's replica copies (counted); any other message is logged and dropped.
* **Replication** — a put names its replication factor, or gets the node's default for the
  name (:meth:`RoleSettings.replicas_for <ucp_dtn.roles.settings.RoleSettings.replicas_for>`).
  After storing a replicated datum (factor above 1, a copy of one, or a write replacing one)
  the role tells every broker it heartbeats to (``data-held``); the planning broker then asks a
  holder for the missing copies (``data-replicate``), which :mod:`.replicator` sends paced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from bpv7 import BPv7Error, EndpointID, parse_eid

from ...agent import AgentError, BundleNode
from ...store import StoreError
from ...trust import MeshRole
from ...ucp.messages import (
    DataDelete,
    DataEntry,
    DataFreeSpace,
    DataFreeSpaceReply,
    DataGet,
    DataGetReply,
    DataHeld,
    DataItem,
    DataList,
    DataListReply,
    DataPut,
    DataReplicate,
    DataReply,
    DataStatus,
    Role,
    UcpMessage,
)
from ..directory import BrokerDirectory
from ..endpoints import RoleName, node_of, role_endpoint
from ..heartbeats import HeartbeatDetails, HeartbeatSender
from ..mailbox import Incoming, Mailbox, MailboxStatistics, Outgoing
from ..node_stop import NodeStopGuard
from ..settings import RoleSettings
from .errors import DataStoreClosedError, DataStoreError, DataStoreFullError, InvalidCursorError
from .named_data_store import NamedDataStore
from .ownership import requester_of
from .replicator import Replicator, ReplicatorStatistics
from .store_results import DatumInfo, NamedDataStatistics, PutOutcome

__all__ = ["MAX_REPLY_BYTES", "MAX_REPLY_ITEMS", "DatastoreRole", "DatastoreStatistics"]

logger = logging.getLogger(__name__)

MAX_REPLY_BYTES = 8 << 20
"""Most content bytes one ``data-get-reply`` carries, whatever the request asks (a single
larger datum still comes, alone)."""
MAX_REPLY_ITEMS = 1000
"""Most data or entries in one reply."""

_WORKERS = 4
_BATCH_MESSAGES = 64
"""Most messages handled together (their answers sent together)."""


@dataclass(frozen=True, slots=True)
class DatastoreStatistics:
    """Counters of one datastore role."""

    puts: int
    """``data-put`` requests handled."""
    gets: int
    """``data-get`` requests handled."""
    lists: int
    """``data-list`` requests handled."""
    deletes: int
    """``data-delete`` requests handled."""
    free_space_queries: int
    """``data-free-space`` requests handled."""
    no_space: int
    """Puts refused for lack of space."""
    invalid: int
    """Requests answered ``invalid`` (bad cursors)."""
    unavailable: int
    """Requests the store failed on (answered ``unavailable``)."""
    dropped: int
    """Messages that were not data requests (logged and dropped)."""
    send_failures: int
    """Replies and heartbeats the node could not send."""
    heartbeats_sent: int
    """Heartbeats sent (one per broker and round)."""
    store: NamedDataStatistics | None
    """The store's figures (``None`` before :meth:`DatastoreRole.run` opened it)."""
    mailbox: MailboxStatistics
    """The mailbox's counters."""
    replicate_requests: int = 0
    """``data-replicate`` requests handled."""
    denied: int = 0
    """Puts and deletes refused in a trusted mesh: the requester does not own the data."""
    held_reports: int = 0
    """``data-held`` messages sent (one per broker and replicated datum stored)."""
    replication: ReplicatorStatistics | None = None
    """The replica copies this datastore sent (``None`` before :meth:`DatastoreRole.run`)."""


class DatastoreRole:
    """The datastore role of one node (see the module docstring). Start with
    ``await nursery.start(role.run)``; cancel to stop (the store is closed cleanly)."""

    def __init__(
        self,
        node: BundleNode,
        settings: RoleSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.settings = settings
        self.endpoint: EndpointID = role_endpoint(node.node_id, RoleName.DATASTORE)
        """Where the role receives requests."""
        self.mailbox = Mailbox(node, self.endpoint)
        self.directory = BrokerDirectory(node, settings)
        self._clock = clock
        self._store: NamedDataStore | None = None
        self._last_store_statistics: NamedDataStatistics | None = None
        self._heartbeats = HeartbeatSender(
            node.node_id,
            Role.DATASTORE,
            settings,
            self.directory,
            self._send,
            self._heartbeat_details,
            clock=clock,
        )
        self._handled = dict.fromkeys(
            (DataPut, DataGet, DataList, DataDelete, DataFreeSpace, DataReplicate), 0
        )
        self._no_space = self._invalid = self._unavailable = self._dropped = 0
        self._held_replies: list[Outgoing] | None = None
        """While a batch is handled, the answers waiting to leave together."""
        self._denied = 0
        self._send_failures = self._held_reports = 0
        self._replicator: Replicator | None = None
        self._last_replication: ReplicatorStatistics | None = None

    @property
    def store(self) -> NamedDataStore:
        """The open store (only while :meth:`run` runs)."""
        if self._store is None:
            raise DataStoreClosedError("the datastore role is not running")
        return self._store

    @property
    def reply_lifetime_s(self) -> float:
        """Lifetime of reply bundles: a requester gives up and asks again long before."""
        return 2 * max(self.settings.request_timeout_s, self.settings.heartbeat_interval_s)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store, register the endpoint, serve requests and send heartbeats until
        cancelled; the store is closed on the way out."""
        workdir = self.settings.workdir
        directory = None if workdir is None else workdir / "datastore"
        store = await NamedDataStore.open(
            directory,
            quota_bytes=self.settings.datastore_quota_bytes,
            clock=self._clock,
            tombstone_lifetime_s=self.settings.tombstone_lifetime_s,
        )
        async with store:
            self._store = store
            replicator = Replicator(
                self.node, store, self.mailbox, self.settings, clock=self._clock
            )
            self._replicator = replicator
            try:
                with NodeStopGuard(str(self.endpoint)) as guard:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(self.mailbox.run)
                        for _ in range(_WORKERS):
                            nursery.start_soon(self._serve)
                        nursery.start_soon(self._heartbeats.run)
                        nursery.start_soon(replicator.run)
                        logger.info("%s: serving (%s)", self.endpoint, directory or "in memory")
                        guard.serving = True
                        task_status.started()
            finally:
                self._last_store_statistics = store.statistics()
                self._last_replication = replicator.statistics()
                self._store = None
                self._replicator = None

    def statistics(self) -> DatastoreStatistics:
        """Counters of this role, with its store's and mailbox's."""
        handled = self._handled
        return DatastoreStatistics(
            puts=handled[DataPut],
            gets=handled[DataGet],
            lists=handled[DataList],
            deletes=handled[DataDelete],
            free_space_queries=handled[DataFreeSpace],
            no_space=self._no_space,
            denied=self._denied,
            invalid=self._invalid,
            unavailable=self._unavailable,
            dropped=self._dropped,
            send_failures=self._send_failures,
            heartbeats_sent=self._heartbeats.sent,
            store=(
                self._store.statistics() if self._store is not None else self._last_store_statistics
            ),
            mailbox=self.mailbox.statistics(),
            replicate_requests=handled[DataReplicate],
            held_reports=self._held_reports,
            replication=(
                self._replicator.statistics()
                if self._replicator is not None
                else self._last_replication
            ),
        )

    # -- heartbeats ---------------------------------------------------------------------------

    async def send_heartbeat(self) -> int:
        """Send one heartbeat to every known broker now; returns how many were sent."""
        return await self._heartbeats.send_now()

    async def _heartbeat_details(self) -> HeartbeatDetails | None:
        """The store's free and used bytes for the next heartbeat (``None``: the store could
        not say; the round is skipped)."""
        try:
            space = await self.store.space()
        except DataStoreClosedError:
            raise
        except DataStoreError as exc:
            logger.error("%s: no heartbeat: %s", self.endpoint, exc)
            return None
        return HeartbeatDetails(store_free=space.free, store_used=space.used)

    # -- requests -----------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            first = await self.mailbox.receive()
            await self._handle_batch([first, *self.mailbox.receive_ready(_BATCH_MESSAGES - 1)])

    async def _handle_batch(self, batch: list[Incoming]) -> None:
        """Act on the messages that arrived together (a batch bundle's), send their answers
        together (those for one requester in one bundle), then confirm them."""
        if len(batch) == 1:
            await self.handle(batch[0])
            return
        self._held_replies = []
        confirm = []
        try:
            for incoming in batch:
                if await self._act(incoming):
                    confirm.append(incoming)
        finally:
            held, self._held_replies = self._held_replies, None
        if held:
            try:
                await self.mailbox.send_many(held)
            except (AgentError, StoreError, ValueError) as exc:
                self._send_failures += 1
                logger.warning("%s: cannot send %d replies: %s", self.endpoint, len(held), exc)
        for incoming in confirm:
            await incoming.done()

    async def handle(self, incoming: Incoming) -> None:
        """Act on one message from the mailbox, answer it and confirm it (see the module
        docstring)."""
        if await self._act(incoming):
            await incoming.done()

    async def _act(self, incoming: Incoming) -> bool:
        """Act on one message and answer it; whether to confirm it."""
        message = incoming.message
        try:
            if isinstance(message, DataPut):
                confirm = await self._put(incoming, message)
            elif isinstance(message, DataGet):
                confirm = await self._get(incoming, message)
            elif isinstance(message, DataList):
                confirm = await self._list(incoming, message)
            elif isinstance(message, DataDelete):
                confirm = await self._delete(incoming, message)
            elif isinstance(message, DataFreeSpace):
                confirm = await self._free_space(incoming, message)
            elif isinstance(message, DataReplicate):
                confirm = await self._replicate(incoming, message)
            elif isinstance(message, DataReply) and self._replicator is not None:
                self._replicator.note_reply(message)
                confirm = True
            else:
                self._dropped += 1
                logger.info(
                    "%s: dropping a %s from %s (not a data request)",
                    self.endpoint,
                    type(message).__name__,
                    incoming.source,
                )
                confirm = True
        except DataStoreClosedError:
            raise
        except DataStoreError as exc:
            # The store failed (an I/O error): say so; the requester may ask again.
            self._unavailable += 1
            logger.error("%s: %s failed: %s", self.endpoint, type(message).__name__, exc)
            reply = _unavailable(message, f"datastore failure: {exc}")
            if reply is not None:
                await self._reply(incoming, getattr(message, "reply_to", None), reply)
            confirm = True
        return confirm

    async def _put(self, incoming: Incoming, put: DataPut) -> bool:
        self._handled[DataPut] += 1
        why = await self._ownership_refusal(incoming, put)
        if why is not None:
            await self._reply(incoming, put.reply_to, DataReply(put.request_id, *why))
            return True
        writer = put.writer or (put.reply_to if put.reply_to is not None else str(incoming.source))
        replicas = (
            put.replicas if put.replicas is not None else self.settings.replicas_for(put.name)
        )
        confirm = True
        try:
            outcome = await self.store.put(
                put.name,
                put.data,
                written_at=put.written_at,
                writer=writer,
                job_id=put.job_id,
                replicas=replicas,
                # A replica copy (it names its writer) is the same write as the one stored
                # first elsewhere: never refused as taken, last write wins as for any copy.
                exclusive=put.exclusive and put.writer is None,
            )
        except DataStoreFullError as exc:
            self._no_space += 1
            logger.warning("%s: no space for %r from %s: %s", self.endpoint, put.name, writer, exc)
            reply = DataReply(put.request_id, DataStatus.NO_SPACE, str(exc))
        except DataStoreClosedError:
            raise
        except DataStoreError as exc:
            self._unavailable += 1
            logger.error("%s: cannot store %r: %s", self.endpoint, put.name, exc)
            reply = DataReply(put.request_id, DataStatus.UNAVAILABLE, f"cannot store: {exc}")
            confirm = False
        else:
            if outcome is PutOutcome.STALE:
                reply = DataReply(
                    put.request_id, DataStatus.STALE, f"a newer write of {put.name!r} is stored"
                )
            elif outcome is PutOutcome.TAKEN:
                reply = DataReply(
                    put.request_id, DataStatus.TAKEN, f"name {put.name!r} already taken"
                )
            else:
                await self.store.set_private(put.name, put.private)
                if outcome is PutOutcome.UNCHANGED:
                    reply = DataReply(put.request_id, DataStatus.OK, "already stored", count=0)
                else:
                    reply = DataReply(put.request_id, DataStatus.OK, count=1)
                # Held now (a copy that was here already counts too): tell the brokers.
                info = await self.store.info(put.name)
                if info is not None and info.replicated:
                    await self._report_held(info)
        await self._reply(incoming, put.reply_to, reply)
        return confirm

    async def _report_held(self, info: DatumInfo) -> None:
        """Tell every broker that this datastore now holds a replicated datum."""
        held = DataHeld(node=str(self.endpoint), entries=(self._entry(info),))
        for broker in self.directory.brokers():
            if await self._send(broker, held, lifetime_s=self.reply_lifetime_s):
                self._held_reports += 1

    def _entry(self, info: DatumInfo) -> DataEntry:
        return DataEntry(
            info.name,
            info.size,
            info.written_at,
            info.job_id,
            holder=str(self.endpoint),
            replicas=info.replicas,
            writer=info.writer,
            digest=info.digest,
        )

    async def _replicate(self, incoming: Incoming, request: DataReplicate) -> bool:
        self._handled[DataReplicate] += 1
        own = self.node.node_id
        targets = [t for t in request.targets if node_of(t) != own]
        if await self.store.info(request.name) is None:
            reply = DataReply(request.request_id, DataStatus.NOT_FOUND, f"no {request.name!r} here")
        else:
            queued = await self.store.queue_copies(request.name, targets)
            if self._replicator is not None:
                self._replicator.wake()
            logger.info(
                "%s: %d copies of %r to make (asked by %s)",
                self.endpoint,
                queued,
                request.name,
                incoming.source,
            )
            reply = DataReply(request.request_id, DataStatus.OK, count=queued)
        await self._reply(incoming, request.reply_to, reply)
        return True

    async def _get(self, incoming: Incoming, get: DataGet) -> bool:
        self._handled[DataGet] += 1
        try:
            page = await self.store.get(
                get.query,
                cursor=get.cursor,
                max_bytes=max(0, min(get.max_bytes, MAX_REPLY_BYTES)),
                max_items=MAX_REPLY_ITEMS,
                have=frozenset(get.have),
            )
        except InvalidCursorError as exc:
            self._invalid += 1
            reply = DataGetReply(get.request_id, DataStatus.INVALID, detail=str(exc))
        else:
            if not page.items and get.cursor is None:
                reply = DataGetReply(
                    get.request_id, DataStatus.NOT_FOUND, detail=f"no data match {get.query!r}"
                )
            else:
                hidden = await self._hidden(incoming, get, [d.info.name for d in page.items])
                # The digest goes with every item: the requester may cache by it, and names
                # it in a later get's ``have`` to be spared the bytes.
                items = tuple(
                    DataItem(
                        d.info.name,
                        d.data,
                        d.info.written_at,
                        d.info.job_id,
                        d.info.writer,
                        digest=d.info.digest or None,
                        cached=bool(d.info.digest) and d.info.digest in get.have,
                    )
                    for d in page.items
                    if d.info.name not in hidden
                )
                if hidden and not items and get.cursor is None:
                    owners = ", ".join(sorted(hidden))
                    reply = DataGetReply(
                        get.request_id,
                        DataStatus.DENIED,
                        detail=f"not allowed: {owners} private to its owner",
                    )
                else:
                    reply = DataGetReply(get.request_id, DataStatus.OK, items, page.cursor)
        await self._reply(incoming, get.reply_to, reply)
        return True

    async def _list(self, incoming: Incoming, request: DataList) -> bool:
        self._handled[DataList] += 1
        try:
            page = await self.store.listing(
                request.prefix,
                job_id=request.job_id,
                page_size=max(1, min(request.page_size, MAX_REPLY_ITEMS)),
                cursor=request.cursor,
                replicated=request.replicated,
            )
        except InvalidCursorError as exc:
            self._invalid += 1
            reply = DataListReply(request.request_id, DataStatus.INVALID, detail=str(exc))
        else:
            if not page.entries and request.cursor is None:
                reply = DataListReply(
                    request.request_id, DataStatus.NOT_FOUND, detail=_what(request)
                )
            else:
                hidden = await self._hidden(incoming, request, [e.name for e in page.entries])
                entries = tuple(self._entry(e) for e in page.entries if e.name not in hidden)
                reply = DataListReply(request.request_id, DataStatus.OK, entries, page.cursor)
        await self._reply(incoming, request.reply_to, reply)
        return True

    async def _delete(self, incoming: Incoming, delete: DataDelete) -> bool:
        self._handled[DataDelete] += 1
        why = await self._ownership_refusal(incoming, delete)
        if why is not None:
            await self._reply(incoming, delete.reply_to, DataReply(delete.request_id, *why))
            return True
        deleter = delete.reply_to if delete.reply_to is not None else str(incoming.source)
        if delete.job_id is not None:
            count = await self.store.delete_job(
                delete.job_id,
                keep_result=delete.keep_result,
                deleted_at=delete.deleted_at,
                deleter=deleter,
            )
            what = f"data of job {delete.job_id}"
        else:
            assert delete.name is not None  # the message checks: exactly one of the two
            count = await self.store.delete(
                delete.name, deleted_at=delete.deleted_at, deleter=deleter
            )
            what = repr(delete.name)
        if count:
            reply = DataReply(delete.request_id, DataStatus.OK, count=count)
        else:
            reply = DataReply(delete.request_id, DataStatus.NOT_FOUND, f"no {what} here")
        await self._reply(incoming, delete.reply_to, reply)
        return True

    async def _ownership_refusal(
        self, incoming: Incoming, message: DataPut | DataDelete
    ) -> tuple[DataStatus, str] | None:
        """In a trusted mesh, refuse to overwrite or delete what another client owns
        (:mod:`.ownership`): ``(DENIED, why)``, or ``None`` to go on."""
        requester = requester_of(incoming, message, self.mailbox.mesh)
        if requester is None or (
            incoming.sender is not None
            and incoming.sender.role is MeshRole.NODE
            and (
                (isinstance(message, DataPut) and message.writer is not None)
                or (isinstance(message, DataDelete) and message.job_id is not None)
            )
        ):
            return None  # open mode; a replica copy; a job's data (the broker checked it)
        if isinstance(message, DataPut):
            info = await self.store.info(message.name)
            infos: tuple[DatumInfo, ...] = () if info is None else (info,)
        else:
            page = await self.store.listing(
                message.name, job_id=message.job_id, page_size=MAX_REPLY_ITEMS
            )
            infos = page.entries
        for info in infos:
            if not requester.may_change(info.writer):
                owner = node_of(info.writer) if info.writer else "another client"
                self._denied += 1
                logger.warning(
                    "%s: %s may not change %r (owned by %s)",
                    self.endpoint,
                    requester.node,
                    info.name,
                    owner,
                )
                return (
                    DataStatus.DENIED,
                    f"not allowed: {owner} owns {info.name!r}; only its owner or an admin may "
                    "overwrite or delete it",
                )
        return None

    async def _hidden(self, incoming: Incoming, message: UcpMessage, names: list[str]) -> set[str]:
        """Which of ``names`` (with their writers) the requester may not read: data put
        ``--private`` by another client, in a trusted mesh."""
        requester = requester_of(incoming, message, self.mailbox.mesh)
        if requester is None or not names:
            return set()
        private = await self.store.private_among(names)
        hidden = set()
        for name in private:
            info = await self.store.info(name)
            if info is not None and not requester.may_read(info.writer, True):
                hidden.add(name)
        if hidden:
            self._denied += 1
            logger.info(
                "%s: %d private data hidden from %s", self.endpoint, len(hidden), requester.node
            )
        return hidden

    async def _free_space(self, incoming: Incoming, request: DataFreeSpace) -> bool:
        self._handled[DataFreeSpace] += 1
        space = await self.store.space()
        reply = DataFreeSpaceReply(
            request.request_id,
            node=str(self.node.node_id),
            free=space.free,
            used=space.used,
            items=space.items,
            quota=space.quota,
        )
        await self._reply(incoming, request.reply_to, reply)
        return True

    async def _reply(self, incoming: Incoming, reply_to: str | None, reply: UcpMessage) -> None:
        destination = reply_to if reply_to is not None else incoming.source
        if self._held_replies is not None:
            # Answers to a batch leave together once it is handled (:meth:`_handle_batch`).
            try:
                eid = parse_eid(destination) if isinstance(destination, str) else destination
            except BPv7Error as exc:
                self._send_failures += 1
                logger.warning("%s: cannot answer %s: %s", self.endpoint, destination, exc)
                return
            self._held_replies.append(Outgoing(eid, reply, False, self.reply_lifetime_s))
            return
        await self._send(destination, reply, lifetime_s=self.reply_lifetime_s)

    async def _send(
        self, destination: EndpointID | str, message: UcpMessage, *, lifetime_s: float
    ) -> bool:
        try:
            await self.mailbox.send(destination, message, lifetime_s=lifetime_s)
        except (AgentError, StoreError, ValueError) as exc:
            self._send_failures += 1
            logger.warning(
                "%s: cannot send %s to %s: %s",
                self.endpoint,
                type(message).__name__,
                destination,
                exc,
            )
            return False
        return True


def _what(request: DataList) -> str:
    parts = []
    if request.prefix is not None:
        parts.append(f"matching {request.prefix!r}")
    if request.job_id is not None:
        parts.append(f"of job {request.job_id}")
    return "no data " + " ".join(parts) if parts else "no data here"


def _unavailable(request: UcpMessage, detail: str) -> UcpMessage | None:
    """The ``unavailable`` answer to a request the store failed on (``None``: no such
    answer exists)."""
    if isinstance(request, DataGet):
        return DataGetReply(request.request_id, DataStatus.UNAVAILABLE, detail=detail)
    if isinstance(request, DataList):
        return DataListReply(request.request_id, DataStatus.UNAVAILABLE, detail=detail)
    if isinstance(request, DataPut | DataDelete | DataReplicate):
        return DataReply(request.request_id, DataStatus.UNAVAILABLE, detail)
    return None
