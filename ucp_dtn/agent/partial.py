"""Where a transfer that was cut short splits its bundle (RFC 9171 §5.8 reactive fragmentation
at the TCPCLv4 acknowledged length, RFC 9174 §5.2.3).

Theory of operation
-------------------
Both ends of a TCPCL session that agreed on reactive fragmentation (the private session
extension :attr:`~convergence.tcpcl.SessionExtensionType.REACTIVE_FRAGMENTATION`) derive the
cut from a length alone, with :func:`find_cut`: the receiver from the octets it holds (at least
what it acknowledged), the sender from the largest acknowledgement it received. The receiver
keeps payload ``[0, cut)`` as fragments (:mod:`ucp_dtn.agent.spool`), the sender replaces its
stored bundle by the fragment ``[cut, end)`` (:mod:`ucp_dtn.agent.neighbours`). Since the
sender never saw more acknowledged than the receiver held, the two overlap or meet
(:func:`bpv7.fragment.reactive_cut`); reassembly at the destination accepts the overlap.

A custodial bundle travels inside a BIBE PDU (an administrative record addressed to the next
hop, :mod:`ucp_dtn.agent.custody`); a BPDU cut short would leave the next hop a fragment of a
record it cannot use, and the sender wraps each retransmission in a new BPDU. So a cut inside a
BPDU splits the *encapsulated* bundle instead: the receiver keeps a fragment of it as its
custodian (the TCPCL acknowledgement handed the prefix over, as the final XFER_ACK hands over a
whole bundle), and the sender remains custodian of the remainder, which it sends in a new BPDU
with a new transmission ID and retransmission timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpv7.admin import AdminRecordError, AdminRecordType
from bpv7.fragment import BundleHead, reactive_cut, read_bundle_head

__all__ = ["TransferCut", "find_cut"]


@dataclass(frozen=True, slots=True)
class TransferCut:
    """Where a transfer that ended after its first ``length`` octets splits its bundle."""

    head: BundleHead
    """The head of the bundle that is split (the encapsulated one, for a BPDU)."""
    base: int
    """Offset in the transfer of that bundle's first octet (0 unless inside a BPDU)."""
    cut: int
    """Payload offset of the cut (:func:`bpv7.fragment.reactive_cut`); 0: no fragment."""
    custody: bool
    """The transfer was a BPDU asking for custody transfer (the receiver becomes custodian of
    what it keeps)."""

    @property
    def payload_start(self) -> int:
        """Offset in the transfer of the split bundle's first payload octet."""
        return self.base + self.head.payload_offset


def find_cut(prefix: bytes, length: int) -> TransferCut | None:
    """Where a transfer whose first octets are ``prefix`` splits when it ended after ``length``
    octets (``len(prefix) <= length``; ``prefix`` needs only reach the payload of the bundle,
    or of the encapsulated bundle of a BPDU). ``None`` when ``prefix`` ends before that point
    (read more). Raises :class:`~bpv7.DecodeError` subclasses when the octets are not the
    start of a valid bundle (CRCs of the blocks held are verified; the payload's cannot be)."""
    head = read_bundle_head(prefix)
    if head is None:
        return None
    if head.primary.is_admin_record:
        try:
            inner = _bpdu_contents(prefix, head)
        except IndexError:
            return None  # the record's head is not all there yet
        if inner is not None:
            base, custody = inner
            inner_head = read_bundle_head(prefix[base:])
            if inner_head is None:
                return None
            end = head.payload_offset + head.payload_length  # the BPDU's payload ends its record
            if base + inner_head.payload_offset + inner_head.payload_length > end:
                raise _bpdu_error("the encapsulated bundle extends beyond the BPDU")
            held = min(length, end) - base
            return TransferCut(inner_head, base, reactive_cut(inner_head, held), custody)
    return TransferCut(head, 0, reactive_cut(head, length), False)


def _bpdu_contents(prefix: bytes, head: BundleHead) -> tuple[int, bool] | None:
    """For an administrative record whose payload starts a BIBE PDU (draft-ietf-dtn-bibect-05:
    ``[3, [transmission ID, retransmission time, encapsulated bundle]]``): the offset of the
    encapsulated bundle and whether custody transfer is asked. ``None``: another record.
    ``IndexError`` when ``prefix`` ends too early to tell."""
    data = prefix[head.payload_offset : head.payload_offset + head.payload_length]
    pos = _expect_head(data, 0, 4, 2)  # administrative record: [type, content]
    record_type, pos = _read_head(data, pos, 0)
    if record_type != AdminRecordType.BIBE_PDU:
        return None
    pos = _expect_head(data, pos, 4, 3)  # BPDU: [transmission ID, time, bundle]
    transmission_id, pos = _read_head(data, pos, 0)
    _, pos = _read_head(data, pos, 0)
    length, pos = _read_head(data, pos, 2)
    if pos + length != head.payload_length:
        raise _bpdu_error("the encapsulated bundle does not end the BPDU's record")
    return head.payload_offset + pos, transmission_id != 0


def _expect_head(data: bytes, pos: int, major: int, value: int) -> int:
    found, pos = _read_head(data, pos, major)
    if found != value:
        raise _bpdu_error(f"unexpected CBOR item in a BPDU ({found})")
    return pos


def _read_head(data: bytes, pos: int, major: int) -> tuple[int, int]:
    """A definite CBOR head of ``major`` type: its argument and the next position. Raises
    ``IndexError`` when ``data`` ends inside it."""
    initial = data[pos]
    if initial >> 5 != major:
        raise _bpdu_error(f"unexpected CBOR major type {initial >> 5} in a BPDU")
    info = initial & 0x1F
    if info < 24:
        return info, pos + 1
    if info > 27:
        raise _bpdu_error("indefinite-length or reserved CBOR item in a BPDU")
    width = 1 << (info - 24)
    if pos + 1 + width > len(data):
        raise IndexError(pos + 1 + width)
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width


def _bpdu_error(message: str) -> AdminRecordError:
    # draft-ietf-dtn-bibect-05: a BPDU is "[transmission ID, retransmission time, encapsulated
    # bundle]", the bundle a CBOR byte string.
    return AdminRecordError(
        message, rule="bpdu-shape", section="draft-ietf-dtn-bibect-05 BPDU", rfc=0
    )
