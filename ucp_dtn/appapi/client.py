"""The client side of the application-agent API: :class:`AppApiClient`.

::

    async with AppApiClient.connect("/var/lib/ucp/bpnode.sock") as client:
        bundle_id = await client.send("dtn://b/inbox", b"hello", lifetime_s=3600)
        async with await client.register("inbox") as inbox:
            async for bundle in inbox:
                handle(bundle.payload)
                await bundle.confirm()          # now it leaves the daemon's store

One reader task (started by :meth:`AppApiClient.connect`) routes replies to the waiting
requests and deliveries to their :class:`ClientRegistration`; requests may be made from many
tasks at once and are pipelined on the one connection.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bpv7 import BundleID

from .errors import (
    AppApiClosedError,
    AppApiError,
    AppApiProtocolError,
    AppApiUsageError,
    ErrorCode,
    RequestFailed,
)
from .framing import DEFAULT_MAX_FRAME, FrameDecoder, decode_body, encode_frame
from .messages import (
    DEFAULT_WINDOW,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    REPORT_KINDS,
    AddRouteRequest,
    ConfirmRequest,
    ConnectRequest,
    DeliveryPush,
    ErrorReply,
    Hello,
    NodeInfoRequest,
    RegisterRequest,
    Reply,
    Request,
    SecurityReport,
    SendRequest,
    UnregisterRequest,
    bundle_id_from_wire,
    decode_server_message,
    encode_request,
)

__all__ = ["SOCKET_ENV", "AppApiClient", "ClientRegistration", "NodeInfo", "ReceivedBundle"]

logger = logging.getLogger(__name__)

SOCKET_ENV = "UCP_BPNODE_SOCKET"
"""Environment variable naming the daemon's socket when a program is not told otherwise."""

_RECEIVE_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What ``node-info`` reports (plain data, ready for JSON)."""

    node_id: str
    """The daemon's node ID."""
    peers: list[dict[str, Any]]
    """One map per TCPCL session (node ID, address, direction, TLS, counters...)."""
    routes: list[dict[str, Any]]
    """One map per route (pattern, next hop, origin, metric, usable...)."""
    statistics: dict[str, Any]
    """The node's statistics (store contents, counters)."""
    api: dict[str, Any]
    """The application API's own counters."""
    roles: list[str]
    """The UCP roles the node was configured with."""


class ReceivedBundle:
    """A bundle delivered to a :class:`ClientRegistration`; :meth:`confirm` it when done."""

    __slots__ = ("_client", "_confirmed", "_push")

    def __init__(self, client: AppApiClient, push: DeliveryPush) -> None:
        self._client = client
        self._push = push
        self._confirmed = False

    @property
    def bundle_id(self) -> BundleID:
        """Source, creation timestamp (and fragment offset): what identifies the bundle in
        the network; duplicates carry the same one."""
        return self._push.bundle_id

    @property
    def source(self) -> str:
        """The EID that sent it (``dtn:none`` for an anonymous bundle)."""
        return self._push.source

    @property
    def destination(self) -> str:
        """The endpoint it was delivered to."""
        return self._push.destination

    @property
    def report_to(self) -> str:
        """Where status reports about it go (``dtn:none``: nowhere)."""
        return self._push.report_to

    @property
    def lifetime_ms(self) -> int:
        """Its lifetime in milliseconds after its creation time (RFC 9171 §4.2.2); the
        network drops it once that has passed."""
        return self._push.lifetime_ms

    @property
    def flags(self) -> int:
        """Its bundle processing control flags."""
        return self._push.flags

    @property
    def is_admin_record(self) -> bool:
        """Whether the payload is an administrative record (e.g. a status report)."""
        return self._push.admin_record

    @property
    def payload(self) -> bytes:
        """The application data unit."""
        return self._push.payload

    @property
    def security(self) -> tuple[SecurityReport, ...]:
        """What the daemon verified and decrypted before delivering it (RFC 9172 security
        acceptor), e.g. ``integrity of the payload verified (key k, source dtn://a/, ...)``:
        empty when no security rule applied to it."""
        return self._push.security

    @property
    def confirmed(self) -> bool:
        """Whether :meth:`confirm` has completed."""
        return self._confirmed

    async def confirm(self) -> None:
        """Tell the daemon the bundle is dealt with; it leaves the store (and a "delivered"
        status report goes out if asked for). Idempotent. An unconfirmed bundle is delivered
        again to the endpoint's next registration."""
        if self._confirmed:
            return
        await self._client._request(ConfirmRequest(self._client._next_id(), self._push.delivery))
        self._confirmed = True

    def __repr__(self) -> str:
        return (
            f"<ReceivedBundle to {self.destination} from {self.source} ({len(self.payload)} bytes)>"
        )


class ClientRegistration:
    """An open registration: an async iterator of :class:`ReceivedBundle`."""

    def __init__(self, client: AppApiClient, number: int, endpoint: str, window: int) -> None:
        self._client = client
        self.number = number
        """The daemon's number for this registration."""
        self.endpoint = endpoint
        """The registered endpoint (full EID)."""
        self._send, self._receive = trio.open_memory_channel[ReceivedBundle | None](window + 1)
        self._closed = False

    def _deliver(self, bundle: ReceivedBundle | None) -> None:
        try:
            self._send.send_nowait(bundle)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            # The daemon never pushes more than the window; a closed registration drops it
            # (the bundle stays in the daemon's store).
            logger.debug("delivery for closed or overflowing registration %d dropped", self.number)

    async def receive(self) -> ReceivedBundle:
        """The next bundle; raises :class:`AppApiClosedError` once the registration or the
        connection is closed."""
        if self._closed:
            raise AppApiClosedError(f"registration of {self.endpoint} is closed")
        try:
            bundle = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            bundle = None
        if bundle is None:
            raise AppApiClosedError(
                self._client._failure or f"registration of {self.endpoint} is closed"
            )
        return bundle

    def __aiter__(self) -> ClientRegistration:
        return self

    async def __anext__(self) -> ReceivedBundle:
        try:
            return await self.receive()
        except AppApiClosedError:
            if self._client._failure is not None:
                raise
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Close the registration; bundles received but not confirmed stay in the daemon's
        store and go to the endpoint's next registration."""
        if self._closed:
            return
        self._closed = True
        self._client._registrations.pop(self.number, None)
        self._send.close()
        if not self._client.closed:
            with suppress(AppApiClosedError, RequestFailed):
                await self._client._request(UnregisterRequest(self._client._next_id(), self.number))

    async def __aenter__(self) -> ClientRegistration:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()


class _Waiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: Reply | ErrorReply | AppApiError | None = None


class AppApiClient:
    """A connection to a ``ucp-bpnode`` daemon's application API; open it with
    :meth:`connect`."""

    def __init__(self, stream: trio.abc.Stream, hello: Hello, *, max_frame: int) -> None:
        self._stream = stream
        self.node_id = hello.node_id
        """The daemon's node ID."""
        self.software = hello.software
        """The daemon's software name and version."""
        self._max_frame = max_frame
        self._ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._registrations: dict[int, ClientRegistration] = {}
        self._send_lock = trio.StrictFIFOLock()
        self._failure: str | None = None
        self._closed = False

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> AsyncIterator[AppApiClient]:
        """Connect to the daemon's socket (``path``, else ``$UCP_BPNODE_SOCKET``) and run the
        client until the block ends. Raises :class:`AppApiClosedError` if nobody listens there,
        :class:`AppApiProtocolError` if what answers does not speak the protocol."""
        socket_path = _socket_path(path)
        stream = await _open_unix(socket_path)
        async with stream:
            decoder = FrameDecoder(max_frame)
            hello = await _read_hello(stream, decoder, socket_path)
            client = cls(stream, hello, max_frame=max_frame)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client._reader, decoder)
                    try:
                        yield client
                    finally:
                        client._shut(None)
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The reader task never fails, so a group holds what the caller's block
                # raised: hand that on as it was, not wrapped.
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (by us, the daemon, or an error)."""
        return self._closed

    # -- requests -----------------------------------------------------------------------------

    async def send(
        self,
        destination: str,
        payload: bytes,
        *,
        lifetime_s: float | None = None,
        custody: bool = False,
        report_to: str | None = None,
        reports: Iterable[str] = (),
        source: str | None = None,
        integrity: str | None = None,
        confidentiality: str | None = None,
    ) -> BundleID:
        """Send a bundle; returns its ID once the daemon has stored it durably. ``reports``
        names the status reports to request (``received``, ``forwarded``, ``delivered``,
        ``deleted``). ``integrity`` / ``confidentiality`` name keys of the daemon's security
        policy: it adds a BIB / BCB over the payload with them (docs/security.md). Raises
        :class:`RequestFailed` (e.g. code ``store-full``, or ``bad-request`` for a key the
        daemon does not have)."""
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise AppApiUsageError(f"payload must be bytes, got {type(payload).__name__}")
        wanted = frozenset(reports)
        unknown = sorted(wanted - set(REPORT_KINDS))
        if unknown:
            raise AppApiUsageError(f"unknown status report kind {unknown[0]!r}")
        if lifetime_s is not None and not (math.isfinite(lifetime_s) and lifetime_s > 0):
            raise AppApiUsageError(
                f"lifetime must be a positive number of seconds, got {lifetime_s!r}"
            )
        reply = await self._request(
            SendRequest(
                self._next_id(),
                destination=destination,
                payload=bytes(payload),
                lifetime_s=lifetime_s,
                custody=custody,
                report_to=report_to,
                reports=wanted,
                source=source,
                integrity=integrity,
                confidentiality=confidentiality,
            )
        )
        return bundle_id_from_wire(reply.fields.get("bundle-id"))

    async def register(self, endpoint: str, *, window: int = DEFAULT_WINDOW) -> ClientRegistration:
        """Register ``endpoint`` (a full EID of the node, or a name under its node ID); bundles
        for it arrive on the returned registration, at most ``window`` unconfirmed."""
        if not 1 <= window <= MAX_WINDOW:
            raise AppApiUsageError(f"window must be within 1..{MAX_WINDOW}")
        request_id = self._next_id()
        waiter = _Waiter()
        self._waiters[request_id] = waiter
        # The registration must exist before the reply is read: deliveries may follow at once.
        reply = await self._request(RegisterRequest(request_id, endpoint, window), waiter=waiter)
        number = reply.fields.get("registration")
        full = reply.fields.get("endpoint")
        if type(number) is not int or not isinstance(full, str):
            raise AppApiProtocolError("register: malformed reply")
        registration = self._registrations.get(number)
        if registration is None:
            registration = ClientRegistration(self, number, full, window)
            self._registrations[number] = registration
        registration.endpoint = full
        return registration

    async def node_info(self) -> NodeInfo:
        """The daemon's node ID, peers, routes and statistics."""
        reply = await self._request(NodeInfoRequest(self._next_id()))
        fields = reply.fields
        return NodeInfo(
            node_id=str(fields.get("node-id")),
            peers=_list_of_maps(fields.get("peers")),
            routes=_list_of_maps(fields.get("routes")),
            statistics=_map(fields.get("statistics")),
            api=_map(fields.get("api")),
            roles=[role for role in fields.get("roles") or () if isinstance(role, str)],
        )

    async def connect_peer(self, host: str, port: int) -> str:
        """Make the daemon open a TCPCL session to ``host:port``; returns the peer's node ID."""
        reply = await self._request(ConnectRequest(self._next_id(), host, port))
        return str(reply.fields.get("peer"))

    async def add_route(self, pattern: str, next_hop: str) -> None:
        """Add a static route to the daemon."""
        await self._request(AddRouteRequest(self._next_id(), pattern, next_hop))

    async def aclose(self) -> None:
        """Close the connection (registrations end; unconfirmed bundles stay with the daemon)."""
        self._shut(None)
        with trio.CancelScope(shield=True):
            await self._stream.aclose()

    # -- machinery ------------------------------------------------------------------------------

    def _next_id(self) -> int:
        return next(self._ids)

    async def _request(self, request: Request, *, waiter: _Waiter | None = None) -> Reply:
        if self._closed:
            raise AppApiClosedError(self._failure or "the connection to the daemon is closed")
        if waiter is None:
            waiter = _Waiter()
            self._waiters[request.request_id] = waiter
        frame = encode_frame(encode_request(request))
        if len(frame) - 4 > self._max_frame:
            self._waiters.pop(request.request_id, None)
            raise AppApiUsageError(f"request of {len(frame)} bytes is larger than a frame may be")
        try:
            async with self._send_lock:
                await self._stream.send_all(frame)
            await waiter.event.wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._shut("the daemon closed the connection")
        finally:
            self._waiters.pop(request.request_id, None)
        result = waiter.result
        if isinstance(result, Reply):
            return result
        if isinstance(result, ErrorReply):
            raise RequestFailed(result.code, result.message)
        if isinstance(result, AppApiError):
            raise result
        raise AppApiClosedError(self._failure or "the connection to the daemon is closed")

    async def _reader(self, decoder: FrameDecoder) -> None:
        failure = "the daemon closed the connection"
        try:
            while True:
                while (body := decoder.next_body()) is not None:
                    self._dispatch(decode_server_message(decode_body(body)))
                data = await self._stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                decoder.feed(data)
        except AppApiProtocolError as exc:
            failure = f"the daemon broke the protocol: {exc}"
            logger.error("%s", failure)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._shut(None if self._closed else failure)

    def _dispatch(self, message: Hello | Reply | ErrorReply | DeliveryPush) -> None:
        if isinstance(message, DeliveryPush):
            registration = self._registrations.get(message.registration)
            if registration is None:
                # A push may beat the register reply: create the registration it belongs to.
                registration = ClientRegistration(
                    self, message.registration, message.destination, MAX_WINDOW
                )
                self._registrations[message.registration] = registration
            registration._deliver(ReceivedBundle(self, message))
        elif isinstance(message, ErrorReply) and message.request_id is None:
            logger.warning("daemon: %s: %s", message.code, message.message)
            if message.code in (ErrorCode.TOO_MANY_CONNECTIONS, ErrorCode.FRAME_TOO_LARGE):
                self._shut(message.message)
        elif isinstance(message, Reply | ErrorReply):
            assert message.request_id is not None
            waiter = self._waiters.get(message.request_id)
            if waiter is None:
                logger.debug("reply to unknown request %d ignored", message.request_id)
                return
            waiter.result = message
            waiter.event.set()
        # A second Hello changes nothing.

    def _shut(self, failure: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._failure = failure
        for waiter in self._waiters.values():
            if waiter.result is None:
                waiter.result = AppApiClosedError(failure or "the connection is closed")
            waiter.event.set()
        for registration in self._registrations.values():
            registration._deliver(None)
            registration._send.close()


def _socket_path(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        return Path(path)
    from_env = os.environ.get(SOCKET_ENV)
    if from_env:
        return Path(from_env)
    raise AppApiUsageError(f"no daemon socket given (use --socket PATH or set {SOCKET_ENV})")


async def _open_unix(path: Path) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.connect(os.fspath(path))
    except FileNotFoundError:
        sock.close()
        raise AppApiClosedError(f"no daemon socket at {path} (is ucp-bpnode running?)") from None
    except ConnectionRefusedError:
        sock.close()
        raise AppApiClosedError(f"no daemon listens on {path} (is ucp-bpnode running?)") from None
    except OSError as exc:
        sock.close()
        raise AppApiClosedError(f"cannot connect to {path}: {exc.strerror or exc}") from None
    return trio.SocketStream(sock)


async def _read_hello(stream: trio.SocketStream, decoder: FrameDecoder, path: Path) -> Hello:
    while True:
        body = decoder.next_body()
        if body is not None:
            message = decode_server_message(decode_body(body))
            if isinstance(message, ErrorReply):
                raise RequestFailed(message.code, message.message)
            if not isinstance(message, Hello):
                raise AppApiProtocolError(f"{path}: the daemon did not greet first")
            if PROTOCOL_VERSION not in message.versions:
                raise AppApiProtocolError(
                    f"{path}: the daemon speaks protocol versions {list(message.versions)}, "
                    f"not {PROTOCOL_VERSION}"
                )
            return message
        try:
            data = await stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            raise AppApiClosedError(f"{path}: the daemon closed the connection before greeting")
        decoder.feed(data)


def _map(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _list_of_maps(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [dict(item) for item in value if isinstance(item, Mapping)]
