"""CRC-16/X.25 and CRC-32C against their catalogue check values (RFC 9171 §4.2.1)."""

import random

import pytest

from bpv7.crc import CRC_LENGTH, CRCType, compute_crc, crc16_x25, crc32c, zeroed_crc


def _x25_bitwise(data: bytes) -> int:
    """Reference CRC-16/X.25, bit by bit (reflected poly 0x8408, init/xorout 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_check_values() -> None:
    assert crc16_x25(b"123456789") == 0x906E
    assert crc32c(b"123456789") == 0xE3069283


def test_rfc7143_crc32c_examples() -> None:
    # RFC 7143 Appendix A.4 (cited by RFC 9171 §4.2.1): 32 bytes of zeros / of 0xFF.
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


@pytest.mark.parametrize("length", [0, 1, 2, 7, 64, 1000])
def test_against_bitwise_reference(length: int) -> None:
    rng = random.Random(length)
    data = bytes(rng.randrange(256) for _ in range(length))
    assert crc16_x25(data) == _x25_bitwise(data)
    assert crc32c(data) == _crc32c_bitwise(data)
    assert crc16_x25(bytearray(data)) == crc16_x25(memoryview(data)) == crc16_x25(data)
    assert crc32c(memoryview(data)) == crc32c(data)


@pytest.mark.parametrize("crc_type", [CRCType.CRC16_X25, CRCType.CRC32C])
def test_compute_crc_over_parts_equals_whole(crc_type: CRCType) -> None:
    data = bytes(range(200))
    whole = compute_crc(crc_type, [data])
    assert compute_crc(crc_type, [data[:3], memoryview(data)[3:150], data[150:]]) == whole
    assert len(whole) == CRC_LENGTH[crc_type]
    expected = crc16_x25(data) if crc_type == CRCType.CRC16_X25 else crc32c(data)
    assert int.from_bytes(whole, "big") == expected


def test_compute_crc_none_and_unknown() -> None:
    assert compute_crc(CRCType.NONE, [b"abc"]) == b""
    assert zeroed_crc(CRCType.NONE) == b""
    assert zeroed_crc(CRCType.CRC32C) == bytes(4)
    with pytest.raises(ValueError, match="unknown CRC type"):
        compute_crc(3, [b"abc"])
