"""Revocations that travel the mesh as bundles (:class:`RevocationService`).

Theory of operation
-------------------
The authority's revocation list is an X.509 CRL (RFC 5280 §5) it signs and numbers
(cRLNumber, §5.2.3): it authenticates itself, whoever carries it. Every node of a trusted mesh
registers the endpoint ``<node>/mesh/revocations`` (outside ``ucp/``: the list needs no BIB,
its own signature is checked) and, for every list it receives there:

1. checks that the mesh authority signed it and that it is newer than the one it holds
   (:meth:`MeshAnchors.apply <ucp_dtn.trust.MeshAnchors.apply>`); an older or equal one is
   dropped, a forged one is logged and dropped;
2. keeps it (``<workdir>/revoked.crl``, read again at start-up);
3. closes the sessions of revoked peers, and refuses their new sessions from then on (the
   node's session check, :meth:`MeshTrust.session_refusal`); their signatures no longer verify,
   so nothing they send reaches a role;
4. floods it: sends it to every neighbour, and to every neighbour that comes later (a node that
   was away when it spread gets it on its next session). A neighbour that has it already drops
   the copy, so the flood ends.

``ucp trust revoke ... --socket NODE/bpnode.sock`` hands a list to a node through its
application API (a bundle to that node's endpoint), which starts the flood. Lists live a week
in the network (:data:`LIFETIME_S`); a node holds the latest one for good.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from cryptography import x509

from .errors import TrustError

if TYPE_CHECKING:
    from ucp_dtn.agent import BundleNode

    from .anchors import MeshAnchors

__all__ = ["LIFETIME_S", "REVOCATIONS_DEMUX", "RevocationService", "revocations_endpoint"]

logger = logging.getLogger(__name__)

REVOCATIONS_DEMUX = "mesh/revocations"
"""The demux of every node's revocations endpoint."""
LIFETIME_S = 7 * 24 * 3600.0
"""Lifetime of a revocation bundle."""
CRL_FILE = "revoked.crl"
"""Where a node keeps the latest list, in its work directory."""
_POLL_S = 1.0
_MAX_CRL = 1024 * 1024


def revocations_endpoint(node_id: str) -> str:
    """The revocations endpoint of ``node_id`` (``dtn://hub/`` → ``dtn://hub/mesh/revocations``)."""
    return node_id + REVOCATIONS_DEMUX


class RevocationService:
    """Receive, apply, keep and flood revocation lists on one node (see the module docstring)."""

    def __init__(self, node: BundleNode, anchors: MeshAnchors) -> None:
        self.node = node
        self.anchors = anchors
        self._told: set[str] = set()
        workdir = node.config.workdir
        self._path: Path | None = None if workdir is None else workdir / CRL_FILE

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the kept list, register the endpoint, then serve until cancelled."""
        if self._path is not None:
            kept = await trio.to_thread.run_sync(_read, self._path)
            if kept is not None:
                try:
                    self._apply(kept)
                except TrustError as exc:
                    logger.warning("%s: %s (ignored)", self._path, exc)
        node_id = str(self.node.node_id)
        registration = self.node.register(revocations_endpoint(node_id))
        async with registration, trio.open_nursery() as nursery:
            nursery.start_soon(self._flood_to_newcomers)
            task_status.started()
            while True:
                delivery = await registration.receive()
                try:
                    applied = self._apply(delivery.payload)
                except TrustError as exc:
                    logger.warning("revocation list from %s refused: %s", delivery.source, exc)
                    applied = False
                await delivery.done()
                if applied:
                    await self._keep(delivery.payload)
                    closed = await self.node.recheck_sessions()
                    logger.warning(
                        "revocation list %d applied (%d certificates revoked, %d sessions closed)",
                        self.anchors.revocations.number,
                        len(self.anchors.revocations.serials),
                        closed,
                    )
                    self._told.clear()
                    self._told.add(str(delivery.source.node_id))
                    await self._flood()

    def _apply(self, der: bytes) -> bool:
        if len(der) > _MAX_CRL:
            raise TrustError("a revocation list larger than 1 MiB")
        try:
            crl = x509.load_der_x509_crl(der)
        except ValueError as exc:
            raise TrustError(f"not a revocation list: {exc}") from None
        return self.anchors.apply(crl, der)

    async def _keep(self, der: bytes) -> None:
        if self._path is not None:
            await trio.to_thread.run_sync(_write, self._path, der)

    async def _flood(self) -> None:
        """Send the list held to every neighbour not told yet."""
        from ucp_dtn.agent import AgentError
        from ucp_dtn.store import StoreError

        der = self.anchors.revocations.der
        if not der:
            return
        for peer in self.node.peers():
            neighbour = str(peer.node_id)
            if neighbour in self._told:
                continue
            self._told.add(neighbour)
            try:
                await self.node.send(
                    revocations_endpoint(neighbour),
                    der,
                    source=revocations_endpoint(str(self.node.node_id)),
                    lifetime_s=LIFETIME_S,
                )
            except (AgentError, StoreError) as exc:  # the store full...: try the next one
                logger.info("cannot send the revocation list to %s: %s", neighbour, exc)

    async def _flood_to_newcomers(self) -> None:
        while True:
            await trio.sleep(_POLL_S)
            present = {str(peer.node_id) for peer in self.node.peers()}
            self._told &= present  # a neighbour that left is told again when it comes back
            await self._flood()


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as stream:
            return stream.read(_MAX_CRL + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read %s: %s", path, exc.strerror or exc)
        return None


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
