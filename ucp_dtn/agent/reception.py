"""Bundle reception (RFC 9171 §5.6): from a convergence-layer transfer to a stored bundle.

Theory of operation
-------------------
:meth:`Receiver.on_transfer` runs once per complete incoming TCPCL transfer (several at a time
per session, so that the store can group their commits). It decodes the bytes — an invalid
bundle is refused with XFER_REFUSE "Not Acceptable" and the session goes on — then
:meth:`Receiver.receive_bundle` applies §5.6 and the reception-time forwarding edits, and the
transfer is answered only afterwards: the final XFER_ACK once the bundle is durably stored (or
deliberately dropped: duplicate, hop limit, expired), XFER_REFUSE "No Resources" when the store
is full, so that the sender keeps its copy.

``receive_bundle`` is also the entry for bundles decapsulated from BIBE PDUs
(:mod:`ucp_dtn.agent.custody`), which report its outcome in a custody signal instead, and for
what is kept of transfers that were cut short (:meth:`Receiver.keep`, RFC 9171 §5.8 reactive
fragmentation: the acknowledged prefix as fragments, see :mod:`ucp_dtn.agent.partial`).

Large bundles (those that arrived in a spool file) are read back and decoded one at a time, so
the memory they take does not multiply with the number of sessions.

Edits made here so that the stored bytes are ready to forward: the hop count is incremented
(RFC 9171 §4.4.3) and, for a bundle that will be forwarded, the Previous Node Block names this
node (§5.4 step 4). The Bundle Age Block is updated at sending time (§5.4 step 4: "at the last
possible moment").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import trio

from bpv7 import (
    PROCESSABLE_BLOCK_TYPES,
    BlockType,
    Bundle,
    BundleID,
    DecodeError,
    EncodeError,
    EndpointID,
    HopCountBlock,
    decode_bundle,
    parse_eid,
    unprocessable_block_action,
    with_block_removed,
    with_forwarding_edits,
    with_hop_count_incremented,
)
from bpv7.admin import (
    AdminRecordError,
    BibePdu,
    StatusKind,
    StatusReportReason,
    admin_record_from_bundle,
)
from bpv7.fragment import FragmentationError, fragment_of
from convergence.tcpcl import LocalProtocolError, XferRefuseReason
from convergence.tcpcl.link import IncomingBundleTransfer
from convergence.tcpcl.link_errors import LinkClosedError
from ucp_dtn.store import Reservation, StoreError, StoreFullError

from .advertisement import RouteAdvertisement, is_routing_endpoint
from .bundle_records import bundle_key, expiry_of, key_of
from .contracts import Admission, ReceptionHost, ReceptionOutcome
from .errors import RouteAdvertisementError
from .partial import TransferCut, find_cut
from .route_exchange import Applied, apply_advertisement
from .spool import SpooledData, SpoolSink

__all__ = ["ReceptionOutcome", "Receiver"]

logger = logging.getLogger(__name__)

_KEPT_PIECE = 8 * 1024 * 1024
"""Largest payload piece of one fragment kept from a transfer cut short (a long prefix becomes
several fragments, so keeping it never needs more memory than this)."""
_HEAD_READ = 64 * 1024
"""First read when looking for the head of a partial bundle (multiplied until found)."""

_CARRIED_UNPROCESSED = frozenset({BlockType.BIB, BlockType.BCB})
"""BPSec blocks: not extension blocks this step processes; the security policy (if any) checks
them below, and otherwise they are carried unchanged (RFC 9172)."""


class Receiver:
    """Reception for one agent."""

    def __init__(self, core: ReceptionHost) -> None:
        self._core = core
        self._large = trio.Lock()

    async def on_transfer(self, transfer: IncomingBundleTransfer, peer: EndpointID) -> None:
        """Process one incoming transfer from neighbour ``peer`` and answer it."""
        core = self._core
        sink = transfer.sink
        reservation: Reservation | None = None
        large = False
        if isinstance(sink, SpoolSink):
            reservation = sink.take_reservation()
            large = sink.spooled
        try:
            async with self._large if large else contextlib.nullcontext():
                raw = await transfer.read()
                outcome = await self._process(raw, peer, reservation)
        except OSError as exc:
            logger.error("cannot read a bundle from %s back from the spool: %s", peer, exc)
            outcome = ReceptionOutcome.NO_RESOURCES
        finally:
            if reservation is not None:
                reservation.release()
        await _answer_with(core, transfer, outcome)

    async def on_transfers(
        self, transfers: Sequence[IncomingBundleTransfer], peer: EndpointID
    ) -> None:
        """Process several incoming transfers from neighbour ``peer`` (taken together from its
        session) and answer each: the bundles to keep are stored together, in one group
        commit, and their acknowledgements leave together. Large (spooled) transfers and
        bundles the agent consumes itself go through :meth:`on_transfer` one by one."""
        core = self._core
        batch: list[tuple[IncomingBundleTransfer, Admission, bool]] = []
        try:
            for transfer in transfers:
                await self._check_transfer(transfer, peer, batch)
        except BaseException:
            for _, admission, _ in batch:  # never stored: give their quota back
                if admission.reservation is not None:
                    admission.reservation.release()
            raise
        if not batch:
            return
        try:
            results = await core.admit_many([admission for _, admission, _ in batch])
        finally:
            for _, admission, _ in batch:
                if admission.reservation is not None:
                    admission.reservation.release()
        for (transfer, admission, report_unsupported), result in zip(batch, results, strict=True):
            if isinstance(result, StoreFullError):
                logger.info("store full, refusing a bundle from %s: %s", peer, result)
                outcome = ReceptionOutcome.NO_RESOURCES
            elif isinstance(result, StoreError):
                logger.error("cannot store a bundle from %s: %s", peer, result)
                outcome = ReceptionOutcome.NO_RESOURCES
            else:
                outcome = await self._stored(admission.bundle, result, report_unsupported)
            await _answer_with(core, transfer, outcome)

    async def _check_transfer(
        self,
        transfer: IncomingBundleTransfer,
        peer: EndpointID,
        batch: list[tuple[IncomingBundleTransfer, Admission, bool]],
    ) -> None:
        """Decode and check one transfer of a batch: answer it at once when it is not to be
        stored (or is handled on its own), else add it to ``batch``."""
        core = self._core
        sink = transfer.sink
        if isinstance(sink, SpoolSink) and sink.spooled:
            await self.on_transfer(transfer, peer)
            return
        reservation = sink.take_reservation() if isinstance(sink, SpoolSink) else None
        checked: ReceptionOutcome | tuple[Admission, bool]
        try:
            raw = await transfer.read()
            bundle = decode_bundle(raw)
        except DecodeError as exc:
            core.counters.invalid += 1
            logger.warning("invalid bundle from %s refused: %s", peer, exc)
            checked = ReceptionOutcome.INVALID
        else:
            if core.is_local(bundle.primary.destination) and bundle.primary.is_admin_record:
                # Consumed here (custody signals, BIBE PDUs, reports): one at a time.
                checked = await self.receive_bundle(bundle, raw, peer, reservation=reservation)
                reservation = None
            else:
                try:
                    checked = await self._check(bundle, raw, peer, False, reservation)
                except BaseException:
                    if reservation is not None:
                        reservation.release()
                    raise
        if isinstance(checked, ReceptionOutcome):
            if reservation is not None:
                reservation.release()
            await _answer_with(core, transfer, checked)
            return
        batch.append((transfer, *checked))

    async def _process(
        self, raw: bytes, peer: EndpointID, reservation: Reservation | None
    ) -> ReceptionOutcome:
        core = self._core
        try:
            bundle = decode_bundle(raw)
        except DecodeError as exc:
            core.counters.invalid += 1
            logger.warning("invalid bundle from %s refused: %s", peer, exc)
            return ReceptionOutcome.INVALID
        return await self.receive_bundle(bundle, raw, peer, reservation=reservation)

    async def keep(self, data: SpooledData, reservation: Reservation | None) -> None:
        """Keep what arrived of a transfer that did not reach :meth:`on_transfer`: the whole
        bundle if it is complete, else the acknowledged prefix as fragments (RFC 9171 §5.8,
        reactive fragmentation; the sender sends the rest). Never raises."""
        core = self._core
        try:
            try:
                peer = parse_eid(data.peer)
            except DecodeError:
                logger.warning("partial transfer from an unusable node ID %r dropped", data.peer)
                return
            async with self._large:
                if data.complete:
                    raw = await data.read(0, data.length)
                    await self._process(raw, peer, reservation)
                    return
                cut = await _locate_cut(data)
                if cut is None or cut.cut < 1:
                    logger.info(
                        "nothing to keep of a transfer from %s cut after %d octets",
                        peer,
                        data.length,
                    )
                    return
                await self._keep_prefix(data, cut, peer, reservation)
        except (DecodeError, FragmentationError) as exc:
            core.counters.invalid += 1
            logger.warning("partial transfer from %s is not a valid bundle: %s", data.peer, exc)
        except StoreError as exc:
            logger.error("cannot keep a partial transfer from %s: %s", data.peer, exc)
        finally:
            if reservation is not None:
                reservation.release()

    async def _keep_prefix(
        self,
        data: SpooledData,
        cut: TransferCut,
        peer: EndpointID,
        reservation: Reservation | None,
    ) -> None:
        core = self._core
        kept = 0
        for start in range(0, cut.cut, _KEPT_PIECE):
            end = min(start + _KEPT_PIECE, cut.cut)
            payload = await data.read(cut.payload_start + start, end - start)
            if len(payload) != end - start:
                raise StoreError("the spool file is shorter than it was")
            piece = fragment_of(cut.head, start, payload)
            raw = piece.encode()
            share = reservation.split(len(raw)) if reservation is not None else None
            outcome = await self.receive_bundle(
                piece, raw, peer, custody=cut.custody, reservation=share
            )
            if outcome is ReceptionOutcome.NO_RESOURCES:
                logger.warning("no room to keep a fragment of a partial transfer from %s", peer)
                return
            kept += end - start
        core.counters.partial_kept += 1
        core.counters.partial_kept_bytes += kept
        logger.info(
            "kept %d of %d payload octets of %s from %s as fragments%s",
            kept,
            cut.head.payload_length,
            bundle_key(reassembly_key_of(cut)),
            peer,
            " (custodian)" if cut.custody else "",
        )

    async def receive_bundle(
        self,
        bundle: Bundle,
        raw: bytes,
        previous: EndpointID | None,
        *,
        custody: bool = False,
        reservation: Reservation | None = None,
    ) -> ReceptionOutcome:
        """Apply RFC 9171 §5.6 to a decoded bundle whose bytes are ``raw``, received from
        ``previous``; store and dispatch it unless it is dropped. ``custody``: this node takes
        custody of it (it came in a BIBE PDU asking for custody transfer). ``reservation``:
        quota already held for it (released whatever happens)."""
        try:
            return await self._receive(bundle, raw, previous, custody, reservation)
        finally:
            if reservation is not None:
                reservation.release()

    async def _receive(
        self,
        bundle: Bundle,
        raw: bytes,
        previous: EndpointID | None,
        custody: bool,
        reservation: Reservation | None,
    ) -> ReceptionOutcome:
        core = self._core
        checked = await self._check(bundle, raw, previous, custody, reservation)
        if isinstance(checked, ReceptionOutcome):
            return checked
        admission, report_unsupported = checked
        try:
            stored = await core.admit(
                admission.bundle,
                admission.raw,
                previous=previous,
                custody=custody,
                reservation=reservation,
            )
        except StoreFullError as exc:
            logger.info("store full, refusing %s from %s: %s", bundle.bundle_id, previous, exc)
            return ReceptionOutcome.NO_RESOURCES
        return await self._stored(admission.bundle, stored, report_unsupported)

    async def _check(
        self,
        bundle: Bundle,
        raw: bytes,
        previous: EndpointID | None,
        custody: bool,
        reservation: Reservation | None,
    ) -> ReceptionOutcome | tuple[Admission, bool]:
        """RFC 9171 §5.6 up to storing: an outcome when the bundle is not to be stored (or was
        consumed here: route advertisements, BIBE PDUs), else what to store — the bundle with
        its reception-time edits — and whether a "block unsupported" report is due."""
        core = self._core
        primary = bundle.primary
        destination = primary.destination
        local = core.is_local(destination)
        if local and is_routing_endpoint(destination):
            self._learn_routes(bundle, previous)
            return ReceptionOutcome.ACCEPTED
        key = key_of(bundle)
        if await core.is_duplicate(key, bundle):
            core.counters.duplicates += 1
            logger.debug("duplicate %s from %s dropped", key, previous)
            return ReceptionOutcome.DUPLICATE
        if local and primary.is_admin_record and not bundle.is_fragment:
            try:
                record = admin_record_from_bundle(bundle)
            except (AdminRecordError, DecodeError, EncodeError):
                record = None
            if isinstance(record, BibePdu):
                core.counters.received += 1
                if reservation is not None:
                    reservation.release()  # the encapsulated bundle is stored, not the BPDU
                if core.custody is not None:
                    await core.custody.on_bpdu(bundle, record, previous, self)
                return ReceptionOutcome.ACCEPTED
        edited = False
        report_unsupported = False
        # RFC 9171 §5.6 step 4: "For each block in the bundle that is an extension block that
        # the bundle protocol agent cannot process: ..."
        for block in bundle.blocks[:-1]:
            if (
                block.type_code in PROCESSABLE_BLOCK_TYPES
                or block.type_code in _CARRIED_UNPROCESSED
            ):
                continue
            action = unprocessable_block_action(block)
            report_unsupported = report_unsupported or action.report
            if action.delete_bundle:
                # "... the BPA MUST delete the bundle for the reason 'Block unsupported'".
                if action.report:
                    await core.reporter.report(
                        bundle,
                        StatusKind.RECEIVED,
                        StatusReportReason.BLOCK_UNSUPPORTED,
                        force=True,
                    )
                await core.discard(bundle, StatusReportReason.BLOCK_UNSUPPORTED)
                return ReceptionOutcome.DROPPED
            if action.discard_block:
                # "... the BPA MUST remove this block from the bundle."
                bundle = with_block_removed(bundle, block.number)
                edited = True
        hop_block = bundle.find_block(BlockType.HOP_COUNT)
        # RFC 9171 §4.4.3: the hop count "SHOULD be increased by 1 on each hop" and "When a
        # bundle's hop count exceeds its hop limit, the bundle SHOULD be deleted for the reason
        # 'Hop limit exceeded'". (The increment is made below, with the other edits.)
        if (
            hop_block is not None
            and HopCountBlock.decode_data(hop_block.data).incremented().exceeded
        ):
            bundle = with_hop_count_incremented(bundle)
            await core.discard(bundle, StatusReportReason.HOP_LIMIT_EXCEEDED)
            return ReceptionOutcome.DROPPED
        now = core.now()
        if expiry_of(bundle, now) <= now:
            # RFC 9171 §5.5: a bundle whose lifetime has passed "SHALL be deleted for the reason
            # 'Lifetime expired'".
            await core.discard(bundle, StatusReportReason.LIFETIME_EXPIRED)
            return ReceptionOutcome.DROPPED
        if core.security is not None and not bundle.is_fragment:
            # RFC 9172 §5.1: verifier and acceptor processing as the policy says (a fragment is
            # checked once reassembled at its destination, §5.2; relays carry it as it is).
            verdict = core.security.on_reception(bundle, core.node_id, local=local, now=now)
            if verdict.discard is not None:
                logger.warning("discarding %s from %s: %s", key, previous, verdict.reason)
                await core.discard(bundle, verdict.discard)
                return ReceptionOutcome.DROPPED
            if verdict.bundle is not bundle:
                bundle = verdict.bundle
                edited = True
        if hop_block is not None or not local:
            # RFC 9171 §5.4 step 4: an old Previous Node Block "MUST be removed" and one
            # "containing the node ID of the forwarding node MUST be inserted" (when the bundle
            # goes on). Both edits in one pass: one new Bundle instead of two.
            bundle = with_forwarding_edits(
                bundle,
                increment_hop_count=hop_block is not None,
                previous_node=None if local else core.node_id,
            )
            edited = True
        if edited:
            raw = bundle.encode()
        return Admission(bundle, raw, previous, custody, reservation, key), report_unsupported

    async def _stored(
        self, bundle: Bundle, stored: bool, report_unsupported: bool
    ) -> ReceptionOutcome:
        """The end of §5.6 for a bundle handed to the store (``stored``: not a duplicate)."""
        core = self._core
        if not stored:
            core.counters.duplicates += 1
            return ReceptionOutcome.DUPLICATE
        core.counters.received += 1
        # RFC 9171 §5.6 step 2: "If the bundle's status report request flags indicate that
        # reception status reports are requested ... a bundle reception status report with
        # reason code 'No additional information' MUST be generated"; step 4 asks for reason
        # 'Block unsupported' when a discarded block requested it.
        if report_unsupported:
            await core.reporter.report(
                bundle, StatusKind.RECEIVED, StatusReportReason.BLOCK_UNSUPPORTED, force=True
            )
        else:
            await core.reporter.report(bundle, StatusKind.RECEIVED)
        return ReceptionOutcome.ACCEPTED

    def _learn_routes(self, bundle: Bundle, previous: EndpointID | None) -> None:
        core = self._core
        advertiser = previous if previous is not None else bundle.primary.source.node_id
        try:
            advert = RouteAdvertisement.decode(bundle.payload)
        except RouteAdvertisementError as exc:
            logger.warning("bad route advertisement from %s: %s", advertiser, exc)
            core.counters.invalid += 1
            return
        core.counters.adverts_received += 1
        if not core.routing.is_neighbour(advertiser):
            logger.debug("route advertisement from %s, not a neighbour: ignored", advertiser)
            return
        version = core.routing.version
        applied = apply_advertisement(
            core.routing, core.roles, core.route_exchange, advertiser, advert, now=core.now()
        )
        if applied is Applied.OUT_OF_SYNC:
            logger.info(
                "route advertisement %d from %s is out of its sequence: asking for all routes",
                advert.sequence,
                advertiser,
            )
        if core.routing.version != version:
            core.routes_updated()
        elif applied is Applied.OUT_OF_SYNC or advert.resync:
            core.routes_changed()  # our next advertisement to it: the request, or the answer


async def _locate_cut(data: SpooledData) -> TransferCut | None:
    """Where the transfer held in ``data`` splits (reading more of it until the head is in)."""
    size = _HEAD_READ
    while True:
        prefix = await data.read(0, min(size, data.length))
        cut = find_cut(prefix, data.length)
        if cut is not None or size >= data.length:
            return cut
        size *= 4


def reassembly_key_of(cut: TransferCut) -> BundleID:
    """The ID of the original bundle a cut splits."""
    primary = cut.head.primary
    return BundleID(primary.source, primary.creation)


async def _answer_with(
    core: ReceptionHost, transfer: IncomingBundleTransfer, outcome: ReceptionOutcome
) -> None:
    """Answer a transfer as its bundle's ``outcome`` says: XFER_REFUSE when the store is full
    (the sender keeps it) or it is no bundle; otherwise the final XFER_ACK."""
    if outcome is ReceptionOutcome.NO_RESOURCES:
        core.counters.refused_transfers += 1
        await _answer(transfer, XferRefuseReason.NO_RESOURCES)
    elif outcome is ReceptionOutcome.INVALID:
        core.counters.refused_transfers += 1
        await _answer(transfer, XferRefuseReason.NOT_ACCEPTABLE)
    else:
        await _answer(transfer, None)


async def _answer(transfer: IncomingBundleTransfer, refusal: XferRefuseReason | None) -> None:
    """Acknowledge (``None``) or refuse a transfer; nothing to do if its session is gone."""
    try:
        if refusal is None:
            await transfer.accept()
        else:
            await transfer.refuse(refusal)
    except (LinkClosedError, LocalProtocolError) as exc:
        logger.debug("cannot answer transfer %d: %s", transfer.transfer_id, exc)
