"""Known-answer vectors: the example bundles of RFC 9173 Appendix A and bundles written by
pyd3tn (µD3TN's Python BPv7 codec, an implementation we did not write).

RFC 9173's examples carry BPSec blocks (BIB type 11, BCB type 12), which this codec keeps opaque.
Three of the four break RFC 9171 MUSTs that have nothing to do with security — their primary block
has no CRC although no BIB targets it (§4.3.1), and their creation time is zero without a Bundle
Age Block (§4.4.2) — so the strict decoder must reject them with those rules, while each of their
blocks decodes on its own and re-encodes byte for byte. Example A.3 satisfies both rules (its BIB
targets the primary block and it has a Bundle Age Block) and decodes whole.
"""

import pytest

from bpv7 import (
    BlockType,
    BundleFlags,
    CRCType,
    CreationTimestamp,
    DecodeError,
    DtnEID,
    HopCountBlock,
    IpnEID,
    decode_bundle,
)
from bpv7.blocks import decode_canonical
from bpv7.primary import decode_primary


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 9173 Appendix A.1.4: simple integrity (BIB-HMAC-SHA2 over the payload).
RFC9173_A1 = _hex("""
    9f88070000820282010282028202018202820201820018281a000f4240850b0200
    005856810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a
    8554368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2
    f1a73e303dcd4b6ccece003e95e8164dcc89a156e185010100005823526561647920
    746f2067656e657261746520612033322d62797465207061796c6f6164ff""")
# RFC 9173 Appendix A.2.4: simple confidentiality with key wrap (BCB-AES-GCM).
RFC9173_A2 = _hex("""
    9f88070000820282010282028202018202820201820018281a000f4240850c0201
    0058508101020182028202018482014c5477656c7665313231323132820201820358
    1869c411276fecddc4780df42c8a2af89296fabf34d7fae7008204008181820150ef
    a4b5ac0108e3816c5606479801bc04850101000058233a09c1e63fe23a7f66a59c73
    03837241e070b02619fc59c5214a22f08cd70795e73e9aff""")
# RFC 9173 Appendix A.3.4: security blocks from multiple sources (BIB over primary and age).
RFC9173_A3 = _hex("""
    9f88070000820282010282028202018202820201820018281a000f4240850b0300
    00585c8200020101820282030082820105820300828182015820cac6ce8e4c5dae57
    988b757e49a6dd1431dc04763541b2845098265bc817241b81820158203ed614c0d9
    7f49b3633627779aa18a338d212bf3c92b97759d9739cd50725596850c0401005834
    8101020182028202018382014c5477656c7665313231323132820201820400818182
    0150efa4b5ac0108e3816c5606479801bc0485070200004319012c85010100005823
    3a09c1e63fe23a7f66a59c7303837241e070b02619fc59c5214a22f08cd70795e73e
    9aff""")
# RFC 9173 Appendix A.4.4: security blocks with full scope (BCB covering a BIB and the payload).
RFC9173_A4 = _hex("""
    9f88070000820282010282028202018202820201820018281a000f4240850b0300
    005846438ed6208eb1c1ffb94d952175167df0902902064a2983910c4fb2340790bf
    420a7d1921d5bf7c4721e02ab87a93ab1e0b75cf62e4948727c8b5dae46ed2af0543
    9b88029191850c0201005849820301020182028202018382014c5477656c76653132
    313231328202038204078281820150220ffc45c8a901999ecc60991dd78b29818201
    50d2c51cb2481792dae8b21d848cede99b8501010000582390eab6457593379298a8
    724e16e61f837488e127212b59ac91f8a86287b7d07630a122ff""")


def _split_blocks(raw: bytes) -> list[bytes]:
    """Decode each block on its own; return the exact bytes of each."""
    primary, pos = decode_primary(raw, 1)
    spans = [primary.encode()]
    while raw[pos] != 0xFF:
        block, end = decode_canonical(raw, pos)
        assert block.encode() == raw[pos:end]
        spans.append(raw[pos:end])
        pos = end
    assert pos == len(raw) - 1
    return spans


@pytest.mark.parametrize(
    ("raw", "rule", "types"),
    [
        (RFC9173_A1, "bundle-age-required", [11, 1]),
        (RFC9173_A2, "bundle-age-required", [12, 1]),
        (RFC9173_A4, "bundle-age-required", [11, 12, 1]),
    ],
)
def test_rfc9173_examples_break_rfc9171_and_are_rejected(
    raw: bytes, rule: str, types: list[int]
) -> None:
    with pytest.raises(DecodeError) as info:
        decode_bundle(raw)
    assert info.value.rule == rule
    spans = _split_blocks(raw)
    assert b"\x9f" + b"".join(spans) + b"\xff" == raw
    primary, _ = decode_primary(raw, 1)
    assert primary.source == IpnEID(0, 2, 1)
    assert primary.destination == IpnEID(0, 1, 2)
    assert primary.creation == CreationTimestamp(0, 40)
    assert primary.lifetime_ms == 1_000_000
    assert primary.crc_type == CRCType.NONE
    pos = len(spans[0]) + 1
    found = []
    for _ in spans[1:]:
        block, pos = decode_canonical(raw, pos)
        found.append(block.type_code)
    assert found == types


def test_rfc9173_a3_decodes_whole() -> None:
    bundle = decode_bundle(RFC9173_A3)
    assert bundle.encode() == RFC9173_A3
    assert [(b.type_code, b.number) for b in bundle.blocks] == [
        (BlockType.BIB, 3),
        (BlockType.BCB, 4),
        (BlockType.BUNDLE_AGE, 2),
        (BlockType.PAYLOAD, 1),
    ]
    assert bundle.bundle_age_ms == 300
    assert bundle.primary.crc_type == CRCType.NONE  # allowed: the BIB targets block 0
    assert bundle.payload_block.data[:4] == bytes.fromhex("3a09c1e6")  # still encrypted
    assert bundle.find_block(BlockType.BCB).flags == 1  # type: ignore[union-attr]


# Written with pyd3tn 0.15.2 (serialize_bundle7, fixed timestamps and sequence numbers).
PYD3TN_DTN_CRC32 = _hex("""
    9f890700028201742f2f72656365697665722e64746e2f696e626f788201702f2f73
    656e6465722e64746e2f61707082016d2f2f73656e6465722e64746e2f821b000000
    af6515bc00031a0036ee8044d169e8d086060300024f82016c2f2f72656c61792e64
    746e2f4461dbd741860a0200024482181e02445c5eff3b860704000243191388441d
    ea505a86010100025168656c6c6f2066726f6d2070796433746e449397aba1ff""")
PYD3TN_IPN_CRC16 = _hex("""
    9f890700018202820201820282010182010082001119ea60428b5586070200014
    51a0012d4504200cf86010100014b69706e207061796c6f61644269beff""")
PYD3TN_FRAGMENT = _hex("""
    9f8b0701028201652f2f622f788201642f2f612f820100821b000000af6515bfe800
    19ea600a1864440de29e4d850101000048667261676d656e74ff""")
PYD3TN_IPN3_REPORT = _hex("""
    9f89071a00020004028202830703098202820500820100821b000000af6515c3d001
    19ea604459bc97fc8601010002404406e2604fff""")


def test_pyd3tn_dtn_bundle_with_extension_blocks() -> None:
    bundle = decode_bundle(PYD3TN_DTN_CRC32)
    assert bundle.encode() == PYD3TN_DTN_CRC32
    assert bundle.primary.source == DtnEID("sender.dtn", "app")
    assert bundle.primary.destination == DtnEID("receiver.dtn", "inbox")
    assert bundle.primary.report_to == DtnEID("sender.dtn")
    assert bundle.primary.creation == CreationTimestamp.from_unix(1_700_000_000, 3)
    assert bundle.primary.lifetime_ms == 3_600_000
    assert bundle.previous_node == DtnEID("relay.dtn")
    assert bundle.hop_count == HopCountBlock(30, 2)
    assert bundle.bundle_age_ms == 5000
    assert bundle.payload == b"hello from pyd3tn"
    assert all(b.crc_type == CRCType.CRC32C for b in bundle.blocks)


def test_pyd3tn_ipn_bundle_with_crc16() -> None:
    bundle = decode_bundle(PYD3TN_IPN_CRC16)
    assert bundle.encode() == PYD3TN_IPN_CRC16
    assert bundle.primary.source == IpnEID(0, 1, 1)
    assert bundle.primary.crc_type == CRCType.CRC16_X25
    assert bundle.primary.creation.time_ms == 0
    assert bundle.bundle_age_ms == 1_234_000
    assert bundle.payload == b"ipn payload"


def test_pyd3tn_fragment() -> None:
    bundle = decode_bundle(PYD3TN_FRAGMENT)
    assert bundle.encode() == PYD3TN_FRAGMENT
    assert bundle.is_fragment
    assert (bundle.primary.fragment_offset, bundle.primary.total_adu_length) == (10, 100)
    assert bundle.bundle_id.fragment_length == 8
    assert bundle.payload_block.crc_type == CRCType.NONE


def test_pyd3tn_three_element_ipn_and_report_flags() -> None:
    bundle = decode_bundle(PYD3TN_IPN3_REPORT)
    assert bundle.encode() == PYD3TN_IPN3_REPORT
    destination = bundle.primary.destination
    assert destination == IpnEID(7, 3, 9)
    assert isinstance(destination, IpnEID) and destination.three_element
    assert bundle.primary.flags == BundleFlags.MUST_NOT_FRAGMENT | BundleFlags.REPORT_DELIVERY
    assert bundle.payload == b""


def test_pyd3tn_reads_what_we_write() -> None:
    pytest.importorskip("pyd3tn")
    from pyd3tn.bundle7 import Bundle as PyBundle

    ours = decode_bundle(PYD3TN_DTN_CRC32)
    theirs = PyBundle.parse(ours.encode())
    assert theirs.payload_block.data == ours.payload
    assert str(theirs.primary_block.source) == str(ours.primary.source)
