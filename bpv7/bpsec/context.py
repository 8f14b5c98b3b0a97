"""What every BPSec security context shares: the view of one security operation it is given, the
failure it raises, and the interface of the acceptor and source sides.

A *security operation* (RFC 9172 §3.1) is one security service applied to one target block by
one security block. A context verifies or decrypts one operation at a time, given an
:class:`OperationView` (the bundle as it stands, the security block, its parsed abstract security
block and the target), and raises :class:`OperationFailure` with the outcome and a one-line
reason when it cannot. On the source side a context produces the parameters and per-target
results of a new security block (:class:`IntegritySource`, :class:`ConfidentialitySource`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from ..admin.status import StatusReportReason
from ..blocks import CanonicalBlock
from ..bundle import Bundle
from ..codes import BlockType
from ..eid import EndpointID
from ..primary import PrimaryBlock
from ..security_blocks import AbstractSecurityBlock, SecurityItems
from .keys import KeyStore

__all__ = [
    "ConfidentialitySource",
    "InPlaceEncryption",
    "IntegritySource",
    "OperationFailure",
    "OperationView",
    "Outcome",
    "SecurityReason",
    "SourceBlock",
]


class Outcome(StrEnum):
    """What became of one security operation at this node."""

    VERIFIED = "verified"
    """A BIB operation whose integrity result matched."""
    DECRYPTED = "decrypted"
    """A BCB operation whose target was decrypted and authenticated."""
    FAILED = "failed"
    """The operation was checked and failed: the result did not match, the ciphertext did not
    authenticate, or the block's parameters are unusable (RFC 9172 §5.1: "processed according
    to the security policy")."""
    NO_KEY = "no-key"
    """No key for this operation is known here; it was not checked."""
    UNSUPPORTED = "unsupported"
    """The security context id is not one this codec implements."""
    SKIPPED = "skipped"
    """Not checked here: a BIB operation whose target is still encrypted (RFC 9172 §5.1.2: "A
    BIB MUST NOT be processed if the security target of the BIB is also the security target of
    a BCB in the bundle"), or any operation in a fragment (processed after reassembly)."""


SecurityReason = StatusReportReason
"""The bundle status report reason codes of BPSec (RFC 9172 §11.2): 12
``MISSING_SECURITY_OPERATION``, 13 ``UNKNOWN_SECURITY_OPERATION``, 14
``UNEXPECTED_SECURITY_OPERATION``, 15 ``FAILED_SECURITY_OPERATION``, 16
``CONFLICTING_SECURITY_OPERATION``. One enumeration with RFC 9171's codes
(:class:`bpv7.admin.StatusReportReason`): a status report carries either kind."""


class OperationFailure(Exception):
    """A security operation could not be verified or decrypted."""

    outcome: Outcome
    """:attr:`Outcome.FAILED`, :attr:`Outcome.NO_KEY` or :attr:`Outcome.UNSUPPORTED`."""
    reason: str
    """One line saying why."""

    def __init__(self, reason: str, outcome: Outcome = Outcome.FAILED) -> None:
        self.reason = reason
        self.outcome = outcome
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class OperationView:
    """Everything a context needs to process one security operation."""

    primary: PrimaryBlock
    """The bundle's primary block."""
    blocks: tuple[CanonicalBlock, ...]
    """The bundle's canonical blocks as they stand (decrypted targets already replaced)."""
    security_block: CanonicalBlock
    """The BIB or BCB."""
    asb: AbstractSecurityBlock
    """Its parsed abstract security block."""
    target: int
    """The target block number (0 for the primary block)."""

    @property
    def target_block(self) -> CanonicalBlock | None:
        """The target block, or ``None`` for the primary block."""
        if self.target == 0:
            return None
        for block in self.blocks:
            if block.number == self.target:
                return block
        raise OperationFailure(f"target block {self.target} is not in the bundle")

    @property
    def results(self) -> SecurityItems:
        """This target's security results."""
        return self.asb.results_for(self.target)

    def result(self, result_id: int) -> object:
        """The value of result ``result_id`` for this target, or ``None``."""
        for item_id, value in self.results:
            if item_id == result_id:
                return value
        return None

    def block_by_number(self, number: int) -> CanonicalBlock | None:
        """Any block of the bundle by number."""
        if number == self.security_block.number:
            return self.security_block
        for block in self.blocks:
            if block.number == number:
                return block
        return None


@dataclass(frozen=True, slots=True)
class SourceBlock:
    """The header of a security block being built (RFC 9172 §3.6's "security source" side): what
    a context may bind into its results before the block exists."""

    type_code: BlockType
    """BIB or BCB."""
    number: int
    """Its block number."""
    flags: int
    """Its block processing control flags."""
    source: EndpointID
    """Its security source EID."""


class _SourceBase(ABC):
    """A context configured to add security operations."""

    context_id: int
    removes_target_crc: ClassVar[bool] = False
    """Whether the context's specification has the security source remove each target's CRC
    before the operation (RFC 9173 §3.8.1, §4.8.1: :func:`~bpv7.bpsec.add_integrity` and
    :func:`~bpv7.bpsec.add_confidentiality` then do so). The COSE context does not: its AAD
    leaves CRCs out, and its examples keep them (draft-ietf-dtn-bpsec-cose Appendix A)."""

    @property
    def parameters(self) -> SecurityItems:
        """The security context parameters of the new block."""
        return ()


class IntegritySource(_SourceBase):
    """A context that can add BIB operations."""

    @abstractmethod
    def sign(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> tuple[SecurityItems, list[SecurityItems]]:
        """``(parameters, results per target)`` of a BIB over ``targets`` of ``bundle``."""


@dataclass(frozen=True, slots=True)
class InPlaceEncryption:
    """How a context encrypts targets straight into a buffer the caller chooses (so that a
    large payload is encrypted into the encoded bundle itself: no ciphertext copy). The
    ciphertext of a target has the plaintext's length; what the context adds (the tag) goes
    into the results."""

    parameters: SecurityItems
    """The new block's security context parameters."""
    result_sizes: Sequence[SecurityItems]
    """Per target, results of the same encoded size as the real ones (to lay the bundle out
    before encrypting)."""
    encrypt: Callable[[CanonicalBlock, memoryview], SecurityItems]
    """Encrypt a target block into a writable buffer of ``len(data) + spare`` bytes (what lies
    beyond ``len(data)`` may be overwritten); returns that target's results."""
    spare: int = 0
    """Bytes of scratch room the output needs beyond the ciphertext."""


class ConfidentialitySource(_SourceBase):
    """A context that can add BCB operations."""

    def in_place(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> InPlaceEncryption | None:
        """How to encrypt ``targets`` in place, or ``None`` when the context cannot (then
        :meth:`encrypt` makes the ciphertexts)."""
        return None

    @abstractmethod
    def encrypt(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> tuple[SecurityItems, list[SecurityItems], list[bytes]]:
        """``(parameters, results per target, ciphertext per target)`` of a BCB over
        ``targets`` of ``bundle``."""


class AcceptorContext(ABC):
    """A context that can verify and decrypt operations."""

    context_id: int

    @abstractmethod
    def verify(self, view: OperationView, keys: KeyStore) -> str | None:
        """Check one BIB operation; raise :class:`OperationFailure` unless it verifies. Returns
        who signed when a certificate says so (an x5chain, RFC 9360), else ``None``."""

    @abstractmethod
    def decrypt(self, view: OperationView, keys: KeyStore) -> bytes:
        """Decrypt one BCB operation's target; return the plaintext block-type-specific data or
        raise :class:`OperationFailure`."""
