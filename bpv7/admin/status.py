"""Bundle status reports (RFC 9171 §6.1.1).

A :class:`BundleStatusReport` is the content of an administrative record of type 1. It carries
four status assertions (received, forwarded, delivered, deleted), each a
:class:`StatusAssertion` ``[asserted]`` or ``[asserted, time]``, a reason code, and the identity
of the subject bundle (source node ID, creation timestamp and, for a fragment, its offset and
payload length).

Shape on the wire (RFC 9171 §6.1.1, Appendix B CDDL ``status-record-content``)::

    [ [ [received, ?time], [forwarded, ?time], [delivered, ?time], [deleted, ?time] ],
      reason-code, source-node-id, creation-timestamp, ?fragment-offset, ?payload-length ]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from .._cbor import INDEFINITE, UINT64_MAX, encode_uint
from ..bundle import Bundle, BundleID
from ..codes import BundleFlags
from ..eid import DtnEID, EndpointID, IpnEID
from ..errors import EncodeError
from ..primary import CreationTimestamp
from .wire import AdminRecordType, ArrayReader, admin_error, as_decode_error

__all__ = [
    "BundleStatusReport",
    "StatusAssertion",
    "StatusKind",
    "StatusReportReason",
]


class StatusReportReason(IntEnum):
    """Bundle status report reason codes (RFC 9171 §6.1.1 Table 1, and 12-16 from RFC 9172
    §11.2 for BPSec; IANA "Bundle Status Report Reason Codes"). A code without a member stays a
    plain ``int``."""

    NO_ADDITIONAL_INFORMATION = 0
    """RFC 9171 §6.1.1: 0, "No additional information"."""
    LIFETIME_EXPIRED = 1
    """RFC 9171 §6.1.1: 1, "Lifetime expired"."""
    FORWARDED_OVER_UNIDIRECTIONAL_LINK = 2
    """RFC 9171 §6.1.1: 2, "Forwarded over unidirectional link"."""
    TRANSMISSION_CANCELED = 3
    """RFC 9171 §6.1.1: 3, "Transmission canceled"."""
    DEPLETED_STORAGE = 4
    """RFC 9171 §6.1.1: 4, "Depleted storage"."""
    DESTINATION_EID_UNAVAILABLE = 5
    """RFC 9171 §6.1.1: 5, "Destination endpoint ID unavailable" (called "unintelligible" in
    RFC 5050 and §5.6; :attr:`DESTINATION_EID_UNINTELLIGIBLE` is an alias)."""
    DESTINATION_EID_UNINTELLIGIBLE = 5
    NO_KNOWN_ROUTE = 6
    """RFC 9171 §6.1.1: 6, "No known route to destination from here"."""
    NO_TIMELY_CONTACT = 7
    """RFC 9171 §6.1.1: 7, "No timely contact with next node on route"."""
    BLOCK_UNINTELLIGIBLE = 8
    """RFC 9171 §6.1.1: 8, "Block unintelligible"."""
    HOP_LIMIT_EXCEEDED = 9
    """RFC 9171 §6.1.1: 9, "Hop limit exceeded"."""
    TRAFFIC_PARED = 10
    """RFC 9171 §6.1.1: 10, "Traffic pared (e.g., status reports)"."""
    BLOCK_UNSUPPORTED = 11
    """RFC 9171 §6.1.1: 11, "Block unsupported"."""
    MISSING_SECURITY_OPERATION = 12
    """RFC 9172 §11.2: 12, "Missing security operation": the bundle lacks an operation the
    node's security policy requires (e.g. no BIB over the payload)."""
    UNKNOWN_SECURITY_OPERATION = 13
    """RFC 9172 §11.2: 13, "Unknown security operation": an operation the node cannot
    process (e.g. an unknown security context)."""
    UNEXPECTED_SECURITY_OPERATION = 14
    """RFC 9172 §11.2: 14, "Unexpected security operation": an operation the policy does not
    allow here."""
    FAILED_SECURITY_OPERATION = 15
    """RFC 9172 §11.2: 15, "Failed security operation": a MAC or signature that does not
    match, ciphertext that does not authenticate."""
    CONFLICTING_SECURITY_OPERATION = 16
    """RFC 9172 §11.2: 16, "Conflicting security operation": operations that contradict
    each other or the policy."""


class StatusKind(IntEnum):
    """The four status assertions of a report, by their position in the bundle status
    information array (RFC 9171 §6.1.1: "The first four items of the bundle status information
    array shall provide information on the following four status assertions, in this order")."""

    RECEIVED = 0
    """RFC 9171 §6.1.1: "Reporting node received bundle"."""
    FORWARDED = 1
    """RFC 9171 §6.1.1: "Reporting node forwarded the bundle"."""
    DELIVERED = 2
    """RFC 9171 §6.1.1: "Reporting node delivered the bundle"."""
    DELETED = 3
    """RFC 9171 §6.1.1: "Reporting node deleted the bundle"."""


_REASONS = {int(r): r for r in StatusReportReason}
_EID_TYPES = (DtnEID, IpnEID)


def _check_uint(value: object, what: str, section: str = "6.1.1") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
        raise EncodeError(
            f"{what} must be an unsigned 64-bit integer, not {value!r:.40}",
            rule="uint-range",
            section=section,
        )


@dataclass(frozen=True, slots=True)
class StatusAssertion:
    """One bundle status item (RFC 9171 §6.1.1): whether the status is asserted and, when the
    subject bundle asked for status times, when it was."""

    asserted: bool
    """The status indicator: whether the reporting node asserts this status."""
    time_ms: int | None = None
    """DTN time (ms) at which the status was asserted; only for an asserted status of a bundle
    that set "status time requested in reports"."""

    def __post_init__(self) -> None:
        if type(self.asserted) is not bool:
            raise EncodeError(
                "a status indicator must be a bool", rule="status-indicator", section="6.1.1"
            )
        if self.time_ms is not None:
            _check_uint(self.time_ms, "status time")
            # RFC 9171 §6.1.1: the item has 2 elements only "if the value of the first item of
            # this bundle status item is 1 AND the 'Report status time' flag was set to 1".
            if not self.asserted:
                raise EncodeError(
                    "a status that is not asserted carries no time",
                    rule="status-time-not-asserted",
                    section="6.1.1",
                )

    def encode(self) -> bytes:
        """The item's CBOR: ``[asserted]`` or ``[asserted, time]``."""
        if self.time_ms is None:
            return b"\x81\xf5" if self.asserted else b"\x81\xf4"
        return b"\x82\xf5" + encode_uint(self.time_ms)


NOT_ASSERTED = StatusAssertion(False)


@dataclass(frozen=True, slots=True)
class BundleStatusReport:
    """A bundle status report (RFC 9171 §6.1.1), administrative record type 1."""

    reason: int
    """Reason code (a :class:`StatusReportReason` when known, else a plain ``int``)."""
    source: EndpointID
    """Source node ID of the subject bundle."""
    creation: CreationTimestamp
    """Creation timestamp of the subject bundle."""
    received: StatusAssertion = NOT_ASSERTED
    """"Reporting node received bundle"."""
    forwarded: StatusAssertion = NOT_ASSERTED
    """"Reporting node forwarded the bundle"."""
    delivered: StatusAssertion = NOT_ASSERTED
    """"Reporting node delivered the bundle"."""
    deleted: StatusAssertion = NOT_ASSERTED
    """"Reporting node deleted the bundle"."""
    fragment_offset: int | None = None
    """The subject's fragment offset; set iff the subject bundle is a fragment."""
    fragment_length: int | None = None
    """The length of the subject's payload; set iff the subject bundle is a fragment."""
    _raw: bytes | None = field(init=False, default=None, repr=False, compare=False)

    RECORD_TYPE: ClassVar[AdminRecordType] = AdminRecordType.BUNDLE_STATUS_REPORT

    def __post_init__(self) -> None:
        reason = self.reason
        # RFC 9171 §6.1.1: the reason code is "represented as a CBOR unsigned integer".
        _check_uint(reason, "status report reason code")
        object.__setattr__(self, "reason", _REASONS.get(reason, reason))
        if type(self.source) not in _EID_TYPES:
            raise EncodeError("source must be an EndpointID", rule="eid", section="6.1.1")
        if type(self.creation) is not CreationTimestamp:
            raise EncodeError(
                "creation must be a CreationTimestamp", rule="creation", section="6.1.1"
            )
        assertions = self.assertions
        if any(type(a) is not StatusAssertion for a in assertions):
            raise EncodeError(
                "status items must be StatusAssertion values", rule="status-item", section="6.1.1"
            )
        # RFC 9171 §6.1.1: an item has a time "if the value of the first item of this bundle
        # status item is 1 AND the 'Report status time' flag was set to 1 in the bundle
        # processing flags of the bundle whose status is being reported" -- one flag for all
        # items, so the asserted items either all carry a time or none does.
        timed = {a.time_ms is not None for a in assertions if a.asserted}
        if len(timed) > 1:
            raise EncodeError(
                "either every asserted status carries a time or none does",
                rule="status-time-inconsistent",
                section="6.1.1",
            )
        # RFC 9171 §6.1.1: "The fifth item ... SHALL be present if and only if the bundle whose
        # status is being reported contained a fragment offset" (likewise the sixth).
        if (self.fragment_offset is None) != (self.fragment_length is None):
            raise EncodeError(
                "fragment offset and payload length go together",
                rule="status-fragment-fields",
                section="6.1.1",
            )
        if self.fragment_offset is not None:
            _check_uint(self.fragment_offset, "subject fragment offset")
            _check_uint(self.fragment_length, "subject payload length")

    @property
    def assertions(
        self,
    ) -> tuple[StatusAssertion, StatusAssertion, StatusAssertion, StatusAssertion]:
        """The four status items in wire order (index them with :class:`StatusKind`)."""
        return (self.received, self.forwarded, self.delivered, self.deleted)

    @property
    def asserted_kinds(self) -> tuple[StatusKind, ...]:
        """The statuses this report asserts."""
        return tuple(
            kind for kind, a in zip(StatusKind, self.assertions, strict=True) if a.asserted
        )

    @property
    def subject_id(self) -> BundleID:
        """The subject bundle's identity; equal to ``subject.bundle_id``."""
        return BundleID(self.source, self.creation, self.fragment_offset, self.fragment_length)

    @property
    def subject_is_fragment(self) -> bool:
        """True when the subject bundle was a fragment."""
        return self.fragment_offset is not None

    @classmethod
    def for_subject(
        cls,
        subject: Bundle,
        kind: StatusKind,
        reason: int = StatusReportReason.NO_ADDITIONAL_INFORMATION,
        *,
        time_ms: int | None = None,
    ) -> BundleStatusReport:
        """A report about ``subject`` asserting the single status ``kind``. ``time_ms`` is the
        DTN time of the assertion; it is included if and only if ``subject`` requested status
        times (RFC 9171 §4.2.3 bit 6), and then it is required."""
        wants_time = bool(subject.primary.flags & BundleFlags.STATUS_TIME_REQUESTED)
        if wants_time and time_ms is None:
            raise EncodeError(
                "the subject requested status times: give time_ms",
                rule="status-time-missing",
                section="6.1.1",
            )
        item = StatusAssertion(True, time_ms if wants_time else None)
        items = [NOT_ASSERTED] * 4
        items[StatusKind(kind)] = item
        subject_id = subject.bundle_id
        return cls(
            reason,
            subject_id.source,
            subject_id.creation,
            items[0],
            items[1],
            items[2],
            items[3],
            subject_id.fragment_offset,
            subject_id.fragment_length,
        )

    def encode_content(self) -> bytes:
        """The record content's CBOR (the second item of the administrative record array)."""
        fragment = self.fragment_offset is not None
        parts = [
            # RFC 9171 §6.1.1: "The number of elements in the array SHALL be either 6 (if the
            # subject bundle is a fragment) or 4 (otherwise)."
            b"\x86" if fragment else b"\x84",
            b"\x84",
            self.received.encode(),
            self.forwarded.encode(),
            self.delivered.encode(),
            self.deleted.encode(),
            encode_uint(self.reason),
            self.source.cbor,
            b"\x82",
            encode_uint(self.creation.time_ms),
            encode_uint(self.creation.sequence),
        ]
        if self.fragment_offset is not None and self.fragment_length is not None:
            parts.append(encode_uint(self.fragment_offset))
            parts.append(encode_uint(self.fragment_length))
        return b"".join(parts)

    @classmethod
    def decode_content(cls, data: bytes, pos: int) -> tuple[BundleStatusReport, int]:
        """Decode the record content starting at ``data[pos]``; return it and the position
        after it. Raises :class:`~bpv7.admin.AdminRecordError` / CBOR errors (``IndexError``
        when ``data`` ends early)."""
        report = ArrayReader(data, pos, "bundle status report")
        # RFC 9171 §6.1.1: "Each bundle status report SHALL be represented as a CBOR array. The
        # number of elements in the array SHALL be either 6 (if the subject bundle is a
        # fragment) or 4 (otherwise)."
        if report.count not in (4, 6, INDEFINITE):
            raise admin_error(
                f"bundle status report has {report.count} items, not 4 or 6",
                "status-report-length",
                "6.1.1",
            )
        info = report.array("bundle status information")
        # RFC 9171 §6.1.1: "The first item of the bundle status report array SHALL be bundle
        # status information represented as a CBOR array of at least 4 elements."
        if info.count != INDEFINITE and info.count < 4:
            raise admin_error(
                f"bundle status information has {info.count} items, not at least 4",
                "status-information-length",
                "6.1.1",
            )
        items = [_read_assertion(info, kind) for kind in StatusKind]
        while info.more():
            # Items after the first four are not defined by RFC 9171; they are kept in the
            # record's bytes but not interpreted.
            info.skip("further bundle status item")
        report.close(info)
        # RFC 9171 §6.1.1: "The second item of the bundle status report array SHALL be the
        # bundle status report reason code ..., represented as a CBOR unsigned integer."
        reason = report.uint("status report reason code")
        # "The third item ... SHALL be the source node ID identifying the source of the bundle
        # whose status is being reported".
        source = report.eid("subject source node ID")
        # "The fourth item ... SHALL be the creation timestamp of the bundle whose status is
        # being reported".
        creation = report.creation_timestamp("subject creation timestamp")
        offset = length = None
        if report.more():
            offset = report.uint("subject fragment offset")
            length = report.uint("subject payload length")
        end = report.finish()
        try:
            value = cls(
                reason, source, creation, items[0], items[1], items[2], items[3], offset, length
            )
        except EncodeError as exc:
            raise as_decode_error(exc) from None
        return value, end


def _read_assertion(info: ArrayReader, kind: StatusKind) -> StatusAssertion:
    what = f"{kind.name.lower()} status item"
    item = info.array(what)
    # RFC 9171 §6.1.1: "Each item of the bundle status information array SHALL be a bundle
    # status item represented as a CBOR array; the number of elements in each such array SHALL
    # be either 2 ... or 1 (otherwise)."
    if item.count not in (1, 2, INDEFINITE):
        raise admin_error(
            f"{what} has {item.count} items, not 1 or 2", "status-item-length", "6.1.1"
        )
    # "The first item of the bundle status item array SHALL be a status indicator, a Boolean
    # value ... represented as a CBOR Boolean value."
    asserted = item.boolean(f"{what} status indicator")
    time_ms = None
    if item.more():
        # "The second item ..., if present, SHALL indicate the time ... represented as a DTN
        # time".
        time_ms = item.uint(f"{what} time")
    info.close(item)
    try:
        return StatusAssertion(asserted, time_ms)
    except EncodeError as exc:
        raise as_decode_error(exc) from None
