"""``python -m bpv7 decode|encode`` and the JSON form of a bundle (bpv7.json_view)."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bpv7 import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleAgeBlock,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    HopCountBlock,
    IpnEID,
    PreviousNodeBlock,
    decode_bundle,
    parse_eid,
)
from bpv7.__main__ import main
from bpv7.json_view import (
    BundleJSONError,
    bundle_from_json,
    bundle_to_json,
    eid_from_json,
    eid_to_json,
)
from tests.bpv7.strategies import bundles, raw_bundle, raw_canonical, raw_primary


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
    """Run the CLI in-process; return (exit status, stdout bytes, stderr text)."""
    out = io.BytesIO()
    err = io.StringIO()
    status = main(argv, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def sample_bundle() -> Bundle:
    return Bundle.build(
        source="dtn://src/app",
        destination="ipn:5.7",
        report_to="ipn:1.2.3",
        payload=b"hello",
        creation=CreationTimestamp(800_000_000_000, 3),
        lifetime_ms=3_600_000,
        flags=BundleFlags.MUST_NOT_FRAGMENT | BundleFlags.REPORT_DELIVERY,
        extra_blocks=[
            HopCountBlock(30, 1),
            PreviousNodeBlock(parse_eid("ipn:9.0")),
            BundleAgeBlock(55),
            CanonicalBlock(200, 9, BlockFlags(0x11), CRCType.CRC16_X25, b"\x01\x02"),
        ],
    )


def decoded(bundle: Bundle) -> dict[str, Any]:
    status, out, err = run(["decode", bundle.encode().hex()])
    assert (status, err) == (0, "")
    result: dict[str, Any] = json.loads(out)
    return result


# ---------------------------------------------------------------------------------------------
# decode


def test_decode_prints_every_field() -> None:
    view = decoded(sample_bundle())
    primary = view["primary"]
    assert primary["flags"] == 0x20004
    assert primary["flag_names"] == ["MUST_NOT_FRAGMENT", "REPORT_DELIVERY"]
    assert (primary["crc_type"], primary["crc_type_name"], primary["crc_verified"]) == (
        2,
        "CRC32C",
        True,
    )
    assert (primary["destination"], primary["source"], primary["report_to"]) == (
        "ipn:5.7",
        "dtn://src/app",
        "ipn:1.2.3",
    )
    assert primary["creation"] == {
        "time_ms": 800_000_000_000,
        "sequence": 3,
        "utc": "2025-05-08T06:13:20.000+00:00",
    }
    assert primary["lifetime_ms"] == 3_600_000
    assert primary["fragment_offset"] is None and primary["total_adu_length"] is None
    assert [(b["type_code"], b["type"], b["number"]) for b in view["blocks"]] == [
        (10, "HOP_COUNT", 2),
        (6, "PREVIOUS_NODE", 3),
        (7, "BUNDLE_AGE", 4),
        (200, None, 9),
        (1, "PAYLOAD", 1),
    ]
    hop, previous, age, opaque, payload = view["blocks"]
    assert hop["hop_count"] == {"limit": 30, "count": 1}
    assert previous["previous_node"] == "ipn:9.0"
    assert age["bundle_age_ms"] == 55
    assert (opaque["flags"], opaque["flag_names"]) == (
        0x11,
        ["REPLICATE_IN_EVERY_FRAGMENT", "DISCARD_IF_UNPROCESSABLE"],
    )
    assert (opaque["crc_type_name"], opaque["crc_verified"], opaque["data"]) == (
        "CRC16_X25",
        True,
        "0102",
    )
    assert payload["data"] == b"hello".hex()
    assert view["payload_length"] == 5
    assert "admin_record" not in view


def test_decode_fragment_and_no_crc_fields() -> None:
    bundle = Bundle.build(
        source="ipn:1.1",
        destination="ipn:2.1",
        payload=b"abc",
        creation=CreationTimestamp(0, 7),
        lifetime_ms=1000,
        flags=BundleFlags.IS_FRAGMENT,
        fragment_offset=10,
        total_adu_length=20,
        crc_type=CRCType.CRC16_X25,
        extra_blocks=[
            CanonicalBlock(BlockType.BUNDLE_AGE, 2, BlockFlags(0), CRCType.NONE, b"\x05")
        ],
    )
    view = decoded(bundle)
    assert view["primary"]["flag_names"] == ["IS_FRAGMENT"]
    assert (view["primary"]["fragment_offset"], view["primary"]["total_adu_length"]) == (10, 20)
    assert view["primary"]["creation"] == {"time_ms": 0, "sequence": 7, "utc": None}
    age = view["blocks"][0]
    assert (age["crc_type"], age["crc_type_name"], age["crc_verified"]) == (0, "NONE", None)
    assert age["bundle_age_ms"] == 5


def test_decode_reads_hex_from_stdin_with_whitespace_and_binary_with_raw() -> None:
    data = sample_bundle().encode()
    hex_text = data.hex()
    spaced = "\n".join(hex_text[i : i + 30] for i in range(0, len(hex_text), 30)) + "\n"
    expected = run(["decode", hex_text])
    assert expected[0] == 0
    assert run(["decode", "-"], spaced.encode()) == expected
    assert run(["decode"], ("  " + spaced.upper()).encode()) == expected
    assert run(["decode", hex_text[:40] + " \t" + hex_text[40:]]) == expected
    assert run(["decode", "--raw"], data) == expected
    status, out, _ = run(["decode", "--compact", hex_text])
    assert status == 0 and out.count(b"\n") == 1
    assert json.loads(out) == json.loads(expected[1])


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["decode", "9f8z"], b"", "bad hex in argument: invalid character 'z'"),
        (["decode", "9f8"], b"", "bad hex in argument: odd number of hex digits"),
        (["decode", "-"], b"9f 88 g0", "bad hex in stdin: invalid character 'g'"),
        (["decode", "--raw", "9f"], b"", "--raw reads the bundle from stdin"),
    ],
)
def test_decode_bad_input_is_one_line(argv: list[str], stdin: bytes, message: str) -> None:
    status, out, err = run(argv, stdin)
    assert (status, out) == (1, b"")
    assert err.count("\n") == 1 and message in err


def _corrupt_crc(data: bytes) -> bytes:
    return data[:-3] + bytes([data[-3] ^ 1]) + data[-2:]


@pytest.mark.parametrize(
    ("data", "rule", "section"),
    [
        (_corrupt_crc(sample_bundle().encode()), "crc-mismatch", "5.6"),
        (sample_bundle().encode()[:-1], "cbor-truncated", "5.6"),
        (sample_bundle().encode() + b"\x00", "trailing-bytes", "4.1"),
        (b"", "cbor-truncated", "5.6"),
        (
            raw_bundle(raw_primary(), raw_canonical(), raw_canonical(7, 2, data=b"\x01")),
            "payload-block-last",
            "4.1",
        ),
        (raw_bundle(raw_primary(version=6)), "version", "4.3.1"),
        (raw_bundle(raw_primary(crc_type=0)), "primary-crc-missing", "4.3.1"),
        (
            raw_bundle(raw_primary(), raw_canonical(10, 2, data=b"\x82\x00\x00"), raw_canonical()),
            "hop-limit-range",
            "4.4.3",
        ),
    ],
)
def test_decode_invalid_bundle_names_the_rule(data: bytes, rule: str, section: str) -> None:
    status, out, err = run(["decode", data.hex()])
    assert (status, out) == (1, b"")
    assert err.count("\n") == 1
    assert err.startswith("error: invalid bundle: ")
    assert f"[RFC 9171 §{section}: {rule}]" in err


def _status_report_subject() -> Bundle:
    return Bundle.build(
        source="dtn://src/app",
        destination="ipn:5.7",
        report_to="dtn://rep/",
        payload=b"x",
        creation=CreationTimestamp(800_000_000_000, 3),
        lifetime_ms=60_000,
        flags=BundleFlags.STATUS_TIME_REQUESTED | BundleFlags.REPORT_DELIVERY,
    )


def test_decode_shows_a_status_report() -> None:
    admin = pytest.importorskip("bpv7.admin")
    report = admin.build_status_report_bundle(
        _status_report_subject(),
        source="ipn:9.0",
        kind=admin.StatusKind.DELIVERED,
        reason=admin.StatusReportReason.NO_ADDITIONAL_INFORMATION,
        now_dtn_ms=800_000_001_000,
    )
    view = decoded(report)
    assert view["primary"]["flag_names"] == ["ADMIN_RECORD"]
    record = view["admin_record"]
    assert record["kind"] == "BundleStatusReport"
    assert (record["record_type"], record["record_type_name"]) == (1, "BUNDLE_STATUS_REPORT")
    assert (record["reason"], record["reason_name"]) == (0, "NO_ADDITIONAL_INFORMATION")
    assert record["source"] == "dtn://src/app"
    assert record["creation"] == {"time_ms": 800_000_000_000, "sequence": 3}
    assert record["delivered"] == {"asserted": True, "time_ms": 800_000_001_000}
    assert record["received"] == {"asserted": False, "time_ms": None}
    # The record is informational: encode ignores it and keeps the payload bytes.
    assert run(["encode"], json.dumps(view).encode())[1] == report.encode().hex().encode() + b"\n"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (12, "MISSING_SECURITY_OPERATION"),
        (13, "UNKNOWN_SECURITY_OPERATION"),
        (14, "UNEXPECTED_SECURITY_OPERATION"),
        (15, "FAILED_SECURITY_OPERATION"),
        (16, "CONFLICTING_SECURITY_OPERATION"),
    ],
)
def test_decode_names_the_bpsec_reason_codes(code: int, name: str) -> None:
    """RFC 9172 §11.2's reason codes, from the one enumeration BPSec shares with RFC 9171."""
    admin = pytest.importorskip("bpv7.admin")
    from bpv7.bpsec import SecurityReason

    assert SecurityReason[name] is admin.StatusReportReason(code)
    report = admin.build_status_report_bundle(
        _status_report_subject(),
        source="ipn:9.0",
        kind=admin.StatusKind.DELETED,
        reason=code,
        now_dtn_ms=800_000_001_000,
    )
    record = decoded(report)["admin_record"]
    assert (record["reason"], record["reason_name"]) == (code, name)


def test_decode_shows_a_bibe_pdu() -> None:
    admin = pytest.importorskip("bpv7.admin")
    inner = _status_report_subject()
    outer = admin.encapsulate_bundle(
        inner,
        source="ipn:9.0",
        destination="ipn:8.0",
        now_dtn_ms=800_000_001_000,
        transmission_id=7,
        retransmission_time_ms=800_000_100_000,
    )
    record = decoded(outer)["admin_record"]
    assert record["kind"] == "BibePdu"
    assert record["transmission_id"] == 7
    assert record["retransmission_time_ms"] == 800_000_100_000
    assert record["encapsulated_bundle"] == inner.encode().hex()


def test_decode_unintelligible_admin_record() -> None:
    pytest.importorskip("bpv7.admin")
    bundle = Bundle.build(
        source="ipn:1.0",
        destination="ipn:2.0",
        payload=b"\x82\x01",
        creation=CreationTimestamp(1, 0),
        lifetime_ms=1,
        flags=BundleFlags.ADMIN_RECORD,
    )
    status, out, err = run(["decode", bundle.encode().hex()])
    assert (status, out) == (1, b"")
    assert err.startswith("error: invalid administrative record: ") and err.count("\n") == 1
    assert "(--no-admin shows the bundle)" in err
    status, out, err = run(["decode", "--no-admin", bundle.encode().hex()])
    assert (status, err) == (0, "")
    assert "admin_record" not in json.loads(out)


# ---------------------------------------------------------------------------------------------
# encode


def test_encode_round_trips_decoded_json_to_the_same_bytes() -> None:
    data = sample_bundle().encode()
    _, json_out, _ = run(["decode", data.hex()])
    status, out, err = run(["encode"], json_out)
    assert (status, err) == (0, "")
    assert out == data.hex().encode() + b"\n"
    status, out, err = run(["encode", "-", "--raw"], json_out)
    assert (status, out, err) == (0, data, "")


def test_encode_reads_a_file(tmp_path: Path) -> None:
    data = sample_bundle().encode()
    path = tmp_path / "bundle.json"
    path.write_bytes(run(["decode", data.hex()])[1])
    assert run(["encode", str(path)]) == (0, data.hex().encode() + b"\n", "")
    status, _, err = run(["encode", str(tmp_path / "missing.json")])
    assert status == 1 and err.startswith("error: cannot read ") and err.count("\n") == 1


def test_encode_computes_crcs_afresh_and_ignores_informational_fields() -> None:
    view = decoded(sample_bundle())
    view["primary"]["crc_verified"] = False
    view["primary"]["creation"]["utc"] = "nonsense"
    view["payload_length"] = 12345
    view["admin_record"] = {"kind": "whatever"}
    payload = view["blocks"][-1]
    payload["data"] = b"HELLO".hex()
    payload["crc_verified"] = False
    status, out, err = run(["encode"], json.dumps(view).encode())
    assert (status, err) == (0, "")
    bundle = decode_bundle(bytes.fromhex(out.decode()))  # verifies every CRC
    assert bundle.payload == b"HELLO"


def test_encode_accepts_names_instead_of_codes_and_typed_values_instead_of_data() -> None:
    minimal = {
        "primary": {
            "flag_names": ["MUST_NOT_FRAGMENT"],
            "crc_type_name": "CRC16_X25",
            "destination": "ipn:0.5.7",
            "source": "dtn://a/",
            "report_to": "dtn:none",
            "creation": {"time_ms": 0, "sequence": 1},
            "lifetime_ms": 60000,
        },
        "blocks": [
            {"type": "BUNDLE_AGE", "number": 2, "flags": 0, "crc_type": 0, "bundle_age_ms": 9},
            {
                "type": "HOP_COUNT",
                "number": 3,
                "flags": 0,
                "crc_type": 2,
                "hop_count": {"limit": 5, "count": 0},
            },
            {
                "type": "PREVIOUS_NODE",
                "number": 4,
                "flag_names": [],
                "crc_type": 1,
                "previous_node": "dtn://prev/",
            },
            {"type": "PAYLOAD", "number": 1, "flags": 0, "crc_type": 2, "data": "6869"},
        ],
    }
    status, out, err = run(["encode"], json.dumps(minimal).encode())
    assert (status, err) == (0, "")
    bundle = decode_bundle(bytes.fromhex(out.decode()))
    assert bundle.primary.flags == BundleFlags.MUST_NOT_FRAGMENT
    assert bundle.primary.crc_type == CRCType.CRC16_X25
    assert bundle.primary.destination == IpnEID(0, 5, 7)
    assert bundle.primary.destination.cbor == b"\x82\x02\x83\x00\x05\x07"  # three elements
    assert bundle.bundle_age_ms == 9
    assert bundle.hop_count == HopCountBlock(5, 0)
    assert bundle.previous_node == parse_eid("dtn://prev/")
    assert bundle.payload == b"hi"
    again = decoded(bundle)
    assert again["primary"]["destination"] == "ipn:0.5.7"


def _edit(obj: dict[str, Any], path: str, value: object) -> None:
    """Set (or, for ``KeyError``, delete) the field at dotted ``path`` (list indexes as
    numbers)."""
    *parents, last = path.split(".")
    node: Any = obj
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is KeyError:
        del node[last]
    else:
        node[last] = value


DROP = KeyError
"""Marker: delete the field."""


@pytest.mark.parametrize(
    ("edits", "field", "message"),
    [
        ({"primary": DROP}, "primary", "missing"),
        ({"blocks": DROP}, "blocks", "missing"),
        ({"blocks": {}}, "blocks", "must be an array"),
        ({"primary.destination": DROP}, "primary.destination", "missing"),
        ({"primary.source": DROP}, "primary.source", "missing"),
        ({"primary.report_to": DROP}, "primary.report_to", "missing"),
        ({"primary.creation": DROP}, "primary.creation", "missing"),
        ({"primary.creation": 5}, "primary.creation", "must be a JSON object"),
        ({"primary.creation.sequence": -1}, "primary.creation.sequence", "unsigned integer"),
        ({"primary.creation.time_ms": "1"}, "primary.creation.time_ms", "unsigned integer"),
        ({"primary.lifetime_ms": DROP}, "primary.lifetime_ms", "missing"),
        ({"primary.lifetime_ms": 2**64}, "primary.lifetime_ms", "unsigned integer"),
        ({"primary.lifetime_ms": 1.5}, "primary.lifetime_ms", "unsigned integer"),
        ({"primary.lifetime_ms": True}, "primary.lifetime_ms", "unsigned integer"),
        ({"primary.version": 6}, "primary.version", "must be 7"),
        ({"primary.flags": DROP, "primary.flag_names": DROP}, "primary.flags", "missing"),
        ({"primary.flags": 0}, "primary.flag_names", "does not match flags 0x0"),
        ({"primary.flag_names": ["NOPE"]}, "primary.flag_names[0]", "must be one of"),
        ({"primary.flag_names": "IS_FRAGMENT"}, "primary.flag_names", "must be an array"),
        (
            {"primary.flags": DROP, "primary.flag_names": ["IS_FRAGMENT"]},
            "primary",
            "fragment-fields",
        ),
        ({"primary.flags": 0x20005, "primary.flag_names": DROP}, "primary", "fragment-fields"),
        ({"primary.crc_type": 3, "primary.crc_type_name": DROP}, "primary.crc_type", "0, 1 or 2"),
        ({"primary.crc_type": 3}, "primary.crc_type_name", "does not match crc_type 3"),
        ({"primary.crc_type_name": "CRC16_X25"}, "primary.crc_type_name", "does not match"),
        ({"primary.crc_type": DROP, "primary.crc_type_name": DROP}, "primary.crc_type", "missing"),
        ({"primary.destination": "http://x/"}, "primary.destination", "unsupported EID scheme"),
        ({"primary.destination": 5}, "primary.destination", "must be EID URI text"),
        ({"primary.source": "dtn://x/~all"}, "primary", "source-not-singleton"),
        ({"primary.source": "dtn://a b/"}, "primary.source", "invalid dtn node name"),
        (
            {"primary.source": {"uri": "dtn://a/", "ipn_elements": 2}},
            "primary.source.uri",
            "ipn EIDs only",
        ),
        ({"primary.source": {"ipn_elements": 2}}, "primary.source.uri", "missing"),
        (
            {"primary.source": {"uri": "ipn:1.2", "ipn_elements": 4}},
            "primary.source.ipn_elements",
            "must be 2 or 3",
        ),
        ({"blocks.0": []}, "blocks[0]", "must be a JSON object"),
        ({"blocks.0.number": DROP}, "blocks[0].number", "missing"),
        ({"blocks.0.type_code": 7}, "blocks[0].type", "does not match type_code 7"),
        ({"blocks.0.type": "NOPE"}, "blocks[0].type", "must be one of PAYLOAD"),
        ({"blocks.0.type_code": DROP, "blocks.0.type": DROP}, "blocks[0].type_code", "missing"),
        ({"blocks.0.type_code": DROP, "blocks.0.type": None}, "blocks[0].type_code", "missing"),
        ({"blocks.0.crc_type": 1}, "blocks[0].crc_type_name", "does not match"),
        ({"blocks.0.flags": -1}, "blocks[0].flags", "unsigned integer"),
        ({"blocks.0.flag_names": ["IS_FRAGMENT"]}, "blocks[0].flag_names[0]", "must be one of"),
        ({"blocks.0.hop_count.limit": 0}, "blocks[0].hop_count", "hop-limit-range"),
        ({"blocks.0.hop_count.limit": 31}, "blocks[0].data", "does not match hop_count"),
        ({"blocks.0.data": "8218"}, "blocks[0].data", "does not match hop_count"),
        ({"blocks.0.hop_count": [30, 1]}, "blocks[0].hop_count", "must be a JSON object"),
        ({"blocks.0.hop_count": {"limit": 30}}, "blocks[0].hop_count.count", "missing"),
        ({"blocks.1.previous_node": "ipn:9.1"}, "blocks[1].previous_node", "previous-node-id"),
        ({"blocks.1.data": "zz"}, "blocks[1].data", "not valid hex"),
        ({"blocks.2.bundle_age_ms": None}, "blocks[2].bundle_age_ms", "not null"),
        ({"blocks.2.bundle_age_ms": DROP, "blocks.2.data": "00ff"}, "blocks[2]", "trailing"),
        ({"blocks.3.data": DROP}, "blocks[3].data", "missing"),
        ({"blocks.4.number": 2}, "blocks[4]", "payload-block-number"),
        ({"blocks.4.data": 5}, "blocks[4].data", "must be a hex string"),
    ],
)
def test_encode_invalid_field_is_one_line_naming_it(
    edits: dict[str, object], field: str, message: str
) -> None:
    view = decoded(sample_bundle())
    for path, value in edits.items():
        _edit(view, path, value)
    status, out, err = run(["encode"], json.dumps(view).encode())
    assert (status, out) == (1, b"")
    assert err.count("\n") == 1
    assert err.startswith(f"error: invalid field {field}: "), err
    assert message in err, err


def test_encode_bundle_level_violation_and_bad_json_are_one_line() -> None:
    view = decoded(sample_bundle())
    view["blocks"].reverse()
    status, _, err = run(["encode"], json.dumps(view).encode())
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("error: invalid bundle: ") and "payload-block-last" in err
    status, _, err = run(["encode"], b'{"primary": ')
    assert status == 1 and err.count("\n") == 1 and err.startswith("error: bad JSON in stdin")
    status, _, err = run(["encode"], b"[]")
    assert (status, err) == (
        1,
        "error: invalid field bundle: must be a JSON object, not an array\n",
    )


# ---------------------------------------------------------------------------------------------
# The JSON form itself


@pytest.mark.parametrize(
    ("eid", "text"),
    [
        (IpnEID(0, 5, 7), "ipn:5.7"),
        (IpnEID(0, 5, 7, True), "ipn:0.5.7"),
        (IpnEID(3, 5, 7), "ipn:3.5.7"),
        (IpnEID(3, 5, 7, False), {"uri": "ipn:3.5.7", "ipn_elements": 2}),
        (IpnEID(0, 2**32 - 1, 7), "ipn:!.7"),
        (IpnEID(0, 2**32 - 1, 7, True), "ipn:0.!.7"),
        (parse_eid("dtn:none"), "dtn:none"),
        (parse_eid("dtn://n%41me/a/b?c"), "dtn://n%41me/a/b?c"),
    ],
)
def test_eid_json_keeps_the_cbor_form(eid: Any, text: object) -> None:
    assert eid_to_json(eid) == text
    back = eid_from_json(text)
    assert back == eid and back.cbor == eid.cbor


def test_decode_encode_decode_is_lossless_for_non_canonical_input() -> None:
    # Indefinite-length arrays are allowed (RFC 9171 §4.1) but our encoder writes definite ones,
    # so the bytes change while every field survives.
    data = raw_bundle(
        raw_primary(head=b"\x9f"),
        raw_canonical(10, 2, data=b"\x9f\x05\x01\xff"),
        raw_canonical(head=b"\x9f"),
    )
    first = decoded(decode_bundle(data))
    status, out, err = run(["encode"], json.dumps(first).encode())
    assert (status, err) == (0, "")
    assert out.decode().strip() != data.hex()
    assert run(["decode", out.decode()])[1] == run(["decode", data.hex()])[1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundles())
def test_json_round_trip_is_lossless(bundle: Bundle) -> None:
    # (The generated "administrative records" are random bytes: leave them undecoded.)
    view = bundle_to_json(bundle, admin_record=False)
    text = json.dumps(view)
    back = bundle_from_json(json.loads(text))
    assert back == bundle
    assert back.encode() == bundle.encode()
    assert bundle_to_json(back, admin_record=False) == view
    # Input is not modified by reading it.
    assert json.dumps(view) == text


def test_bundle_from_json_does_not_mutate_its_input() -> None:
    view = decoded(sample_bundle())
    before = copy.deepcopy(view)
    bundle_from_json(view)
    assert view == before
    with pytest.raises(BundleJSONError, match=r"^blocks\[0\]\.number: missing$"):
        del view["blocks"][0]["number"]
        bundle_from_json(view)


# ---------------------------------------------------------------------------------------------
# The real entry point


def test_module_entry_point_and_help() -> None:
    data = sample_bundle().encode()
    done = subprocess.run(
        [sys.executable, "-m", "bpv7", "decode", "-"],
        input=data.hex().encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert json.loads(done.stdout)["primary"]["source"] == "dtn://src/app"
    done = subprocess.run(
        [sys.executable, "-m", "bpv7", "encode", "--raw"],
        input=done.stdout,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, data, b"")
    done = subprocess.run(
        [sys.executable, "-m", "bpv7", "decode", "ff"], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1 and done.stdout == b"" and done.stderr.count(b"\n") == 1
    status_help = subprocess.run(
        [sys.executable, "-m", "bpv7", "decode", "--help"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert status_help.returncode == 0 and b"--raw" in status_help.stdout
