"""Bundles that carry administrative records: status report bundles (RFC 9171 §6.1.1) and
BIBE encapsulation (draft-ietf-dtn-bibect-05).

Pure helpers: the caller supplies the time (``now_dtn_ms``, DTN time in milliseconds) and the
creation sequence number; nothing here reads a clock.
"""

from __future__ import annotations

from ..bundle import Bundle, decode_bundle
from ..codes import BundleFlags
from ..crc import CRCType
from ..eid import EndpointID, parse_eid
from ..errors import EncodeError
from ..primary import CreationTimestamp
from .bibe import BibePdu
from .records import AdminRecord, decode_admin_record, encode_admin_record, record_type_of
from .status import BundleStatusReport, StatusKind
from .wire import AdminRecordError, admin_error, bibect_error

__all__ = [
    "admin_record_from_bundle",
    "build_status_report_bundle",
    "encapsulate_bundle",
    "extract_encapsulated_bundle",
]


def _eid(value: EndpointID | str) -> EndpointID:
    return parse_eid(value) if isinstance(value, str) else value


def build_status_report_bundle(
    subject: Bundle,
    *,
    source: EndpointID | str,
    kind: StatusKind,
    reason: int,
    now_dtn_ms: int,
    include_time: bool | None = None,
    sequence: int = 0,
    lifetime_ms: int | None = None,
    crc_type: int = CRCType.CRC32C,
) -> Bundle:
    """A bundle reporting that the local node asserts status ``kind`` of ``subject`` for
    ``reason``, addressed to the subject's report-to endpoint.

    ``source`` is the reporting node's node ID. The bundle has the "ADU is an administrative
    record" flag set and no status report request flags (RFC 9171 §4.2.3). Its creation
    timestamp is ``(now_dtn_ms, sequence)``; its lifetime defaults to the subject's. The status
    time is ``now_dtn_ms``, present if and only if the subject set "status time requested in
    reports" -- ``include_time`` may state the expectation and must then agree with the
    subject's flag. Whether the subject asked for this report (or the agent wants to send it)
    is the caller's decision.
    """
    primary = subject.primary
    source_eid = _eid(source)
    # RFC 9171 §6.1: administrative records are issued by a node's administrative element, and
    # "only a node ID" (§4.2.5.2) names the node itself; the source must be one.
    if not source_eid.is_node_id:
        raise EncodeError(
            f"a status report's source must be the reporting node's ID, not {source_eid}",
            rule="admin-source-node-id",
            section="6.1",
        )
    # RFC 9171 §4.2.3: for an administrative record, or a bundle whose source is the null
    # endpoint, "all status report request flag values MUST be zero" (and §4.2.4 likewise for
    # the block flag) -- no report may ever be due about such a bundle.
    if primary.is_admin_record or primary.source.is_null:
        raise EncodeError(
            "no status report is ever due about an administrative record or anonymous bundle",
            rule="report-not-allowed",
            section="4.2.3",
        )
    # RFC 9171 §6.1.1: status reports "are transmitted to the Report-to endpoints of bundles";
    # the null endpoint has no members.
    if primary.report_to.is_null:
        raise EncodeError(
            "the subject's report-to endpoint is the null endpoint",
            rule="report-to-null",
            section="6.1.1",
        )
    wants_time = bool(primary.flags & BundleFlags.STATUS_TIME_REQUESTED)
    # RFC 9171 §6.1.1: a status item carries a time if and only if the status is asserted "AND
    # the 'Report status time' flag was set to 1 in the bundle processing flags of the bundle
    # whose status is being reported".
    if include_time is not None and include_time != wants_time:
        raise EncodeError(
            f"include_time={include_time} but the subject "
            f"{'requested' if wants_time else 'did not request'} status times",
            rule="status-time-flag",
            section="6.1.1",
        )
    record = BundleStatusReport.for_subject(subject, kind, reason, time_ms=now_dtn_ms)
    return Bundle.build(
        source=source_eid,
        destination=primary.report_to,
        payload=encode_admin_record(record),
        creation=CreationTimestamp(now_dtn_ms, sequence),
        lifetime_ms=primary.lifetime_ms if lifetime_ms is None else lifetime_ms,
        flags=BundleFlags.ADMIN_RECORD,
        crc_type=crc_type,
    )


def encapsulate_bundle(
    inner: Bundle | bytes,
    *,
    source: EndpointID | str,
    destination: EndpointID | str,
    now_dtn_ms: int,
    sequence: int = 0,
    lifetime_ms: int | None = None,
    transmission_id: int = 0,
    retransmission_time_ms: int = 0,
    report_to: EndpointID | str | None = None,
    flags: int = 0,
    crc_type: int = CRCType.CRC32C,
) -> Bundle:
    """An encapsulating bundle from ``source`` to ``destination`` (the peer BIBE endpoint)
    whose payload is a BPDU carrying ``inner`` (draft-ietf-dtn-bibect-05).

    ``inner`` may be given as its bytes, which are carried unchanged. The lifetime defaults to
    the inner bundle's. ``transmission_id`` and ``retransmission_time_ms`` stay 0 unless custody
    transfer is requested. ``flags`` are added to "ADU is an administrative record" (status
    report requests are not allowed, RFC 9171 §4.2.3).
    """
    if isinstance(inner, Bundle):
        inner_bytes = inner.encode()
        inner_bundle = inner
    else:
        inner_bytes = bytes(inner)
        inner_bundle = decode_bundle(inner_bytes)
    pdu = BibePdu(transmission_id, retransmission_time_ms, inner_bytes)
    return Bundle.build(
        source=_eid(source),
        destination=_eid(destination),
        report_to=None if report_to is None else _eid(report_to),
        payload=encode_admin_record(pdu),
        creation=CreationTimestamp(now_dtn_ms, sequence),
        lifetime_ms=inner_bundle.primary.lifetime_ms if lifetime_ms is None else lifetime_ms,
        flags=int(flags) | BundleFlags.ADMIN_RECORD,
        crc_type=crc_type,
    )


def admin_record_from_bundle(bundle: Bundle) -> AdminRecord:
    """The administrative record in ``bundle``'s payload. Raises
    :class:`~bpv7.admin.AdminRecordError` when the bundle is not an administrative record, and
    :class:`~bpv7.errors.EncodeError` when it is a fragment (reassemble it first, RFC 9171
    §5.9)."""
    if not bundle.is_admin_record:
        raise admin_error(
            "the bundle's 'ADU is an administrative record' flag is not set", "not-admin-record"
        )
    if bundle.is_fragment:
        raise EncodeError(
            "the bundle is a fragment: reassemble the ADU before decoding the record",
            rule="reassemble-first",
            section="5.9",
        )
    return decode_admin_record(bundle.payload)


def extract_encapsulated_bundle(outer: Bundle) -> tuple[BibePdu, Bundle]:
    """The BPDU carried by an encapsulating bundle and the encapsulated bundle, decoded and
    validated. Raises :class:`~bpv7.errors.DecodeError` subclasses when the payload is not a
    valid BPDU or the inner bundle is invalid."""
    record = admin_record_from_bundle(outer)
    if not isinstance(record, BibePdu):
        raise bibect_error(
            AdminRecordError,
            f"the administrative record is of type {int(record_type_of(record))}, not a BPDU (3)",
            "not-bpdu",
            "BPDU",
        )
    return record, record.bundle()
