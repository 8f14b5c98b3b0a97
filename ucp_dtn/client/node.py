"""The client's own node on the network: :class:`ClientNode`, shared by every client session of
a home.

Theory of operation
-------------------
The client needs no daemon on its machine. It runs its own
:class:`~ucp_dtn.agent.BundleNode` on the client home's store (``<home>/store``), with the
home's node ID, no listener (unless ``--discover`` needs one to announce) and sessions to the
``--via`` addresses, or zeroconf discovery. Its UCP endpoint is ``role_endpoint(node,
RoleName.CLIENT)`` (``dtn://client-…/ucp/client``), served by a
:class:`~ucp_dtn.roles.Mailbox`. One process at a time holds a home (:class:`ClientHome`'s
lock): the client agent (:mod:`.agent`), which every ``ucp`` command of the home talks to, or a
program using :meth:`ClientSession.open <ucp_dtn.client.ClientSession.open>` directly.

Everything the client sends is a bundle in its own store first: if no broker is reachable it
simply stays there and leaves as soon as a session to a broker's node is up. What arrives for
the client (``job-accepted``, ``job-state``, ``job-result`` — the network keeps them while the
client is away) is written to the :class:`ClientJournal` before the bundle is confirmed to the
agent, whichever session happens to be open.

Requests (status, data, cancel, logs) carry a request ID; replies with that ID are handed to
the session waiting for them, possibly several (one per datastore the broker relayed a query
to). Other messages are journalled and reported to every session watching
(:meth:`ClientNode.watch`). Several sessions may use one node at once (the agent serves several
commands): each has its own settings (:class:`~ucp_dtn.client.ClientSession`), they share the
node, the journal and the broker found.

``--via`` addresses are kept connected (reconnecting after a cut) from the first session that
names them until the node stops. On leaving, the node gives bundles still waiting to be
forwarded a moment to leave while a session is up — a program's node (and ``ucp --no-agent``'s)
as long as they keep leaving, the agent's a few seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from bpv7 import EndpointID, parse_eid
from convergence.tcpcl import LinkError

from ..agent import BundleNode, NodeConfig
from ..roles import Incoming, Mailbox, RoleName, role_endpoint
from ..ucp import JobAccepted, JobResult, JobState, decode_message
from ..ucp.messages import UcpMessage

if TYPE_CHECKING:
    from ..trust import MeshTrust
from .errors import ClientError, ClientUsageError
from .home import ClientHome
from .journal import ClientJournal, JobEntry, JournalChange
from .settings import ClientSettings

__all__ = ["ClientNode", "JobEvent", "JobListener"]

logger = logging.getLogger(__name__)

_BROKER_KEY = "broker"
_POLL_S = 0.02
_DRAIN_S = 5.0
_CUSTODY_DRAIN_S = 1.0
_ROLES_GRACE_S = 1.0
_RECONNECT_MIN_S = 0.2
_RECONNECT_MAX_S = 2.0
_SHORT_SESSION_S = 0.5
_CONSUME_BATCH = 64
"""Most messages recorded in one journal transaction."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Something the client heard about one of its jobs."""

    entry: JobEntry
    """The job as the journal knows it now."""
    message: UcpMessage
    """What was heard (``JobAccepted``, ``JobState``, ``JobResult`` or a status entry's
    ``JobState`` equivalent)."""


JobListener = Callable[[JobEvent], None]
"""Called (synchronously, in the node's task) for every change to a job."""


class ClientNode:
    """See the module docstring. Open with :meth:`open` (an async context manager)."""

    def __init__(
        self,
        home: ClientHome,
        journal: ClientJournal,
        node: BundleNode,
        mailbox: Mailbox,
        nursery: trio.Nursery,
        *,
        discovery: tuple[bool, tuple[str, ...] | None, str | None],
        trust: Path | None = None,
        mesh: MeshTrust | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.home = home
        """The client home, locked while the node runs."""
        self.journal = journal
        """The journal of this home's jobs and outbox."""
        self.node = node
        """The client's bundle node."""
        self.mailbox = mailbox
        """The client endpoint."""
        self.discovery = discovery
        """``(discover, interfaces, service type)`` the node was started with: a session that
        wants other discovery settings needs another node."""
        self.trust = trust
        """The trust file the node was started with (``None``: open mode)."""
        self.mesh = mesh
        """The trusted mesh of :attr:`trust` (``None``: open mode)."""
        self._nursery = nursery
        self._clock = clock
        self.broker: EndpointID | None = None
        """The broker last found reachable."""
        self._routed_via: set[str] = set()
        self._via: set[tuple[str, int]] = set()
        self.via_errors: dict[tuple[str, int], str] = {}
        """Why the last attempt to reach each ``--via`` address failed (cleared on success)."""
        self._collectors: dict[int, trio.MemorySendChannel[Incoming]] = {}
        self._listeners: list[JobListener] = []
        self._changed = trio.Event()
        self.sent_with_custody = False
        """Whether bundles with custody were sent (leaving waits a moment for the signals)."""
        self.first_peer_at: float | None = None
        """When a first session came up (trio clock)."""

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: ClientSettings,
        *,
        clock: Callable[[], float] = time.time,
        patient_drain: bool = True,
    ) -> AsyncIterator[ClientNode]:
        """Open the home ``settings`` name (waiting up to ``lock_timeout_s`` for its lock), run
        the node (with discovery as ``settings`` say) and the client endpoint; on exit give
        waiting bundles a moment to leave — with ``patient_drain``, as long as they are leaving
        (:meth:`drain`, quiet for ``settings.request_timeout_s``) — then stop."""
        home = await trio.to_thread.run_sync(
            lambda: ClientHome.open(settings.home, lock_timeout_s=settings.lock_timeout_s)
        )
        try:
            trust_path = _trust_of(home, settings)
            config = _node_config(home, settings)
            mesh: MeshTrust | None = None
            if trust_path is not None:
                config, mesh = await trio.to_thread.run_sync(_trusted, home, config, trust_path)
            journal = await ClientJournal.open(home.journal_path, clock=clock)
            try:
                node = BundleNode(config, clock=clock)
                try:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(node.run)
                        if trust_path is not None:
                            await nursery.start(_revocations(node).run)
                        # The mailbox and the consumer stop before the node: a message being
                        # confirmed as they stop must not meet a closed bundle store (it is
                        # cancelled instead, and the bundle is delivered again next time).
                        async with trio.open_nursery() as endpoint:
                            mailbox = Mailbox(node, role_endpoint(node.node_id, RoleName.CLIENT))
                            await endpoint.start(mailbox.run)
                            client = cls(
                                home,
                                journal,
                                node,
                                mailbox,
                                endpoint,
                                discovery=_discovery_of(settings),
                                trust=trust_path,
                                mesh=mesh,
                                clock=clock,
                            )
                            endpoint.start_soon(client._consume)
                            yield client
                            quiet = settings.request_timeout_s if patient_drain else None
                            await client.drain(quiet_s=quiet)
                            endpoint.cancel_scope.cancel()
                        nursery.cancel_scope.cancel()
                except BaseExceptionGroup as group:
                    # One failure (the caller's own, usually) is raised as itself.
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

    def fits(self, settings: ClientSettings) -> bool:
        """Whether a session with ``settings`` can use this node (same discovery settings and
        trust file)."""
        return _discovery_of(settings) == self.discovery and (
            _trust_of(self.home, settings) == self.trust
        )

    # -- peers ----------------------------------------------------------------------------------

    def use_via(self, via: Iterable[tuple[str, int]]) -> None:
        """Keep sessions to these addresses up from now on (reconnecting after a cut)."""
        for address in via:
            if address not in self._via:
                self._via.add(address)
                self._nursery.start_soon(self._keep_connected, *address)

    async def _keep_connected(self, host: str, port: int) -> None:
        delay = _RECONNECT_MIN_S
        while True:
            try:
                peer = await self.node.connect(host, port)
            except (LinkError, OSError) as exc:
                logger.info("via %s:%d: %s", host, port, exc)
                self.via_errors[(host, port)] = _connect_problem(exc, self.trust)
                await trio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)
                continue
            began = trio.current_time()
            while any(p.node_id == peer for p in self.node.peers()):
                if trio.current_time() - began >= _SHORT_SESSION_S:
                    # The session held: what went wrong before is history. (Not at once: a
                    # revoked client's sessions come up and are closed a moment later, and
                    # a request failing meanwhile should still say why.)
                    self.via_errors.pop((host, port), None)
                await trio.sleep(0.1)
            logger.info("via %s:%d: session with %s ended", host, port, peer)
            if trio.current_time() - began < _SHORT_SESSION_S:
                # Closed at once: a trusted mesh refusing this client (revoked), say.
                self.via_errors[(host, port)] = f"{peer} closed the session at once" + (
                    " (is this client's certificate revoked?)" if self.trust else ""
                )
                await trio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)
            else:
                delay = _RECONNECT_MIN_S

    def route_via(self, peers: list[str]) -> None:
        """Send everything not for a neighbour through the first ``--via`` node reached (a
        broker's node, or a node that knows the way)."""
        if self._routed_via or not peers:
            return
        self._routed_via.add(peers[0])
        self.node.add_route("*", peers[0])

    async def flush_outbox(self, broker: EndpointID) -> None:
        """Send what waits in the journal's outbox (no broker was known when it was queued)
        to ``broker``, in order."""
        items = await self.journal.outbox()
        for item in items:
            message = decode_message(item.payload)
            await self.mailbox.send(
                broker, message, custody=item.custody, lifetime_s=item.lifetime_s
            )
            self.sent_with_custody |= item.custody
            await self.journal.remove_outbox(item.sequence)
            job_id = getattr(getattr(message, "job", None), "job_id", None)
            if isinstance(job_id, uuid.UUID):
                await self.journal.set_broker([job_id], str(broker))
        if items:
            logger.info("sent %d queued messages to %s", len(items), broker)

    async def remember_broker(self, broker: EndpointID) -> None:
        """Note ``broker`` as reachable (and remember it for later commands)."""
        if self.broker != broker:
            logger.info("broker %s reachable", broker)
        self.broker = broker
        await self.journal.remember(_BROKER_KEY, str(broker))

    async def remembered_broker(self) -> EndpointID | None:
        """The broker a command reached last, if any."""
        remembered = await self.journal.setting(_BROKER_KEY)
        return None if remembered is None else parse_eid(remembered)

    # -- replies ---------------------------------------------------------------------------------

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

    # -- what arrives -----------------------------------------------------------------------------

    def watch(self, listener: JobListener) -> None:
        """Call ``listener`` for every change to a job from now on."""
        self._listeners.append(listener)

    def unwatch(self, listener: JobListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def next_change(self) -> trio.Event:
        """An event set at the next change to any job. Take it *before* looking at the
        journal, then wait on it: a change in between is not missed."""
        return self._changed

    def notify(self, event: JobEvent) -> None:
        """Tell every listener about ``event`` and wake those waiting for a change."""
        for listener in list(self._listeners):
            listener(event)
        self._changed.set()
        self._changed = trio.Event()

    async def _consume(self) -> None:
        while True:
            first = await self.mailbox.receive()
            # The messages that arrived together (a batch bundle's, say) are recorded in one
            # journal transaction, then confirmed.
            batch = [first, *self.mailbox.receive_ready(_CONSUME_BATCH - 1)]
            await self._handle_batch(batch)
            for incoming in batch:
                await incoming.done()

    async def _handle_batch(self, batch: list[Incoming]) -> None:
        changes: list[JournalChange[JobEntry | None]] = []
        messages: list[UcpMessage] = []
        for incoming in batch:
            message = incoming.message
            request_id = getattr(message, "request_id", None)
            collector = self._collectors.get(request_id) if isinstance(request_id, int) else None
            if collector is not None:
                try:
                    collector.send_nowait(incoming)
                except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    logger.debug("dropping an extra reply to request %d", request_id)
                continue
            if isinstance(message, JobAccepted):
                change = self.journal.accepted_change(
                    message.job_id, message.broker, message.warning
                )
            elif isinstance(message, JobState):
                change = self.journal.state_change(
                    message.job_id,
                    message.state,
                    message.at,
                    detail=message.detail,
                    executor=message.executor,
                )
            elif isinstance(message, JobResult):
                message = self.open_result(message)
                change = self.journal.result_change(message, "delivered")
            else:
                logger.debug("ignoring %s from %s", message.KIND, incoming.source)
                continue
            changes.append(change)
            messages.append(message)
        entries = await self.journal.apply(changes)
        for entry, message in zip(entries, messages, strict=True):
            if entry is not None:
                self.notify(JobEvent(entry, message))

    # -- sealed results (a trusted mesh) -------------------------------------------------------

    def result_key(self) -> bytes | None:
        """What jobs carry as their result key: this client's certificate (DER) in a trusted
        mesh, else ``None``."""
        if self.mesh is None:
            return None
        from ..trust.sealing import certificate_der

        return certificate_der(self.mesh.trust.certificate)

    def open_result(self, result: JobResult) -> JobResult:
        """``result`` opened with this client's key if it was sealed to it; one that cannot be
        opened keeps its sealed form (and says so in its message)."""
        if result.sealed is None:
            return result
        if self.mesh is None:
            return dataclasses.replace(result, message="sealed to a key this client lacks")
        from ..trust import TrustError
        from ..trust.sealing import open_result

        try:
            return open_result(result, self.mesh.trust.key)
        except TrustError as exc:
            logger.warning("result of job %s: %s", result.job_id, exc)
            return dataclasses.replace(result, message=f"cannot open the sealed result: {exc}")

    def open_archive(self, data: bytes) -> bytes:
        """A stored results archive, opened if it was sealed to this client."""
        from ..trust.sealing import is_sealed

        if self.mesh is None or not is_sealed(data):
            return data
        from ..trust import TrustError
        from ..trust.sealing import open_sealed

        try:
            return open_sealed(data, self.mesh.trust.key)
        except TrustError as exc:
            raise ClientError(f"cannot open the sealed results archive: {exc}") from None

    # -- leaving --------------------------------------------------------------------------------

    async def drain(
        self,
        timeout_s: float = _DRAIN_S,
        custody_timeout_s: float = _CUSTODY_DRAIN_S,
        *,
        quiet_s: float | None = None,
    ) -> None:
        """Give bundles waiting to be forwarded up to ``timeout_s`` to leave while a session is
        up (messages just sent, custody signals for what arrived) and, if bundles with custody
        were sent, up to ``custody_timeout_s`` for the next hop's custody signals (so the
        client's copies are released now, not retransmitted later). With ``quiet_s``, longer
        while they are leaving: as long as peers keep acknowledging octets (a large upload on a
        slow link), until nothing was acknowledged for ``quiet_s``. What is left stays in the
        store."""
        start = trio.current_time()
        deadline = start + timeout_s
        seen = self.activity()
        while self.node.peers() and trio.current_time() < deadline:
            statistics = self.node.statistics()
            waiting_custody = (
                self.sent_with_custody
                and statistics.custody_wait > 0
                and trio.current_time() - start < custody_timeout_s
            )
            if statistics.pending_forward == 0 and not waiting_custody:
                break
            await trio.sleep(_POLL_S)
            now_seen = self.activity()
            if quiet_s is not None and now_seen != seen and statistics.pending_forward:
                seen = now_seen
                deadline = max(deadline, trio.current_time() + quiet_s)

    def activity(self) -> int:
        """A counter that grows while a large bundle arrives at the node or leaves it (octets of
        multi-segment transfers received or acknowledged; small messages do not count)."""
        return self.node.received_octets() + self.node.acknowledged_octets()

    def waiting_bundles(self) -> int:
        """Bundles in the node's store still to be forwarded (or awaiting custody signals)."""
        statistics = self.node.statistics()
        return statistics.pending_forward + statistics.custody_wait


def _discovery_of(settings: ClientSettings) -> tuple[bool, tuple[str, ...] | None, str | None]:
    if not settings.discover:
        return (False, None, None)
    return (True, settings.discovery_interfaces, settings.discovery_service_type)


def _revocations(node: BundleNode) -> Any:
    """The revocation service of a client node in a trusted mesh."""
    from ..trust import mesh_anchors
    from ..trust.revocation import RevocationService

    anchors = mesh_anchors(node)
    assert anchors is not None
    return RevocationService(node, anchors)


def _connect_problem(error: Exception, trust: Path | None) -> str:
    """Why a session could not be had, in words for the user of the client."""
    text = str(error) or type(error).__name__
    if trust is None and ("TLS" in text or "Contact Failure" in text or "contact" in text):
        return (
            f"{text} -- the mesh may be a trusted one: a client needs a trust file from its "
            "authority (ucp trust use FILE)"
        )
    if trust is not None and (
        "certificate" in text.lower() or "TLS" in text or "CONTACT_FAILURE" in text
    ):
        # A revoked client is refused in the handshake or just after it, whichever comes first.
        return (
            f"{text} -- is this client's trust file ({trust}) from this mesh's authority? "
            "is this client's certificate revoked?"
        )
    return text


def _trust_of(home: ClientHome, settings: ClientSettings) -> Path | None:
    """The trust file a session uses: ``--trust``, else the home's, else none (open mode)."""
    if settings.trust is not None:
        return settings.trust.expanduser().absolute()
    return home.trust_path if home.trust_path.exists() else None


def _trusted(home: ClientHome, config: NodeConfig, path: Path) -> tuple[NodeConfig, MeshTrust]:
    """``config`` in the trusted mesh of the trust file at ``path`` (the client's node ID is
    the one its certificate names), and the mesh."""
    from ..trust import MeshTrust, TrustError

    try:
        mesh = MeshTrust.load(path)
        home.node_id = mesh.node_id
        return mesh.configure(dataclasses.replace(config, node_id=mesh.node_id)), mesh
    except TrustError as exc:
        raise ClientUsageError(f"trust: {exc}") from None


def _node_config(home: ClientHome, settings: ClientSettings) -> NodeConfig:
    listen: tuple[tuple[str, int], ...] = ()
    if settings.discover:
        # Discovery announces a listener; peers that find us may connect to it.
        interfaces = settings.discovery_interfaces or ("0.0.0.0",)
        listen = tuple((address, 0) for address in interfaces)
    return NodeConfig(
        node_id=home.node_id,
        workdir=home.path,
        listen=listen,
        discovery=settings.discover,
        discovery_interfaces=settings.discovery_interfaces,
        discovery_service_type=settings.discovery_service_type,
        reconnect_max_s=_RECONNECT_MAX_S,
        custody_retransmit_s=60.0,
    )


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
