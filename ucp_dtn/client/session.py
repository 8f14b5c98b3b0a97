"""One client command's use of the network: :class:`ClientSession`.

Theory of operation
-------------------
A session is a :class:`~ucp_dtn.client.node.ClientNode` (the client's own node, endpoint and
journal, see there) seen with one command's settings: which ``--via`` nodes to reach, which
broker to use, how long to wait. :meth:`ClientSession.open` opens a node for the session alone
(a program using the library); the client agent opens one node and gives every command its own
session on it (:meth:`ClientSession.on`).

The broker is ``--broker`` if given; else the nearest node announcing the broker role (the
agent's role directory) or the node a ``--via`` session reached; else, while none is reachable,
the broker remembered from an earlier command (bundles for it wait in the store). If no broker
was ever known, messages wait in the journal's outbox and become bundles once one is found.

Requests (status, data, cancel, logs) carry a request ID; the node hands the replies with that
ID to the waiting request, possibly several (one per datastore the broker relayed a query to).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager

import trio

from bpv7 import EndpointID

from ..agent import BundleNode
from ..agent.progress import wait_while_arriving
from ..roles import Incoming, Mailbox, Outgoing, RoleName, role_endpoint
from ..ucp import JobResult, JobState, JobStatusEntry, NodeEntry, Role, StatusQuery, StatusReply
from ..ucp.messages import JobStatus, UcpMessage
from .errors import BrokerUnreachable, ClientUsageError, NoReply
from .home import ClientHome
from .journal import ClientJournal, JobEntry
from .node import ClientNode, JobEvent, JobListener
from .settings import ClientSettings

__all__ = ["ClientSession", "ClientSettings", "JobEvent"]

logger = logging.getLogger(__name__)

_VIA_KEY = "via"
_POLL_S = 0.02
_ROLES_GRACE_S = 1.0


class ClientSession:
    """See the module docstring. Open with :meth:`open`, or :meth:`on` a running node."""

    def __init__(
        self,
        settings: ClientSettings,
        client: ClientNode,
        *,
        via: tuple[tuple[str, int], ...],
    ) -> None:
        self.settings = settings
        """How this command reaches the network (``--via`` peers, discovery, broker, timeouts,
        bundle lifetime)."""
        self.client = client
        """The client's node, shared with the other sessions of the home."""
        self.via = via
        """The ``--via`` addresses this session uses."""
        self._broker: EndpointID | None = None
        self._listeners: list[JobListener] = []

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: ClientSettings, *, clock: Callable[[], float] = time.time
    ) -> AsyncIterator[ClientSession]:
        """Open the home (waiting for its lock), run the client's node for this session alone;
        on exit give waiting bundles a moment to leave, then stop."""
        async with (
            ClientNode.open(settings, clock=clock) as client,
            cls.on(client, settings) as session,
        ):
            yield session

    @classmethod
    @asynccontextmanager
    async def on(cls, client: ClientNode, settings: ClientSettings) -> AsyncIterator[ClientSession]:
        """A session on a running node: connects to its ``--via`` nodes (or the remembered
        ones); :class:`ClientUsageError` if there is no way to reach a broker."""
        via = settings.via
        if via:
            await client.journal.remember(_VIA_KEY, _format_via(via))
        elif not settings.discover:
            via = _parse_via(await client.journal.setting(_VIA_KEY) or "")
        if not via and not settings.discover:
            raise ClientUsageError(
                "no way to reach a broker: give --via tcp://HOST:PORT or --discover"
            )
        client.use_via(via)
        session = cls(settings, client, via=via)
        try:
            yield session
        finally:
            for listener in session._listeners:
                client.unwatch(listener)

    # -- the node's parts -------------------------------------------------------------------------

    @property
    def home(self) -> ClientHome:
        """The client home."""
        return self.client.home

    @property
    def journal(self) -> ClientJournal:
        """The journal of this home's jobs and outbox."""
        return self.client.journal

    @property
    def node(self) -> BundleNode:
        """The client's bundle node."""
        return self.client.node

    @property
    def mailbox(self) -> Mailbox:
        """The client endpoint."""
        return self.client.mailbox

    @property
    def endpoint(self) -> EndpointID:
        """The client endpoint (``…/ucp/client``)."""
        return self.client.endpoint

    # -- the broker -----------------------------------------------------------------------------

    @property
    def broker(self) -> EndpointID | None:
        """The broker found by :meth:`find_broker`, if any."""
        return self._broker

    def _reachable_broker(self) -> EndpointID | None:
        peers = [peer.node_id for peer in self.node.peers()]
        if not peers:
            return None
        now = trio.current_time()
        client = self.client
        if client.first_peer_at is None:
            client.first_peer_at = now
        if self.via:
            client.route_via(peers)
        if self.settings.broker is not None:
            return role_endpoint(self.settings.broker, RoleName.BROKER)
        # Neighbours announce their roles (and those of the nodes they reach) in their route
        # advertisement as soon as the session is up.
        brokers = [node_id for node_id, _metric in self.node.nodes_with_role(RoleName.BROKER)]
        if brokers:
            return role_endpoint(brokers[0], RoleName.BROKER)
        if self.via and now - client.first_peer_at >= _ROLES_GRACE_S:
            # No role announced: take the --via node for the broker (older daemons).
            return role_endpoint(peers[0], RoleName.BROKER)
        return None

    async def find_broker(self, wait_s: float | None = None) -> EndpointID | None:
        """Wait up to ``wait_s`` (default ``settings.wait_s``) for a session to a broker's node;
        then send whatever waits in the outbox. ``None`` if none was reachable in time."""
        if self._broker is not None:
            return self._broker
        wait = self.settings.wait_s if wait_s is None else wait_s
        broker: EndpointID | None = None
        with trio.move_on_after(wait):
            while True:
                broker = self._reachable_broker()
                if broker is not None:
                    break
                await trio.sleep(_POLL_S)
        if broker is None:
            return None
        self._broker = broker
        await self.client.remember_broker(broker)
        await self.client.flush_outbox(broker)
        return broker

    async def require_broker(self) -> EndpointID:
        """:meth:`find_broker`, or :class:`BrokerUnreachable`."""
        broker = await self.find_broker()
        if broker is None:
            raise BrokerUnreachable(self.unreachable())
        return broker

    async def known_broker(self) -> EndpointID | None:
        """The broker to address messages to when none is reachable now: ``--broker``, else
        the last one reached."""
        if self._broker is not None:
            return self._broker
        if self.settings.broker is not None:
            return role_endpoint(self.settings.broker, RoleName.BROKER)
        return await self.client.remembered_broker()

    def _where(self) -> str:
        if self.via:
            errors = self.client.via_errors
            return (
                " (via "
                + ", ".join(
                    f"tcp://{h}:{p}" + (f": {errors[(h, p)]}" if (h, p) in errors else "")
                    for h, p in self.via
                )
                + ")"
            )
        return " (zeroconf discovery)"

    def unreachable(self) -> str:
        """Why no broker is reachable, as far as the client can tell: ``"no broker reachable
        within 10 s (via tcp://...: <why the session failed>)"``."""
        return f"no broker reachable within {self.settings.wait_s:g} s{self._where()}"

    # -- sending --------------------------------------------------------------------------------

    async def post(
        self, messages: list[UcpMessage], *, custody: bool = True, lifetime_s: float | None = None
    ) -> EndpointID | None:
        """Send state-changing messages (uploads, submissions) to the broker, in order: as
        bundles if a broker is known (reachable now or remembered), else into the outbox.
        Returns the broker they were addressed to, or ``None`` (outbox)."""
        lifetime = self.settings.lifetime_s if lifetime_s is None else lifetime_s
        broker = await self.known_broker()
        if broker is None:
            await self.journal.queue([(m.to_cbor(), custody, lifetime) for m in messages])
            return None
        # In one call, so that messages small enough travel together in batch bundles.
        await self.mailbox.send_many(
            Outgoing(broker, message, custody, lifetime) for message in messages
        )
        self.client.sent_with_custody |= custody
        return broker

    @contextmanager
    def replies(self, request_ids: Iterable[int]) -> Iterator[trio.MemoryReceiveChannel[Incoming]]:
        """Route replies carrying any of ``request_ids`` to the channel yielded (64 at most
        wait in it; more are dropped) until the block ends."""
        with self.client.replies(request_ids) as receive:
            yield receive

    async def request(
        self,
        message: UcpMessage,
        *,
        destination: EndpointID | str | None = None,
        expect: int | None = 1,
        enough: Callable[[Incoming], bool] | None = None,
        timeout_s: float | None = None,
    ) -> list[Incoming]:
        """Send a request (its ``request_id`` from :meth:`new_request_id`) to ``destination``
        (default: the broker, which must be reachable) and gather replies: until ``expect``
        arrived or one satisfies ``enough``, or — ``expect=None`` — until none came for
        ``settings.settle_s`` after the last. :class:`NoReply` if none arrived within
        ``timeout_s`` (counted from the last octet the node received: a large answer on a slow
        link is waited for as long as it keeps arriving); fewer than ``expect`` is not an
        error (the caller sees how many)."""
        request_id = getattr(message, "request_id", None)
        if not isinstance(request_id, int):
            raise TypeError(f"{type(message).__name__} is not a request")
        target = destination if destination is not None else await self.require_broker()
        timeout = self.settings.request_timeout_s if timeout_s is None else timeout_s
        replies: list[Incoming] = []
        began = trio.current_time()
        logger.info("%s %d to %s", message.KIND, request_id, target)
        with self.replies([request_id]) as receive:
            await self.mailbox.send(target, message, lifetime_s=max(2 * timeout, 5.0))
            while expect is None or len(replies) < expect:
                if replies and expect is None:
                    # More answers may follow the first: a short, plain wait.
                    incoming = await wait_while_arriving(
                        receive.receive, self.settings.settle_s, None
                    )
                else:
                    # A large answer takes long on a slow link: wait as long as octets arrive.
                    incoming = await wait_while_arriving(receive.receive, timeout, self.activity)
                if incoming is None:
                    break
                replies.append(incoming)
                if enough is not None and enough(incoming):
                    break
        if not replies:
            # Say what went wrong with the way to it, if anything did (a session closed at
            # once by the peer: a revoked certificate, say).
            where = self._where() if self.via and self.client.via_errors else ""
            raise NoReply(f"no answer from {target} within {timeout:g} s ({message.KIND}){where}")
        logger.info(
            "%s %d: %d answer%s in %.0f ms",
            message.KIND,
            request_id,
            len(replies),
            "" if len(replies) == 1 else "s",
            1000 * (trio.current_time() - began),
        )
        return replies

    def activity(self) -> int:
        """A counter that grows while a large bundle arrives at the client's node or leaves
        it (octets of multi-segment transfers received or acknowledged; small messages do not
        count): waits for answers give up only after a quiet period, not while a large bundle
        is still on its way."""
        return self.client.activity()

    def new_request_id(self) -> int:
        """A request ID no other request of this session uses (replies echo it)."""
        return self.mailbox.next_request_id()

    async def status(
        self,
        job_ids: tuple[uuid.UUID, ...] = (),
        *,
        include_nodes: bool = False,
        everyone: bool = False,
        states: tuple[JobStatus, ...] = (),
        limit: int = 0,
    ) -> StatusReply:
        """Ask the broker about jobs (empty: every job of this client; ``everyone``: every job
        it knows, of any client), only those in ``states`` if given, the ``limit`` most
        recently changed if given; record what it says about this client's jobs in the
        journal."""
        query = StatusQuery(
            request_id=self.new_request_id(),
            job_ids=job_ids,
            client=None if job_ids or everyone else str(self.endpoint),
            include_nodes=include_nodes,
            states=states,
            limit=limit,
        )
        (incoming,) = await self.request(query)
        reply = incoming.message
        if not isinstance(reply, StatusReply):
            raise NoReply(f"the broker answered a status query with {reply.KIND}")
        for entry in reply.jobs:
            await self._note_status(entry)
        return reply

    async def datastores(self) -> list[NodeEntry]:
        """The datastores the broker knows."""
        reply = await self.status(include_nodes=True)
        return [node for node in reply.nodes if node.roles & Role.DATASTORE]

    # -- what arrives -----------------------------------------------------------------------------

    def watch(self, listener: JobListener) -> None:
        """Call ``listener`` for every change to a job from now on (until the session ends)."""
        self._listeners.append(listener)
        self.client.watch(listener)

    def next_change(self) -> trio.Event:
        """An event set at the next change to any job. Take it *before* looking at the
        journal, then wait on it: a change in between is not missed."""
        return self.client.next_change()

    async def _note_status(self, status: JobStatusEntry) -> None:
        entry = await self.journal.update_state(
            status.job_id,
            status.state,
            status.updated_at,
            detail=status.detail,
            executor=status.executor,
        )
        if entry is not None:
            message = JobState(
                job_id=status.job_id,
                state=status.state,
                at=status.updated_at,
                detail=status.detail,
                executor=status.executor,
                attempt=status.attempts,
            )
            self.client.notify(JobEvent(entry, message))

    async def note_status(self, entries: Iterable[JobStatusEntry]) -> None:
        """Record what a broker said about jobs (status or cancel replies)."""
        for entry in entries:
            await self._note_status(entry)

    async def note_result(self, result: JobResult) -> JobEntry | None:
        """Keep a result fetched from a datastore (the first result wins), opened if it was
        sealed to this client."""
        result = self.client.open_result(result)
        entry = await self.journal.store_result(result, "datastore")
        if entry is not None:
            self.client.notify(JobEvent(entry, result))
        return entry

    # -- leaving --------------------------------------------------------------------------------

    async def drain(
        self,
        timeout_s: float = 5.0,
        custody_timeout_s: float = 1.0,
        *,
        quiet_s: float | None = None,
    ) -> None:
        """Give bundles waiting to be forwarded up to ``timeout_s`` to leave — longer while they
        are leaving, until peers acknowledged nothing for ``quiet_s`` (default
        ``settings.request_timeout_s``); see :meth:`ClientNode.drain`."""
        quiet = self.settings.request_timeout_s if quiet_s is None else quiet_s
        await self.client.drain(timeout_s, custody_timeout_s, quiet_s=quiet)


def _format_via(via: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in via)


def _parse_via(text: str) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            found.append((host.strip("[]"), int(port)))
    return tuple(found)
