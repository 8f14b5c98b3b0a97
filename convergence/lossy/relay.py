"""A TCP relay that carries every connection through a lossy link.

:class:`LossyRelay` listens on a local address. For each connection it accepts it opens a
connection to the target and copies bytes both ways through a
:class:`~convergence.lossy.stream.LossyStream` wrapped around the target side, so both
directions get the link's latency, jitter, bandwidth cap and stalls, and the link's cuts reset
both TCP connections (client and target see ``ECONNRESET``). While the link is down, a new
connection is accepted and reset at once, without contacting the target. Half-closes pass
through: when one side shuts down its sending half, the other side sees end-of-stream after the
data before it.

Put a relay between two nodes by pointing one node's peer address at the relay's port::

    relay = LossyRelay(target=("127.0.0.1", 4556), link=LinkProfile(seed=7, drop_every=5.0))
    port = await nursery.start(relay.run)   # then connect to 127.0.0.1:port
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass

import trio

from .link import LossyLink
from .model import LinkProfile
from .stream import DEFAULT_MAX_IN_FLIGHT, DEFAULT_SEGMENT_SIZE, LossyStream, _reset_on_close

__all__ = ["LossyRelay", "RelayStatistics"]

logger = logging.getLogger(__name__)

# accept() errors that mean "out of resources for now": wait and retry instead of dying.
_ACCEPT_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


@dataclass(frozen=True, slots=True)
class RelayStatistics:
    """Counters of one relay since it started."""

    connections: int
    """Client connections relayed to the target."""
    active: int
    """Connections being relayed now."""
    refused: int
    """Client connections reset at once because the link was down."""
    target_failures: int
    """Client connections reset because the target could not be reached."""
    cuts: int
    """Relayed connections cut by the link (schedule, down window, byte budget, by hand)."""
    bytes_to_target: int
    """Bytes delivered from clients to the target."""
    bytes_to_client: int
    """Bytes delivered from the target to clients."""
    down: bool
    """Whether the link is down now."""


async def _open_listener(host: str, port: int) -> trio.SocketListener:
    """Listen on exactly one address (port 0: the system picks a free port)."""
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(f"cannot resolve {host!r}")
    family, type_, proto, _, address = infos[0]
    sock = trio.socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


class LossyRelay:
    """Relay TCP connections from ``listen`` to ``target`` through a lossy link.

    ``link`` is a :class:`~convergence.lossy.link.LossyLink` to share (e.g. with a partition
    controller), or a :class:`~convergence.lossy.model.LinkProfile` (a perfect link if None)
    for a link made when :meth:`run` starts, whose schedule then starts at that moment.
    ``name`` appears in log lines. ``connect_timeout`` bounds each connection attempt to the
    target; ``segment_size`` and ``max_in_flight`` are passed to each
    :class:`~convergence.lossy.stream.LossyStream`.
    """

    def __init__(
        self,
        *,
        target: tuple[str, int],
        link: LossyLink | LinkProfile | None = None,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        name: str = "relay",
        connect_timeout: float = 10.0,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.name = name
        """The relay's name, used for its link and in log lines."""
        self.target = target
        """Where relayed connections go: ``(host, port)``."""
        self.listen = listen
        """Where the relay listens: ``(host, port)``; port 0 picks a free port."""
        self._link = link if isinstance(link, LossyLink) else None
        self._profile = link if isinstance(link, LinkProfile) else None
        self._pending_down = False
        self._connect_timeout = connect_timeout
        self._segment_size = segment_size
        self._max_in_flight = max_in_flight
        self._address: tuple[str, int] | None = None
        self._target_failures = 0

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the relay is listening on; only once :meth:`run` has started."""
        if self._address is None:
            raise RuntimeError("the relay is not running yet")
        return self._address

    @property
    def port(self) -> int:
        """The port the relay is listening on; only once :meth:`run` has started."""
        return self.address[1]

    @property
    def link(self) -> LossyLink:
        """The link the relay carries connections over; only once :meth:`run` has started,
        unless one was given."""
        if self._link is None:
            raise RuntimeError("the relay's link is made when run() starts")
        return self._link

    def set_down(self, down: bool) -> None:
        """Switch the link down (cut every relayed connection, refuse new ones) or back up."""
        if self._link is None:
            self._pending_down = down
        else:
            self._link.set_down(down)

    def cut_all(self) -> int:
        """Cut every relayed connection now; return how many were cut."""
        return 0 if self._link is None else self._link.cut_all()

    def statistics(self) -> RelayStatistics:
        """The relay's counters now."""
        if self._link is None:
            return RelayStatistics(0, 0, 0, self._target_failures, 0, 0, 0, self._pending_down)
        link = self._link.statistics()
        return RelayStatistics(
            connections=link.connections,
            active=link.active,
            refused=link.refused,
            target_failures=self._target_failures,
            cuts=link.cuts,
            bytes_to_target=link.bytes_forward,
            bytes_to_client=link.bytes_backward,
            down=link.down,
        )

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and relay until cancelled; ``task_status.started`` reports the bound port."""
        if self._link is None:
            self._link = LossyLink(self._profile, name=self.name)
            self._link.set_down(self._pending_down)
        listener = await _open_listener(*self.listen)
        async with listener:
            host, port = listener.socket.getsockname()[:2]
            self._address = (host, port)
            logger.info("relay %s listening on %s:%d -> %s:%d", self.name, host, port, *self.target)
            async with trio.open_nursery() as nursery:
                task_status.started(port)
                while True:
                    try:
                        client = await listener.accept()
                    except OSError as exc:
                        if exc.errno not in _ACCEPT_RETRY_ERRNOS:
                            raise
                        logger.warning("relay %s: accept failed (%s); retrying", self.name, exc)
                        await trio.sleep(0.1)
                        continue
                    nursery.start_soon(self._relay, client)

    async def _relay(self, client: trio.SocketStream) -> None:
        try:
            await self._relay_to_target(client)
        finally:
            with trio.CancelScope(shield=True):  # also when the relay is being cancelled
                await trio.aclose_forcefully(client)

    async def _relay_to_target(self, client: trio.SocketStream) -> None:
        link = self.link
        if link.is_down():
            link._refuse()
            logger.info("relay %s: link down, connection refused", self.name)
            await _reset(client)
            return
        try:
            with trio.fail_after(self._connect_timeout):
                target = await trio.open_tcp_stream(*self.target)
        except (OSError, trio.TooSlowError) as exc:
            self._target_failures += 1
            logger.warning("relay %s: cannot reach %s:%d: %s", self.name, *self.target, exc)
            await _reset(client)
            return
        stream = LossyStream(
            target, link, segment_size=self._segment_size, max_in_flight=self._max_in_flight
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(stream.run)
            failed = False
            try:
                async with trio.open_nursery() as copiers:
                    copiers.start_soon(self._copy_to_target, client, stream)
                    copiers.start_soon(self._copy_to_client, stream, client)
            except* (trio.BrokenResourceError, trio.ClosedResourceError):
                failed = True
            if failed or stream.is_cut:
                await _reset(client)
                await trio.aclose_forcefully(stream)
            else:
                await client.aclose()
                await stream.aclose()

    async def _copy_to_target(self, client: trio.SocketStream, stream: LossyStream) -> None:
        while True:
            data = await client.receive_some(self._segment_size)
            if not data:
                await stream.send_eof()
                return
            await stream.send_all(data)

    async def _copy_to_client(self, stream: LossyStream, client: trio.SocketStream) -> None:
        while True:
            data = await stream.receive_some(self._segment_size)
            if not data:
                await client.send_eof()
                return
            await client.send_all(data)


async def _reset(stream: trio.SocketStream) -> None:
    """Close a TCP connection with a reset."""
    _reset_on_close(stream)
    await trio.aclose_forcefully(stream)
