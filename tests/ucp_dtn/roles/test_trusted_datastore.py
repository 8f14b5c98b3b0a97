"""Ownership at a datastore in a trusted mesh, over real TLS sessions between in-process
nodes: ``b`` runs the datastore, ``a`` is a mesh node (it relays like a broker and publishes
like an executor), ``alice``, ``bob`` and ``boss`` (an admin) are clients."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from tests.ucp_dtn.agent_support import start_node
from ucp_dtn.roles import Mailbox, RoleName, role_endpoint
from ucp_dtn.roles.datastore import DatastoreRole
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.trust import MeshAuthority, MeshRole, MeshTrust
from ucp_dtn.ucp.messages import DataDelete, DataPut, DataReply, DataStatus, UcpMessage

DATASTORE = "dtn://b/ucp/datastore"


def _mesh_config(authority: MeshAuthority, tmp_path: Path, name: str, role: MeshRole) -> Any:
    path = tmp_path / f"{name}.pem"
    authority.issue(f"dtn://{name}/", role).write(path)
    mesh = MeshTrust.load(path)
    return {
        "tls": mesh.tls_settings(),
        "security": mesh.security_policy(),
        "session_check": mesh.session_refusal,
    }


async def test_only_owners_and_admins_change_data(tmp_path: Path) -> None:
    authority = MeshAuthority.create(tmp_path / "authority", "Test mesh")
    kinds = {
        "a": MeshRole.NODE,
        "b": MeshRole.NODE,
        "alice": MeshRole.CLIENT,
        "bob": MeshRole.CLIENT,
        "boss": MeshRole.ADMIN,
    }
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nodes = {
                name: await start_node(
                    nursery, name, **_mesh_config(authority, tmp_path, name, role)
                )
                for name, role in kinds.items()
            }
            role = DatastoreRole(
                nodes["b"].node,
                RoleSettings(roles=(RoleName.DATASTORE,), brokers=("dtn://a/",)),
            )
            await nursery.start(role.run)
            mailboxes = {}
            for name in ("a", "alice", "bob", "boss"):
                await nodes[name].node.connect(*nodes["b"].address)
                endpoint = RoleName.BROKER if name == "a" else RoleName.CLIENT
                mailbox = Mailbox(nodes[name].node, role_endpoint(f"dtn://{name}/", endpoint))
                await nursery.start(mailbox.run)
                mailboxes[name] = mailbox

            async def ask(who: str, message: UcpMessage) -> DataReply:
                [reply] = await mailboxes[who].request(DATASTORE, message, timeout_s=10)
                assert isinstance(reply.message, DataReply)
                return reply.message

            def outcomes() -> int:
                """Puts the datastore finished: refused by ownership, or stored in any way
                (``puts`` counts a put when its handling starts)."""
                stats = role.statistics()
                store = stats.store
                assert store is not None
                return (
                    stats.denied
                    + store.stored
                    + store.unchanged
                    + store.stale
                    + store.refused
                    + store.taken
                )

            async def relay(message: DataPut) -> None:
                """Send from node a; wait until the datastore handled it."""
                handled = outcomes()
                await mailboxes["a"].send(DATASTORE, message)
                while outcomes() == handled:
                    await trio.sleep(0.01)

            def put(who: str, name: str, **fields: Any) -> DataPut:
                rid = mailboxes[who].next_request_id()
                return DataPut(rid, name, f"{who}'s".encode(), time.time(), **fields)

            def delete(who: str, name: str, **fields: Any) -> DataDelete:
                return DataDelete(mailboxes[who].next_request_id(), name, **fields)

            assert (await ask("alice", put("alice", "notes"))).status == DataStatus.OK
            refused = await ask("bob", put("bob", "notes"))
            assert refused.status == DataStatus.DENIED
            assert "dtn://alice/ owns 'notes'" in refused.detail
            assert (await ask("bob", delete("bob", "notes"))).status == DataStatus.DENIED
            # A broker relaying bob's request does not make it his (the reply goes to bob).
            await relay(put("a", "notes", reply_to="dtn://bob/ucp/client"))
            assert role.statistics().denied == 3
            # alice herself, and an admin, may.
            assert (await ask("alice", put("alice", "notes"))).status == DataStatus.OK
            assert (await ask("boss", put("boss", "notes"))).status == DataStatus.OK
            # What nodes write (an executor's archive) another node may replace (a redeployed
            # job's second executor), a client may not.
            await relay(put("a", "job/results.zip", reply_to="dtn://e1/ucp/executor"))
            await relay(put("a", "job/results.zip", reply_to="dtn://e2/ucp/executor"))
            info = await role.store.info("job/results.zip")
            assert info is not None and info.writer == "dtn://e2/ucp/executor"
            assert (await ask("bob", put("bob", "job/results.zip"))).status == DataStatus.DENIED
            assert (await ask("boss", delete("boss", "notes"))).status == DataStatus.OK
            # Deleted: the name is free again.
            assert (await ask("bob", put("bob", "notes"))).status == DataStatus.OK
            assert role.statistics().denied == 4
            nursery.cancel_scope.cancel()
