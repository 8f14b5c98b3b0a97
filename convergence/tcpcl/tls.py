"""TLS for TCPCLv4 sessions (RFC 9174 §4.4): settings, and Node ID authentication.

The trio adapter runs the TLS handshake itself (``trio.SSLStream``) once both contact headers
set CAN_TLS; this module holds what it needs around that:

* :class:`TlsSettings`: the ``ssl`` contexts for both roles (the active entity is the TLS
  client, RFC 9174 §4.4.3) and whether TLS is required;
* :func:`load_tls_settings`: build them from PEM files;
* :func:`peer_node_ids_from_certificate` and :func:`authenticate_node_id`: RFC 9174 §4.4.4.3
  NODE-ID authentication — the Node ID the peer claims in SESS_INIT must be one its
  (already chain-validated) certificate names in a subjectAltName otherName of type
  id-on-bundleEID (§4.4.1); a URI subjectAltName is accepted too (earlier drafts of the RFC and
  some implementations put the Node ID there).

Certificates are parsed with the ``cryptography`` package; ``ssl`` only hands out the DER.
"""

from __future__ import annotations

import enum
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

__all__ = [
    "BUNDLE_EID_OID",
    "NodeIdAuthResult",
    "TlsSettings",
    "authenticate_node_id",
    "load_tls_settings",
    "peer_node_ids_from_certificate",
]

logger = logging.getLogger(__name__)

#: RFC 9174 §4.4.1 / §9.10: "id-on-bundleEID OBJECT IDENTIFIER ::= { id-on 11 }", i.e. the
#: PKIX Other Name Form 1.3.6.1.5.5.7.8.11, whose value is "BundleEID ::= IA5String".
BUNDLE_EID_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.11")

_IA5_STRING = 0x16
_UTF8_STRING = 0x0C
_EXPLICIT_0 = 0xA0


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Local TLS configuration of a TCPCL entity.

    An entity offers TLS (CAN_TLS = 1) in a role only if it has a context for that role.
    """

    server_context: ssl.SSLContext | None
    """Used when we are the passive entity (TLS server); ``None``: we cannot offer TLS there."""
    client_context: ssl.SSLContext | None
    """Used when we are the active entity (TLS client); ``None``: we cannot offer TLS there."""
    require: bool = False
    """Refuse sessions without TLS (RFC 9174 §4.3: such a session ends with "Contact
    Failure")."""
    require_node_id: bool = True
    """On a TLS session, refuse a peer whose certificate names no Node ID at all (NODE-ID
    authentication result "absent"), or that does not disclose its Node ID. A certificate that
    names other Node IDs than the claimed one is always refused."""

    def __post_init__(self) -> None:
        if self.require and (self.server_context is None or self.client_context is None):
            raise ValueError("TLS is required but a server or client context is missing")

    def context_for(self, *, active: bool) -> ssl.SSLContext | None:
        """The context for our role: the active entity is the TLS client (RFC 9174 §4.4.3)."""
        return self.client_context if active else self.server_context


def load_tls_settings(
    cert: Path | None, key: Path | None, ca: Path | None, *, require: bool
) -> TlsSettings:
    """Build :class:`TlsSettings` from PEM files.

    :param cert: our certificate chain (it should name our Node ID in an id-on-bundleEID
        subjectAltName); used as server certificate and as client certificate.
    :param key: its private key.
    :param ca: trust anchors for the peer's certificate; ``None`` for the system's default
        ones. The passive side requests and validates a client certificate only with ``ca``.
    :param require: refuse sessions without TLS.
    :raises ValueError: ``cert`` without ``key`` or the reverse, or ``require`` without a
        certificate (a passive entity cannot do TLS without one).
    :raises OSError, ssl.SSLError: a file cannot be read or parsed.
    """
    if (cert is None) != (key is None):
        raise ValueError("a TLS certificate needs its private key and the reverse")
    server: ssl.SSLContext | None = None
    if cert is not None and key is not None:
        server = ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH, cafile=None if ca is None else str(ca)
        )
        server.load_cert_chain(str(cert), str(key))
        # RFC 9174 §4.4.4: each entity validates the certificate of the other one; the
        # passive entity can only do so if the active one sends a certificate.
        server.verify_mode = ssl.CERT_REQUIRED if ca is not None else ssl.CERT_NONE
        _harden(server)
    client = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=None if ca is None else str(ca)
    )
    # The peer is authenticated by its Node ID (RFC 9174 §4.4.4.3), checked after SESS_INIT;
    # the host name we dialled is often just an address found by discovery.
    client.check_hostname = False
    client.verify_mode = ssl.CERT_REQUIRED
    if cert is not None and key is not None:
        client.load_cert_chain(str(cert), str(key))
    _harden(client)
    return TlsSettings(server_context=server, client_context=client, require=require)


def _harden(context: ssl.SSLContext) -> None:
    # RFC 9174 §4.4 builds on TLS 1.3 (RFC 8446); older versions are not offered.
    context.minimum_version = ssl.TLSVersion.TLSv1_3


def peer_node_ids_from_certificate(cert_der: bytes) -> set[str]:
    """The Node IDs a DER certificate names: each subjectAltName otherName of type
    id-on-bundleEID (RFC 9174 §4.4.1) and each URI subjectAltName.

    A certificate that cannot be parsed, or has no subjectAltName, names none.
    """
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    except ValueError as exc:  # malformed DER or extension
        logger.info("cannot parse the peer certificate: %s", exc)
        return set()
    names: set[str] = set()
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == BUNDLE_EID_OID:
            eid = _bundle_eid_value(other.value)
            if eid:
                names.add(eid)
    names.update(uri for uri in san.get_values_for_type(x509.UniformResourceIdentifier) if uri)
    return names


def _bundle_eid_value(der: bytes) -> str | None:
    """Decode the value of an id-on-bundleEID otherName: a DER IA5String (RFC 9174 §4.4.1),
    possibly still inside the otherName's ``[0] EXPLICIT`` wrapper. A UTF8String is accepted
    too (it holds the same ASCII URI); anything else gives ``None``."""
    parsed = _der_value(der)
    if parsed is not None and parsed[0] == _EXPLICIT_0:
        parsed = _der_value(parsed[1])
    if parsed is None or parsed[0] not in (_IA5_STRING, _UTF8_STRING):
        return None
    try:
        return parsed[1].decode("ascii")
    except UnicodeDecodeError:
        return None


def _der_value(der: bytes) -> tuple[int, bytes] | None:
    """``(tag, contents)`` of one DER TLV filling ``der`` exactly, or ``None``."""
    if len(der) < 2:
        return None
    tag, first = der[0], der[1]
    pos = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # DER: the long form is used only from 128 octets on, on the fewest octets.
        if count == 0 or count > 4 or len(der) < pos + count:
            return None
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
        if length < 0x80 or der[2] == 0:
            return None
    if len(der) != pos + length:
        return None
    return tag, der[pos:]


class NodeIdAuthResult(enum.Enum):
    """Outcome of NODE-ID authentication (RFC 9174 §4.4.4.3)."""

    #: The certificate names the Node ID claimed in SESS_INIT.
    SUCCESS = "success"
    #: The certificate names Node IDs, none of them the claimed one.
    FAILURE = "failure"
    #: No Node ID claimed, no certificate, or one that names no Node ID.
    ABSENT = "absent"


def authenticate_node_id(node_id: str, cert_der: bytes | None) -> NodeIdAuthResult:
    """Check the Node ID a peer claims in SESS_INIT against its certificate.

    Node IDs are compared as exact strings, without URI normalisation (the conservative
    reading of RFC 9174 §4.4.1: a NODE-ID is the peer's Node ID URI itself).
    """
    if not node_id:
        # RFC 9174 §4.6: "A zero-length Node ID SHALL be used to indicate the lack of Node
        # ID": there is no claim to authenticate.
        return NodeIdAuthResult.ABSENT
    names = set() if cert_der is None else peer_node_ids_from_certificate(cert_der)
    if not names:
        return NodeIdAuthResult.ABSENT
    return NodeIdAuthResult.SUCCESS if node_id in names else NodeIdAuthResult.FAILURE
