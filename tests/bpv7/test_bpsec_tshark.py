"""Differential test against Wireshark's ``bpsec`` dissector (tshark), which we did not write.

BIBs and BCBs we build with every context and shape -- the RFC 9173 contexts with and without key
wrap and with every scope, the COSE context's MAC, signature and encryption messages, several
targets, a BCB over a BIB -- and the published RFC 9173 and dtn-demo-agent bundles are dissected
by one ``tshark -T json`` run (exported-PDU records naming ``bpv7``, as in test_tshark.py). For
every frame: no malformed-packet marker, only the informational expert notes listed below, and
each security block tshark reads has the targets, context id, flags and security source we wrote,
with one result set per target.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bpv7 import (
    BlockType,
    Bundle,
    BundleAgeBlock,
    CreationTimestamp,
    HopCountBlock,
    PreviousNodeBlock,
    decode_bundle,
    parse_eid,
)
from bpv7.bpsec import (
    AesGcm,
    CoseKey,
    CoseOperation,
    CoseSource,
    HmacSha2,
    add_confidentiality,
    add_integrity,
)
from bpv7.security_blocks import AbstractSecurityBlock
from tests.bpv7.test_bpsec_vectors import DATA, FINAL_1, FINAL_2, FINAL_3, FINAL_4, RFC9173_WAIVERS
from tests.bpv7.test_tshark import (
    LINKTYPE_WIRESHARK_UPPER_PDU,
    TSHARK,
    _pcap,
    dissect,
    exported_pdu,
)

pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (apt-get install tshark); CI installs it"
)

ALLOWED_EXPERT = re.compile(
    r"Unknown type code"  # a payload with no sub-dissector
    r"|Block is targed by (BIB|BCB) block number \d+"  # tshark's own spelling
    r"|BPSec Security Source different from bundle Source"
)
"""Informational notes tshark adds to well-formed BPSec bundles."""

SOURCE = "ipn:7.1"
KEY_16 = bytes(range(16))
KEY_32 = bytes(range(32))


def _plain() -> Bundle:
    return Bundle.build(
        source=SOURCE,
        destination="ipn:8.1",
        payload=bytes(range(200)),
        creation=CreationTimestamp(800_000_000_000, 1),
        lifetime_ms=3_600_000,
        extra_blocks=[
            HopCountBlock(30, 2),
            PreviousNodeBlock(parse_eid("ipn:9.0")),
            BundleAgeBlock(77),
        ],
    )


def _cases() -> Iterator[tuple[str, Bundle]]:
    plain = _plain()
    for variant in (5, 6, 7):
        for scope in (0, 7):
            yield (
                f"bib-hmac{variant}-scope{scope}",
                add_integrity(
                    plain, [0, 1, 2], HmacSha2(KEY_32, variant=variant, scope=scope), source=SOURCE
                ),
            )
    yield (
        "bib-wrapped-key",
        add_integrity(plain, [1], HmacSha2(KEY_16, wrap=True), source="ipn:3.0"),
    )
    for variant, key in ((1, KEY_16), (3, KEY_32)):
        yield (
            f"bcb-aes{variant}",
            add_confidentiality(plain, [1, 3], AesGcm(key, variant=variant), source=SOURCE),
        )
        yield (
            f"bcb-aes{variant}-wrapped",
            add_confidentiality(
                plain, [1], AesGcm(KEY_16, variant=variant, wrap=True, scope=1), source=SOURCE
            ),
        )
    signed = add_integrity(plain, [1, 4], HmacSha2(KEY_32), source=SOURCE)
    bib = signed.blocks[0].number
    yield "bcb-over-bib", add_confidentiality(signed, [1, 4, bib], AesGcm(KEY_32), source=SOURCE)
    mac = CoseKey.symmetric(KEY_32, kid=b"mac", alg=5)
    wrap = CoseKey.symmetric(KEY_16, kid=b"kek", alg=-3)
    enc = CoseKey.symmetric(KEY_16, kid=b"enc", alg=1)
    es256 = CoseKey.from_private_key(ec.generate_private_key(ec.SECP256R1()), kid=b"ec")
    eddsa = CoseKey.from_private_key(ed25519.Ed25519PrivateKey.generate(), kid=b"ed")
    yield "cose-mac0-mac-sign1", add_integrity(
        plain,
        [1, 2, 3, 4],
        CoseSource({1: CoseOperation(mac), 2: CoseOperation(wrap), 3: CoseOperation(es256),
                    4: CoseOperation(eddsa)}),
        source=SOURCE,
    )  # fmt: skip
    yield (
        "cose-encrypt0-encrypt",
        add_confidentiality(
            plain,
            [1, 2],
            CoseSource(
                {1: CoseOperation(enc), 2: CoseOperation(wrap, alg=1)}, aad_scope={0: 1, -1: 3}
            ),
            source=SOURCE,
        ),
    )
    for name, hex_text in (("a1", FINAL_1), ("a2", FINAL_2), ("a3", FINAL_3), ("a4", FINAL_4)):
        yield f"rfc9173-{name}", decode_bundle(bytes.fromhex(hex_text), waive=RFC9173_WAIVERS)
    for name in ("interop-integrity-full", "interop-confidentiality-full"):
        yield f"dda-{name}", decode_bundle((DATA / f"{name}.cbor").read_bytes())


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_tshark_reads_our_security_blocks(tmp_path: Path) -> None:
    cases = list(_cases())
    pcap = tmp_path / "bpsec.pcap"
    pcap.write_bytes(
        _pcap(LINKTYPE_WIRESHARK_UPPER_PDU, [exported_pdu(b.encode()) for _, b in cases])
    )
    config = tmp_path / "wireshark"
    config.mkdir()
    frames = dissect(pcap, config)
    assert len(frames) == len(cases)
    for (label, bundle), frame in zip(cases, frames, strict=True):
        keys = [key for key, _ in _walk(frame)]
        assert "_ws.malformed" not in keys, label
        messages = [v for k, v in _walk(frame) if k == "_ws.expert.message"]
        assert all(ALLOWED_EXPERT.fullmatch(m) for m in messages), (label, messages)
        # The security blocks tshark read, in order, against the ones we wrote (an encrypted
        # BIB is ciphertext to both of us and shows nothing).
        encrypted = bundle.encrypted_blocks
        ours = [
            AbstractSecurityBlock.decode(block.data)
            for block in bundle.blocks
            if block.type_code in (BlockType.BIB, BlockType.BCB) and block.number not in encrypted
        ]
        theirs = [v for k, v in _walk(frame) if k in ("bpsec.bib", "bpsec.bcb")]
        assert len(theirs) == len(ours), label
        for asb, shown in zip(ours, theirs, strict=True):
            targets = shown["bpsec.asb.target_count_tree"]["bpsec.asb.target"]
            assert [int(t) for t in _as_list(targets)] == list(asb.targets), label
            assert int(shown["bpsec.asb.ctxid"]) == asb.context_id, label
            assert int(shown["bpsec.asb.flags"], 16) == asb.context_flags, label
            assert shown["bpsec.asb.secsrc.nodeid"]["bpsec.asb.secsrc.uri"] == str(asb.source)
            assert int(shown["bpsec.asb.result_count"]) == len(asb.targets), label
            if asb.parameters:
                assert int(shown["bpsec.asb.param_count"]) == len(asb.parameters), label
