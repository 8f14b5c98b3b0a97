"""Custody transfer over Bundle-in-Bundle Encapsulation (draft-ietf-dtn-bibect-05).

Theory of operation
-------------------
A *custodian* keeps a bundle until another node has taken custody of it. This node is the
custodian of a stored bundle whose record says ``custody=True``: one sent with
``BundleNode.send(..., custody=True)``, or one received in a BIBE PDU (BPDU) asking for custody
transfer (non-zero transmission ID).

Sending (:meth:`CustodyManager.encapsulate`): the forwarding step wraps a custodial bundle in a
BPDU addressed to the next hop's node ID (its BIBE endpoint: the administrative endpoint), with
a transmission ID unique to this node — IDs start at the DTN time in ms times 1024 when the node
starts, so IDs never repeat across restarts — and a retransmission time. Once the next hop
acknowledged the transfer, the bundle stays in the store in state ``CUSTODY_WAIT`` with
``next_retry_at`` set (:meth:`CustodyManager.sent`). Then:

* a custody signal "accepted" (or "redundant": it has custody already) for one of the bundle's
  transmission IDs releases it: our copy is deleted;
* a refusal for "depleted storage", "no known route" or "no timely contact" (and unknown codes)
  schedules another attempt after the retransmission interval, maybe via another route;
  "destination EID unintelligible" and "block unintelligible" delete the bundle (with a
  "deleted" status report if requested) since no retry can help;
* no signal by ``next_retry_at``: the janitor calls :meth:`CustodyManager.on_retry_due` and the
  bundle is forwarded again in a new BPDU (new transmission ID).

Receiving (:meth:`CustodyManager.on_bpdu`): the encapsulated bundle goes through normal reception
(:meth:`~ucp_dtn.agent.reception.Receiver.receive_bundle`, handed in as a
:class:`~ucp_dtn.agent.contracts.BundleIntake`) as a custodial bundle; only once it
is durably stored does this node signal "accepted" to the BPDU's source and become custodian. A
duplicate BPDU (its bundle is already held or was recently handled) is signalled "accepted"
again — its first signal may have been lost — but stored only once. Full store: "depleted
storage"; undecodable bundle: "block unintelligible".

Signals are aggregated: dispositions for the same custodian collect for
``custody_signal_delay_s`` and leave as one custody signal listing ranges of transmission IDs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict

import trio

from bpv7 import Bundle, BundleFlags, DecodeError, EndpointID, dtn_time_from_unix
from bpv7.admin import (
    BibePdu,
    CustodyDisposition,
    CustodySignal,
    StatusReportReason,
    encapsulate_bundle,
    encode_admin_record,
)
from ucp_dtn.store import BundleState, StoredBundle, StoreError

from .bundle_records import EXTRA_TRANSMISSION, bundle_key
from .contracts import BundleIntake, CustodyHost, ReceptionOutcome

__all__ = ["CustodyManager"]

logger = logging.getLogger(__name__)

_MAX_IDS_PER_SIGNAL = 1024
"""A batch of signals for one custodian is sent at once when it reaches this many IDs."""

_DELETING_DISPOSITIONS: dict[int, int] = {
    # draft-ietf-dtn-bibect-05 / RFC 5050 §6.1.2: refusals that no retry can cure.
    CustodyDisposition.DESTINATION_EID_UNINTELLIGIBLE: (
        StatusReportReason.DESTINATION_EID_UNINTELLIGIBLE
    ),
    CustodyDisposition.BLOCK_UNINTELLIGIBLE: StatusReportReason.BLOCK_UNINTELLIGIBLE,
}


class CustodyManager:
    """Custody transfer state of one agent (see the module docstring)."""

    def __init__(self, core: CustodyHost) -> None:
        self._core = core
        self._key_of: dict[int, str] = {}
        self._ids_of: dict[str, set[int]] = defaultdict(set)
        self._next_id = max(1, dtn_time_from_unix(core.now()) * 1024)
        self._outgoing: dict[tuple[EndpointID, int], set[int]] = defaultdict(set)
        self._flush_now = trio.Event()
        self._pending = trio.Event()

    # -- as sender / custodian ----------------------------------------------------------------

    def restore(self, metas: list[StoredBundle]) -> None:
        """After a restart: remember the transmission IDs of bundles awaiting a signal."""
        for meta in metas:
            text = meta.extra.get(EXTRA_TRANSMISSION)
            if text and text.isdigit():
                self._remember(int(text), meta.key)

    def _remember(self, transmission_id: int, key: str) -> None:
        self._key_of[transmission_id] = key
        self._ids_of[key].add(transmission_id)
        self._next_id = max(self._next_id, transmission_id + 1)

    def forget(self, key: str) -> None:
        """Bundle ``key`` left the store: its transmission IDs mean nothing any more."""
        for transmission_id in self._ids_of.pop(key, ()):
            self._key_of.pop(transmission_id, None)

    def encapsulate(self, key: str, meta: StoredBundle, raw: bytes, peer: EndpointID) -> bytes:
        """The BPDU bundle carrying custodial bundle ``key`` (bytes ``raw``) to ``peer``."""
        core = self._core
        transmission_id = self._next_id
        self._remember(transmission_id, key)
        now = core.now()
        creation = core.new_creation()
        # draft-ietf-dtn-bibect-05: the retransmission time is the time by which the sender
        # expects a custody signal, after which it retransmits.
        retransmit_at = now + core.config.custody_retransmit_s
        remaining_ms = max(1, round((meta.expires_at - now) * 1000))
        outer = encapsulate_bundle(
            raw,
            source=core.node_id,
            destination=peer,
            now_dtn_ms=creation.time_ms,
            sequence=creation.sequence,
            lifetime_ms=remaining_ms,
            transmission_id=transmission_id,
            retransmission_time_ms=dtn_time_from_unix(retransmit_at),
        )
        return outer.encode()

    async def sent(self, key: str, meta: StoredBundle, peer: EndpointID) -> None:
        """The next hop acknowledged the BPDU of ``key``: wait for its custody signal."""
        ids = self._ids_of.get(key)
        latest = max(ids) if ids else None
        updated = dataclasses.replace(
            meta,
            state=BundleState.CUSTODY_WAIT,
            next_retry_at=self._core.now() + self._core.config.custody_retransmit_s,
            attempts=meta.attempts + 1,
            forwarded_to=meta.forwarded_to | {str(peer)},
            extra={**meta.extra, EXTRA_TRANSMISSION: str(latest)} if latest else meta.extra,
        )
        try:
            await self._core.store.update(updated)
        except StoreError as exc:  # deleted meanwhile (expired, released)
            logger.debug("custodial bundle %s gone before its update: %s", key, exc)
            return
        self._core.wake_janitor()

    async def on_retry_due(self, meta: StoredBundle) -> None:
        """``meta.next_retry_at`` passed: send a custodial bundle again (no signal came), or
        bring back one whose retry was scheduled after a refusal."""
        core = self._core
        if meta.state is BundleState.CUSTODY_WAIT:
            core.counters.custody_retransmitted += 1
            logger.info("no custody signal for %s: retransmitting", meta.key)
        updated = dataclasses.replace(meta, state=BundleState.PENDING_FORWARD, next_retry_at=None)
        try:
            await core.store.update(updated)
        except StoreError:
            return
        core.dispatch(updated)

    async def on_signal(self, bundle: Bundle, signal: CustodySignal) -> None:
        """A custody signal arrived for this node."""
        core = self._core
        keys: set[str] = set()
        for id_range in signal.ranges:
            if id_range.count <= len(self._key_of):
                for transmission_id in id_range:
                    key = self._key_of.get(transmission_id)
                    if key is not None:
                        keys.add(key)
            else:
                keys.update(k for t, k in self._key_of.items() if t in id_range)
        logger.debug(
            "custody signal %s from %s for %d bundles",
            signal.disposition,
            bundle.primary.source,
            len(keys),
        )
        disposition = signal.disposition
        if disposition in (CustodyDisposition.ACCEPTED, CustodyDisposition.REDUNDANT):
            # Another node has custody now: our copies go, in one group commit.
            held = sorted(keys)
            for key, deleted in zip(held, await core.settled(held), strict=True):
                if deleted:
                    core.counters.custody_released += 1
                else:
                    self.forget(key)
            return
        for key in keys:
            meta = await core.store.meta(key)
            if meta is None:
                self.forget(key)
                continue
            core.counters.custody_refused += 1
            reason = _DELETING_DISPOSITIONS.get(disposition)
            if reason is not None:
                await core.delete(key, reason, meta=meta)
                continue
            logger.info("custody of %s refused (%s): retrying later", key, disposition)
            retry = dataclasses.replace(
                meta,
                state=BundleState.PENDING_FORWARD,
                next_retry_at=core.now() + core.config.custody_retransmit_s,
            )
            core.queue.remove(key)
            try:
                await core.store.update(retry)
            except StoreError:
                continue
            core.wake_janitor()

    # -- as receiver --------------------------------------------------------------------------

    async def on_bpdu(
        self, outer: Bundle, pdu: BibePdu, previous: EndpointID | None, intake: BundleIntake
    ) -> None:
        """A BPDU arrived for this node: take the encapsulated bundle in through ``intake``
        (with custody when asked) and answer with a custody signal."""
        core = self._core
        custodian = outer.primary.source.node_id
        try:
            inner = pdu.bundle()
        except DecodeError as exc:
            logger.warning("BPDU from %s carries an invalid bundle: %s", custodian, exc)
            core.counters.invalid += 1
            if pdu.custody_requested:
                self._signal(custodian, CustodyDisposition.BLOCK_UNINTELLIGIBLE, pdu)
            return
        if not pdu.custody_requested:
            await intake.receive_bundle(inner, pdu.encapsulated_bundle, previous)
            return
        if await core.is_duplicate(bundle_key(inner.bundle_id), inner):
            # draft-ietf-dtn-bibect-05 leaves duplicates to the agent: the earlier signal may
            # have been lost, so acknowledge again; the bundle is kept once.
            core.counters.duplicates += 1
            self._signal(custodian, CustodyDisposition.ACCEPTED, pdu)
            return
        outcome = await intake.receive_bundle(
            inner, pdu.encapsulated_bundle, previous, custody=True
        )
        if outcome is ReceptionOutcome.NO_RESOURCES:
            core.counters.custody_refusals_sent += 1
            self._signal(custodian, CustodyDisposition.DEPLETED_STORAGE, pdu)
        elif outcome is ReceptionOutcome.INVALID:
            core.counters.custody_refusals_sent += 1
            self._signal(custodian, CustodyDisposition.BLOCK_UNINTELLIGIBLE, pdu)
        else:
            if outcome is ReceptionOutcome.ACCEPTED:
                core.counters.custody_accepted += 1
            self._signal(custodian, CustodyDisposition.ACCEPTED, pdu)

    def _signal(self, custodian: EndpointID, disposition: int, pdu: BibePdu) -> None:
        batch = self._outgoing[(custodian, disposition)]
        batch.add(pdu.transmission_id)
        self._pending.set()
        if len(batch) >= _MAX_IDS_PER_SIGNAL:
            self._flush_now.set()

    async def run(self) -> None:
        """Send aggregated custody signals (until cancelled): a signal waits at most
        ``custody_signal_delay_s`` for others to the same custodian. Nothing wakes while no
        signal is pending (an idle node does not tick)."""
        delay = self._core.config.custody_signal_delay_s
        while True:
            await self._pending.wait()
            with trio.move_on_after(delay):
                await self._flush_now.wait()
            self._pending = trio.Event()
            self._flush_now = trio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Send every pending custody signal now."""
        core = self._core
        batches, self._outgoing = self._outgoing, defaultdict(set)
        for (custodian, disposition), ids in batches.items():
            signal = CustodySignal.for_ids(disposition, ids)
            creation = core.new_creation()
            bundle = Bundle.build(
                source=core.node_id,
                destination=custodian,
                payload=encode_admin_record(signal),
                creation=creation,
                lifetime_ms=round(max(60.0, 10 * core.config.custody_retransmit_s) * 1000),
                flags=BundleFlags.ADMIN_RECORD,
            )
            try:
                await core.admit(bundle, bundle.encode(), previous=None)
            except StoreError as exc:
                logger.warning("cannot send a custody signal to %s: %s", custodian, exc)
                continue
            core.counters.custody_signals_sent += 1
            core.counters.created += 1
