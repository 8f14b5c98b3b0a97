"""The daemon side of the application-agent API: a Unix-socket server in front of a node.

Theory of operation
-------------------
:class:`AppApiServer` listens on a Unix stream socket (mode 0600: only the daemon's user may
talk to it) and runs one :class:`_Connection` per client. A connection greets with
:class:`~ucp_dtn.appapi.messages.Hello`, then reads frames in one reader task:

* quick requests (``register``, ``unregister``, ``node-info``, ``add-route``) are answered by
  the reader itself;
* requests that wait for the store or the network (``send``, ``confirm``, ``connect``) run in
  their own task, at most :attr:`AppApiServer.max_pending` per connection: a client may pipeline
  many sends, and when it pipelines more the reader stops reading (backpressure);
* every registration has a pump task that takes deliveries from the node's
  :class:`~ucp_dtn.agent.Registration` and pushes them, at most ``window`` unconfirmed at a time.

One task at a time writes (a ``StrictFIFOLock``). A malformed message gets an error reply and the
connection goes on; a frame above the size limit closes it. Nothing a client sends can end the
server: every connection's failure stays in that connection (logged). When a connection closes,
its registrations close and the deliveries it did not confirm stay in the store for the next
registration of their endpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import itertools
import logging
import math
import os
import re
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from bpv7 import BundleID, DecodeError, DtnEID, EndpointID, IpnEID, parse_eid
from bpv7.admin import StatusKind
from convergence.tcpcl.link_errors import LinkError
from ucp_dtn.agent import (
    AgentUsageError,
    ConfigError,
    Delivery,
    EndpointError,
    NodeNotRunningError,
    Registration,
    RegistrationClosedError,
    RegistrationError,
)
from ucp_dtn.store import StoreFullError

from .errors import AppApiError, AppApiProtocolError, AppApiUsageError, ErrorCode
from .framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameTooLargeError, decode_body, encode_frame
from .messages import (
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
    ServerMessage,
    UnregisterRequest,
    bundle_id_to_wire,
    decode_request,
    encode_server_message,
    request_id_of,
)

__all__ = [
    "MAX_UNIX_PATH",
    "AgentNode",
    "AppApiServer",
    "AppApiStatistics",
    "plain_data",
    "api_eid",
    "resolve_endpoint",
]

logger = logging.getLogger(__name__)

MAX_UNIX_PATH = 107
"""Longest Unix socket path in bytes (``sun_path`` is 108 bytes with its NUL on Linux)."""

_RECEIVE_SIZE = 256 * 1024


class AgentNode(Protocol):
    """What the server needs of a bundle node (``ucp_dtn.agent.BundleNode`` has it all)."""

    @property
    def node_id(self) -> EndpointID: ...

    def register(self, endpoint: str | EndpointID) -> Registration: ...

    async def send(
        self,
        destination: str | EndpointID,
        payload: bytes,
        *,
        source: str | EndpointID | None = None,
        lifetime_s: float | None = None,
        custody: bool = False,
        report_to: str | EndpointID | None = None,
        status_reports: frozenset[StatusKind] = frozenset(),
        integrity: str | None = None,
        confidentiality: str | None = None,
    ) -> BundleID: ...

    async def connect(self, host: str, port: int) -> str: ...

    def add_route(self, pattern: str, next_hop: str) -> None: ...

    def peers(self) -> Any: ...

    def routes(self) -> Any: ...

    def statistics(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class AppApiStatistics:
    """Counters of one :class:`AppApiServer`."""

    connections_open: int
    """Clients connected now."""
    connections_total: int
    """Clients accepted since start."""
    requests: int
    """Requests answered (successfully or not)."""
    errors: int
    """Error replies sent."""
    deliveries: int
    """Deliveries pushed."""
    confirmed: int
    """Deliveries confirmed."""


_SEGMENT = re.compile(r"[A-Za-z0-9._~+-]+\Z")
"""One part of a plain demux (between ``/``); ``.`` and ``..`` excepted."""
_SHOWN = 60
"""Characters of a refused EID quoted in an error reply."""


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def api_eid(text: str, what: str, code: str = ErrorCode.BAD_REQUEST) -> EndpointID:
    """The EID ``text`` a local application gave as ``what``, if the API takes it:
    valid (RFC 9171 §4.2.5.1, at most :data:`bpv7.MAX_EID_LENGTH` characters) and, for the dtn
    scheme, with a plain demux — names of letters, digits and ``. _ ~ + -`` separated by ``/``,
    no empty, ``.`` or ``..`` part (the RFC allows any printable ASCII; this API takes no more
    than endpoints need, so ``dtn://a/../../etc`` is no endpoint here). Raises
    :class:`AppApiProtocolError` with ``code`` naming ``what``."""
    try:
        eid = parse_eid(text)
    except DecodeError as exc:
        raise AppApiProtocolError(f"invalid {what} {_shown(text)}: {exc.message}", code) from None
    if isinstance(eid, DtnEID) and eid.demux:
        for segment in eid.demux.split("/"):
            if segment in (".", "..") or not _SEGMENT.match(segment):
                raise AppApiProtocolError(
                    f"invalid {what} {_shown(text)}: the demux must be names of letters, digits "
                    "and . _ ~ + - separated by / (no empty, . or .. part)",
                    code,
                )
    return eid


def resolve_endpoint(node_id: EndpointID, text: str) -> EndpointID:
    """The endpoint ``text`` names: a full EID, or a name put under ``node_id``
    (``inbox`` → ``dtn://a/inbox``; for an ipn node a service number: ``7`` → ``ipn:N.7``).
    Raises :class:`AppApiProtocolError` (``bad-endpoint``) unless the result is an EID
    :func:`api_eid` takes."""
    if ":" in text:
        return api_eid(text, "endpoint", ErrorCode.BAD_ENDPOINT)
    if isinstance(node_id, IpnEID):
        node_text = str(node_id)
        if not text.isdecimal() or not text.isascii():
            raise AppApiProtocolError(
                f"invalid endpoint {_shown(text)}: under an ipn node ID, a service number",
                ErrorCode.BAD_ENDPOINT,
            )
        return api_eid(
            node_text[: node_text.rindex(".") + 1] + text, "endpoint", ErrorCode.BAD_ENDPOINT
        )
    return api_eid(str(node_id) + text.lstrip("/"), "endpoint", ErrorCode.BAD_ENDPOINT)


def plain_data(value: object) -> Any:
    """``value`` as CBOR/JSON-friendly data: dataclasses become maps of their fields, enums
    their values, EIDs and paths text, non-finite floats ``None``; anything else unknown its
    ``str``."""
    if value is None or isinstance(value, bool | int | str | bytes):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return plain_data(value.value)
    if isinstance(value, EndpointID | Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: plain_data(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if not item.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain_data(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return str(value)


class AppApiServer:
    """Serve the application-agent API for ``node`` on the Unix socket ``path``."""

    def __init__(
        self,
        node: AgentNode,
        path: Path | str,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_connections: int = 256,
        max_pending: int = 128,
        max_registrations: int = 256,
        software: str = "ucp-dtn",
    ) -> None:
        self.node = node
        """The bundle node whose endpoints the clients register and send through."""
        self.path = Path(path)
        """The Unix socket clients connect to (created mode 0600 by :meth:`run`)."""
        if len(os.fsencode(self.path)) > MAX_UNIX_PATH:
            raise AppApiUsageError(
                f"socket path is too long ({len(os.fsencode(self.path))} bytes, at most "
                f"{MAX_UNIX_PATH}): {self.path}"
            )
        self.max_frame = max_frame
        """Largest frame body accepted from clients."""
        self.max_connections = max_connections
        """Clients served at once; more are told so and closed."""
        self.max_pending = max_pending
        """Requests of one connection running at once (``send``, ``confirm``, ``connect``)."""
        self.max_registrations = max_registrations
        """Registrations one connection may hold open."""
        self.software = software
        """What :class:`Hello` says the daemon is."""
        self._numbers = itertools.count(1)
        self._open = 0
        self._total = 0
        self.requests = 0
        self.errors = 0
        self.deliveries = 0
        self.confirmed = 0

    def statistics(self) -> AppApiStatistics:
        """A snapshot of the counters."""
        return AppApiStatistics(
            connections_open=self._open,
            connections_total=self._total,
            requests=self.requests,
            errors=self.errors,
            deliveries=self.deliveries,
            confirmed=self.confirmed,
        )

    async def run(self, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; ``task_status.started(path)`` once listening. The
        socket file is removed on the way out. Raises :class:`AppApiError` if the path is taken
        by another live daemon or by something that is not a socket, ``OSError`` if binding
        fails otherwise."""
        await _remove_stale_socket(self.path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        identity = os.stat(self.path)
        listener = trio.SocketListener(sock)
        logger.info("application API listening on %s", self.path)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(self.path)
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            logger.error("application API cannot accept a client: %s", exc)
                            await trio.sleep(0.1)
                            continue
                        raise
                    nursery.start_soon(self._serve, stream)
        finally:
            _unlink_if_same(self.path, identity)
            with trio.CancelScope(shield=True):
                await listener.aclose()

    async def _serve(self, stream: trio.SocketStream) -> None:
        number = next(self._numbers)
        self._total += 1
        self._open += 1
        try:
            connection = _Connection(self, stream, number)
            if self._open > self.max_connections:
                await connection.refuse_busy()
            else:
                await connection.run()
        except Exception:
            # A bug of ours handling one client must not take the daemon down.
            logger.exception("application API connection %d failed", number)
        finally:
            self._open -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()


async def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a daemon that died; refuse a live one or a non-socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AppApiError(f"{path} exists and is not a socket")
    probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        logger.info("removing stale socket %s", path)
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise AppApiError(f"another daemon is listening on {path}")


def _unlink_if_same(path: Path, identity: os.stat_result) -> None:
    try:
        now = os.lstat(path)
    except OSError:
        return
    if (now.st_dev, now.st_ino) == (identity.st_dev, identity.st_ino):
        path.unlink(missing_ok=True)


@dataclass(slots=True)
class _Registered:
    registration: Registration
    credit: trio.Semaphore
    scope: trio.CancelScope


class _Gone(Exception):
    """The client went away while we wrote to it."""


class _Connection:
    """One client of the server (see the module docstring)."""

    def __init__(self, server: AppApiServer, stream: trio.SocketStream, number: int) -> None:
        self._server = server
        self._node = server.node
        self._stream = stream
        self._number = number
        self._send_lock = trio.StrictFIFOLock()
        self._pending = trio.Semaphore(server.max_pending)
        self._registrations: dict[int, _Registered] = {}
        self._deliveries: dict[int, tuple[int, Delivery]] = {}
        self._registration_numbers = itertools.count(1)
        self._delivery_numbers = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    async def refuse_busy(self) -> None:
        logger.warning("application API: too many clients, refusing connection %d", self._number)
        message = ErrorReply(
            None,
            ErrorCode.TOO_MANY_CONNECTIONS,
            f"the daemon serves at most {self._server.max_connections} clients at once",
        )
        with contextlib.suppress(_Gone):
            await self._write(message)

    async def run(self) -> None:
        logger.debug("application API connection %d opened", self._number)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    await self._write(
                        Hello(str(self._node.node_id), software=self._server.software)
                    )
                    await self._read_loop()
                except _Gone:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            for registered in self._registrations.values():
                registered.registration.close()
            self._registrations.clear()
            self._deliveries.clear()
            logger.debug("application API connection %d closed", self._number)

    # -- reading --------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(self._server.max_frame)
        while True:
            try:
                data = await self._stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            decoder.feed(data)
            while True:
                try:
                    body = decoder.next_body()
                except FrameTooLargeError as exc:
                    await self._error(None, exc.code, str(exc))
                    return
                if body is None:
                    break
                await self._handle_body(body)

    async def _handle_body(self, body: bytes) -> None:
        request_id: int | None = None
        try:
            message = decode_body(body)
            request_id = request_id_of(message)
            request = decode_request(message)
        except AppApiProtocolError as exc:
            await self._error(request_id, exc.code, str(exc))
            return
        if isinstance(request, SendRequest | ConfirmRequest | ConnectRequest):
            await self._pending.acquire()
            assert self._nursery is not None
            self._nursery.start_soon(self._run_in_task, request)
        else:
            await self._answer(request)

    async def _run_in_task(self, request: Request) -> None:
        try:
            await self._answer(request)
        except _Gone:
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
        finally:
            self._pending.release()

    # -- answering ------------------------------------------------------------------------------

    async def _answer(self, request: Request) -> None:
        self._server.requests += 1
        try:
            fields = await self._carry_out(request)
        except AppApiProtocolError as exc:
            await self._error(request.request_id, exc.code, str(exc))
        except (trio.Cancelled, _Gone):
            raise
        except Exception as exc:
            code, text = _error_for(exc)
            if code == ErrorCode.INTERNAL:
                logger.exception("application API: %s request failed", type(request).__name__)
            await self._error(request.request_id, code, text)
        else:
            await self._write(Reply(request.request_id, fields))

    async def _carry_out(self, request: Request) -> dict[str, Any]:
        node = self._node
        match request:
            case SendRequest():
                bundle_id = await node.send(
                    api_eid(request.destination, "destination"),
                    request.payload,
                    source=None if request.source is None else api_eid(request.source, "source"),
                    lifetime_s=request.lifetime_s,
                    custody=request.custody,
                    report_to=(
                        None
                        if request.report_to is None
                        else api_eid(request.report_to, "report-to")
                    ),
                    status_reports=frozenset(StatusKind[kind.upper()] for kind in request.reports),
                    integrity=request.integrity,
                    confidentiality=request.confidentiality,
                )
                return {"bundle-id": bundle_id_to_wire(bundle_id)}
            case ConfirmRequest(delivery=number):
                return await self._confirm(number)
            case RegisterRequest():
                return self._register(request)
            case UnregisterRequest(registration=number):
                registered = self._registrations.pop(number, None)
                if registered is None:
                    raise AppApiProtocolError(
                        f"no open registration {number}", ErrorCode.UNKNOWN_REGISTRATION
                    )
                self._close_registration(number, registered)
                return {}
            case NodeInfoRequest():
                return {
                    "node-id": str(node.node_id),
                    "peers": plain_data(node.peers()),
                    "routes": plain_data(node.routes()),
                    "statistics": plain_data(node.statistics()),
                    "api": plain_data(self._server.statistics()),
                    "roles": list(getattr(getattr(node, "config", None), "roles", ())),
                }
            case ConnectRequest(host=host, port=port):
                try:
                    peer = await node.connect(host, port)
                except (OSError, trio.TooSlowError, LinkError) as exc:
                    raise _ConnectFailed(f"cannot reach {host}:{port}: {exc}") from None
                return {"peer": str(peer)}
            case AddRouteRequest(pattern=pattern, next_hop=next_hop):
                node.add_route(pattern, next_hop)
                return {}
        raise AssertionError(f"unhandled request {request!r}")  # pragma: no cover

    def _register(self, request: RegisterRequest) -> dict[str, Any]:
        if len(self._registrations) >= self._server.max_registrations:
            raise AppApiProtocolError(
                f"a connection may hold at most {self._server.max_registrations} registrations"
            )
        endpoint = resolve_endpoint(self._node.node_id, request.endpoint)
        registration = self._node.register(endpoint)
        number = next(self._registration_numbers)
        registered = _Registered(registration, trio.Semaphore(request.window), trio.CancelScope())
        self._registrations[number] = registered
        assert self._nursery is not None
        self._nursery.start_soon(self._pump, number, registered)
        logger.info("application registered %s (connection %d)", endpoint, self._number)
        return {"registration": number, "endpoint": str(endpoint)}

    def _close_registration(self, number: int, registered: _Registered) -> None:
        registered.scope.cancel()
        registered.registration.close()
        for delivery_number in [
            key for key, (owner, _) in self._deliveries.items() if owner == number
        ]:
            del self._deliveries[delivery_number]

    async def _confirm(self, number: int) -> dict[str, Any]:
        entry = self._deliveries.pop(number, None)
        if entry is None:
            raise AppApiProtocolError(
                f"no unconfirmed delivery {number}", ErrorCode.UNKNOWN_DELIVERY
            )
        owner, delivery = entry
        try:
            await delivery.done()
        except BaseException:
            self._deliveries.setdefault(number, entry)
            raise
        self._server.confirmed += 1
        registered = self._registrations.get(owner)
        if registered is not None:
            registered.credit.release()
        return {}

    async def _pump(self, number: int, registered: _Registered) -> None:
        with registered.scope:
            while True:
                await registered.credit.acquire()
                try:
                    delivery = await registered.registration.receive()
                except RegistrationClosedError:
                    return
                delivery_number = next(self._delivery_numbers)
                self._deliveries[delivery_number] = (number, delivery)
                bundle = delivery.bundle
                primary = bundle.primary
                push = DeliveryPush(
                    registration=number,
                    delivery=delivery_number,
                    bundle_id=delivery.bundle_id,
                    destination=str(primary.destination),
                    report_to=str(primary.report_to),
                    lifetime_ms=primary.lifetime_ms,
                    flags=int(primary.flags),
                    admin_record=primary.is_admin_record,
                    payload=delivery.payload,
                    security=tuple(
                        SecurityReport(
                            str(check.service),
                            check.target,
                            check.security_source,
                            check.context_id,
                            check.outcome,
                            check.key,
                            check.signer,
                        )
                        for check in delivery.security
                    ),
                )
                try:
                    await self._write(push)
                except _Gone:
                    assert self._nursery is not None
                    self._nursery.cancel_scope.cancel()
                    return
                self._server.deliveries += 1

    # -- writing --------------------------------------------------------------------------------

    async def _error(self, request_id: int | None, code: str, text: str) -> None:
        self._server.errors += 1
        logger.debug("application API connection %d: %s: %s", self._number, code, text)
        await self._write(ErrorReply(request_id, code, text))

    async def _write(self, message: ServerMessage) -> None:
        frame = encode_frame(encode_server_message(message))
        async with self._send_lock:
            try:
                await self._stream.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Gone from None


class _ConnectFailed(AppApiError):
    pass


def _error_for(exc: Exception) -> tuple[str, str]:
    """The error code and message an exception of the node becomes."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, _ConnectFailed):
        return ErrorCode.CONNECT_FAILED, text
    if isinstance(exc, StoreFullError):
        return ErrorCode.STORE_FULL, f"the node's store is full: {text}"
    if isinstance(exc, RegistrationError):
        return ErrorCode.ENDPOINT_BUSY, text
    if isinstance(exc, EndpointError):
        return ErrorCode.BAD_ENDPOINT, text
    if isinstance(exc, NodeNotRunningError):
        return ErrorCode.NODE_STOPPING, text
    if isinstance(exc, ConfigError | AgentUsageError | DecodeError | ValueError):
        return ErrorCode.BAD_REQUEST, text
    return ErrorCode.INTERNAL, f"the daemon failed to handle the request: {text}"
