"""Targets' CRCs under BPSec: RFC 9173's contexts remove them at the security source (§3.8.1,
§4.8.1), the COSE context keeps them (draft-ietf-dtn-bpsec-cose's examples do), and an acceptor
takes a target that still carries one (another implementation's bundle) as it is."""

from __future__ import annotations

import os

import pytest

from bpv7 import (
    BlockFlags,
    BlockType,
    Bundle,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    HopCountBlock,
    decode_bundle,
)
from bpv7.bpsec import (
    AesGcm,
    CoseKey,
    CoseOperation,
    CoseSource,
    HmacSha2,
    KeyStore,
    Outcome,
    add_confidentiality,
    add_integrity,
    process_security,
)
from bpv7.bpsec.context import SourceBlock
from bpv7.security_blocks import AbstractSecurityBlock

HMAC_KEY = bytes(range(32))
AES_KEY = bytes(range(32, 64))
SOURCE = "ipn:7.1"
SMALL = b"the payload"
LARGE = bytes(range(256)) * 1024  # 256 KiB: encrypted in place, decoded as a view


def plain_bundle(payload: bytes = SMALL, crc_type: int = CRCType.CRC32C) -> Bundle:
    return Bundle.build(
        source=SOURCE,
        destination="ipn:8.1",
        payload=payload,
        creation=CreationTimestamp(800_000_000_000, 1),
        lifetime_ms=3_600_000,
        crc_type=crc_type,
        extra_blocks=[HopCountBlock(30, 2)],
    )


def keys() -> KeyStore:
    store = KeyStore()
    store.add(f"bib@{SOURCE}", HMAC_KEY)
    store.add(f"bcb@{SOURCE}", AES_KEY)
    store.add_cose_key(CoseKey.symmetric(AES_KEY, kid=b"enc", alg=3))
    return store


def crc_types(bundle: Bundle) -> dict[int, CRCType]:
    return {0: bundle.primary.crc_type} | {b.number: b.crc_type for b in bundle.blocks}


@pytest.mark.parametrize("payload", [SMALL, LARGE], ids=["small", "large"])
@pytest.mark.parametrize("crc_type", [CRCType.CRC16_X25, CRCType.CRC32C])
def test_rfc9173_targets_lose_their_crc(payload: bytes, crc_type: CRCType) -> None:
    bundle = plain_bundle(payload, crc_type)
    hop = bundle.find_block(BlockType.HOP_COUNT)
    assert hop is not None
    # RFC 9173 §3.8.1: a BIB-HMAC-SHA2 target, the primary block included, loses its CRC.
    signed = add_integrity(bundle, [0, hop.number], HmacSha2(HMAC_KEY), source=SOURCE)
    bib = signed.blocks[0]
    assert crc_types(signed) == {0: CRCType.NONE, hop.number: CRCType.NONE, 1: crc_type} | {
        bib.number: CRCType.NONE
    }
    # RFC 9173 §4.8.1: so does a BCB-AES-GCM target; the security block's own CRC is the
    # caller's choice.
    secured = add_confidentiality(
        signed, [1], AesGcm(AES_KEY), source=SOURCE, crc_type=CRCType.CRC32C
    )
    bcb = next(b for b in secured.blocks if b.type_code == BlockType.BCB)
    assert bcb.crc_type == CRCType.CRC32C
    assert secured.payload_block.crc_type == CRCType.NONE
    # On the wire too, and the acceptor gets everything back.
    received = decode_bundle(secured.encode())
    assert crc_types(received) == crc_types(secured)
    result = process_security(received, keys(), accept=True)
    assert [op.outcome for op in result.operations] == [
        Outcome.DECRYPTED,
        Outcome.VERIFIED,
        Outcome.VERIFIED,
    ]
    assert result.bundle.payload == payload
    assert not result.bundle.has_security_blocks
    # RFC 9171 §4.3.1: no BIB covers the primary block any more, so it has a CRC again.
    assert result.bundle.primary.crc_type == CRCType.CRC32C
    assert decode_bundle(result.bundle.encode()) == result.bundle


def test_a_primary_block_bound_by_other_operations_keeps_its_crc() -> None:
    bundle = plain_bundle()
    encrypted = add_confidentiality(bundle, [1], AesGcm(AES_KEY), source=SOURCE)
    # Removing the primary block's CRC now would break the BCB, whose AAD binds the primary
    # block (scope flag bit 0, RFC 9173 §4.3.4): it keeps its CRC (RFC 9171 §4.3.1: "a CRC
    # MAY be present" in a primary block a BIB covers).
    signed = add_integrity(encrypted, [0], HmacSha2(HMAC_KEY), source=SOURCE)
    assert signed.primary == bundle.primary
    result = process_security(decode_bundle(signed.encode()), keys(), accept=True)
    assert [op.outcome for op in result.operations] == [Outcome.DECRYPTED, Outcome.VERIFIED]
    assert result.bundle.primary == bundle.primary
    assert result.bundle.payload == SMALL


def test_the_cose_context_keeps_crcs() -> None:
    # draft-ietf-dtn-bpsec-cose: the AAD leaves CRCs out, and its Appendix A encrypted target
    # keeps CRC type 2.
    bundle = plain_bundle(LARGE)
    context = CoseSource(CoseOperation(CoseKey.symmetric(AES_KEY, kid=b"enc", alg=3)))
    secured = add_confidentiality(bundle, [1], context, source=SOURCE)
    assert crc_types(secured)[1] == CRCType.CRC32C
    assert secured.primary.crc_type == CRCType.CRC32C
    result = process_security(decode_bundle(secured.encode()), keys(), accept=True)
    assert result.operations[0].outcome == Outcome.DECRYPTED
    assert result.bundle.payload == LARGE


@pytest.mark.parametrize("payload", [SMALL, LARGE], ids=["small", "large"])
def test_a_bcb_target_that_kept_its_crc_is_accepted(payload: bytes) -> None:
    """Another implementation's BCB-AES-GCM whose target still has its CRC (RFC 9173 §4.8.2,
    the acceptor's side, sets no condition on the target's CRC; RFC 9171 §4.2.1 checks it at
    reception): the CRC over the ciphertext checks, the target decrypts and keeps its CRC
    type, and the plaintext block is encoded with a CRC of its own."""
    bundle = plain_bundle(payload)
    context = AesGcm(AES_KEY, iv=os.urandom(12))
    replicate = int(BlockFlags.REPLICATE_IN_EVERY_FRAGMENT)  # RFC 9172 §3.8
    header = SourceBlock(BlockType.BCB, 3, replicate, bundle.primary.source)
    # The context alone, without add_confidentiality's removal of the CRC: the AAD (RFC 9173
    # §4.7.2) binds the target's type, number and flags, not its CRC.
    parameters, results, (ciphertext,) = context.encrypt(bundle, header, [1])
    asb = AbstractSecurityBlock((1,), context.context_id, header.source, parameters, tuple(results))
    bcb = CanonicalBlock(BlockType.BCB, 3, replicate, CRCType.NONE, asb.encode())
    payload_block = bundle.payload_block
    assert payload_block.crc_type == CRCType.CRC32C
    foreign = Bundle(
        bundle.primary,
        (
            bcb,
            *bundle.blocks[:-1],
            CanonicalBlock.opaque(1, 1, payload_block.flags, CRCType.CRC32C, ciphertext),
        ),
    )
    received = decode_bundle(foreign.encode())  # its CRC, over the ciphertext, checks
    assert received.payload_block.crc_type == CRCType.CRC32C
    result = process_security(received, keys(), accept=True)
    assert [op.outcome for op in result.operations] == [Outcome.DECRYPTED]
    assert result.bundle.payload == payload
    assert result.bundle.payload_block.crc_type == CRCType.CRC32C
    assert decode_bundle(result.bundle.encode()) == bundle


def test_a_bib_target_that_kept_its_crc_verifies() -> None:
    """Likewise a BIB-HMAC-SHA2 target with its CRC, the primary block's included: the IPPT
    (RFC 9173 §3.7) holds a canonical block's data, not its CRC, and the primary block as it
    is."""
    bundle = plain_bundle()
    context = HmacSha2(HMAC_KEY)
    header = SourceBlock(BlockType.BIB, 3, 0, bundle.primary.source)
    parameters, results = context.sign(bundle, header, [0, 1])
    asb = AbstractSecurityBlock(
        (0, 1), context.context_id, header.source, parameters, tuple(results)
    )
    bib = CanonicalBlock(BlockType.BIB, 3, 0, CRCType.NONE, asb.encode())
    foreign = Bundle(bundle.primary, (bib, *bundle.blocks))
    result = process_security(decode_bundle(foreign.encode()), keys(), accept=True)
    assert [op.outcome for op in result.operations] == [Outcome.VERIFIED] * 2
    assert result.bundle == bundle
    assert crc_types(result.bundle) == crc_types(bundle)
