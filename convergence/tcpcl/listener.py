"""Opening TCPCLv4 sessions: :func:`open_link` (active), :class:`TcpclListener` (passive), and
:func:`open_stream_link` for any trio stream (in-memory pairs, lossy links in tests).

Each establishes a :class:`~convergence.tcpcl.link.TcpclLink` in the calling task, then runs
its reader, writer and timer in a nursery for as long as the link is in use, and closes it
cleanly at the end (SESS_TERM, transfers in progress finish).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .link import LinkConfig, TcpclLink
from .link_errors import EstablishmentError, LinkConnectError, LinkError

__all__ = ["LinkHandler", "ListenerStatistics", "TcpclListener", "open_link", "open_stream_link"]

logger = logging.getLogger(__name__)

#: What a listener does with each established session; the link is closed when it returns.
LinkHandler = Callable[[TcpclLink], Awaitable[None]]


@asynccontextmanager
async def open_link(host: str, port: int, config: LinkConfig) -> AsyncIterator[TcpclLink]:
    """Connect to a TCPCLv4 peer and establish a session (we are the active entity).

    Yields the established link; on exit the session is closed cleanly (if the body raised,
    it is aborted).

    :raises LinkConnectError: the TCP connection failed (refused, unreachable, timeout).
    :raises EstablishmentError: the session could not be established; subclasses
        :class:`~convergence.tcpcl.link_errors.EstablishmentTimeout`,
        :class:`~convergence.tcpcl.link_errors.TlsError`,
        :class:`~convergence.tcpcl.link_errors.TlsRequiredError`,
        :class:`~convergence.tcpcl.link_errors.NodeIdMismatchError`.
    """
    try:
        with trio.fail_after(config.establish_timeout_s):
            stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise LinkConnectError(f"cannot connect to {host}:{port}: {_os_error_text(exc)}") from exc
    except trio.TooSlowError:
        raise LinkConnectError(
            f"cannot connect to {host}:{port}: no answer within {config.establish_timeout_s} s"
        ) from None
    _set_nodelay(stream)
    server_hostname = None if _is_ip_literal(host) else host
    async with open_stream_link(
        stream, config, active=True, peer_address=(host, port), server_hostname=server_hostname
    ) as link:
        yield link


@asynccontextmanager
async def open_stream_link(
    stream: trio.abc.Stream,
    config: LinkConfig,
    *,
    active: bool,
    peer_address: tuple[str, int] = ("", 0),
    server_hostname: str | None = None,
) -> AsyncIterator[TcpclLink]:
    """Establish a session over an already connected ``stream`` and yield the link.

    The stream is closed on exit, and if establishment fails.

    :param active: whether we are the active entity (we send our contact header first and
        are the TLS client).
    :param peer_address: shown in logs and :attr:`TcpclLink.peer_address`.
    :param server_hostname: SNI name for TLS when active.
    :raises EstablishmentError: as for :func:`open_link`.
    """
    link = TcpclLink(
        stream, config, active=active, peer_address=peer_address, server_hostname=server_hostname
    )
    await _establish(link)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link._run)
            try:
                yield link
            except BaseException:
                link.abort()
                raise
            await link.aclose()
    except BaseExceptionGroup as group:
        # The tasks of the link do not raise, so the group holds the body's one exception.
        if len(group.exceptions) == 1:
            exc = group.exceptions[0]
            raise exc from exc.__cause__
        raise  # pragma: no cover


async def _establish(link: TcpclLink) -> None:
    try:
        await link._establish()
    except BaseException:
        await link._close_stream()
        raise


@dataclass(frozen=True, slots=True)
class ListenerStatistics:
    """Counters of one listener since it started."""

    accepted: int
    """TCP connections accepted."""
    established: int
    """Sessions established."""
    failed: int
    """Connections whose session could not be established."""
    active: int
    """Sessions running now."""


class TcpclListener:
    """Accept TCPCLv4 sessions (we are the passive entity) and hand each to ``handler``.

    Each accepted connection is established in its own task; then ``handler(link)`` is
    awaited there, and the link is closed cleanly when it returns. A
    :class:`~convergence.tcpcl.link_errors.LinkError` raised by the handler (the session ended
    under it) is logged; any other exception ends the listener, as with ``trio.serve_tcp``.
    """

    def __init__(
        self,
        config: LinkConfig,
        handler: LinkHandler,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.bound: tuple[str, int] | None = None
        """The ``(host, port)`` listened on, once :meth:`run` has started."""
        self._handler = handler
        self._accepted = 0
        self._established = 0
        self._failed = 0
        self._active = 0

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen until cancelled; ``task_status.started`` reports the bound ``(host, port)``."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        host, port = listeners[0].socket.getsockname()[:2]
        self.bound = (host, port)
        logger.info("TCPCL listening on %s:%d", host, port)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._serve, listeners)
            task_status.started(self.bound)

    def statistics(self) -> ListenerStatistics:
        """The listener's counters now."""
        return ListenerStatistics(self._accepted, self._established, self._failed, self._active)

    async def _serve(self, stream: trio.SocketStream) -> None:
        self._accepted += 1
        _set_nodelay(stream)
        try:
            peer = stream.socket.getpeername()
            address = (str(peer[0]), int(peer[1]))
        except OSError:
            address = ("", 0)
        try:
            async with open_stream_link(
                stream, self.config, active=False, peer_address=address
            ) as link:
                self._established += 1
                self._active += 1
                try:
                    await self._handler(link)
                except LinkError as exc:
                    logger.info("session with %s ended under its handler: %s", address, exc)
                finally:
                    self._active -= 1
        except EstablishmentError as exc:
            self._failed += 1
            logger.info("no session with %s:%d: %s", *address, exc)


def _set_nodelay(stream: trio.SocketStream) -> None:
    # One write per message (or batch of messages) goes out at once: TCPCL messages are small
    # and latency matters for acknowledgements (trio sets this already; be explicit).
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _os_error_text(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
