"""BPSec processing of a whole bundle: the security acceptor and verifier (RFC 9172 §5.1) and the
security source (adding BIB and BCB operations).

:func:`process_security` is what a node calls with a decoded bundle, its keys and its policy
decision: it decrypts what it can (BCBs first, RFC 9172 §5.1.1), verifies what it can (BIBs,
§5.1.2), returns one :class:`OperationResult` per security operation with its outcome and, for a
failure, the RFC 9172 status report reason code, and -- for the operations the caller accepts --
the bundle with those operations removed and their targets decrypted. It never raises for what
the bundle contains.

:func:`add_integrity` and :func:`add_confidentiality` add a BIB or BCB with a context from
:mod:`bpv7.bpsec.rfc9173` or :mod:`bpv7.bpsec.cose`, after checking RFC 9172's rules for adding
one (§3.2, §3.7-§3.9, §5.2).
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..blocks import (
    VIEW_THRESHOLD,
    CanonicalBlock,
    block_head,
    block_tail,
    cached_block_flags,
    tail_length,
    unchecked_block,
)
from ..bundle import Bundle, next_block_number
from ..codes import BlockFlags, BlockType
from ..crc import CRCType
from ..eid import EndpointID, parse_eid
from ..errors import DecodeError, EncodeError
from ..security_blocks import (
    AbstractSecurityBlock,
    encode_security_items,
    read_targets,
)
from .context import (
    AcceptorContext,
    ConfidentialitySource,
    InPlaceEncryption,
    IntegritySource,
    OperationFailure,
    OperationView,
    Outcome,
    SecurityReason,
    SourceBlock,
)
from .cose import CoseContext
from .fragments import check_securable
from .keys import KeyStore
from .rfc9173 import Rfc9173Context

__all__ = [
    "CONTEXTS",
    "OperationResult",
    "SecurityProcessing",
    "add_confidentiality",
    "add_integrity",
    "process_security",
]

logger = logging.getLogger(__name__)

CONTEXTS: dict[int, AcceptorContext] = {
    1: Rfc9173Context(1),
    2: Rfc9173Context(2),
    3: CoseContext(),
}
"""The security contexts this codec verifies and decrypts, by context id."""

_SUCCESS = frozenset({Outcome.VERIFIED, Outcome.DECRYPTED})
_SECURITY_BLOCKS = frozenset({BlockType.BIB, BlockType.BCB})
_NOT_HERE = (
    "this fragment does not carry the whole target; it is checked after reassembly (RFC 9172 §5.2)"
)


@dataclass(frozen=True, slots=True)
class OperationResult:
    """The outcome of one security operation (one target of one BIB or BCB)."""

    security_block: int
    """Block number of the BIB or BCB."""
    block_type: BlockType
    """:attr:`BlockType.BIB` (integrity) or :attr:`BlockType.BCB` (confidentiality)."""
    target: int
    """Block number of the target (0: the primary block)."""
    context_id: int
    """Security context id."""
    source: EndpointID
    """Security source."""
    outcome: Outcome
    """What became of it here."""
    reason: str = ""
    """For an outcome other than verified/decrypted: one line saying why."""
    signer: str | None = None
    """For a signature verified through the signer's certificate chain (COSE x5chain, RFC
    9360): who the certificate names (its id-on-bundleEID, URI or common name)."""

    @property
    def succeeded(self) -> bool:
        """Verified or decrypted."""
        return self.outcome in _SUCCESS

    @property
    def status_reason(self) -> SecurityReason | None:
        """The RFC 9172 §11.2 status report reason for a failed or unknown operation."""
        if self.outcome == Outcome.FAILED:
            return SecurityReason.FAILED_SECURITY_OPERATION
        if self.outcome == Outcome.UNSUPPORTED:
            return SecurityReason.UNKNOWN_SECURITY_OPERATION
        return None

    def describe(self) -> str:
        """One line naming the security block and the target, e.g. ``BIB 2 (context 1,
        source ipn:2.1), target 1: failed: the HMAC does not match``."""
        kind = "BIB" if self.block_type == BlockType.BIB else "BCB"
        target = "the primary block" if self.target == 0 else f"block {self.target}"
        text = (
            f"{kind} {self.security_block} (context {int(self.context_id)}, source "
            f"{self.source}), target {target}: {self.outcome}"
        )
        if self.signer is not None:
            text += f" (signed by {self.signer})"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass(frozen=True, slots=True)
class SecurityProcessing:
    """What :func:`process_security` found and did."""

    operations: tuple[OperationResult, ...]
    """One result per security operation that could be read, BCBs first."""
    bundle: Bundle
    """The bundle after acceptance: accepted operations removed (their targets decrypted,
    emptied security blocks removed); the input bundle when nothing was accepted."""
    plaintext: dict[int, CanonicalBlock]
    """``{block number: decrypted block}`` for every target decrypted here, accepted or not."""
    unreadable: tuple[int, ...] = ()
    """Numbers of BIBs that stay encrypted (their operations could not be listed)."""

    @property
    def failures(self) -> tuple[OperationResult, ...]:
        """The operations whose outcome is failed or unsupported."""
        return tuple(op for op in self.operations if op.status_reason is not None)

    @property
    def status_reason(self) -> SecurityReason | None:
        """The reason code to report when the bundle is discarded for its security (the first
        failure's), or ``None``."""
        failures = self.failures
        return failures[0].status_reason if failures else None


Policy = Callable[[OperationResult], bool]
"""Decides, for an operation that succeeded, whether this node is its security acceptor (the
operation is then removed from the bundle, RFC 9172 §5.1)."""


def _accept_all(_: OperationResult) -> bool:
    return True


def _accept_none(_: OperationResult) -> bool:
    return False


def process_security(
    bundle: Bundle, keys: KeyStore, *, accept: bool | Policy = False
) -> SecurityProcessing:
    """Verify and decrypt every security operation of ``bundle`` that ``keys`` allow; with
    ``accept`` (``True`` or a :data:`Policy`), act as the security acceptor of the operations
    that succeeded and remove them. Never raises for the bundle's contents."""
    policy: Policy = (
        (_accept_all if accept else _accept_none) if isinstance(accept, bool) else accept
    )
    primary = bundle.primary
    original = bundle.blocks
    current = list(original)
    index_of = {block.number: i for i, block in enumerate(current)}
    results: list[OperationResult] = []
    plaintext: dict[int, CanonicalBlock] = {}
    asbs: dict[int, AbstractSecurityBlock] = {}
    still_encrypted: dict[int, int] = {}
    is_fragment = bundle.is_fragment

    # RFC 9172 §5.1.1: confidentiality first; a decrypted BIB can then be verified.
    for bcb in original:
        if bcb.type_code != BlockType.BCB:
            continue
        asb = AbstractSecurityBlock.decode(bcb.data)  # the decoder has checked it
        asbs[bcb.number] = asb
        context = CONTEXTS.get(asb.context_id)
        for target in asb.targets:
            outcome, reason = Outcome.DECRYPTED, ""
            if is_fragment or target not in index_of:
                outcome, reason = Outcome.SKIPPED, _NOT_HERE
            elif context is None:
                outcome, reason = Outcome.UNSUPPORTED, f"unknown security context {asb.context_id}"
            else:
                view = OperationView(primary, tuple(current), bcb, asb, target)
                try:
                    data = context.decrypt(view, keys)
                    old = current[index_of[target]]
                    if old.type_code == BlockType.PAYLOAD and type(data) is bytes:
                        # Payload data obeys no rule of its own, and the block's type, number,
                        # flags and CRC type are the valid input's: nothing to check again.
                        block = unchecked_block(
                            old.type_code, old.number, old.flags, old.crc_type, data
                        )
                    else:
                        block = CanonicalBlock(
                            old.type_code, old.number, old.flags, old.crc_type, data
                        )
                    current[index_of[target]] = block
                    plaintext[target] = block
                except OperationFailure as failure:
                    outcome, reason = failure.outcome, failure.reason
                except EncodeError as exc:
                    outcome, reason = Outcome.FAILED, f"the decrypted data is invalid: {exc}"
            if outcome != Outcome.DECRYPTED:
                still_encrypted[target] = bcb.number
            results.append(
                OperationResult(
                    bcb.number, BlockType.BCB, target, asb.context_id, asb.source, outcome, reason
                )
            )

    unreadable = []
    for bib in current:
        if bib.type_code != BlockType.BIB:
            continue
        if bib.number in still_encrypted:
            unreadable.append(bib.number)
            continue
        try:
            asb = AbstractSecurityBlock.decode(bib.data)
        except DecodeError as exc:  # only possible for a BIB just decrypted
            results.append(
                OperationResult(
                    bib.number,
                    BlockType.BIB,
                    0,
                    0,
                    primary.source,
                    Outcome.FAILED,
                    f"the decrypted BIB is malformed: {exc}",
                )
            )
            continue
        asbs[bib.number] = asb
        context = CONTEXTS.get(asb.context_id)
        for target in asb.targets:
            outcome, reason, signer = Outcome.VERIFIED, "", None
            if target in still_encrypted:
                outcome = Outcome.SKIPPED
                reason = f"the target is encrypted by BCB {still_encrypted[target]}"
            elif is_fragment or (target != 0 and target not in index_of):
                outcome, reason = Outcome.SKIPPED, _NOT_HERE
            elif context is None:
                outcome, reason = Outcome.UNSUPPORTED, f"unknown security context {asb.context_id}"
            else:
                view = OperationView(primary, tuple(current), bib, asb, target)
                try:
                    signer = context.verify(view, keys)
                except OperationFailure as failure:
                    outcome, reason = failure.outcome, failure.reason
            results.append(
                OperationResult(
                    bib.number,
                    BlockType.BIB,
                    target,
                    asb.context_id,
                    asb.source,
                    outcome,
                    reason,
                    signer,
                )
            )

    accepted = [op for op in results if op.outcome in _SUCCESS and policy(op)]
    output = bundle
    if len(accepted) == len(results) and accepted and not unreadable:
        # Every operation accepted: every security block goes (the common case, made short).
        output = _without_security(bundle, current)
    elif accepted:
        output = _accepted_bundle(bundle, current, asbs, accepted)
    if len(accepted) != len(results):
        for op in results:
            if not op.succeeded:
                logger.info("BPSec: %s", op.describe())
    return SecurityProcessing(tuple(results), output, plaintext, tuple(unreadable))


def _without_security(bundle: Bundle, current: list[CanonicalBlock]) -> Bundle:
    """``bundle`` once every one of its security operations was accepted: its blocks as
    decrypted (``current``) less the security blocks, which all go (RFC 9172 §5.1.1, §5.1.2);
    :func:`_accepted_bundle`'s result for that case."""
    blocks = tuple(block for block in current if block.type_code not in _SECURITY_BLOCKS)
    primary = bundle.primary
    if primary.crc_type == CRCType.NONE and "primary-crc-missing" not in bundle.waived:
        # RFC 9171 §4.3.1: no BIB covers the primary block any more: it needs a CRC.
        primary = dataclasses.replace(primary, crc_type=CRCType.CRC32C)
    # No security block is left and each decrypted target was checked as it was made; the
    # other rules of a bundle read the blocks' type codes, numbers and flags, which are those
    # of the valid input bundle, and the primary block's CRC, seen to above.
    return Bundle._trusted(primary, blocks, bundle.waived)


def _accepted_bundle(
    bundle: Bundle,
    current: list[CanonicalBlock],
    asbs: dict[int, AbstractSecurityBlock],
    accepted: list[OperationResult],
) -> Bundle:
    """``bundle`` with the ``accepted`` operations removed (RFC 9172 §5.1.1: the acceptor "MUST
    process those operations and remove any operation-specific information from the BCB";
    "When all security operations for a BCB have been removed from the BCB, the BCB MUST be
    removed from the bundle"; §5.1.2 likewise for BIBs)."""
    decrypted = {op.target for op in accepted if op.block_type == BlockType.BCB}
    removed: dict[int, set[int]] = {}
    for op in accepted:
        removed.setdefault(op.security_block, set()).add(op.target)
    blocks: list[CanonicalBlock] = []
    for original, now in zip(bundle.blocks, current, strict=True):
        number = original.number
        if number in removed and number in asbs:
            if (
                original.type_code == BlockType.BIB
                and original.data != now.data
                and number not in decrypted
            ):
                # The BIB was decrypted here but its BCB operation is not accepted: it stays
                # encrypted, and so do its operations.
                blocks.append(original)
                continue
            asb = asbs[number]
            keep = [i for i, t in enumerate(asb.targets) if t not in removed[number]]
            if not keep:
                continue
            smaller = dataclasses.replace(
                asb,
                targets=tuple(asb.targets[i] for i in keep),
                results=tuple(asb.results[i] for i in keep),
            )
            blocks.append(
                CanonicalBlock(
                    original.type_code,
                    number,
                    original.flags,
                    original.crc_type,
                    smaller.encode(),
                )
            )
        elif number in decrypted:
            blocks.append(now)
        else:
            blocks.append(original)
    primary = bundle.primary
    secured = any(b.type_code in _SECURITY_BLOCKS for b in blocks)
    if (
        primary.crc_type == CRCType.NONE
        and "primary-crc-missing" not in bundle.waived
        and not (
            secured
            and any(
                b.type_code == BlockType.BIB and 0 in (read_targets(b.data) or ()) for b in blocks
            )
        )
    ):
        # RFC 9171 §4.3.1: unless a BIB covers it, the primary block's CRC type "MUST be
        # non-zero": the BIB that covered it is gone, so it gets a CRC-32C.
        primary = dataclasses.replace(primary, crc_type=CRCType.CRC32C)
    if not secured:
        # Every security block is gone and each decrypted target was checked as it was made;
        # the other rules of a bundle read the blocks' type codes, numbers and flags, which
        # are those of the valid input bundle, and the primary block's CRC, seen to above.
        return Bundle._trusted(primary, tuple(blocks), bundle.waived)
    return Bundle(primary, tuple(blocks), bundle.waived)


# ---------------------------------------------------------------------------------------------
# The security source


def _source_error(message: str, rule: str, section: str) -> EncodeError:
    return EncodeError(message, rule=rule, section=section, rfc=9172)


def _existing_operations(bundle: Bundle) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """``(BIB targets, BCB targets, encrypted BIBs)`` as ``{target: security block}`` maps, from
    the readable security blocks."""
    bib_targets: dict[int, int] = {}
    bcb_targets: dict[int, int] = {}
    if not bundle.has_security_blocks:
        return bib_targets, bcb_targets, {}
    for block in bundle.blocks:
        if block.type_code not in (BlockType.BIB, BlockType.BCB):
            continue
        service = bib_targets if block.type_code == BlockType.BIB else bcb_targets
        for target in read_targets(block.data) or ():
            service.setdefault(target, block.number)
    encrypted = bundle.encrypted_blocks
    # An encrypted BIB's "targets" above were read from ciphertext: drop them.
    for target, number in list(bib_targets.items()):
        if number in encrypted:
            del bib_targets[target]
    return bib_targets, bcb_targets, encrypted


def _check_targets(bundle: Bundle, targets: Sequence[int]) -> None:
    check_securable(bundle)
    if not targets:
        raise _source_error("a security block needs at least one target", "asb-no-targets", "3.6")
    if len(set(targets)) != len(targets):
        raise _source_error(
            f"a target is listed twice in {list(targets)}", "asb-duplicate-target", "3.6"
        )
    for target in targets:
        if target != 0 and bundle.block_by_number(target) is None:
            raise _source_error(
                f"the bundle has no block {target}", "security-target-missing", "3.6"
            )


def _placed(bundle: Bundle, block: CanonicalBlock) -> list[CanonicalBlock]:
    """The blocks with the new security block placed: a BIB first, a BCB after the security
    blocks at the front (the order of RFC 9173 Appendix A's examples)."""
    blocks = list(bundle.blocks)
    position = 0
    if block.type_code == BlockType.BCB:
        while position < len(blocks) and blocks[position].type_code in (
            BlockType.BIB,
            BlockType.BCB,
        ):
            position += 1
    blocks.insert(position, block)
    return blocks


def _encrypted_in_place(
    bundle: Bundle,
    targets: Sequence[int],
    context_id: int,
    header: SourceBlock,
    crc_type: CRCType,
    plan: InPlaceEncryption,
    *,
    check: bool,
) -> Bundle:
    """:func:`add_confidentiality` of a large payload, encrypted straight into the encoded
    bundle: one buffer of the bundle's size, the bytes before the payload's ciphertext written
    first (with room of the BCB's size where it goes: its data with placeholder results of the
    right size), then the ciphertext at its place, then the BCB written there with the
    payload's result patched in (the results of each target end the BCB's data). The
    returned bundle's payload data is a view of those bytes, and :meth:`Bundle.encode` returns
    them. (A ciphertext of its own and then the encoding would be two such buffers: as costly
    as the cipher itself, the allocator handing fresh pages each time.) ``check``: validate
    the finished bundle (skipped when nothing the caller chose could break a rule: the input
    bundle was valid and the BCB was checked by :func:`add_confidentiality`)."""
    results = list(plan.result_sizes)
    small: dict[int, bytes] = {}
    for index, target in enumerate(targets):
        block = bundle.block_by_number(target)
        if target == 1 or block is None:
            continue
        length = len(block.data_view)
        scratch = bytearray(length + plan.spare)
        results[index] = plan.encrypt(block, memoryview(scratch))
        small[target] = bytes(scratch[:length])
    flags = cached_block_flags(header.flags)
    asb = AbstractSecurityBlock(
        tuple(targets), context_id, header.source, plan.parameters, tuple(results)
    )
    bcb_data = asb.encode()
    # The BCB is laid out with its placeholder results and a zeroed CRC field: both are
    # written once the cipher has run (no CanonicalBlock of the placeholder is made).
    bcb_head = block_head(BlockType.BCB, header.number, flags, crc_type, len(bcb_data))
    bcb_size = len(bcb_head) + len(bcb_data) + tail_length(crc_type)
    primary_bytes = bundle.primary.encode()
    parts: list[bytes | memoryview] = [b"\x9f", primary_bytes]
    offset = 1 + len(primary_bytes)
    front: list[CanonicalBlock] = []
    bcb_at = position = -1
    for block in bundle.blocks[:-1]:
        if position < 0 and block.type_code not in _SECURITY_BLOCKS:
            # The BCB goes after the security blocks at the front (see _placed).
            bcb_at, position = offset, len(front)
            parts.append(bytes(bcb_size))
            offset += bcb_size
        data = small.get(block.number)
        if data is not None:
            # RFC 9172 §3.8: "the security target body data SHALL be encrypted 'in-place'".
            block = CanonicalBlock.opaque(
                block.type_code, block.number, block.flags, block.crc_type, data
            )
        front.append(block)
        encoded = block.encode()
        parts.append(encoded)
        offset += len(encoded)
    if position < 0:
        bcb_at, position = offset, len(front)
        parts.append(bytes(bcb_size))
    payload = bundle.blocks[-1]
    length = len(payload.data_view)
    head = block_head(BlockType.PAYLOAD, 1, payload.flags, payload.crc_type, length)
    parts.append(head)
    prefix = b"".join(parts)
    start = len(prefix)
    end = start + length
    total = end + tail_length(payload.crc_type) + 1
    # Where the payload's results lie in the BCB's data: the results of each target end it.
    index = list(targets).index(1)
    placeholder = encode_security_items(results[index])
    after = 0
    for items in results[index + 1 :]:
        after += len(encode_security_items(items))
    cut = len(bcb_data) - after
    stream = io.BytesIO()
    stream.write(prefix)
    stream.seek(total + plan.spare - 1)
    stream.write(b"\x00")
    with stream.getbuffer() as out:
        results[index] = plan.encrypt(payload, out[start : end + plan.spare])
        real = encode_security_items(results[index])
        if len(real) != len(placeholder):  # a context's bug
            raise EncodeError(
                "the BCB's results changed size while encrypting",
                rule="bcb-result-size",
                section="3.8",
                rfc=9172,
            )
        data = bcb_data[: cut - len(real)] + real + bcb_data[cut:]
        bcb_tail = block_tail(crc_type, bcb_head, data)
        out[bcb_at : bcb_at + bcb_size] = bcb_head + data + bcb_tail
        with out[start:end] as ciphertext:
            tail = block_tail(payload.crc_type, head, ciphertext)
        out[end:total] = tail + b"\xff"
    stream.truncate(total)
    # With no view left and the size exact, BytesIO hands over its buffer: no copy.
    encoded = stream.getvalue()
    front.insert(
        position,
        CanonicalBlock._encoded(
            BlockType.BCB, header.number, flags, crc_type, data, bcb_head, bcb_tail
        ),
    )
    encrypted = CanonicalBlock._encoded(
        BlockType.PAYLOAD,
        1,
        payload.flags,
        payload.crc_type,
        memoryview(encoded)[start:end],
        head,
        tail,
    )
    blocks = (*front, encrypted)
    if check:
        return Bundle._with_encoding(bundle.primary, blocks, bundle.waived, encoded)
    return Bundle._trusted(bundle.primary, blocks, bundle.waived, encoded)


def _without_target_crcs(bundle: Bundle, targets: Sequence[int]) -> Bundle:
    """``bundle`` with the CRC of each of ``targets`` removed, for a context of RFC 9173: §3.8.1
    (BIB-HMAC-SHA2) "Prior to the generation of the IPPT, if a Cyclic Redundancy Check (CRC)
    value is present for the target block of the BIB, then that CRC value MUST be removed from
    the target block. This involves both removing the CRC value from the target block and
    setting the CRC type field of the target block to 'no CRC is present.'"; §4.8.1
    (BCB-AES-GCM) the same "Prior to encryption".

    The primary block is a target like any other (RFC 9171 §4.3.1 lets its CRC type be zero
    when a BIB targets it), with one exception: when the bundle already carries security
    blocks, they may bind the primary block as it is (RFC 9173 §3.3.3, §4.3.4 scope flag bit
    0; the COSE context's AAD scope), and removing its CRC would break them -- so it keeps its
    CRC, which RFC 9171 §4.3.1 allows ("a CRC MAY be present in the primary block").

    Not re-validated: only CRC types change, which no bundle rule reads but the primary
    block's, and the caller checks the finished bundle."""
    chosen = set(targets)
    primary = bundle.primary
    if 0 in chosen and primary.crc_type != CRCType.NONE and not bundle.has_security_blocks:
        primary = dataclasses.replace(primary, crc_type=CRCType.NONE)
    blocks = list(bundle.blocks)
    changed = primary is not bundle.primary
    for index, block in enumerate(blocks):
        if block.crc_type and block.number in chosen:
            blocks[index] = CanonicalBlock.opaque(
                block.type_code, block.number, block.flags, CRCType.NONE, block.data_view
            )
            changed = True
    if not changed:
        return bundle
    return Bundle._trusted(primary, tuple(blocks), bundle.waived)


_CRC_TYPES = {int(crc_type): crc_type for crc_type in CRCType}


def _crc_type(value: int) -> CRCType:
    """``CRCType(value)`` (a ``ValueError`` for an invalid one) without the enum's call, which
    costs more than the rest of a small security block's encoding."""
    crc_type = _CRC_TYPES.get(value)
    return CRCType(value) if crc_type is None else crc_type


def _source_eid(source: EndpointID | str) -> EndpointID:
    return parse_eid(source) if isinstance(source, str) else source


def add_integrity(
    bundle: Bundle,
    targets: Sequence[int],
    context: IntegritySource,
    *,
    source: EndpointID | str,
    block_number: int | None = None,
    flags: int = 0,
    crc_type: int = CRCType.NONE,
) -> Bundle:
    """``bundle`` with a new BIB over ``targets`` (block numbers, 0 for the primary block) made
    by ``context`` on behalf of the security source ``source``. Raises
    :class:`~bpv7.errors.EncodeError` naming the rule of RFC 9172 that forbids it."""
    _check_targets(bundle, targets)
    bib_targets, bcb_targets, _ = _existing_operations(bundle)
    for target in targets:
        block = bundle.block_by_number(target) if target else None
        if block is not None and block.type_code in (BlockType.BIB, BlockType.BCB):
            # RFC 9172 §3.7: BIB targets "MUST NOT reference a security block".
            raise _source_error(
                f"a BIB cannot target security block {target}", "bib-targets-security-block", "3.7"
            )
        if target in bib_targets:
            raise _source_error(
                f"block {target} already has an integrity operation (BIB {bib_targets[target]})",
                "security-operation-duplicate",
                "3.2",
            )
        if target in bcb_targets:
            # RFC 9172 §3.9: "A BIB MUST NOT be added for a security target that is already the
            # security target of a BCB."
            raise _source_error(
                f"block {target} is encrypted by BCB {bcb_targets[target]}",
                "bib-after-bcb",
                "3.9",
            )
    if context.removes_target_crc:
        bundle = _without_target_crcs(bundle, targets)
    number = next_block_number(bundle) if block_number is None else block_number
    header = SourceBlock(BlockType.BIB, number, flags, _source_eid(source))
    parameters, results = context.sign(bundle, header, targets)
    asb = AbstractSecurityBlock(
        tuple(targets),
        context.context_id,
        header.source,
        parameters,
        tuple(results),
    )
    bib = CanonicalBlock(
        BlockType.BIB, number, cached_block_flags(flags), _crc_type(crc_type), asb.encode()
    )
    return Bundle(bundle.primary, tuple(_placed(bundle, bib)), bundle.waived)


def add_confidentiality(
    bundle: Bundle,
    targets: Sequence[int],
    context: ConfidentialitySource,
    *,
    source: EndpointID | str,
    block_number: int | None = None,
    flags: int | None = None,
    crc_type: int = CRCType.NONE,
) -> Bundle:
    """``bundle`` with a new BCB over ``targets`` made by ``context`` on behalf of ``source``;
    the targets' data is replaced by ciphertext. ``flags`` default to "replicate in every
    fragment" when the payload is a target (RFC 9172 §3.8 requires it), else 0. Raises
    :class:`~bpv7.errors.EncodeError` naming the rule of RFC 9172 that forbids it."""
    _check_targets(bundle, targets)
    bib_targets, bcb_targets, encrypted = _existing_operations(bundle)
    chosen = set(targets)
    for target in targets:
        if target == 0:
            raise _source_error(
                "a BCB cannot target the primary block", "bcb-targets-primary", "3.8"
            )
        block = bundle.block_by_number(target)
        assert block is not None
        if block.type_code == BlockType.BCB:
            raise _source_error(f"a BCB cannot target BCB {target}", "bcb-targets-bcb", "3.8")
        if target in bcb_targets:
            raise _source_error(
                f"block {target} is already encrypted (BCB {bcb_targets[target]})",
                "security-operation-duplicate",
                "3.2",
            )
        if block.type_code == BlockType.BIB:
            covered = set(read_targets(block.data) or ())
            if not covered & chosen:
                # RFC 9172 §3.8: "A BCB MUST NOT target a BIB unless it shares a security target
                # with that BIB."
                raise _source_error(
                    f"BIB {target} shares no target with this BCB",
                    "bcb-targets-unshared-bib",
                    "3.8",
                )
    bibs: dict[int, set[int]] = {}
    for target, bib in bib_targets.items():
        bibs.setdefault(bib, set()).add(target)
    for bib, covered in bibs.items():
        if covered & chosen and bib not in chosen:
            # RFC 9172 §3.9: "if some (or all) of the security targets of the BCB match all of
            # the security targets of an existing BIB, then the existing BIB MUST also be
            # encrypted" (a partial match needs the BIB split first, which needs its key).
            raise _source_error(
                f"BIB {bib} protects a target of this BCB and must be encrypted with it "
                f"(add {bib} to the targets)",
                "bib-not-encrypted-with-target",
                "3.9",
            )
        if bib in chosen and not covered <= chosen:
            raise _source_error(
                f"BIB {bib} also covers blocks {sorted(covered - chosen)} that this BCB does not "
                "encrypt; split it first",
                "bib-partial-overlap",
                "3.9",
            )
    del encrypted
    # With the block number and flags chosen here, no rule the finished bundle is checked for
    # can break: the input bundle was valid and the rules for the BCB were checked above.
    check = flags is not None or block_number is not None
    if flags is None:
        flags = BlockFlags.REPLICATE_IN_EVERY_FRAGMENT if 1 in chosen else 0
    if context.removes_target_crc:
        bundle = _without_target_crcs(bundle, targets)
    number = next_block_number(bundle) if block_number is None else block_number
    header = SourceBlock(BlockType.BCB, number, int(flags), _source_eid(source))
    if 1 in chosen and len(bundle.blocks[-1].data_view) >= VIEW_THRESHOLD:
        plan = context.in_place(bundle, header, targets)
        if plan is not None:
            return _encrypted_in_place(
                bundle, targets, context.context_id, header, _crc_type(crc_type), plan, check=check
            )
    parameters, results, ciphertexts = context.encrypt(bundle, header, targets)
    asb = AbstractSecurityBlock(
        tuple(targets),
        context.context_id,
        header.source,
        parameters,
        tuple(results),
    )
    bcb = CanonicalBlock(
        BlockType.BCB, number, cached_block_flags(int(flags)), _crc_type(crc_type), asb.encode()
    )
    replaced = dict(zip(targets, ciphertexts, strict=True))
    blocks = []
    for block in _placed(bundle, bcb):
        data = replaced.get(block.number)
        if data is None or block is bcb:
            blocks.append(block)
        else:
            # RFC 9172 §3.8: "the security target body data SHALL be encrypted 'in-place'".
            blocks.append(
                CanonicalBlock.opaque(
                    block.type_code, block.number, block.flags, block.crc_type, data
                )
            )
    return Bundle(bundle.primary, tuple(blocks), bundle.waived)
