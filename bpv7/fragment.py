"""Bundle fragmentation (RFC 9171 §5.8) and application data unit reassembly (§5.9).

Theory of operation
-------------------
:func:`fragment_bundle` splits a bundle so that every fragment's *encoded* size (all of its
bytes, as a convergence layer sends them) is at most ``max_size``: the payload is cut into
consecutive pieces, each as long as the fragment's other bytes allow. :func:`fragment_at` cuts
at offsets the caller chooses (e.g. after the bytes a partial transfer delivered). Following
§5.8, every fragment gets a new primary block (the "bundle is a fragment" flag, fragment offset
and total ADU length, a new CRC); the first fragment carries every extension block; the others
carry the blocks whose "block must be replicated in every fragment" flag is set. Fragmenting a
fragment keeps offsets relative to the original ADU and keeps its total ADU length.

:class:`FragmentCollector` reassembles ADUs. Fragments are grouped by the identity of the
original bundle (source node ID and creation timestamp: a :class:`~bpv7.bundle.BundleID`
without fragment fields) and may arrive in any order, duplicated or overlapping (fragments made
in different fragmentation episodes overlap, §5.8); overlapping bytes must agree. Each partial
ADU is a sorted set of disjoint byte extents holding only the bytes received, so memory grows
with the data that arrived, never with a length a fragment claims; ``max_adu_size``,
``max_buffered_bytes`` and ``max_pending`` bound what a peer can make us hold. When the extents
cover ``[0, total)`` the collector returns the reassembled bundle: the primary block and
extension blocks of the fragment at offset 0, with the whole ADU as payload. Time is an
argument: ``add(..., now_dtn_ms=...)`` and :meth:`FragmentCollector.expire` drop partial ADUs
whose bundle lifetime has ended.

Reactive fragmentation (§5.8 at a convergence-layer cut): when a transfer ends after its first
``L`` octets, the receiver may keep what it holds as a fragment and the sender replace its bundle
by a fragment holding the rest. Both derive the cut from the length alone.
:func:`read_bundle_head` reads the primary block, the extension blocks (CRCs verified) and the
payload block's header from the first octets of an encoded bundle; :func:`reactive_cut` is the
payload offset a cut after ``L`` octets gives: the payload bytes wholly inside them, at most one
less than the whole payload (a fragment's payload is a proper part, §5.8), 0 when no fragment
can be made. The receiver keeps payload ``[0, reactive_cut(L_recv))`` (:func:`fragment_of`) and
the sender sends ``[reactive_cut(L_send), end)`` (:func:`fragment_at`); since the sender never
saw more acknowledged than the receiver held (``L_send <= L_recv``) the two overlap and never
leave a gap, and the collector accepts the overlap.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ._cbor import INDEFINITE, MAJOR_BYTES, encode_uint, read_array, read_head, read_uint
from .blocks import CanonicalBlock, cached_block_flags, decode_canonical
from .bundle import Bundle, BundleID, bundle_violation
from .codes import BlockFlags, BlockType, BundleFlags
from .crc import CRC_LENGTH, CRCType
from .errors import BlockError, BundleValidationError, CBORError, DecodeError, EncodeError
from .primary import PrimaryBlock, decode_primary, read_crc_type
from .security_blocks import replicated_security_block_numbers

__all__ = [
    "BundleHead",
    "DEFAULT_MAX_ADU_SIZE",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_PENDING",
    "FragmentCollector",
    "FragmentationError",
    "ReassemblyError",
    "ReassemblyProgress",
    "ReassemblyStatistics",
    "fragment_at",
    "fragment_bundle",
    "fragment_of",
    "reactive_cut",
    "read_bundle_head",
    "reassembly_key",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ADU_SIZE = 1 << 30
"""Default bound on the total ADU length a collector accepts (1 GiB)."""
DEFAULT_MAX_BUFFERED_BYTES = 1 << 30
"""Default bound on the payload bytes held by all partial ADUs of a collector (1 GiB)."""
DEFAULT_MAX_PENDING = 10_000
"""Default bound on the number of partial ADUs a collector holds."""

_IS_FRAGMENT = int(BundleFlags.IS_FRAGMENT)


class FragmentationError(EncodeError):
    """The bundle cannot be fragmented as asked: it must not be fragmented, or the size limit
    leaves no room for payload bytes."""


class ReassemblyError(DecodeError):
    """A fragment cannot be added: it disagrees with fragments already held (total ADU length,
    overlapping bytes) or exceeds the collector's limits. The fragment is not kept."""


# ---------------------------------------------------------------------------------------------
# Fragmentation (RFC 9171 §5.8)


def _may_fragment(bundle: Bundle) -> None:
    _may_fragment_primary(bundle.primary)


def _replicated(
    primary: PrimaryBlock, extensions: tuple[CanonicalBlock, ...]
) -> tuple[CanonicalBlock, ...]:
    """The extension blocks that go into every fragment, not just the first."""
    zero_time = primary.creation.time_ms == 0
    # RFC 9172 §3.9 / §5: a security operation's results must stay verifiable wherever its
    # block travels, so a replicated BIB or BCB takes its targets into every fragment too.
    security = replicated_security_block_numbers(extensions)
    return tuple(
        block
        for block in extensions
        # RFC 9171 §5.8: "Each of the fragmented bundle's extension blocks whose 'Block must be
        # replicated in every fragment' flag is set to 1 MUST be replicated in every fragment."
        if block.flags & BlockFlags.REPLICATE_IN_EVERY_FRAGMENT
        # RFC 9171 §4.4.2: "If the bundle's creation time is zero, then the bundle MUST contain
        # exactly one (1) occurrence of this type of block" -- every fragment is a bundle.
        or (zero_time and block.type_code == BlockType.BUNDLE_AGE)
        or block.number in security
    )


def _fragment_primary(
    primary: PrimaryBlock,
    all_extensions: tuple[CanonicalBlock, ...],
    payload_length: int,
    offset: int,
    extensions: tuple[CanonicalBlock, ...],
) -> PrimaryBlock:
    """The primary block of the fragment holding payload bytes from ``offset`` (relative to the
    fragmented bundle's payload of ``payload_length`` bytes) with ``extensions``."""
    crc_type = primary.crc_type
    if crc_type == CRCType.NONE and not all(
        block in extensions for block in all_extensions if block.type_code == BlockType.BIB
    ):
        # RFC 9171 §4.3.1: "The CRC type code for the primary block MAY be zero if the bundle
        # contains a BPSec Block Integrity Block [BPSEC] whose target is the primary block;
        # otherwise, the CRC type code for the primary block MUST be non-zero." A fragment
        # without the original's BIBs gets a CRC-32C.
        crc_type = CRCType.CRC32C
    base = primary.fragment_offset or 0
    total = primary.total_adu_length
    if total is None:
        total = payload_length
    # RFC 9171 §5.8: "the bundle processing control flags of the fragment MUST indicate that
    # the bundle is a fragment and both fragment offset and total application data unit length
    # must be provided. Additionally, the CRC of the primary block of the fragmented bundle, if
    # any, MUST be replaced in each fragment by a new CRC" -- a new PrimaryBlock encodes afresh.
    return PrimaryBlock(
        BundleFlags(int(primary.flags) | _IS_FRAGMENT),
        crc_type,
        primary.destination,
        primary.source,
        primary.report_to,
        primary.creation,
        primary.lifetime_ms,
        base + offset,
        total,
    )


def _make_fragment(
    bundle: Bundle,
    primary: PrimaryBlock,
    extensions: tuple[CanonicalBlock, ...],
    start: int,
    end: int,
) -> Bundle:
    payload = bundle.payload_block
    piece = CanonicalBlock(
        BlockType.PAYLOAD, 1, payload.flags, payload.crc_type, payload.data[start:end]
    )
    return Bundle(primary, (*extensions, piece))


def _may_fragment_primary(primary: PrimaryBlock) -> None:
    # RFC 9171 §5.8: "Any bundle whose primary block's bundle processing flags do NOT indicate
    # that it must not be fragmented MAY be fragmented at any time".
    if primary.flags & BundleFlags.MUST_NOT_FRAGMENT:
        raise FragmentationError(
            "the bundle's 'must not be fragmented' flag is set",
            rule="must-not-fragment",
            section="5.8",
        )


def fragment_at(bundle: Bundle, offsets: Iterable[int]) -> list[Bundle]:
    """Fragment ``bundle`` at the given payload offsets (relative to this bundle's payload,
    strictly increasing, each in ``1 .. len(payload) - 1``), giving ``len(offsets) + 1``
    fragments. No offsets gives ``[bundle]``. Raises :class:`FragmentationError` when the bundle
    must not be fragmented and :class:`~bpv7.errors.EncodeError` for bad offsets."""
    cuts = list(offsets)
    if not cuts:
        return [bundle]
    _may_fragment(bundle)
    length = len(bundle.payload)
    bounds = [0, *cuts, length]
    for before, after in itertools.pairwise(bounds):
        # RFC 9171 §5.8: fragments' "payloads are the first N and the last (M - N) bytes of the
        # original bundle's payload, where 0 < N < M".
        if type(after) is not int or after <= before:
            raise EncodeError(
                f"fragment offsets {cuts!r:.80} must increase strictly within (0, {length})",
                rule="fragment-offsets",
                section="5.8",
            )
    all_extensions = bundle.blocks[:-1]
    every = _replicated(bundle.primary, all_extensions)
    fragments = []
    for start, end in itertools.pairwise(bounds):
        # RFC 9171 §5.8: "If the fragmented bundle is not a fragment or is the fragment with
        # offset zero, then all extension blocks of the fragmented bundle MUST be replicated in
        # the fragment whose offset is zero." (A later fragment being re-fragmented has no
        # fragment at offset zero; its blocks go into its first piece.)
        extensions = all_extensions if start == 0 else every
        primary = _fragment_primary(bundle.primary, all_extensions, length, start, extensions)
        fragments.append(_make_fragment(bundle, primary, extensions, start, end))
    return fragments


_HEAD_TIERS = (
    (0, 23, 1),
    (24, 0xFF, 2),
    (0x100, 0xFFFF, 3),
    (0x10000, 0xFFFFFFFF, 5),
    (0x100000000, 0xFFFFFFFFFFFFFFFF, 9),
)


def _max_piece(room: int) -> int:
    """The longest payload piece whose byte string (head and content) fits ``room`` bytes."""
    best = -1
    for low, high, head in _HEAD_TIERS:
        n = min(high, room - head)
        if n >= low:
            best = max(best, n)
    return best


def fragment_bundle(bundle: Bundle, max_size: int) -> list[Bundle]:
    """Proactively fragment ``bundle`` so that each fragment's encoded size is at most
    ``max_size`` bytes (the whole bundle as sent, e.g. a link's maximum receive unit), each
    fragment carrying as much payload as fits.

    A bundle that already fits is returned unchanged as ``[bundle]``. Raises
    :class:`FragmentationError` when it does not fit and its "must not be fragmented" flag is
    set, or when ``max_size`` leaves no room for payload bytes (including a payload of fewer
    than 2 bytes, which cannot be split).
    """
    if type(max_size) is not int or max_size < 1:
        raise EncodeError(
            f"max_size must be a positive int, not {max_size!r}", rule="max-size", section="5.8"
        )
    if len(bundle.encode()) <= max_size:
        return [bundle]
    _may_fragment(bundle)
    payload = bundle.payload_block
    length = len(payload.data)
    all_extensions = bundle.blocks[:-1]
    every = _replicated(bundle.primary, all_extensions)
    every_size = sum(len(block.encode()) for block in every)
    all_size = sum(len(block.encode()) for block in bundle.blocks[:-1])
    # The payload block's bytes other than its data's byte string: the array head, type code
    # (1), block number (1), flags, CRC type and the CRC field.
    crc_length = CRC_LENGTH[payload.crc_type]
    payload_fixed = (
        1 + 1 + 1 + len(encode_uint(payload.flags)) + 1 + (1 + crc_length if crc_length else 0)
    )
    pieces: list[tuple[PrimaryBlock, tuple[CanonicalBlock, ...], int, int]] = []
    start = 0
    while start < length:
        first = start == 0
        extensions = all_extensions if first else every
        primary = _fragment_primary(bundle.primary, all_extensions, length, start, extensions)
        fixed = 2 + len(primary.encode()) + (all_size if first else every_size) + payload_fixed
        n = min(_max_piece(max_size - fixed), length - start)
        if first:
            n = min(n, length - 1)  # RFC 9171 §5.8: 0 < N < M
        if n < 1:
            raise FragmentationError(
                f"a fragment of this bundle needs more than {max_size} bytes for one payload byte"
                if length > 1
                else "a payload of fewer than 2 bytes cannot be split",
                rule="fragment-too-small",
                section="5.8",
            )
        pieces.append((primary, extensions, start, start + n))
        start += n
    return [_make_fragment(bundle, *piece) for piece in pieces]


# ---------------------------------------------------------------------------------------------
# Reactive fragmentation (RFC 9171 §5.8 at a convergence-layer cut)


@dataclass(frozen=True, slots=True)
class BundleHead:
    """What the first octets of an encoded bundle say: its primary block, its extension blocks
    and where its payload lies (from :func:`read_bundle_head`)."""

    primary: PrimaryBlock
    """The primary block (CRC verified)."""
    extensions: tuple[CanonicalBlock, ...]
    """The extension blocks before the payload block, in order (CRCs verified)."""
    payload_flags: BlockFlags
    """The payload block's block processing control flags."""
    payload_crc_type: CRCType
    """The payload block's CRC type."""
    payload_offset: int
    """Offset in the encoded bundle of the payload's first octet."""
    payload_length: int
    """Length of the payload (the payload block's byte string)."""

    @property
    def may_fragment(self) -> bool:
        """Whether the "bundle must not be fragmented" flag is clear."""
        return not self.primary.flags & BundleFlags.MUST_NOT_FRAGMENT

    def payload_within(self, length: int) -> int:
        """How many payload octets lie wholly inside the first ``length`` octets."""
        return max(0, min(length - self.payload_offset, self.payload_length))


def read_bundle_head(data: bytes) -> BundleHead | None:
    """Read the head of the encoded bundle whose first octets are ``data`` (the whole bundle,
    or a prefix of it): the primary block, every extension block and the payload block up to
    its data. ``None`` when ``data`` ends inside the head. Raises
    :class:`~bpv7.errors.DecodeError` subclasses when what is there is not the start of a valid
    bundle: malformed CBOR, a CRC mismatch in the primary or an extension block, a rule of
    RFC 9171 §4 broken. The payload's own CRC is not checked (it follows the payload)."""
    if type(data) is not bytes:
        data = bytes(data)
    try:
        if data[0] != 0x9F:
            # RFC 9171 §4.1: "Each bundle SHALL be a concatenated sequence of at least two
            # blocks, represented as a CBOR indefinite-length array."
            raise BundleValidationError(
                "a bundle must be a CBOR indefinite-length array",
                rule="bundle-not-indefinite-array",
                section="4.1",
            )
        primary, pos = decode_primary(data, 1)
        extensions: list[CanonicalBlock] = []
        while True:
            start = pos
            count, pos = read_array(data, pos, "canonical block")
            type_code, pos = read_uint(data, pos, "block type code")
            if type_code != BlockType.PAYLOAD:
                # An extension block: decode it whole (the CRC is verified over its bytes).
                block, pos = decode_canonical(data, start)
                extensions.append(block)
                continue
            number, pos = read_uint(data, pos, "block number")
            flags, pos = read_uint(data, pos, "block processing control flags")
            crc_type, pos = read_crc_type(data, pos, "block CRC type", "4.3.2")
            major, length, pos = read_head(data, pos)
            break
    except IndexError:
        return None
    except DecodeError as exc:
        if exc.rule == "cbor-truncated":
            return None
        raise
    if count != INDEFINITE and count != (6 if crc_type else 5):
        raise BlockError(
            f"payload block has {count} items but CRC type {int(crc_type)}",
            rule="block-array-length",
            section="4.3.2",
        )
    if major != MAJOR_BYTES or length == INDEFINITE:
        # RFC 9171 §4.3.2: "Block-type-specific data: Represented as a single definite-length
        # CBOR byte string".
        raise CBORError(
            "payload block data is not a definite-length byte string",
            rule="cbor-type",
            section="4.3.2",
        )
    if number != 1:
        # RFC 9171 §4.3.2: "The block number of the payload block is always 1."
        raise BlockError(
            f"the payload block has number {number}", rule="payload-number", section="4.3.2"
        )
    head = BundleHead(primary, tuple(extensions), cached_block_flags(flags), crc_type, pos, length)
    # The bundle-level rules (unique block numbers, at most one Bundle Age Block...) hold for
    # the head with an empty payload exactly when they hold for the whole.
    violation = bundle_violation(
        primary,
        (*head.extensions, CanonicalBlock(BlockType.PAYLOAD, 1, head.payload_flags, crc_type, b"")),
    )
    if violation is not None:
        message, rule, section, *rfc = violation
        raise BundleValidationError(
            message, rule=rule, section=section, rfc=rfc[0] if rfc else 9171
        )
    offset, total = primary.fragment_offset, primary.total_adu_length
    if offset is not None and total is not None and offset + length > total:
        raise BundleValidationError(
            f"fragment [{offset}, {offset + length}) lies outside the ADU of length {total}",
            rule="fragment-range",
            section="4.3.1",
        )
    return head


def reactive_cut(head: BundleHead, length: int) -> int:
    """The payload offset at which a transfer that ended after its first ``length`` octets
    splits the bundle (RFC 9171 §5.8, reactive fragmentation): the payload octets wholly inside
    those ``length`` octets, at most one less than the whole payload (§5.8: fragments' payloads
    are "the first N and the last (M - N) bytes", "0 < N < M"). 0 means no cut: no payload
    octet was transferred, the payload is shorter than two octets, or the bundle must not be
    fragmented.

    The receiver keeps ``[0, cut)``, the sender sends ``[cut, end)``; a larger ``length`` never
    gives a smaller cut, so a receiver that held more than the sender saw acknowledged keeps an
    overlapping prefix, never one that leaves a gap."""
    if not head.may_fragment:
        return 0
    return max(0, min(head.payload_within(length), head.payload_length - 1))


def fragment_of(head: BundleHead, start: int, data: bytes) -> Bundle:
    """The fragment of the bundle whose head is ``head`` that holds payload octets ``data``
    from ``start`` (relative to that bundle's payload): e.g. what a receiver keeps of a
    transfer that was cut (:func:`reactive_cut`), possibly in several pieces. The piece at
    ``start == 0`` carries every extension block, later pieces the ones to be replicated in every
    fragment (RFC 9171 §5.8); offsets add up when the bundle is itself a fragment, and the total
    ADU length stays the original's.

    Raises :class:`FragmentationError` when the bundle must not be fragmented or the piece is
    empty, extends beyond the payload or is the whole payload."""
    _may_fragment_primary(head.primary)
    length = head.payload_length
    end = start + len(data)
    if start < 0 or end <= start or end > length or (start == 0 and end == length):
        raise FragmentationError(
            f"payload piece [{start}, {end}) is not a proper part of a payload of {length}",
            rule="fragment-offsets",
            section="5.8",
        )
    extensions = head.extensions if start == 0 else _replicated(head.primary, head.extensions)
    primary = _fragment_primary(head.primary, head.extensions, length, start, extensions)
    piece = CanonicalBlock(BlockType.PAYLOAD, 1, head.payload_flags, head.payload_crc_type, data)
    return Bundle(primary, (*extensions, piece))


# ---------------------------------------------------------------------------------------------
# Reassembly (RFC 9171 §5.9)


def reassembly_key(bundle: Bundle) -> BundleID:
    """The identity of the original bundle a fragment belongs to: its source node ID and
    creation timestamp, without fragment fields (RFC 9171 §5.9: fragments "with the same source
    node ID and creation timestamp")."""
    primary = bundle.primary
    return BundleID(primary.source, primary.creation)


@dataclass(frozen=True, slots=True)
class ReassemblyProgress:
    """How far the reassembly of one ADU has got."""

    total: int
    """Total ADU length claimed by the fragments."""
    received: int
    """Distinct ADU bytes received so far."""
    extents: tuple[tuple[int, int], ...]
    """The received byte ranges ``(start, end)``, sorted and merged."""

    @property
    def gaps(self) -> tuple[tuple[int, int], ...]:
        """The missing byte ranges ``(start, end)``."""
        gaps = []
        at = 0
        for start, end in self.extents:
            if start > at:
                gaps.append((at, start))
            at = end
        if at < self.total:
            gaps.append((at, self.total))
        return tuple(gaps)


@dataclass(frozen=True, slots=True)
class ReassemblyStatistics:
    """Counters of a :class:`FragmentCollector`."""

    pending: int
    """Partial ADUs held now."""
    buffered_bytes: int
    """Payload bytes held by the partial ADUs."""
    fragments_added: int
    """Fragments accepted (including duplicates that added nothing)."""
    fragments_rejected: int
    """Fragments refused with :class:`ReassemblyError`."""
    completed: int
    """ADUs reassembled."""
    expired: int
    """Partial ADUs dropped because their lifetime ended."""


class _Partial:
    """The fragments received so far of one ADU."""

    __slots__ = ("chunks", "deadline", "head", "received", "starts", "total")

    def __init__(self, total: int, deadline: int | None) -> None:
        self.total = total
        self.deadline = deadline
        self.head: Bundle | None = None  # the fragment at offset 0, once received
        self.starts: list[int] = []  # sorted starts of disjoint chunks
        self.chunks: list[bytes] = []  # chunk i covers [starts[i], starts[i] + len(chunks[i]))
        self.received = 0

    def missing(self, offset: int, data: bytes) -> list[tuple[int, bytes]]:
        """The parts of ``data`` (at ``offset``) not held yet, after checking that the parts
        already held agree with it."""
        end = offset + len(data)
        starts = self.starts
        index = bisect.bisect_right(starts, offset) - 1
        if index < 0:
            index = 0
        new: list[tuple[int, bytes]] = []
        at = offset
        view = memoryview(data)
        while index < len(starts) and starts[index] < end:
            c_start = starts[index]
            chunk = self.chunks[index]
            c_end = c_start + len(chunk)
            index += 1
            if c_end <= at:
                continue
            if c_start > at:
                new.append((at, bytes(view[at - offset : c_start - offset])))
            low, high = max(at, c_start), min(end, c_end)
            # RFC 9171 §5.8: "The concatenation of the payloads of all fragments produced by
            # fragmentation MUST always be identical to the payload of the fragmented bundle" --
            # overlapping fragments carry the same bytes.
            if view[low - offset : high - offset] != chunk[low - c_start : high - c_start]:
                raise ReassemblyError(
                    f"fragment bytes [{low}, {high}) differ from those already received",
                    rule="fragment-overlap-mismatch",
                    section="5.8",
                )
            at = high
        if at < end:
            new.append((at, bytes(view[at - offset :])))
        return new

    def insert(self, parts: list[tuple[int, bytes]]) -> None:
        for start, data in parts:
            index = bisect.bisect_left(self.starts, start)
            self.starts.insert(index, start)
            self.chunks.insert(index, data)
            self.received += len(data)

    def extents(self) -> tuple[tuple[int, int], ...]:
        merged: list[tuple[int, int]] = []
        for start, chunk in zip(self.starts, self.chunks, strict=True):
            end = start + len(chunk)
            if merged and merged[-1][1] == start:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return tuple(merged)


class FragmentCollector:
    """Reassembles ADUs from fragments (RFC 9171 §5.9). Sans-IO: the caller passes the time.

    ``max_adu_size`` bounds the total ADU length a fragment may claim, ``max_buffered_bytes``
    the payload bytes held by all partial ADUs together, ``max_pending`` their number; a
    fragment that would exceed one is refused with :class:`ReassemblyError`.
    """

    def __init__(
        self,
        *,
        max_adu_size: int = DEFAULT_MAX_ADU_SIZE,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._max_adu_size = max_adu_size
        self._max_buffered = max_buffered_bytes
        self._max_pending = max_pending
        self._partials: dict[BundleID, _Partial] = {}
        self._buffered = 0
        self._added = 0
        self._rejected = 0
        self._completed = 0
        self._expired = 0

    def __len__(self) -> int:
        return len(self._partials)

    def __contains__(self, key: object) -> bool:
        return key in self._partials

    def add(self, bundle: Bundle, *, now_dtn_ms: int | None = None) -> Bundle | None:
        """Add a received fragment. Returns the reassembled bundle when this fragment completes
        its ADU, else ``None``; a bundle that is not a fragment is returned as it is. Raises
        :class:`ReassemblyError` (and keeps nothing of the fragment) when it disagrees with the
        fragments held or exceeds a limit.

        ``now_dtn_ms`` (DTN time, ms) is used only to compute when a partial ADU whose creation
        time is unknown (zero) expires: ``now + lifetime - bundle age``."""
        if not bundle.is_fragment:
            return bundle
        try:
            result = self._add(bundle, now_dtn_ms)
        except ReassemblyError as exc:
            self._rejected += 1
            logger.debug("fragment of %s refused: %s", reassembly_key(bundle), exc)
            raise
        self._added += 1
        return result

    def _add(self, bundle: Bundle, now_dtn_ms: int | None) -> Bundle | None:
        primary = bundle.primary
        offset = primary.fragment_offset
        total = primary.total_adu_length
        assert offset is not None and total is not None  # a Bundle with IS_FRAGMENT has both
        key = reassembly_key(bundle)
        partial = self._partials.get(key)
        if partial is None:
            if total > self._max_adu_size:
                raise ReassemblyError(
                    f"total ADU length {total} exceeds this node's limit {self._max_adu_size}",
                    rule="adu-too-large",
                    section="5.9",
                )
            if len(self._partials) >= self._max_pending:
                raise ReassemblyError(
                    f"already reassembling {len(self._partials)} ADUs",
                    rule="reassembly-pending-limit",
                    section="5.9",
                )
            partial = _Partial(total, _deadline(bundle, now_dtn_ms))
        elif partial.total != total:
            # RFC 9171 §5.9: the reassembled ADU's length "is equal to the total application
            # data unit length in the fragment's primary block" -- one length for all fragments.
            raise ReassemblyError(
                f"fragment claims total ADU length {total}, earlier fragments {partial.total}",
                rule="fragment-total-mismatch",
                section="5.9",
            )
        parts = partial.missing(offset, bundle.payload)
        new_bytes = sum(len(data) for _, data in parts)
        if self._buffered + new_bytes > self._max_buffered:
            raise ReassemblyError(
                f"holding {self._buffered} bytes of partial ADUs; {new_bytes} more exceed the "
                f"limit {self._max_buffered}",
                rule="reassembly-buffer-full",
                section="5.9",
            )
        partial.insert(parts)
        self._buffered += new_bytes
        if offset == 0 and partial.head is None:
            partial.head = bundle
        self._partials[key] = partial
        if partial.received < partial.total:
            return None
        del self._partials[key]
        self._buffered -= partial.received
        self._completed += 1
        return _reassembled(partial)

    def progress(self, key: BundleID) -> ReassemblyProgress | None:
        """How far the reassembly of the ADU ``key`` (see :func:`reassembly_key`) has got, or
        ``None`` when no fragment of it is held."""
        partial = self._partials.get(key)
        if partial is None:
            return None
        return ReassemblyProgress(partial.total, partial.received, partial.extents())

    def pending(self) -> list[BundleID]:
        """The keys of the partial ADUs held."""
        return list(self._partials)

    def discard(self, key: BundleID) -> bool:
        """Drop the partial ADU ``key``; return whether there was one."""
        partial = self._partials.pop(key, None)
        if partial is None:
            return False
        self._buffered -= partial.received
        return True

    def next_expiry(self) -> int | None:
        """The earliest DTN time (ms) at which a partial ADU expires, or ``None``."""
        deadlines = [p.deadline for p in self._partials.values() if p.deadline is not None]
        return min(deadlines) if deadlines else None

    def expire(self, now_dtn_ms: int) -> list[BundleID]:
        """Drop the partial ADUs whose bundle lifetime has ended by ``now_dtn_ms``; return their
        keys (the agent may report their deletion for "lifetime expired")."""
        expired = [
            key
            for key, partial in self._partials.items()
            if partial.deadline is not None and partial.deadline <= now_dtn_ms
        ]
        for key in expired:
            self.discard(key)
        self._expired += len(expired)
        return expired

    def statistics(self) -> ReassemblyStatistics:
        """The collector's counters."""
        return ReassemblyStatistics(
            pending=len(self._partials),
            buffered_bytes=self._buffered,
            fragments_added=self._added,
            fragments_rejected=self._rejected,
            completed=self._completed,
            expired=self._expired,
        )


def _deadline(bundle: Bundle, now_dtn_ms: int | None) -> int | None:
    expiry = bundle.expiry_dtn_time()
    if expiry is not None:
        return expiry
    if now_dtn_ms is None:
        return None
    # RFC 9171 §4.4.2: with no creation time, the bundle's age is in its Bundle Age Block.
    age = bundle.bundle_age_ms or 0
    return now_dtn_ms + bundle.primary.lifetime_ms - age


def _reassembled(partial: _Partial) -> Bundle:
    head = partial.head
    assert head is not None  # byte 0 is covered only by a fragment at offset 0
    adu = b"".join(partial.chunks)
    primary = head.primary
    # RFC 9171 §5.9: "This byte array -- the reassembled application data unit -- MUST replace
    # the payload of this fragment"; the result is no longer a fragment.
    whole = PrimaryBlock(
        BundleFlags(int(primary.flags) & ~_IS_FRAGMENT),
        primary.crc_type,
        primary.destination,
        primary.source,
        primary.report_to,
        primary.creation,
        primary.lifetime_ms,
    )
    payload = head.payload_block
    block = CanonicalBlock(BlockType.PAYLOAD, 1, payload.flags, payload.crc_type, adu)
    try:
        return Bundle(whole, (*head.blocks[:-1], block))
    except EncodeError as exc:  # pragma: no cover - the fragment at offset 0 was a valid bundle
        raise ReassemblyError(exc.message, rule=exc.rule, section=exc.section) from None
