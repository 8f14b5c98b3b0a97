"""The primary block (RFC 9171 §4.3.1) and creation timestamps (§4.2.7)."""

import cbor2
import pytest

from bpv7 import (
    DTN_NONE,
    BundleFlags,
    CBORError,
    CRCError,
    CRCType,
    CreationTimestamp,
    DecodeError,
    DtnEID,
    EIDError,
    EncodeError,
    IpnEID,
    PrimaryBlock,
    PrimaryBlockError,
    crc16_x25,
    crc32c,
    decode_bundle,
    dtn_time_from_unix,
    unix_from_dtn_time,
)
from tests.bpv7.strategies import RawItem, raw_bundle, raw_canonical, raw_primary

SRC = DtnEID("src")
DST = DtnEID("dst", "svc")
TS = CreationTimestamp(800_000_000_000, 1)


def primary(**changes: object) -> PrimaryBlock:
    fields: dict[str, object] = {
        "flags": BundleFlags(0),
        "crc_type": CRCType.CRC32C,
        "destination": DST,
        "source": SRC,
        "report_to": SRC,
        "creation": TS,
        "lifetime_ms": 1000,
    }
    fields.update(changes)
    return PrimaryBlock(**fields)  # type: ignore[arg-type]


def test_creation_timestamp_conversions() -> None:
    assert dtn_time_from_unix(946_684_800) == 0
    assert dtn_time_from_unix(946_684_801.5) == 1500
    assert unix_from_dtn_time(1500) == 946_684_801.5
    ts = CreationTimestamp.from_unix(1_700_000_000.25, 9)
    assert ts == CreationTimestamp(753_315_200_250, 9)
    assert ts.to_unix() == 1_700_000_000.25
    assert ts.has_clock
    assert CreationTimestamp(0, 5).to_unix() is None
    assert not CreationTimestamp(0, 5).has_clock
    with pytest.raises(EncodeError, match="creation time"):
        CreationTimestamp(-1, 0)
    with pytest.raises(EncodeError, match="sequence"):
        CreationTimestamp(0, 2**64)


@pytest.mark.parametrize(
    ("crc_type", "fragment", "count"),
    [
        (CRCType.NONE, False, 8),
        (CRCType.CRC16_X25, False, 9),
        (CRCType.NONE, True, 10),
        (CRCType.CRC32C, True, 11),
    ],
)
def test_encoded_array_length_and_crc(crc_type: CRCType, fragment: bool, count: int) -> None:
    block = primary(
        crc_type=crc_type,
        flags=BundleFlags.IS_FRAGMENT if fragment else BundleFlags(0),
        fragment_offset=5 if fragment else None,
        total_adu_length=50 if fragment else None,
    )
    raw = block.encode()
    items = cbor2.loads(raw)
    assert len(items) == count
    assert items[:3] == [7, int(block.flags), crc_type]
    assert items[6] == [TS.time_ms, TS.sequence]
    if fragment:
        assert items[8:10] == [5, 50]
    if crc_type:
        length = 2 if crc_type == CRCType.CRC16_X25 else 4
        zeroed = raw[:-length] + bytes(length)
        fn = crc16_x25 if crc_type == CRCType.CRC16_X25 else crc32c
        assert items[-1] == fn(zeroed).to_bytes(length, "big")
    assert block.encode() is raw  # cached


def test_int_flags_and_crc_type_are_converted() -> None:
    block = primary(flags=0x20, crc_type=1)
    assert type(block.flags) is BundleFlags and block.flags == BundleFlags.ACK_REQUESTED
    assert block.crc_type is CRCType.CRC16_X25


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"version": 6}, "version"),
        ({"flags": -1}, "uint-range"),
        ({"crc_type": 3}, "crc-type"),
        ({"destination": "dtn://x/"}, "eid"),
        ({"creation": (1, 2)}, "creation"),
        ({"lifetime_ms": 2**64}, "uint-range"),
        ({"flags": BundleFlags.IS_FRAGMENT}, "fragment-fields"),
        ({"fragment_offset": 1, "total_adu_length": 2}, "fragment-fields"),
        (
            {"flags": BundleFlags.IS_FRAGMENT, "fragment_offset": -1, "total_adu_length": 2},
            "uint-range",
        ),
        (
            {"flags": BundleFlags.ADMIN_RECORD | BundleFlags.REPORT_DELIVERY},
            "admin-record-report-request",
        ),
        ({"source": DTN_NONE}, "anonymous-must-not-fragment"),
        ({"source": IpnEID(0, 0, 0)}, "anonymous-must-not-fragment"),
        (
            {
                "source": DTN_NONE,
                "flags": BundleFlags.MUST_NOT_FRAGMENT | BundleFlags.REPORT_RECEPTION,
            },
            "anonymous-report-request",
        ),
        ({"source": DtnEID("n", "~group")}, "source-not-singleton"),
    ],
)
def test_constructor_rules(changes: dict[str, object], rule: str) -> None:
    with pytest.raises(EncodeError) as info:
        primary(**changes)
    assert info.value.rule == rule


def test_anonymous_and_admin_bundles_that_follow_the_rules() -> None:
    primary(source=DTN_NONE, flags=BundleFlags.MUST_NOT_FRAGMENT)
    primary(flags=BundleFlags.ADMIN_RECORD | BundleFlags.STATUS_TIME_REQUESTED)


def test_unknown_flags_survive_a_round_trip() -> None:
    flags = (1 << 40) | 0x8 | 0x8000 | BundleFlags.MUST_NOT_FRAGMENT
    raw = raw_bundle(raw_primary(flags=flags))
    decoded = decode_bundle(raw)
    assert decoded.primary.flags == flags
    assert BundleFlags.MUST_NOT_FRAGMENT in decoded.primary.flags
    assert decoded.encode() == raw


def _primary_error(primary_bytes: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_bundle(raw_bundle(primary_bytes))
    return info.value


@pytest.mark.parametrize(
    ("primary_bytes", "rule", "error_type"),
    [
        (b"\xa0", "cbor-type", CBORError),
        (raw_primary(version=6), "version", PrimaryBlockError),
        (raw_primary(version=RawItem(b"\x18\x07")), "cbor-not-shortest", CBORError),
        (raw_primary(crc_type=3), "crc-type", CRCError),
        (raw_primary(flags=RawItem(b"\x18\x01")), "cbor-not-shortest", CBORError),
        (raw_primary(flags=RawItem(b"\x20")), "cbor-type", CBORError),
        (raw_primary(lifetime=RawItem(b"\x1a\x00\x00\xff\xff")), "cbor-not-shortest", CBORError),
        (
            raw_primary(lifetime=RawItem(b"\xfb\x00\x00\x00\x00\x00\x00\x00\x00")),
            "cbor-type",
            CBORError,
        ),
        (raw_primary(creation=[1, 2, 3]), "creation-timestamp", PrimaryBlockError),
        (
            raw_primary(creation=RawItem(b"\x9f\x01\x02\x03\xff")),
            "creation-timestamp",
            PrimaryBlockError,
        ),
        (raw_primary(creation=5), "cbor-type", CBORError),
        (raw_primary(destination=(3, 0)), "eid-unknown-scheme", EIDError),
        (raw_primary(source=(1, "//n/~group")), "source-not-singleton", PrimaryBlockError),
        (raw_primary(source=(1, 0)), "anonymous-must-not-fragment", PrimaryBlockError),
        (
            raw_primary(flags=BundleFlags.ADMIN_RECORD | BundleFlags.REPORT_DELETION),
            "admin-record-report-request",
            PrimaryBlockError,
        ),
        # flags say fragment but the fields are missing: 9 items where 11 are needed
        (raw_primary(flags=1), "primary-array-length", PrimaryBlockError),
        # fragment fields without the flag
        (raw_primary(fragment=(1, 10)), "primary-array-length", PrimaryBlockError),
        (
            raw_primary(crc_type=0, extra=(b"\x00\x00\x00\x00",)),
            "primary-array-length",
            PrimaryBlockError,
        ),
        (raw_primary(head=b"\x87"), "primary-array-length", PrimaryBlockError),
        (raw_primary(head=b"\x8c"), "primary-array-length", PrimaryBlockError),
        (
            raw_primary(head=b"\x9f", crc_type=0, extra=(1,)),
            "primary-array-length",
            PrimaryBlockError,
        ),
        (raw_primary(head=b"\x9f", extra=(1,)), "cbor-type", CBORError),
    ],
)
def test_decode_rejects(primary_bytes: bytes, rule: str, error_type: type[DecodeError]) -> None:
    error = _primary_error(primary_bytes)
    assert error.rule == rule, error
    assert isinstance(error, error_type)


@pytest.mark.parametrize("crc_type", [1, 2])
def test_crc_checked_over_received_bytes(crc_type: int) -> None:
    good = raw_primary(crc_type=crc_type)
    decode_bundle(raw_bundle(good))
    bad = good[:-1] + bytes([good[-1] ^ 1])
    error = _primary_error(bad)
    assert isinstance(error, CRCError) and error.rule == "crc-mismatch"
    # Corrupting a covered byte (the lifetime) is caught too.
    index = good.index(b"\x1a\x00\x36\xee\x80") + 4
    corrupted = good[:index] + bytes([good[index] ^ 0x40]) + good[index + 1 :]
    assert _primary_error(corrupted).rule == "crc-mismatch"


@pytest.mark.parametrize(
    ("crc_type", "field"),
    [
        (1, b"\x44\x00\x00\x00\x00"),
        (2, b"\x42\x00\x00"),
        (2, b"\x58\x04\x00\x00\x00\x00"),
        (2, b"\x00"),
    ],
)
def test_crc_field_must_have_the_type_length(crc_type: int, field: bytes) -> None:
    items = [7, 0, crc_type, [1, "//d/"], [1, "//s/"], [1, "//s/"], [1, 1], 1]
    raw = b"\x89" + b"".join(cbor2.dumps(i) for i in items) + field
    error = _primary_error(raw)
    assert error.rule in ("crc-length", "cbor-type")


def test_indefinite_length_primary_block_is_accepted_and_reproduced() -> None:
    # RFC 9171 §4.1 does not prohibit indefinite-length items; the CRC covers the break (§4.3.1).
    raw = raw_bundle(raw_primary(head=b"\x9f", crc_type=1), raw_canonical())
    decoded = decode_bundle(raw)
    assert decoded.primary.crc_type == CRCType.CRC16_X25
    assert decoded.encode() == raw


def test_fragment_primary_round_trip() -> None:
    raw = raw_bundle(
        raw_primary(flags=BundleFlags.IS_FRAGMENT, fragment=(3, 20)), raw_canonical(data=b"abc")
    )
    decoded = decode_bundle(raw)
    assert decoded.primary.fragment_offset == 3
    assert decoded.primary.total_adu_length == 20
    assert decoded.primary.is_fragment and decoded.is_fragment
    assert decoded.encode() == raw


def test_replace_reencodes_with_fresh_crc() -> None:
    import dataclasses

    decoded = decode_bundle(raw_bundle()).primary
    changed = dataclasses.replace(decoded, lifetime_ms=5)
    items = cbor2.loads(changed.encode())
    assert items[7] == 5
    assert changed.encode() != decoded.encode()
    zeroed = changed.encode()[:-4] + bytes(4)
    assert items[-1] == crc32c(zeroed).to_bytes(4, "big")
