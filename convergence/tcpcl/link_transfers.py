"""What the trio adapter hands out per transfer: :class:`TransferHandle` for ours (progress and
result), :class:`IncomingBundleTransfer` for the peer's (final XFER_ACK held back until
accepted), and the link's counters (:class:`LinkStatistics`, with the kernel's round-trip
time: :func:`tcp_round_trip_time`)."""

from __future__ import annotations

import enum
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .codes import XferRefuseReason
from .errors import LocalProtocolError
from .link_errors import LinkClosedError
from .messages import ExtensionItem
from .sink import MemorySink, TransferSink
from .state import SessionState

__all__ = [
    "DoneCallback",
    "IncomingBundleTransfer",
    "LinkStatistics",
    "ProgressCallback",
    "TransferHandle",
    "TransferOutcome",
    "TransferResult",
    "TransferStatus",
    "tcp_round_trip_time",
]

logger = logging.getLogger(__name__)

#: ``progress(acknowledged, total)``, called when the peer acknowledges part of a transfer.
ProgressCallback = Callable[[int, int], None]
#: ``callback(handle)``, called once a transfer ended (:meth:`TransferHandle.add_done_callback`).
DoneCallback = Callable[["TransferHandle"], None]


class TransferOutcome(enum.Enum):
    """How one of our transfers ended."""

    #: The peer acknowledged every octet (final XFER_ACK): it has the bundle.
    ACKED = "acked"
    #: The peer refused it (XFER_REFUSE); see the reason.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The end of one of our transfers."""

    outcome: TransferOutcome
    """Acknowledged or refused."""
    refuse_reason: XferRefuseReason | int | None = None
    """The peer's reason when refused (unknown codes stay ``int``)."""
    transfer_id: int = 0
    """The transfer's ID in its session."""


class TransferHandle:
    """One outgoing transfer, from :meth:`TcpclLink.start_send` to its result."""

    __slots__ = (
        "_callbacks",
        "_done",
        "_error",
        "_progress",
        "_result",
        "acknowledged",
        "data",
        "started",
        "transfer_id",
    )

    def __init__(self, transfer_id: int, data: bytes, progress: ProgressCallback | None) -> None:
        self.transfer_id = transfer_id
        """The Transfer ID in this session."""
        self.data = data
        """The bundle being sent."""
        self.acknowledged = 0
        """Octets the peer acknowledged so far (after the session ended: how far it got)."""
        self.started = trio.current_time()
        """When the transfer was queued (trio time)."""
        self._progress = progress
        self._result: TransferResult | None = None
        self._error: LinkClosedError | None = None
        self._done = trio.Event()
        self._callbacks: list[DoneCallback] | None = None

    @property
    def size(self) -> int:
        """Length of the bundle."""
        return len(self.data)

    @property
    def done(self) -> bool:
        """Whether the transfer ended (acknowledged, refused, or lost with the session)."""
        return self._done.is_set()

    @property
    def result(self) -> TransferResult | None:
        """The result, once acknowledged or refused."""
        return self._result

    async def wait(self) -> TransferResult:
        """Wait until the peer acknowledged the whole bundle or refused it.

        :raises LinkClosedError: the session ended first; send the bundle again elsewhere.
        """
        await self._done.wait()
        if self._result is None:
            assert self._error is not None
            raise self._error
        return self._result

    def add_done_callback(self, callback: DoneCallback) -> None:
        """Call ``callback(handle)`` once the transfer ended: acknowledged or refused
        (:attr:`result` is set), or lost with the session (:attr:`result` is ``None``). At once
        if it already ended. The callback runs synchronously in the link's task: it must not
        block; an exception it raises is logged and otherwise ignored. (Cheaper than a task
        awaiting :meth:`wait` per transfer: no task switch.)"""
        if self._done.is_set():
            self._run_callback(callback)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def _run_callback(self, callback: DoneCallback) -> None:
        try:
            callback(self)
        except Exception:
            logger.exception("done callback of transfer %d failed", self.transfer_id)

    def _ended(self) -> None:
        self._done.set()
        callbacks = self._callbacks
        if callbacks is not None:
            self._callbacks = None
            for callback in callbacks:
                self._run_callback(callback)

    def _acknowledge(self, length: int, total: int) -> None:
        self.acknowledged = length
        if self._progress is not None:
            try:
                self._progress(length, total)
            except Exception:
                logger.exception("progress callback of transfer %d failed", self.transfer_id)

    def _finish(self, result: TransferResult) -> None:
        self._result = result
        self._ended()

    def _fail(self, error: LinkClosedError) -> None:
        self._error = error
        self._ended()


class IncomingBundleTransfer:
    """A complete incoming transfer whose final XFER_ACK waits for :meth:`accept`. Its octets
    are in its :attr:`sink` (:meth:`read`; :attr:`data` for the default in-memory sink)."""

    __slots__ = (
        "_resolve_with",
        "_resolved",
        "acknowledged",
        "extensions",
        "length",
        "sink",
        "transfer_id",
    )

    def __init__(
        self,
        resolve: Callable[[int, XferRefuseReason | None], None],
        transfer_id: int,
        sink: TransferSink,
        extensions: tuple[ExtensionItem, ...],
        length: int,
        acknowledged: int = 0,
    ) -> None:
        self._resolve_with = resolve  # the link's: XFER_ACK (None) or XFER_REFUSE (reason)
        self._resolved = False
        self.transfer_id = transfer_id
        """The peer's Transfer ID."""
        self.sink = sink
        """Where the octets are (from the link's ``sink_factory``)."""
        self.extensions = extensions
        """The transfer extension items of its first segment."""
        self.length = length
        """Length of the transfer (the bundle's size)."""
        self.acknowledged = acknowledged
        """Octets acknowledged to the peer before the final XFER_ACK (every segment's but the
        last one's, unless the session ended first)."""

    @property
    def data(self) -> bytes:
        """The bundle's octets, when they are in memory (the default sink).

        :raises LocalProtocolError: the link's sink factory put them elsewhere; use
            :meth:`read`.
        """
        sink = self.sink
        if not isinstance(sink, MemorySink):
            raise LocalProtocolError("the transfer is in its sink: use read()")
        return sink.data()

    async def read(self) -> bytes:
        """The bundle's octets, from wherever its sink keeps them."""
        return await self.sink.read()

    async def accept(self) -> None:
        """Send the final XFER_ACK: the peer may now forget the bundle. Call it once the
        bundle is stored durably; the sink is released. After the session ended this sends
        nothing (the peer will send the bundle again, so keep one copy per bundle ID).

        :raises LocalProtocolError: already accepted or refused.
        """
        self._resolve()
        self._resolve_with(self.transfer_id, None)
        await self.sink.release()

    async def refuse(self, reason: XferRefuseReason = XferRefuseReason.UNKNOWN) -> None:
        """Refuse the transfer (XFER_REFUSE): the peer keeps its copy. The sink is released.

        :raises LocalProtocolError: already accepted or refused.
        """
        self._resolve()
        self._resolve_with(self.transfer_id, reason)
        await self.sink.release()

    def _resolve(self) -> None:
        if self._resolved:
            raise LocalProtocolError(f"incoming transfer {self.transfer_id} already resolved")
        self._resolved = True


@dataclass(frozen=True, slots=True)
class TransferStatus:
    """One transfer in progress on a link, in either direction."""

    outgoing: bool
    """Ours (``True``) or the peer's."""
    transfer_id: int
    """Its Transfer ID (the sender's)."""
    done: int
    """Octets acknowledged by the peer (ours) or taken by the sink (the peer's)."""
    total: int | None
    """Its length (``None``: a peer's transfer without a Transfer Length extension)."""
    started: float
    """When it started (trio time)."""


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Counters of one link, for logs, metrics and benchmarks."""

    state: SessionState
    """Where the session is in its life (RFC 9174 §3: contact header, SESS_INIT, up, ending)."""
    peer_node_id: str
    """The peer's Node ID."""
    tls: bool
    """Whether the session runs over TLS."""
    bytes_sent: int
    """Octets written (TCPCL level, before TLS)."""
    bytes_received: int
    """Octets read (TCPCL level, after TLS)."""
    transfers_sent: int
    """Our transfers acknowledged in full."""
    transfers_received: int
    """The peer's transfers received in full."""
    transfers_refused_by_peer: int
    """Our transfers the peer refused."""
    transfers_refused_by_us: int
    """The peer's transfers we refused."""
    transfers_pending: int
    """Our transfers queued or not yet acknowledged."""
    incoming_queued: int
    """Received transfers waiting for :meth:`TcpclLink.receive`."""
    keepalives_sent: int
    """KEEPALIVE messages sent."""
    in_flight: int = 0
    """Our octets sent and not yet acknowledged."""
    send_window: int | None = None
    """Most unacknowledged octets the send window allows now (``None``: unbounded)."""
    ack_rate: float | None = None
    """Measured rate of the peer's acknowledgements, octets per second."""
    bytes_acknowledged: int = 0
    """Octets of our transfers the peer acknowledged, in total."""
    transfers: tuple[TransferStatus, ...] = ()
    """Transfers in progress, both directions."""
    rtt_s: float | None = None
    """The kernel's smoothed round-trip time of the TCP connection (Linux ``TCP_INFO``), in
    seconds; ``None`` where the stream is no TCP socket or the system does not tell."""


#: Linux ``struct tcp_info`` up to ``tcpi_rttvar``: eight octets of small fields, then 32-bit
#: fields; ``tcpi_rtt`` (microseconds) is the sixteenth of those.
_TCP_INFO_LENGTH = 76
_TCP_INFO_RTT_OFFSET = 68


def tcp_round_trip_time(sock: trio.socket.SocketType) -> float | None:
    """The kernel's smoothed round-trip time of a TCP socket in seconds (Linux), else None."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_LENGTH)
    except OSError:
        return None  # closed meanwhile, or not a TCP socket
    if len(info) < _TCP_INFO_LENGTH:
        return None
    (microseconds,) = struct.unpack_from("=I", info, _TCP_INFO_RTT_OFFSET)
    return float(microseconds) / 1e6
