"""Administrative records (RFC 9171 §6.1): the payload of a bundle whose "ADU is an
administrative record" flag is set.

RFC 9171 §6.1: "Each BP administrative record SHALL be represented as a CBOR array comprising two
items. The first item of the array SHALL be a record type code, which SHALL be represented as a
CBOR unsigned integer. The second element of this array SHALL be the applicable CBOR
representation of the content of the record."

:func:`decode_admin_record` turns payload bytes into one of the record values
(:class:`~bpv7.admin.BundleStatusReport`, :class:`~bpv7.admin.BibePdu`,
:class:`~bpv7.admin.CustodySignal`, or :class:`UnknownAdminRecord` for a type this codec does
not know) and raises only :class:`~bpv7.errors.DecodeError` subclasses, whatever the bytes.
:func:`encode_admin_record` does the reverse; a decoded record that was not changed re-encodes
to exactly the bytes it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .._cbor import BREAK, INDEFINITE, UINT64_MAX, encode_uint, read_array, read_uint, truncated
from ..errors import CBORError, DecodeError, EncodeError
from .bibe import BibePdu, CustodySignal
from .status import BundleStatusReport
from .wire import AdminRecordType, admin_error, skip_item

__all__ = [
    "AdminRecord",
    "UnknownAdminRecord",
    "decode_admin_record",
    "encode_admin_record",
]

_RECORD_TYPES = {int(t): t for t in AdminRecordType}


@dataclass(frozen=True, slots=True)
class UnknownAdminRecord:
    """An administrative record of a type this codec does not interpret, kept byte for byte."""

    record_type: int
    """Its record type code (RFC 9171 §6.1), an unsigned 64-bit integer; the decoder makes an
    :class:`UnknownAdminRecord` only of codes that are not an :class:`AdminRecordType`."""
    content: bytes
    """The CBOR encoding of the record content: exactly one well-formed CBOR item."""
    _raw: bytes | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        record_type = self.record_type
        if (
            isinstance(record_type, bool)
            or not isinstance(record_type, int)
            or not 0 <= record_type <= UINT64_MAX
        ):
            raise EncodeError(
                f"record type code must be an unsigned 64-bit integer, not {record_type!r:.40}",
                rule="uint-range",
                section="6.1",
            )
        if record_type in _DECODERS:
            raise EncodeError(
                f"record type {record_type} has its own class; use it, not UnknownAdminRecord",
                rule="admin-record-type",
                section="6.1",
            )
        if not isinstance(self.content, bytes | bytearray | memoryview):
            raise EncodeError("content must be bytes", rule="admin-content", section="6.1")
        content = bytes(self.content)
        object.__setattr__(self, "content", content)
        try:
            end = skip_item(content, 0)
        except (DecodeError, IndexError):
            end = -1
        # RFC 9171 §6.1: the second element "SHALL be the applicable CBOR representation of
        # the content of the record" -- one CBOR item.
        if end != len(content):
            raise EncodeError(
                "content must be exactly one well-formed CBOR item",
                rule="admin-content",
                section="6.1",
            )

    def encode_content(self) -> bytes:
        """The record content's CBOR, as given."""
        return self.content


AdminRecord = BundleStatusReport | BibePdu | CustodySignal | UnknownAdminRecord
"""Any administrative record value."""

_ContentDecoder = Callable[[bytes, int], tuple[AdminRecord, int]]
_DECODERS: dict[int, _ContentDecoder] = {
    AdminRecordType.BUNDLE_STATUS_REPORT: BundleStatusReport.decode_content,
    AdminRecordType.BIBE_PDU: BibePdu.decode_content,
    AdminRecordType.CUSTODY_SIGNAL: CustodySignal.decode_content,
}
_ADMIN_TYPES = (BundleStatusReport, BibePdu, CustodySignal, UnknownAdminRecord)


def record_type_of(record: AdminRecord) -> int:
    """The record type code of ``record``."""
    if isinstance(record, UnknownAdminRecord):
        return record.record_type
    return record.RECORD_TYPE


def encode_admin_record(record: AdminRecord) -> bytes:
    """The payload bytes carrying ``record``: ``[record type code, record content]``. A decoded,
    unchanged record gives back exactly the bytes it was decoded from."""
    if type(record) not in _ADMIN_TYPES:
        raise EncodeError(
            f"not an administrative record value: {type(record).__name__}",
            rule="admin-record-type",
            section="6.1",
        )
    raw = record._raw
    if raw is None:
        # RFC 9171 §6.1: "a CBOR array comprising two items".
        raw = b"\x82" + encode_uint(record_type_of(record)) + record.encode_content()
        object.__setattr__(record, "_raw", raw)
    return raw


def decode_admin_record(payload: bytes | bytearray | memoryview) -> AdminRecord:
    """Decode the administrative record in a bundle's payload. Raises only
    :class:`~bpv7.errors.DecodeError` subclasses (mostly :class:`~bpv7.admin.AdminRecordError`
    and :class:`~bpv7.errors.CBORError`), naming the violated rule."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"decode_admin_record needs bytes, not {type(payload).__name__}")
    data = bytes(payload)
    try:
        record, end = _decode(data)
    except IndexError:
        raise truncated() from None
    except RecursionError:
        raise CBORError("CBOR nested too deeply", rule="cbor-nesting", section="4.1") from None
    if end != len(data):
        raise admin_error(
            f"{len(data) - end} bytes after the administrative record", "admin-trailing-bytes"
        )
    object.__setattr__(record, "_raw", data)
    return record


def _decode(data: bytes) -> tuple[AdminRecord, int]:
    # RFC 9171 §6.1: "Each BP administrative record SHALL be represented as a CBOR array
    # comprising two items."
    count, pos = read_array(data, 0, "administrative record")
    if count not in (2, INDEFINITE):
        raise admin_error(
            f"administrative record array has {count} items, not 2", "admin-record-length"
        )
    # "The first item of the array SHALL be a record type code, which SHALL be represented as a
    # CBOR unsigned integer."
    if data[pos] == BREAK:
        raise admin_error("administrative record array is empty", "admin-record-length")
    record_type, pos = read_uint(data, pos, "administrative record type code")
    if data[pos] == BREAK:
        raise admin_error("administrative record has no content", "admin-record-length")
    decoder = _DECODERS.get(record_type)
    record: AdminRecord
    if decoder is not None:
        record, pos = decoder(data, pos)
    else:
        start = pos
        pos = skip_item(data, pos)
        record = UnknownAdminRecord(record_type, data[start:pos])
    if count == INDEFINITE:
        if data[pos] != BREAK:
            raise admin_error(
                "administrative record array has more than 2 items", "admin-record-length"
            )
        pos += 1
    return record, pos
