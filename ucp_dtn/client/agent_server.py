"""The serving part of the client agent (:mod:`.agent` has the theory): the socket, one task per
command, the client's node, the idle watch.

Each connection carries one request (:mod:`.agent_protocol`). Its task reads the request, runs
the operation in a cancel scope and sends the events and the answer; meanwhile it watches the
connection, and when the command goes away (Ctrl-C) it cancels the scope — the operations shield
what changes state, so a submission, a put or a cancel that started is finished. Frames of one
connection are sent one at a time (a lock), whichever task sends them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import trio

from .agent_protocol import (
    PROTOCOL_VERSION,
    FrameDecoder,
    ProtocolError,
    encode_frame,
)
from .errors import ClientError, ClientUsageError
from .node import ClientNode
from .operations import OPERATIONS, run_operation
from .settings import ClientSettings

__all__ = ["ClientAgent"]

logger = logging.getLogger(__name__)

_WATCH_S = 1.0
_LOG_FLUSH_S = 0.05
_READ_SIZE = 1 << 16
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def peer_uid(sock: socket.socket) -> int:
    """The user ID of the process at the other end of a Unix socket."""
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return int(uid)


class _Connection:
    """One command's connection: frames in and out."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._decoder = FrameDecoder()
        self._frames: list[dict[str, Any]] = []
        self._send_lock = trio.Lock()
        self.gone = False

    async def receive(self) -> dict[str, Any] | None:
        while not self._frames:
            data = await self.stream.receive_some(_READ_SIZE)
            if not data:
                return None
            self._frames.extend(self._decoder.feed(data))
        return self._frames.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        async with self._send_lock:
            try:
                await self.stream.send_all(encode_frame(message))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.gone = True


class _LogForwarder(logging.Handler):
    """Keeps the agent's log lines for the commands that asked for them (``-v``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(_LOG_FORMAT))
        self.listeners: dict[int, tuple[int, deque[str]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not self.listeners:
            return
        try:
            line = self.format(record)
        except Exception:
            return
        for level, lines in list(self.listeners.values()):
            if record.levelno >= level:
                lines.append(line)

    @contextlib.contextmanager
    def listening(self, level: int) -> Iterator[deque[str]]:
        lines: deque[str] = deque(maxlen=10_000)
        key = id(lines)
        self.listeners[key] = (level, lines)
        try:
            yield lines
        finally:
            del self.listeners[key]


class ClientAgent:
    """The agent of one home (see :mod:`.agent`)."""

    def __init__(
        self, home: Path, address: str | bytes, *, idle_s: float, linger_s: float, build: str
    ) -> None:
        self.home = home
        self.address = address
        self.idle_s = idle_s
        self.linger_s = linger_s
        self.build = build
        self.started_at = time.time()
        self.requests = 0
        self._connections = 0
        self._last_activity = 0.0
        self._node: ClientNode | None = None
        self._node_scope: trio.CancelScope | None = None
        self._node_stopped: trio.Event | None = None
        self._node_users = 0
        self._node_idle = trio.Event()
        self._node_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self._stopping = trio.Event()
        self._logs = _LogForwarder()

    # -- the process ------------------------------------------------------------------------------

    def start(self, *, ready: Callable[[str], None]) -> int:
        """Serve until stopped; ``ready`` reports the start to the command that asked for it."""
        logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT, stream=sys.stderr)
        logging.getLogger().addHandler(self._logs)
        logger.info("client agent of %s starting (pid %d)", self.home, os.getpid())
        try:
            listener = self._bind()
        except OSError as exc:
            ready(f"error cannot listen on {self.address!r}: {exc.strerror or exc}")
            return 1
        try:
            trio.run(self._serve, listener, ready)
        except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled as a stop
            pass
        finally:
            self._unbind()
        logger.info("client agent of %s stopped", self.home)
        return 0

    def _bind(self) -> socket.socket:
        if isinstance(self.address, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.address)
        finally:
            os.umask(old_umask)
        sock.listen(64)
        return sock

    def _unbind(self) -> None:
        if isinstance(self.address, str):
            with contextlib.suppress(OSError):
                os.unlink(self.address)

    async def _serve(self, listening: socket.socket, ready: Callable[[str], None]) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(listening))
        self._last_activity = trio.current_time()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._watch)
            nursery.start_soon(self._signals)
            nursery.start_soon(self._accept, listener, nursery)
            ready("ready")
            logger.info("client agent ready at %r", self.address)
            await self._stopping.wait()
            logger.info("client agent stopping")
            await self._stop_node()
            nursery.cancel_scope.cancel()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for number in signals:
                logger.info("client agent: %s", signal.Signals(number).name)
                self._stopping.set()

    async def _accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            stream = await listener.accept()
            nursery.start_soon(self._handle, stream)

    async def _watch(self) -> None:
        """Stop when idle (see :mod:`.agent`) or when the home is gone."""
        while True:
            await trio.sleep(_WATCH_S)
            if not self.home.is_dir() or (
                isinstance(self.address, str) and not os.path.exists(self.address)
            ):
                logger.warning("client agent: the home %s or its socket is gone", self.home)
                self._stopping.set()
                return
            if self._connections:
                continue
            quiet = trio.current_time() - self._last_activity
            waiting = 0 if self._node is None else self._node.waiting_bundles()
            if quiet >= self.idle_s and waiting == 0:
                logger.info("client agent idle for %.0f s", quiet)
                self._stopping.set()
                return
            if quiet >= max(self.idle_s, self.linger_s):
                logger.warning(
                    "client agent idle for %.0f s: %d bundles still wait in the store; they "
                    "leave with the next command",
                    quiet,
                    waiting,
                )
                self._stopping.set()
                return

    # -- the node --------------------------------------------------------------------------------

    async def _acquire_node(self, settings: ClientSettings) -> ClientNode:
        async with self._node_lock:
            if self._node is not None and not self._node.fits(settings):
                while self._node_users:
                    await self._node_idle.wait()
                logger.info("client agent: restarting the node with other discovery settings")
                await self._stop_node()
            if self._node is None:
                assert self._nursery is not None
                await self._nursery.start(self._run_node, settings)
            assert self._node is not None
            self._node_users += 1
            return self._node

    def _release_node(self) -> None:
        self._node_users -= 1
        if self._node_users == 0:
            self._node_idle.set()
            self._node_idle = trio.Event()

    async def _run_node(
        self,
        settings: ClientSettings,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        stopped = trio.Event()
        self._node_stopped = stopped
        try:
            with trio.CancelScope() as scope:
                self._node_scope = scope
                # Stopping gives waiting bundles a few seconds, however large they are.
                async with ClientNode.open(settings, patient_drain=False) as node:
                    self._node = node
                    logger.info("client node %s running", node.node.node_id)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._node = None
            self._node_scope = None
            stopped.set()

    async def _stop_node(self) -> None:
        if self._node_scope is not None and self._node_stopped is not None:
            stopped = self._node_stopped
            self._node_scope.cancel()
            await stopped.wait()

    # -- one command ------------------------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        connection = _Connection(stream)
        try:
            async with stream:
                if peer_uid(stream.socket) != os.getuid():  # type: ignore[arg-type]
                    logger.warning("client agent: refusing a connection of another user")
                    return
                try:
                    request = await connection.receive()
                except ProtocolError as exc:
                    await connection.send({"error": f"bad request: {exc}", "status": 2})
                    return
                if request is None:
                    return
                self.requests += 1
                await self._answer(connection, request)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _answer(self, connection: _Connection, request: dict[str, Any]) -> None:
        if request.get("v") != PROTOCOL_VERSION or request.get("build") != self.build:
            # A command of other code: this agent makes way for one that speaks its language.
            await connection.send({"error": "stale client agent", "status": 1, "stale": True})
            logger.info("client agent: a command of other code asked; stopping for a new agent")
            self._stopping.set()
            return
        op = str(request.get("op", ""))
        if op == "agent-status":
            await connection.send({"done": self.status()})
            return
        if op == "agent-stop":
            await connection.send({"done": {"stopping": True, "pid": os.getpid()}})
            self._stopping.set()
            return
        # A command at work keeps the agent alive (asking how it is, above, does not).
        self._connections += 1
        self._last_activity = trio.current_time()
        try:
            await self._serve_operation(connection, op, request)
        finally:
            self._connections -= 1
            self._last_activity = trio.current_time()

    async def _serve_operation(
        self, connection: _Connection, op: str, request: dict[str, Any]
    ) -> None:
        verbose = int(request.get("verbose") or 0)
        level = logging.DEBUG if verbose > 1 else logging.INFO
        with self._logs.listening(level) if verbose else contextlib.nullcontext() as lines:
            async with trio.open_nursery() as nursery:
                if lines is not None:
                    nursery.start_soon(self._forward_logs, connection, lines)
                reply = await self._operate(connection, op, request, nursery)
                if lines is not None:
                    await self._flush_logs(connection, lines)
                await connection.send(reply)
                nursery.cancel_scope.cancel()

    async def _operate(
        self, connection: _Connection, op: str, request: dict[str, Any], nursery: trio.Nursery
    ) -> dict[str, Any]:
        if op not in OPERATIONS:
            return {"error": f"unknown request {op!r}", "status": 2}
        try:
            settings = ClientSettings.from_plain(dict(request.get("settings") or {}))
        except ClientUsageError as exc:
            return {"error": str(exc), "status": exc.status}
        if settings.home_path.resolve() != self.home.resolve():
            return {"error": f"this is the agent of {self.home}, not {settings.home}", "status": 2}
        args = dict(request.get("args") or {})
        with trio.CancelScope() as scope:
            nursery.start_soon(self._watch_connection, connection, scope)
            try:
                node = await self._acquire_node(settings)
            except ClientError as exc:
                return {"error": str(exc), "status": exc.status}
            try:
                document = await run_operation(node, settings, op, args, connection.send)
                return {"done": document}
            except ClientError as exc:
                return {"error": str(exc), "status": exc.status}
            except Exception as exc:
                logger.exception("client agent: %s failed", op)
                return {"error": f"client agent: {op} failed: {exc}", "status": 1}
            finally:
                self._release_node()
        logger.info("client agent: the command of a %s went away", op)
        return {"error": "interrupted", "status": 130}

    async def _watch_connection(self, connection: _Connection, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` when the command closes its end (it was interrupted)."""
        try:
            while await connection.stream.receive_some(_READ_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        connection.gone = True
        scope.cancel()

    async def _forward_logs(self, connection: _Connection, lines: deque[str]) -> None:
        while True:
            await trio.sleep(_LOG_FLUSH_S)
            await self._flush_logs(connection, lines)

    async def _flush_logs(self, connection: _Connection, lines: deque[str]) -> None:
        while lines:
            await connection.send({"event": "log", "line": lines.popleft()})

    def status(self) -> dict[str, Any]:
        """What ``ucp agent status`` shows."""
        node = self._node
        document: dict[str, Any] = {
            "pid": os.getpid(),
            "home": str(self.home),
            "socket": self.address if isinstance(self.address, str) else repr(self.address),
            "started_at": self.started_at,
            "requests": self.requests,
            "commands": self._connections,
            "idle_s": self.idle_s,
            "linger_s": self.linger_s,
            "node": None,
            "peers": [],
            "waiting_bundles": 0,
            "broker": None,
        }
        if node is not None:
            document["node"] = str(node.node.node_id)
            document["peers"] = [
                {"node_id": peer.node_id, "address": f"{peer.address[0]}:{peer.address[1]}"}
                for peer in node.node.peers()
            ]
            document["waiting_bundles"] = node.waiting_bundles()
            document["broker"] = None if node.broker is None else str(node.broker)
        return document
