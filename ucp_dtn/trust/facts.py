"""What a mesh certificate says, as plain values (no cryptography imported here: the roles and
the client read these on every message, and a node in open mode never loads X.509 code)."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

__all__ = ["CertificateFacts", "MeshRole"]


class MeshRole(enum.StrEnum):
    """What a device certificate lets its holder do in the mesh."""

    NODE = "node"
    """A daemon: may broker, execute, store and relay; may send jobs to executors."""
    CLIENT = "client"
    """A client: may submit jobs and put data, and read and change what it owns."""
    ADMIN = "admin"
    """A client that may also overwrite and delete what other clients own."""


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What a device certificate says, read once."""

    node_id: str
    """The node ID of its id-on-bundleEID subjectAltName (``""`` when it has none)."""
    role: MeshRole | None
    """Its mesh role (``None``: not a certificate of this profile)."""
    serial: int
    """Its serial number (revocations name it)."""
    not_after: datetime.datetime
    """The end of its validity."""

    @property
    def is_client(self) -> bool:
        """Whether it is a client's (admin or not)."""
        return self.role in (MeshRole.CLIENT, MeshRole.ADMIN)
