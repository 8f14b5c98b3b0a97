"""The receiving side of a session: the peer's transfers, their acknowledgements and
refusals (RFC 9174 §5.2). Private to :mod:`convergence.tcpcl`; used by ``Session``."""

from __future__ import annotations

import logging
import struct
from bisect import bisect_right
from dataclasses import dataclass, field

from .codes import MessageType, MsgRejectReason, SegmentFlags, XferRefuseReason
from .config import SessionConfig
from .errors import DecodeError, LocalProtocolError, RemoteProtocolError
from .events import (
    Event,
    IncomingTransfer,
    IncomingTransferAborted,
    SegmentReceived,
    TransferReceived,
)
from .messages import ExtensionItem, XferSegment, find_transfer_length

__all__ = ["Reception", "TransferIdSet", "TransferReceiver"]

logger = logging.getLogger(__name__)

_XFER_ACK = struct.Struct(">BBQQ")
_XFER_REFUSE = struct.Struct(">BBQ")


@dataclass(slots=True, eq=False)
class Reception:
    """One of the peer's transfers, from its START segment until resolved: every segment
    acknowledged (final XFER_ACK sent) or the transfer refused."""

    transfer_id: int
    extensions: tuple[ExtensionItem, ...]
    received: int = 0
    """Sum of the data lengths received so far."""
    total_length: int | None = None
    """Announced by the Transfer Length extension item, if any."""
    pieces: list[bytes | memoryview] = field(default_factory=list)
    """Received data, when reassembling."""
    unacked: list[tuple[SegmentFlags, int]] = field(default_factory=list)
    """(flags, cumulative length) of each segment received but not yet acknowledged."""
    ended: bool = False
    """Whether the END segment arrived."""
    refusal: XferRefuseReason | None = None
    """Our refusal reason, once refused."""
    refusal_sent: bool = False
    """Whether the XFER_REFUSE was queued (it may wait for earlier transfers' acks)."""

    def assemble(self) -> bytes:
        """The received data as one ``bytes`` (no copy when it arrived as one ``bytes``)."""
        pieces = self.pieces
        self.pieces = []
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]
        return b"".join(pieces)


class TransferIdSet:
    """A set of 64-bit Transfer IDs stored as sorted disjoint ranges.

    RFC 9174 §5.2.1: "Transfer IDs from each entity SHALL be unique within a single TCPCL
    session." Peers count up from zero (§5.2.1), so the set is usually one range and stays
    small however long the session lives.
    """

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []  # exclusive

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect_right(self._starts, value) - 1
        return i >= 0 and value < self._ends[i]

    def __len__(self) -> int:
        return sum(end - start for start, end in zip(self._starts, self._ends, strict=True))

    @property
    def range_count(self) -> int:
        """Number of disjoint ranges held (a measure of memory use)."""
        return len(self._starts)

    def add(self, value: int) -> bool:
        """Add ``value``; return ``False`` if it was already present."""
        starts, ends = self._starts, self._ends
        i = bisect_right(starts, value) - 1
        if i >= 0 and value < ends[i]:
            return False
        joins_left = i >= 0 and ends[i] == value
        joins_right = i + 1 < len(starts) and starts[i + 1] == value + 1
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1]
            del ends[i + 1]
        elif joins_left:
            ends[i] = value + 1
        elif joins_right:
            starts[i + 1] = value
        else:
            starts.insert(i + 1, value)
            ends.insert(i + 1, value + 1)
        return True


class TransferReceiver:
    """Receives the peer's transfer stream: checks segment sequencing, reassembles or hands
    out data, queues XFER_ACK / XFER_REFUSE into the session's ``control`` buffer and appends
    events to the session's ``events`` list."""

    __slots__ = (
        "_config",
        "_control",
        "_current",
        "_events",
        "_ids",
        "_pending",
        "ending",
        "refused",
        "segments",
        "transfers",
    )

    def __init__(self, config: SessionConfig, control: bytearray, events: list[Event]) -> None:
        self._config = config
        self._control = control
        self._events = events
        self._pending: dict[int, Reception] = {}  # unresolved, in order of arrival
        self._current: Reception | None = None  # the one whose segments are arriving
        self._ids = TransferIdSet()
        #: Set by the session once it is Ending: new transfers are refused.
        self.ending = False
        #: Counters: segments received, transfers received whole, transfers refused.
        self.segments = 0
        self.transfers = 0
        self.refused = 0

    @property
    def busy(self) -> bool:
        """Whether a transfer is in progress: receiving, or awaiting our ack or refusal."""
        return bool(self._pending)

    def on_segment(self, segment: XferSegment) -> None:
        """Handle one XFER_SEGMENT.

        :raises RemoteProtocolError: the segment breaks the transfer sequence.
        """
        self.segments += 1
        reception = self._current
        tid = segment.transfer_id
        if segment.start:
            if reception is not None and reception.refusal is None:
                # RFC 9174 §5.2.2: "Once a transfer of a bundle has commenced, the entity
                # MUST only send segments containing sequential portions of that bundle until
                # it sends a segment with the 'END' flag set to 1."
                raise RemoteProtocolError(
                    f"transfer {tid} started before transfer {reception.transfer_id} ended",
                    reject_reason=MsgRejectReason.MESSAGE_UNEXPECTED,
                    message_type=MessageType.XFER_SEGMENT,
                )
            # RFC 9174 §5.2.1: "Transfer IDs from each entity SHALL be unique within a single
            # TCPCL session."
            if not self._ids.add(tid):
                raise RemoteProtocolError(
                    f"transfer ID {tid} used twice",
                    reject_reason=MsgRejectReason.MESSAGE_UNEXPECTED,
                    message_type=MessageType.XFER_SEGMENT,
                )
            reception = Reception(tid, segment.extensions, received=len(segment.data))
            self._current = reception
            self._pending[tid] = reception
            refusal = self._screen(reception)
            if refusal is not None:
                self._refuse(reception, refusal, by_user=False)
            else:
                self._events.append(
                    IncomingTransfer(tid, reception.extensions, reception.total_length)
                )
        elif reception is None or reception.transfer_id != tid:
            raise RemoteProtocolError(
                f"XFER_SEGMENT of transfer {tid} without a START segment",
                reject_reason=MsgRejectReason.MESSAGE_UNEXPECTED,
                message_type=MessageType.XFER_SEGMENT,
            )
        else:
            reception.received += len(segment.data)
            if reception.refusal is not None:
                # Refused before this segment arrived. RFC 9174 §5.2.4: "if this happens,
                # subsequent segments of the bundle SHALL also be refused with a XFER_REFUSE
                # message." (Unless the first refusal still waits for its turn.)
                if reception.refusal_sent:
                    self._control += _XFER_REFUSE.pack(
                        MessageType.XFER_REFUSE, reception.refusal, tid
                    )
                self._finish_if_end(reception, segment.end)
                return
        if reception.refusal is None:
            self._check_length(reception, segment.end)
        self._finish_if_end(reception, segment.end)
        if reception.refusal is not None:
            return
        config = self._config
        reception.unacked.append((segment.flags, reception.received))
        if config.reassemble:
            if segment.data:
                reception.pieces.append(segment.data)
        else:
            self._events.append(SegmentReceived(tid, segment.data, reception.received, segment.end))
        if segment.end:
            self.transfers += 1
            final = config.auto_ack_final
            data = reception.assemble() if config.reassemble else None
            self._events.append(
                TransferReceived(
                    tid, data, reception.received, reception.extensions, ack_pending=not final
                )
            )
            if final or config.auto_ack_segments:
                self._send_acks(reception, final=final)
        elif config.auto_ack_segments:
            self._send_acks(reception, final=False)

    def _finish_if_end(self, reception: Reception, end: bool) -> None:
        if end:
            reception.ended = True
            self._current = None

    def ack(self, transfer_id: int) -> None:
        """Acknowledge every received, unacknowledged segment of a transfer.

        :raises LocalProtocolError: no such transfer awaits an acknowledgement.
        """
        reception = self._pending.get(transfer_id)
        if reception is None or reception.refusal is not None:
            raise LocalProtocolError(f"no incoming transfer {transfer_id} awaits an XFER_ACK")
        self._send_acks(reception, final=True)

    def ack_through(self, transfer_id: int, length: int) -> None:
        """Acknowledge the unacknowledged non-final segments of a transfer whose cumulative
        length is at most ``length`` (nothing if the transfer is refused or resolved)."""
        reception = self._pending.get(transfer_id)
        if reception is None or reception.refusal is not None or not reception.unacked:
            return
        kept: list[tuple[SegmentFlags, int]] = []
        control = self._control
        for flags, cumulative in reception.unacked:
            if cumulative > length or SegmentFlags.END in flags or kept:
                kept.append((flags, cumulative))
            else:
                control += _XFER_ACK.pack(MessageType.XFER_ACK, int(flags), transfer_id, cumulative)
        reception.unacked = kept

    def refuse(self, transfer_id: int, reason: XferRefuseReason) -> None:
        """Refuse a transfer in progress.

        :raises LocalProtocolError: no such transfer is in progress.
        """
        reception = self._pending.get(transfer_id)
        if reception is None or reception.refusal is not None:
            raise LocalProtocolError(f"no incoming transfer {transfer_id} to refuse")
        self._refuse(reception, reason, by_user=True)

    def abort_all(self) -> None:
        """The session ended: report the transfers that will not complete, forget all."""
        for reception in self._pending.values():
            if reception.refusal is None and not reception.ended:
                self._events.append(
                    IncomingTransferAborted(reception.transfer_id, None, reception.received)
                )
        self._pending.clear()
        self._current = None

    def _screen(self, reception: Reception) -> XferRefuseReason | None:
        """Decide on a new transfer from its START segment alone."""
        # RFC 9174 §6.1: "If a new incoming transfer is attempted while in the Ending state,
        # the receiving entity SHALL send an XFER_REFUSE with a Reason Code of "Session
        # Terminating"."
        if self.ending:
            return XferRefuseReason.SESSION_TERMINATING
        known = self._config.known_transfer_extensions
        for item in reception.extensions:
            # RFC 9174 §5.2.5: "If a TCPCL entity receives a Transfer Extension Item with an
            # unknown Item Type and the CRITICAL flag is 1, the entity SHALL refuse the
            # transfer with an XFER_REFUSE reason code of "Extension Failure"."
            if item.critical and item.item_type not in known:
                return XferRefuseReason.EXTENSION_FAILURE
        try:
            reception.total_length = find_transfer_length(reception.extensions)
        except DecodeError:
            return XferRefuseReason.EXTENSION_FAILURE
        # RFC 9174 §5.2.5.1: the Transfer Length extension lets "entities [...] preemptively
        # refuse bundles that would exceed their resources". More than our Transfer MRU is
        # refused as "No Resources": the sender should fragment before retrying.
        total = reception.total_length
        if total is not None and total > self._config.transfer_mru:
            return XferRefuseReason.NO_RESOURCES
        return None

    def _check_length(self, reception: Reception, end: bool) -> None:
        received = reception.received
        total = reception.total_length
        # RFC 9174 §5.2.5.1: "If [...] the actual total length of bundle data received
        # differs from the value indicated by the Total Length value, the receiver SHALL
        # treat the transmitted data as invalid and send an XFER_REFUSE with a Reason Code
        # of "Not Acceptable"."
        if total is not None and (received > total or (end and received != total)):
            self._refuse(reception, XferRefuseReason.NOT_ACCEPTABLE, by_user=False)
        # RFC 9174 §4.6: "Any bundle transfer sent to this peer SHALL have a Total Bundle
        # Length payload no longer than the peer's Transfer MRU." Enforced as the data
        # arrives, so a peer without Transfer Length cannot make us buffer more.
        elif received > self._config.transfer_mru:
            self._refuse(reception, XferRefuseReason.NO_RESOURCES, by_user=False)

    def _send_acks(self, reception: Reception, *, final: bool) -> None:
        # RFC 9174 §5.2.3: "A receiving TCPCL entity SHALL send an XFER_ACK message in
        # response to each received XFER_SEGMENT message after the segment has been fully
        # processed. The flags portion of the XFER_ACK header SHALL be set to match the
        # corresponding XFER_SEGMENT message being acknowledged".
        kept: list[tuple[SegmentFlags, int]] = []
        tid = reception.transfer_id
        control = self._control
        for flags, length in reception.unacked:
            if not final and SegmentFlags.END in flags:
                kept.append((flags, length))
            else:
                control += _XFER_ACK.pack(MessageType.XFER_ACK, int(flags), tid, length)
        reception.unacked = kept
        if reception.ended and not kept:
            del self._pending[tid]
            self._flush_refusals()

    def _refuse(self, reception: Reception, reason: XferRefuseReason, *, by_user: bool) -> None:
        reception.refusal = reason
        reception.pieces = []
        reception.unacked = []
        self.refused += 1
        if not by_user:
            logger.info("refusing incoming transfer %d: %s", reception.transfer_id, reason.name)
            self._events.append(
                IncomingTransferAborted(reception.transfer_id, reason, reception.received)
            )
        self._flush_refusals()

    def _flush_refusals(self) -> None:
        """Queue the XFER_REFUSEs that the ordering rule allows.

        RFC 9174 §5.2.4: "The receiver MUST, for each transfer preceding the one to be
        refused, have either acknowledged all XFER_SEGMENT messages or refused the bundle
        transfer."
        """
        # No copy of the whole dict per call: with many transfers awaiting their final
        # XFER_ACK that would cost O(pending) per acknowledged transfer.
        resolved: list[int] = []
        for tid, reception in self._pending.items():
            if reception.refusal is not None:
                if not reception.refusal_sent:
                    reception.refusal_sent = True
                    self._control += _XFER_REFUSE.pack(
                        MessageType.XFER_REFUSE, reception.refusal, tid
                    )
                resolved.append(tid)
            elif reception.unacked:
                break
        for tid in resolved:
            del self._pending[tid]
