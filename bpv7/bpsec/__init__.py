"""BPSec (RFC 9172) for the BPv7 codec: security contexts, keys, and the processing of whole
bundles as security acceptor, verifier and source.

- :func:`process_security` verifies and decrypts a decoded bundle's security operations with a
  :class:`KeyStore` and returns an :class:`OperationResult` per operation (``verified``,
  ``decrypted``, ``failed``, ``no-key``, ``unsupported``, ``skipped``) with the RFC 9172
  status report reason of a failure; with ``accept`` it also removes the accepted operations.
- :func:`add_integrity` / :func:`add_confidentiality` add a BIB / BCB made by a context:
  :class:`HmacSha2` and :class:`AesGcm` (RFC 9173) or :class:`CoseSource`
  (draft-ietf-dtn-bpsec-cose).
- :mod:`bpv7.bpsec.fragments` says how BPSec constrains fragmentation (RFC 9172 §5.2).
- :mod:`bpv7.bpsec.x509`: COSE signatures carrying the signer's certificate chain (x5chain,
  RFC 9360), checked against :class:`TrustAnchors` held by the :class:`KeyStore`.

The abstract security block itself and the rules between blocks are in
:mod:`bpv7.security_blocks` (the decoder needs them without this package).
"""

from ..security_blocks import AbstractSecurityBlock, SecurityContextFlags, SecurityContextId
from .context import (
    ConfidentialitySource,
    InPlaceEncryption,
    IntegritySource,
    OperationFailure,
    Outcome,
    SecurityReason,
)
from .cose import CoseAlgorithm, CoseContext, CoseParameter, CoseTag
from .cose_source import CoseOperation, CoseSource
from .fragments import check_securable, fragment_security_blocks
from .keys import CoseKey, CoseKeyType, KeyFormatError, KeyStore, read_cose_keys
from .processing import (
    CONTEXTS,
    OperationResult,
    SecurityProcessing,
    add_confidentiality,
    add_integrity,
    process_security,
)
from .rfc9173 import (
    AesGcm,
    AesVariant,
    BcbAesGcmParameter,
    BibHmacSha2Parameter,
    HmacSha2,
    ScopeFlags,
    ShaVariant,
)
from .x509 import (
    HEADER_X5CHAIN,
    TrustAnchors,
    certificate_identity,
    read_certificates,
    read_private_key,
)

__all__ = [
    "CONTEXTS",
    "HEADER_X5CHAIN",
    "InPlaceEncryption",
    "TrustAnchors",
    "certificate_identity",
    "read_certificates",
    "read_private_key",
    "ConfidentialitySource",
    "IntegritySource",
    "AbstractSecurityBlock",
    "AesGcm",
    "AesVariant",
    "BcbAesGcmParameter",
    "BibHmacSha2Parameter",
    "CoseAlgorithm",
    "CoseContext",
    "CoseKey",
    "CoseKeyType",
    "CoseOperation",
    "CoseParameter",
    "CoseSource",
    "CoseTag",
    "HmacSha2",
    "KeyFormatError",
    "KeyStore",
    "OperationFailure",
    "OperationResult",
    "Outcome",
    "ScopeFlags",
    "SecurityContextFlags",
    "SecurityContextId",
    "SecurityProcessing",
    "SecurityReason",
    "ShaVariant",
    "add_confidentiality",
    "add_integrity",
    "check_securable",
    "fragment_security_blocks",
    "process_security",
    "read_cose_keys",
]
