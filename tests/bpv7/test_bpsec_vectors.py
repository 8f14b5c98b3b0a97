"""BPSec against published vectors: RFC 9173 Appendix A (examples 1-4, keys and bytes from the
RFC's text) and dtn-demo-agent's COSE-context test bundles (tests/bpv7/data/bpsec, origin in its
README). Each vector is decoded, verified/decrypted and accepted, and secured again from the
original bundle with the same keys and IVs, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpv7 import Bundle, decode_bundle
from bpv7.bpsec import (
    AesGcm,
    CoseOperation,
    CoseSource,
    HmacSha2,
    KeyStore,
    Outcome,
    SecurityReason,
    add_confidentiality,
    add_integrity,
    process_security,
    read_cose_keys,
)

DATA = Path(__file__).parent / "data" / "bpsec"

# RFC 9171 rules the RFC 9173 examples break (see bpv7.bundle.WAIVABLE_RULES).
RFC9173_WAIVERS = ("bundle-age-required", "primary-crc-missing")

PRIMARY = "88070000820282010282028202018202820201820018281a000f4240"
PAYLOAD_BLOCK = (
    "85010100005823526561647920746f2067656e657261746520612033322d62797465207061796c6f6164"
)
PAYLOAD = b"Ready to generate a 32-byte payload"

# RFC 9173 A.1.1.3, A.2.1.3, A.4.1.3: the original bundle (primary block, payload block).
ORIGINAL = f"9f{PRIMARY}{PAYLOAD_BLOCK}ff"
# RFC 9173 A.3.1.4: the original bundle with a Bundle Age Block (300 ms).
ORIGINAL_3 = f"9f{PRIMARY}85070200004319012c{PAYLOAD_BLOCK}ff"

# RFC 9173 A.1.4: Example 1 - Simple Integrity.
FINAL_1 = (
    "9f88070000820282010282028202018202820201820018281a000f4240850b0200"
    "005856810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a"
    "8554368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2"
    "f1a73e303dcd4b6ccece003e95e8164dcc89a156e185010100005823526561647920"
    "746f2067656e657261746520612033322d62797465207061796c6f6164ff"
)
# RFC 9173 A.2.4: Example 2 - Simple Confidentiality with Key Wrap.
FINAL_2 = (
    "9f88070000820282010282028202018202820201820018281a000f4240850c0201"
    "0058508101020182028202018482014c5477656c7665313231323132820201820358"
    "1869c411276fecddc4780df42c8a2af89296fabf34d7fae7008204008181820150ef"
    "a4b5ac0108e3816c5606479801bc04850101000058233a09c1e63fe23a7f66a59c73"
    "03837241e070b02619fc59c5214a22f08cd70795e73e9aff"
)
# RFC 9173 A.3.5: Example 3 - Security Blocks from Multiple Sources.
FINAL_3 = (
    "9f88070000820282010282028202018202820201820018281a000f4240850b0300"
    "00585c8200020101820282030082820105820300828182015820cac6ce8e4c5dae57"
    "988b757e49a6dd1431dc04763541b2845098265bc817241b81820158203ed614c0d9"
    "7f49b3633627779aa18a338d212bf3c92b97759d9739cd50725596850c0401005834"
    "8101020182028202018382014c5477656c7665313231323132820201820400818182"
    "0150efa4b5ac0108e3816c5606479801bc0485070200004319012c85010100005823"
    "3a09c1e63fe23a7f66a59c7303837241e070b02619fc59c5214a22f08cd70795e73e"
    "9aff"
)
# RFC 9173 A.4.5: Example 4 - Security Blocks with Full Scope.
FINAL_4 = (
    "9f88070000820282010282028202018202820201820018281a000f4240850b0300"
    "005846438ed6208eb1c1ffb94d952175167df0902902064a2983910c4fb2340790bf"
    "420a7d1921d5bf7c4721e02ab87a93ab1e0b75cf62e4948727c8b5dae46ed2af0543"
    "9b88029191850c0201005849820301020182028202018382014c5477656c76653132"
    "313231328202038204078281820150220ffc45c8a901999ecc60991dd78b29818201"
    "50d2c51cb2481792dae8b21d848cede99b8501010000582390eab6457593379298a8"
    "724e16e61f837488e127212b59ac91f8a86287b7d07630a122ff"
)

HMAC_KEY = bytes.fromhex("1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b")  # A.1, A.3, A.4 BIB key
CEK_128 = bytes.fromhex("71776572747975696f70617364666768")  # A.2, A.3 content key
KEK = bytes.fromhex("6162636465666768696a6b6c6d6e6f70")  # A.2 key-encryption key
CEK_256 = CEK_128 + CEK_128  # A.4 content key
IV = bytes.fromhex("5477656c7665313231323132")  # "Twelve121212"


def rfc9173_keys() -> dict[str, KeyStore]:
    """The keys each example's receiver holds, filed as the CLI files them."""
    one = KeyStore()
    one.add("ipn:2.1", HMAC_KEY)
    two = KeyStore()
    two.add("ipn:2.1", KEK)
    three = KeyStore()
    three.add("ipn:2.1", CEK_128)
    three.add("ipn:3.0", HMAC_KEY)
    four = KeyStore()
    four.add("bib@ipn:2.1", HMAC_KEY)
    four.add("bcb@ipn:2.1", CEK_256)
    return {"1": one, "2": two, "3": three, "4": four}


def decode_waived(hex_text: str) -> Bundle:
    return decode_bundle(bytes.fromhex(hex_text), waive=RFC9173_WAIVERS)


@pytest.mark.parametrize(
    ("example", "final", "original", "expected"),
    [
        ("1", FINAL_1, ORIGINAL, [(2, 1, Outcome.VERIFIED)]),
        ("2", FINAL_2, ORIGINAL, [(2, 1, Outcome.DECRYPTED)]),
        (
            "3",
            FINAL_3,
            ORIGINAL_3,
            [(4, 1, Outcome.DECRYPTED), (3, 0, Outcome.VERIFIED), (3, 2, Outcome.VERIFIED)],
        ),
        (
            "4",
            FINAL_4,
            ORIGINAL,
            [(2, 3, Outcome.DECRYPTED), (2, 1, Outcome.DECRYPTED), (3, 1, Outcome.VERIFIED)],
        ),
    ],
)
def test_rfc9173_examples_verify_decrypt_and_accept(
    example: str, final: str, original: str, expected: list[tuple[int, int, Outcome]]
) -> None:
    bundle = decode_waived(final)
    assert bundle.encode().hex() == final
    result = process_security(bundle, rfc9173_keys()[example], accept=True)
    assert [(op.security_block, op.target, op.outcome) for op in result.operations] == expected
    assert result.status_reason is None
    # Accepting every operation gives back the original bundle of the example, byte for byte.
    assert result.bundle.encode().hex() == original
    assert result.bundle.payload == PAYLOAD


def test_rfc9173_examples_without_keys_report_no_key() -> None:
    bundle = decode_waived(FINAL_4)
    result = process_security(bundle, KeyStore(), accept=True)
    # The BCB cannot be opened, so the BIB it encrypts cannot even be read (RFC 9172 §3.9).
    assert [op.outcome for op in result.operations] == [Outcome.NO_KEY, Outcome.NO_KEY]
    assert result.unreadable == (3,)
    assert result.bundle is bundle


def test_rfc9173_example_1_secured_byte_identical() -> None:
    secured = add_integrity(
        decode_waived(ORIGINAL),
        [1],
        HmacSha2(HMAC_KEY, variant=7, scope=0),
        source="ipn:2.1",
        block_number=2,
    )
    assert secured.encode().hex() == FINAL_1


def test_rfc9173_example_2_secured_byte_identical() -> None:
    context = AesGcm(KEK, variant=1, scope=0, iv=IV, wrap=True, content_key=CEK_128)
    secured = add_confidentiality(
        decode_waived(ORIGINAL), [1], context, source="ipn:2.1", block_number=2
    )
    assert secured.encode().hex() == FINAL_2


def test_rfc9173_example_3_secured_byte_identical() -> None:
    # The bundle source encrypts the payload; a waypoint, ipn:3.0, then signs the primary block
    # and the Bundle Age Block.
    encrypted = add_confidentiality(
        decode_waived(ORIGINAL_3),
        [1],
        AesGcm(CEK_128, variant=1, scope=0, iv=IV),
        source="ipn:2.1",
        block_number=4,
    )
    secured = add_integrity(
        encrypted, [0, 2], HmacSha2(HMAC_KEY, variant=5, scope=0), source="ipn:3.0", block_number=3
    )
    assert secured.encode().hex() == FINAL_3


def test_rfc9173_example_4_secured_byte_identical() -> None:
    signed = add_integrity(
        decode_waived(ORIGINAL),
        [1],
        HmacSha2(HMAC_KEY, variant=6, scope=7),
        source="ipn:2.1",
        block_number=3,
    )
    secured = add_confidentiality(
        signed, [3, 1], AesGcm(CEK_256, variant=3, scope=7, iv=IV), source="ipn:2.1", block_number=2
    )
    assert secured.encode().hex() == FINAL_4


def test_rfc9173_examples_break_rfc9171_without_waivers() -> None:
    # Examples 1, 2 and 4 have a zero creation time and no Bundle Age Block (RFC 9171 §4.4.2).
    with pytest.raises(Exception) as info:
        decode_bundle(bytes.fromhex(FINAL_1))
    assert getattr(info.value, "rule", None) == "bundle-age-required"
    # Example 3 satisfies RFC 9171: its BIB covers the CRC-less primary block.
    assert decode_bundle(bytes.fromhex(FINAL_3)).encode().hex() == FINAL_3


# ---------------------------------------------------------------------------------------------
# dtn-demo-agent's COSE-context bundles


def dda(name: str) -> bytes:
    return (DATA / name).read_bytes()


def dda_keys() -> KeyStore:
    keys = KeyStore()
    for name in ("key-ExampleA.1.cbor", "key-ExampleA.4.cbor", "key-ExampleA.5.cbor"):
        for key in read_cose_keys(dda(name)):
            keys.add_cose_key(key)
    return keys


def test_dda_example_a1_verifies() -> None:
    # Its primary block has no CRC and its BIB covers only the payload.
    bundle = decode_bundle(dda("exampleA.1.cbor"), waive=["primary-crc-missing"])
    result = process_security(bundle, dda_keys())
    assert [(op.security_block, op.target, op.outcome) for op in result.operations] == [
        (3, 1, Outcome.VERIFIED)
    ]


def test_dda_integrity_verifies_and_accepts_to_base() -> None:
    bundle = decode_bundle(dda("interop-integrity-full.cbor"))
    result = process_security(bundle, dda_keys(), accept=True)
    assert [op.outcome for op in result.operations] == [Outcome.VERIFIED, Outcome.VERIFIED]
    assert result.bundle.encode() == dda("interop-integrity-base.cbor")


def test_dda_confidentiality_decrypts_and_accepts_to_base() -> None:
    # The BCB encrypts the Bundle Age Block: decoding must not parse its ciphertext as an age.
    bundle = decode_bundle(dda("interop-confidentiality-full.cbor"))
    assert bundle.encrypted_blocks == {1: 5, 2: 5}
    assert bundle.bundle_age_ms is None
    result = process_security(bundle, dda_keys(), accept=True)
    assert [op.outcome for op in result.operations] == [Outcome.DECRYPTED, Outcome.DECRYPTED]
    assert result.bundle.encode() == dda("interop-confidentiality-base.cbor")
    assert result.bundle.bundle_age_ms == 86_000
    assert result.bundle.payload == b"hello"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("interop-altered-aad.cbor", "the MAC does not match"),
        ("interop-critical-header.cbor", "unknown critical header 900"),
    ],
)
def test_dda_bad_bundles_fail_verification(name: str, reason: str) -> None:
    bundle = decode_bundle(dda(name))
    result = process_security(bundle, dda_keys(), accept=True)
    [op] = result.operations
    assert (op.security_block, op.target, op.outcome, op.reason) == (5, 1, Outcome.FAILED, reason)
    assert op.status_reason == SecurityReason.FAILED_SECURITY_OPERATION
    assert result.status_reason == SecurityReason.FAILED_SECURITY_OPERATION
    assert result.bundle is bundle  # nothing accepted


def test_dda_integrity_secured_byte_identical() -> None:
    keys = dda_keys()
    mac_key, wrap_key = keys.get(b"ExampleA.1"), keys.get(b"ExampleA.5")
    assert mac_key is not None and wrap_key is not None
    content_key = bytes.fromhex(
        "71776572747975696f7061736466676871776572747975696f7061736466676864456712646567f4646a3368106667bb"
    )
    source = CoseSource(
        {
            1: CoseOperation(wrap_key, alg=6, content_key=content_key),  # COSE_Mac, HMAC 384
            2: CoseOperation(mac_key),  # COSE_Mac0
        }
    )
    base = decode_bundle(dda("interop-integrity-base.cbor"))
    secured = add_integrity(base, [1, 2], source, source="ipn:1.0", block_number=5)
    assert secured.encode() == dda("interop-integrity-full.cbor")


def test_dda_confidentiality_secured_byte_identical() -> None:
    keys = dda_keys()
    enc_key, wrap_key = keys.get(b"ExampleA.4"), keys.get(b"ExampleA.5")
    assert enc_key is not None and wrap_key is not None
    content_key = bytes.fromhex("13bf9cead057c0aca2c9e52471ca4b19ddfaf4c0784e3f3e8e3999dbae4ce45c")
    source = CoseSource(
        {
            1: CoseOperation(wrap_key, alg=3, content_key=content_key, iv=b"Twelve121212"),
            2: CoseOperation(enc_key, iv=b"Twelve121213"),
        }
    )
    base = decode_bundle(dda("interop-confidentiality-base.cbor"))
    secured = add_confidentiality(base, [1, 2], source, source="ipn:1.0", block_number=5)
    assert secured.encode() == dda("interop-confidentiality-full.cbor")
