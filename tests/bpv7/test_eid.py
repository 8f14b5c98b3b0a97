"""Endpoint IDs: URI text, CBOR data model, CBOR bytes (RFC 9171 §4.2.5, RFC 9758)."""

import cbor2
import pytest

from bpv7 import (
    DTN_NONE,
    MAX_EID_LENGTH,
    DecodeError,
    DtnEID,
    EIDError,
    EIDScheme,
    EncodeError,
    IpnEID,
    eid_from_bytes,
    eid_from_cbor,
    eid_to_cbor,
    parse_eid,
)

VALID_TEXT = [
    ("dtn:none", DTN_NONE, "820100"),
    ("dtn://node1/", DtnEID("node1"), "820168" + b"//node1/".hex()),
    ("dtn://node1/incoming", DtnEID("node1", "incoming"), None),
    ("dtn://a.b-c_d~e%20/~group/x?y#z", DtnEID("a.b-c_d~e%20", "~group/x?y#z"), None),
    ("ipn:0.0", IpnEID(0, 0, 0), "8202820000"),
    ("ipn:977000.1", IpnEID(0, 977000, 1), "8202821a000ee86801"),
    ("ipn:!.7", IpnEID(0, 0xFFFFFFFF, 7), "8202821affffffff07"),
    ("ipn:3.4.5", IpnEID(3, 4, 5), "820283030405"),
    (
        "ipn:4294967295.4294967295.18446744073709551615",
        IpnEID(2**32 - 1, 2**32 - 1, 2**64 - 1),
        "8202831affffffff1affffffff1bffffffffffffffff",
    ),
]


@pytest.mark.parametrize(("text", "eid", "cbor_hex"), VALID_TEXT)
def test_parse_and_str_round_trip(text: str, eid: object, cbor_hex: str | None) -> None:
    parsed = parse_eid(text)
    assert parsed == eid
    assert str(parsed) == text
    assert parse_eid(str(parsed)) == parsed
    assert eid_from_bytes(parsed.cbor) == parsed
    assert eid_from_cbor(eid_to_cbor(parsed)) == parsed
    assert cbor2.dumps(eid_to_cbor(parsed)) == parsed.cbor
    if cbor_hex is not None:
        assert parsed.cbor.hex() == cbor_hex


def test_dtn_none_is_cbor_1_0() -> None:
    assert DTN_NONE.cbor == bytes.fromhex("820100")
    assert eid_to_cbor(DTN_NONE) == [1, 0]
    assert DTN_NONE.is_null and not DTN_NONE.is_singleton and not DTN_NONE.is_node_id
    assert DTN_NONE.scheme is EIDScheme.DTN
    assert eid_from_cbor([1, 0]) is DTN_NONE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dtn:", "must be 'none'"),
        ("dtn:foo", "must be 'none'"),
        ("dtn://node", "lacks the '/'"),
        ("dtn:///demux", "empty node name"),
        ("dtn:///", "empty node name"),
        ("dtn://no de/", "invalid dtn node name"),
        ("dtn://node/with space", "invalid dtn demux"),
        ("dtn://node/caf\u00e9", "invalid dtn demux"),
        ("dtn://n%zz/", "invalid dtn node name"),
        ("ipn:1", "must be ipn:node.service"),
        ("ipn:1.2.3.4", "must be ipn:node.service"),
        ("ipn:01.2", "bad number"),
        ("ipn:1.-2", "bad number"),
        ("ipn:a.2", "bad number"),
        ("ipn:!.!", "bad number"),
        ("ipn:4294967296.1", "out of range"),
        ("ipn:1.4294967296.1", "out of range"),
        ("ipn:1.18446744073709551616", "out of range"),
        ("http://example.com/", "unsupported EID scheme"),
        ("nocolon", "not a URI"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(EIDError, match=message):
        parse_eid(text)


@pytest.mark.parametrize("value", [None, b"dtn:none", ["dtn:none"]])
def test_parse_rejects_non_text(value: object) -> None:
    with pytest.raises(EIDError, match="must be str"):
        parse_eid(value)  # type: ignore[arg-type]


def test_huge_eids_are_not_cached() -> None:
    from bpv7 import eid as eid_module

    name = "n" * 1000  # long, within MAX_EID_LENGTH
    eid = DtnEID(name, "x")
    assert eid_from_bytes(eid.cbor) == eid
    assert parse_eid(str(eid)) == eid
    assert eid.cbor not in eid_module._CACHE
    assert str(eid) not in eid_module._TEXT_CACHE


def test_parse_is_case_insensitive_in_scheme() -> None:
    assert parse_eid("DTN://x/y") == DtnEID("x", "y")
    assert parse_eid("IPN:1.2") == IpnEID(0, 1, 2)


def test_eid_error_is_decode_error_and_value_error() -> None:
    with pytest.raises(DecodeError) as info:
        parse_eid("ipn:x.1")
    assert isinstance(info.value, ValueError)
    assert info.value.rule == "ipn-text"
    assert info.value.rfc == 9758


def test_constructor_misuse_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match="dtn node name"):
        DtnEID("", "x")
    with pytest.raises(EncodeError, match="out of range"):
        IpnEID(0, -1, 0)
    with pytest.raises(EncodeError, match="out of range"):
        IpnEID(0, True, 0)


def test_node_ids_and_singletons() -> None:
    app = DtnEID("n1", "app")
    assert app.node_id == DtnEID("n1") and app.node_id.is_node_id
    assert app.is_singleton and not app.is_node_id
    group = parse_eid("dtn://n1/~all")
    assert not group.is_singleton
    svc = IpnEID(0, 5, 9)
    assert svc.node_id == IpnEID(0, 5, 0) and svc.node_id.is_node_id
    assert svc.is_singleton and not svc.is_node_id
    assert IpnEID(0, 5, 0).node_id is not None


def test_ipn_null_forms() -> None:
    # RFC 9758: ipn:0.0 is the null EID; 0.0.N (N != 0) must be treated as null too.
    assert IpnEID(0, 0, 0).is_null
    assert IpnEID(0, 0, 7).is_null
    assert not IpnEID(0, 0, 7).is_singleton
    assert not IpnEID(1, 0, 0).is_null


def test_ipn_two_and_three_element_forms_round_trip() -> None:
    fqnn = (7 << 32) | 9
    two = eid_from_cbor([2, [fqnn, 3]])
    three = eid_from_cbor([2, [7, 9, 3]])
    assert isinstance(two, IpnEID) and isinstance(three, IpnEID)
    assert two == three == IpnEID(7, 9, 3)
    assert two.fqnn == three.fqnn == fqnn
    assert not two.three_element and three.three_element
    assert eid_to_cbor(two) == [2, [fqnn, 3]]
    assert eid_to_cbor(three) == [2, [7, 9, 3]]
    for eid in (two, three):
        assert eid_from_bytes(eid.cbor).cbor == eid.cbor
    # A three-element EID with allocator 0 keeps its form too.
    zero3 = eid_from_bytes(cbor2.dumps([2, [0, 9, 3]]))
    assert isinstance(zero3, IpnEID) and zero3.three_element
    assert zero3.cbor == cbor2.dumps([2, [0, 9, 3]])
    assert str(zero3) == "ipn:9.3"
    # The default form: three elements iff the allocator is non-zero.
    assert not IpnEID(0, 1, 2).three_element
    assert IpnEID(1, 1, 2).three_element


def test_indefinite_length_eid_arrays_are_accepted() -> None:
    # RFC 9171 §4.1: "indefinite-length items are not prohibited".
    raw = bytes.fromhex("9f029f0102ffff")
    assert eid_from_bytes(raw) == IpnEID(0, 1, 2)
    raw = bytes.fromhex("9f017f623a2f652f6e2f7878ffff")  # "//" "n/xx" as chunks
    raw = bytes.fromhex("9f01") + b"\x7f" + b"\x62//" + b"\x64n/xx" + b"\xff\xff"
    assert eid_from_bytes(raw) == DtnEID("n", "xx")


@pytest.mark.parametrize(
    ("raw_hex", "rule"),
    [
        ("", "cbor-truncated"),
        ("82", "cbor-truncated"),
        ("8201", "cbor-truncated"),
        ("830100", "eid-array"),
        ("81", "eid-array"),
        ("a0", "cbor-type"),
        ("820300", "eid-unknown-scheme"),
        ("820000", "eid-unknown-scheme"),
        ("820101", "dtn-ssp"),
        ("820140", "cbor-type"),
        ("8201646e6f6e65", "dtn-none-encoding"),
        ("8201622f2f", "dtn-ssp"),
        ("8201632f2f2f", "dtn-node-name"),
        ("820162c328", "cbor-bad-utf8"),
        ("82028101", "ipn-ssp"),
        ("8202840102030405", "ipn-ssp"),
        ("82029f01020304ff", "ipn-ssp"),
        ("82028201", "cbor-truncated"),
        ("8202820120", "cbor-type"),
        ("820282011801", "cbor-not-shortest"),
        ("820283011b000000010000000000", "ipn-range"),
        ("82018201", "cbor-type"),
        ("9f0100", "cbor-truncated"),
        ("9f010000", "eid-array"),
        ("82017f412fff", "cbor-malformed"),
        ("9c", "cbor-malformed"),
        ("82011c", "dtn-ssp"),
    ],
)
def test_decode_rejects(raw_hex: str, rule: str) -> None:
    with pytest.raises(DecodeError) as info:
        eid_from_bytes(bytes.fromhex(raw_hex))
    assert info.value.rule == rule, info.value


def test_trailing_bytes_rejected() -> None:
    with pytest.raises(EIDError, match="after the EID"):
        eid_from_bytes(DTN_NONE.cbor + b"\x00")


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [1],
        [1, 1],
        [1, "none"],
        [1, b"//a/"],
        [True, 0],
        [2, [1]],
        [2, [1, -1]],
        [2, [1, True]],
        [2, [1, 2, 3, 4]],
        [2, [2**64, 1]],
        [2, [2**32, 1, 1]],
        [3, 0],
    ],
)
def test_from_cbor_rejects(obj: object) -> None:
    with pytest.raises(EIDError):
        eid_from_cbor(obj)


def test_decode_cache_returns_equal_values() -> None:
    raw = DtnEID("cache-test", "x").cbor
    assert eid_from_bytes(raw) is eid_from_bytes(raw)
    assert eid_from_bytes(bytearray(raw)) == DtnEID("cache-test", "x")


@pytest.mark.parametrize(
    "text",
    ["dtn://a/" + "x" * 100_000, "dtn://" + "n" * 1_100 + "/", "ipn:1." + "1" * 5_000],
)
def test_eids_longer_than_our_bound_are_refused(text: str) -> None:
    with pytest.raises(EIDError, match=r"EID of \d+ characters is too long \(at most 1024\)"):
        parse_eid(text)


def test_the_length_bound_holds_for_values_and_cbor_too() -> None:
    longest = DtnEID("a", "x" * (MAX_EID_LENGTH - len("dtn://a/")))
    assert len(str(longest)) == MAX_EID_LENGTH
    assert eid_from_bytes(longest.cbor) == longest == parse_eid(str(longest))
    with pytest.raises(EncodeError, match="too long"):
        DtnEID("a", "x" * (MAX_EID_LENGTH - len("dtn://a/") + 1))
    too_long = b"\x82\x01\x79\x04\x01//a/" + b"x" * (1025 - 4)  # text of 1025 characters
    with pytest.raises(EIDError, match="too long"):
        eid_from_bytes(too_long)


def test_ipn_numbers_longer_than_twenty_digits_are_eid_errors() -> None:
    with pytest.raises(EIDError, match="bad number"):
        parse_eid("ipn:1." + "1" * 30)
    with pytest.raises(EIDError, match="bad number '1111"):
        parse_eid("ipn:1." + "1" * 900)  # (not Python's "Exceeds the limit" ValueError)
