"""BPSec security blocks (RFC 9172): the abstract security block and the rules between blocks.

A Block Integrity Block (BIB, type 11) and a Block Confidentiality Block (BCB, type 12) carry the
same block-type-specific data, the *abstract security block* of RFC 9172 §3.6:
:class:`AbstractSecurityBlock` parses and builds it (targets, security context id and flags,
security source, parameters, one result set per target). What a parameter or result *means* is
the security context's business (:mod:`bpv7.bpsec`); here a value is kept as the CBOR item it is
(an ``int``, ``bytes`` or, for other shapes, what cbor2 decodes).

:func:`encrypted_block_numbers` answers the question the decoder must ask first: which blocks
are the targets of a BCB, so that their data is ciphertext, "opaque" until decrypted, and must
not be parsed as what their block type says (RFC 9172 §3.8). :func:`security_violation` checks
the rules of RFC 9172 §3.2-§3.9 across the blocks of one bundle; :func:`bpv7.bundle.decode_bundle`
and the :class:`~bpv7.bundle.Bundle` constructor call it whenever a bundle carries a BIB or BCB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Any

from ._cbor import (
    BREAK,
    INDEFINITE,
    encode_head,
    encode_uint,
    read_array,
    read_head,
    read_uint,
    truncated,
)
from .codes import BlockFlags, BlockType
from .eid import EndpointID, decode_eid
from .errors import BlockError, DecodeError, EncodeError

if TYPE_CHECKING:
    from .blocks import CanonicalBlock
    from .bundle import Bundle

__all__ = [
    "AbstractSecurityBlock",
    "SecurityContextFlags",
    "SecurityContextId",
    "encode_security_items",
    "encrypted_block_numbers",
    "fragment_security_blocks",
    "replicated_security_block_numbers",
    "security_violation",
]

CBORValue = Any
"""A parameter or result value: an ``int`` or ``bytes`` for the RFC 9173 contexts, any CBOR data
item (as cbor2 decodes it) otherwise."""

SecurityItems = tuple[tuple[int, CBORValue], ...]
"""Security parameters, or the results for one target: ``(id, value)`` pairs in wire order."""


class SecurityContextFlags(IntFlag):
    """Security context flags of the abstract security block (RFC 9172 §3.6). Other bits are
    reserved: "[they] MUST be set to 0 by a security source and ... MUST be ignored" on receipt,
    so received values keep them."""

    PARAMETERS_PRESENT = 0x01
    """RFC 9172 §3.6: bit 0, "Security Context Parameters Present flag"."""


class SecurityContextId(IntEnum):
    """Security context identifiers (IANA "BPSec Security Context Identifiers"). A context id
    without a member stays a plain ``int``."""

    BIB_HMAC_SHA2 = 1
    """RFC 9173 §3.1: "BIB-HMAC-SHA2 ... security context identifier 1"."""
    BCB_AES_GCM = 2
    """RFC 9173 §4.1: "BCB-AES-GCM ... security context identifier 2"."""
    COSE = 3
    """draft-ietf-dtn-bpsec-cose §2.1: the COSE context (the value dtn-demo-agent and the
    NASA BSL use)."""


_CONTEXT_IDS = {int(c): c for c in SecurityContextId}


def _asb_error(message: str, rule: str, section: str = "3.6") -> BlockError:
    return BlockError(message, rule=rule, section=section, rfc=9172)


def _skip_item(data: bytes, pos: int, depth: int = 0) -> int:
    """The position just past the CBOR data item at ``data[pos]`` (well-formedness only)."""
    if depth > 64:
        raise _asb_error("CBOR nested too deeply", "asb-malformed")
    major, arg, pos = read_head(data, pos)
    if major in (0, 1, 7):
        # Simple values and floats: the head is the whole item (read_head took its argument).
        return pos
    if major in (2, 3):
        if arg == INDEFINITE:
            while data[pos] != BREAK:
                pos = _skip_item(data, pos, depth + 1)
            return pos + 1
        end = pos + arg
        if end > len(data):
            raise truncated()
        return end
    if major == 6:
        return _skip_item(data, pos, depth + 1)
    count = arg if arg == INDEFINITE else (arg if major == 4 else 2 * arg)
    if count == INDEFINITE:
        while data[pos] != BREAK:
            pos = _skip_item(data, pos, depth + 1)
        return pos + 1
    for _ in range(count):
        pos = _skip_item(data, pos, depth + 1)
    return pos


def _read_value(data: bytes, pos: int, what: str) -> tuple[CBORValue, int]:
    """One parameter or result value: an unsigned integer or byte string read directly, any
    other item through cbor2."""
    ib = data[pos]
    if ib < 0x18:
        return ib, pos + 1
    if 0x40 <= ib < 0x58:
        end = pos + 1 + ib - 0x40
        if end > len(data):
            raise truncated()
        return data[pos + 1 : end], end
    end = _skip_item(data, pos)
    major = ib >> 5
    if major == 0:
        return read_uint(data, pos, what)[0], end
    if major == 2 and ib != 0x5F:
        start = read_head(data, pos)[2]
        return data[start:end], end
    import cbor2  # only for values other than integers and byte strings

    try:
        return cbor2.loads(data[pos:end]), end
    except Exception as exc:  # cbor2 raises several types; none may leave the decoder
        raise _asb_error(f"{what}: undecodable CBOR ({exc})", "asb-malformed") from None


def encode_value(value: CBORValue) -> bytes:
    """The CBOR encoding of a parameter or result value (deterministic: maps sorted)."""
    if type(value) is bytes:
        return encode_head(2, len(value)) + value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return encode_uint(int(value))  # IntEnum values (variants, ids) included
    import cbor2  # only for values other than integers and byte strings

    try:
        return bytes(cbor2.dumps(value, canonical=True))
    except Exception as exc:
        raise EncodeError(
            f"cannot encode security value {value!r:.40}: {exc}",
            rule="asb-value",
            section="3.6",
            rfc=9172,
        ) from None


def _read_items(data: bytes, pos: int, what: str) -> tuple[SecurityItems, int]:
    """An array of ``[id, value]`` pairs (RFC 9172 §3.6: "Each parameter/result SHALL be
    represented as a CBOR array of two elements")."""
    count, pos = read_array(data, pos, what)
    items = []
    index = 0
    while (index < count) if count != INDEFINITE else data[pos] != BREAK:
        if data[pos] == 0x82 and data[pos + 1] < 24:  # fast path: [small id, value]
            item_id = data[pos + 1]
            value, pos = _read_value(data, pos + 2, what)
            items.append((item_id, value))
            index += 1
            continue
        pair, pos = read_array(data, pos, what)
        if pair not in (2, INDEFINITE):
            raise _asb_error(f"{what}: an item has {pair} elements, not 2", "asb-item-shape")
        item_id, pos = read_uint(data, pos, f"{what} id")
        value, pos = _read_value(data, pos, what)
        if pair == INDEFINITE:
            if data[pos] != BREAK:
                raise _asb_error(f"{what}: an item has more than 2 elements", "asb-item-shape")
            pos += 1
        items.append((item_id, value))
        index += 1
    if count == INDEFINITE:
        pos += 1
    return tuple(items), pos


@dataclass(frozen=True, slots=True)
class AbstractSecurityBlock:
    """The block-type-specific data of a BIB or BCB (RFC 9172 §3.6)."""

    targets: tuple[int, ...]
    """Block numbers of the security targets (0 is the primary block), in wire order."""
    context_id: int
    """Security context id (a :class:`SecurityContextId` when known)."""
    source: EndpointID
    """Security source: "the EID of the node that added the security block"."""
    parameters: SecurityItems = ()
    """Security context parameters as ``(id, value)`` pairs; present on the wire when
    :attr:`context_flags` has PARAMETERS_PRESENT."""
    results: tuple[SecurityItems, ...] = ()
    """One tuple of ``(result id, value)`` pairs per target, in the order of :attr:`targets`."""
    context_flags: int = -1
    """Security context flags; -1 (the default) means "PARAMETERS_PRESENT iff there are
    parameters"."""

    def __post_init__(self) -> None:
        if type(self.targets) is not tuple:
            object.__setattr__(self, "targets", tuple(self.targets))
        if type(self.parameters) is not tuple:
            object.__setattr__(self, "parameters", tuple(self.parameters))
        if type(self.results) is not tuple:
            object.__setattr__(self, "results", tuple(tuple(r) for r in self.results))
        if self.context_flags == -1:
            object.__setattr__(self, "context_flags", 1 if self.parameters else 0)
        if type(self.context_id) is int and self.context_id in _CONTEXT_IDS:
            object.__setattr__(self, "context_id", _CONTEXT_IDS[self.context_id])
        violation = _structure_violation(self)
        if violation is not None:
            message, rule = violation
            raise EncodeError(message, rule=rule, section="3.6", rfc=9172)

    # -- reading ------------------------------------------------------------------------------

    @property
    def has_parameters(self) -> bool:
        """Whether the parameters field is present (context flag bit 0)."""
        return bool(self.context_flags & 1)  # SecurityContextFlags.PARAMETERS_PRESENT

    def parameter(self, parameter_id: int, default: CBORValue = None) -> CBORValue:
        """The value of parameter ``parameter_id``, or ``default``."""
        for item_id, value in self.parameters:
            if item_id == parameter_id:
                return value
        return default

    def results_for(self, target: int) -> SecurityItems:
        """The results for target block ``target`` (which must be one of :attr:`targets`)."""
        return self.results[self.targets.index(target)]

    @classmethod
    def decode(cls, data: bytes) -> AbstractSecurityBlock:
        """Parse block-type-specific data; raises :class:`~bpv7.errors.BlockError` (a
        :class:`~bpv7.errors.DecodeError`) naming the broken rule of RFC 9172 §3.6."""
        # The decoder checks a bundle's security blocks and the processing reads them again: a
        # small cache of recent results saves the second parse (values are immutable).
        cached = _DECODED.get(data)
        if cached is not None:
            return cached
        try:
            asb = cls._decode(data)
        except IndexError:
            raise truncated() from None
        except EncodeError as exc:
            raise _asb_error(exc.message, exc.rule, exc.section) from None
        if len(_DECODED) >= _DECODED_LIMIT:
            _DECODED.clear()
        _DECODED[bytes(data)] = asb
        return asb

    @classmethod
    def _decode(cls, data: bytes) -> AbstractSecurityBlock:
        # RFC 9172 §3.6: "Security Targets ... represented as a CBOR array"; "Security Context
        # Id ... CBOR unsigned integer"; "Security Context Flags ... CBOR unsigned integer";
        # "Security Source ... CBOR EID"; parameters and results arrays follow.
        count, pos = read_array(data, 0, "security targets")
        targets: list[int] = []
        while (len(targets) < count) if count != INDEFINITE else data[pos] != BREAK:
            target, pos = read_uint(data, pos, "security target")
            targets.append(target)
        if count == INDEFINITE:
            pos += 1
        context_id, pos = read_uint(data, pos, "security context id")
        flags, pos = read_uint(data, pos, "security context flags")
        source, pos = decode_eid(data, pos, "security source")
        parameters: SecurityItems = ()
        if flags & 1:  # SecurityContextFlags.PARAMETERS_PRESENT
            parameters, pos = _read_items(data, pos, "security context parameters")
        result_count, pos = read_array(data, pos, "security results")
        results: list[SecurityItems] = []
        while (len(results) < result_count) if result_count != INDEFINITE else data[pos] != BREAK:
            items, pos = _read_items(data, pos, "security results")
            results.append(items)
        if result_count == INDEFINITE:
            pos += 1
        if pos != len(data):
            # The block-type-specific data is "a CBOR sequence" of exactly these items.
            raise _asb_error(
                f"{len(data) - pos} bytes after the security results", "asb-trailing-bytes"
            )
        return cls(tuple(targets), context_id, source, parameters, tuple(results), flags)

    # -- writing ------------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The block-type-specific data: the CBOR sequence of RFC 9172 §3.6 (definite-length
        arrays, shortest forms)."""
        targets = self.targets
        parts = [encode_head(4, len(targets)), *map(encode_uint, targets)]
        parts.append(encode_uint(self.context_id))
        parts.append(encode_uint(self.context_flags))
        parts.append(self.source.cbor)
        if self.context_flags & 1:  # SecurityContextFlags.PARAMETERS_PRESENT
            parts.append(_encode_items(self.parameters))
        parts.append(encode_head(4, len(self.results)))
        parts.extend(map(_encode_items, self.results))
        return b"".join(parts)


_DECODED: dict[bytes, AbstractSecurityBlock] = {}
_DECODED_LIMIT = 256


def encode_security_items(items: SecurityItems) -> bytes:
    """The CBOR array of ``[id, value]`` pairs that :meth:`AbstractSecurityBlock.encode` writes
    for the parameters or for one target's results. The results of each target, in target
    order, end the encoding: a security source that learns a result late (an AEAD tag) can
    patch it in place."""
    return _encode_items(items)


def _encode_items(items: SecurityItems) -> bytes:
    parts = [encode_head(4, len(items))]
    for item_id, value in items:
        parts.append(b"\x82" + encode_uint(item_id) + encode_value(value))
    return b"".join(parts)


def _structure_violation(asb: AbstractSecurityBlock) -> tuple[str, str] | None:
    """The first rule of RFC 9172 §3.6 that ``asb`` breaks, as ``(message, rule)``."""
    targets = asb.targets
    if not targets:
        # RFC 9172 §3.6: "This array MUST have at least 1 entry."
        return "the security block has no targets", "asb-no-targets"
    if len(set(targets)) != len(targets):
        # RFC 9172 §3.6: "Each target block number MUST be unique within the array" (and §3.2:
        # security operations are unique).
        return f"a security target is listed twice in {list(targets)}", "asb-duplicate-target"
    if any(type(t) is not int or t < 0 for t in targets):
        return "security targets must be block numbers", "asb-target-type"
    if len(asb.results) != len(targets):
        # RFC 9172 §3.6: "Security Results: ... This array MUST have one entry for each target
        # listed in the security targets field, in the same order."
        return (
            f"{len(asb.results)} result sets for {len(targets)} targets",
            "asb-results-count",
        )
    ids = [item_id for item_id, _ in asb.parameters]
    if len(set(ids)) != len(ids):
        # RFC 9172 §3.10: "each security context parameter MUST be unique" (by id).
        return "a security context parameter id is used twice", "asb-duplicate-parameter"
    if bool(asb.parameters) and not asb.has_parameters:
        return (
            "parameters given but the PARAMETERS_PRESENT flag is clear",
            "asb-parameters-flag",
        )
    for items in asb.results:
        result_ids = [item_id for item_id, _ in items]
        if len(set(result_ids)) != len(result_ids):
            return "a security result id is used twice for one target", "asb-duplicate-result"
    return None


# ---------------------------------------------------------------------------------------------
# Rules between blocks (RFC 9172 §3.2-§3.9)


def read_targets(data: bytes) -> tuple[int, ...] | None:
    """Only the security targets array of a security block's data, or ``None`` if that much
    cannot be read (the full decode reports why)."""
    try:
        count, pos = read_array(data, 0, "security targets")
        targets: list[int] = []
        while (len(targets) < count) if count != INDEFINITE else data[pos] != BREAK:
            target, pos = read_uint(data, pos, "security target")
            targets.append(target)
    except (DecodeError, IndexError):
        return None
    return tuple(targets)


def encrypted_block_numbers(blocks: Iterable[CanonicalBlock]) -> dict[int, int]:
    """``{target block number: BCB block number}`` for every target of every BCB among
    ``blocks``: the blocks whose data is ciphertext (RFC 9172 §3.8: the BCB "replaces the
    plaintext target ... with ciphertext")."""
    encrypted: dict[int, int] = {}
    for block in blocks:
        if block.type_code == BlockType.BCB:
            for target in read_targets(block.data) or ():
                encrypted.setdefault(target, block.number)
    return encrypted


_BCB_FORBIDDEN_FLAGS = int(BlockFlags.DISCARD_IF_UNPROCESSABLE)
_REPLICATE = int(BlockFlags.REPLICATE_IN_EVERY_FRAGMENT)


def security_violation(
    blocks: Sequence[CanonicalBlock],
    *,
    is_fragment: bool = False,
    encrypted: dict[int, int] | None = None,
) -> tuple[str, str, str, int] | None:
    """The first rule of RFC 9172 §3 that the security blocks among ``blocks`` break, as
    ``(message, rule, section, rfc)``, or ``None``. A BIB that a BCB encrypts is opaque and not
    read (RFC 9172 §3.8). Call only for bundles that have a BIB or BCB. In a fragment a security
    block replicated in every fragment may name targets that travel in another fragment.
    ``encrypted``: the blocks' :func:`encrypted_block_numbers`, if the caller has them."""
    by_number = {block.number: block for block in blocks}
    if encrypted is None:
        encrypted = encrypted_block_numbers(blocks)
    bib_targets: dict[int, int] = {}
    bcb_targets: dict[int, int] = {}
    parsed: list[tuple[CanonicalBlock, AbstractSecurityBlock]] = []
    for block in blocks:
        if block.type_code not in (BlockType.BIB, BlockType.BCB):
            continue
        if block.number in encrypted:
            if block.type_code == BlockType.BCB:
                # RFC 9172 §3.8: "A BCB MUST NOT include another BCB as a security target."
                return (
                    f"BCB {encrypted[block.number]} targets BCB {block.number}",
                    "bcb-targets-bcb",
                    "3.8",
                    9172,
                )
            continue  # an encrypted BIB: opaque until decrypted
        try:
            asb = AbstractSecurityBlock.decode(block.data)
        except DecodeError as exc:
            kind = "BIB" if block.type_code == BlockType.BIB else "BCB"
            return f"{kind} {block.number}: {exc.message}", exc.rule, exc.section, exc.rfc
        parsed.append((block, asb))
        service = bib_targets if block.type_code == BlockType.BIB else bcb_targets
        for target in asb.targets:
            if target in service:
                # RFC 9172 §3.2: "The same security service MUST NOT be applied to a security
                # target more than once in a bundle."
                return (
                    f"block {target} is the target of two "
                    f"{'integrity' if service is bib_targets else 'confidentiality'} operations "
                    f"(blocks {service[target]} and {block.number})",
                    "security-operation-duplicate",
                    "3.2",
                    9172,
                )
            service[target] = block.number
    for block, asb in parsed:
        for target in asb.targets:
            if target != 0 and target not in by_number and not is_fragment:
                # RFC 9172 §3.6: the target block numbers name blocks "in the bundle".
                return (
                    f"security block {block.number} targets block {target}, which the bundle "
                    "does not have",
                    "security-target-missing",
                    "3.6",
                    9172,
                )
        if block.type_code == BlockType.BIB:
            for target in asb.targets:
                target_block = by_number.get(target)
                if target_block is not None and target_block.type_code in (
                    BlockType.BIB,
                    BlockType.BCB,
                ):
                    # RFC 9172 §3.7: "A security target listed in the Security Targets field
                    # [of a BIB] MUST NOT reference a security block defined in this
                    # specification (e.g., a BIB or a BCB)."
                    return (
                        f"BIB {block.number} targets security block {target}",
                        "bib-targets-security-block",
                        "3.7",
                        9172,
                    )
            continue
        # A BCB.
        if 0 in asb.targets:
            # RFC 9172 §3.8: "A BCB MUST NOT target the primary block."
            return (
                f"BCB {block.number} targets the primary block",
                "bcb-targets-primary",
                "3.8",
                9172,
            )
        for target in asb.targets:
            target_block = by_number.get(target)
            if target_block is not None and target_block.type_code == BlockType.BCB:
                return f"BCB {block.number} targets BCB {target}", "bcb-targets-bcb", "3.8", 9172
        if int(block.flags) & _BCB_FORBIDDEN_FLAGS:
            # RFC 9172 §3.8: "BCBs MUST NOT have the 'Block must be removed from bundle if it
            # cannot be processed' flag set" (dropping the BCB would leave ciphertext nobody can
            # read).
            return (
                f"BCB {block.number} may be discarded if unprocessable",
                "bcb-discard-flag",
                "3.8",
                9172,
            )
        if 1 in asb.targets and not int(block.flags) & _REPLICATE:
            # RFC 9172 §3.8: "BCBs MUST have the 'Block must be replicated in every fragment'
            # flag set if one of the targets is the payload block."
            return (
                f"BCB {block.number} encrypts the payload but is not replicated in every fragment",
                "bcb-replicate-flag",
                "3.8",
                9172,
            )
    return None


def fragment_security_blocks(bundle: Bundle) -> frozenset[int]:
    """Numbers of the blocks every fragment of ``bundle`` must carry for BPSec's sake: each BIB
    or BCB flagged "replicate in every fragment" and each of its targets other than the payload
    and the primary block (which every fragment has anyway). A fragmenter places these blocks in
    every fragment as if they had the flag (the bytes of the blocks stay unchanged, so their
    security results stay valid)."""
    return replicated_security_block_numbers(bundle.blocks)


def replicated_security_block_numbers(blocks: Iterable[CanonicalBlock]) -> frozenset[int]:
    """:func:`fragment_security_blocks` of a bundle's canonical blocks (also of a bundle head
    whose payload has not arrived, as a reactive fragmenter has it)."""
    required: set[int] = set()
    for block in blocks:
        if block.type_code not in (BlockType.BIB, BlockType.BCB):
            continue
        if not block.flags & BlockFlags.REPLICATE_IN_EVERY_FRAGMENT:
            continue
        required.add(block.number)
        for target in read_targets(block.data) or ():
            if target not in (0, 1):
                required.add(target)
    return frozenset(required)
