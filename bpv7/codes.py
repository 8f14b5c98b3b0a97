"""Wire codes of RFC 9171: bundle and block processing control flags, block type codes.

Unknown values received from the wire are kept, never rejected: RFC 9171 §4.2.3 and §4.2.4 say
"[flags] that are unrecognized MUST be ignored", so :class:`BundleFlags` and :class:`BlockFlags`
(``IntFlag`` with the default KEEP boundary) carry unknown bits through a decode/encode round trip,
and a block type code without a member below stays a plain ``int``.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = [
    "STATUS_REPORT_REQUEST_FLAGS",
    "BlockFlags",
    "BlockType",
    "BundleFlags",
]


class BundleFlags(IntFlag):
    """Bundle processing control flags (RFC 9171 §4.2.3; IANA "Bundle Processing Control Flags").

    Bits 3, 4, 7-13, 15, 19 and 20 are reserved and bits 21-63 unassigned (§4.2.3); such bits
    received from the wire are preserved as unnamed bits of the value.
    """

    IS_FRAGMENT = 0x000001
    """RFC 9171 §4.2.3 bit 0: "Bundle is a fragment." """
    ADMIN_RECORD = 0x000002
    """RFC 9171 §4.2.3 bit 1: "ADU is an administrative record." """
    MUST_NOT_FRAGMENT = 0x000004
    """RFC 9171 §4.2.3 bit 2: "Bundle must not be fragmented." """
    ACK_REQUESTED = 0x000020
    """RFC 9171 §4.2.3 bit 5: "Acknowledgement by application is requested." """
    STATUS_TIME_REQUESTED = 0x000040
    """RFC 9171 §4.2.3 bit 6: "Status time requested in reports." """
    REPORT_RECEPTION = 0x004000
    """RFC 9171 §4.2.3 bit 14: "Request reporting of bundle reception." """
    REPORT_FORWARDING = 0x010000
    """RFC 9171 §4.2.3 bit 16: "Request reporting of bundle forwarding." """
    REPORT_DELIVERY = 0x020000
    """RFC 9171 §4.2.3 bit 17: "Request reporting of bundle delivery." """
    REPORT_DELETION = 0x040000
    """RFC 9171 §4.2.3 bit 18: "Request reporting of bundle deletion." """


STATUS_REPORT_REQUEST_FLAGS = (
    BundleFlags.REPORT_RECEPTION
    | BundleFlags.REPORT_FORWARDING
    | BundleFlags.REPORT_DELIVERY
    | BundleFlags.REPORT_DELETION
)
"""The four "status report request" flags of RFC 9171 §4.2.3."""


class BlockFlags(IntFlag):
    """Block processing control flags (RFC 9171 §4.2.4; IANA "Block Processing Control Flags").

    Bits 3, 5 and 6 are reserved and bits 7-63 unassigned (§4.2.4); such bits received from the
    wire are preserved as unnamed bits of the value.
    """

    REPLICATE_IN_EVERY_FRAGMENT = 0x01
    """RFC 9171 §4.2.4 bit 0: "Block must be replicated in every fragment." """
    REPORT_IF_UNPROCESSABLE = 0x02
    """RFC 9171 §4.2.4 bit 1: "Transmit status report if block can't be processed." """
    DELETE_BUNDLE_IF_UNPROCESSABLE = 0x04
    """RFC 9171 §4.2.4 bit 2: "Delete bundle if block can't be processed." """
    DISCARD_IF_UNPROCESSABLE = 0x10
    """RFC 9171 §4.2.4 bit 4: "Discard block if it can't be processed." """


class BlockType(IntEnum):
    """Bundle block type codes (RFC 9171 §4.3.2, §9.1; IANA "Bundle Block Types").

    Codes 192-255 are for private/experimental use and all others unassigned ones are reserved
    (§4.3.2). draft-ietf-dtn-bibect defines administrative record types, not block types, so it
    adds nothing here. A code without a member stays a plain ``int``.
    """

    PAYLOAD = 1
    """RFC 9171 §4.3.2: "Bundle block type code 1 indicates that the block is a Bundle Payload
    Block." """
    PREVIOUS_NODE = 6
    """RFC 9171 §4.4.1: "The Previous Node Block, block type 6" """
    BUNDLE_AGE = 7
    """RFC 9171 §4.4.2: "The Bundle Age Block, block type 7" """
    HOP_COUNT = 10
    """RFC 9171 §4.4.3: "The Hop Count Block, block type 10" """
    BIB = 11
    """RFC 9172 §3.2 (BPSec): Block Integrity Block, block type 11."""
    BCB = 12
    """RFC 9172 §3.2 (BPSec): Block Confidentiality Block, block type 12."""
