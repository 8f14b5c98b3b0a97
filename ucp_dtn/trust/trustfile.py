"""A device's trust file: its private key, its certificate and the mesh authority's certificate,
in one PEM file.

Why one PEM file: a volunteer copies one file to one device (Nebula's model), and PEM is what
every TLS tool reads -- ``openssl x509 -in hub.trust.pem -text`` shows the certificate, and
OpenSSL (so Python's ``ssl``) loads the key and the chain straight from it. The file starts
with a comment line saying whose it is; then the device's certificate, the authority's
certificate and the device's private key (PKCS#8, unencrypted: daemons start unattended), so
it is written readable by its owner only (0600), and a daemon refuses one that others can read.

From a trust file come the device's TLS settings (TLS required, peers authenticated against
the authority only -- not the system's CAs -- and by node ID, RFC 9174 §4.4.4.3) and its
security policy (:mod:`.policy`).
"""

from __future__ import annotations

import os
import re
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import TrustError
from .facts import CertificateFacts
from .profile import certificate_facts

__all__ = ["TrustFile", "check_node_id"]

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(?:[A-Za-z0-9+/=\r\n]+)-----END \1-----", re.ASCII
)
_MAX_FILE = 64 * 1024
_MAX_NODE_ID = 256


def check_node_id(node_id: str) -> None:
    """Refuse what cannot name a device: not a ``dtn://NAME/`` or ``ipn:N.0`` node ID, or one
    too long for a certificate name."""
    from ucp_dtn.agent import ConfigError, parse_node_id

    if len(node_id) > _MAX_NODE_ID:
        raise TrustError(f"a node ID of {len(node_id)} characters is too long")
    try:
        parse_node_id(node_id)
    except ConfigError as exc:
        raise TrustError(str(exc)) from None
    if not node_id.isascii() or not node_id.isprintable():
        raise TrustError(f"{node_id!r}: a node ID in a certificate must be printable ASCII")


@dataclass(frozen=True)
class TrustFile:
    """One device's key, certificate and authority certificate."""

    key: ec.EllipticCurvePrivateKey
    """The device's private key."""
    certificate: x509.Certificate
    """The device's certificate, signed by the authority."""
    authority: x509.Certificate
    """The mesh authority's certificate (the one trust anchor)."""
    path: Path | None = None
    """The file it was read from, if any."""

    @property
    def facts(self) -> CertificateFacts:
        """What the device's certificate says (node ID, role, serial, end of validity)."""
        return certificate_facts(self.certificate)

    @property
    def node_id(self) -> str:
        """The device's node ID."""
        return self.facts.node_id

    # -- writing -----------------------------------------------------------------------------

    def to_pem(self) -> bytes:
        """The file's contents."""
        facts = self.facts
        authority = self.authority.subject.rfc4514_string()
        header = (
            f"# ucp-dtn trust file of {facts.node_id} ({facts.role}), mesh authority "
            f"{authority}; serial {facts.serial:x}, valid until "
            f"{facts.not_after:%Y-%m-%d}. Private: copy it to that device only.\n"
        )
        return (
            header.encode()
            + self.certificate.public_bytes(serialization.Encoding.PEM)
            + self.authority.public_bytes(serialization.Encoding.PEM)
            + self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def write(self, path: Path, *, replace: bool = False) -> None:
        """Write the file, readable by its owner only (0600)."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
        try:
            descriptor = os.open(path, flags, 0o600)
        except FileExistsError:
            raise TrustError(f"{path} exists (not replaced)") from None
        except OSError as exc:
            raise TrustError(f"cannot write {path}: {exc.strerror or exc}") from None
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), 0o600)
            stream.write(self.to_pem())

    # -- reading -----------------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path, *, private: bool = True) -> TrustFile:
        """Read and check a trust file: one key, the device certificate first and the
        authority's after it, the key the certificate's, the certificate signed by the
        authority. With ``private``, refuse a file that other users can read or write."""
        try:
            with path.open("rb") as stream:
                mode = os.fstat(stream.fileno()).st_mode
                data = stream.read(_MAX_FILE + 1)
        except OSError as exc:
            raise TrustError(f"cannot read the trust file {path}: {exc.strerror or exc}") from None
        if len(data) > _MAX_FILE:
            raise TrustError(f"{path}: too large for a trust file")
        if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TrustError(
                f"{path}: other users can read it (mode {stat.S_IMODE(mode):03o}); "
                f"it holds a private key: chmod 600 {path}"
            )
        trust = cls.from_pem(data, where=str(path))
        return cls(trust.key, trust.certificate, trust.authority, path)

    @classmethod
    def from_pem(cls, data: bytes, *, where: str = "trust file") -> TrustFile:
        """Parse a trust file's contents (see :meth:`read`)."""
        certificates: list[x509.Certificate] = []
        keys: list[bytes] = []
        for match in _PEM_BLOCK.finditer(data):
            label = match.group(1)
            if label == b"CERTIFICATE":
                try:
                    certificates.append(x509.load_pem_x509_certificate(match.group(0)))
                except ValueError as exc:
                    raise TrustError(f"{where}: a damaged certificate: {exc}") from None
            elif label.endswith(b"PRIVATE KEY"):
                keys.append(match.group(0))
        if len(certificates) != 2 or len(keys) != 1:
            raise TrustError(
                f"{where}: not a trust file (expected the device's certificate, the authority's "
                f"and one private key; found {len(certificates)} certificates, {len(keys)} keys)"
            )
        try:
            key = serialization.load_pem_private_key(keys[0], password=None)
        except (ValueError, TypeError) as exc:
            raise TrustError(f"{where}: the private key cannot be read: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TrustError(f"{where}: the private key is not an EC key")
        device, authority = certificates
        if device.public_key() != key.public_key():
            raise TrustError(f"{where}: the private key is not the certificate's")
        try:
            device.verify_directly_issued_by(authority)
        except (ValueError, TypeError, Exception) as exc:  # InvalidSignature has no base
            raise TrustError(
                f"{where}: the certificate was not issued by the authority in the file ({exc})"
            ) from None
        trust = cls(key, device, authority)
        if trust.facts.role is None or not trust.facts.node_id:
            raise TrustError(f"{where}: the certificate is not a mesh device certificate")
        return trust

    # -- using -------------------------------------------------------------------------------

    def authority_pem(self) -> str:
        """The authority's certificate in PEM (what TLS peers are checked against)."""
        return self.authority.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def ssl_contexts(self) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        """``(server, client)`` TLS contexts: our certificate and key, TLS 1.3 only, and a peer
        certificate required from both sides and checked against the mesh authority only."""
        if self.path is None:
            raise TrustError("the trust file must be read from a file to serve TLS")
        contexts = []
        for protocol in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
            context = ssl.SSLContext(protocol)
            # RFC 9174 §4.4: TLS 1.3 (RFC 8446); RFC 9174 §4.4.4: each entity validates the
            # other's certificate; the node ID is authenticated after SESS_INIT (§4.4.4.3).
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            context.check_hostname = False
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.authority_pem())
            try:
                # OpenSSL reads the certificate chain and the key from the one file.
                context.load_cert_chain(str(self.path))
            except (ssl.SSLError, OSError) as exc:
                raise TrustError(f"{self.path}: TLS cannot use it: {exc}") from None
            contexts.append(context)
        return contexts[0], contexts[1]
