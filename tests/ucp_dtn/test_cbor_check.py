"""Hostile CBOR from the mesh or a local program: huge declared lengths, too many items, too
deep — a typed error before any decoder builds Python objects, never a memory blow-up."""

from __future__ import annotations

import cbor2
import pytest

from bpv7 import DecodeError, decode_bundle, eid_from_bytes
from ucp_dtn.appapi import AppApiProtocolError, decode_body
from ucp_dtn.cbor_check import MAX_DEPTH, MAX_ITEMS, CBORCheckError, check_cbor
from ucp_dtn.ucp import MessageDecodeError, decode_message


def head(major: int, length: int) -> bytes:
    """A CBOR head with an 8-byte argument."""
    return bytes([major << 5 | 27]) + length.to_bytes(8, "big")


DECLARED = {
    "bytes of 2**60": head(2, 2**60),
    "text of 2**40": head(3, 2**40),
    "array of 2**32": head(4, 2**32) + b"\x00",
    "map of 2**31": head(5, 2**31) + b"\x00\x00",
    "array of 2**63 in a map": b"\xa1\x61a" + head(4, 2**63),
}


@pytest.mark.parametrize("data", DECLARED.values(), ids=DECLARED.keys())
def test_huge_declared_lengths_are_truncated_cbor(data: bytes) -> None:
    with pytest.raises(CBORCheckError, match="truncated CBOR"):
        check_cbor(data)
    with pytest.raises(MessageDecodeError, match="truncated CBOR"):
        decode_message(data)
    with pytest.raises(AppApiProtocolError, match="truncated CBOR"):
        decode_body(data)


def many(count: int) -> bytes:
    """An array of ``count`` zeros: ``count + 1`` items."""
    return bytes([0x9A]) + count.to_bytes(4, "big") + b"\x00" * count


def test_too_many_items_are_refused_before_decoding() -> None:
    check_cbor(many(MAX_ITEMS - 1))
    with pytest.raises(CBORCheckError, match=f"more than {MAX_ITEMS} CBOR items"):
        check_cbor(many(MAX_ITEMS))
    with pytest.raises(MessageDecodeError, match="more than 1048576 CBOR items"):
        decode_message(many(MAX_ITEMS))
    body = cbor2.dumps({"v": 1, "t": "send", "id": 1, "pad": [0] * MAX_ITEMS})
    with pytest.raises(AppApiProtocolError, match="more than 1048576 CBOR items"):
        decode_body(body)


def test_depth_is_bounded() -> None:
    check_cbor(b"\x81" * (MAX_DEPTH - 1) + b"\x00")
    for data in (b"\x81" * 100_000 + b"\x00", b"\x9f" * 100_000):
        with pytest.raises(CBORCheckError, match=f"nested deeper than {MAX_DEPTH}"):
            check_cbor(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x9f" + head(2, 2**63),
        b"\x9f\x89" + head(4, 2**62),
        b"\x82\x01" + head(3, 2**62),
        b"\x82\x01\x7f\x61a",  # an indefinite text string that never ends
    ],
)
def test_bpv7_reports_huge_declared_lengths_as_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_bundle(data)
    with pytest.raises(DecodeError):
        eid_from_bytes(data[1:] if data[0] == 0x9F else data)


@pytest.mark.parametrize("body", [b"\x81" * 100_000 + b"\x00", b"\xff", head(4, 2**40)])
def test_the_client_agent_protocol_reports_bad_frames(body: bytes) -> None:
    from ucp_dtn.client.agent_protocol import ProtocolError, decode_frame_body

    with pytest.raises(ProtocolError, match="not a CBOR message"):
        decode_frame_body(body)
