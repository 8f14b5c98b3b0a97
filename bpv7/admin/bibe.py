"""Bundle-in-Bundle Encapsulation records (draft-ietf-dtn-bibect-05).

:class:`BibePdu` is a BIBE protocol data unit (administrative record type 3): a whole bundle,
serialized, carried in the payload of an encapsulating bundle, with the transmission ID and
retransmission time of BIBE custody transfer. :class:`CustodySignal` (administrative record
type 4) tells the sender of BPDUs what became of them: a disposition code and the transmission
IDs it applies to, as ranges of consecutive IDs.

Shapes on the wire (the record content, the second item of the administrative record array)::

    BPDU           = [transmission-id: uint, retransmission-time: uint,
                      encapsulated-bundle: bstr]
    custody signal = [disposition: uint, [* [first-transmission-id: uint, count: uint]]]

The draft leaves how transmission IDs are chosen, when signals are sent and how retransmission
times are computed to the implementation (the custody state machine lives in the agent); these
classes only carry the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from .._cbor import INDEFINITE, UINT64_MAX, encode_head, encode_uint
from ..bundle import Bundle, decode_bundle
from ..errors import EncodeError
from .wire import AdminRecordError, AdminRecordType, ArrayReader, as_decode_error, bibect_error

__all__ = [
    "BibePdu",
    "CustodyDisposition",
    "CustodySignal",
    "TransmissionIdRange",
]


class CustodyDisposition(IntEnum):
    """Custody signal disposition codes (draft-ietf-dtn-bibect-05). 0 means the custody
    transfer succeeded; the others are the reasons for refusing custody, numbered like the
    custody signal reason codes of RFC 5050 §6.1.2. A code without a member stays a plain
    ``int``."""

    ACCEPTED = 0
    """Custody accepted."""
    REDUNDANT = 3
    """Custody refused: redundant (the receiving node already has custody of the bundle)."""
    DEPLETED_STORAGE = 4
    """Custody refused: depleted storage."""
    DESTINATION_EID_UNINTELLIGIBLE = 5
    """Custody refused: destination endpoint ID unintelligible."""
    NO_KNOWN_ROUTE = 6
    """Custody refused: no known route to destination from here."""
    NO_TIMELY_CONTACT = 7
    """Custody refused: no timely contact with next node on route."""
    BLOCK_UNINTELLIGIBLE = 8
    """Custody refused: block unintelligible."""


_DISPOSITIONS = {int(d): d for d in CustodyDisposition}


def _check_uint(value: object, what: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
        raise bibect_error(
            EncodeError,
            f"{what} must be an unsigned 64-bit integer, not {value!r:.40}",
            "uint-range",
            where,
        )


@dataclass(frozen=True, slots=True)
class BibePdu:
    """A BIBE protocol data unit (draft-ietf-dtn-bibect-05), administrative record type 3."""

    transmission_id: int
    """0 when custody transfer is not requested; otherwise the sending node's custodial
    transmission count plus one."""
    retransmission_time_ms: int
    """DTN time (ms) by which a custody signal is expected; 0 when custody transfer is not
    requested."""
    encapsulated_bundle: bytes
    """The serialized encapsulated bundle (decode it with :meth:`bundle`)."""
    _raw: bytes | None = field(init=False, default=None, repr=False, compare=False)

    RECORD_TYPE: ClassVar[AdminRecordType] = AdminRecordType.BIBE_PDU

    def __post_init__(self) -> None:
        _check_uint(self.transmission_id, "transmission ID", "BPDU")
        _check_uint(self.retransmission_time_ms, "retransmission time", "BPDU")
        data = self.encapsulated_bundle
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise bibect_error(
                    EncodeError, "the encapsulated bundle must be bytes", "bpdu-bundle", "BPDU"
                )
            object.__setattr__(self, "encapsulated_bundle", bytes(data))
        # draft-ietf-dtn-bibect-05: "The transmission ID for a BPDU for which custody transfer
        # is NOT requested SHALL be zero" and "Retransmission time for a BPDU for which custody
        # transfer is NOT requested SHALL be zero."
        if self.transmission_id == 0 and self.retransmission_time_ms != 0:
            raise bibect_error(
                EncodeError,
                "a BPDU without custody transfer (transmission ID 0) has retransmission time 0",
                "bpdu-retransmission-time",
                "BPDU",
            )

    @property
    def custody_requested(self) -> bool:
        """Whether the sender requests custody transfer for this BPDU."""
        return self.transmission_id != 0

    def bundle(self) -> Bundle:
        """The encapsulated bundle, decoded and validated. Raises
        :class:`~bpv7.errors.DecodeError` subclasses."""
        return decode_bundle(self.encapsulated_bundle)

    def encode_content(self) -> bytes:
        """The record content's CBOR (the second item of the administrative record array)."""
        # draft-ietf-dtn-bibect-05: "Each BPDU message SHALL be represented as a CBOR array.
        # The number of elements in the array SHALL be 3."
        return b"".join(
            (
                b"\x83",
                encode_uint(self.transmission_id),
                encode_uint(self.retransmission_time_ms),
                encode_head(2, len(self.encapsulated_bundle)),
                self.encapsulated_bundle,
            )
        )

    @classmethod
    def decode_content(cls, data: bytes, pos: int) -> tuple[BibePdu, int]:
        """Decode the record content starting at ``data[pos]``; return it and the position
        after it (``IndexError`` when ``data`` ends early)."""
        pdu = ArrayReader(data, pos, "BPDU")
        # draft-ietf-dtn-bibect-05: "Each BPDU message SHALL be represented as a CBOR array.
        # The number of elements in the array SHALL be 3."
        if pdu.count not in (3, INDEFINITE):
            raise bibect_error(
                AdminRecordError, f"BPDU has {pdu.count} items, not 3", "bpdu-length", "BPDU"
            )
        # "The first item of the BPDU array SHALL be the 'transmission ID' for the BPDU,
        # represented as a CBOR unsigned integer."
        transmission_id = pdu.uint("BPDU transmission ID")
        # "The second item of the BPDU array SHALL be the BPDU's retransmission time ...,
        # represented as a CBOR unsigned integer."
        retransmission_time = pdu.uint("BPDU retransmission time")
        # "The third item of the BPDU array SHALL be a single BP bundle, termed the
        # 'encapsulated bundle', represented as a CBOR byte string of definite length."
        bundle = pdu.byte_string("BPDU encapsulated bundle")
        end = pdu.finish()
        try:
            return cls(transmission_id, retransmission_time, bundle), end
        except EncodeError as exc:
            raise as_decode_error(exc) from None


@dataclass(frozen=True, slots=True)
class TransmissionIdRange:
    """A sequence of consecutive BPDU transmission IDs that a custody signal covers."""

    first: int
    """The first transmission ID of the sequence (never 0: 0 means no custody transfer)."""
    count: int
    """The number of transmission IDs in the sequence (at least 1)."""

    def __post_init__(self) -> None:
        _check_uint(self.first, "first transmission ID", "custody signal")
        _check_uint(self.count, "transmission ID count", "custody signal")
        # draft-ietf-dtn-bibect-05: transmission ID 0 marks a BPDU "for which custody transfer
        # is NOT requested", so no custody signal can be about it.
        if self.first == 0:
            raise bibect_error(
                EncodeError,
                "transmission ID 0 (custody not requested) cannot be signaled",
                "signal-id-zero",
                "custody signal",
            )
        if self.count == 0 or self.first + self.count - 1 > UINT64_MAX:
            raise bibect_error(
                EncodeError,
                f"range of {self.count} IDs from {self.first} is empty or passes 2^64-1",
                "signal-range",
                "custody signal",
            )

    @property
    def last(self) -> int:
        """The last transmission ID of the sequence."""
        return self.first + self.count - 1

    def __contains__(self, transmission_id: object) -> bool:
        return type(transmission_id) is int and self.first <= transmission_id <= self.last

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + self.count))


@dataclass(frozen=True, slots=True)
class CustodySignal:
    """A custody signal (draft-ietf-dtn-bibect-05), administrative record type 4."""

    disposition: int
    """Disposition code (a :class:`CustodyDisposition` when known, else a plain ``int``)."""
    ranges: tuple[TransmissionIdRange, ...]
    """The transmission IDs of the BPDUs this disposition applies to, as given by the sender
    (use :meth:`for_ids` to build a minimal, sorted set of ranges)."""
    _raw: bytes | None = field(init=False, default=None, repr=False, compare=False)

    RECORD_TYPE: ClassVar[AdminRecordType] = AdminRecordType.CUSTODY_SIGNAL

    def __post_init__(self) -> None:
        _check_uint(self.disposition, "disposition code", "custody signal")
        object.__setattr__(
            self, "disposition", _DISPOSITIONS.get(self.disposition, self.disposition)
        )
        if type(self.ranges) is not tuple:
            object.__setattr__(self, "ranges", tuple(self.ranges))
        if any(type(r) is not TransmissionIdRange for r in self.ranges):
            raise bibect_error(
                EncodeError,
                "ranges must be TransmissionIdRange values",
                "signal-range-type",
                "custody signal",
            )

    @classmethod
    def for_ids(cls, disposition: int, transmission_ids: Iterable[int]) -> CustodySignal:
        """A signal covering exactly ``transmission_ids``, as sorted, merged ranges."""
        ranges: list[TransmissionIdRange] = []
        first = last = -1
        for tid in sorted(set(transmission_ids)):
            if tid == last + 1:
                last = tid
                continue
            if first >= 0:
                ranges.append(TransmissionIdRange(first, last - first + 1))
            first = last = tid
        if first >= 0:
            ranges.append(TransmissionIdRange(first, last - first + 1))
        return cls(disposition, tuple(ranges))

    @property
    def accepted(self) -> bool:
        """True when the disposition is "custody accepted"."""
        return self.disposition == CustodyDisposition.ACCEPTED

    def covers(self, transmission_id: int) -> bool:
        """Whether this signal applies to the BPDU with ``transmission_id``."""
        return any(transmission_id in r for r in self.ranges)

    def encode_content(self) -> bytes:
        """The record content's CBOR (the second item of the administrative record array)."""
        parts = [b"\x82", encode_uint(self.disposition), encode_head(4, len(self.ranges))]
        for r in self.ranges:
            parts.append(b"\x82" + encode_uint(r.first) + encode_uint(r.count))
        return b"".join(parts)

    @classmethod
    def decode_content(cls, data: bytes, pos: int) -> tuple[CustodySignal, int]:
        """Decode the record content starting at ``data[pos]``; return it and the position
        after it (``IndexError`` when ``data`` ends early)."""
        signal = ArrayReader(data, pos, "custody signal")
        # draft-ietf-dtn-bibect-05: a custody signal is a CBOR array of two items, the
        # disposition code and the array of transmission ID sequences it applies to.
        if signal.count not in (2, INDEFINITE):
            raise bibect_error(
                AdminRecordError,
                f"custody signal has {signal.count} items, not 2",
                "signal-length",
                "custody signal",
            )
        disposition = signal.uint("custody disposition code")
        sequences = signal.array("custody signal transmission ID sequences")
        ranges = []
        while sequences.more():
            # Each sequence is [first transmission ID, number of consecutive IDs].
            sequence = sequences.array("transmission ID sequence")
            if sequence.count not in (2, INDEFINITE):
                raise bibect_error(
                    AdminRecordError,
                    f"transmission ID sequence has {sequence.count} items, not 2",
                    "signal-range-length",
                    "custody signal",
                )
            first = sequence.uint("first transmission ID")
            count = sequence.uint("transmission ID count")
            sequences.close(sequence)
            try:
                ranges.append(TransmissionIdRange(first, count))
            except EncodeError as exc:
                raise as_decode_error(exc) from None
        signal.close(sequences)
        end = signal.finish()
        return cls(disposition, tuple(ranges)), end
