"""The agent's security policy (RFC 9172 §5) without nodes: reading ``[security]``, and what
each role does to a bundle -- adds, checks, accepts, discards with the RFC 9172 reason."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cbor2
import pytest

from bpv7 import Bundle, BundleFlags, CanonicalBlock, CreationTimestamp, parse_eid
from bpv7.admin import StatusReportReason
from bpv7.bpsec import CoseKey
from bpv7.fragment import fragment_at
from bpv7.security_blocks import AbstractSecurityBlock
from tests.x509_support import authority, leaf
from ucp_dtn.agent import (
    ConfigError,
    SecurityCheck,
    SecurityError,
    SecurityPolicy,
    read_security_policy,
)

from .security_support import ACCEPTOR_RULE, KEYS_TOML, SOURCE_RULE, policy, write_keys

A = parse_eid("dtn://a/")
C = parse_eid("dtn://c/")
NOW = 1_796_000_000.0  # 2026-11-30, inside the test certificates' validity
PAYLOAD = b"the plaintext marker: field survey 7"


def bundle(source: str = "dtn://a/app", destination: str = "dtn://c/inbox") -> Bundle:
    return Bundle.build(
        source=source,
        destination=destination,
        payload=PAYLOAD,
        creation=CreationTimestamp(849_000_000_000, 1),
        lifetime_ms=86_400_000,
        flags=BundleFlags.REPORT_DELETION,
    )


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    write_keys(tmp_path)
    return tmp_path


# -- reading the policy ------------------------------------------------------------------------


def test_a_policy_reads_keys_and_rules(keys_dir: Path) -> None:
    read = policy(keys_dir, SOURCE_RULE, ACCEPTOR_RULE)
    assert [(rule.number, str(rule.role)) for rule in read.rules] == [
        (1, "source"),
        (2, "acceptor"),
    ]
    rule = read.rules[0]
    assert (rule.source.text, rule.destination.text, str(rule.context)) == (
        "dtn://a/*",
        "dtn://c/*",
        "rfc9173",
    )
    assert rule.integrity is read.keys["a-c-mac"]
    assert read.keys["a-c-aes"].describe() == "a 256-bit symmetric key"


RULE = '[[security.rule]]\nrole = "{role}"\n{extra}\n'


@pytest.mark.parametrize(
    ("extra_toml", "message"),
    [
        ('[[security.rule]]\nintegrity = "a-c-mac"\n', r"rule\[1\]: needs a role"),
        ('[[security.rule]]\nrole = "boss"\nintegrity = "a-c-mac"\n', "'boss' is none of"),
        (RULE.format(role="source", extra='integrity = "nope"'), "no key 'nope'"),
        (RULE.format(role="source", extra='target = "x"'), "unknown field 'target'"),
        (RULE.format(role="source", extra=""), "name an integrity key"),
        (
            RULE.format(role="verifier", extra='integrity = "a-c-mac"\ncontext = "cose"'),
            "only source rules choose a context",
        ),
        (
            RULE.format(role="source", extra='integrity = "a-c-mac"\ncontext = "tls"'),
            "'tls' is none of",
        ),
        (
            RULE.format(role="source", extra='integrity = "a-c-mac"\nsource = "ftp://x/*"'),
            r"rule\[1\]\.source:",
        ),
        (
            RULE.format(role="source", extra='confidentiality = "short"'),
            "is not an AES key",
        ),
        ('[security.keys]\nbad = { file = "missing.hex" }\n', "cannot read .*missing.hex"),
        ('[security.keys]\nbad = { file = "bad.hex" }\n', "must hold the key in hex"),
        ('[security.keys]\nbad = { file = "tiny.hex" }\n', "a key of 4 bytes"),
        ('[security.keys]\nbad = { file = "a-c.mac", trust = "ca.pem" }\n', "exactly one of"),
        ('[security.keys]\nbad = { file = "a-c.mac", kid = "x" }\n', "only for a cose key"),
        ('[security.keys]\nbad = "a-c.mac"\n', "must be a table"),
        ('[security.keys]\nbad = { cose = "two.cose" }\n', "holds 2 keys"),
        ('[security.keys]\nbad = { cose = "two.cose", kid = "z" }\n', "no key with kid 'z'"),
        ('[security.keys]\nbad = { cose = "a-c.mac" }\n', "not CBOR|COSE_Key"),
        ("[security]\nrules = []\n", "unknown field 'rules'"),
    ],
)
def test_policy_errors_are_one_line(keys_dir: Path, extra_toml: str, message: str) -> None:
    (keys_dir / "bad.hex").write_text("not hex at all")
    (keys_dir / "tiny.hex").write_text("00112233")
    (keys_dir / "short.hex").write_text("00" * 20)
    two = [CoseKey.symmetric(b"k" * 16, kid=b"x").to_cbor(), CoseKey.symmetric(b"j" * 16).to_cbor()]
    (keys_dir / "two.cose").write_bytes(cbor2.dumps(two))
    keys = KEYS_TOML + 'short = { file = "short.hex" }\n'
    if extra_toml.startswith("[security.keys]"):
        keys, extra_toml = KEYS_TOML + extra_toml.removeprefix("[security.keys]\n"), ""
    elif extra_toml.startswith("[security]"):
        keys = extra_toml
        extra_toml = ""
    with pytest.raises(ConfigError, match=message) as info:
        policy(keys_dir, extra_toml, keys=keys)
    assert "\n" not in str(info.value)


def test_key_kinds_must_fit_the_rule(tmp_path: Path) -> None:
    ca = authority()
    node = leaf(ca, "dtn://a/")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    (tmp_path / "a.pem").write_bytes(node.cert_pem())
    (tmp_path / "a.key").write_bytes(node.key_pem())
    (tmp_path / "other.key").write_bytes(leaf(ca, "dtn://b/").key_pem())
    keys = (
        "[security.keys]\n"
        'mesh = { trust = "ca.pem" }\n'
        'me = { certificate = "a.pem", private_key = "a.key" }\n'
        'wrong = { certificate = "a.pem", private_key = "other.key" }\n'
    )
    with pytest.raises(ConfigError, match="not the first certificate's"):
        policy(tmp_path, keys=keys)
    keys = keys.replace('wrong = { certificate = "a.pem", private_key = "other.key" }\n', "")
    source = RULE.format(role="source", extra='integrity = "{}"')
    with pytest.raises(ConfigError, match=r"'mesh' \(trust anchors\) cannot make integrity"):
        policy(tmp_path, source.replace("{}", "mesh"), keys=keys)
    with pytest.raises(ConfigError, match="use context = 'cose'"):
        policy(tmp_path, source.replace("{}", "me") + 'context = "rfc9173"\n', keys=keys)
    read = policy(tmp_path, source.replace("{}", "me"), keys=keys)
    assert str(read.rules[0].context) == "cose"  # the default for a private key
    with pytest.raises(ConfigError, match="needs its private_key"):
        policy(tmp_path, keys='[security.keys]\nx = { certificate = "a.pem" }\n')


# -- the roles ---------------------------------------------------------------------------------


def source_and_acceptor(keys_dir: Path) -> tuple[SecurityPolicy, SecurityPolicy]:
    return policy(keys_dir, SOURCE_RULE), policy(keys_dir, ACCEPTOR_RULE)


def test_source_adds_a_bib_and_a_bcb_and_the_acceptor_removes_them(keys_dir: Path) -> None:
    at_a, at_c = source_and_acceptor(keys_dir)
    secured = at_a.secure(bundle(), A)
    assert PAYLOAD not in secured.encode()
    types = [int(block.type_code) for block in secured.blocks]
    assert types == [11, 12, 1]  # the BIB, then the BCB that also encrypts it (RFC 9172 §3.9)
    assert set(secured.encrypted_blocks) == {1, secured.blocks[0].number}
    # Bundles the rule is not about are left alone.
    assert at_a.secure(bundle(destination="dtn://d/x"), A).blocks == bundle().blocks
    # At c, reception only checks; delivery accepts.
    received = at_c.on_reception(secured, C, local=True, now=NOW)
    assert received.discard is None and received.bundle is secured
    delivered = at_c.on_delivery(secured, now=NOW)
    assert delivered.discard is None
    assert delivered.bundle.payload == PAYLOAD
    assert not delivered.bundle.has_security_blocks
    assert sorted((c.service, c.target, c.outcome, c.key) for c in delivered.checks) == [
        ("confidentiality", 1, "decrypted", "a-c-aes"),
        ("confidentiality", 2, "decrypted", "a-c-aes"),
        ("integrity", 1, "verified", "a-c-mac"),
    ]
    check = next(c for c in delivered.checks if c.service == "integrity")
    assert check.security_source == "dtn://a/"
    assert check.describe() == (
        "integrity of the payload verified (key a-c-mac, source dtn://a/, context 1)"
    )


def tampered(secured: Bundle) -> Bundle:
    """``secured`` with one ciphertext byte of the payload flipped (a relay at fault)."""
    payload = secured.payload_block
    data = bytearray(payload.data)
    data[3] ^= 0x01
    changed = CanonicalBlock.opaque(
        payload.type_code, 1, payload.flags, payload.crc_type, bytes(data)
    )
    return Bundle(secured.primary, (*secured.blocks[:-1], changed))


def test_a_flipped_ciphertext_byte_fails_with_reason_15(keys_dir: Path) -> None:
    at_a, at_c = source_and_acceptor(keys_dir)
    bad = tampered(at_a.secure(bundle(), A))
    for verdict in (at_c.on_reception(bad, C, local=True, now=NOW), at_c.on_delivery(bad, now=NOW)):
        assert verdict.discard == StatusReportReason.FAILED_SECURITY_OPERATION == 15
        assert "does not authenticate" in verdict.reason and "rule 1 (acceptor" in verdict.reason


def test_missing_operations_fail_with_reason_12(keys_dir: Path) -> None:
    _, at_c = source_and_acceptor(keys_dir)
    verdict = at_c.on_delivery(bundle(), now=NOW)
    assert verdict.discard == StatusReportReason.MISSING_SECURITY_OPERATION == 12
    assert "no integrity operation over the payload" in verdict.reason
    # Encrypted but not signed: the integrity operation is missing.
    encrypt_only = policy(keys_dir).secure(bundle(), A, confidentiality="a-c-aes")
    verdict = at_c.on_delivery(encrypt_only, now=NOW)
    assert verdict.discard == 12 and "integrity" in verdict.reason


def test_an_unknown_context_fails_with_reason_13(keys_dir: Path) -> None:
    _, at_c = source_and_acceptor(keys_dir)
    plain = bundle()
    asb = AbstractSecurityBlock((1,), 99, A, (), (((1, b"x"),),))
    bib = CanonicalBlock(11, 2, 0, 0, asb.encode())
    odd = Bundle(plain.primary, (bib, *plain.blocks))
    verdict = at_c.on_delivery(odd, now=NOW)
    assert verdict.discard == StatusReportReason.UNKNOWN_SECURITY_OPERATION == 13


def test_a_verifier_checks_and_leaves_everything_in_place(keys_dir: Path) -> None:
    at_a = policy(keys_dir, SOURCE_RULE)
    secured = at_a.secure(bundle(), A)
    b = parse_eid("dtn://b/")
    both = policy(keys_dir, ACCEPTOR_RULE.replace("acceptor", "verifier"))
    verdict = both.on_reception(secured, b, local=False, now=NOW)
    assert verdict.discard is None and verdict.bundle is secured
    assert {c.outcome for c in verdict.checks} == {"verified", "decrypted"}
    # A verifier without the BCB key cannot see the BIB: the required operation is missing.
    mac_only = policy(
        keys_dir, RULE.format(role="verifier", extra='integrity = "a-c-mac"\nsource="dtn://a/*"')
    )
    verdict = mac_only.on_reception(secured, b, local=False, now=NOW)
    assert verdict.discard == 12 and "encrypted and cannot be read here" in verdict.reason
    assert mac_only.on_reception(tampered(secured), b, local=False, now=NOW).discard == 12


def test_an_acceptor_on_the_way_removes_the_operations(keys_dir: Path) -> None:
    at_a, gateway = source_and_acceptor(keys_dir)
    secured = at_a.secure(bundle(), A)
    verdict = gateway.on_reception(secured, parse_eid("dtn://gw/"), local=False, now=NOW)
    assert verdict.discard is None
    assert verdict.bundle.payload == PAYLOAD and not verdict.bundle.has_security_blocks


def test_relays_without_a_rule_carry_security_blocks_as_received(keys_dir: Path) -> None:
    at_a = policy(keys_dir, SOURCE_RULE)
    secured = at_a.secure(bundle(), A)
    unrelated = policy(keys_dir, ACCEPTOR_RULE.replace("dtn://c/*", "dtn://z/*"))
    verdict = unrelated.on_reception(secured, parse_eid("dtn://b/"), local=False, now=NOW)
    assert verdict.bundle is secured and verdict.discard is None and verdict.checks == ()


def test_applications_name_keys(keys_dir: Path) -> None:
    (keys_dir / "short.hex").write_text("00" * 20)
    keys_only = policy(keys_dir, keys=KEYS_TOML + 'short = { file = "short.hex" }\n')
    signed = keys_only.secure(bundle(destination="dtn://d/x"), A, integrity="a-c-mac")
    assert [int(block.type_code) for block in signed.blocks] == [11, 1]
    with pytest.raises(SecurityError, match="no security key named 'nope'"):
        keys_only.secure(bundle(), A, confidentiality="nope")
    with pytest.raises(SecurityError, match="is not an AES key"):
        keys_only.secure(bundle(), A, confidentiality="short")
    piece = fragment_at(bundle(), [10])[0]
    with pytest.raises(SecurityError, match="fragment"):
        keys_only.secure(piece, A, integrity="a-c-mac")


def test_a_certificate_signer_is_checked_against_the_mesh_ca(tmp_path: Path) -> None:
    ca = authority()
    node = leaf(ca, "dtn://a/")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    (tmp_path / "other-ca.pem").write_bytes(authority("other").cert_pem())
    (tmp_path / "a.pem").write_bytes(node.cert_pem())
    (tmp_path / "a.key").write_bytes(node.key_pem())
    keys = (
        "[security.keys]\n"
        'me = { certificate = "a.pem", private_key = "a.key" }\n'
        'mesh = { trust = "ca.pem" }\n'
        'other = { trust = "other-ca.pem" }\n'
    )
    signer = policy(tmp_path, RULE.format(role="source", extra='integrity = "me"'), keys=keys)
    signed = signer.secure(bundle(), A)
    accept = policy(tmp_path, RULE.format(role="acceptor", extra='integrity = "mesh"'), keys=keys)
    verdict = accept.on_delivery(signed, now=NOW)
    assert verdict.discard is None
    assert verdict.checks == (
        SecurityCheck("integrity", 1, "dtn://a/", 3, "verified", "mesh", "dtn://a/"),
    )
    refuse = policy(tmp_path, RULE.format(role="acceptor", extra='integrity = "other"'), keys=keys)
    verdict = refuse.on_delivery(signed, now=NOW)
    assert verdict.discard == 15 and "not trusted" in verdict.reason


def test_reading_from_a_toml_document(keys_dir: Path) -> None:
    document = tomllib.loads(KEYS_TOML + SOURCE_RULE)
    assert len(read_security_policy(document["security"], keys_dir).rules) == 1
    with pytest.raises(ConfigError, match="must be a table"):
        read_security_policy(["x"], keys_dir)


def test_another_sources_operation_on_another_block_is_not_this_rules_failure(
    keys_dir: Path,
) -> None:
    """A BIB over the primary block by some other node (key unknown here) travels with a's
    operations: the rule's key cannot check it, and the rule is about the payload."""
    from bpv7.bpsec import HmacSha2, add_integrity

    at_a, at_c = source_and_acceptor(keys_dir)
    secured = at_a.secure(bundle(), A)
    other = add_integrity(secured, [0], HmacSha2(bytes(32)), source="dtn://x/")
    verdict = at_c.on_delivery(other, now=NOW)
    assert verdict.discard is None
    assert verdict.bundle.payload == PAYLOAD
