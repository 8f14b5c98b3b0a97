"""Bundle status reports (RFC 9171 §6.1.1): values, codec, status report bundles."""

from __future__ import annotations

import datetime

import cbor2
import pytest
from pyd3tn.bundle7 import EID as D3EID
from pyd3tn.bundle7 import BundleStatusReport as D3StatusReport
from pyd3tn.bundle7 import StatusCode as D3StatusCode

from bpv7 import (
    DTN_NONE,
    STATUS_REPORT_REQUEST_FLAGS,
    Bundle,
    BundleFlags,
    CreationTimestamp,
    DecodeError,
    DtnEID,
    EncodeError,
    IpnEID,
    decode_bundle,
    parse_eid,
)
from bpv7.admin import (
    AdminRecordError,
    AdminRecordType,
    BundleStatusReport,
    StatusAssertion,
    StatusKind,
    StatusReportReason,
    admin_record_from_bundle,
    build_status_report_bundle,
    decode_admin_record,
    encode_admin_record,
)
from bpv7.fragment import fragment_at

CREATION = CreationTimestamp(800_000_000_000, 7)
SOURCE = DtnEID("src", "app")
NOW = 800_000_123_456
REPORTER = parse_eid("dtn://reporter/")


def _subject(flags: int = 0, **kwargs: object) -> Bundle:
    return Bundle.build(
        source=SOURCE,
        destination="dtn://dst/svc",
        report_to="dtn://reports/inbox",
        payload=bytes(range(50)),
        creation=CREATION,
        lifetime_ms=86_400_000,
        flags=flags,
        **kwargs,  # type: ignore[arg-type]
    )


def _report(kind: StatusKind, reason: int, time_ms: int | None, **kwargs: object) -> bytes:
    """The expected record built with cbor2, an encoder we did not write."""
    items: list[list[object]] = [[False], [False], [False], [False]]
    items[kind] = [True] if time_ms is None else [True, time_ms]
    content: list[object] = [items, reason, [1, "//src/app"], [CREATION.time_ms, 7]]
    if "fragment" in kwargs:
        content.extend(kwargs["fragment"])  # type: ignore[arg-type]
    return bytes(cbor2.dumps([1, content]))


ALL_REASONS = [*StatusReportReason, 12, 200, 254, 255, 2**64 - 1]


@pytest.mark.parametrize("reason", ALL_REASONS, ids=str)
@pytest.mark.parametrize("kind", list(StatusKind), ids=lambda k: k.name)
@pytest.mark.parametrize("time_ms", [None, 0, NOW, 2**64 - 1])
def test_round_trip_every_reason_and_kind(
    kind: StatusKind, reason: int, time_ms: int | None
) -> None:
    items = [StatusAssertion(False)] * 4
    items[kind] = StatusAssertion(True, time_ms)
    record = BundleStatusReport(reason, SOURCE, CREATION, *items)
    payload = encode_admin_record(record)
    assert payload == _report(kind, reason, time_ms)
    decoded = decode_admin_record(payload)
    assert decoded == record
    assert isinstance(decoded, BundleStatusReport)
    assert decoded.asserted_kinds == (kind,)
    assert decoded.assertions[kind].time_ms == time_ms
    assert int(decoded.reason) == int(reason)
    assert type(decoded.reason) is (
        StatusReportReason if reason in set(StatusReportReason) else int
    )
    assert encode_admin_record(decoded) == payload
    assert not decoded.subject_is_fragment


def test_reason_table() -> None:
    # RFC 9171 §6.1.1 Table 1 (and §9.5): codes 0..11; RFC 9172 §11.2: 12..16 for BPSec.
    assert [int(r) for r in StatusReportReason] == list(range(17))
    assert StatusReportReason(15) is StatusReportReason.FAILED_SECURITY_OPERATION
    assert StatusReportReason.DESTINATION_EID_UNINTELLIGIBLE is (
        StatusReportReason.DESTINATION_EID_UNAVAILABLE
    )
    assert StatusReportReason(11) is StatusReportReason.BLOCK_UNSUPPORTED
    assert AdminRecordType.BUNDLE_STATUS_REPORT == 1


def test_fragment_subject_round_trip() -> None:
    record = BundleStatusReport(
        StatusReportReason.LIFETIME_EXPIRED,
        SOURCE,
        CREATION,
        deleted=StatusAssertion(True),
        fragment_offset=1000,
        fragment_length=2**40,
    )
    payload = encode_admin_record(record)
    assert payload == _report(StatusKind.DELETED, 1, None, fragment=[1000, 2**40])
    decoded = decode_admin_record(payload)
    assert decoded == record
    assert isinstance(decoded, BundleStatusReport)
    assert decoded.subject_is_fragment
    assert decoded.subject_id.fragment_offset == 1000


def test_several_assertions_and_ipn_source() -> None:
    record = BundleStatusReport(
        StatusReportReason.NO_ADDITIONAL_INFORMATION,
        IpnEID(0, 977, 1),
        CREATION,
        received=StatusAssertion(True, 5),
        forwarded=StatusAssertion(True, 6),
    )
    decoded = decode_admin_record(encode_admin_record(record))
    assert decoded == record
    assert isinstance(decoded, BundleStatusReport)
    assert decoded.asserted_kinds == (StatusKind.RECEIVED, StatusKind.FORWARDED)


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        (
            {"received": StatusAssertion(True, 1), "deleted": StatusAssertion(True)},
            "status-time-inconsistent",
        ),
        ({"fragment_offset": 3}, "status-fragment-fields"),
        ({"fragment_length": 3}, "status-fragment-fields"),
        ({"fragment_offset": -1, "fragment_length": 3}, "uint-range"),
        ({"reason": -1}, "uint-range"),
        ({"reason": 2**64}, "uint-range"),
        ({"reason": True}, "uint-range"),
        ({"source": "dtn://src/app"}, "eid"),
        ({"creation": (1, 2)}, "creation"),
        ({"received": True}, "status-item"),
    ],
)
def test_invalid_values_raise_encode_error(kwargs: dict[str, object], rule: str) -> None:
    args: dict[str, object] = {"reason": 0, "source": SOURCE, "creation": CREATION}
    args.update(kwargs)
    with pytest.raises(EncodeError) as info:
        BundleStatusReport(**args)  # type: ignore[arg-type]
    assert info.value.rule == rule


@pytest.mark.parametrize(
    ("asserted", "time_ms", "rule"),
    [
        (False, 5, "status-time-not-asserted"),
        (1, None, "status-indicator"),
        (True, -1, "uint-range"),
        (True, 2**64, "uint-range"),
    ],
)
def test_invalid_assertions(asserted: object, time_ms: int | None, rule: str) -> None:
    with pytest.raises(EncodeError) as info:
        StatusAssertion(asserted, time_ms)  # type: ignore[arg-type]
    assert info.value.rule == rule


def _record(content: object) -> bytes:
    return bytes(cbor2.dumps([1, content]))


GOOD_ITEMS = [[False], [False], [True], [False]]
EID_CBOR = [1, "//src/app"]
TS = [800_000_000_000, 7]

MALFORMED = [
    # Wrong lengths (RFC 9171 §6.1.1: 4 or 6 items; status information at least 4; items 1 or 2).
    (_record([GOOD_ITEMS, 0, EID_CBOR]), "status-report-length"),
    (_record([GOOD_ITEMS, 0, EID_CBOR, TS, 5]), "status-report-length"),
    (_record([GOOD_ITEMS, 0, EID_CBOR, TS, 5, 6, 7]), "status-report-length"),
    (_record([GOOD_ITEMS[:3], 0, EID_CBOR, TS]), "status-information-length"),
    (_record([[[False], [False], [True, 1, 2], [False]], 0, EID_CBOR, TS]), "status-item-length"),
    (_record([[[False], [False], [], [False]], 0, EID_CBOR, TS]), "status-item-length"),
    (_record([GOOD_ITEMS, 0, EID_CBOR, [1, 2, 3]]), "creation-timestamp"),
    # Wrong types.
    (_record([[[0], [False], [True], [False]], 0, EID_CBOR, TS]), "cbor-type"),
    (_record([[[None], [False], [True], [False]], 0, EID_CBOR, TS]), "cbor-type"),
    (_record([[[False], [False], [True, "now"], [False]], 0, EID_CBOR, TS]), "cbor-type"),
    (_record([[[False], [False], [True, -5], [False]], 0, EID_CBOR, TS]), "cbor-type"),
    (_record([GOOD_ITEMS, "reason", EID_CBOR, TS]), "cbor-type"),
    (_record([GOOD_ITEMS, -1, EID_CBOR, TS]), "cbor-type"),
    (_record([GOOD_ITEMS, 0, "dtn://src/app", TS]), "cbor-type"),
    (_record([GOOD_ITEMS, 0, [3, "x"], TS]), "eid-unknown-scheme"),
    (_record([GOOD_ITEMS, 0, EID_CBOR, 5]), "cbor-type"),
    (_record([GOOD_ITEMS, 0, EID_CBOR, TS, "a", 1]), "cbor-type"),
    (_record({"items": GOOD_ITEMS}), "cbor-type"),
    (_record([[False, False, True, False], 0, EID_CBOR, TS]), "cbor-type"),
    # Rules between fields.
    (
        _record([[[False, 5], [False], [True], [False]], 0, EID_CBOR, TS]),
        "status-time-not-asserted",
    ),
    (_record([[[True, 5], [False], [True], [False]], 0, EID_CBOR, TS]), "status-time-inconsistent"),
    # Huge integers: a bignum tag, or more than 64 bits.
    (_record([GOOD_ITEMS, 2**64, EID_CBOR, TS]), "cbor-type"),
    (_record([GOOD_ITEMS, 0, EID_CBOR, [2**70, 1]]), "cbor-type"),
    # Not shortest form (RFC 9171 §4.1: deterministic encoding).
    (
        bytes.fromhex("8201")
        + bytes.fromhex("84")
        + cbor2.dumps(GOOD_ITEMS)
        + b"\x18\x00"
        + cbor2.dumps(EID_CBOR)
        + cbor2.dumps(TS),
        "cbor-not-shortest",
    ),
    # The record array itself.
    (bytes(cbor2.dumps([1])), "admin-record-length"),
    (bytes(cbor2.dumps([1, [GOOD_ITEMS, 0, EID_CBOR, TS], 3])), "admin-record-length"),
    (bytes(cbor2.dumps([1, [GOOD_ITEMS, 0, EID_CBOR, TS]])) + b"\x00", "admin-trailing-bytes"),
    (bytes(cbor2.dumps([1, [GOOD_ITEMS, 0, EID_CBOR, TS]]))[:-1], "cbor-truncated"),
    (b"", "cbor-truncated"),
    (b"\x82", "cbor-truncated"),
    (b"\x01", "cbor-type"),
]


@pytest.mark.parametrize(("payload", "rule"), MALFORMED)
def test_malformed_reports_raise_decode_error(payload: bytes, rule: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_admin_record(payload)
    assert info.value.rule == rule


def test_truncations_raise_decode_error() -> None:
    payload = encode_admin_record(
        BundleStatusReport(
            3, SOURCE, CREATION, StatusAssertion(True, NOW), fragment_offset=1, fragment_length=2
        )
    )
    for end in range(len(payload)):
        with pytest.raises(DecodeError):
            decode_admin_record(payload[:end])


def test_status_report_reason_range_error_is_admin_record_error() -> None:
    with pytest.raises(AdminRecordError, match="status-time-not-asserted"):
        decode_admin_record(_record([[[False, 5], [False], [True], [False]], 0, EID_CBOR, TS]))


def test_indefinite_lengths_and_extra_status_items_are_accepted_and_kept() -> None:
    # RFC 9171 §4.1 does not prohibit indefinite-length items; §6.1.1 says "at least 4" items.
    payload = (
        b"\x9f\x01\x9f\x85\x81\xf4\x9f\xf4\xff\x82\xf5\x05\x81\xf4\x81\xf5"
        + b"\x00"
        + cbor2.dumps(EID_CBOR)
        + b"\x9f\x01\x02\xff\xff\xff"
    )
    record = decode_admin_record(payload)
    assert record == BundleStatusReport(
        0, SOURCE, CreationTimestamp(1, 2), delivered=StatusAssertion(True, 5)
    )
    assert encode_admin_record(record) == payload
    assert (
        encode_admin_record(
            BundleStatusReport(
                0, SOURCE, CreationTimestamp(1, 2), delivered=StatusAssertion(True, 5)
            )
        )
        != payload
    )


@pytest.mark.parametrize("with_time", [False, True])
@pytest.mark.parametrize("fragment", [False, True])
def test_pyd3tn_status_reports_decode_and_match_our_encoding(
    with_time: bool, fragment: bool
) -> None:
    # pyd3tn (an implementation we did not write) builds the record; its times are whole
    # seconds since the DTN epoch.
    time = datetime.datetime(2000, 1, 1, 0, 16, 40, tzinfo=datetime.UTC) if with_time else None
    extra = (12, 34) if fragment else (None, None)
    theirs = D3StatusReport(
        D3StatusCode.FORWARDED_BUNDLE,
        6,
        D3EID("dtn://src/app"),
        [CREATION.time_ms, 7],
        *extra,
        time=time,
    )
    record = decode_admin_record(theirs.data)
    ours = BundleStatusReport(
        StatusReportReason.NO_KNOWN_ROUTE,
        SOURCE,
        CREATION,
        forwarded=StatusAssertion(True, 1000 if with_time else None),
        fragment_offset=extra[0],
        fragment_length=extra[1],
    )
    assert record == ours
    assert encode_admin_record(ours) == theirs.data


# ---------------------------------------------------------------------------------------------
# Status report bundles


@pytest.mark.parametrize("kind", list(StatusKind), ids=lambda k: k.name)
@pytest.mark.parametrize("time_requested", [False, True])
def test_build_status_report_bundle(kind: StatusKind, time_requested: bool) -> None:
    flags = BundleFlags.REPORT_DELIVERY | (
        BundleFlags.STATUS_TIME_REQUESTED if time_requested else 0
    )
    subject = _subject(flags)
    report = build_status_report_bundle(
        subject,
        source=REPORTER,
        kind=kind,
        reason=StatusReportReason.NO_ADDITIONAL_INFORMATION,
        now_dtn_ms=NOW,
        sequence=3,
    )
    wire = decode_bundle(report.encode())
    assert wire == report
    primary = wire.primary
    assert primary.destination == parse_eid("dtn://reports/inbox")
    assert primary.source == REPORTER
    assert primary.is_admin_record
    # RFC 9171 §4.2.3: an administrative record requests no status reports.
    assert not primary.flags & STATUS_REPORT_REQUEST_FLAGS
    assert primary.creation == CreationTimestamp(NOW, 3)
    assert primary.lifetime_ms == subject.primary.lifetime_ms
    record = admin_record_from_bundle(wire)
    assert isinstance(record, BundleStatusReport)
    assert record.subject_id == subject.bundle_id
    assert record.asserted_kinds == (kind,)
    assert record.assertions[kind].time_ms == (NOW if time_requested else None)


def test_build_status_report_bundle_for_a_fragment_subject() -> None:
    subject = fragment_at(_subject(BundleFlags.REPORT_RECEPTION), [20])[1]
    report = build_status_report_bundle(
        subject,
        source="ipn:5.0",
        kind=StatusKind.RECEIVED,
        reason=StatusReportReason.BLOCK_UNSUPPORTED,
        now_dtn_ms=NOW,
        include_time=False,
        lifetime_ms=60_000,
    )
    record = admin_record_from_bundle(report)
    assert isinstance(record, BundleStatusReport)
    assert (record.fragment_offset, record.fragment_length) == (20, 30)
    assert record.subject_id == subject.bundle_id
    assert report.primary.lifetime_ms == 60_000


@pytest.mark.parametrize(
    ("subject", "kwargs", "rule"),
    [
        (_subject(BundleFlags.REPORT_DELIVERY), {"include_time": True}, "status-time-flag"),
        (_subject(BundleFlags.STATUS_TIME_REQUESTED), {"include_time": False}, "status-time-flag"),
        (_subject(), {"source": "dtn://reporter/app"}, "admin-source-node-id"),
        (_subject(BundleFlags.ADMIN_RECORD), {}, "report-not-allowed"),
        (
            Bundle.build(
                source=DTN_NONE,
                destination="dtn://d/",
                payload=b"x",
                creation=CREATION,
                lifetime_ms=1,
                flags=BundleFlags.MUST_NOT_FRAGMENT,
            ),
            {},
            "report-not-allowed",
        ),
        (
            Bundle.build(
                source=SOURCE,
                destination="dtn://d/",
                payload=b"x",
                report_to=DTN_NONE,
                creation=CREATION,
                lifetime_ms=1,
            ),
            {},
            "report-to-null",
        ),
    ],
)
def test_build_status_report_bundle_refuses(
    subject: Bundle, kwargs: dict[str, object], rule: str
) -> None:
    args: dict[str, object] = {
        "source": REPORTER,
        "kind": StatusKind.DELETED,
        "reason": 1,
        "now_dtn_ms": NOW,
    }
    args.update(kwargs)
    with pytest.raises(EncodeError) as info:
        build_status_report_bundle(subject, **args)  # type: ignore[arg-type]
    assert info.value.rule == rule


def test_for_subject_requires_time_when_requested() -> None:
    with pytest.raises(EncodeError, match="status-time-missing"):
        BundleStatusReport.for_subject(
            _subject(BundleFlags.STATUS_TIME_REQUESTED), StatusKind.RECEIVED
        )
    record = BundleStatusReport.for_subject(_subject(), StatusKind.RECEIVED, time_ms=5)
    assert record.received == StatusAssertion(True)  # the subject did not ask for times
