"""The sending side of a session: our transfers, cut into segments on demand, and the
peer's acknowledgements and refusals of them (RFC 9174 §5.2). Private to
:mod:`convergence.tcpcl`; used by ``Session``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .codes import SegmentFlags, TransferExtensionType
from .events import Event, TransferCompleted, TransferProgress, TransferRefused
from .messages import ExtensionItem, XferAck, XferRefuse, encode_segment_header

__all__ = ["OutgoingTransfer", "TransferSender"]


@dataclass(slots=True, eq=False)
class OutgoingTransfer:
    """One of our transfers, from ``send_transfer`` to its final XFER_ACK or XFER_REFUSE."""

    transfer_id: int
    data: memoryview
    extensions: tuple[ExtensionItem, ...]
    offset: int = 0
    """Octets already cut into segments."""
    acknowledged: int = 0
    """Highest acknowledged length received."""
    started: bool = False
    """Whether its first segment was produced (it is then "in progress", RFC 9174 §6.1)."""
    refused: bool = False

    @property
    def length(self) -> int:
        return len(self.data)


#: Shortest interval over which an acknowledgement rate is measured (shorter ones are noise).
_RATE_INTERVAL = 0.05


class AckRate:
    """The rate at which the peer acknowledges our octets, measured only while octets are in
    flight (an idle link says nothing about its speed). Time is an argument."""

    __slots__ = ("_mark_acked", "_mark_time", "acked", "rate")

    def __init__(self) -> None:
        #: Octets acknowledged in total.
        self.acked = 0
        #: Smoothed octets per second, ``None`` until measured.
        self.rate: float | None = None
        self._mark_time: float | None = None
        self._mark_acked = 0

    def start(self, now: float) -> None:
        """Octets went in flight after an idle period: measure from now."""
        if self._mark_time is None:
            self._mark_time, self._mark_acked = now, self.acked

    def stop(self) -> None:
        """Nothing is in flight any more: stop measuring until :meth:`start`."""
        self._mark_time = None

    def acknowledged(self, octets: int, now: float) -> None:
        """The peer acknowledged ``octets`` more."""
        self.acked += octets
        mark = self._mark_time
        if mark is None:
            return
        elapsed = now - mark
        if elapsed >= _RATE_INTERVAL:
            sample = (self.acked - self._mark_acked) / elapsed
            self.rate = sample if self.rate is None else (self.rate + sample) / 2
            self._mark_time, self._mark_acked = now, self.acked


class TransferSender:
    """Our transfer stream: a queue of bundles, segmented lazily so that a refusal stops a
    transfer at the next segment boundary and acknowledgements can be sent in between.

    With a send window (``window_min``), a segment starts only while fewer than
    :meth:`window` octets are unacknowledged."""

    __slots__ = (
        "_active",
        "_events",
        "_first_id",
        "_queue",
        "_window_delay",
        "_window_min",
        "ack_rate",
        "completed",
        "in_flight",
        "next_id",
        "refused",
    )

    def __init__(
        self,
        first_transfer_id: int,
        events: list[Event],
        *,
        window_min: int | None = None,
        window_delay: float = 0.25,
    ) -> None:
        self._events = events
        self._queue: deque[OutgoingTransfer] = deque()  # segments left to produce
        self._active: dict[int, OutgoingTransfer] = {}  # started, not yet finished
        self._first_id = first_transfer_id
        self._window_min = window_min
        self._window_delay = window_delay
        #: The Transfer ID the next queued transfer gets.
        self.next_id = first_transfer_id
        #: Counters: transfers acknowledged in full, transfers refused by the peer.
        self.completed = 0
        self.refused = 0
        #: Octets sent in segments and not yet acknowledged (nor refused).
        self.in_flight = 0
        #: How fast the peer acknowledges.
        self.ack_rate = AckRate()

    def window(self) -> int | None:
        """Most unacknowledged octets allowed now (``None``: no bound)."""
        least = self._window_min
        if least is None:
            return None
        rate = self.ack_rate.rate
        if rate is None:
            return least
        return max(least, int(rate * self._window_delay))

    def _window_open(self) -> bool:
        window = self.window()
        return window is None or self.in_flight < window

    @property
    def busy(self) -> bool:
        """Whether a started transfer awaits its final acknowledgement (RFC 9174 §6.1: it may
        still finish while the session is Ending)."""
        return bool(self._active)

    @property
    def has_queued(self) -> bool:
        """Whether transfers are queued or in progress."""
        return bool(self._queue or self._active)

    def ready(self, *, may_start: bool) -> bool:
        """Whether :meth:`next_segment` would produce a segment now."""
        if not self._window_open():
            return False
        for transfer in self._queue:
            if not transfer.refused:
                return transfer.started or may_start
        return False

    def queue(
        self,
        data: memoryview,
        extensions: tuple[ExtensionItem, ...],
        *,
        segment_size: int,
        add_transfer_length: bool,
    ) -> int:
        """Queue a bundle; return its Transfer ID (the caller checked the ID space)."""
        transfer_id = self.next_id
        self.next_id += 1
        if (
            add_transfer_length
            and len(data) > segment_size
            and not any(i.item_type == TransferExtensionType.TRANSFER_LENGTH for i in extensions)
        ):
            # RFC 9174 §5.2.5.1: "If a transfer occupies exactly one segment [...] the
            # Transfer Length extension SHOULD NOT be present."
            extensions += (ExtensionItem.transfer_length(len(data)),)
        self._queue.append(OutgoingTransfer(transfer_id, data, extensions))
        return transfer_id

    def next_segment(
        self,
        out: deque[bytes | memoryview],
        *,
        segment_size: int,
        may_start: bool,
        now: float = 0.0,
    ) -> bool:
        """Append the next segment's header and data to ``out``; ``False`` if there is none
        (or the send window is full).

        ``may_start=False`` (the session is Ending) only continues a transfer already begun:
        RFC 9174 §6.1: "While the session is in the Ending state, an entity SHALL NOT begin
        any new outgoing transfer for the remainder of the session."
        """
        if not self._window_open():
            return False
        queue = self._queue
        while queue:
            transfer = queue[0]
            if transfer.refused:
                queue.popleft()
                continue
            if not transfer.started:
                if not may_start:
                    return False
                transfer.started = True
                self._active[transfer.transfer_id] = transfer
            offset = transfer.offset
            # RFC 9174 §5.2: "each segment MUST NOT be larger than the receiving entity's
            # maximum receive unit (MRU)".
            size = min(segment_size, transfer.length - offset)
            # RFC 9174 §5.2.2: "The 'START' flag SHALL be set to 1 when transmitting the first
            # segment of a transfer. The 'END' flag SHALL be set to 1 when transmitting the
            # last segment of a transfer."
            flags = SegmentFlags.START if offset == 0 else SegmentFlags(0)
            if offset + size == transfer.length:
                flags |= SegmentFlags.END
                queue.popleft()
            extensions = transfer.extensions if offset == 0 else ()
            out.append(encode_segment_header(flags, transfer.transfer_id, size, extensions))
            if size:
                out.append(transfer.data[offset : offset + size])
            transfer.offset = offset + size
            if size:
                self.ack_rate.start(now)
                self.in_flight += size
            return True
        return False

    def on_ack(self, ack: XferAck, now: float = 0.0) -> bool:
        """Handle an XFER_ACK; ``False`` if it is unexpected (answer with MSG_REJECT)."""
        transfer = self._active.get(ack.transfer_id)
        if transfer is None:
            # A late ack of a transfer refused or completed already is harmless; RFC 9174
            # §5.1.2 lists "an XFER_ACK message with an unknown Transfer ID" as unexpected.
            return self._issued(ack.transfer_id)
        length = ack.acknowledged_length
        if length > transfer.offset or length < transfer.acknowledged:
            return False
        end = SegmentFlags.END in ack.flags
        if end and length != transfer.length:
            return False
        self._acknowledged(length - transfer.acknowledged, now)
        if end:
            transfer.acknowledged = length
            del self._active[ack.transfer_id]
            self.completed += 1
            self._events.append(TransferCompleted(ack.transfer_id, length))
        else:
            transfer.acknowledged = length
            self._events.append(TransferProgress(ack.transfer_id, length, transfer.length))
        return True

    def on_refuse(self, refuse: XferRefuse) -> bool:
        """Handle an XFER_REFUSE; ``False`` if it names no transfer of ours."""
        transfer = self._active.pop(refuse.transfer_id, None)
        if transfer is None:
            # A repeated refusal, or one crossing the final XFER_ACK.
            return self._issued(refuse.transfer_id)
        # RFC 9174 §5.2.4: "If a sender receives a XFER_REFUSE message, the sender MUST
        # complete the transmission of any partially sent XFER_SEGMENT message. [...] The
        # sender MUST NOT commence transmission of any further segments of the refused
        # bundle subsequently." (The session finishes the message being written;
        # ``next_segment`` skips the transfer.)
        transfer.refused = True
        self.refused += 1
        self._forget_in_flight(transfer.offset - transfer.acknowledged)
        self._events.append(
            TransferRefused(refuse.transfer_id, refuse.reason, transfer.acknowledged)
        )
        return True

    def _acknowledged(self, octets: int, now: float) -> None:
        if octets:
            self.ack_rate.acknowledged(octets, now)
            self._forget_in_flight(octets)

    def _forget_in_flight(self, octets: int) -> None:
        self.in_flight -= octets
        if self.in_flight <= 0:
            self.in_flight = 0
            self.ack_rate.stop()

    def progress(self) -> list[tuple[int, int, int]]:
        """``(transfer ID, acknowledged, length)`` of every started transfer not yet finished."""
        return [(t.transfer_id, t.acknowledged, t.length) for t in self._active.values()]

    def unacknowledged(self) -> tuple[int, ...]:
        """IDs of transfers neither completed nor refused (started or not)."""
        ids = set(self._active)
        ids.update(t.transfer_id for t in self._queue if not t.refused)
        return tuple(sorted(ids))

    def _issued(self, transfer_id: int) -> bool:
        return self._first_id <= transfer_id < self.next_id
