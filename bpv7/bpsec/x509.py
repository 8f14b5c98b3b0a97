"""X.509 certificate chains in COSE signatures (RFC 9360, header ``x5chain``, label 33).

A COSE_Sign1 (or a COSE_Sign signer) may carry the signer's certificate chain instead of naming
a key the verifier already holds: the leaf certificate's public key checks the signature, and
the chain up to a *trust anchor* (a CA certificate the verifier trusts) says who signed. That is
how a mesh authority enrols volunteers' nodes without handing every verifier every node's key:
each node signs with its own key and certificate; every verifier holds the CA's certificate.

The path validation is ``cryptography``'s (:mod:`cryptography.x509.verification`, RFC 5280
path building and checks: signatures, validity periods, basic constraints, path length, name
constraints), with the WebPKI rules for the CA certificates and none beyond RFC 5280's for the
leaf (a BPSec signer is neither a TLS server nor a TLS client: no extended key usage is
required); a leaf that states a key usage must allow digital signatures.

Who signed (:func:`certificate_identity`) is read like TCPCL's node authentication (RFC 9174
§4.4.1): the leaf's subjectAltName otherName of type id-on-bundleEID (1.3.6.1.5.5.7.8.11),
else a URI subjectAltName, else the subject's common name.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from .context import OperationFailure
from .keys import CoseKey, CoseKeyType, KeyFormatError

__all__ = [
    "BUNDLE_EID_OID",
    "HEADER_X5CHAIN",
    "TrustAnchors",
    "certificate_identity",
    "chain_from_header",
    "chain_to_header",
    "cose_key_of_certificate",
    "read_certificates",
    "read_private_key",
]

HEADER_X5CHAIN = 33
"""RFC 9360 §2: COSE header parameter "x5chain", label 33: "an ordered chain of X.509
certificates", the leaf (the signer's) first."""

BUNDLE_EID_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.11")
"""RFC 9174 §4.4.1: id-on-bundleEID, the otherName form naming a node's bundle EID."""

_MAX_CHAIN = 8
"""Most certificates an x5chain may carry (and the deepest path built)."""


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM file (one or more) or of one DER certificate; raises
    :class:`~bpv7.bpsec.KeyFormatError` with a one-line reason."""
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise KeyFormatError(f"not an X.509 certificate: {exc}") from None
    return certificates


def read_private_key(data: bytes, kid: bytes = b"") -> CoseKey:
    """The COSE form of a PEM (or DER, PKCS#8) private key: EC P-256/P-384/P-521 or Ed25519."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not an unencrypted private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyFormatError(
            f"a {type(key).__name__} cannot sign COSE messages here (EC P-256/384/521 or Ed25519)"
        )
    try:
        return CoseKey.from_private_key(key, kid)
    except StopIteration:
        raise KeyFormatError(f"unsupported curve {key.curve.name}") from None  # type: ignore[union-attr]


def cose_key_of_certificate(certificate: x509.Certificate, kid: bytes = b"") -> CoseKey:
    """The public key of ``certificate`` as a COSE key (EC P-256/384/521 or Ed25519)."""
    public = certificate.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return CoseKey(CoseKeyType.OKP, kid, crv=6, x=raw)
    if isinstance(public, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": 1, "secp384r1": 2, "secp521r1": 3}
        crv = curves.get(public.curve.name)
        if crv is not None:
            size = (public.curve.key_size + 7) // 8
            numbers = public.public_numbers()
            return CoseKey(
                CoseKeyType.EC2,
                kid,
                crv=crv,
                x=numbers.x.to_bytes(size, "big"),
                y=numbers.y.to_bytes(size, "big"),
            )
    raise OperationFailure(f"the certificate's {type(public).__name__} cannot verify COSE here")


def certificate_identity(certificate: x509.Certificate) -> str:
    """Who a certificate names: its id-on-bundleEID subjectAltName (RFC 9174 §4.4.1), else its
    first URI subjectAltName, else its subject's common name, else the whole subject."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is not None:
        for other in names.get_values_for_type(x509.OtherName):
            if other.type_id == BUNDLE_EID_OID:
                eid = _ia5_value(other.value)
                if eid:
                    return eid
        uris = names.get_values_for_type(x509.UniformResourceIdentifier)
        if uris:
            return uris[0]
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common:
        value = common[0].value
        return value if isinstance(value, str) else value.decode(errors="replace")
    return certificate.subject.rfc4514_string()


def _ia5_value(der: bytes) -> str | None:
    """The text of a DER IA5String (tag 22), possibly inside the otherName's ``[0] EXPLICIT``
    wrapper; ``None`` for anything else."""
    for _ in range(2):
        if len(der) < 2 or der[1] >= 0x80:
            return None  # (a bundle EID is far shorter than 128 bytes)
        tag, length, content = der[0], der[1], der[2:]
        if len(content) != length:
            return None
        if tag == 0xA0:
            der = content
            continue
        if tag != 0x16:
            return None
        try:
            return content.decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


def chain_to_header(certificates: Sequence[x509.Certificate]) -> bytes | list[bytes]:
    """The x5chain header value of a chain, leaf first (RFC 9360 §2: one certificate as a byte
    string, more as an array of them)."""
    der = [certificate.public_bytes(serialization.Encoding.DER) for certificate in certificates]
    return der[0] if len(der) == 1 else der


def chain_from_header(value: object) -> list[x509.Certificate]:
    """The certificates of an x5chain header value; :class:`OperationFailure` if malformed."""
    items = [value] if isinstance(value, bytes) else value
    if not isinstance(items, list) or not items or len(items) > _MAX_CHAIN:
        raise OperationFailure("malformed x5chain header (RFC 9360 §2)")
    certificates = []
    for item in items:
        if not isinstance(item, bytes):
            raise OperationFailure("malformed x5chain header (RFC 9360 §2)")
        try:
            certificates.append(x509.load_der_x509_certificate(item))
        except ValueError as exc:
            raise OperationFailure(f"x5chain holds a malformed certificate: {exc}") from None
    return certificates


class TrustAnchors:
    """CA certificates a verifier trusts: a signer's chain must lead to one of them."""

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self.certificates = tuple(certificates)
        """The trusted CA certificates."""
        if not self.certificates:
            raise ValueError("trust anchors need at least one certificate")
        self._store = Store(list(self.certificates))

    def verify(self, chain: Sequence[x509.Certificate], at: datetime.datetime) -> x509.Certificate:
        """Check that the leaf ``chain[0]`` chains to an anchor (the rest of ``chain`` may
        serve as intermediates) and is valid at ``at``; return the leaf or raise
        :class:`OperationFailure`."""
        leaf, *intermediates = chain
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .max_chain_depth(_MAX_CHAIN)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise OperationFailure(f"the signer's certificate is not trusted: {exc}") from None
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return leaf
        if not usage.digital_signature:
            # RFC 5280 §4.2.1.3: digitalSignature "asserted when the subject public key is used
            # for verifying digital signatures".
            raise OperationFailure("the signer's certificate does not allow digital signatures")
        return leaf
