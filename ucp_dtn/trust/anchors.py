"""Checking mesh certificates: the authority as the one trust anchor, revocations applied,
each certificate's chain validated once.

:class:`MeshAnchors` is what a node's security policy checks COSE signatures with (it is a
:class:`bpv7.bpsec.TrustAnchors`): a signature verifies only if its x5chain leaf was issued by
the mesh authority, is valid now, follows the mesh profile (:mod:`.profile`) and is not revoked.
Path validation costs far more than the signature check itself (bench/trust.py measures both),
so the outcome is cached per certificate (by its SHA-256 fingerprint) until the certificate
expires or a revocation names it.

It also remembers, per node ID, the facts of the certificate that last signed for it
(:meth:`MeshAnchors.signer`): a role reads there whether the signer of a message is a node, a
client or an admin.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

from cryptography import x509

from bpv7.bpsec import OperationFailure, TrustAnchors

from .errors import TrustError
from .facts import CertificateFacts
from .profile import certificate_facts, fingerprint

__all__ = ["MeshAnchors", "RevocationState"]

logger = logging.getLogger(__name__)

_CACHE_LIMIT = 4096


class RevocationState:
    """The revocations a node applies: the serial numbers of the latest revocation list it
    holds, and that list's number (RFC 5280 §5.2.3 cRLNumber)."""

    def __init__(self) -> None:
        self.number = 0
        """The number of the list applied (0: none)."""
        self.serials: frozenset[int] = frozenset()
        """Serial numbers of revoked certificates."""
        self.der = b""
        """The list applied, as received (DER), to pass on."""

    def is_revoked(self, serial: int) -> bool:
        """Whether the certificate with ``serial`` was revoked."""
        return serial in self.serials


def crl_number(crl: x509.CertificateRevocationList) -> int:
    """The cRLNumber of a revocation list (0 when it has none)."""
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


class MeshAnchors(TrustAnchors):
    """The mesh authority as trust anchor, with revocations and a validation cache."""

    def __init__(self, authority: x509.Certificate) -> None:
        super().__init__([authority])
        self.authority = authority
        """The mesh authority's certificate."""
        self.revocations = RevocationState()
        """The revocations applied."""
        self._valid: dict[str, tuple[x509.Certificate, CertificateFacts]] = {}
        self._signers: dict[str, CertificateFacts] = {}
        self.validations = 0
        """Chain validations done (cache misses)."""
        self.cache_hits = 0
        """Signatures whose certificate was already validated."""

    def verify(self, chain: Sequence[x509.Certificate], at: datetime.datetime) -> x509.Certificate:
        """The leaf of ``chain`` if the mesh authority issued it, it is valid at ``at``, it
        follows the mesh profile and is not revoked; else :class:`OperationFailure`."""
        leaf = chain[0]
        key = fingerprint(leaf)
        cached = self._valid.get(key)
        if cached is not None and leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
            self.cache_hits += 1
            certificate, facts = cached
        else:
            self.validations += 1
            # Only the authority can issue (pathlen 0): intermediates a signer sends are ignored.
            certificate = super().verify([leaf], at)
            facts = certificate_facts(certificate)
            if facts.role is None or not facts.node_id:
                raise OperationFailure("the signer's certificate is not a mesh device certificate")
            if len(self._valid) >= _CACHE_LIMIT:
                self._valid.clear()
            self._valid[key] = (certificate, facts)
        if self.revocations.is_revoked(facts.serial):
            raise OperationFailure(
                f"the signer's certificate (serial {facts.serial:x}, {facts.node_id}) is revoked"
            )
        self._signers[facts.node_id] = facts
        return certificate

    def forget_validations(self) -> None:
        """Empty the validation cache (the next signature of each certificate validates its
        chain again)."""
        self._valid.clear()

    def signer(self, node_id: str) -> CertificateFacts | None:
        """The facts of the certificate that last signed a verified message for ``node_id``."""
        facts = self._signers.get(node_id)
        if facts is not None and self.revocations.is_revoked(facts.serial):
            return None
        return facts

    def check_peer(self, certificate_der: bytes) -> CertificateFacts:
        """The facts of a TLS peer's certificate (already validated by TLS against the
        authority); :class:`TrustError` if it is revoked or not of the mesh profile."""
        try:
            certificate = x509.load_der_x509_certificate(certificate_der)
        except ValueError as exc:
            raise TrustError(f"unreadable peer certificate: {exc}") from None
        facts = certificate_facts(certificate)
        if facts.role is None:
            raise TrustError("the peer's certificate is not a mesh device certificate")
        if self.revocations.is_revoked(facts.serial):
            raise TrustError(f"the peer's certificate ({facts.node_id}) is revoked")
        return facts

    def apply(self, crl: x509.CertificateRevocationList, der: bytes) -> bool:
        """Apply a revocation list if the authority signed it and it is newer than the one
        applied; return whether it was applied. :class:`TrustError` if it is not the
        authority's."""
        if crl.issuer != self.authority.subject or not crl.is_signature_valid(
            self.authority.public_key()  # type: ignore[arg-type]
        ):
            raise TrustError("the revocation list is not signed by the mesh authority")
        number = crl_number(crl)
        if number <= self.revocations.number:
            return False
        state = RevocationState()
        state.number = number
        state.serials = frozenset(entry.serial_number for entry in crl)
        state.der = der
        self.revocations = state
        logger.info("revocation list %d applied: %d certificates revoked", number, len(crl))
        return True
