"""One ``ucp`` command's stay on the network: :class:`ClientSession`.

Theory of operation
-------------------
The client needs no daemon. For the duration of a command it runs its own
:class:`~ucp_dtn.agent.BundleNode` on the client home's store (``<home>/store``), with the
home's node ID, no listener (unless ``--discover`` needs one to announce) and the ``--via``
addresses as static peers, or zeroconf discovery. Its UCP endpoint is
``role_endpoint(node, RoleName.CLIENT)`` (``dtn://client-…/ucp/client``), served by a
:class:`~ucp_dtn.roles.Mailbox`.

Everything the client sends is a bundle in its own store first: if no broker is reachable it
simply stays there, and the next command's node forwards it as soon as a session to a broker's
node is up. What arrives for the client (``job-accepted``, ``job-state``, ``job-result`` — the
network keeps them while the client is away) is written to the :class:`ClientJournal` before
the bundle is confirmed to the agent, whichever command happens to be running.

The broker is ``--broker`` if given; else the nearest node announcing the broker role (the
agent's role directory) or the node a ``--via`` session reached; else, while none is reachable,
the broker remembered from an earlier command (bundles for it wait in the store). If no broker
was ever known, messages wait in the journal's outbox and become bundles once one is found.

Requests (status, data) carry a request ID; replies with that ID are handed to the waiting
request, possibly several (one per datastore the broker relayed a query to). Other messages
are journalled. On leaving, the session gives bundles still waiting to be forwarded a moment
to leave while a session is up.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from bpv7 import BPv7Error, EndpointID, parse_eid

from ..agent import BundleNode, NodeConfig
from ..agent.progress import wait_while_arriving
from ..roles import Incoming, Mailbox, RoleName, role_endpoint
from ..ucp import (
    JobAccepted,
    JobResult,
    JobState,
    JobStatusEntry,
    NodeEntry,
    Role,
    StatusQuery,
    StatusReply,
    decode_message,
)
from ..ucp.messages import UcpMessage
from .errors import BrokerUnreachable, ClientUsageError, NoReply
from .home import ClientHome
from .journal import ClientJournal, JobEntry

__all__ = ["ClientSession", "ClientSettings", "JobEvent"]

logger = logging.getLogger(__name__)

_BROKER_KEY = "broker"
_VIA_KEY = "via"
_POLL_S = 0.02
_DRAIN_S = 5.0
_CUSTODY_DRAIN_S = 1.0
_ROLES_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How a client command reaches the network."""

    home: Path | None = None
    """The client home (``None``: ``$UCP_HOME`` or ``~/.local/share/ucp``)."""
    via: tuple[tuple[str, int], ...] = ()
    """Nodes to connect to (``--via tcp://HOST:PORT``); empty: the ones remembered from the
    last command that gave some, unless :attr:`discover` is on."""
    discover: bool = False
    """Find nodes with zeroconf (``--discover``)."""
    discovery_interfaces: tuple[str, ...] | None = None
    """IP addresses of the interfaces discovery runs on (``None``: all)."""
    discovery_service_type: str | None = None
    """DNS-SD service type (``None``: the agent's default)."""
    broker: str | None = None
    """The broker's node ID or endpoint (``--broker``); ``None``: the nearest one found."""
    wait_s: float = 10.0
    """How long to look for a reachable broker before giving up (or queueing)."""
    request_timeout_s: float = 10.0
    """How long to wait for the answer to a request."""
    lifetime_s: float = 7 * 24 * 3600.0
    """Lifetime of the bundles that submit jobs and upload data."""
    settle_s: float = 0.5
    """After a reply to a query several datastores may answer, how long to wait for more."""
    lock_timeout_s: float = 10.0
    """How long to wait for another ``ucp`` command to release the client home."""

    def __post_init__(self) -> None:
        for name in ("wait_s", "request_timeout_s", "lifetime_s", "settle_s", "lock_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0 or math.isnan(value):
                raise ClientUsageError(f"{name} must be a non-negative number, got {value!r}")
        if self.broker is not None:
            try:
                parse_eid(self.broker)
            except BPv7Error as exc:
                raise ClientUsageError(f"--broker {self.broker!r}: {exc.message}") from None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Something the client heard about one of its jobs."""

    entry: JobEntry
    """The job as the journal knows it now."""
    message: UcpMessage
    """What was heard (``JobAccepted``, ``JobState``, ``JobResult`` or a status entry's
    ``JobState`` equivalent)."""


JobListener = Callable[[JobEvent], None]
"""Called (synchronously, in the session's task) for every change to a job."""


class ClientSession:
    """See the module docstring. Open with :meth:`open` (an async context manager)."""

    def __init__(
        self,
        settings: ClientSettings,
        home: ClientHome,
        journal: ClientJournal,
        node: BundleNode,
        mailbox: Mailbox,
        *,
        via: tuple[tuple[str, int], ...],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        """How this command reaches the network (``--via`` peers, discovery, broker, timeouts,
        bundle lifetime)."""
        self.home = home
        """The client home, locked by this session."""
        self.journal = journal
        """The journal of this home's jobs and outbox."""
        self.node = node
        """The client's bundle node."""
        self.mailbox = mailbox
        """The client endpoint."""
        self.via = via
        """The static peers in use."""
        self._clock = clock
        self._broker: EndpointID | None = None
        self._routed_via: set[str] = set()
        self._collectors: dict[int, trio.MemorySendChannel[Incoming]] = {}
        self._listeners: list[JobListener] = []
        self._changed = trio.Event()
        self._sent_with_custody = False
        self._first_peer_at: float | None = None

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: ClientSettings, *, clock: Callable[[], float] = time.time
    ) -> AsyncIterator[ClientSession]:
        """Open the home (waiting for its lock), run the node and the client endpoint; on exit
        give waiting bundles a moment to leave, then stop."""
        home = await trio.to_thread.run_sync(
            lambda: ClientHome.open(settings.home, lock_timeout_s=settings.lock_timeout_s)
        )
        try:
            journal = await ClientJournal.open(home.journal_path, clock=clock)
            try:
                via = settings.via
                if via:
                    await journal.remember(_VIA_KEY, _format_via(via))
                elif not settings.discover:
                    via = _parse_via(await journal.setting(_VIA_KEY) or "")
                if not via and not settings.discover:
                    raise ClientUsageError(
                        "no way to reach a broker: give --via tcp://HOST:PORT or --discover"
                    )
                node = BundleNode(_node_config(home, settings, via), clock=clock)
                try:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(node.run)
                        # The mailbox and the consumer stop before the node: a message being
                        # confirmed as they stop must not meet a closed bundle store (it is
                        # cancelled instead, and the bundle is delivered again next time).
                        async with trio.open_nursery() as endpoint:
                            mailbox = Mailbox(node, role_endpoint(node.node_id, RoleName.CLIENT))
                            await endpoint.start(mailbox.run)
                            session = cls(
                                settings, home, journal, node, mailbox, via=via, clock=clock
                            )
                            endpoint.start_soon(session._consume)
                            yield session
                            await session.drain()
                            endpoint.cancel_scope.cancel()
                        nursery.cancel_scope.cancel()
                except BaseExceptionGroup as group:
                    # One failure (the command's own, usually) is raised as itself.
                    leaves = _leaves(group)
                    if len(leaves) == 1 and isinstance(leaves[0], Exception):
                        raise leaves[0] from None
                    raise
            finally:
                with trio.CancelScope(shield=True):
                    await journal.aclose()
        finally:
            home.close()

    @property
    def endpoint(self) -> EndpointID:
        """The client endpoint (``…/ucp/client``)."""
        return self.mailbox.endpoint

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
        if self._first_peer_at is None:
            self._first_peer_at = now
        self._route_via(peers)
        if self.settings.broker is not None:
            return role_endpoint(self.settings.broker, RoleName.BROKER)
        # Neighbours announce their roles (and those of the nodes they reach) in their route
        # advertisement as soon as the session is up.
        brokers = [node_id for node_id, _metric in self.node.nodes_with_role(RoleName.BROKER)]
        if brokers:
            return role_endpoint(brokers[0], RoleName.BROKER)
        if self.via and now - self._first_peer_at >= _ROLES_GRACE_S:
            # No role announced: take the --via node for the broker (older daemons).
            return role_endpoint(peers[0], RoleName.BROKER)
        return None

    def _route_via(self, peers: list[str]) -> None:
        """Send everything not for a neighbour through the first ``--via`` node (a broker's
        node, or a node that knows the way)."""
        if not self.via or self._routed_via:
            return
        self._routed_via.add(peers[0])
        self.node.add_route("*", peers[0])

    async def find_broker(self, wait_s: float | None = None) -> EndpointID | None:
        """Wait up to ``wait_s`` (default ``settings.wait_s``) for a session to a broker's node;
        then send whatever waits in the outbox. ``None`` if none was reachable in time."""
        if self._broker is not None:
            return self._broker
        wait = self.settings.wait_s if wait_s is None else wait_s
        with trio.move_on_after(wait):
            while True:
                broker = self._reachable_broker()
                if broker is not None:
                    break
                await trio.sleep(_POLL_S)
        if broker is None:
            return None
        self._broker = broker
        logger.info("broker %s reachable", broker)
        await self.journal.remember(_BROKER_KEY, str(broker))
        await self._flush_outbox(broker)
        return broker

    async def require_broker(self) -> EndpointID:
        """:meth:`find_broker`, or :class:`BrokerUnreachable`."""
        broker = await self.find_broker()
        if broker is None:
            raise BrokerUnreachable(
                f"no broker reachable within {self.settings.wait_s:g} s{self._where()}"
            )
        return broker

    async def known_broker(self) -> EndpointID | None:
        """The broker to address messages to when none is reachable now: ``--broker``, else
        the last one reached."""
        if self._broker is not None:
            return self._broker
        if self.settings.broker is not None:
            return role_endpoint(self.settings.broker, RoleName.BROKER)
        remembered = await self.journal.setting(_BROKER_KEY)
        return None if remembered is None else parse_eid(remembered)

    def _where(self) -> str:
        if self.via:
            return " (via " + ", ".join(f"tcp://{h}:{p}" for h, p in self.via) + ")"
        return " (zeroconf discovery)"

    async def _flush_outbox(self, broker: EndpointID) -> None:
        items = await self.journal.outbox()
        for item in items:
            message = decode_message(item.payload)
            await self.mailbox.send(
                broker, message, custody=item.custody, lifetime_s=item.lifetime_s
            )
            self._sent_with_custody |= item.custody
            await self.journal.remove_outbox(item.sequence)
            job_id = getattr(getattr(message, "job", None), "job_id", None)
            if isinstance(job_id, uuid.UUID):
                await self.journal.set_broker([job_id], str(broker))
        if items:
            logger.info("sent %d queued messages to %s", len(items), broker)

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
        for message in messages:
            await self.mailbox.send(broker, message, custody=custody, lifetime_s=lifetime)
        self._sent_with_custody |= custody
        return broker

    @contextmanager
    def replies(self, request_ids: Iterable[int]) -> Iterator[trio.MemoryReceiveChannel[Incoming]]:
        """Route replies carrying any of ``request_ids`` to the channel yielded (64 at most
        wait in it; more are dropped) until the block ends."""
        send, receive = trio.open_memory_channel[Incoming](64)
        ids = list(request_ids)
        for request_id in ids:
            self._collectors[request_id] = send
        try:
            yield receive
        finally:
            for request_id in ids:
                self._collectors.pop(request_id, None)
            send.close()

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
            raise NoReply(f"no answer from {target} within {timeout:g} s ({message.KIND})")
        return replies

    def activity(self) -> int:
        """A counter that grows while a large bundle arrives at the client's node or leaves
        it (octets of multi-segment transfers received or acknowledged; small messages do not
        count): waits for answers give up only after a quiet period, not while a large bundle
        is still on its way."""
        return self.node.received_octets() + self.node.acknowledged_octets()

    def new_request_id(self) -> int:
        """A request ID no other request of this session uses (replies echo it)."""
        return self.mailbox.next_request_id()

    async def status(
        self, job_ids: tuple[uuid.UUID, ...] = (), *, include_nodes: bool = False
    ) -> StatusReply:
        """Ask the broker about jobs (empty: every job of this client) and record what it says
        in the journal."""
        query = StatusQuery(
            request_id=self.new_request_id(),
            job_ids=job_ids,
            client=None if job_ids else str(self.endpoint),
            include_nodes=include_nodes,
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
        """Call ``listener`` for every change to a job from now on."""
        self._listeners.append(listener)

    def next_change(self) -> trio.Event:
        """An event set at the next change to any job. Take it *before* looking at the
        journal, then wait on it: a change in between is not missed."""
        return self._changed

    def _notify(self, event: JobEvent) -> None:
        for listener in self._listeners:
            listener(event)
        self._changed.set()
        self._changed = trio.Event()

    async def _consume(self) -> None:
        while True:
            incoming = await self.mailbox.receive()
            await self._handle(incoming)
            await incoming.done()

    async def _handle(self, incoming: Incoming) -> None:
        message = incoming.message
        request_id = getattr(message, "request_id", None)
        collector = self._collectors.get(request_id) if isinstance(request_id, int) else None
        if collector is not None:
            try:
                collector.send_nowait(incoming)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                logger.debug("dropping an extra reply to request %d", request_id)
            return
        entry: JobEntry | None = None
        if isinstance(message, JobAccepted):
            entry = await self.journal.accepted(message.job_id, message.broker)
        elif isinstance(message, JobState):
            entry = await self.journal.update_state(
                message.job_id,
                message.state,
                message.at,
                detail=message.detail,
                executor=message.executor,
            )
        elif isinstance(message, JobResult):
            entry = await self.journal.store_result(message, "delivered")
        else:
            logger.debug("ignoring %s from %s", message.KIND, incoming.source)
            return
        if entry is not None:
            self._notify(JobEvent(entry, message))

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
            self._notify(JobEvent(entry, message))

    async def note_result(self, result: JobResult) -> JobEntry | None:
        """Keep a result fetched from a datastore (the first result wins)."""
        entry = await self.journal.store_result(result, "datastore")
        if entry is not None:
            self._notify(JobEvent(entry, result))
        return entry

    # -- leaving --------------------------------------------------------------------------------

    async def drain(
        self,
        timeout_s: float = _DRAIN_S,
        custody_timeout_s: float = _CUSTODY_DRAIN_S,
        *,
        quiet_s: float | None = None,
    ) -> None:
        """Give bundles waiting to be forwarded up to ``timeout_s`` to leave while a session is
        up (messages just sent, custody signals for what arrived) — longer while they are
        leaving: as long as peers keep acknowledging octets (a large upload on a slow link),
        until nothing was acknowledged for ``quiet_s`` (default ``settings.request_timeout_s``).
        If this session sent bundles with custody, up to ``custody_timeout_s`` more for the next
        hop's custody signals (so the client's copies are released now, not retransmitted by a
        later command). What is left stays in the store for the next command."""
        quiet = self.settings.request_timeout_s if quiet_s is None else quiet_s
        start = trio.current_time()
        deadline = start + timeout_s
        seen = self.activity()
        while self.node.peers() and trio.current_time() < deadline:
            statistics = self.node.statistics()
            waiting_custody = (
                self._sent_with_custody
                and statistics.custody_wait > 0
                and trio.current_time() - start < custody_timeout_s
            )
            if statistics.pending_forward == 0 and not waiting_custody:
                break
            await trio.sleep(_POLL_S)
            now_seen = self.activity()
            if now_seen != seen and statistics.pending_forward:
                seen = now_seen
                deadline = max(deadline, trio.current_time() + quiet)


def _node_config(
    home: ClientHome, settings: ClientSettings, via: tuple[tuple[str, int], ...]
) -> NodeConfig:
    listen: tuple[tuple[str, int], ...] = ()
    if settings.discover:
        # Discovery announces a listener; peers that find us may connect to it.
        interfaces = settings.discovery_interfaces or ("0.0.0.0",)
        listen = tuple((address, 0) for address in interfaces)
    return NodeConfig(
        node_id=home.node_id,
        workdir=home.path,
        listen=listen,
        static_peers=via,
        discovery=settings.discover,
        discovery_interfaces=settings.discovery_interfaces,
        discovery_service_type=settings.discovery_service_type,
        reconnect_max_s=2.0,
        custody_retransmit_s=60.0,
    )


def _format_via(via: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in via)


def _parse_via(text: str) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            found.append((host.strip("[]"), int(port)))
    return tuple(found)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
