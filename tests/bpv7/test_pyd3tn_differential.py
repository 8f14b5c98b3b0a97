"""Differential tests against pyd3tn 0.15.2 (``pyd3tn.bundle7``), a BPv7 codec we did not write.

Both directions, over a seeded grid of cases (every CRC type, payload sizes 0..100k, dtn and ipn
EIDs in every CBOR form, flags, lifetimes, fragments, the three extension blocks of RFC 9171
§4.4) plus seeded random cases:

- pyd3tn builds a bundle; we decode it (verifying every CRC pyd3tn computed) to the same fields,
  and our encoder, given the same fields in the same block order, produces the same bytes.
- we build a bundle; ``pyd3tn.bundle7.Bundle.parse`` reads the same fields. pyd3tn does not
  verify CRCs, so the test recomputes every CRC with pyd3tn's own CRC code and compares it with
  ours; and pyd3tn re-serialises what it parsed to our exact bytes.

pyd3tn's limits, which the cases stay within: it knows only block types 1, 6, 7 and 10 (parsing
any other raises), it converts creation times through float seconds and ``datetime`` (so times
stay below 2^40 ms, year 2034), it splits EID text at ``:`` (so demuxes here contain none), and
its ``Bundle`` always moves a Previous Node Block to the front. Its ``BundleProcFlag`` and
``BlockProcFlag`` names disagree with RFC 9171 for some bits; only integer values are compared.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import cbor2
import pytest

from bpv7 import (
    DTN_NONE,
    STATUS_REPORT_REQUEST_FLAGS,
    BlockFlags,
    BlockType,
    Bundle,
    BundleAgeBlock,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    CreationTimestamp,
    HopCountBlock,
    PreviousNodeBlock,
    PrimaryBlock,
    decode_bundle,
    eid_from_cbor,
    eid_to_cbor,
)

bundle7 = pytest.importorskip("pyd3tn.bundle7", reason="pyd3tn (the differential oracle) is needed")
pyd3tn_helpers = pytest.importorskip("pyd3tn.helpers")

UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1

EIDModel = list[Any]
"""An EID in the CBOR data model: [1, "//node/demux"], [1, 0], [2, [fqnn, s]], [2, [a, n, s]]."""


@dataclass
class Extension:
    """One extension block of a case."""

    kind: str
    """"hop", "prev" or "age"."""
    value: Any
    """(limit, count), an EID model, or the age in ms."""
    number: int
    flags: int
    crc_type: int

    @property
    def type_code(self) -> int:
        return {"hop": 10, "prev": 6, "age": 7}[self.kind]


@dataclass
class Case:
    """The fields of one bundle, independent of either codec."""

    destination: EIDModel
    source: EIDModel
    report_to: EIDModel
    flags: int
    primary_crc: int
    time_ms: int
    sequence: int
    lifetime_ms: int
    fragment: tuple[int, int] | None
    payload: bytes
    payload_flags: int
    payload_crc: int
    extensions: list[Extension] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Seeded case generation


def _node_name(rng: random.Random) -> str:
    chars = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
    return "".join(rng.choice(chars) for _ in range(rng.randint(1, 12)))


def _demux(rng: random.Random) -> str:
    # Printable ASCII without ':' (pyd3tn splits EID text at ':').
    chars = [chr(c) for c in range(0x21, 0x7F) if chr(c) != ":"]
    return "".join(rng.choice(chars) for _ in range(rng.randint(0, 16)))


def _number(rng: random.Random, limit: int) -> int:
    return rng.choice([0, 1, rng.randint(0, 23), rng.randint(24, 255), rng.randint(0, limit)])


def _eid(rng: random.Random, *, kind: str = "any") -> EIDModel:
    """An EID model; kind "singleton" (a valid source), "node" (a node ID) or "any"."""
    choice = rng.randrange(4)
    if choice == 0:
        demux = "" if kind == "node" else _demux(rng)
        if kind == "singleton":
            demux = demux.lstrip("~")
        return [1, f"//{_node_name(rng)}/{demux}"]
    service = 0 if kind == "node" else _number(rng, UINT64_MAX)
    node = max(1, _number(rng, UINT32_MAX))
    if choice == 1:
        return [2, [node, service]]
    if choice == 2:  # two-element form, allocator in the FQNN's high 32 bits (RFC 9758 §6.1)
        return [2, [(rng.randint(1, UINT32_MAX) << 32) | node, service]]
    return [2, [rng.choice([0, rng.randint(1, UINT32_MAX)]), node, service]]


_KNOWN_FLAGS = [0x02, 0x04, 0x20, 0x40, 0x4000, 0x10000, 0x20000, 0x40000]


def random_case(
    rng: random.Random,
    *,
    primary_crc: int | None = None,
    crc_type: int | None = None,
    payload_size: int | None = None,
) -> Case:
    """A valid case; ``crc_type`` (if given) is used for every canonical block."""
    anonymous = rng.randrange(8) == 0
    nulls: list[EIDModel] = [[1, 0], [2, [0, 0]]]
    source = rng.choice(nulls) if anonymous else _eid(rng, kind="singleton")
    flags = 0
    for flag in rng.sample(_KNOWN_FLAGS, rng.randint(0, 4)):
        flags |= flag
    if rng.randrange(5) == 0:
        # RFC 9171 §4.2.3: reserved and unassigned bits are kept, not rejected.
        flags |= rng.choice([0x08, 0x80, 0x8000, 0x100000, 1 << 40])
    if flags & BundleFlags.ADMIN_RECORD:
        flags &= ~int(STATUS_REPORT_REQUEST_FLAGS)
    if anonymous:
        flags = (flags | BundleFlags.MUST_NOT_FRAGMENT) & ~int(STATUS_REPORT_REQUEST_FLAGS)
    no_block_report = anonymous or bool(flags & BundleFlags.ADMIN_RECORD)

    def block_flags() -> int:
        value = rng.choice([0, rng.randint(0, 0x1F), rng.randint(0, 0xFF)])
        return value & ~0x02 if no_block_report else value

    def block_crc() -> int:
        return rng.randint(0, 2) if crc_type is None else crc_type

    if payload_size is None:
        payload_size = rng.choice([0, 1, rng.randint(0, 300), rng.randint(0, 3000)])
    payload = rng.randbytes(payload_size)
    fragment = None
    if not anonymous and rng.randrange(4) == 0:
        flags |= BundleFlags.IS_FRAGMENT
        offset = rng.randint(0, 10**6)
        fragment = (offset, offset + payload_size + rng.randint(0 if payload_size else 1, 1000))
    time_ms = rng.choice([0, rng.randint(1, 2**40)])
    numbers = rng.sample(range(2, 10**6), 3)
    extensions = []
    if rng.randrange(2):
        extensions.append(Extension("prev", _eid(rng, kind="node"), 0, 0, 0))
    if time_ms == 0 or rng.randrange(2):
        extensions.append(Extension("age", _number(rng, UINT64_MAX), 0, 0, 0))
    if rng.randrange(2):
        hop = (rng.randint(1, 255), _number(rng, UINT64_MAX))
        extensions.append(Extension("hop", hop, 0, 0, 0))
    rng.shuffle(extensions)
    for extension, number in zip(extensions, numbers, strict=False):
        extension.number = number
        extension.flags = block_flags()
        extension.crc_type = block_crc()
    return Case(
        destination=_eid(rng) if rng.randrange(8) else [1, 0],
        source=source,
        report_to=_eid(rng) if rng.randrange(4) else [1, 0],
        flags=flags,
        primary_crc=rng.randint(1, 2) if primary_crc is None else primary_crc,
        time_ms=time_ms,
        sequence=_number(rng, UINT64_MAX),
        lifetime_ms=_number(rng, UINT64_MAX),
        fragment=fragment,
        payload=payload,
        payload_flags=block_flags(),
        payload_crc=block_crc(),
        extensions=extensions,
    )


PAYLOAD_SIZES = [0, 1, 23, 24, 255, 256, 65535, 65536, 100_000]
GRID = [
    pytest.param(
        (primary_crc, crc_type, size),
        id=f"crc{primary_crc}-crc{crc_type}-{size}B",
    )
    for primary_crc in (1, 2)
    for crc_type in (0, 1, 2)
    for size in PAYLOAD_SIZES
]
RANDOM_SEEDS = range(200)


def grid_case(params: tuple[int, int, int]) -> Case:
    primary_crc, crc_type, size = params
    rng = random.Random(f"grid-{primary_crc}-{crc_type}-{size}")
    return random_case(rng, primary_crc=primary_crc, crc_type=crc_type, payload_size=size)


def seeded_case(seed: int) -> Case:
    return random_case(random.Random(seed))


# ---------------------------------------------------------------------------------------------
# Building a case with each codec


def _pyd3tn_eid_text(model: EIDModel) -> str:
    scheme, ssp = model
    if scheme == 1:
        return "dtn:none" if ssp == 0 else f"dtn:{ssp}"
    return "ipn:" + ".".join(str(n) for n in ssp)


def build_pyd3tn(case: Case) -> Any:
    """The case as a ``pyd3tn.bundle7.Bundle`` (through its public constructors)."""
    if case.time_ms:
        creation = bundle7.CreationTimestamp(
            pyd3tn_helpers.DTN_EPOCH + timedelta(milliseconds=case.time_ms), case.sequence
        )
    else:
        creation = bundle7.CreationTimestamp(0, case.sequence)
    primary = bundle7.PrimaryBlock(
        bundle_proc_flags=case.flags,
        crc_type=case.primary_crc,
        destination=_pyd3tn_eid_text(case.destination),
        source=_pyd3tn_eid_text(case.source),
        report_to=_pyd3tn_eid_text(case.report_to),
        creation_time=creation,
        lifetime=case.lifetime_ms,
        fragment_offset=case.fragment[0] if case.fragment else None,
        total_payload_length=case.fragment[1] if case.fragment else None,
    )
    blocks = []
    for ext in case.extensions:
        options = {
            "block_number": ext.number,
            "block_proc_flags": ext.flags,
            "crc_type": ext.crc_type,
        }
        if ext.kind == "hop":
            blocks.append(bundle7.HopCountBlock(*ext.value, **options))
        elif ext.kind == "prev":
            blocks.append(bundle7.PreviousNodeBlock(_pyd3tn_eid_text(ext.value), **options))
        else:
            # pyd3tn's BundleAgeBlock takes seconds; its generic CBOR block carries exact ms.
            blocks.append(bundle7.CBORBlock(bundle7.BlockType.BUNDLE_AGE, ext.value, **options))
    payload = bundle7.PayloadBlock(
        case.payload, block_proc_flags=case.payload_flags, crc_type=case.payload_crc
    )
    return bundle7.Bundle(primary, payload, blocks)


def pyd3tn_order(case: Case) -> list[Extension]:
    """The extension blocks in the order pyd3tn's ``Bundle`` puts them (Previous Node first)."""
    prev = [ext for ext in case.extensions if ext.kind == "prev"]
    return prev + [ext for ext in case.extensions if ext.kind != "prev"]


def build_ours(case: Case, extensions: list[Extension] | None = None) -> Bundle:
    """The case as our ``Bundle``, extension blocks in ``extensions`` order (default: the
    case's)."""
    blocks = []
    for ext in case.extensions if extensions is None else extensions:
        if ext.kind == "hop":
            value: Any = HopCountBlock(*ext.value)
        elif ext.kind == "prev":
            value = PreviousNodeBlock(eid_from_cbor(ext.value))
        else:
            value = BundleAgeBlock(ext.value)
        blocks.append(value.to_block(ext.number, ext.flags, ext.crc_type))
    blocks.append(
        CanonicalBlock(
            BlockType.PAYLOAD, 1, BlockFlags(case.payload_flags), CRCType(case.payload_crc),
            case.payload,
        )
    )  # fmt: skip
    primary = PrimaryBlock(
        case.flags,  # type: ignore[arg-type]
        case.primary_crc,  # type: ignore[arg-type]
        eid_from_cbor(case.destination),
        eid_from_cbor(case.source),
        eid_from_cbor(case.report_to),
        CreationTimestamp(case.time_ms, case.sequence),
        case.lifetime_ms,
        case.fragment[0] if case.fragment else None,
        case.fragment[1] if case.fragment else None,
    )
    return Bundle(primary, tuple(blocks))


# ---------------------------------------------------------------------------------------------
# Fields as each codec sees them, in one neutral form


def _ext_content(kind: str, value: Any) -> Any:
    if kind == "prev":
        return ["prev", value]
    if kind == "hop":
        return ["hop", list(value)]
    return ["age", value]


def expected_fields(case: Case) -> dict[str, Any]:
    blocks = {
        ext.number: (ext.type_code, ext.flags, ext.crc_type, _ext_content(ext.kind, ext.value))
        for ext in case.extensions
    }
    blocks[1] = (1, case.payload_flags, case.payload_crc, case.payload)
    return {
        "flags": case.flags,
        "crc_type": case.primary_crc,
        "destination": case.destination,
        "source": case.source,
        "report_to": case.report_to,
        "creation": [case.time_ms, case.sequence],
        "lifetime": case.lifetime_ms,
        "fragment": list(case.fragment) if case.fragment else None,
        "blocks": blocks,
    }


def our_fields(bundle: Bundle) -> dict[str, Any]:
    primary = bundle.primary
    blocks: dict[int, Any] = {}
    for block in bundle.blocks:
        content: Any = block.data
        if block.type_code == BlockType.HOP_COUNT:
            hops = HopCountBlock.from_block(block)
            content = ["hop", [hops.limit, hops.count]]
        elif block.type_code == BlockType.PREVIOUS_NODE:
            content = ["prev", eid_to_cbor(PreviousNodeBlock.from_block(block).node)]
        elif block.type_code == BlockType.BUNDLE_AGE:
            content = ["age", BundleAgeBlock.from_block(block).age_ms]
        blocks[block.number] = (
            int(block.type_code),
            int(block.flags),
            int(block.crc_type),
            content,
        )
    return {
        "flags": int(primary.flags),
        "crc_type": int(primary.crc_type),
        "destination": eid_to_cbor(primary.destination),
        "source": eid_to_cbor(primary.source),
        "report_to": eid_to_cbor(primary.report_to),
        "creation": [primary.creation.time_ms, primary.creation.sequence],
        "lifetime": primary.lifetime_ms,
        "fragment": (
            [primary.fragment_offset, primary.total_adu_length] if bundle.is_fragment else None
        ),
        "blocks": blocks,
    }


def _pyd3tn_eid_model(eid: Any) -> EIDModel:
    scheme, ssp = eid
    return [scheme, list(ssp) if isinstance(ssp, list | tuple) else ssp]


def pyd3tn_fields(bundle: Any) -> dict[str, Any]:
    primary = bundle.primary_block
    blocks: dict[int, Any] = {}
    for block in [bundle.payload_block, *bundle.blocks]:
        content: Any = block.data
        if block.block_type == bundle7.BlockType.HOP_COUNT:
            content = ["hop", list(cbor2.loads(block.data))]
        elif block.block_type == bundle7.BlockType.PREVIOUS_NODE:
            content = ["prev", _pyd3tn_eid_model(cbor2.loads(block.data))]
        elif block.block_type == bundle7.BlockType.BUNDLE_AGE:
            content = ["age", cbor2.loads(block.data)]
        blocks[block.block_number] = (
            int(block.block_type),
            int(block.block_proc_flags),
            int(block.crc_type),
            content,
        )
    fragment = None
    if primary.bundle_proc_flags & bundle7.BundleProcFlag.IS_FRAGMENT:
        fragment = [primary.fragment_offset, primary.total_payload_length]
    return {
        "flags": int(primary.bundle_proc_flags),
        "crc_type": int(primary.crc_type),
        "destination": _pyd3tn_eid_model(primary.destination),
        "source": _pyd3tn_eid_model(primary.source),
        "report_to": _pyd3tn_eid_model(primary.report_to),
        "creation": list(primary.creation_time),
        "lifetime": primary.lifetime,
        "fragment": fragment,
        "blocks": blocks,
    }


def _block_order(bundle: Bundle) -> list[tuple[int, int]]:
    return [(int(block.type_code), block.number) for block in bundle.blocks]


def _pyd3tn_block_order(bundle: Any) -> list[tuple[int, int]]:
    return [(int(block.block_type), block.block_number) for block in list(bundle)[1:]]


# ---------------------------------------------------------------------------------------------
# The two directions


def check_pyd3tn_to_ours(case: Case) -> None:
    theirs = build_pyd3tn(case)
    data = bytes(theirs)
    ours = decode_bundle(data)  # verifies every CRC pyd3tn computed
    assert our_fields(ours) == expected_fields(case) == pyd3tn_fields(theirs)
    assert _block_order(ours) == _pyd3tn_block_order(theirs)
    # Same fields, same block order: our encoder writes the very same bytes.
    assert build_ours(case, pyd3tn_order(case)).encode() == data


def check_ours_to_pyd3tn(case: Case) -> None:
    data = build_ours(case).encode()
    parsed = bundle7.Bundle.parse(data)
    assert pyd3tn_fields(parsed) == expected_fields(case)
    # pyd3tn does not verify CRCs: recompute ours with its CRC code over its own encoding.
    primary = parsed.primary_block
    assert primary.calculate_crc() == primary.crc_provided
    for block in [*parsed.blocks, parsed.payload_block]:
        if block.crc_type:
            assert block.calculate_crc() == block.crc_provided, block
        else:
            assert block.crc_provided is None
    if case.extensions == pyd3tn_order(case):
        assert bytes(parsed) == data  # pyd3tn re-serialises to our exact bytes
    else:
        assert bytes(parsed) == build_ours(case, pyd3tn_order(case)).encode()


@pytest.mark.parametrize("params", GRID)
def test_grid_pyd3tn_encodes_we_decode(params: tuple[int, int, int]) -> None:
    check_pyd3tn_to_ours(grid_case(params))


@pytest.mark.parametrize("params", GRID)
def test_grid_we_encode_pyd3tn_parses(params: tuple[int, int, int]) -> None:
    check_ours_to_pyd3tn(grid_case(params))


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_seeded_pyd3tn_encodes_we_decode(seed: int) -> None:
    check_pyd3tn_to_ours(seeded_case(seed))


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_seeded_we_encode_pyd3tn_parses(seed: int) -> None:
    check_ours_to_pyd3tn(seeded_case(seed))


def test_cases_cover_what_they_claim() -> None:
    """The seeded cases really exercise every EID form, CRC type and extension block."""
    cases = [seeded_case(seed) for seed in RANDOM_SEEDS]
    eids = [e for c in cases for e in (c.destination, c.source, c.report_to)]
    assert [1, 0] in eids and [2, [0, 0]] in eids
    assert any(e[0] == 1 and e[1] != 0 for e in eids)
    assert any(e[0] == 2 and len(e[1]) == 2 and e[1][0] > UINT32_MAX for e in eids)
    assert any(e[0] == 2 and len(e[1]) == 3 and e[1][0] == 0 for e in eids)
    assert any(e[0] == 2 and len(e[1]) == 3 and e[1][0] != 0 for e in eids)
    kinds = {ext.kind for c in cases for ext in c.extensions}
    assert kinds == {"hop", "prev", "age"}
    assert {c.primary_crc for c in cases} == {1, 2}
    assert {c.payload_crc for c in cases} == {0, 1, 2}
    assert any(c.fragment for c in cases) and any(c.time_ms == 0 for c in cases)
    assert any(c.flags & BundleFlags.ADMIN_RECORD for c in cases)
    assert any(c.flags & (1 << 40) for c in cases)
    assert any(c.extensions != pyd3tn_order(c) for c in cases)


def test_pyd3tn_all_in_one_builder() -> None:
    """``serialize_bundle7`` (seconds-based lifetime and age, auto-numbered blocks)."""
    data = bundle7.serialize_bundle7(
        "dtn://src/app",
        "ipn:7.3",
        b"payload",
        report_to_eid="dtn://src/",
        creation_timestamp=pyd3tn_helpers.DTN_EPOCH + timedelta(seconds=800_000_000),
        sequence_number=42,
        lifetime=3600,
        flags=bundle7.BundleProcFlag.REPORT_DELIVERY,
        hop_limit=16,
        hop_count=2,
        bundle_age=1.5,
        previous_node_eid="ipn:9.0",
        crc_type_primary=bundle7.CRCType.CRC16,
        crc_type_canonical=bundle7.CRCType.CRC32,
    )
    bundle = decode_bundle(data)
    assert bundle.primary.flags == BundleFlags.REPORT_DELIVERY
    assert str(bundle.primary.source) == "dtn://src/app"
    assert str(bundle.primary.destination) == "ipn:7.3"
    assert str(bundle.primary.report_to) == "dtn://src/"
    assert bundle.primary.creation == CreationTimestamp(800_000_000_000, 42)
    assert bundle.primary.lifetime_ms == 3_600_000
    assert bundle.hop_count == HopCountBlock(16, 2)
    assert bundle.bundle_age_ms == 1500
    assert str(bundle.previous_node) == "ipn:9.0"
    assert bundle.payload == b"payload"
    assert [b.crc_type for b in bundle.blocks] == [2, 2, 2, 2]


def test_anonymous_bundle_from_pyd3tn() -> None:
    data = bundle7.serialize_bundle7(
        None, "dtn://dst/x", b"", creation_timestamp=0, sequence_number=1, bundle_age=0,
        flags=bundle7.BundleProcFlag.MUST_NOT_BE_FRAGMENTED,
    )  # fmt: skip
    bundle = decode_bundle(data)
    assert bundle.primary.source == DTN_NONE == bundle.primary.report_to
    assert bundle.primary.creation == CreationTimestamp(0, 1)
    assert bundle.bundle_age_ms == 0
