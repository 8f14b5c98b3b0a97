"""A role's mailbox: UCP messages in and out of one endpoint of a :class:`BundleNode`.

Every UCP message is one bundle whose payload is the message's CBOR (:mod:`ucp_dtn.ucp.codec`).
A :class:`Mailbox` registers the role's endpoint, decodes what arrives and hands it out:

* replies to this mailbox's own requests (matched by ``request_id``) wake the
  :meth:`Mailbox.request` call that waits for them and are confirmed to the agent at once;
* everything else goes to the inbox (:meth:`Mailbox.receive`). The consumer calls
  :meth:`Incoming.done` once it has *acted on* the message (stored it, answered it): a role that
  crashes before that gets the bundle again from the agent's store when it restarts.

Malformed payloads are logged, counted and confirmed (dropped): a hostile or buggy sender cannot
wedge a role by sending it garbage.

In a trusted mesh (the node's security policy has the mesh authority, :mod:`ucp_dtn.trust`)
each message's signer is known (:attr:`Incoming.sender`), and a message its signer may not send
to this role is refused here (:mod:`.authorization`): logged, counted, confirmed, and a
client's request answered with a refusal.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from bpv7 import BPv7Error, BundleID, EndpointID, parse_eid

from ..agent import AgentError, BundleNode, Delivery, RegistrationClosedError
from ..store import StoreError
from ..ucp import MessageDecodeError, decode_message, encode_message
from ..ucp.messages import UcpMessage
from .endpoints import role_of_endpoint

if TYPE_CHECKING:
    from ..trust import CertificateFacts, MeshAnchors
__all__ = ["Incoming", "Mailbox", "MailboxStatistics", "RequestTimeout"]

logger = logging.getLogger(__name__)


class RequestTimeout(TimeoutError):
    """No reply to a request arrived in time (the peer may be unreachable for now)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message that arrived at the mailbox."""

    message: UcpMessage
    """The message the bundle's payload decoded to (undecodable payloads never get here)."""
    source: EndpointID
    """The source EID of the bundle that carried it."""
    bundle_id: BundleID
    """That bundle's ID; a duplicate bundle of the same message has the same one."""
    delivery: Delivery = field(repr=False, compare=False)
    """The agent's delivery handle (confirm with :meth:`done`)."""
    sender: CertificateFacts | None = field(default=None, compare=False)
    """In a trusted mesh, the certificate of the member that signed the message (for the
    node the bundle comes from): its node ID and mesh role; ``None`` in open mode."""

    @property
    def trusted(self) -> bool:
        """Whether the message came through a trusted mesh (its sender is authenticated)."""
        return self.sender is not None

    async def done(self) -> None:
        """Confirm the message: the agent deletes the bundle from its store."""
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
        self._mesh: MeshAnchors | None = None

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
        async with registration:
            task_status.started()
            while True:
                try:
                    delivery = await registration.receive()
                except RegistrationClosedError:
                    return
                await self._dispatch(delivery)

    async def _dispatch(self, delivery: Delivery) -> None:
        try:
            message = decode_message(delivery.payload)
        except MessageDecodeError as exc:
            self._malformed += 1
            logger.warning(
                "%s: dropping a malformed message from %s: %s", self.endpoint, delivery.source, exc
            )
            await delivery.done()
            return
        self._received += 1
        sender = None
        if self._mesh is not None:
            from ..trust import sender_of

            sender = sender_of(delivery, self._mesh)
            if await self._refused_here(message, delivery, sender):
                return
        incoming = Incoming(message, delivery.source, delivery.bundle_id, delivery, sender)
        request_id = getattr(message, "request_id", None)
        waiter = self._waiting.get(request_id) if isinstance(request_id, int) else None
        if waiter is not None and _is_reply(message):
            self._replies += 1
            await delivery.done()
            # A further page or a duplicate reply nobody waits for is dropped.
            with contextlib.suppress(
                trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                waiter.send_nowait(incoming)
            return
        await self._inbox_send.send(incoming)

    async def _refused_here(
        self, message: UcpMessage, delivery: Delivery, sender: CertificateFacts | None
    ) -> bool:
        """Refuse (and confirm) a message its signer may not send to this role."""
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
        await delivery.done()
        return True

    async def receive(self) -> Incoming:
        """The next message that is not a reply to one of our requests."""
        return await self._inbox_receive.receive()

    async def send(
        self,
        destination: EndpointID | str,
        message: UcpMessage,
        *,
        custody: bool = False,
        lifetime_s: float | None = None,
    ) -> BundleID:
        """Send ``message`` to ``destination``; returns once the bundle is durably stored."""
        bundle_id = await self.node.send(
            destination,
            encode_message(message),
            source=self.endpoint,
            custody=custody,
            lifetime_s=lifetime_s,
        )
        self._sent += 1
        return bundle_id

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
        )


def _is_reply(message: UcpMessage) -> bool:
    return type(message).__name__.endswith("Reply")
