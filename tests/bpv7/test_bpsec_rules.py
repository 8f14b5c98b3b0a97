"""RFC 9172's structure and block rules, the acceptor's policy, and robustness of the BPSec code
against arbitrary input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpv7 import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    DecodeError,
    EncodeError,
    HopCountBlock,
    PreviousNodeBlock,
    decode_bundle,
    parse_eid,
    with_forwarding_edits,
    with_hop_count_incremented,
)
from bpv7.bpsec import (
    AesGcm,
    HmacSha2,
    KeyStore,
    Outcome,
    add_confidentiality,
    add_integrity,
    fragment_security_blocks,
    process_security,
)
from bpv7.fragment import FragmentCollector, fragment_at
from bpv7.json_view import bundle_from_json, bundle_to_json
from bpv7.security_blocks import AbstractSecurityBlock
from tests.bpv7.strategies import node_ids

HMAC_KEY = bytes(range(32))
AES_KEY = bytes(range(32, 64))
SOURCE = "ipn:7.1"


def plain_bundle(**overrides: object) -> Bundle:
    arguments: dict[str, object] = {
        "source": SOURCE,
        "destination": "ipn:8.1",
        "payload": b"the payload",
        "creation": CreationTimestamp(800_000_000_000, 1),
        "lifetime_ms": 3_600_000,
        "extra_blocks": [HopCountBlock(30, 2), PreviousNodeBlock(parse_eid("ipn:9.0"))],
    }
    arguments.update(overrides)
    return Bundle.build(**arguments)  # type: ignore[arg-type]


def keys() -> KeyStore:
    store = KeyStore()
    store.add(f"bib@{SOURCE}", HMAC_KEY)
    store.add(f"bcb@{SOURCE}", AES_KEY)
    return store


def asb_block(
    number: int, type_code: int, asb: AbstractSecurityBlock, flags: int = 0
) -> CanonicalBlock:
    return CanonicalBlock(type_code, number, BlockFlags(flags), CRCType.NONE, asb.encode())


def asb(targets: tuple[int, ...], context: int = 1) -> AbstractSecurityBlock:
    return AbstractSecurityBlock(
        targets, context, parse_eid(SOURCE), results=tuple(((1, b"\x00"),) for _ in targets)
    )


# ---------------------------------------------------------------------------------------------
# The abstract security block


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    targets=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=5, unique=True),
    context=st.integers(0, 2**16),
    source=node_ids(),
    parameters=st.dictionaries(
        st.integers(0, 300),
        st.one_of(st.integers(0, 2**64 - 1), st.binary(max_size=40), st.text(max_size=5)),
        max_size=4,
    ),
    data=st.data(),
)
def test_asb_round_trip(
    targets: list[int],
    context: int,
    source: object,
    parameters: dict[int, object],
    data: st.DataObject,
) -> None:
    results = tuple(
        tuple(
            data.draw(
                st.dictionaries(st.integers(0, 100), st.binary(max_size=20), max_size=3)
            ).items()
        )
        for _ in targets
    )
    value = AbstractSecurityBlock(
        tuple(targets),
        context,
        source,
        tuple(parameters.items()),
        results,  # type: ignore[arg-type]
    )
    assert AbstractSecurityBlock.decode(value.encode()) == value


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"targets": ()}, "asb-no-targets"),
        ({"targets": (1, 1), "results": (((1, b""),), ((1, b""),))}, "asb-duplicate-target"),
        ({"results": ()}, "asb-results-count"),
        ({"parameters": ((1, 5), (1, 6))}, "asb-duplicate-parameter"),
        ({"results": (((1, b""), (1, b"")),)}, "asb-duplicate-result"),
        ({"parameters": ((1, 5),), "context_flags": 0}, "asb-parameters-flag"),
    ],
)
def test_asb_structure_rules(fields: dict[str, object], rule: str) -> None:
    base = {
        "targets": (1,),
        "context_id": 1,
        "source": parse_eid(SOURCE),
        "results": (((1, b""),),),
    }
    base.update(fields)
    with pytest.raises(EncodeError) as info:
        AbstractSecurityBlock(**base)  # type: ignore[arg-type]
    assert (info.value.rule, info.value.rfc) == (rule, 9172)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=80), type_code=st.sampled_from([11, 12]))
def test_arbitrary_security_block_data_only_raises_decode_error(
    data: bytes, type_code: int
) -> None:
    bundle = plain_bundle()
    raw = Bundle.__new__(Bundle)
    block = CanonicalBlock.opaque(type_code, 9, 0, CRCType.CRC32C, data)
    object.__setattr__(raw, "primary", bundle.primary)
    object.__setattr__(raw, "blocks", (block, *bundle.blocks))
    object.__setattr__(raw, "waived", frozenset())
    try:
        decoded = decode_bundle(raw.encode())
    except DecodeError:
        return
    # Whatever decodes is processed without an exception.
    process_security(decoded, keys(), accept=True)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(0, 10_000), value=st.integers(0, 255))
def test_a_corrupted_secured_bundle_fails_cleanly(position: int, value: int) -> None:
    bundle = secured_bundle()
    raw = bytearray(bundle.encode())
    raw[position % len(raw)] = value
    try:
        decoded = decode_bundle(bytes(raw))
    except DecodeError:
        return
    result = process_security(decoded, keys(), accept=True)
    if all(op.succeeded for op in result.operations) and not result.unreadable:
        # Nothing the operations protect was changed undetected.
        assert result.bundle.payload == b"the payload"
        assert result.bundle.hop_count == HopCountBlock(30, 2)
        # The BIB over the primary block removed its CRC (RFC 9173 §3.8.1); accepted, that BIB
        # is gone and the primary block gets a CRC-32C back (RFC 9171 §4.3.1).
        assert result.bundle.primary == dataclasses.replace(bundle.primary, crc_type=CRCType.CRC32C)


# ---------------------------------------------------------------------------------------------
# Rules between blocks (decode and Bundle())


def _with_blocks(*blocks: CanonicalBlock) -> bytes:
    bundle = plain_bundle()
    raw = Bundle.__new__(Bundle)
    object.__setattr__(raw, "primary", bundle.primary)
    object.__setattr__(raw, "blocks", (*blocks, *bundle.blocks))
    object.__setattr__(raw, "waived", frozenset())
    return raw.encode()


REPLICATE = int(BlockFlags.REPLICATE_IN_EVERY_FRAGMENT)


@pytest.mark.parametrize(
    ("blocks", "rule", "section"),
    [
        (
            (asb_block(5, 11, asb((1,))), asb_block(6, 11, asb((1,)))),
            "security-operation-duplicate",
            "3.2",
        ),
        (
            (asb_block(5, 12, asb((3,), 2)), asb_block(6, 11, asb((5,)))),
            "bib-targets-security-block",
            "3.7",
        ),
        ((asb_block(5, 12, asb((0,), 2), REPLICATE),), "bcb-targets-primary", "3.8"),
        (
            (asb_block(5, 12, asb((6,), 2)), asb_block(6, 12, asb((2,), 2))),
            "bcb-targets-bcb",
            "3.8",
        ),
        ((asb_block(5, 12, asb((1,), 2)),), "bcb-replicate-flag", "3.8"),
        ((asb_block(5, 12, asb((2,), 2), REPLICATE | 0x10),), "bcb-discard-flag", "3.8"),
        ((asb_block(5, 11, asb((77,))),), "security-target-missing", "3.6"),
    ],
)
def test_rfc9172_block_rules(blocks: tuple[CanonicalBlock, ...], rule: str, section: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_bundle(_with_blocks(*blocks))
    assert (info.value.rule, info.value.section, info.value.rfc) == (rule, section, 9172)
    with pytest.raises(EncodeError) as built:
        bundle = plain_bundle()
        Bundle(bundle.primary, (*blocks, *bundle.blocks))
    assert built.value.rule == rule


def test_source_rules() -> None:
    bundle = plain_bundle()
    signed = add_integrity(bundle, [1], HmacSha2(HMAC_KEY), source=SOURCE)
    bib = signed.blocks[0].number
    cases = [
        (
            lambda: add_integrity(signed, [1], HmacSha2(HMAC_KEY), source=SOURCE),
            "security-operation-duplicate",
        ),
        (
            lambda: add_integrity(signed, [bib], HmacSha2(HMAC_KEY), source=SOURCE),
            "bib-targets-security-block",
        ),
        (lambda: add_integrity(bundle, [], HmacSha2(HMAC_KEY), source=SOURCE), "asb-no-targets"),
        (
            lambda: add_integrity(bundle, [44], HmacSha2(HMAC_KEY), source=SOURCE),
            "security-target-missing",
        ),
        (
            lambda: add_confidentiality(signed, [1], AesGcm(AES_KEY), source=SOURCE),
            "bib-not-encrypted-with-target",
        ),
        (
            lambda: add_confidentiality(signed, [bib, 2], AesGcm(AES_KEY), source=SOURCE),
            "bcb-targets-unshared-bib",
        ),
    ]
    for call, rule in cases:
        with pytest.raises(EncodeError) as info:
            call()
        assert info.value.rule == rule
    encrypted = add_confidentiality(signed, [1, bib], AesGcm(AES_KEY), source=SOURCE)
    with pytest.raises(EncodeError) as info:
        add_integrity(encrypted, [1], HmacSha2(HMAC_KEY), source=SOURCE)
    assert (info.value.rule, info.value.section) == ("bib-after-bcb", "3.9")
    with pytest.raises(EncodeError) as info:
        add_confidentiality(encrypted, [1], AesGcm(AES_KEY), source=SOURCE)
    assert info.value.rule == "security-operation-duplicate"
    fragment = plain_bundle(flags=BundleFlags.IS_FRAGMENT, fragment_offset=0, total_adu_length=100)
    with pytest.raises(EncodeError) as info:
        add_integrity(fragment, [1], HmacSha2(HMAC_KEY), source=SOURCE)
    assert (info.value.rule, info.value.section) == ("security-on-fragment", "5.2")


# ---------------------------------------------------------------------------------------------
# Encrypted blocks, acceptance policy, fragments, JSON


def reassemble(fragments: list[Bundle]) -> Bundle:
    collector = FragmentCollector()
    whole = None
    for fragment in fragments:
        whole = collector.add(fragment) or whole
    assert isinstance(whole, Bundle)
    return whole


def secured_bundle() -> Bundle:
    """BIB 4 over the primary block and the Previous Node Block, BIB 5 over the payload, and
    BCB 6 encrypting the payload, BIB 5 and the Hop Count Block (RFC 9172 §3.9: a BIB whose
    target is encrypted is encrypted with it)."""
    bundle = plain_bundle()
    hop = bundle.find_block(BlockType.HOP_COUNT)
    previous = bundle.find_block(BlockType.PREVIOUS_NODE)
    assert hop is not None and previous is not None
    signed = add_integrity(bundle, [0, previous.number], HmacSha2(HMAC_KEY), source=SOURCE)
    signed = add_integrity(signed, [1], HmacSha2(HMAC_KEY), source=SOURCE)
    bib = signed.blocks[0].number
    return add_confidentiality(signed, [1, bib, hop.number], AesGcm(AES_KEY), source=SOURCE)


def test_encrypted_extension_blocks_are_opaque() -> None:
    bundle = decode_bundle(secured_bundle().encode())
    hop = bundle.find_block(BlockType.HOP_COUNT)
    assert hop is not None and hop.number in bundle.encrypted_blocks
    assert bundle.hop_count is None
    # A forwarder leaves the encrypted hop count as it is and adds no second one.
    edited = with_forwarding_edits(bundle, increment_hop_count=True, bundle_age_ms=5)
    assert edited.find_block(BlockType.HOP_COUNT) == hop
    with pytest.raises(EncodeError) as info:
        with_hop_count_incremented(bundle)
    assert info.value.rule == "block-encrypted"
    result = process_security(bundle, keys(), accept=True)
    assert [(op.security_block, op.target, op.outcome) for op in result.operations] == [
        (6, 1, Outcome.DECRYPTED),
        (6, 5, Outcome.DECRYPTED),
        (6, 2, Outcome.DECRYPTED),
        (5, 1, Outcome.VERIFIED),
        (4, 0, Outcome.VERIFIED),
        (4, 3, Outcome.VERIFIED),
    ]
    assert result.bundle.hop_count == HopCountBlock(30, 2)
    assert not result.bundle.has_security_blocks
    assert bundle.primary.crc_type == CRCType.NONE  # a BIB covers it: RFC 9173 §3.8.1
    assert result.bundle.primary.crc_type == CRCType.CRC32C  # that BIB is gone: RFC 9171 §4.3.1


def test_a_policy_accepts_some_operations() -> None:
    bundle = secured_bundle()
    # Decrypt (accept the BCB) but only verify the BIB, as a waypoint that is not its acceptor.
    result = process_security(bundle, keys(), accept=lambda op: op.block_type == BlockType.BCB)
    kept = result.bundle
    assert [b.number for b in kept.blocks if b.type_code in (11, 12)] == [5, 4]
    assert kept.encrypted_blocks == {}
    again = process_security(decode_bundle(kept.encode()), keys(), accept=True)
    assert [op.outcome for op in again.operations] == [Outcome.VERIFIED] * 3
    assert not again.bundle.has_security_blocks
    # Accepting only BIB operations: BIB 4 goes, BIB 5 stays encrypted with its operation.
    result = process_security(bundle, keys(), accept=lambda op: op.block_type == BlockType.BIB)
    assert [b.number for b in result.bundle.blocks] == [5, 6, 2, 3, 1]
    assert result.bundle.blocks[:3] == bundle.blocks[:1] + bundle.blocks[2:4]
    assert result.bundle.encrypted_blocks == bundle.encrypted_blocks


def test_a_tampered_ciphertext_fails_and_hides_the_bib() -> None:
    bundle = secured_bundle()
    payload = bundle.payload_block
    tampered = CanonicalBlock.opaque(
        payload.type_code,
        1,
        payload.flags,
        payload.crc_type,
        bytes([payload.data[0] ^ 1]) + payload.data[1:],
    )
    broken = Bundle(bundle.primary, (*bundle.blocks[:-1], tampered))
    result = process_security(broken, keys(), accept=True)
    outcomes = {(op.target, op.outcome) for op in result.operations}
    assert (1, Outcome.FAILED) in outcomes
    # The BIB over the payload is checked only once the payload is decrypted (RFC 9172 §5.1.2).
    assert (1, Outcome.SKIPPED) in outcomes
    assert result.status_reason == 15


def test_fragment_security_blocks() -> None:
    bundle = secured_bundle()
    # The BCB (replicated: it encrypts the payload) and what else it encrypts: BIB 5 and the
    # Hop Count Block 2.
    assert fragment_security_blocks(bundle) == {6, 5, 2}
    assert fragment_security_blocks(plain_bundle()) == frozenset()


def test_fragments_of_a_secured_bundle_decode_and_defer_payload_operations() -> None:
    bundle = secured_bundle()
    fragments = fragment_at(bundle, [5])
    assert len(fragments) == 2
    for fragment in fragments:
        decoded = decode_bundle(fragment.encode())
        result = process_security(decoded, keys())
        # The primary block differs in a fragment and the payload is partial: nothing is
        # checked before reassembly, and nothing fails.
        assert result.operations
        assert all(op.outcome == Outcome.SKIPPED for op in result.operations)
    reassembled = reassemble(fragments)
    result = process_security(reassembled, keys(), accept=True)
    assert all(op.succeeded for op in result.operations)
    assert result.bundle.payload == b"the payload"


def test_json_round_trip_keeps_encrypted_blocks() -> None:
    bundle = secured_bundle()
    view = bundle_to_json(bundle)
    assert bundle_from_json(view).encode() == bundle.encode()
    changed = dataclasses.replace(bundle.primary, lifetime_ms=1)
    assert changed != bundle.primary
