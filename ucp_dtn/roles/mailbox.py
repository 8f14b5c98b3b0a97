"""A role's mailbox: UCP messages in and out of one endpoint of a :class:`BundleNode`.

A bundle's payload is one UCP message's CBOR (:mod:`ucp_dtn.ucp.codec`), or a ``batch`` of
several for the same endpoint (:class:`~ucp_dtn.ucp.messages.MessageBatch`). A :class:`Mailbox`
registers the role's endpoint, decodes what arrives and hands it out one message at a time
(a batch's messages in order, each as if it had come alone):

* replies to this mailbox's own requests (matched by ``request_id``) wake the
  :meth:`Mailbox.request` call that waits for them and are confirmed to the agent at once;
* everything else goes to the inbox (:meth:`Mailbox.receive`). The consumer calls
  :meth:`Incoming.done` once it has *acted on* the message (stored it, answered it): a role that
  crashes before that gets the bundle again from the agent's store when it restarts.

A batch's bundle is confirmed to the agent only once *every* message in it is done (replies and
refusals count as done at once): a role that crashes in between gets the whole batch again, so
its handlers must be idempotent, as they must be anyway for a bundle delivered twice.

Malformed payloads are logged, counted and confirmed (dropped): a hostile or buggy sender cannot
wedge a role by sending it garbage; a bad message inside a batch is dropped alone, the others
are handled (:func:`~ucp_dtn.ucp.codec.decode_messages`).

Sending coalesces (:mod:`.coalescing`): messages for the same destination that are handed to
:meth:`Mailbox.send` (or :meth:`Mailbox.send_many`) at the same moment leave in one bundle. Each
destination has a lane; the first message of a quiet lane leaves after one scheduling tick
(whatever other tasks have ready joins it), and messages that arrive while the lane is storing
a bundle go together in the next one, as soon as that store write is done (group commit). A lone
message is never held longer than that, unless its sender allows it to *linger*
(``linger_s``): an executor whose other jobs are about to finish lets a result wait a few
milliseconds for theirs, so that results finishing a few ms apart share a bundle (and its
custody signal, and the broker's round). The lane leaves at the earliest deadline of what it
holds: a message that may not linger takes the others with it at once. ``send`` still returns
only once its bundle is durably stored.

In a trusted mesh (the node's security policy has the mesh authority, :mod:`ucp_dtn.trust`)
each message's signer is known (:attr:`Incoming.sender`), and a message its signer may not send
to this role is refused here (:mod:`.authorization`): logged, counted, confirmed, and a
client's request answered with a refusal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from bpv7 import BPv7Error, BundleID, EndpointID, parse_eid

from ..agent import AgentError, BundleNode, Delivery, RegistrationClosedError
from ..store import StoreError
from ..ucp import MessageDecodeError, decode_messages
from ..ucp.codec import DecodedPayload
from ..ucp.messages import UcpMessage
from .coalescing import Outgoing, pack
from .endpoints import role_of_endpoint

if TYPE_CHECKING:
    from ..trust import CertificateFacts, MeshAnchors
__all__ = ["Incoming", "Mailbox", "MailboxStatistics", "Outgoing", "RequestTimeout"]

logger = logging.getLogger(__name__)


class RequestTimeout(TimeoutError):
    """No reply to a request arrived in time (the peer may be unreachable for now)."""


class _BatchDelivery:
    """The delivery of a batch's bundle and how many of its messages are not done yet."""

    __slots__ = ("delivery", "left")

    def __init__(self, delivery: Delivery, messages: int) -> None:
        self.delivery = delivery
        self.left = messages


class SharedDelivery:
    """One message's share of a batch's delivery: the :meth:`done` of the batch's last
    message confirms the bundle."""

    __slots__ = ("_batch", "_done")

    def __init__(self, batch: _BatchDelivery) -> None:
        self._batch = batch
        self._done = False

    async def done(self) -> None:
        """This message is done (idempotent); the bundle is confirmed after the last one."""
        if self._done:
            return
        self._done = True
        self._batch.left -= 1
        if self._batch.left == 0:
            await self._batch.delivery.done()


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message that arrived at the mailbox."""

    message: UcpMessage
    """The message the bundle's payload decoded to (undecodable payloads never get here)."""
    source: EndpointID
    """The source EID of the bundle that carried it."""
    bundle_id: BundleID
    """That bundle's ID; a duplicate bundle of the same message has the same one (the messages
    of one batch share it)."""
    delivery: Delivery | SharedDelivery = field(repr=False, compare=False)
    """The agent's delivery handle, or a batch's shared one (confirm with :meth:`done`)."""
    sender: CertificateFacts | None = field(default=None, compare=False)
    """In a trusted mesh, the certificate of the member that signed the message (for the
    node the bundle comes from): its node ID and mesh role; ``None`` in open mode."""

    @property
    def trusted(self) -> bool:
        """Whether the message came through a trusted mesh (its sender is authenticated)."""
        return self.sender is not None

    async def done(self) -> None:
        """Confirm the message: the agent deletes the bundle from its store (a batch's bundle
        once every message in it is done). Idempotent."""
        await self.delivery.done()


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """Counters of one mailbox."""

    received: int
    """Messages decoded."""
    malformed: int
    """Payloads that were not a valid UCP message (dropped)."""
    replies: int
    """Replies matched to a waiting request."""
    refused: int
    """Messages refused in a trusted mesh: their signer may not send them here."""
    sent: int
    """Messages sent."""
    inbox: int
    """Messages waiting in the inbox."""
    batches_received: int = 0
    """Bundles received that held a batch of messages."""
    bundles_received: int = 0
    """Bundles received that decoded (a message alone or a batch)."""
    bundles_sent: int = 0
    """Bundles sent (fewer than :attr:`sent` when messages went together)."""


class Mailbox:
    """The UCP endpoint of one role on a node.

    ``async with trio.open_nursery() as n: await n.start(mailbox.run)`` registers the endpoint;
    then :meth:`send`, :meth:`request` and :meth:`receive` work until the task is cancelled.
    """

    def __init__(self, node: BundleNode, endpoint: EndpointID | str, *, inbox_size: int = 64):
        self.node = node
        self.endpoint: EndpointID = parse_eid(endpoint) if isinstance(endpoint, str) else endpoint
        self._inbox_send, self._inbox_receive = trio.open_memory_channel[Incoming](inbox_size)
        self._waiting: dict[int, trio.MemorySendChannel[Incoming]] = {}
        # Request IDs start at a random point so that a restarted role does not take replies
        # meant for its previous life as its own.
        self._request_ids = itertools.count(random.SystemRandom().randrange(1, 2**40))
        self._received = 0
        self._malformed = 0
        self._replies = 0
        self._sent = 0
        self._refused = 0
        self._batches_received = 0
        self._bundles_received = 0
        self._bundles_sent = 0
        self._mesh: MeshAnchors | None = None
        self._lanes: dict[EndpointID, _Lane] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def mesh(self) -> MeshAnchors | None:
        """The mesh authority messages are checked against (``None``: open mode); set once
        :meth:`run` started."""
        return self._mesh

    def next_request_id(self) -> int:
        """A fresh request ID for a message this mailbox sends."""
        return next(self._request_ids)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register the endpoint and dispatch arriving messages until cancelled."""
        if self.node.config.security is not None:
            from ..trust import mesh_anchors

            self._mesh = mesh_anchors(self.node)
        registration = self.node.register(self.endpoint)
        try:
            async with registration, trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    task_status.started()
                    while True:
                        try:
                            delivery = await registration.receive()
                        except RegistrationClosedError:
                            nursery.cancel_scope.cancel()
                            return
                        await self._dispatch(delivery)
                finally:
                    # Sends from now on go straight to the node (no lanes).
                    self._nursery = None
        finally:
            self._nursery = None
            for lane in self._lanes.values():
                lane.fail(RegistrationClosedError(f"the mailbox of {self.endpoint} closed"))
            self._lanes.clear()

    async def _dispatch(self, delivery: Delivery) -> None:
        try:
            decoded = decode_messages(delivery.payload)
        except MessageDecodeError as exc:
            decoded = DecodedPayload((), (exc,))
        for error in decoded.errors:
            self._malformed += 1
            logger.warning(
                "%s: dropping a malformed message from %s: %s",
                self.endpoint,
                delivery.source,
                error,
            )
        if not decoded.messages:
            await delivery.done()
            return
        self._bundles_received += 1
        sender = None
        if self._mesh is not None:
            from ..trust import sender_of

            sender = sender_of(delivery, self._mesh)
        if not decoded.batch:
            await self._dispatch_one(decoded.messages[0], delivery, delivery, sender)
            return
        self._batches_received += 1
        batch = _BatchDelivery(delivery, len(decoded.messages))
        for message in decoded.messages:
            await self._dispatch_one(message, delivery, SharedDelivery(batch), sender)

    async def _dispatch_one(
        self,
        message: UcpMessage,
        delivery: Delivery,
        confirm: Delivery | SharedDelivery,
        sender: CertificateFacts | None,
    ) -> None:
        self._received += 1
        # Authorization is per message, also inside a batch: the bundle's signer is every
        # message's signer, and each kind is checked against it on its own.
        if self._mesh is not None and await self._refused_here(message, delivery, sender):
            await confirm.done()
            return
        incoming = Incoming(message, delivery.source, delivery.bundle_id, confirm, sender)
        request_id = getattr(message, "request_id", None)
        waiter = self._waiting.get(request_id) if isinstance(request_id, int) else None
        if waiter is not None and _is_reply(message):
            self._replies += 1
            await confirm.done()
            # A further page or a duplicate reply nobody waits for is dropped.
            with contextlib.suppress(
                trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                waiter.send_nowait(incoming)
            return
        try:
            # Without yielding while there is room: a batch's messages are all in the inbox
            # before its consumer wakes, so it can take them together (receive_ready).
            self._inbox_send.send_nowait(incoming)
        except trio.WouldBlock:
            await self._inbox_send.send(incoming)

    async def _refused_here(
        self, message: UcpMessage, delivery: Delivery, sender: CertificateFacts | None
    ) -> bool:
        """Refuse a message its signer may not send to this role (the caller confirms it)."""
        from .authorization import admission, refusal_reply

        why = admission(role_of_endpoint(self.endpoint), message, sender)
        if why is None:
            return False
        self._refused += 1
        logger.warning(
            "%s: refused %s from %s: %s", self.endpoint, message.KIND, delivery.source, why
        )
        reply = refusal_reply(message, why, now=time.time())
        reply_to = getattr(message, "reply_to", None) or str(delivery.source)
        if reply is not None and sender is not None:
            try:
                await self.send(reply_to, reply)
            except (AgentError, StoreError, BPv7Error) as exc:
                logger.info("%s: cannot send the refusal: %s", self.endpoint, exc)
        return True

    async def receive(self) -> Incoming:
        """The next message that is not a reply to one of our requests."""
        return await self._inbox_receive.receive()

    def receive_ready(self, limit: int) -> list[Incoming]:
        """Up to ``limit`` more messages that are in the inbox now, without waiting (a batch's
        messages are all there once its first one is)."""
        ready: list[Incoming] = []
        while len(ready) < limit:
            try:
                ready.append(self._inbox_receive.receive_nowait())
            except trio.WouldBlock:
                break
        return ready

    async def send(
        self,
        destination: EndpointID | str,
        message: UcpMessage,
        *,
        custody: bool = False,
        lifetime_s: float | None = None,
        linger_s: float = 0.0,
    ) -> BundleID:
        """Send ``message`` to ``destination``; returns once the bundle that carries it (alone
        or in a batch with others for the same destination) is durably stored. ``linger_s``:
        how long it may wait for more messages to the same destination (see the module
        docstring; 0, the default: one scheduling tick)."""
        if isinstance(destination, str):
            destination = parse_eid(destination)
        (bundle_id,) = await self.send_many(
            [Outgoing(destination, message, custody, lifetime_s, linger_s)]
        )
        return bundle_id

    async def send_many(self, items: Iterable[Outgoing]) -> list[BundleID]:
        """Send several messages at once: those for the same destination go in as few bundles
        as :func:`~.coalescing.pack` allows. Returns the ID of each message's bundle, once all
        are durably stored; raises the first error if any bundle could not be sent (the others
        are sent all the same)."""
        now = trio.current_time() if self._nursery is not None else 0.0
        waiters = [_Waiter(item, now + max(0.0, item.linger_s)) for item in items]
        if self._nursery is None:
            # Not running (yet): no lanes, but the messages of this call still go together.
            await self._send_packed(waiters)
        else:
            for waiter in waiters:
                self._enqueue(waiter)
            for waiter in waiters:
                await waiter.event.wait()
        errors = [waiter.error for waiter in waiters if waiter.error is not None]
        if errors:
            raise errors[0]
        return [waiter.bundle_id for waiter in waiters if waiter.bundle_id is not None]

    def _enqueue(self, waiter: _Waiter) -> None:
        assert self._nursery is not None
        destination = waiter.item.destination
        lane = self._lanes.get(destination)
        if lane is None:
            lane = self._lanes[destination] = _Lane()
            self._nursery.start_soon(self._flush_lane, destination, lane)
        lane.pending.append(waiter)
        if waiter.deadline < lane.deadline:
            lane.hurry.set()  # it may not wait as long as those before it

    async def _flush_lane(self, destination: EndpointID, lane: _Lane) -> None:
        """Send what the lane holds, then what came meanwhile, until it is empty."""
        try:
            # One tick: the tasks that have messages ready at this moment add theirs.
            await trio.lowlevel.checkpoint()
            while lane.pending:
                await lane.linger()
                waiters, lane.pending = lane.pending, []
                lane.sending = waiters
                # Shielded: once a bundle is being stored, every waiter learns how it went.
                with trio.CancelScope(shield=True):
                    await self._send_packed(waiters)
                lane.sending = []
        finally:
            if self._lanes.get(destination) is lane:
                del self._lanes[destination]
            lane.fail(RegistrationClosedError(f"the mailbox of {self.endpoint} closed"))

    async def _send_packed(self, waiters: list[_Waiter]) -> None:
        """Pack the waiters' messages into bundles and send them; each waiter gets its bundle's
        ID or the error that bundle met."""
        default_lifetime_s = self.node.config.default_lifetime_s
        try:
            bundles = pack(
                [waiter.item for waiter in waiters], default_lifetime_s=default_lifetime_s
            )
        except Exception:
            # A message that does not encode fails its own sender only: the others go alone.
            bundles = []
            for index, waiter in enumerate(waiters):
                try:
                    [alone] = pack([waiter.item], default_lifetime_s=default_lifetime_s)
                except Exception as exc:
                    waiter.settle(exc)
                    continue
                bundles.append(dataclasses.replace(alone, items=(index,)))
        for bundle in bundles:
            outcome: BundleID | Exception
            try:
                outcome = await self.node.send(
                    bundle.destination,
                    bundle.payload,
                    source=self.endpoint,
                    custody=bundle.custody,
                    lifetime_s=bundle.lifetime_s,
                )
                self._bundles_sent += 1
                self._sent += len(bundle.items)
            except Exception as exc:  # handed to each waiting sender, which decides
                outcome = exc
            for index in bundle.items:
                waiters[index].settle(outcome)

    async def request(
        self,
        destination: EndpointID | str,
        message: UcpMessage,
        *,
        timeout_s: float,
        replies: int = 1,
        lifetime_s: float | None = None,
    ) -> list[Incoming]:
        """Send a request (whose ``request_id`` came from :meth:`next_request_id`) and wait for
        ``replies`` replies carrying the same ID. Raises :class:`RequestTimeout` when fewer
        arrive within ``timeout_s`` (the request bundle stays in the network until its lifetime
        ends, so a late reply is dropped, not misrouted)."""
        request_id = getattr(message, "request_id", None)
        if not isinstance(request_id, int):
            raise TypeError(f"{type(message).__name__} is not a request (no request_id)")
        send_channel, receive_channel = trio.open_memory_channel[Incoming](max(replies, 1) * 4)
        self._waiting[request_id] = send_channel
        got: list[Incoming] = []
        try:
            await self.send(
                destination,
                message,
                lifetime_s=lifetime_s if lifetime_s is not None else max(timeout_s, 1.0),
            )
            with trio.move_on_after(timeout_s if math.isfinite(timeout_s) else math.inf):
                while len(got) < replies:
                    got.append(await receive_channel.receive())
        finally:
            del self._waiting[request_id]
            send_channel.close()
        if len(got) < replies:
            raise RequestTimeout(
                f"no reply from {destination} within {timeout_s:g}s "
                f"({type(message).__name__}, request {request_id})"
            )
        return got

    def statistics(self) -> MailboxStatistics:
        """Counters of this mailbox."""
        return MailboxStatistics(
            received=self._received,
            malformed=self._malformed,
            replies=self._replies,
            refused=self._refused,
            sent=self._sent,
            inbox=self._inbox_receive.statistics().current_buffer_used,
            batches_received=self._batches_received,
            bundles_received=self._bundles_received,
            bundles_sent=self._bundles_sent,
        )


class _Waiter:
    """One message handed to :meth:`Mailbox.send_many`, until its bundle is stored."""

    __slots__ = ("bundle_id", "deadline", "error", "event", "item")

    def __init__(self, item: Outgoing, deadline: float) -> None:
        self.item = item
        self.deadline = deadline
        """When (trio's clock) its bundle should leave at the latest."""
        self.event = trio.Event()
        self.bundle_id: BundleID | None = None
        self.error: Exception | None = None

    def settle(self, outcome: BundleID | Exception) -> None:
        if self.event.is_set():
            return
        if isinstance(outcome, Exception):
            self.error = outcome
        else:
            self.bundle_id = outcome
        self.event.set()


@dataclass
class _Lane:
    """The messages waiting for one destination (see the module docstring)."""

    pending: list[_Waiter] = field(default_factory=list)
    """Handed over, not yet being sent."""
    sending: list[_Waiter] = field(default_factory=list)
    """In the bundles being stored now."""
    deadline: float = math.inf
    """While lingering: when the pending messages leave (the earliest of theirs)."""
    hurry: trio.Event = field(default_factory=trio.Event)
    """Set when a message with an earlier deadline joins a lingering lane."""

    async def linger(self) -> None:
        """Wait until the earliest deadline of the pending messages (at once if it passed)."""
        while self.pending:
            self.deadline = min(waiter.deadline for waiter in self.pending)
            if self.deadline <= trio.current_time():
                break
            with trio.move_on_at(self.deadline):
                await self.hurry.wait()
            self.hurry = trio.Event()
        self.deadline = math.inf

    def fail(self, error: Exception) -> None:
        for waiter in (*self.sending, *self.pending):
            waiter.settle(error)


def _is_reply(message: UcpMessage) -> bool:
    return type(message).__name__.endswith("Reply")
