"""COSE signatures with the signer's certificate chain (x5chain, RFC 9360): a verifier holding
only a CA certificate checks who signed, and is told."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bpv7 import Bundle, CreationTimestamp, decode_bundle
from bpv7.bpsec import (
    CoseKey,
    CoseOperation,
    CoseSource,
    KeyStore,
    TrustAnchors,
    add_integrity,
    certificate_identity,
    process_security,
    read_certificates,
    read_private_key,
)
from bpv7.json_view import bundle_to_json
from tests.x509_support import NOW, Issued, authority, leaf

SOURCE = "dtn://laptop-7/"


def plain() -> Bundle:
    return Bundle.build(
        source=SOURCE,
        destination="dtn://hub/ucp/broker",
        payload=b"a UCP request",
        creation=CreationTimestamp(800_000_000_000, 1),
        lifetime_ms=3_600_000,
    )


def signed(signer: Issued, chain: tuple[Issued, ...] = (), kid: bytes = b"") -> bytes:
    key = CoseKey.from_private_key(signer.key, kid=kid)
    operation = CoseOperation(key, x5chain=tuple(item.certificate for item in (signer, *chain)))
    return add_integrity(plain(), [1], CoseSource(operation), source=SOURCE).encode()


def verifier(*anchors: Issued, at: datetime.datetime = NOW) -> KeyStore:
    keys = KeyStore(trust_anchors=TrustAnchors(a.certificate for a in anchors))
    keys.validation_time = at
    return keys


def outcome(raw: bytes, keys: KeyStore) -> tuple[str, str | None, str]:
    result = process_security(decode_bundle(raw), keys, accept=True)
    (op,) = result.operations
    return str(op.outcome), op.signer, op.reason


def test_a_signature_chaining_to_the_ca_verifies_and_names_the_signer() -> None:
    ca = authority()
    node = leaf(ca, SOURCE)
    assert outcome(signed(node), verifier(ca)) == ("verified", SOURCE, "")


def test_an_intermediate_in_the_chain_is_used() -> None:
    ca = authority()
    intermediate = authority("site CA", issuer=ca)
    node = leaf(intermediate, SOURCE)
    assert outcome(signed(node, (intermediate,)), verifier(ca))[:2] == ("verified", SOURCE)
    # Without the intermediate the path cannot be built.
    state, _, reason = outcome(signed(node), verifier(ca))
    assert state == "failed" and "not trusted" in reason


def test_ed25519_signers_work_too() -> None:
    ca = authority()
    node = leaf(ca, SOURCE, key=ed25519.Ed25519PrivateKey.generate())
    assert outcome(signed(node), verifier(ca))[:2] == ("verified", SOURCE)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("other CA", "not trusted"),
        ("expired", "not trusted"),
        ("not yet valid", "not trusted"),
        ("no digitalSignature", "does not allow digital signatures"),
        ("another key", "does not verify"),
        ("tampered", "does not verify"),
    ],
)
def test_a_signature_that_does_not_chain_fails(case: str, reason: str) -> None:
    ca = authority()
    node = leaf(ca, SOURCE)
    keys = verifier(ca)
    raw = signed(node)
    if case == "other CA":
        keys = verifier(authority("another CA"))
    elif case == "expired":
        keys = verifier(ca, at=NOW + datetime.timedelta(days=400))
    elif case == "not yet valid":
        keys = verifier(ca, at=NOW - datetime.timedelta(days=60))
    elif case == "no digitalSignature":
        raw = signed(leaf(ca, SOURCE, signing=False))
    elif case == "another key":
        # The chain of one node, the signature of another key.
        other = leaf(ca, SOURCE)
        raw = signed(Issued(node.certificate, other.key))
    elif case == "tampered":
        bundle = decode_bundle(raw)
        changed = bundle.payload_block.with_data(b"a UCP requesT")  # (a new CRC, the old BIB)
        raw = Bundle(bundle.primary, (*bundle.blocks[:-1], changed)).encode()
    state, signer, why = outcome(raw, keys)
    assert (state, signer) == ("failed", None)
    assert reason in why


def test_without_trust_anchors_the_chain_is_not_used() -> None:
    ca = authority()
    node = leaf(ca, SOURCE)
    raw = signed(node, kid=b"laptop-7")
    assert outcome(raw, KeyStore())[0] == "no-key"
    # The key itself, by its kid, still verifies (and names no certificate signer).
    keys = KeyStore([CoseKey.from_private_key(node.key, kid=b"laptop-7").public()])
    assert outcome(raw, keys) == ("verified", None, "")


def test_files_read_and_identity() -> None:
    ca = authority()
    node = leaf(ca, "dtn://laptop-7/")
    (certificate,) = read_certificates(node.cert_pem())
    assert certificate_identity(certificate) == "dtn://laptop-7/"
    assert certificate_identity(ca.certificate) == "mesh CA"
    key = read_private_key(node.key_pem(), kid=b"k")
    assert key.kid == b"k" and key.is_private
    raw = signed(node)
    view = bundle_to_json(
        decode_bundle(raw), security=process_security(decode_bundle(raw), verifier(ca))
    )
    assert view["security_operations"][0]["signer"] == "dtn://laptop-7/"


def test_bad_files_are_one_line_errors() -> None:
    from bpv7.bpsec import KeyFormatError

    with pytest.raises(KeyFormatError, match=r"not an X\.509 certificate"):
        read_certificates(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(KeyFormatError, match="private key"):
        read_private_key(b"not a key")
