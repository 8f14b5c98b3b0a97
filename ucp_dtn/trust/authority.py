"""The mesh authority: a directory holding the CA's key and certificate, the register of what
it issued, and its revocation list.

Layout (``ucp trust init`` creates it, mode 0700; key files 0600)::

    <authority>/ca.key          the CA's private key (PEM, PKCS#8, P-256): never leaves here
    <authority>/ca.pem          the CA's certificate: every trust file carries a copy
    <authority>/issued.json     one entry per certificate issued: node ID, role, serial, until
    <authority>/revoked.crl     the latest revocation list (an X.509 CRL, RFC 5280 §5, DER)

The authority refuses to issue a second live certificate for a node ID (two devices under one
node ID would each receive the other's bundles); revoking the first frees the name. Revocations
are an X.509 CRL signed by the CA, numbered (the cRLNumber extension, RFC 5280 §5.2.3), so a
node can tell a newer list from an older one whichever way they reach it
(:mod:`.revocation`).

Blocking file work: call from a thread in async code.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .anchors import crl_number
from .errors import TrustError
from .profile import MeshRole, build_authority, build_device
from .trustfile import TrustFile, check_node_id

__all__ = ["IssuedEntry", "MeshAuthority"]

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
ISSUED = "issued.json"
REVOKED = "revoked.crl"

_CRL_VALIDITY = datetime.timedelta(days=3650)
"""How long a revocation list says it is current (it is replaced by newer ones, not renewed)."""


@dataclass(frozen=True, slots=True)
class IssuedEntry:
    """One certificate in the authority's register."""

    node_id: str
    """Whom it names."""
    role: MeshRole
    """What it lets them do."""
    serial: int
    """Its serial number."""
    not_after: str
    """The end of its validity (ISO 8601, UTC)."""
    revoked: bool = False
    """Whether it was revoked."""


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600), replacing it atomically."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


class MeshAuthority:
    """An authority directory, opened (:meth:`open`) or created (:meth:`create`)."""

    def __init__(
        self, path: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
    ) -> None:
        self.path = path
        """The authority directory."""
        self.key = key
        """The CA's private key."""
        self.certificate = certificate
        """The CA's certificate."""

    @classmethod
    def create(
        cls, path: Path, name: str, *, days: int = 3650, now: datetime.datetime | None = None
    ) -> MeshAuthority:
        """Make a new authority in ``path`` (created, or an empty directory)."""
        if (path / CA_KEY).exists() or (path / CA_CERT).exists():
            raise TrustError(f"{path} already holds a mesh authority")
        if not name.strip():
            raise TrustError("the authority needs a name")
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path, 0o700)
        except OSError as exc:
            raise TrustError(f"cannot create {path}: {exc.strerror or exc}") from None
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = build_authority(
            name.strip(), key, now=now or datetime.datetime.now(datetime.UTC), days=days
        )
        _write_private(path / CA_KEY, _key_pem(key))
        _write_private(path / CA_CERT, certificate.public_bytes(serialization.Encoding.PEM))
        authority = cls(path, key, certificate)
        authority._save_register([])
        return authority

    @classmethod
    def open(cls, path: Path) -> MeshAuthority:
        """Open the authority in ``path``."""
        try:
            key_pem = (path / CA_KEY).read_bytes()
            cert_pem = (path / CA_CERT).read_bytes()
        except FileNotFoundError:
            raise TrustError(
                f"no mesh authority in {path} (make one with 'ucp trust init')"
            ) from None
        except OSError as exc:
            raise TrustError(f"cannot read the authority in {path}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise TrustError(f"{path}: damaged authority files: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TrustError(f"{path / CA_KEY}: not an EC private key")
        return cls(path, key, certificate)

    # -- the register ------------------------------------------------------------------------

    def issued(self) -> list[IssuedEntry]:
        """Every certificate issued, oldest first."""
        try:
            entries = json.loads((self.path / ISSUED).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise TrustError(f"{self.path / ISSUED}: cannot read the register: {exc}") from None
        try:
            return [
                IssuedEntry(
                    str(entry["node_id"]),
                    MeshRole(entry["role"]),
                    int(entry["serial"]),
                    str(entry["not_after"]),
                    bool(entry.get("revoked", False)),
                )
                for entry in entries
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustError(f"{self.path / ISSUED}: damaged register: {exc}") from None

    def _save_register(self, entries: list[IssuedEntry]) -> None:
        data = [
            {
                "node_id": entry.node_id,
                "role": entry.role.value,
                "serial": entry.serial,
                "not_after": entry.not_after,
                "revoked": entry.revoked,
            }
            for entry in entries
        ]
        _write_private(self.path / ISSUED, json.dumps(data, indent=1).encode() + b"\n")

    # -- issuing -----------------------------------------------------------------------------

    def issue(
        self,
        node_id: str,
        role: MeshRole,
        *,
        days: int = 365,
        now: datetime.datetime | None = None,
    ) -> TrustFile:
        """A new key and certificate for ``node_id``: the device's trust file (not written)."""
        check_node_id(node_id)
        if days <= 0:
            raise TrustError("a certificate must be valid for at least one day")
        now = now or datetime.datetime.now(datetime.UTC)
        entries = self.issued()
        for entry in entries:
            live = not entry.revoked and entry.not_after > now.isoformat()
            if entry.node_id == node_id and live:
                raise TrustError(
                    f"{node_id} already has a live certificate (serial {entry.serial:x}); "
                    f"revoke it first: ucp trust revoke {node_id}"
                )
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = build_device(
            node_id, role, key.public_key(), self.certificate, self.key, now=now, days=days
        )
        entries.append(
            IssuedEntry(
                node_id,
                role,
                certificate.serial_number,
                certificate.not_valid_after_utc.isoformat(),
            )
        )
        self._save_register(entries)
        return TrustFile(key, certificate, self.certificate)

    # -- revoking ----------------------------------------------------------------------------

    def revoke(self, who: str, *, now: datetime.datetime | None = None) -> list[IssuedEntry]:
        """Revoke the live certificates of node ID ``who`` (or the one with serial number
        ``who``, in hex) and write a new revocation list; return what was revoked."""
        now = now or datetime.datetime.now(datetime.UTC)
        entries = self.issued()
        chosen = [
            index
            for index, entry in enumerate(entries)
            if not entry.revoked and (entry.node_id == who or f"{entry.serial:x}" == who.lower())
        ]
        if not chosen:
            raise TrustError(f"no live certificate issued for {who!r}")
        for index in chosen:
            entries[index] = IssuedEntry(
                entries[index].node_id,
                entries[index].role,
                entries[index].serial,
                entries[index].not_after,
                revoked=True,
            )
        self._save_register(entries)
        self._write_crl(entries, now)
        return [entries[index] for index in chosen]

    def revocation_list(self) -> x509.CertificateRevocationList:
        """The latest revocation list (an empty one, numbered 0, when nothing was revoked)."""
        try:
            return x509.load_der_x509_crl((self.path / REVOKED).read_bytes())
        except FileNotFoundError:
            return self._build_crl([], datetime.datetime.now(datetime.UTC), 0)
        except (OSError, ValueError) as exc:
            raise TrustError(f"{self.path / REVOKED}: {exc}") from None

    def _write_crl(self, entries: list[IssuedEntry], now: datetime.datetime) -> None:
        previous = self.revocation_list()
        number = crl_number(previous) + 1
        crl = self._build_crl([entry for entry in entries if entry.revoked], now, number)
        _write_private(self.path / REVOKED, crl.public_bytes(serialization.Encoding.DER))

    def _build_crl(
        self, revoked: list[IssuedEntry], now: datetime.datetime, number: int
    ) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - datetime.timedelta(minutes=1))
            .next_update(now + _CRL_VALIDITY)
            # RFC 5280 §5.2.3: "a monotonically increasing sequence number for a given CRL
            # scope and CRL issuer".
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for entry in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(now - datetime.timedelta(minutes=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
