"""The trusted mesh: a mesh authority, one trust file per device, revocations that travel the
mesh, and the checks that follow from them (docs/security.md, "A trusted mesh").

* :mod:`.profile` -- the certificates (node IDs in id-on-bundleEID, mesh roles);
* :mod:`.authority` -- ``ucp trust init/issue/revoke``: the CA's directory;
* :mod:`.trustfile` -- one device's key, certificate and authority certificate;
* :mod:`.anchors` -- checking signers: revocations, a validation cache, signers' roles;
* :mod:`.mesh` -- a device's TLS settings and security policy, and who sent a message.

Importing the package loads only :mod:`.facts` and :mod:`.errors`; the rest (and with it the
X.509 code of ``cryptography``) loads on first use of one of its names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import TrustError
from .facts import CertificateFacts, MeshRole

if TYPE_CHECKING:
    from .anchors import MeshAnchors, RevocationState
    from .authority import IssuedEntry, MeshAuthority
    from .mesh import MESH_KEY, MeshTrust, mesh_anchors, sender_of
    from .profile import certificate_facts
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

_LAZY = {
    "MeshAnchors": "anchors",
    "RevocationState": "anchors",
    "IssuedEntry": "authority",
    "MeshAuthority": "authority",
    "MESH_KEY": "mesh",
    "MeshTrust": "mesh",
    "mesh_anchors": "mesh",
    "sender_of": "mesh",
    "certificate_facts": "profile",
    "TrustFile": "trustfile",
    "check_node_id": "trustfile",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
