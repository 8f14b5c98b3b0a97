"""Administrative records as a whole (RFC 9171 §6.1): round trips and robustness, by
hypothesis.

The strategies draw no empty byte strings: under ``python -bb`` hypothesis's internal example
cache compares a drawn ``b""`` with a drawn ``0`` (both hash to 0) and the BytesWarning becomes
an error. Empty inputs are covered by explicit cases instead.
"""

from __future__ import annotations

import dataclasses

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpv7 import DecodeError, EncodeError
from bpv7.admin import (
    AdminRecord,
    BibePdu,
    BundleStatusReport,
    CustodySignal,
    StatusAssertion,
    TransmissionIdRange,
    UnknownAdminRecord,
    decode_admin_record,
    encode_admin_record,
    record_type_of,
)
from tests.bpv7.strategies import creation_timestamps, eids

UINT64 = st.integers(0, 2**64 - 1)
SMALL = st.one_of(st.integers(0, 30), st.integers(0, 70_000), UINT64)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def status_reports(draw: st.DrawFn) -> BundleStatusReport:
    timed = draw(st.booleans())
    items = []
    for _ in range(4):
        asserted = draw(st.booleans())
        items.append(StatusAssertion(asserted, draw(SMALL) if asserted and timed else None))
    fragment = draw(st.booleans())
    return BundleStatusReport(
        draw(SMALL),
        draw(eids()),
        draw(creation_timestamps),
        *items,
        draw(SMALL) if fragment else None,
        draw(SMALL) if fragment else None,
    )


@st.composite
def bibe_pdus(draw: st.DrawFn) -> BibePdu:
    transmission_id = draw(SMALL)
    retransmission = draw(SMALL) if transmission_id else 0
    return BibePdu(transmission_id, retransmission, draw(st.binary(min_size=1, max_size=300)))


@st.composite
def ranges(draw: st.DrawFn) -> TransmissionIdRange:
    first = draw(st.integers(1, 2**64 - 1))
    return TransmissionIdRange(first, draw(st.integers(1, min(2**64 - first, 2**40))))


custody_signals = st.builds(CustodySignal, SMALL, st.lists(ranges(), max_size=6).map(tuple))

cbor_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64 - 1),
        st.binary(min_size=1, max_size=8),
        st.text(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)

unknown_records = st.builds(
    UnknownAdminRecord,
    st.one_of(st.sampled_from([0, 2, 5, 64443]), UINT64).filter(lambda t: t not in (1, 3, 4)),
    cbor_values.map(lambda v: bytes(cbor2.dumps(v))),
)

records = st.one_of(status_reports(), bibe_pdus(), custody_signals, unknown_records)


@SETTINGS
@given(records)
def test_encode_decode_round_trip(record: AdminRecord) -> None:
    payload = encode_admin_record(record)
    decoded = decode_admin_record(payload)
    assert decoded == record
    assert record_type_of(decoded) == record_type_of(record)
    assert encode_admin_record(decoded) == payload
    # A fresh copy (no remembered bytes) encodes the same way.
    assert encode_admin_record(dataclasses.replace(decoded)) == payload
    # cbor2, a decoder we did not write, reads the same two-item array.
    assert cbor2.loads(payload)[0] == record_type_of(record)


def _check_decode(payload: bytes) -> None:
    try:
        record = decode_admin_record(payload)
    except DecodeError:
        return
    # Whatever decodes re-encodes to the same bytes, and its value survives a fresh encoding.
    assert encode_admin_record(record) == payload
    assert decode_admin_record(encode_admin_record(dataclasses.replace(record))) == record


@SETTINGS
@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(payload: bytes) -> None:
    _check_decode(payload)


@SETTINGS
@given(records, st.data())
def test_mutated_records_raise_only_decode_error(record: AdminRecord, data: st.DataObject) -> None:
    payload = bytearray(encode_admin_record(record))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if action == "cut":
            del payload[data.draw(st.integers(0, len(payload))) :]
        elif not payload:
            continue
        elif action == "flip":
            index = data.draw(st.integers(0, len(payload) - 1))
            payload[index] = data.draw(st.integers(0, 255))
        elif action == "insert":
            payload.insert(data.draw(st.integers(0, len(payload))), data.draw(st.integers(0, 255)))
        else:
            del payload[data.draw(st.integers(0, len(payload) - 1))]
    _check_decode(bytes(payload))


@SETTINGS
@given(st.sampled_from([1, 3, 4]), cbor_values)
def test_well_formed_cbor_of_known_types_raises_only_decode_error(
    record_type: int, content: object
) -> None:
    _check_decode(bytes(cbor2.dumps([record_type, content])))


@pytest.mark.parametrize(
    "payload",
    [
        b"\x82\x05" + b"\x81" * 40 + b"\x00",  # nested deeper than the opaque-item limit
        b"\x82\x05" + b"\x9f" * 5000,
        b"\x82\x05\xbb" + b"\xff" * 8,  # a map claiming 2^64-1 entries
        b"\x82\x05\x5b" + b"\xff" * 8,  # a byte string claiming 2^64-1 bytes
        b"\x82\x05\xf8\x10",  # a two-byte simple value below 32
        b"\x82\x05\x5f\x61a\xff",  # a text chunk in an indefinite byte string
        b"\x82\x05\xfc",  # reserved additional information
        b"\x82\x05\xff",  # a lone break
        b"\x9f\x05\x00",  # indefinite record array without its break
        b"\x9f\x05\x00\x00\xff",
        b"\x82\x1b\xff\xff\xff\xff\xff\xff\xff\xff",  # content missing
    ],
)
def test_hostile_opaque_content_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_admin_record(payload)


def test_opaque_content_forms_are_accepted() -> None:
    for content in [
        b"\xf9\x3c\x00",
        b"\xfa\x3f\x80\x00\x00",
        b"\xf8\x20",
        b"\xc1\x1a\x00\x01\x00\x00",
        b"\x7f\x61a\x61b\xff",
        b"\xbf\x01\x02\xff",
        b"\xf7",
    ]:
        payload = b"\x82\x05" + content
        record = decode_admin_record(payload)
        assert record == UnknownAdminRecord(5, content)
        assert encode_admin_record(record) == payload


@pytest.mark.parametrize(
    ("record_type", "content", "rule"),
    [
        (1, b"\x80", "admin-record-type"),
        (3, b"\x80", "admin-record-type"),
        (9, b"", "admin-content"),
        (9, b"\x80\x80", "admin-content"),
        (9, b"\x81", "admin-content"),
        (-1, b"\x80", "uint-range"),
        (2**64, b"\x80", "uint-range"),
    ],
)
def test_unknown_record_value_checks(record_type: int, content: bytes, rule: str) -> None:
    with pytest.raises(EncodeError) as info:
        UnknownAdminRecord(record_type, content)
    assert info.value.rule == rule


def test_encode_refuses_non_records() -> None:
    with pytest.raises(EncodeError, match="admin-record-type"):
        encode_admin_record("a report")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        decode_admin_record("\x82\x01")  # type: ignore[arg-type]
