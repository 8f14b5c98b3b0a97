"""Block CRCs of RFC 9171 §4.2.1/§4.2.2: CRC-16/X.25 and CRC-32C (Castagnoli).

CRC-32C comes from the ``crc32c`` package (C, SSE4.2/ARMv8 instructions when available).
CRC-16/X.25 (poly 0x1021, reflected, init and xorout 0xFFFF) is computed with the standard
library's C ``binascii.crc_hqx``, which implements the same polynomial *unreflected*: a reflected
CRC equals the unreflected CRC over bit-reversed input bytes, bit-reversed at the end. Both run at
C speed with no per-byte Python loop.

The RFC's rule for what the CRC covers ("the concatenation of all bytes of the block ... including
the CRC field itself, which, for this purpose, SHALL be temporarily populated with all [value]
bytes set to zero", §4.3.1/§4.3.2 and erratum 8043) is applied by the block codecs, which pass the
pieces of a block's bytes to :func:`compute_crc`.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from enum import IntEnum

from crc32c import crc32c as _crc32c

__all__ = [
    "CRC_LENGTH",
    "CRCType",
    "compute_crc",
    "zeroed_crc",
    "crc16_x25",
    "crc32c",
]


class CRCType(IntEnum):
    """CRC type codes (RFC 9171 §4.2.1: "the following values (and no others) are valid")."""

    NONE = 0
    """RFC 9171 §4.2.1: "0 indicates 'no Cyclic Redundancy Check (CRC) is present.'" """
    CRC16_X25 = 1
    """RFC 9171 §4.2.1: "1 indicates 'a standard X-25 CRC-16 is present.'" """
    CRC32C = 2
    """RFC 9171 §4.2.1: "2 indicates 'a standard CRC32C (Castagnoli) CRC-32 is present.'" """


CRC_LENGTH: dict[int, int] = {CRCType.NONE: 0, CRCType.CRC16_X25: 2, CRCType.CRC32C: 4}
"""Length in bytes of the CRC value for each CRC type (RFC 9171 §4.2.2: two bytes for type 1,
four bytes for type 2)."""

_REFLECT = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
"""Byte translation table reversing the bit order of each byte."""

_ZEROS = {2: b"\x00\x00", 4: b"\x00\x00\x00\x00"}


def _x25_update(register: int, data: bytes | bytearray | memoryview) -> int:
    if isinstance(data, memoryview):
        data = data.tobytes()
    return binascii.crc_hqx(data.translate(_REFLECT), register)


def _x25_final(register: int) -> int:
    return ((_REFLECT[register & 0xFF] << 8) | _REFLECT[register >> 8]) ^ 0xFFFF


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 of ``data`` (check value: ``crc16_x25(b"123456789") == 0x906E``)."""
    return _x25_final(_x25_update(0xFFFF, data))


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli) of ``data`` (check value: ``crc32c(b"123456789") == 0xE3069283``)."""
    return int(_crc32c(data))


def compute_crc(crc_type: int, parts: Iterable[bytes | bytearray | memoryview]) -> bytes:
    """CRC of the concatenation of ``parts`` as ``crc_type`` prescribes, as the big-endian value
    bytes of the CRC field (RFC 9171 §4.2.2: "in network byte order"). ``parts`` must already
    carry the CRC field's value bytes as zeros. Returns ``b""`` for :attr:`CRCType.NONE`."""
    if crc_type == CRCType.CRC32C:
        value = 0
        for part in parts:
            value = _crc32c(part, value)
        return int(value).to_bytes(4, "big")
    if crc_type == CRCType.CRC16_X25:
        register = 0xFFFF
        for part in parts:
            register = _x25_update(register, part)
        return _x25_final(register).to_bytes(2, "big")
    if crc_type == CRCType.NONE:
        return b""
    raise ValueError(f"unknown CRC type {crc_type}")


def zeroed_crc(crc_type: int) -> bytes:
    """The CRC field's value bytes set to zero, as the CRC computation requires."""
    return _ZEROS.get(CRC_LENGTH[crc_type], b"")
