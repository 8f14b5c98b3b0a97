"""Who asks a datastore, and what they may read and change, in a trusted mesh
(docs/security.md, "What each member may do").

A datum belongs to its writer's node. The *requester* of a request is its signer when a client
sends it; when a mesh node sends it (a broker relaying a client's request, an executor
publishing a job's results, a datastore copying a replica) it is the requester the node names
(``reply_to``): nodes are the mesh's infrastructure and speak for the clients they relay.

* **Changing** (a put over a datum, a delete): its owner, an admin, and a node acting for
  itself over what nodes wrote (a redeployed job's second executor replaces the first's
  archive). Replica copies and job deletes a broker relays (it checked the job's owner) pass.
* **Reading** (a get, a listing): every member, except data put ``--private``: its owner, an
  admin, and nodes acting for themselves (an executor fetching a job's inputs).

In open mode (no signer known) everything is allowed, as without a trusted mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...trust import MeshAnchors, MeshRole
from ...ucp.messages import UcpMessage
from ..authorization import may_change
from ..endpoints import RoleName, node_of, role_of_endpoint
from ..mailbox import Incoming

__all__ = ["Requester", "requester_of"]


@dataclass(frozen=True, slots=True)
class Requester:
    """Who a request is for, as far as ownership goes."""

    node: str
    """The requester's node ID."""
    admin: bool
    """Whether it holds an admin certificate (as far as this node has seen it sign)."""
    for_itself: bool
    """A mesh node acting for itself (not relaying a client's request)."""

    def may_change(self, writer: str | None) -> bool:
        """Whether it may overwrite or delete what ``writer`` (an endpoint) wrote."""
        if self.for_itself and writer is not None and _by_node(writer):
            return True
        return may_change(self.node, writer, admin=self.admin)

    def may_read(self, writer: str | None, private: bool) -> bool:
        """Whether it may read a datum ``writer`` wrote, ``private`` or not."""
        if not private or self.admin or self.for_itself or writer is None:
            return True
        return str(node_of(writer)) == self.node


def _by_node(writer: str) -> bool:
    return role_of_endpoint(writer) is not RoleName.CLIENT


def requester_of(
    incoming: Incoming, message: UcpMessage, mesh: MeshAnchors | None
) -> Requester | None:
    """The requester of ``message`` (see the module docstring); ``None`` in open mode."""
    sender = incoming.sender
    if sender is None:
        return None
    relayed = sender.role is MeshRole.NODE
    reply_to = getattr(message, "reply_to", None)
    claimed = reply_to if relayed and isinstance(reply_to, str) else str(incoming.source)
    node = sender.node_id if not relayed else str(node_of(claimed))
    known = mesh.signer(node) if mesh is not None else None
    admin = sender.role is MeshRole.ADMIN or (known is not None and known.role is MeshRole.ADMIN)
    return Requester(node, admin, relayed and _by_node(claimed))
