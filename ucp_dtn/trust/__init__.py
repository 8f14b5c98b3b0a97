"""The trusted mesh: a mesh authority, one trust file per device, revocations that travel the
mesh, and the checks that follow from them (docs/security.md, "A trusted mesh").

* :mod:`.profile` -- the certificates (node IDs in id-on-bundleEID, mesh roles);
* :mod:`.authority` -- ``ucp trust init/issue/revoke``: the CA's directory;
* :mod:`.trustfile` -- one device's key, certificate and authority certificate;
* :mod:`.anchors` -- checking signers: revocations, a validation cache, signers' roles;
* :mod:`.mesh` -- a device's TLS settings and security policy, and who sent a message.
"""

from __future__ import annotations

from .anchors import MeshAnchors, RevocationState
from .authority import IssuedEntry, MeshAuthority
from .errors import TrustError
from .mesh import MESH_KEY, MeshTrust, mesh_anchors, sender_of
from .profile import CertificateFacts, MeshRole, certificate_facts
from .trustfile import TrustFile, check_node_id

__all__ = [
    "MESH_KEY",
    "CertificateFacts",
    "IssuedEntry",
    "MeshAnchors",
    "MeshAuthority",
    "MeshRole",
    "MeshTrust",
    "RevocationState",
    "TrustError",
    "TrustFile",
    "certificate_facts",
    "check_node_id",
    "mesh_anchors",
    "sender_of",
]
