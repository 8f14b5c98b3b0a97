"""Bundle Protocol version 7 codec (RFC 9171; ipn EIDs per RFC 9758). Pure: no I/O, no clocks."""

from .codes import STATUS_REPORT_REQUEST_FLAGS, BlockFlags, BlockType, BundleFlags
from .crc import CRCType, compute_crc, crc16_x25, crc32c
from .eid import (
    DTN_NONE,
    DtnEID,
    EIDScheme,
    EndpointID,
    IpnEID,
    eid_from_bytes,
    eid_from_cbor,
    eid_to_cbor,
    parse_eid,
)
from .errors import (
    BlockError,
    BPv7Error,
    BundleValidationError,
    CBORError,
    CRCError,
    DecodeError,
    EIDError,
    EncodeError,
    PrimaryBlockError,
)

__all__ = [
    "DTN_NONE",
    "STATUS_REPORT_REQUEST_FLAGS",
    "BPv7Error",
    "BlockError",
    "BlockFlags",
    "BlockType",
    "BundleFlags",
    "BundleValidationError",
    "CBORError",
    "CRCError",
    "CRCType",
    "DecodeError",
    "DtnEID",
    "EIDError",
    "EIDScheme",
    "EncodeError",
    "EndpointID",
    "IpnEID",
    "PrimaryBlockError",
    "compute_crc",
    "crc16_x25",
    "crc32c",
    "eid_from_bytes",
    "eid_from_cbor",
    "eid_to_cbor",
    "parse_eid",
]
