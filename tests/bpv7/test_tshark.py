"""Differential tests against Wireshark's ``bpv7`` dissector (tshark), which we did not write.

A varied set of bundles we encode (dtn and ipn EIDs in every CBOR form, every CRC type, every
RFC 9171 extension block, unknown blocks, odd flags, extreme values, empty and 100 kB payloads,
fragments, administrative records) is written into one pcap -- each bundle in an "exported PDU"
record (LINKTYPE_WIRESHARK_UPPER_PDU) that names the ``bpv7`` dissector, so no transport is
needed and size is not limited -- and dissected by one ``tshark -T json`` run. For every frame:
no malformed-packet marker, no expert info other than "Unknown type code" (what the dissector
says about a payload, block or record type it has no sub-dissector for), and every field tshark
decodes equals what we encoded, CRC values included, with CRC status "Good". A second, small
pcap checks the ordinary route: UDP to port 4556, which tshark hands to ``bpv7`` by default.

What tshark 4.0 does not do (asserted below, so a change shows up):
- RFC 9758 three-element ipn EIDs (``[allocator, node, service]``): the dissector shows only
  the scheme code, no node, service or URI, and raises no expert info. The two-element form with
  a non-zero allocator shows the fully qualified node number as the node number.
- BIBE PDUs and custody signals (draft-ietf-dtn-bibect record types 3 and 4) are not dissected:
  "Unknown type code" on the administrative record.
- A status report about a fragment carries the subject's fragment offset and payload length
  (RFC 9171 §6.1.1: "If the bundle fragment offset field of the subject bundle's primary block
  is present, then ..."). tshark 4.0 never reads them -- its dissector compares its field index
  with the size of the 4-item status information array instead of the report's -- and says
  "Data not fully dissected" about the record.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bpv7 import (
    DTN_NONE,
    BlockFlags,
    BlockType,
    Bundle,
    BundleAgeBlock,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    DtnEID,
    EndpointID,
    HopCountBlock,
    IpnEID,
    PreviousNodeBlock,
    parse_eid,
)
from bpv7.admin import (
    BundleStatusReport,
    StatusKind,
    StatusReportReason,
    build_status_report_bundle,
    decode_admin_record,
    encapsulate_bundle,
)
from bpv7.fragment import fragment_at

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (apt-get install tshark); CI installs it"
)

ALLOWED_EXPERT = "Unknown type code"
PARTIAL_DECODE = "Data not fully dissected"
KNOWN_LIMITATIONS = {"status-report-about-a-fragment": {PARTIAL_DECODE}}
"""Expert infos tshark 4.0 raises wrongly, by case label (see the module docstring)."""
LINKTYPE_RAW = 101
LINKTYPE_WIRESHARK_UPPER_PDU = 252
EXP_PDU_TAG_DISSECTOR_NAME = 12
BUNDLE_UDP_PORT = 4556


# ---------------------------------------------------------------------------------------------
# pcap writing


def _pcap(linktype: int, packets: list[bytes]) -> bytes:
    """A classic little-endian pcap file holding ``packets``, one second apart."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0x7FFFFFFF, linktype)
    records = [
        struct.pack("<IIII", index, 0, len(packet), len(packet)) + packet
        for index, packet in enumerate(packets)
    ]
    return header + b"".join(records)


def exported_pdu(bundle: bytes, dissector: bytes = b"bpv7") -> bytes:
    """An exported-PDU record asking for ``dissector``: tags (type, length, value padded to 4
    bytes), the end-of-options tag, then the PDU."""
    padded = dissector + b"\0" * (-len(dissector) % 4)
    tags = struct.pack("!HH", EXP_PDU_TAG_DISSECTOR_NAME, len(dissector)) + padded
    return tags + struct.pack("!HH", 0, 0) + bundle


def udp_datagram(payload: bytes, ident: int) -> bytes:
    """An IPv4/UDP datagram 127.0.0.1 -> 127.0.0.2, destination port 4556 (raw IP link)."""
    udp = struct.pack("!HHHH", 40000, BUNDLE_UDP_PORT, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0, 64, 17, 0,
        bytes((127, 0, 0, 1)), bytes((127, 0, 0, 2)),
    )  # fmt: skip
    total = sum(struct.unpack("!10H", ip))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:] + udp


def dissect(pcap: Path, config_dir: Path) -> list[dict[str, Any]]:
    """tshark's JSON for each frame (the ``layers`` object), duplicate keys merged into
    arrays. An empty configuration directory keeps personal preferences out."""
    assert TSHARK is not None
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(config_dir)}
    done = subprocess.run(
        [TSHARK, "-n", "-r", str(pcap), "-T", "json", "--no-duplicate-keys"],
        capture_output=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return [frame["_source"]["layers"] for frame in json.loads(done.stdout)]


# ---------------------------------------------------------------------------------------------
# The bundles


CREATED = CreationTimestamp(800_000_000_000, 1)
HOUR_MS = 3_600_000


def _all_blocks(crc: CRCType) -> list[CanonicalBlock]:
    return [
        PreviousNodeBlock(parse_eid("dtn://prev/")).to_block(2, 0, crc),
        BundleAgeBlock(1234).to_block(3, 0, crc),
        HopCountBlock(30, 2).to_block(4, 0, crc),
    ]


def _cases() -> Iterator[tuple[str, Bundle]]:
    for crc in CRCType:
        yield f"dtn-all-extension-blocks-crc{int(crc)}", Bundle.build(
            source="dtn://src/app", destination="dtn://dst/svc/x?y", report_to="dtn://rep/",
            payload=bytes(range(100)), creation=CREATED, lifetime_ms=HOUR_MS,
            crc_type=crc if crc else CRCType.CRC32C, payload_flags=0,
            extra_blocks=_all_blocks(crc),
        )  # fmt: skip
    yield "ipn-two-element-crc16", Bundle.build(
        source="ipn:977.1", destination="ipn:2.64", report_to="ipn:977.0", payload=b"hello",
        creation=CREATED, lifetime_ms=HOUR_MS, crc_type=CRCType.CRC16_X25,
        extra_blocks=[PreviousNodeBlock(parse_eid("ipn:5.0")), HopCountBlock(255, 254)],
    )  # fmt: skip
    yield "ipn-local-node-and-big-numbers", Bundle.build(
        source=IpnEID(0, 2**32 - 2, 2**64 - 1), destination="ipn:!.7", payload=b"x",
        creation=CreationTimestamp(2**64 - 1, 2**64 - 1), lifetime_ms=2**64 - 1,
        extra_blocks=[BundleAgeBlock(2**64 - 1), HopCountBlock(1, 2**64 - 1)],
    )  # fmt: skip
    yield "ipn-two-element-with-allocator", Bundle.build(
        source=IpnEID(7, 5, 9, three_element=False), destination=IpnEID(1, 2, 3, False),
        payload=b"fqnn", creation=CREATED, lifetime_ms=HOUR_MS,
        extra_blocks=[PreviousNodeBlock(IpnEID(3, 4, 0, False))],
    )  # fmt: skip
    yield "ipn-three-element", Bundle.build(
        source="ipn:7.5.9", destination="ipn:1.2.3", report_to=IpnEID(0, 5, 0, True),
        payload=b"rfc9758", creation=CREATED, lifetime_ms=HOUR_MS,
        extra_blocks=[PreviousNodeBlock(parse_eid("ipn:3.4.0"))],
    )  # fmt: skip
    yield "anonymous-dtn-none-no-clock", Bundle.build(
        source=DTN_NONE, destination="dtn://dst/", report_to=DTN_NONE, payload=b"anon",
        creation=CreationTimestamp(0, 5), lifetime_ms=1, flags=BundleFlags.MUST_NOT_FRAGMENT,
    )  # fmt: skip
    yield "anonymous-ipn-null", Bundle.build(
        source="ipn:0.0", destination="ipn:1.1", report_to="ipn:0.0", payload=b"anon",
        creation=CREATED, lifetime_ms=1, flags=BundleFlags.MUST_NOT_FRAGMENT,
    )  # fmt: skip
    yield "all-flags-and-unknown-bits", Bundle.build(
        source="dtn://src/", destination="dtn://dst/~group", payload=b"flags", creation=CREATED,
        lifetime_ms=HOUR_MS,
        flags=0x7FFFC | (1 << 40) | (1 << 63),  # every flag but fragment/admin, reserved bits
        payload_flags=0xFF | (1 << 33),
        extra_blocks=[CanonicalBlock(BlockType.HOP_COUNT, 9, BlockFlags(0x17), CRCType.CRC32C,
                                     HopCountBlock(3, 0).encode_data())],
    )  # fmt: skip
    yield "unknown-block-types", Bundle.build(
        source="ipn:1.1", destination="ipn:2.1", payload=b"opaque", creation=CREATED,
        lifetime_ms=HOUR_MS,
        extra_blocks=[
            CanonicalBlock(200, 5, BlockFlags(0x10), CRCType.CRC16_X25, b"private"),
            CanonicalBlock(99, 2**40, BlockFlags(0), CRCType.NONE, b""),
        ],
    )  # fmt: skip
    yield "empty-payload", Bundle.build(
        source="ipn:1.1", destination="ipn:2.1", payload=b"", creation=CREATED, lifetime_ms=0,
    )  # fmt: skip
    yield "payload-100k", Bundle.build(
        source="dtn://big/", destination="dtn://sink/x", payload=bytes(range(250)) * 400,
        creation=CREATED, lifetime_ms=HOUR_MS, extra_blocks=_all_blocks(CRCType.CRC32C),
    )  # fmt: skip
    whole = Bundle.build(
        source="ipn:10.1", destination="ipn:20.1", payload=bytes(range(256)) * 4,
        creation=CreationTimestamp(800_000_000_000, 77), lifetime_ms=HOUR_MS,
        extra_blocks=[PreviousNodeBlock(parse_eid("ipn:11.0")),
                      HopCountBlock(9, 1).to_block(3, BlockFlags.REPLICATE_IN_EVERY_FRAGMENT,
                                                   CRCType.CRC16_X25)],
    )  # fmt: skip
    for index, piece in enumerate(fragment_at(whole, [400, 800])):
        yield f"fragment-{index}", piece
    subject = Bundle.build(
        source="dtn://src/app", destination="ipn:5.7", report_to="dtn://rep/", payload=b"s",
        creation=CreationTimestamp(800_000_000_000, 3), lifetime_ms=60_000,
        flags=BundleFlags.STATUS_TIME_REQUESTED | BundleFlags.REPORT_DELIVERY,
    )  # fmt: skip
    yield "status-report", build_status_report_bundle(
        subject, source="ipn:9.0", kind=StatusKind.DELIVERED,
        reason=StatusReportReason.NO_ADDITIONAL_INFORMATION, now_dtn_ms=800_000_001_000,
    )  # fmt: skip
    yield "status-report-about-a-fragment", build_status_report_bundle(
        fragment_at(
            Bundle.build(source="ipn:3.1", destination="ipn:4.1", report_to="ipn:3.0",
                         payload=b"0123456789", creation=CREATED, lifetime_ms=HOUR_MS),
            [4],
        )[1],
        source="ipn:9.0", kind=StatusKind.DELETED,
        reason=StatusReportReason.LIFETIME_EXPIRED, now_dtn_ms=800_000_001_000,
    )  # fmt: skip
    yield "bibe-pdu", encapsulate_bundle(
        subject, source="ipn:9.0", destination="ipn:8.0", now_dtn_ms=800_000_001_000,
    )  # fmt: skip


@dataclass
class Dissected:
    """One bundle and what tshark made of it."""

    label: str
    bundle: Bundle
    layers: dict[str, Any]


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dissected]:
    directory = tmp_path_factory.mktemp("tshark")
    cases = list(_cases())
    pcap = directory / "bundles.pcap"
    packets = [exported_pdu(bundle.encode()) for _, bundle in cases]
    pcap.write_bytes(_pcap(LINKTYPE_WIRESHARK_UPPER_PDU, packets))
    frames = dissect(pcap, directory)
    assert len(frames) == len(cases)
    return {
        label: Dissected(label, bundle, frame)
        for (label, bundle), frame in zip(cases, frames, strict=True)
    }


LABELS = [label for label, _ in _cases()]
PLAIN_LABELS = [
    label for label, bundle in _cases() if not bundle.is_admin_record and not bundle.is_fragment
]
"""Bundles whose payload tshark shows as plain data."""


# ---------------------------------------------------------------------------------------------
# Reading tshark's JSON


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _walk(node: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere below ``node``."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield from _as_list(value)
            yield from _walk(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _crc_value(encoded_block: bytes, crc_type: int) -> int:
    """The CRC value at the end of one of our (definite-length) blocks."""
    return int.from_bytes(encoded_block[-(2 if crc_type == 1 else 4) :], "big")


def check_eid(tree: dict[str, Any], eid: EndpointID, uri_key: str) -> None:
    if isinstance(eid, DtnEID):
        assert tree["bpv7.eid.scheme"] == "1"
        if eid.is_null:
            assert tree["bpv7.eid.dtn_ssp_code"] == "0"
            assert tree["bpv7.eid.wkssp"] == "none"
        else:
            assert tree["bpv7.eid.dtn_ssp_text"] == eid.ssp
        assert tree[uri_key] == str(eid)
        return
    assert tree["bpv7.eid.scheme"] == "2"
    if eid.three_element:
        # Known limitation of tshark 4.0: the three-element form is silently left undecoded.
        # Should a later version decode it, it must decode it right.
        if "bpv7.eid.ipn_service" not in tree:
            assert set(tree) == {"bpv7.eid.scheme"}
            return
        assert tree["bpv7.eid.ipn_service"] == str(eid.service)
        assert tree["bpv7.eid.ipn_node"] in (str(eid.node), str(eid.fqnn))
        return
    # Two-element form: tshark shows the fully qualified node number as the node number.
    assert tree["bpv7.eid.ipn_node"] == str(eid.fqnn)
    assert tree["bpv7.eid.ipn_service"] == str(eid.service)
    assert tree[uri_key] == f"ipn:{eid.fqnn}.{eid.service}"


def check_primary(tree: dict[str, Any], bundle: Bundle) -> None:
    primary = bundle.primary
    assert tree["bpv7.primary.version"] == "7"
    assert int(tree["bpv7.primary.bundle_flags"], 16) == int(primary.flags)
    flag_tree = tree["bpv7.primary.bundle_flags_tree"]
    assert flag_tree["bpv7.primary.bundle_flags.is_fragment"] == str(int(primary.is_fragment))
    assert flag_tree["bpv7.primary.bundle_flags.payload_admin"] == str(int(primary.is_admin_record))
    assert tree["bpv7.crc_type"] == str(int(primary.crc_type))
    check_eid(tree["bpv7.primary.dst_eid"], primary.destination, "bpv7.primary.dst_uri")
    check_eid(tree["bpv7.primary.src_nodeid"], primary.source, "bpv7.primary.src_uri")
    check_eid(tree["bpv7.primary.report_nodeid"], primary.report_to, "bpv7.primary.report_uri")
    creation = tree["bpv7.primary.create_ts"]
    assert creation["bpv7.create_ts.time"]["bpv7.time.dtntime"] == str(primary.creation.time_ms)
    assert creation["bpv7.create_ts.seqno"] == str(primary.creation.sequence)
    assert tree["bpv7.primary.lifetime"] == str(primary.lifetime_ms)
    if primary.is_fragment:
        assert tree["bpv7.primary.frag_offset"] == str(primary.fragment_offset)
        assert tree["bpv7.primary.total_len"] == str(primary.total_adu_length)
    else:
        assert "bpv7.primary.frag_offset" not in tree and "bpv7.primary.total_len" not in tree
    assert int(tree["bpv7.crc_field"], 16) == _crc_value(primary.encode(), primary.crc_type)
    assert tree["bpv7.crc_status"] == "1"  # Good


def check_block(tree: dict[str, Any], block: CanonicalBlock) -> None:
    assert tree["bpv7.canonical.type_code"] == str(int(block.type_code))
    assert tree["bpv7.canonical.block_num"] == str(block.number)
    assert int(tree["bpv7.canonical.block_flags"], 16) == int(block.flags)
    assert tree["bpv7.crc_type"] == str(int(block.crc_type))
    assert tree["bpv7.canonical.data"] == str(len(block.data))
    if block.crc_type:
        assert int(tree["bpv7.crc_field"], 16) == _crc_value(block.encode(), block.crc_type)
        assert tree["bpv7.crc_status"] == "1"  # Good
    else:
        assert "bpv7.crc_field" not in tree and "bpv7.crc_status" not in tree
    data_tree = tree.get("bpv7.canonical.data_tree", {})
    if block.type_code == BlockType.PREVIOUS_NODE:
        node = PreviousNodeBlock.from_block(block).node
        check_eid(data_tree["bpv7.previous_node.nodeid"], node, "bpv7.previous_node.uri")
    elif block.type_code == BlockType.BUNDLE_AGE:
        assert data_tree["bpv7.bundle_age.time"] == str(BundleAgeBlock.from_block(block).age_ms)
    elif block.type_code == BlockType.HOP_COUNT:
        hops = HopCountBlock.from_block(block)
        assert data_tree["bpv7.hop_count.limit"] == str(hops.limit)
        assert data_tree["bpv7.hop_count.current"] == str(hops.count)


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in data)


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("label", LABELS)
def test_tshark_dissects_our_bundle_cleanly(dissected: dict[str, Dissected], label: str) -> None:
    case = dissected[label]
    layers = case.layers
    assert "bpv7" in layers, sorted(layers)
    assert not list(_walk(layers, "_ws.malformed")), "tshark flags the packet as malformed"
    experts = list(_walk(layers, "_ws.expert"))
    allowed = {ALLOWED_EXPERT} | KNOWN_LIMITATIONS.get(label, set())
    assert {e["_ws.expert.message"] for e in experts} <= allowed, experts
    assert all(e["_ws.expert.severity"] == str(0x600000) for e in experts)  # PI_WARN
    bpv7 = layers["bpv7"]
    assert bpv7["bpv7.bundle_head"] == "9f" and bpv7["bpv7.bundle_break"] == "ff"
    trees = _as_list(bpv7["bpv7.block"])
    assert len(trees) == 1 + len(case.bundle.blocks)
    check_primary(trees[0], case.bundle)
    for tree, block in zip(trees[1:], case.bundle.blocks, strict=True):
        check_block(tree, block)
    with_crc = [case.bundle.primary.crc_type] + [b.crc_type for b in case.bundle.blocks]
    assert list(_walk(layers, "bpv7.crc_status")) == ["1"] * sum(map(bool, with_crc))


@pytest.mark.parametrize("label", PLAIN_LABELS)
def test_tshark_shows_our_plain_payload(dissected: dict[str, Dissected], label: str) -> None:
    case = dissected[label]
    payload = case.bundle.payload
    if not payload:
        assert "data" not in case.layers
        return
    data = case.layers["data"]
    assert data["data.len"] == str(len(payload))
    assert data["data.data"] == _colon_hex(payload)
    # The only expert info is about the payload and any unknown block type with data.
    unknown_blocks = sum(
        1 for b in case.bundle.blocks if not isinstance(b.type_code, BlockType) and b.data
    )
    assert len(list(_walk(case.layers, "_ws.expert"))) == 1 + unknown_blocks


def test_tshark_reassembles_our_fragments(dissected: dict[str, Dissected]) -> None:
    pieces = [dissected[label] for label in LABELS if label.startswith("fragment-")]
    assert len(pieces) == 3
    total = pieces[0].bundle.primary.total_adu_length
    assert total == 1024
    reassembled = [
        tree for piece in pieces for tree in _walk(piece.layers, "bpv7.payload.fragments")
    ]
    assert len(reassembled) == 1
    assert reassembled[0]["bpv7.payload.fragment.count"] == "3"
    assert reassembled[0]["bpv7.payload.reassembled.length"] == str(total)
    adu = b"".join(piece.bundle.payload for piece in pieces)
    assert reassembled[0]["bpv7.payload.reassembled.data"] == _colon_hex(adu)
    assert adu == bytes(range(256)) * 4


@pytest.mark.parametrize("label", ["status-report", "status-report-about-a-fragment"])
def test_tshark_reads_our_status_reports(dissected: dict[str, Dissected], label: str) -> None:
    case = dissected[label]
    record = decode_admin_record(case.bundle.payload)
    assert isinstance(record, BundleStatusReport)
    experts = [e["_ws.expert.message"] for e in _walk(case.layers, "_ws.expert")]
    tree = case.layers["bpv7.admin_rec"]
    assert tree["bpv7.admin_rec.type_code"] == "1"
    report = tree["bpv7.status_rep"]
    info = report["bpv7.status_rep.status_info"]
    for name in ("received", "forwarded", "delivered", "deleted"):
        assertion = getattr(record, name)
        shown = info[f"bpv7.status_rep.{name}"]
        assert shown["bpv7.status_assert.val"] == str(int(assertion.asserted))
        if assertion.time_ms is None:
            assert "bpv7.status_assert.time" not in shown
        else:
            time = shown["bpv7.status_assert.time"]["bpv7.time.dtntime"]
            assert time == str(assertion.time_ms)
    assert report["bpv7.status_rep.reason_code"] == str(int(record.reason))
    check_eid(
        report["bpv7.status_rep.subj_src_nodeid"], record.source, "bpv7.status_rep.subj_src_uri"
    )
    subject_ts = report["bpv7.status_rep.subj_ts"]
    assert subject_ts["bpv7.create_ts.time"]["bpv7.time.dtntime"] == str(record.creation.time_ms)
    assert subject_ts["bpv7.create_ts.seqno"] == str(record.creation.sequence)
    if record.fragment_offset is None:
        assert "bpv7.status_rep.subj_frag_offset" not in report
        assert experts == []
    elif "bpv7.status_rep.subj_frag_offset" in report:
        assert report["bpv7.status_rep.subj_frag_offset"] == str(record.fragment_offset)
        assert report["bpv7.status_rep.subj_payload_len"] == str(record.fragment_length)
        assert experts == []
    else:
        # tshark 4.0 bug (module docstring): the two trailing items are left undissected, and
        # it says so on the payload block and on the record.
        assert set(experts) == {PARTIAL_DECODE}
        assert (record.fragment_offset, record.fragment_length) == (4, 6)


def test_tshark_limitations_are_as_documented(dissected: dict[str, Dissected]) -> None:
    # BIBE (draft-ietf-dtn-bibect record type 3) is not dissected: "Unknown type code".
    bibe = dissected["bibe-pdu"].layers["bpv7.admin_rec"]
    assert bibe["bpv7.admin_rec.type_code"] == "3"
    assert bibe["_ws.expert"]["_ws.expert.message"] == ALLOWED_EXPERT
    # Three-element ipn EIDs: scheme only (or, in a later tshark, decoded -- checked above).
    primary = _as_list(dissected["ipn-three-element"].layers["bpv7"]["bpv7.block"])[0]
    assert primary["bpv7.primary.dst_eid"]["bpv7.eid.scheme"] == "2"


def test_udp_port_4556_reaches_the_bpv7_dissector(tmp_path: Path) -> None:
    bundles = [
        Bundle.build(
            source="ipn:1.1",
            destination="dtn://dst/svc",
            payload=bytes(200),
            creation=CREATED,
            lifetime_ms=HOUR_MS,
            crc_type=crc,
            extra_blocks=_all_blocks(crc),
        )
        for crc in (CRCType.CRC16_X25, CRCType.CRC32C)
    ]
    pcap = tmp_path / "udp.pcap"
    packets = [udp_datagram(b.encode(), i) for i, b in enumerate(bundles)]
    pcap.write_bytes(_pcap(LINKTYPE_RAW, packets))
    frames = dissect(pcap, tmp_path)
    assert len(frames) == len(bundles)
    for frame, bundle in zip(frames, bundles, strict=True):
        assert "bpv7" in frame and not list(_walk(frame, "_ws.malformed"))
        trees = _as_list(frame["bpv7"]["bpv7.block"])
        check_primary(trees[0], bundle)
        for tree, block in zip(trees[1:], bundle.blocks, strict=True):
            check_block(tree, block)


SECURITY_REASONS = [
    StatusReportReason.MISSING_SECURITY_OPERATION,
    StatusReportReason.UNKNOWN_SECURITY_OPERATION,
    StatusReportReason.UNEXPECTED_SECURITY_OPERATION,
    StatusReportReason.FAILED_SECURITY_OPERATION,
    StatusReportReason.CONFLICTING_SECURITY_OPERATION,
]


def test_tshark_names_the_bpsec_reason_codes_as_we_do(tmp_path: Path) -> None:
    """RFC 9172 §11.2's reason codes 12-16 in a deletion report: tshark shows each with the
    name our :class:`StatusReportReason` gives it (``FAILED_SECURITY_OPERATION`` ↔ "Failed
    Security Operation"), and the code itself."""
    subject = Bundle.build(
        source="dtn://a/app", destination="dtn://c/inbox", report_to="dtn://a/", payload=b"s",
        creation=CREATED, lifetime_ms=HOUR_MS, flags=BundleFlags.REPORT_DELETION,
    )  # fmt: skip
    reports = [
        build_status_report_bundle(
            subject,
            source="dtn://c/",
            kind=StatusKind.DELETED,
            reason=reason,
            now_dtn_ms=800_000_001_000,
        )
        for reason in SECURITY_REASONS
    ]
    pcap = tmp_path / "reasons.pcap"
    pcap.write_bytes(
        _pcap(LINKTYPE_WIRESHARK_UPPER_PDU, [exported_pdu(r.encode()) for r in reports])
    )
    assert TSHARK is not None
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run(
        [TSHARK, "-n", "-r", str(pcap), "-T", "pdml"],
        capture_output=True,
        timeout=180,
        check=True,
        env=env,
    )

    shown = [
        field.get("showname", "")
        for field in ElementTree.fromstring(done.stdout).iter("field")
        if field.get("name") == "bpv7.status_rep.reason_code"
    ]
    assert shown == [
        f"Reason Code: {reason.name.replace('_', ' ').title()} ({int(reason)})"
        for reason in SECURITY_REASONS
    ]
