"""A device in a trusted mesh: its TLS settings, its security policy, and who sent a message.

Theory of operation
-------------------
``ucp-bpnode --trust FILE`` and ``ucp --trust FILE`` (or ``ucp trust use FILE``) turn a trust
file (:mod:`.trustfile`) into a :class:`MeshTrust`, which gives the node:

* **TLS on every session** (:meth:`MeshTrust.tls_settings`): TLS required, the peer's
  certificate checked against the mesh authority only, the peer's node ID authenticated by its
  certificate (RFC 9174 §4.4.4.3; a peer without a certificate, with another authority's, or
  claiming another node ID than its certificate names gets no session);
* **a security policy** (:meth:`MeshTrust.security_policy`), ahead of any the node has:

  - *source*: every bundle this node sends from a UCP endpoint (``<node>/ucp/...``) carries a
    BIB over the payload, a COSE_Sign1 (ES256) by the device's key with its certificate in the
    x5chain header (RFC 9360), security source the node ID;
  - *acceptor*: every bundle for one of this node's UCP endpoints must carry such a signature
    whose certificate the authority issued, valid now, not revoked
    (:class:`~.anchors.MeshAnchors`); others are discarded with RFC 9172 reason 12 (missing
    security operation) or 15 (failed security operation) before any role sees them.

* **who sent a message** (:func:`sender_of`): the signer's certificate facts when the
  signature is by the node the bundle says it comes from -- a mesh member cannot pass off its
  messages as another's by writing another source EID. The roles decide from the signer's
  mesh role what it may do (docs/security.md).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .anchors import MeshAnchors
from .errors import TrustError
from .facts import CertificateFacts
from .trustfile import TrustFile

if TYPE_CHECKING:
    from convergence.tcpcl.tls import TlsSettings
    from ucp_dtn.agent import BundleNode, Delivery, NodeConfig, SecurityPolicy

__all__ = ["MESH_KEY", "MeshTrust", "mesh_anchors", "sender_of"]

logger = logging.getLogger(__name__)

MESH_KEY = "mesh"
"""The name of the mesh authority's key in the node's security policy."""
SELF_KEY = "mesh-self"
"""The name of the device's own signing key in the node's security policy."""


@dataclass(frozen=True)
class MeshTrust:
    """A device's place in a trusted mesh (see the module docstring)."""

    trust: TrustFile
    """The device's trust file."""
    anchors: MeshAnchors
    """The authority, revocations and the validation cache."""

    @classmethod
    def load(cls, path: Path) -> MeshTrust:
        """Read the trust file at ``path`` (:class:`TrustError` if it cannot be used)."""
        trust = TrustFile.read(path)
        return cls(trust, MeshAnchors(trust.authority))

    @property
    def node_id(self) -> str:
        """The device's node ID (the one its certificate names)."""
        return self.trust.node_id

    def tls_settings(self) -> TlsSettings:
        """TLS required on every session, peers checked against the authority and by node ID."""
        from convergence.tcpcl.tls import TlsSettings

        server, client = self.trust.ssl_contexts()
        return TlsSettings(server, client, require=True, require_node_id=True)

    def dashboard_context(self) -> ssl.SSLContext:
        """The dashboard's HTTPS context off loopback: this node's certificate, and a client
        certificate of the mesh authority required of every browser or script (a member's
        trust file, imported into the browser as a PKCS#12 file or given to ``curl --cert``)."""
        if self.trust.path is None:
            raise TrustError("the trust file must be read from a file to serve HTTPS")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no system CAs: the mesh's only
        context.load_verify_locations(cadata=self.trust.authority_pem())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.trust.path))
        context.verify_mode = ssl.CERT_REQUIRED
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context

    def security_policy(self, policy: SecurityPolicy | None = None) -> SecurityPolicy:
        """The mesh's rules, then those of ``policy`` (the node's own, if any)."""
        from cryptography.hazmat.primitives import serialization

        from bpv7.bpsec import read_private_key
        from ucp_dtn.agent import ConfigError, PolicyKey, SecurityPolicy
        from ucp_dtn.agent.routing import RoutePattern
        from ucp_dtn.agent.security import SecurityContextChoice, SecurityRole, SecurityRule

        key_pem = self.trust.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        own = PolicyKey(
            SELF_KEY,
            read_private_key(key_pem),
            chain=(self.trust.certificate,),
            origin=str(self.trust.path or "trust file"),
        )
        authority = PolicyKey(MESH_KEY, anchors=self.anchors, origin="mesh authority")
        ucp = self.node_id + "ucp/*"
        if not self.node_id.startswith("dtn://"):
            raise TrustError(f"{self.node_id}: a trusted mesh names its devices dtn://NAME/")
        everyone = RoutePattern.parse("*")
        rules = [
            SecurityRule(
                SecurityRole.SOURCE,
                RoutePattern.parse(ucp),
                everyone,
                integrity=own,
                context=SecurityContextChoice.COSE,
                number=0,
            ),
            SecurityRule(
                SecurityRole.ACCEPTOR,
                everyone,
                RoutePattern.parse(ucp),
                integrity=authority,
                number=0,
            ),
        ]
        keys = {SELF_KEY: own, MESH_KEY: authority}
        if policy is not None:
            for name in keys:
                if name in policy.keys:
                    raise ConfigError(f"security.keys.{name}: the name is the trusted mesh's")
            rules.extend(policy.rules)
            keys.update(policy.keys)
        return SecurityPolicy(tuple(rules), keys)

    def configure(self, config: NodeConfig) -> NodeConfig:
        """``config`` with the mesh's TLS settings and security policy (and the node ID its
        certificate names: :class:`TrustError` if ``config`` names another)."""
        import dataclasses

        if str(config.node_id) != self.node_id:
            raise TrustError(
                f"the node ID {config.node_id} is not the trust file's ({self.node_id}): "
                f"start it as -n {self.node_id}"
            )
        return dataclasses.replace(
            config,
            tls=self.tls_settings(),
            security=self.security_policy(config.security),
            session_check=self.session_refusal,
        )

    def session_refusal(self, node_id: str, certificate: bytes | None) -> str | None:
        """Whether a session may go on (the node's session check): TLS already checked the
        peer's certificate against the authority and its node ID (RFC 9174 §4.4.4.3); here
        a certificate the authority revoked is refused."""
        if certificate is None:
            return "no TLS certificate"
        try:
            facts = self.anchors.check_peer(certificate)
        except TrustError as exc:
            return str(exc)
        if facts.node_id != node_id:
            return f"its certificate names {facts.node_id}, not {node_id}"
        return None


def mesh_anchors(node: BundleNode) -> MeshAnchors | None:
    """The mesh authority a node checks signatures against, ``None`` in open mode."""
    policy = node.config.security
    key = policy.keys.get(MESH_KEY) if policy is not None else None
    anchors = key.anchors if key is not None else None
    return anchors if isinstance(anchors, MeshAnchors) else None


def sender_of(delivery: Delivery, anchors: MeshAnchors) -> CertificateFacts | None:
    """The certificate facts of whoever signed ``delivery`` for the node it comes from, or
    ``None`` if no mesh signature by that node was verified."""
    source_node = _node_of(str(delivery.source))
    for check in delivery.security:
        if check.service != "integrity" or check.target != 1 or check.signer is None:
            continue
        if check.signer != source_node or check.key != MESH_KEY:
            logger.info("signature by %s on a bundle from %s ignored", check.signer, source_node)
            continue
        return anchors.signer(check.signer)
    return None


def _node_of(eid: str) -> str:
    if eid.startswith("dtn://"):
        rest = eid[len("dtn://") :]
        return "dtn://" + rest.split("/", 1)[0] + "/"
    return eid
