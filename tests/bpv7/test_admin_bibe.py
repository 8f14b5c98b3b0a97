"""BIBE records (draft-ietf-dtn-bibect-05): BPDUs, custody signals, encapsulation."""

from __future__ import annotations

import cbor2
import pytest

from bpv7 import (
    Bundle,
    BundleFlags,
    CreationTimestamp,
    DecodeError,
    EncodeError,
    HopCountBlock,
    decode_bundle,
    parse_eid,
)
from bpv7.admin import (
    AdminRecordError,
    AdminRecordType,
    BibePdu,
    BundleStatusReport,
    CustodyDisposition,
    CustodySignal,
    TransmissionIdRange,
    UnknownAdminRecord,
    admin_record_from_bundle,
    decode_admin_record,
    encapsulate_bundle,
    encode_admin_record,
    extract_encapsulated_bundle,
)
from bpv7.fragment import fragment_at

INNER = Bundle.build(
    source="ipn:10.1",
    destination="ipn:20.1",
    payload=b"inner payload" * 20,
    creation=CreationTimestamp(800_000_000_000, 3),
    lifetime_ms=120_000,
    extra_blocks=[HopCountBlock(16, 2)],
)


def test_record_type_codes() -> None:
    assert AdminRecordType.BIBE_PDU == 3
    assert AdminRecordType.CUSTODY_SIGNAL == 4
    assert BibePdu.RECORD_TYPE is AdminRecordType.BIBE_PDU
    assert CustodySignal.RECORD_TYPE is AdminRecordType.CUSTODY_SIGNAL


@pytest.mark.parametrize(
    ("transmission_id", "retransmission_time"),
    [(0, 0), (1, 0), (1, 800_000_060_000), (2**64 - 1, 2**64 - 1), (24, 255)],
)
def test_bpdu_round_trip(transmission_id: int, retransmission_time: int) -> None:
    inner = INNER.encode()
    pdu = BibePdu(transmission_id, retransmission_time, inner)
    payload = encode_admin_record(pdu)
    assert payload == cbor2.dumps([3, [transmission_id, retransmission_time, inner]])
    decoded = decode_admin_record(payload)
    assert decoded == pdu
    assert isinstance(decoded, BibePdu)
    assert decoded.custody_requested == (transmission_id != 0)
    assert decoded.bundle() == INNER
    assert encode_admin_record(decoded) == payload


def test_bpdu_without_custody_has_zero_retransmission_time() -> None:
    # draft-ietf-dtn-bibect-05: both are zero when custody transfer is not requested.
    with pytest.raises(EncodeError, match="bpdu-retransmission-time") as info:
        BibePdu(0, 5, b"")
    assert "draft-ietf-dtn-bibect-05" in str(info.value)
    assert info.value.rfc == 0
    with pytest.raises(AdminRecordError, match="bpdu-retransmission-time"):
        decode_admin_record(cbor2.dumps([3, [0, 5, b"x"]]))


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        ([1, 2], "bpdu-length"),
        ([1, 2, b"x", 4], "bpdu-length"),
        ([1, 2, "text"], "cbor-type"),
        ([1, 2, [1, 2]], "cbor-type"),
        ([-1, 2, b"x"], "cbor-type"),
        ([1, 2**64, b"x"], "cbor-type"),
        ([1.5, 2, b"x"], "cbor-type"),
        ({"id": 1}, "cbor-type"),
        (b"bundle", "cbor-type"),
    ],
)
def test_malformed_bpdu(content: object, rule: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_admin_record(cbor2.dumps([3, content]))
    assert info.value.rule == rule


def test_bpdu_indefinite_byte_string_is_refused() -> None:
    # draft-ietf-dtn-bibect-05: "a CBOR byte string of definite length".
    payload = b"\x82\x03\x83\x01\x02\x5f\x41\x00\xff"
    with pytest.raises(DecodeError, match="cbor-indefinite-bytes"):
        decode_admin_record(payload)


def test_bpdu_indefinite_arrays_round_trip_exactly() -> None:
    payload = b"\x9f\x03\x9f\x01\x02\x43abc\xff\xff"
    record = decode_admin_record(payload)
    assert record == BibePdu(1, 2, b"abc")
    assert encode_admin_record(record) == payload


def test_bpdu_invalid_inner_bundle_only_fails_on_access() -> None:
    pdu = decode_admin_record(cbor2.dumps([3, [0, 0, b"not a bundle"]]))
    assert isinstance(pdu, BibePdu)
    with pytest.raises(DecodeError):
        pdu.bundle()


# ---------------------------------------------------------------------------------------------
# Custody signals

ALL_DISPOSITIONS = [*CustodyDisposition, 1, 2, 9, 255, 2**64 - 1]


@pytest.mark.parametrize("disposition", ALL_DISPOSITIONS, ids=str)
def test_custody_signal_round_trip_every_disposition(disposition: int) -> None:
    signal = CustodySignal(disposition, (TransmissionIdRange(1, 1), TransmissionIdRange(5, 300)))
    payload = encode_admin_record(signal)
    assert payload == cbor2.dumps([4, [disposition, [[1, 1], [5, 300]]]])
    decoded = decode_admin_record(payload)
    assert decoded == signal
    assert isinstance(decoded, CustodySignal)
    known = disposition in set(CustodyDisposition)
    assert type(decoded.disposition) is (CustodyDisposition if known else int)
    assert decoded.accepted == (disposition == 0)
    assert encode_admin_record(decoded) == payload


def test_disposition_codes() -> None:
    # draft-ietf-dtn-bibect-05: 0 is "custody accepted"; refusals reuse the RFC 5050 custody
    # signal reason numbers.
    assert {d.name: int(d) for d in CustodyDisposition} == {
        "ACCEPTED": 0,
        "REDUNDANT": 3,
        "DEPLETED_STORAGE": 4,
        "DESTINATION_EID_UNINTELLIGIBLE": 5,
        "NO_KNOWN_ROUTE": 6,
        "NO_TIMELY_CONTACT": 7,
        "BLOCK_UNINTELLIGIBLE": 8,
    }


def test_for_ids_merges_into_sorted_ranges() -> None:
    signal = CustodySignal.for_ids(CustodyDisposition.DEPLETED_STORAGE, [9, 3, 4, 5, 3, 11, 10, 1])
    assert signal.ranges == (
        TransmissionIdRange(1, 1),
        TransmissionIdRange(3, 3),
        TransmissionIdRange(9, 3),
    )
    assert [signal.covers(i) for i in range(13)] == [
        False,
        True,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    assert list(signal.ranges[1]) == [3, 4, 5]
    assert signal.ranges[2].last == 11
    assert CustodySignal.for_ids(0, []).ranges == ()
    empty = decode_admin_record(encode_admin_record(CustodySignal.for_ids(0, [])))
    assert empty == CustodySignal(0, ())


def test_range_at_the_top_of_the_id_space() -> None:
    top = TransmissionIdRange(2**64 - 1, 1)
    assert 2**64 - 1 in top and top.last == 2**64 - 1
    signal = CustodySignal(0, [top])  # type: ignore[arg-type]
    assert signal.ranges == (top,)
    assert decode_admin_record(encode_admin_record(signal)) == signal


@pytest.mark.parametrize(
    ("first", "count", "rule"),
    [
        (0, 1, "signal-id-zero"),
        (1, 0, "signal-range"),
        (2**64 - 1, 2, "signal-range"),
        (-1, 1, "uint-range"),
        (1, 2**64, "uint-range"),
    ],
)
def test_invalid_ranges(first: int, count: int, rule: str) -> None:
    with pytest.raises(EncodeError) as info:
        TransmissionIdRange(first, count)
    assert info.value.rule == rule
    if 0 <= first < 2**64 and 0 <= count < 2**64:
        with pytest.raises(AdminRecordError) as decode_info:
            decode_admin_record(cbor2.dumps([4, [0, [[first, count]]]]))
        assert decode_info.value.rule == rule


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        ([0], "signal-length"),
        ([0, [[1, 1]], 7], "signal-length"),
        ([0, [[1]]], "signal-range-length"),
        ([0, [[1, 2, 3]]], "signal-range-length"),
        ([0, [1, 2]], "cbor-type"),
        ([0, 5], "cbor-type"),
        (["ok", [[1, 1]]], "cbor-type"),
        ([-3, [[1, 1]]], "cbor-type"),
        ([0, [[1, -1]]], "cbor-type"),
        ([0, [[2**64, 1]]], "cbor-type"),
    ],
)
def test_malformed_custody_signal(content: object, rule: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_admin_record(cbor2.dumps([4, content]))
    assert info.value.rule == rule


def test_custody_signal_value_checks() -> None:
    with pytest.raises(EncodeError, match="signal-range-type"):
        CustodySignal(0, ((1, 1),))  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="uint-range"):
        CustodySignal(-1, ())


# ---------------------------------------------------------------------------------------------
# Encapsulation


@pytest.mark.parametrize("given_as_bytes", [False, True])
def test_encapsulate_and_extract(given_as_bytes: bool) -> None:
    inner_bytes = INNER.encode()
    outer = encapsulate_bundle(
        inner_bytes if given_as_bytes else INNER,
        source="ipn:1.0",
        destination="ipn:2.12",
        now_dtn_ms=900_000_000_000,
        sequence=4,
        transmission_id=17,
        retransmission_time_ms=900_000_060_000,
    )
    wire = decode_bundle(outer.encode())
    assert wire.is_admin_record
    assert wire.primary.destination == parse_eid("ipn:2.12")
    assert wire.primary.lifetime_ms == INNER.primary.lifetime_ms
    assert wire.primary.creation == CreationTimestamp(900_000_000_000, 4)
    pdu, inner = extract_encapsulated_bundle(wire)
    assert pdu == BibePdu(17, 900_000_060_000, inner_bytes)
    assert pdu.encapsulated_bundle == inner_bytes  # carried byte for byte
    assert inner == INNER


def test_encapsulate_refuses_report_requests_and_bad_inner() -> None:
    with pytest.raises(EncodeError, match="admin-record-report-request"):
        encapsulate_bundle(
            INNER,
            source="ipn:1.0",
            destination="ipn:2.12",
            now_dtn_ms=1,
            flags=BundleFlags.REPORT_DELIVERY,
        )
    with pytest.raises(DecodeError):
        encapsulate_bundle(b"\x9f\xff", source="ipn:1.0", destination="ipn:2.12", now_dtn_ms=1)


def test_extract_refuses_other_bundles() -> None:
    plain = Bundle.build(
        source="ipn:1.0",
        destination="ipn:2.12",
        payload=b"x",
        creation=CreationTimestamp(1, 0),
        lifetime_ms=5,
    )
    with pytest.raises(AdminRecordError, match="not-admin-record"):
        extract_encapsulated_bundle(plain)
    report = Bundle.build(
        source="ipn:1.0",
        destination="ipn:2.12",
        creation=CreationTimestamp(1, 0),
        lifetime_ms=5,
        flags=BundleFlags.ADMIN_RECORD,
        payload=encode_admin_record(
            BundleStatusReport(0, parse_eid("ipn:3.1"), CreationTimestamp(1, 1))
        ),
    )
    with pytest.raises(AdminRecordError, match="not-bpdu"):
        extract_encapsulated_bundle(report)
    outer = encapsulate_bundle(INNER, source="ipn:1.0", destination="ipn:2.12", now_dtn_ms=1)
    piece = fragment_at(outer, [10])[0]
    with pytest.raises(EncodeError, match="reassemble-first"):
        admin_record_from_bundle(piece)
    garbage = Bundle.build(
        source="ipn:1.0",
        destination="ipn:2.12",
        creation=CreationTimestamp(1, 0),
        lifetime_ms=5,
        flags=BundleFlags.ADMIN_RECORD,
        payload=encode_admin_record(BibePdu(0, 0, INNER.encode()[:-3])),
    )
    with pytest.raises(DecodeError):
        extract_encapsulated_bundle(garbage)


def test_unknown_record_types_are_kept() -> None:
    # A record type this codec does not know (e.g. µD3TN's experimental BPDU code 64443).
    payload = cbor2.dumps([64443, [0, 0, INNER.encode()]])
    record = decode_admin_record(payload)
    assert isinstance(record, UnknownAdminRecord)
    assert record.record_type == 64443
    assert record.content == cbor2.dumps([0, 0, INNER.encode()])
    assert encode_admin_record(record) == payload
    assert encode_admin_record(UnknownAdminRecord(64443, record.content)) == payload
