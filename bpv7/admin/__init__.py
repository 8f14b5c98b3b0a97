"""Administrative records (RFC 9171 §6.1): bundle status reports (§6.1.1) and the BIBE records
of draft-ietf-dtn-bibect-05 (BPDUs and custody signals), plus the bundles that carry them."""

from .bibe import BibePdu, CustodyDisposition, CustodySignal, TransmissionIdRange
from .bundles import (
    admin_record_from_bundle,
    build_status_report_bundle,
    encapsulate_bundle,
    extract_encapsulated_bundle,
)
from .records import (
    AdminRecord,
    UnknownAdminRecord,
    decode_admin_record,
    encode_admin_record,
    record_type_of,
)
from .status import BundleStatusReport, StatusAssertion, StatusKind, StatusReportReason
from .wire import AdminRecordError, AdminRecordType

__all__ = [
    "AdminRecord",
    "AdminRecordError",
    "AdminRecordType",
    "BibePdu",
    "BundleStatusReport",
    "CustodyDisposition",
    "CustodySignal",
    "StatusAssertion",
    "StatusKind",
    "StatusReportReason",
    "TransmissionIdRange",
    "UnknownAdminRecord",
    "admin_record_from_bundle",
    "build_status_report_bundle",
    "decode_admin_record",
    "encapsulate_bundle",
    "encode_admin_record",
    "extract_encapsulated_bundle",
    "record_type_of",
]
