"""Wire-level pieces shared by the administrative record codecs (RFC 9171 §6.1).

The record type codes, the error raised for a malformed record, and a strict reader over CBOR
arrays that the record codecs use. Every reader works on ``(data, pos)`` like
:mod:`bpv7._cbor` (whose head readers it builds on, so integers and lengths must be in shortest
form, RFC 9171 §4.1) and lets ``IndexError`` escape when the input ends early; the top-level
decoder turns that into a ``cbor-truncated`` error.

Records defined by draft-ietf-dtn-bibect-05 (BIBE) report their rule with ``rfc == 0`` and a
section naming the draft, since that specification is not an RFC.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

from .._cbor import (
    BREAK,
    INDEFINITE,
    MAJOR_ARRAY,
    read_array,
    read_bytes_span,
    read_head,
    read_uint,
    wrong_type,
)
from ..eid import EndpointID, decode_eid
from ..errors import BPv7Error, CBORError, DecodeError, EncodeError
from ..primary import CreationTimestamp

__all__ = [
    "BIBECT",
    "AdminRecordError",
    "AdminRecordType",
    "ArrayReader",
    "admin_error",
    "bibect_error",
    "skip_item",
]

BIBECT = "draft-ietf-dtn-bibect-05"
"""The BIBE specification the BIBE records follow (an Internet-Draft, not an RFC)."""

MAX_NESTING = 32
"""Deepest nesting of CBOR arrays, maps and tags accepted inside an opaque record item."""


class AdminRecordType(IntEnum):
    """Administrative record type codes (RFC 9171 §6.1; IANA "Bundle Administrative Record
    Types"). A code without a member stays a plain ``int``."""

    BUNDLE_STATUS_REPORT = 1
    """RFC 9171 §6.1: record type code 1, "Bundle status report" (§6.1.1)."""
    BIBE_PDU = 3
    """draft-ietf-dtn-bibect-05: a BIBE protocol data unit (BPDU) is an administrative record
    "whose record type code is 3"."""
    CUSTODY_SIGNAL = 4
    """draft-ietf-dtn-bibect-05: a custody signal is an administrative record whose record type
    code is 4."""


class AdminRecordError(DecodeError):
    """The payload of an administrative-record bundle is not a valid administrative record
    (RFC 9171 §6.1, §6.1.1; draft-ietf-dtn-bibect-05 for BIBE records)."""


_E = TypeVar("_E", bound=BPv7Error)


def admin_error(message: str, rule: str, section: str = "6.1") -> AdminRecordError:
    """An :class:`AdminRecordError` for a rule of RFC 9171."""
    return AdminRecordError(message, rule=rule, section=section)


def bibect_error(cls: type[_E], message: str, rule: str, where: str) -> _E:
    """An error of class ``cls`` for a rule of draft-ietf-dtn-bibect-05 (``where`` names the
    part of the draft, e.g. ``"BPDU"``); its ``rfc`` is 0 and its text names the draft."""
    error = cls(message, rule=rule, section=f"{BIBECT} {where}", rfc=0)
    error.args = (f"{message} [{BIBECT} {where}: {rule}]",)
    return error


def as_decode_error(error: EncodeError) -> AdminRecordError:
    """Report a rule that a received record broke (found by a value's constructor) as an
    :class:`AdminRecordError` with the same rule, section and text."""
    converted = AdminRecordError(
        error.message, rule=error.rule, section=error.section, rfc=error.rfc
    )
    converted.args = error.args
    return converted


def skip_item(data: bytes, pos: int, depth: int = 0) -> int:
    """The position after the well-formed CBOR item starting at ``data[pos]`` (any major type,
    definite or indefinite length). Raises :class:`~bpv7.errors.CBORError` for malformed or
    non-shortest-form input and for nesting deeper than :data:`MAX_NESTING`."""
    if depth > MAX_NESTING:
        raise CBORError(
            f"CBOR items nested more than {MAX_NESTING} deep",
            rule="cbor-nesting",
            section="4.1",
        )
    ib = data[pos]
    major = ib >> 5
    if major == 7:
        ai = ib & 0x1F
        if ai < 24:
            return pos + 1
        if ai == 24:
            # RFC 8949 §3.3: a one-byte simple value below 32 is not well-formed.
            if data[pos + 1] < 32:
                raise CBORError(
                    "simple value in two-byte form below 32", rule="cbor-malformed", section="4.1"
                )
            return pos + 2
        if 25 <= ai <= 27:
            end = pos + 1 + (2, 4, 8)[ai - 25]
            if end > len(data):
                raise IndexError
            return end
        raise CBORError(f"unexpected initial byte 0x{ib:02x}", rule="cbor-malformed", section="4.1")
    _, argument, pos = read_head(data, pos)
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if argument != INDEFINITE:
            end = pos + argument
            if end > len(data):
                raise IndexError
            return end
        while data[pos] != BREAK:
            chunk = data[pos]
            # RFC 8949 §3.2.3: the chunks are definite-length strings of the same major type.
            if chunk >> 5 != major or chunk & 0x1F == 31:
                raise CBORError(
                    "bad chunk in an indefinite-length string", rule="cbor-malformed", section="4.1"
                )
            pos = skip_item(data, pos, depth + 1)
        return pos + 1
    if major == 6:
        return skip_item(data, pos, depth + 1)
    # Arrays (4) and maps (5): every item takes at least one byte, so a huge count runs off the
    # end of ``data`` (IndexError) after at most len(data) steps.
    per_entry = 2 if major == 5 else 1
    if argument == INDEFINITE:
        while data[pos] != BREAK:
            for _ in range(per_entry):
                pos = skip_item(data, pos, depth + 1)
        return pos + 1
    for _ in range(argument * per_entry):
        pos = skip_item(data, pos, depth + 1)
    return pos


class ArrayReader:
    """Reads the items of one CBOR array, of definite or indefinite length, in order.

    ``count`` is the declared length (:data:`~bpv7._cbor.INDEFINITE` when indefinite),
    ``index`` the number of items read so far, ``pos`` the position of the next item.
    """

    __slots__ = ("count", "data", "index", "pos", "what")

    def __init__(self, data: bytes, pos: int, what: str) -> None:
        self.data = data
        self.what = what
        self.count, self.pos = read_array(data, pos, what)
        self.index = 0

    def more(self) -> bool:
        """Whether another item follows."""
        if self.count == INDEFINITE:
            return self.data[self.pos] != BREAK
        return self.index < self.count

    def _next(self, what: str) -> int:
        if not self.more():
            raise admin_error(f"{self.what}: the array ends before its {what}", "admin-array-short")
        self.index += 1
        return self.pos

    def uint(self, what: str) -> int:
        """Read an unsigned integer item."""
        value, self.pos = read_uint(self.data, self._next(what), what)
        return value

    def boolean(self, what: str) -> bool:
        """Read a CBOR Boolean item (``false`` 0xf4 or ``true`` 0xf5)."""
        pos = self._next(what)
        ib = self.data[pos]
        if ib not in (0xF4, 0xF5):
            raise wrong_type(ib, "a Boolean", what)
        self.pos = pos + 1
        return ib == 0xF5

    def byte_string(self, what: str) -> bytes:
        """Read a definite-length byte string item."""
        start, end = read_bytes_span(self.data, self._next(what), what)
        self.pos = end
        return self.data[start:end]

    def eid(self, what: str) -> EndpointID:
        """Read an endpoint ID item (RFC 9171 §4.2.5.1)."""
        eid, self.pos = decode_eid(self.data, self._next(what), what)
        return eid

    def creation_timestamp(self, what: str) -> CreationTimestamp:
        """Read a creation timestamp item ``[time, sequence]`` (RFC 9171 §4.2.7)."""
        inner = self.array(what)
        # RFC 9171 §4.2.7: "Each bundle's creation timestamp SHALL be represented as a CBOR
        # array comprising two items."
        if inner.count not in (2, INDEFINITE):
            raise admin_error(
                f"{what} has {inner.count} items, not 2", "creation-timestamp", "4.2.7"
            )
        time_ms = inner.uint(f"{what} time")
        sequence = inner.uint(f"{what} sequence number")
        self.close(inner)
        return CreationTimestamp(time_ms, sequence)

    def array(self, what: str) -> ArrayReader:
        """Start reading a nested array item; hand the reader back to :meth:`close`."""
        pos = self._next(what)
        if self.data[pos] >> 5 != MAJOR_ARRAY:
            raise wrong_type(self.data[pos], "an array", what)
        return ArrayReader(self.data, pos, what)

    def close(self, inner: ArrayReader) -> None:
        """Finish a nested array: no items may remain; continue after it."""
        self.pos = inner.finish()

    def skip(self, what: str) -> tuple[int, int]:
        """Skip one well-formed item of any type; return its ``(start, end)`` span."""
        start = self._next(what)
        self.pos = skip_item(self.data, start)
        return start, self.pos

    def finish(self) -> int:
        """Check that no items remain; return the position after the array."""
        if self.count == INDEFINITE:
            if self.data[self.pos] != BREAK:
                raise admin_error(f"{self.what}: too many items", "admin-array-long")
            return self.pos + 1
        if self.index != self.count:
            raise admin_error(f"{self.what}: too many items", "admin-array-long")
        return self.pos
