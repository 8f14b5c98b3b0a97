"""``python -m bpv7 decode --key``, ``accept`` and ``secure``: BPSec from the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bpv7 import Bundle, CRCType, CreationTimestamp, HopCountBlock, decode_bundle
from bpv7.__main__ import main
from bpv7.bpsec import CoseKey
from tests.bpv7.test_bpsec_vectors import (
    DATA,
    FINAL_1,
    FINAL_3,
    FINAL_4,
    ORIGINAL,
    ORIGINAL_3,
)

WAIVE = ["--waive", "bundle-age-required", "--waive", "primary-crc-missing"]
HMAC_KEY = "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b"


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
    out = io.BytesIO()
    err = io.StringIO()
    status = main(argv, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def plain_bundle() -> Bundle:
    return Bundle.build(
        source="ipn:7.1",
        destination="ipn:8.1",
        payload=b"the payload",
        creation=CreationTimestamp(800_000_000_000, 1),
        lifetime_ms=3_600_000,
        extra_blocks=[HopCountBlock(30, 2)],
    )


def test_decode_with_a_key_shows_the_outcome() -> None:
    status, out, err = run(["decode", *WAIVE, "--key", f"ipn:2.1={HMAC_KEY}", FINAL_1])
    assert (status, err) == (0, "")
    view = json.loads(out)
    assert view["security_operations"] == [
        {
            "security_block": 2,
            "service": "integrity",
            "target": 1,
            "context_id": 1,
            "source": "ipn:2.1",
            "outcome": "verified",
            "reason": None,
        }
    ]
    security = view["blocks"][0]["security"]
    assert security["targets"] == [1] and security["context_name"] == "BIB_HMAC_SHA2"
    assert security["parameters"] == [{"id": 1, "value": 7}, {"id": 3, "value": 0}]


def test_decode_with_a_wrong_key_fails_naming_block_and_target() -> None:
    status, out, err = run(["decode", *WAIVE, "--key", "ipn:2.1=" + "00" * 16, FINAL_1])
    assert status == 1
    assert json.loads(out)["security_operations"][0]["outcome"] == "failed"
    assert err.count("\n") == 1
    assert "BIB 2" in err and "target block 1" in err and "HMAC does not match" in err


def test_decode_shows_encrypted_blocks_opaque_then_decrypted() -> None:
    status, out, _ = run(["decode", *WAIVE, FINAL_4])
    assert status == 0
    blocks = json.loads(out)["blocks"]
    assert [b.get("encrypted_by") for b in blocks] == [2, None, 2]
    assert "security" not in blocks[0]  # the BIB is ciphertext
    keys = [
        "--key",
        f"bib@ipn:2.1={HMAC_KEY}",
        "--key",
        "bcb@ipn:2.1=" + "71776572747975696f70617364666768" * 2,
    ]
    status, out, _ = run(["decode", *WAIVE, *keys, FINAL_4])
    assert status == 0
    view = json.loads(out)
    assert view["blocks"][0]["decrypted"]["security"]["targets"] == [1]
    assert bytes.fromhex(view["blocks"][2]["decrypted"]["data"]).startswith(b"Ready to")
    assert [op["outcome"] for op in view["security_operations"]] == [
        "decrypted",
        "decrypted",
        "verified",
    ]


def test_decode_without_the_key_says_no_key() -> None:
    status, out, _ = run(["decode", *WAIVE, "--key", "ipn:9.9=00", FINAL_1])
    assert status == 0
    assert json.loads(out)["security_operations"][0]["outcome"] == "no-key"


def test_accept_writes_the_original_bundle() -> None:
    status, out, err = run(
        [
            "accept",
            *WAIVE,
            "--key",
            "ipn:2.1=71776572747975696f70617364666768",
            "--key",
            f"ipn:3.0={HMAC_KEY}",
            FINAL_3,
        ]
    )
    assert (status, err) == (0, "")
    assert out.decode().strip() == ORIGINAL_3


def test_accept_with_a_cose_key_file_and_raw_output(tmp_path: Path) -> None:
    keys = tmp_path / "keys.cbor"
    # A COSE_KeySet of dtn-demo-agent's three keys.
    keys.write_bytes(
        cbor2.dumps(
            [cbor2.loads((DATA / f"key-ExampleA.{n}.cbor").read_bytes()) for n in (1, 4, 5)]
        )
    )
    full = (DATA / "interop-confidentiality-full.cbor").read_bytes()
    status, out, err = run(["accept", "--key-file", str(keys), "--raw", "--raw-out"], full)
    assert (status, err) == (0, "")
    assert out == (DATA / "interop-confidentiality-base.cbor").read_bytes()


def test_accept_fails_on_a_bad_bundle_and_without_keys() -> None:
    bad = (DATA / "interop-critical-header.cbor").read_bytes()
    status, out, err = run(
        ["accept", "--key-file", str(DATA / "key-ExampleA.1.cbor"), "--raw"], bad
    )
    assert (status, out) == (1, b"")
    assert "BIB 5" in err and "unknown critical header 900" in err
    status, _, err = run(["accept", *WAIVE, FINAL_1])
    assert status == 1 and "needs keys" in err
    status, _, err = run(["accept", *WAIVE, "--key", "ipn:9.9=00", FINAL_1])
    assert status == 1 and "no-key" in err


def test_bad_key_options_are_one_line_errors(tmp_path: Path) -> None:
    status, _, err = run(["decode", "--key", "nohex", FINAL_1])
    assert status == 1 and "NAME=HEX" in err
    status, _, err = run(["decode", "--key", "a=zz", FINAL_1])
    assert status == 1 and "bad hex" in err
    broken = tmp_path / "broken.cbor"
    broken.write_bytes(b"\xa1\x01\x63")
    status, _, err = run(["decode", "--key-file", str(broken), FINAL_1])
    assert status == 1 and err.count("\n") == 1 and "broken.cbor" in err


def test_secure_rfc9173_reproduces_example_1_and_round_trips() -> None:
    status, out, err = run(
        [
            "secure",
            *WAIVE,
            "--integrity",
            "1",
            "--source",
            "ipn:2.1",
            "--key",
            f"ipn:2.1={HMAC_KEY}",
            "--alg",
            "7",
            "--scope",
            "0",
            "--block-number",
            "2",
            ORIGINAL,
        ]
    )
    assert (status, err) == (0, "")
    assert out.decode().strip() == FINAL_1


def test_secure_then_accept_each_context(tmp_path: Path) -> None:
    bundle = plain_bundle().encode().hex()
    ec_key = CoseKey.from_private_key(ec.generate_private_key(ec.SECP256R1()), kid=b"ec")
    ed_key = CoseKey.from_private_key(ed25519.Ed25519PrivateKey.generate(), kid=b"ed")
    files = tmp_path / "keys.cbor"
    files.write_bytes(cbor2.dumps([ec_key.to_cbor(), ed_key.to_cbor()]))
    aes = "00112233445566778899aabbccddeeff" * 2
    cases = [
        ["--integrity", "1,2", "--key", f"ipn:7.1={HMAC_KEY}"],
        ["--confidentiality", "1,2", "--key", f"ipn:7.1={aes}"],
        ["--confidentiality", "1", "--key", f"ipn:7.1={aes[:32]}", "--alg", "1", "--wrap"],
        ["--integrity", "1", "--context", "cose", "--kid", "mac", "--key", f"mac={HMAC_KEY}"],
        ["--confidentiality", "1,2", "--context", "cose", "--kid", "enc", "--key", f"enc={aes}"],
        ["--integrity", "1", "--context", "cose", "--kid", "ec", "--key-file", str(files)],
        ["--integrity", "1,2", "--context", "cose", "--kid", "ed", "--key-file", str(files)],
    ]
    for case in cases:
        status, out, err = run(["secure", "--source", "ipn:7.1", *case, bundle])
        assert (status, err) == (0, ""), case
        secured = out.decode().strip()
        assert decode_bundle(bytes.fromhex(secured)).has_security_blocks
        key_options = [
            item
            for index, item in enumerate(case)
            if item in ("--key", "--key-file") or case[index - 1] in ("--key", "--key-file")
        ]
        status, out, err = run(["accept", *key_options, secured])
        assert (status, err) == (0, ""), case
        if "cose" in case:
            assert out.decode().strip() == bundle, case
            continue
        # RFC 9173 §3.8.1 / §4.8.1: the targets lost their CRCs; all else is as it was.
        original = decode_bundle(bytes.fromhex(bundle))
        accepted = decode_bundle(bytes.fromhex(out.decode().strip()))
        targets = {int(number) for number in case[1].split(",")}
        assert accepted.primary == original.primary, case
        assert [(b.number, b.data, b.crc_type) for b in accepted.blocks] == [
            (b.number, b.data, CRCType.NONE if b.number in targets else b.crc_type)
            for b in original.blocks
        ], case


def test_secure_refuses_what_rfc9172_forbids() -> None:
    bundle = plain_bundle().encode().hex()
    status, _, err = run(
        [
            "secure",
            "--confidentiality",
            "0",
            "--source",
            "ipn:7.1",
            "--key",
            "ipn:7.1=" + "00" * 32,
            bundle,
        ]
    )
    assert status == 1 and "bcb-targets-primary" in err
    status, out, _ = run(
        [
            "secure",
            "--integrity",
            "1",
            "--source",
            "ipn:7.1",
            "--key",
            f"ipn:7.1={HMAC_KEY}",
            bundle,
        ]
    )
    signed = out.decode().strip()
    # RFC 9172 §3.9: encrypting the payload without the BIB that protects it is refused.
    status, _, err = run(
        [
            "secure",
            "--confidentiality",
            "1",
            "--source",
            "ipn:7.1",
            "--key",
            "ipn:7.1=" + "00" * 32,
            signed,
        ]
    )
    assert status == 1 and "bib-not-encrypted-with-target" in err
    status, _, err = run(["secure", "--integrity", "1", "--source", "ipn:7.1", bundle])
    assert status == 1 and "needs a key" in err
