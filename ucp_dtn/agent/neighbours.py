"""Sessions with neighbours: serving each TCPCL link, and keeping links to static peers up.

Theory of operation
-------------------
:meth:`Neighbours.serve` runs for as long as one established session lasts, whoever opened it
(our listener, a static peer connector, ``BundleNode.connect``, discovery). It registers the
peer as a neighbour in the routing table — bundles waiting for it start to flow — and runs these
tasks in a nursery:

* **receive**: a pool of ``_RECEIVE_PARALLEL`` tasks takes the complete incoming transfers and
  processes them in parallel, so that the store can commit many bundles in one go; the
  transfer is acknowledged only once its bundle is stored (:mod:`ucp_dtn.agent.reception`).
  When the session ends this loop ends, and takes the others with it.
* **send**: takes bundles from the neighbour's forwarding queue, applies the sending-time edits
  and starts their transfers, at most ``_WINDOW`` unacknowledged (pipelining);
* **completions**: each transfer's done callback (run by the link, no task waits per
  transfer) hands its outcome to a pool of completion tasks (forwarded, retried, deleted);
* **advertise**: sends our complete routing table when the session starts, then what changed
  when our routes change, and an empty change list when nothing changed for
  ``route_advert_interval_s`` (:mod:`.route_exchange`).

When the session ends, every bundle still unacknowledged goes back to the forwarding queue — it
never left the store — and the peer stops being a neighbour (if this was its last session). If
both sides announced reactive fragmentation and the peer acknowledged part of a transfer, the
bundle is first replaced in the store by the fragment holding the unacknowledged rest (RFC 9171
§5.8 at the RFC 9174 §5.2.3 acknowledged length, :mod:`ucp_dtn.agent.partial`): the peer keeps
the acknowledged part, and only the rest goes out again, at the front of the queue, to whichever
neighbour the route says.

:meth:`Neighbours.keep_connected` reconnects to a static peer forever: at once after a session
that ended (a cut link comes back as soon as it can), with a doubling backoff up to
``reconnect_max_s`` while attempts fail or sessions end as soon as they start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from bpv7 import (
    Bundle,
    DecodeError,
    EncodeError,
    EndpointID,
    decode_bundle,
    parse_eid,
    with_bundle_age,
)
from bpv7.admin import StatusReportReason
from bpv7.fragment import FragmentationError, fragment_at, fragment_bundle
from convergence.tcpcl import (
    LocalProtocolError,
    SessionExtensionType,
    SessTermReason,
    XferRefuseReason,
)
from convergence.tcpcl.link import (
    LinkConfig,
    TcpclLink,
    TransferHandle,
    TransferOutcome,
    TransferResult,
)
from convergence.tcpcl.link_errors import LinkClosedError, LinkError, TransferTooLargeError
from convergence.tcpcl.listener import open_link
from ucp_dtn.store import BundleState, StoredBundle, StoreError

from .advertisement import routing_endpoint
from .bundle_records import EXTRA_AGE, EXTRA_PREVIOUS, bundle_key, stored_bundle_for
from .contracts import ForwardingHost, TransferIntake
from .forwarding import SendWindow, backoff_delay
from .partial import TransferCut, find_cut
from .route_exchange import AdvertisementStream, next_advertisement
from .statistics import PeerInfo, TransferInfo

__all__ = ["Neighbours"]

logger = logging.getLogger(__name__)

_WINDOW = 256
"""Most transfers in flight (sent, not yet acknowledged) per session."""
_WINDOW_BYTES = 64 * 1024 * 1024
"""Most bundle octets loaded for transfers in flight per session (at least one bundle)."""
_HEAD_READ = 64 * 1024
"""First prefix of a sent bundle searched for its head when cutting it (grown until found)."""
_SESSION_LASTED_S = 0.5
"""A session that lasted this long resets the reconnection backoff (shorter ones, like failed
attempts, double the wait: a peer that ends every session at once is not hammered)."""
_RECEIVE_PARALLEL = 4
"""Tasks taking incoming transfers per session: while one batch is being committed, the next
is prepared."""
_RECEIVE_BATCH = 256
"""Most incoming transfers one task takes (and stores in one group commit) at once."""
_COMPLETE_PARALLEL = 2
"""Tasks settling ended transfers per session: while one batch is being committed, the next
is prepared."""
_COMPLETE_BATCH = 512
"""Most ended transfers one task settles at once."""
_ADVERT_MIN_GAP = 0.1
"""Fraction of the advertisement interval that at least separates two advertisements."""


@dataclass(eq=False, slots=True)
class _Session:
    link: TcpclLink
    peer: EndpointID
    since: float
    inflight: dict[str, StoredBundle] = field(default_factory=dict)
    sent: int = 0
    received: int = 0
    refusals: int = 0
    paused_until: float = 0.0
    """trio time before which nothing new is sent (the peer ran out of resources)."""
    reactive: bool = False
    """Both sides announced reactive fragmentation (the peer keeps what it acknowledged of a
    transfer cut short, we send only the rest)."""
    lost: int = 0
    """Transfers lost with the session (counted as send failures when it ends)."""
    cut: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    """Bundles whose transfer the session's end cut short after the peer acknowledged part:
    the octets sent and how many were acknowledged."""

    def info(self) -> PeerInfo:
        link = self.link
        stats = link.statistics()
        now = trio.current_time()
        transfers = tuple(
            TransferInfo(t.outgoing, t.done, t.total, max(0.0, now - t.started))
            for t in stats.transfers
        )
        return PeerInfo(
            node_id=str(self.peer),
            address=link.peer_address,
            active=link.active,
            tls=link.tls,
            since=self.since,
            bundles_sent=self.sent,
            bundles_received=self.received,
            in_flight=len(self.inflight),
            stats=stats,
            transfers=transfers,
        )


class Neighbours:
    """Every session of one agent (see the module docstring)."""

    def __init__(
        self, core: ForwardingHost, receiver: TransferIntake, link_config: LinkConfig
    ) -> None:
        self._core = core
        self._receiver = receiver
        self.link_config = link_config
        self._sessions: dict[EndpointID, list[_Session]] = {}
        self._routes_changed = trio.Event()
        self._progressed = 0  # octets of multi-segment transfers the peers acknowledged

    # -- views --------------------------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """One entry per session, by peer node ID."""
        return [
            session.info()
            for peer in sorted(self._sessions, key=str)
            for session in self._sessions[peer]
        ]

    def acknowledged_octets(self) -> int:
        """Octets of our transfers longer than one segment that peers acknowledged, all
        sessions since start: it grows while a large bundle leaves (small ones, like route
        advertisements, do not count)."""
        return self._progressed

    def _progress(self) -> Callable[[int, int], None]:
        """The progress callback of one multi-segment transfer: adds what each acknowledgement
        covers to :meth:`acknowledged_octets`."""
        last = 0

        def progressed(done: int, total: int) -> None:
            nonlocal last
            if done > last:
                self._progressed += done - last
                last = done

        return progressed

    @property
    def count(self) -> int:
        """Sessions up now."""
        return sum(len(sessions) for sessions in self._sessions.values())

    def links(self) -> list[TcpclLink]:
        """Every link up now."""
        return [session.link for sessions in self._sessions.values() for session in sessions]

    def routes_changed(self) -> None:
        """Our routes changed: advertise them to every neighbour soon."""
        self._routes_changed.set()
        self._routes_changed = trio.Event()

    # -- one session --------------------------------------------------------------------------

    async def serve(self, link: TcpclLink) -> None:
        """Use an established link until its session ends (see the module docstring)."""
        core = self._core
        try:
            peer = parse_eid(link.peer_node_id)
        except DecodeError:
            peer = None
        if peer is None or not peer.is_node_id:
            logger.warning(
                "session with %s:%d has no usable node ID (%r): closing",
                *link.peer_address,
                link.peer_node_id,
            )
            await link.aclose(SessTermReason.CONTACT_FAILURE)
            return
        if peer == core.node_id:
            logger.warning(
                "session with ourselves (%s) at %s:%d: closing", peer, *link.peer_address
            )
            await link.aclose(SessTermReason.CONTACT_FAILURE)
            return
        check = core.config.session_check
        refusal = None if check is None else check(link.peer_node_id, link.peer_certificate)
        if refusal is not None:
            logger.warning("session with %s refused: %s", peer, refusal)
            await link.aclose(SessTermReason.CONTACT_FAILURE)
            return
        session = _Session(link, peer, core.now())
        session.reactive = core.config.reactive_fragmentation and any(
            item.item_type == SessionExtensionType.REACTIVE_FRAGMENTATION
            for item in link.parameters.peer_extensions
        )
        self._sessions.setdefault(peer, []).append(session)
        core.counters.sessions_opened += 1
        logger.info(
            "session with %s up (%s %s:%d%s)",
            peer,
            "to" if link.active else "from",
            *link.peer_address,
            ", TLS" if link.tls else "",
        )
        if core.routing.neighbour_up(peer):
            core.queue.sync()
            self.routes_changed()
        try:
            sending = trio.CancelScope()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive_loop, session, sending)
                nursery.start_soon(self._send_side, session, sending)
        finally:
            sessions = self._sessions.get(peer, [])
            if session in sessions:
                sessions.remove(session)
            if not sessions:
                self._sessions.pop(peer, None)
            if core.routing.neighbour_down(peer):
                core.route_exchange.forget(peer)
                self.routes_changed()
            with trio.CancelScope(shield=True):
                for key in list(session.inflight):
                    partial = session.cut.get(key)
                    if partial is None or not await self._send_rest(key, session, *partial):
                        await core.requeue(key, front=True)
            session.inflight.clear()
            session.cut.clear()
            core.counters.send_failures += session.lost
            core.queue.sync()
            logger.info("session with %s down", peer)

    async def _receive_loop(self, session: _Session, sending: trio.CancelScope) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(_RECEIVE_PARALLEL):
                nursery.start_soon(self._receive_worker, session)
        sending.cancel()

    async def _receive_worker(self, session: _Session) -> None:
        """One of the tasks taking incoming transfers (a fixed pool: no task per bundle)."""
        receiver = self._receiver
        link = session.link
        while True:
            try:
                transfers = await link.receive_many(_RECEIVE_BATCH)
            except LinkClosedError:
                return
            session.received += len(transfers)
            try:
                await receiver.on_transfers(transfers, session.peer)
            except StoreError as exc:
                # Not full (that is refused as NO_RESOURCES inside): the store failed. Refuse
                # what is not answered yet, so the peer keeps it, and go on with the session.
                logger.error("cannot store a bundle from %s: %s", session.peer, exc)
                for transfer in transfers:
                    with contextlib.suppress(LinkError, LocalProtocolError):
                        await transfer.refuse(XferRefuseReason.NO_RESOURCES)

    # -- sending ------------------------------------------------------------------------------

    async def _send_side(self, session: _Session, sending: trio.CancelScope) -> None:
        """Send until the session ends (``sending`` is cancelled), then wait for the outcome of
        every transfer still in flight (each is acknowledged, refused or lost by then) and for
        the completion tasks to finish."""
        done_send, done_receive = trio.open_memory_channel[
            tuple[str, StoredBundle, TransferResult]
        ](math.inf)
        window = SendWindow(_WINDOW, _WINDOW_BYTES)
        async with trio.open_nursery() as completions:
            for _ in range(_COMPLETE_PARALLEL):
                completions.start_soon(self._complete_worker, session, done_receive)
            async with done_send:
                with sending:
                    async with trio.open_nursery() as senders:
                        senders.start_soon(self._send_loop, session, window, done_send)
                        senders.start_soon(self._advertise_loop, session)
                await window.drained()

    async def _send_loop(
        self,
        session: _Session,
        window: SendWindow,
        done: trio.MemorySendChannel[tuple[str, StoredBundle, TransferResult]],
    ) -> None:
        while True:
            delay = session.paused_until - trio.current_time()
            if delay > 0:
                await trio.sleep(delay)
            await window.acquire()
            started = False
            try:
                started = await self._send_next(session, window, done)
            except LinkClosedError:
                return  # the session is ending; inflight goes back to the queue
            finally:
                if not started:  # (also when cancelled: the place is free again)
                    window.release()

    async def _send_next(
        self,
        session: _Session,
        window: SendWindow,
        done: trio.MemorySendChannel[tuple[str, StoredBundle, TransferResult]],
    ) -> bool:
        """Start the transfer of the next bundle queued for the peer; whether one started (its
        done callback then releases its place in the window). Raises ``LinkClosedError`` when
        the session is ending (the bundle stays in ``inflight``: requeued when it ends)."""
        core = self._core
        key, _, _ = await core.queue.take(session.peer)
        meta = await core.store.meta(key)
        if meta is None or meta.state is not BundleState.PENDING_FORWARD:
            return False
        session.inflight[key] = meta
        await window.take_bytes(meta.size)
        data = None
        try:
            data = await self._prepare(key, meta, session)
        except StoreError as exc:
            logger.error("cannot read %s from the store: %s", key, exc)
        finally:
            if data is None:
                window.give_bytes(meta.size)
        if data is None:
            session.inflight.pop(key, None)
            return False
        multi_segment = len(data) > session.link.parameters.segment_size
        try:
            handle = session.link.start_send(data, self._progress() if multi_segment else None)
        except TransferTooLargeError as exc:
            logger.warning("cannot send %s to %s: %s", key, session.peer, exc)
            session.inflight.pop(key, None)
            window.give_bytes(meta.size)
            await self._retry_later(meta)
            return False
        except LinkClosedError:
            window.give_bytes(meta.size)
            raise
        handle.add_done_callback(_on_transfer_done(session, window, done, key, meta))
        return True

    async def _send_rest(self, key: str, session: _Session, sent: bytes, acknowledged: int) -> bool:
        """The peer acknowledged ``acknowledged`` octets of ``sent`` (the transfer of ``key``)
        before the session ended: replace the stored bundle by the fragment holding the rest
        (RFC 9171 §5.8; the peer keeps the acknowledged part) and queue it first. ``False``
        when no cut can be made (it must not be fragmented, nothing of the payload was
        acknowledged...): then the whole bundle is sent again."""
        core = self._core
        meta = await core.store.meta(key)
        if meta is None or meta.state is not BundleState.PENDING_FORWARD:
            return False
        try:
            cut = _locate_cut(sent, acknowledged)
            if cut is None or cut.cut < 1:
                return False
            stored = await core.load_bundle(key)
            if stored is None or len(stored.payload) != cut.head.payload_length:
                return False
            rest = fragment_at(stored, [cut.cut])[1]
            raw = rest.encode()
        except (DecodeError, EncodeError, StoreError) as exc:
            logger.warning("cannot cut %s after a partial transfer: %s", key, exc)
            return False
        record = stored_bundle_for(
            rest,
            len(raw),
            received_at=meta.received_at,
            state=BundleState.PENDING_FORWARD,
            previous=meta.extra.get(EXTRA_PREVIOUS),
            custody=meta.custody,
        )
        try:
            # Stored before the whole is deleted: a crash in between leaves both (the peer
            # then gets overlapping copies, which reassembly accepts), never neither.
            await core.store.put(record, raw)
        except StoreError as exc:
            logger.warning("cannot store the rest of %s: %s; sending it whole again", key, exc)
            return False
        core.cache.put(record.key, raw)
        if await core.store.delete(key):
            core.forget(key)
        await core.requeue(record.key, front=True)
        core.counters.partial_sent += 1
        core.counters.partial_sent_bytes += cut.cut
        logger.info(
            "%s acknowledged %d of %d payload octets of %s before the session ended: "
            "sending only the rest (%s)",
            session.peer,
            cut.cut,
            cut.head.payload_length,
            key,
            record.key,
        )
        return True

    async def _prepare(self, key: str, meta: StoredBundle, session: _Session) -> bytes | None:
        """The bytes to send for ``key``: the stored bundle with its Bundle Age Block brought up
        to date, fragmented if the peer cannot take it whole, BIBE-encapsulated if custodial.
        ``None`` when it is not to be sent now (gone, replaced by fragments, unsendable)."""
        core = self._core
        stored = await core.load(key)
        if stored is None:
            return None
        raw = stored
        try:
            if meta.extra.get(EXTRA_AGE):
                bundle = decode_bundle(raw)
                # RFC 9171 §5.4 step 4: "at the last possible moment before the CLA initiates
                # conveyance of the bundle ... the bundle age value MUST be increased by the
                # difference between the current time and the time at which the bundle was
                # received".
                held_ms = max(0, round((core.now() - meta.received_at) * 1000))
                raw = with_bundle_age(bundle, (bundle.bundle_age_ms or 0) + held_ms).encode()
            mru = session.link.parameters.peer_transfer_mru
            limit = mru - _BIBE_OVERHEAD if meta.custody else mru
            if len(raw) > limit:
                # Fragments are cut from the stored bundle (their ages grow when they are sent,
                # by up to _AGE_GROWTH bytes each).
                await self._fragment(key, meta, decode_bundle(stored), limit - _AGE_GROWTH)
                return None
            if meta.custody and core.custody is not None:
                raw = core.custody.encapsulate(key, meta, raw, session.peer)
        except (DecodeError, EncodeError) as exc:
            logger.error("cannot prepare %s for sending: %s", key, exc)
            await core.delete(key, StatusReportReason.BLOCK_UNINTELLIGIBLE, meta=meta)
            return None
        return raw

    async def _fragment(self, key: str, meta: StoredBundle, bundle: Bundle, limit: int) -> None:
        """Replace ``key`` in the store by fragments of at most ``limit`` bytes (RFC 9171 §5.8:
        proactive fragmentation), unless it must not be fragmented: then try again later."""
        core = self._core
        try:
            pieces = fragment_bundle(bundle, limit)
        except FragmentationError as exc:
            logger.info(
                "cannot send %s (%d bytes) to a peer taking %d: %s", key, meta.size, limit, exc
            )
            await self._retry_later(meta)
            return
        previous = meta.extra.get(EXTRA_PREVIOUS)
        for piece in pieces:
            raw = piece.encode()
            record = stored_bundle_for(
                piece,
                len(raw),
                received_at=meta.received_at,
                state=BundleState.PENDING_FORWARD,
                previous=previous,
                custody=meta.custody,
            )
            try:
                await core.store.put(record, raw)
            except StoreError as exc:
                logger.warning("cannot store fragments of %s: %s", key, exc)
                for done in pieces:
                    piece_key = bundle_key(done.bundle_id)
                    if piece_key != record.key and await core.store.delete(piece_key):
                        core.queue.remove(piece_key)
                await self._retry_later(meta)
                return
            core.cache.put(record.key, raw)
            core.dispatch(record)
        core.counters.fragments_created += len(pieces)
        if await core.store.delete(key):
            core.forget(key)
        logger.info("%s split into %d fragments of at most %d bytes", key, len(pieces), limit)

    async def _retry_later(self, meta: StoredBundle) -> None:
        core = self._core
        try:
            await core.store.update(
                dataclasses.replace(
                    meta, next_retry_at=core.now() + core.config.custody_retransmit_s
                )
            )
        except StoreError:
            return
        core.wake_janitor()

    async def _complete_worker(
        self,
        session: _Session,
        channel: trio.MemoryReceiveChannel[tuple[str, StoredBundle, TransferResult]],
    ) -> None:
        """Settle ended transfers, all those waiting at once (the acknowledged ones leave the
        store in one group commit)."""
        async for first in channel:
            batch = [first]
            # (EndOfChannel: the session ended and these were the last; the loop ends after.)
            with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
                while len(batch) < _COMPLETE_BATCH:
                    batch.append(channel.receive_nowait())
            # Shielded: bounded store work that must not be half done when the session or the
            # node goes down (the bundles have left ``inflight`` already).
            with trio.CancelScope(shield=True):
                acked: list[tuple[str, StoredBundle]] = []
                for key, meta, result in batch:
                    if result.outcome is TransferOutcome.ACKED:
                        acked.append((key, meta))
                        continue
                    try:
                        await self._settle(session, key, meta, result)
                    except StoreError as exc:
                        logger.warning("completing the transfer of %s failed: %s", key, exc)
                if acked:
                    session.sent += len(acked)
                    session.refusals = 0
                    try:
                        await self._core.forwarded_many(acked, session.peer)
                    except StoreError as exc:
                        logger.warning("completing %d transfers failed: %s", len(acked), exc)

    async def _settle(
        self, session: _Session, key: str, meta: StoredBundle, result: TransferResult
    ) -> None:
        """The end of one transfer of ``key``: forwarded, deleted, or queued again."""
        core = self._core
        if result.outcome is TransferOutcome.ACKED:
            session.sent += 1
            session.refusals = 0
            await core.forwarded(key, meta, session.peer)
            return
        reason = result.refuse_reason
        core.counters.send_failures += 1
        if reason == XferRefuseReason.COMPLETED:
            # RFC 9174 §5.2.4: "The receiver already has the complete bundle."
            await core.forwarded(key, meta, session.peer)
        elif reason in (XferRefuseReason.NOT_ACCEPTABLE, XferRefuseReason.EXTENSION_FAILURE):
            logger.warning("%s refused by %s as not acceptable: deleting", key, session.peer)
            await core.delete(key, StatusReportReason.TRANSMISSION_CANCELED, meta=meta)
        else:
            # NO_RESOURCES (the peer's store is full), RETRANSMIT, SESSION_TERMINATING,
            # unknown: keep the bundle and try again later.
            session.refusals += 1
            if reason == XferRefuseReason.NO_RESOURCES:
                pause = backoff_delay(session.refusals, base=0.25, limit=10.0)
                session.paused_until = max(session.paused_until, trio.current_time() + pause)
            logger.debug("%s refused by %s (%s): retrying", key, session.peer, reason)
            await core.requeue(key, front=True)

    # -- route advertisements -----------------------------------------------------------------

    async def _advertise_loop(self, session: _Session) -> None:
        """Advertise our routes to the peer (:mod:`.route_exchange`): the complete table first,
        then the changes when they happen (at most every ``interval / 10``), and an empty
        change list when nothing changed for an interval (it refreshes the peer's routes)."""
        core = self._core
        interval = core.config.route_advert_interval_s
        stream = AdvertisementStream.new(3 * interval)
        stream.answered = core.route_exchange.requests(session.peer)
        last_sent = -math.inf
        while True:
            now = trio.current_time()
            if self._advertise(session, stream, refresh=now - last_sent >= interval):
                last_sent = now
            with trio.move_on_after(max(0.0, last_sent + interval - trio.current_time())):
                await self._routes_changed.wait()
                await trio.sleep_until(now + interval * _ADVERT_MIN_GAP)

    def _advertise(self, session: _Session, stream: AdvertisementStream, *, refresh: bool) -> bool:
        """Send the stream's next advertisement if there is something to say (``refresh``: an
        empty change list will do); whether one was sent."""
        core = self._core
        peer = session.peer
        advert = next_advertisement(
            stream,
            core.routing,
            core.roles,
            core.route_exchange,
            peer,
            now=core.now(),
            refresh=refresh,
        )
        if advert is None:
            return False
        bundle = Bundle.build(
            source=core.node_id,
            destination=routing_endpoint(peer),
            payload=advert.encode(),
            creation=core.new_creation(),
            lifetime_ms=round(stream.lifetime_s * 1000),
        )
        raw = bundle.encode()
        try:
            session.link.start_send(raw)
        except (LinkClosedError, TransferTooLargeError) as exc:
            logger.debug("no route advertisement to %s: %s", peer, exc)
            return False
        core.counters.adverts_sent += 1
        core.counters.advert_bytes_sent += len(raw)
        return True

    # -- static peers -------------------------------------------------------------------------

    async def keep_connected(self, host: str, port: int) -> None:
        """Keep a session with the peer at ``host:port`` up, reconnecting forever: at once
        after a session that lasted, backing off while attempts fail or sessions end at once."""
        attempt = 0
        while True:
            started: float | None = None
            try:
                async with open_link(host, port, self.link_config) as link:
                    started = trio.current_time()
                    await self.serve(link)
            except (LinkError, OSError) as exc:
                logger.info("static peer %s:%d: %s", host, port, exc)
            if started is not None and trio.current_time() - started >= _SESSION_LASTED_S:
                attempt = 0  # it was reachable: a cut link comes back as soon as it can
            attempt += 1
            await trio.sleep(
                backoff_delay(attempt, base=0.05, limit=self._core.config.reconnect_max_s)
            )


_AGE_GROWTH = 16
"""Room left in each fragment for its Bundle Age Block value to grow when it is sent."""

_BIBE_OVERHEAD = 256
"""Bytes a BPDU bundle adds around the bundle it carries (primary block, record header), with
margin: custodial bundles are fragmented to fit the peer's MRU inside their BPDU."""


def _on_transfer_done(
    session: _Session,
    window: SendWindow,
    done: trio.MemorySendChannel[tuple[str, StoredBundle, TransferResult]],
    key: str,
    meta: StoredBundle,
) -> Callable[[TransferHandle], None]:
    """The done callback of the transfer of ``key``: hand its outcome to the completion tasks
    (called in the link's task, so no task waits per transfer)."""

    def on_done(handle: TransferHandle) -> None:
        window.release()
        window.give_bytes(meta.size)
        result = handle.result
        if result is None:
            # Lost with the session: still in ``inflight``, requeued when it ends — or only its
            # unacknowledged rest, if the peer keeps the part it acknowledged.
            session.lost += 1
            if session.reactive and handle.acknowledged > 0:
                session.cut[key] = (handle.data, handle.acknowledged)
            return
        session.inflight.pop(key, None)
        done.send_nowait((key, meta, result))

    return on_done


def _locate_cut(sent: bytes, acknowledged: int) -> TransferCut | None:
    """Where the transfer of ``sent`` splits after ``acknowledged`` octets (searching a prefix
    that grows until it holds the head)."""
    size = _HEAD_READ
    while True:
        cut = find_cut(sent[: min(size, acknowledged)], acknowledged)
        if cut is not None or size >= acknowledged:
            return cut
        size *= 4
