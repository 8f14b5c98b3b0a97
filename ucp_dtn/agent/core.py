"""The shared state of one bundle protocol agent and the bundle-level steps all paths share.

Theory of operation
-------------------
:class:`AgentCore` owns what every part of the agent works on — the store, the routing table,
the forwarding queue, the registrations, counters — and implements the few steps that
reception, origination, forwarding, the janitor and custody all end in:

* :meth:`AgentCore.admit`: a bundle this node accepts (received, created, decapsulated) is
  stored durably, *then* dispatched (RFC 9171 §5.3): to a registration for local delivery
  (§5.7) or to the forwarding queue (§5.4). Administrative records for this node are handled at
  once instead (custody signals, BIBE PDUs, status reports).
* :meth:`AgentCore.delete`: a bundle leaves the store for a reason (RFC 9171 §5.10 deletion,
  with a "deleted" status report when requested) and from every in-memory view.
* :meth:`AgentCore.forwarded` / :meth:`AgentCore.delivered`: the end of a bundle's stay.

Invariants: a bundle is in the forwarding queue, in a registration's queue or on the wire only
while the store holds it in the matching state; the store changes first, memory follows; every
key that leaves the store goes into ``recent`` (duplicate suppression).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

import trio

from bpv7 import (
    Bundle,
    BundleFlags,
    BundleID,
    CreationTimestamp,
    DecodeError,
    DtnEID,
    EndpointID,
    IpnEID,
    decode_bundle,
    dtn_time_from_unix,
    parse_eid,
)
from bpv7.admin import (
    AdminRecordError,
    BibePdu,
    BundleStatusReport,
    CustodySignal,
    StatusKind,
    StatusReportReason,
    admin_record_from_bundle,
)
from bpv7.fragment import FragmentCollector, ReassemblyError, reassembly_key
from ucp_dtn.store import (
    BundleState,
    BundleStore,
    PutItem,
    Reservation,
    StoredBundle,
    StoreError,
    StoreFullError,
)

from .bundle_records import (
    EXTRA_PREVIOUS,
    bundle_key,
    is_fragment_key,
    stored_bundle_for,
    stored_flags,
)
from .config import NodeConfig
from .contracts import Admission, Custodian
from .duplicates import RecentBundles
from .forwarding import ForwardQueue, RawCache
from .registration import Accepted, Registration
from .reports import StatusReporter
from .roles import RoleDirectory
from .route_exchange import RouteExchange
from .routing import RoutingTable
from .statistics import Counters

__all__ = ["AgentCore"]

_REPORT_DELETION = int(BundleFlags.REPORT_DELETION)
_REPORT_FORWARDING = int(BundleFlags.REPORT_FORWARDING)
_REPORT_DELIVERY = int(BundleFlags.REPORT_DELIVERY)

logger = logging.getLogger(__name__)

_SETTLED_FLUSH_S = 0.02
"""How long deletions of settled bundles may wait for another commit to take them along
(:meth:`AgentCore.settled`) before they are committed on their own."""
_FRESH_BYTES = 4 * 1024 * 1024
"""Bytes of decoded bundles kept for local delivery (see :class:`FreshDeliveries`)."""
_FRESH_LARGEST = 256 * 1024
"""Larger bundles are not kept decoded: their delivery reads them back from the store."""


class FreshDeliveries:
    """Bundles just stored for a local endpoint, decoded, until a registration takes them.

    A registration usually takes a bundle for its endpoint a moment after it was stored:
    handing it the bundle object that was just stored saves reading the bytes back from the
    store (a thread round trip) and decoding them again. The bundle is the very one whose
    encoding was stored (received and checked, or built here), so the delivery is the same.
    Bounded by the bytes of the stored encodings; the oldest go first. Purely an optimisation:
    a miss reads the store."""

    __slots__ = ("_bytes", "_entries", "_limit")

    def __init__(self, limit_bytes: int = _FRESH_BYTES) -> None:
        self._limit = limit_bytes
        self._entries: OrderedDict[str, tuple[Bundle, int]] = OrderedDict()
        self._bytes = 0

    def put(self, key: str, bundle: Bundle, size: int) -> None:
        """Keep ``bundle`` (stored under ``key`` as ``size`` octets) unless it is large."""
        if size > _FRESH_LARGEST:
            return
        self.take(key)
        self._entries[key] = (bundle, size)
        self._bytes += size
        while self._bytes > self._limit:
            _, (_, old) = self._entries.popitem(last=False)
            self._bytes -= old

    def take(self, key: str) -> Bundle | None:
        """The kept bundle ``key`` (forgotten here), or ``None``."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._bytes -= entry[1]
        return entry[0]

    def __len__(self) -> int:
        return len(self._entries)


class AgentCore:
    """State and shared steps of one agent (see the module docstring)."""

    def __init__(self, config: NodeConfig, store: BundleStore, clock: Callable[[], float]) -> None:
        self.config = config
        self.node_id: EndpointID = config.node_eid
        self.node_text = str(self.node_id)
        self.store = store
        self.clock = clock
        self.routing = RoutingTable(self.node_id)
        self.route_exchange = RouteExchange()
        """Where each neighbour's route advertisement stream stands."""
        self.roles = RoleDirectory(self.node_id, config.roles)
        self.queue = ForwardQueue(self.routing, clock)
        self.counters = Counters()
        self.recent = RecentBundles()
        self.cache = RawCache()
        self.fresh = FreshDeliveries()
        """Decoded bundles waiting for local delivery (saves reading them back)."""
        self.registrations: dict[EndpointID, Registration] = {}
        self.reporter = StatusReporter(self)
        self.custody: Custodian | None = None
        """Custody transfer (set by the node)."""
        self.security = config.security
        """The BPSec policy (RFC 9172 §5), if any."""
        self.fragments = FragmentCollector()
        self._fragment_keys: dict[str, set[str]] = {}  # original bundle key -> fragment keys
        self._last_creation = (0, -1)
        self._janitor_wakeup = trio.Event()
        self._settled_pending = trio.Event()
        self.routes_changed: Callable[[], None] = _nothing
        """Called when routes changed (the node advertises them to its neighbours)."""

    # -- signals between the parts ------------------------------------------------------------

    def wake_janitor(self) -> None:
        """A deadline nearer than the janitor's next round appeared."""
        self._janitor_wakeup.set()

    def new_janitor_round(self) -> trio.Event:
        """A fresh event for the janitor's next round, set by :meth:`wake_janitor`."""
        self._janitor_wakeup = trio.Event()
        return self._janitor_wakeup

    def routes_updated(self) -> None:
        """The routing table changed: re-assign waiting bundles and tell the neighbours."""
        self.queue.sync()
        self.routes_changed()

    # -- time and identity --------------------------------------------------------------------

    def now(self) -> float:
        """The current time (unix seconds) from the node's clock."""
        return self.clock()

    def new_creation(self) -> CreationTimestamp:
        """A creation timestamp no other bundle of this node has (RFC 9171 §4.2.7: the sequence
        number distinguishes bundles created in the same millisecond)."""
        time_ms = dtn_time_from_unix(self.clock())
        last_ms, last_seq = self._last_creation
        if time_ms <= last_ms:
            time_ms, sequence = last_ms, last_seq + 1
        else:
            sequence = 0
        self._last_creation = (time_ms, sequence)
        return CreationTimestamp(time_ms, sequence)

    def is_local(self, eid: EndpointID) -> bool:
        """Whether ``eid`` is an endpoint of this node (compared field by field: building
        ``eid.node_id`` costs a validated EID per call on the hot path)."""
        node = self.node_id
        if isinstance(eid, DtnEID):
            return (
                isinstance(node, DtnEID) and eid.node_name == node.node_name and bool(eid.node_name)
            )
        return (
            isinstance(node, IpnEID)
            and eid.node == node.node
            and eid.allocator == node.allocator
            and not eid.is_null
        )

    # -- admission and dispatch (RFC 9171 §5.3) -----------------------------------------------

    async def is_duplicate(self, key: str, bundle: Bundle) -> bool:
        """Whether bundle ``key`` (decoded: ``bundle``) is held or was recently handled — or,
        for a fragment, whether its whole original is (RFC 9171 §5.8: fragments of different
        fragmentation episodes, e.g. a prefix kept after a cut and the whole bundle sent again,
        carry the same ADU)."""
        if key in self.recent or await self.store.contains(key):
            return True
        if bundle.is_fragment:
            original = bundle_key(reassembly_key(bundle))
            return original in self.recent or await self.store.contains(original)
        return False

    async def admit(
        self,
        bundle: Bundle,
        raw: bytes,
        *,
        previous: EndpointID | None,
        custody: bool = False,
        reservation: Reservation | None = None,
    ) -> bool:
        """Store ``bundle`` (whose bytes are ``raw``) durably and dispatch it. ``False`` if it
        was a duplicate. Raises ``StoreFullError`` when it does not fit (nothing kept). The
        space comes from ``reservation`` when given (it is used up either way)."""
        primary = bundle.primary
        local = self.is_local(primary.destination)
        if local and primary.is_admin_record and await self._handle_local_admin(bundle, previous):
            if reservation is not None:
                reservation.release()
            return True
        meta = self._record_for(bundle, raw, local, previous, custody)
        if not await self.store.put(meta, raw, reservation=reservation):
            return False
        await self._admitted(meta, bundle, raw, local, previous)
        return True

    async def admit_many(self, admissions: Sequence[Admission]) -> list[bool | StoreError]:
        """:meth:`admit` of several bundles, stored together (one group commit): per bundle
        ``True``, ``False`` (a duplicate) or the store's error (``StoreFullError``: nothing
        kept). Administrative records for this node are not for this path (they are handled,
        not stored): use :meth:`admit`."""
        now = self.clock()
        items: list[PutItem] = []
        locals_: list[bool] = []
        for admission in admissions:
            bundle = admission.bundle
            local = self.is_local(bundle.primary.destination)
            locals_.append(local)
            meta = self._record_for(
                bundle, admission.raw, local, admission.previous, admission.custody, now,
                key=admission.key,
            )  # fmt: skip
            items.append((meta, admission.raw, admission.reservation))
        results = await self.store.put_many(items)
        for (meta, raw, _), admission, local, result in zip(
            items, admissions, locals_, results, strict=True
        ):
            if result is True:
                await self._admitted(meta, admission.bundle, raw, local, admission.previous)
        return results

    def _record_for(
        self,
        bundle: Bundle,
        raw: bytes,
        local: bool,
        previous: EndpointID | None,
        custody: bool,
        now: float | None = None,
        *,
        key: str | None = None,
    ) -> StoredBundle:
        return stored_bundle_for(
            bundle,
            len(raw),
            received_at=self.clock() if now is None else now,
            state=BundleState.PENDING_DELIVERY if local else BundleState.PENDING_FORWARD,
            previous=None if previous is None else str(previous),
            custody=custody,
            key=key,
        )

    async def _admitted(
        self,
        meta: StoredBundle,
        bundle: Bundle,
        raw: bytes,
        local: bool,
        previous: EndpointID | None,
    ) -> None:
        """Dispatch a bundle just stored (RFC 9171 §5.3): to local delivery (whole bundles) or
        reassembly (fragments), or to the forwarding queue."""
        if local and bundle.is_fragment:
            await self._collect_fragment(meta.key, bundle)
        elif local:
            await self._drop_partial(bundle)
            self.fresh.put(meta.key, bundle, len(raw))
            self.dispatch(meta)
        else:
            self.queue.add(meta.key, bundle.primary.destination, previous)
            if self.queue.is_routed(meta.key):
                # Likely to be read back soon: keep the bytes at hand.
                self.cache.put(meta.key, raw)
        if meta.expires_at < self.clock() + self.config.janitor_interval_s:
            self.wake_janitor()

    def dispatch(self, meta: StoredBundle) -> None:
        """Put a stored bundle where it is waited for: a registration, or the forwarding
        queue. Safe to repeat (both ignore a key they have)."""
        destination = parse_eid(meta.destination)
        if meta.state is BundleState.PENDING_DELIVERY:
            registration = self.registrations.get(destination)
            if registration is not None:
                registration.offer(meta.key)
        elif meta.state is BundleState.PENDING_FORWARD:
            previous_text = meta.extra.get(EXTRA_PREVIOUS)
            previous = None if previous_text is None else parse_eid(previous_text)
            self.queue.add(meta.key, destination, previous)

    async def requeue(self, key: str, *, front: bool = False) -> None:
        """Put a bundle taken for sending back into the forwarding queue, if still due."""
        meta = await self.store.meta(key)
        if meta is None or meta.state is not BundleState.PENDING_FORWARD:
            return
        if meta.next_retry_at is not None:
            return  # the janitor brings it back when its retry time comes
        previous_text = meta.extra.get(EXTRA_PREVIOUS)
        self.queue.add(
            key,
            parse_eid(meta.destination),
            None if previous_text is None else parse_eid(previous_text),
            front=front,
        )

    async def load(self, key: str) -> bytes | None:
        """The stored bytes of ``key`` (from memory when recently stored)."""
        raw = self.cache.get(key)
        if raw is None:
            raw = await self.store.get(key)
        return raw

    async def load_bundle(self, key: str) -> Bundle | None:
        """The stored bundle ``key``, decoded; ``None`` if gone (or unreadable: then logged)."""
        raw = await self.load(key)
        if raw is None:
            return None
        try:
            return decode_bundle(raw)
        except DecodeError as exc:
            logger.error("stored bundle %s no longer decodes: %s", key, exc)
            return None

    # -- leaving the store --------------------------------------------------------------------

    async def settled(self, keys: Sequence[str]) -> list[bool]:
        """Remove bundles whose fate is settled — delivered and confirmed, acknowledged by the
        next hop, released by a custody signal — from the store and every in-memory view; per
        key, whether it was stored. The store drops them at once and commits their deletion
        with its next group commit, or :meth:`flush_settled` does within ``_SETTLED_FLUSH_S``:
        no thread round trip of their own when other commits follow. (A crash in between
        brings them back, to be sent or delivered again: a duplicate, never a loss.)"""
        results = await self.store.delete_later(keys)
        for key, deleted in zip(keys, results, strict=True):
            if deleted:
                self.forget(key)
        if any(results):
            self._settled_pending.set()
        return results

    async def flush_settled(self) -> None:
        """Commit the deletions :meth:`settled` left to the next group commit, a moment after
        they were made, if no other commit took them along (runs until cancelled)."""
        while True:
            await self._settled_pending.wait()
            self._settled_pending = trio.Event()
            await trio.sleep(_SETTLED_FLUSH_S)
            try:
                await self.store.flush()
            except StoreError as exc:
                logger.warning("cannot commit deletions: %s", exc)

    def forget(self, key: str) -> None:
        """Bundle ``key`` left the store: drop it from every in-memory view (the forwarding
        queue, the raw cache, registrations, custody) and remember it as handled."""
        self.queue.remove(key)
        self.cache.drop(key)
        self.fresh.take(key)
        self.recent.add(key)
        for registration in self.registrations.values():
            registration.withdraw(key)
        if self.custody is not None:
            self.custody.forget(key)

    async def delete(
        self,
        key: str,
        reason: int,
        *,
        meta: StoredBundle | None = None,
        bundle: Bundle | None = None,
    ) -> bool:
        """Delete a stored bundle for ``reason`` (RFC 9171 §5.10), with a "deleted" status report
        if it asked for one (§5.10: "the bundle deletion status report ... if ... requested").
        ``False`` if it was not stored."""
        if meta is None:
            meta = await self.store.meta(key)
            if meta is None:
                return False
        flags = stored_flags(meta.extra)
        if flags & _REPORT_DELETION and bundle is None:
            bundle = await self.load_bundle(key)
        if not await self.store.delete(key):
            return False
        self.forget(key)
        self.counters.count_deleted(reason)
        logger.info("deleted %s: %s", key, _reason_text(reason))
        if bundle is not None and flags & _REPORT_DELETION:
            await self.reporter.report(bundle, StatusKind.DELETED, reason)
        return True

    async def discard(self, bundle: Bundle, reason: int) -> None:
        """Drop a bundle that was never stored (e.g. received with its hop limit exceeded),
        counting it and reporting as a deletion when requested (RFC 9171 §5.10)."""
        key = bundle_key(bundle.bundle_id)
        self.recent.add(key)
        self.counters.count_deleted(reason)
        logger.info("discarded %s: %s", key, _reason_text(reason))
        if int(bundle.primary.flags) & _REPORT_DELETION:
            await self.reporter.report(bundle, StatusKind.DELETED, reason)

    async def forwarded(self, key: str, meta: StoredBundle, peer: EndpointID) -> None:
        """A neighbour acknowledged bundle ``key`` (RFC 9171 §5.4 step 5-6: "forwarded" status
        report if requested, then the "Forward pending" retention constraint goes). A custodial
        bundle stays until a custody signal releases it."""
        self.counters.forwarded += 1
        flags = stored_flags(meta.extra)
        bundle = None
        if flags & _REPORT_FORWARDING:
            bundle = await self.load_bundle(key)
        if meta.custody and self.custody is not None:
            await self.custody.sent(key, meta, peer)
        else:
            await self.settled([key])
        if bundle is not None:
            await self.reporter.report(bundle, StatusKind.FORWARDED)

    async def forwarded_many(
        self, done: Sequence[tuple[str, StoredBundle]], peer: EndpointID
    ) -> None:
        """:meth:`forwarded` for several bundles ``peer`` acknowledged: those that need no
        status report and no custody signal leave the store together (one group commit)."""
        plain: list[str] = []
        for key, meta in done:
            if (meta.custody and self.custody is not None) or (
                stored_flags(meta.extra) & _REPORT_FORWARDING
            ):
                await self.forwarded(key, meta, peer)
            else:
                plain.append(key)
        if not plain:
            return
        self.counters.forwarded += len(plain)
        await self.settled(plain)

    # -- local delivery (RFC 9171 §5.7) -------------------------------------------------------

    async def pending_for(self, endpoint: EndpointID) -> list[str]:
        """Keys of the bundles waiting for ``endpoint`` (for a new registration)."""
        found = await self.store.query(
            destination=str(endpoint), states={BundleState.PENDING_DELIVERY}
        )
        # Fragments are never delivered as they are: the collector reassembles them (§5.9),
        # and a fragment stored a moment ago may not have reached it yet.
        return [meta.key for meta in found if not is_fragment_key(meta.key)]

    async def load_delivery(self, key: str) -> Accepted | None:
        """The bundle to hand to an application for ``key``, after the security acceptor's
        processing (RFC 9172 §5.1): ``None`` if it is gone, or discarded because a security
        operation failed or is missing (deleted with that reason)."""
        bundle = self.fresh.take(key)
        if bundle is None:
            bundle = await self.load_bundle(key)
        if bundle is None or self.security is None:
            return None if bundle is None else Accepted(bundle)
        verdict = self.security.on_delivery(bundle, now=self.clock())
        if verdict.discard is not None:
            logger.warning("discarding %s at delivery: %s", key, verdict.reason)
            await self.delete(key, verdict.discard, bundle=bundle)
            return None
        return Accepted(verdict.bundle, verdict.checks)

    async def delivered(self, key: str, bundle: Bundle) -> None:
        """An application confirmed the delivery of ``key`` (RFC 9171 §5.7 step 2: "delivered"
        status report if requested, then the bundle may be deleted)."""
        if not (await self.settled([key]))[0]:
            return
        self.counters.delivered += 1
        if int(bundle.primary.flags) & _REPORT_DELIVERY:
            await self.reporter.report(bundle, StatusKind.DELIVERED)

    def unregister(self, registration: Registration) -> None:
        """A registration closed."""
        if self.registrations.get(registration.endpoint) is registration:
            del self.registrations[registration.endpoint]

    # -- fragments for local delivery (RFC 9171 §5.9) -----------------------------------------

    async def _collect_fragment(self, key: str, fragment: Bundle) -> None:
        """Add a stored fragment for a local endpoint; when its ADU is complete, store the
        reassembled bundle, drop the fragments and dispatch the whole."""
        original = bundle_key(reassembly_key(fragment))
        self._fragment_keys.setdefault(original, set()).add(key)
        try:
            whole = self.fragments.add(fragment, now_dtn_ms=dtn_time_from_unix(self.clock()))
        except ReassemblyError as exc:
            logger.warning("fragment %s cannot be reassembled: %s", key, exc)
            self._fragment_keys[original].discard(key)
            await self.delete(key, StatusReportReason.BLOCK_UNINTELLIGIBLE)
            return
        if whole is None:
            return
        members = self._fragment_keys.pop(original, set())
        self.counters.reassembled += 1
        if original in self.recent or await self.store.contains(original):
            # The whole bundle arrived too (sent again after a cut): deliver it once.
            await self._drop_fragments(members)
            return
        if whole.is_admin_record and await self._handle_local_admin(whole, None):
            await self._drop_fragments(members)
            return
        raw = whole.encode()
        meta = stored_bundle_for(
            whole, len(raw), received_at=self.clock(), state=BundleState.PENDING_DELIVERY
        )
        try:
            await self.store.put(meta, raw)
        except StoreFullError as exc:
            # The fragments are stored, so the whole needs as much space again.
            logger.warning("no room for the reassembled %s: %s", meta.key, exc)
            for member in members:
                await self.delete(member, StatusReportReason.DEPLETED_STORAGE)
            return
        await self._drop_fragments(members)
        self.cache.put(meta.key, raw)
        self.fresh.put(meta.key, whole, len(raw))
        self.dispatch(meta)

    async def _drop_partial(self, whole: Bundle) -> None:
        """A whole bundle for local delivery arrived: fragments of it collected so far (e.g.
        kept after a transfer of it was cut) are no longer needed."""
        if not self._fragment_keys:
            return
        original = reassembly_key(whole)
        members = self._fragment_keys.pop(bundle_key(original), None)
        if members is not None:
            self.fragments.discard(original)
            await self._drop_fragments(members)

    def forget_partial(self, original: BundleID) -> None:
        """The collector dropped the partial ADU ``original`` (expired)."""
        self._fragment_keys.pop(bundle_key(original), None)

    async def _drop_fragments(self, members: set[str]) -> None:
        """Remove fragments whose ADU has been reassembled (they are not "deleted": the
        reassembled bundle carries on)."""
        for member in members:
            if await self.store.delete(member):
                self.forget(member)

    async def restore_fragments(self) -> None:
        """After a restart: feed stored local fragments to the collector again."""
        waiting = await self.store.query(states={BundleState.PENDING_DELIVERY})
        for meta in waiting:
            if is_fragment_key(meta.key):
                bundle = await self.load_bundle(meta.key)
                if bundle is not None and bundle.is_fragment:
                    await self._collect_fragment(meta.key, bundle)

    # -- administrative records for this node (RFC 9171 §6.1) ---------------------------------

    async def _handle_local_admin(self, bundle: Bundle, previous: EndpointID | None) -> bool:
        """Handle an administrative record addressed to this node; ``False`` when it should be
        stored for a registration instead (status reports while the node ID is registered)."""
        if bundle.is_fragment:
            return False  # reassembled first, then handled
        try:
            record = admin_record_from_bundle(bundle)
        except (AdminRecordError, DecodeError) as exc:
            logger.warning(
                "administrative record from %s is unintelligible: %s", bundle.primary.source, exc
            )
            self.counters.invalid += 1
            return True
        if isinstance(record, CustodySignal):
            if self.custody is not None:
                await self.custody.on_signal(bundle, record)
            return True
        if isinstance(record, BibePdu):
            # Received BPDUs are decapsulated by reception; one created here is a mistake.
            logger.warning("ignoring a BIBE PDU from %s not received from a neighbour", previous)
            return True
        if isinstance(record, BundleStatusReport):
            self.counters.reports_received += 1
            if self.node_id in self.registrations:
                return False
            logger.info(
                "status report from %s about %s|%d.%d: %s (%s)",
                bundle.primary.source,
                record.source,
                record.creation.time_ms,
                record.creation.sequence,
                ",".join(kind.name.lower() for kind in record.asserted_kinds),
                _reason_text(record.reason),
            )
            return True
        logger.info("ignoring administrative record of unknown type from %s", bundle.primary.source)
        return True


def _nothing() -> None:
    pass


def _reason_text(reason: int) -> str:
    try:
        return StatusReportReason(reason).name.lower().replace("_", " ")
    except ValueError:
        return f"reason {reason}"
