"""Exceptions of the BPv7 codec.

Two families, as in h11: :class:`DecodeError` when bytes received from a peer break RFC 9171
(the remote side is at fault; RFC 9171 §5.6 step 3 says to delete such a bundle for the reason
"Block unintelligible"), and :class:`EncodeError` when the local caller asks for something the RFC
forbids. Both carry ``rule`` — a short, stable identifier that tests and logs can match on — and
``section``, the RFC section that states the rule.
"""

from __future__ import annotations

__all__ = [
    "BPv7Error",
    "BlockError",
    "BundleValidationError",
    "CBORError",
    "CRCError",
    "DecodeError",
    "EIDError",
    "EncodeError",
    "PrimaryBlockError",
]


class BPv7Error(Exception):
    """Base class of every exception raised by :mod:`bpv7`."""

    rule: str
    """Short stable identifier of the violated rule, e.g. ``"payload-block-last"``."""
    section: str
    """Section of the RFC that states the rule, e.g. ``"4.1"``."""
    rfc: int
    """Number of the RFC that ``section`` belongs to (9171 unless stated)."""
    message: str
    """The one-line human-readable description, without the rule prefix."""

    def __init__(self, message: str, *, rule: str, section: str, rfc: int = 9171) -> None:
        self.message = message
        self.rule = rule
        self.section = section
        self.rfc = rfc
        super().__init__(f"{message} [RFC {rfc} §{section}: {rule}]")


class DecodeError(BPv7Error, ValueError):
    """Received bytes do not form a valid BPv7 structure (the peer broke the RFC)."""


class CBORError(DecodeError):
    """The bytes are not well-formed CBOR, or not the deterministic encoding RFC 9171 §4.1 requires,
    or a CBOR item has the wrong major type for its field."""


class EIDError(DecodeError):
    """An endpoint ID is malformed (CBOR form or URI text)."""


class CRCError(DecodeError):
    """A block's CRC is malformed or does not match the block's bytes (RFC 9171 §4.2.2, §5.6)."""


class PrimaryBlockError(DecodeError):
    """The primary block breaks RFC 9171 §4.3.1."""


class BlockError(DecodeError):
    """A canonical block breaks RFC 9171 §4.3.2 or its block type's specification (§4.4)."""


class BundleValidationError(DecodeError):
    """The blocks are individually valid but the bundle as a whole breaks RFC 9171 (§4.1, §4.2.3,
    §4.4 ...)."""


class EncodeError(BPv7Error, ValueError):
    """The local caller tried to build or encode something RFC 9171 forbids."""
