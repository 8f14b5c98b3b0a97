"""The certificate profile of a trusted mesh: what the mesh authority signs, and how it is read.

Theory of operation
-------------------
A mesh has one **authority**: a self-signed CA certificate with a P-256 key
(``basicConstraints CA:TRUE, pathlen 0``; key usage ``keyCertSign, cRLSign``). It signs one
certificate per device, of two kinds:

* **node** certificates, for ``ucp-bpnode`` daemons (brokers, executors, datastores, relays);
* **client** certificates, for ``ucp`` clients; an ``admin`` client may overwrite and delete
  what other clients own.

Every device certificate (an *end-entity* certificate, P-256 key, ``CA:FALSE``):

* names the device's node ID in a subjectAltName otherName of type id-on-bundleEID
  (1.3.6.1.5.5.7.8.11, an IA5String), as RFC 9174 §4.4.1 says a TCPCL entity's certificate
  does ("the Node ID of the entity ... in a subjectAltName extension of type otherName with a
  name form of id-on-bundleEID"); TCPCL's TLS authenticates the node ID of every session
  from it (§4.4.4.3), and BPSec signatures name their signer by it (RFC 9360 x5chain);
* allows ``digitalSignature`` (TLS 1.3 handshakes and COSE signatures) and ``keyAgreement``
  (ECDH-ES to the device's key: results encrypted to their owner), with the extended key
  usages ``serverAuth`` and ``clientAuth`` (a TCPCL entity is the TLS server or client
  depending on who connected, RFC 9174 §4.4.3);
* carries the **mesh role** in a non-critical private extension (:data:`MESH_ROLE_OID`,
  an OID under the UUID arc 2.25 so that it needs no registration): a DER UTF8String,
  ``node``, ``client`` or ``client admin``. Software that does not know it ignores it (it
  is not critical), so the certificates work with any TCPCLv4 peer (dtn-demo-agent);
* is valid from one hour before issue (clock skew between volunteers' devices) for a year by
  default.

Everything here is pure: no files (see :mod:`.authority` and :mod:`.trustfile`).
"""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bpv7.bpsec.x509 import BUNDLE_EID_OID

from .facts import CertificateFacts, MeshRole

__all__ = [
    "MESH_ROLE_OID",
    "CertificateFacts",
    "MeshRole",
    "build_authority",
    "build_device",
    "certificate_facts",
    "fingerprint",
]

MESH_ROLE_OID = x509.ObjectIdentifier("2.25.248811950381374434232429125396431271221")
"""The private extension naming a device's mesh role (an OID in the UUID arc, X.667)."""

_UTF8_STRING = 0x0C
_SKEW = datetime.timedelta(hours=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _der_text(tag: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) < 0x80:
        return bytes([tag, len(raw)]) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + raw


def build_authority(
    name: str, key: ec.EllipticCurvePrivateKey, *, now: datetime.datetime, days: int
) -> x509.Certificate:
    """The mesh authority's self-signed CA certificate."""
    subject = _name(name)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_device(
    node_id: str,
    role: MeshRole,
    public_key: ec.EllipticCurvePublicKey,
    authority: x509.Certificate,
    authority_key: ec.EllipticCurvePrivateKey,
    *,
    now: datetime.datetime,
    days: int,
    serial: int | None = None,
) -> x509.Certificate:
    """A device certificate for ``node_id`` (see the module docstring)."""
    # RFC 9174 §4.4.1: "BundleEID ::= IA5String" inside an otherName of type id-on-bundleEID;
    # cryptography writes the value we give as the otherName's [0] EXPLICIT contents.
    bundle_eid = x509.OtherName(BUNDLE_EID_OID, _der_text(0x16, node_id))
    role_text = "client admin" if role is MeshRole.ADMIN else role.value
    not_after = min(now + datetime.timedelta(days=days), authority.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(node_id))
        .issuer_name(authority.subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([bundle_eid]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(MESH_ROLE_OID, _der_text(_UTF8_STRING, role_text)),
            critical=False,
        )
        .sign(authority_key, hashes.SHA256())
    )


def _role_of(certificate: x509.Certificate) -> MeshRole | None:
    try:
        value = certificate.extensions.get_extension_for_oid(MESH_ROLE_OID).value
    except x509.ExtensionNotFound:
        return None
    raw = getattr(value, "value", b"")
    if len(raw) < 2 or raw[0] != _UTF8_STRING or raw[1] != len(raw) - 2:
        return None
    words = raw[2:].decode("utf-8", errors="replace").split()
    if words == ["node"]:
        return MeshRole.NODE
    if words == ["client"]:
        return MeshRole.CLIENT
    if words == ["client", "admin"]:
        return MeshRole.ADMIN
    return None


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    """Read a device certificate's node ID, role, serial number and end of validity."""
    from bpv7.bpsec import certificate_identity

    try:
        certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        node_id = certificate_identity(certificate)
    except x509.ExtensionNotFound:
        node_id = ""
    return CertificateFacts(
        node_id=node_id,
        role=_role_of(certificate),
        serial=certificate.serial_number,
        not_after=certificate.not_valid_after_utc,
    )


def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint of a certificate's DER, in hex (a cache key and a name for
    people: ``openssl x509 -fingerprint -sha256`` shows the same digits)."""
    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
