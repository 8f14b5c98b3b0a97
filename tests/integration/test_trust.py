"""A trusted mesh of real daemons (docs/security.md, "A trusted mesh"): an authority made with
``ucp trust init``, one trust file per device from ``ucp trust issue``, ``ucp-bpnode --trust``
and ``ucp trust use``; then what an adversary on the same loopback can no longer do."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import trio

from ucp_dtn.agent import BundleNode, NodeConfig
from ucp_dtn.roles import RoleName, role_endpoint
from ucp_dtn.trust import MeshTrust, TrustFile
from ucp_dtn.ucp import InlineData, JobDispatch, JobInfo, encode_message

from .daemons import Daemon, Network, run_ucp, wait_until
from .ucp_support import CAT_WAT, Client, explain, start_roles, write_wasm

ONE_JOB = """
[jobs.secret]
wasm = "cat.wasm"
args = ["out.txt", "in.txt"]
files = { "in.txt" = { text = "MARKER-7f3a\\n" } }
results = ["out.txt"]
"""

MARKER = b"SECRET-RESULT-4242"

SHIFT_WAT = r"""
;; Writes to stdout the bytes of its data segment, each plus one: an output that is in none
;; of the job's inputs.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "SHIFTED")
  (func (export "_start") (local $i i32)
    (loop $next
      (i32.store8 (i32.add (i32.const 16) (local.get $i))
        (i32.add (i32.load8_u (i32.add (i32.const 16) (local.get $i))) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 18))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


async def _ucp_ok(*args: str, cwd: Path) -> str:
    done = await run_ucp(*args, "--authority", str(cwd / "authority"))
    assert done.returncode == 0, explain(done)
    return done.stdout.decode()


async def _issue(base: Path, kind: str, name: str, *extra: str) -> Path:
    output = base / f"{name.replace('://', '-').strip('/').replace('/', '-')}.trust.pem"
    await _ucp_ok("trust", "issue", kind, name, "-o", str(output), *extra, cwd=base)
    return output


def _pem_parts(trust_file: Path, directory: Path) -> tuple[Path, Path, Path]:
    """The key, certificate and CA of a trust file in separate PEM files (for --tls-*)."""
    from cryptography.hazmat.primitives import serialization

    trust = TrustFile.read(trust_file)
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "key.pem"
    cert = directory / "cert.pem"
    ca = directory / "ca.pem"
    key.write_bytes(
        trust.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(trust.certificate.public_bytes(serialization.Encoding.PEM))
    ca.write_bytes(trust.authority.public_bytes(serialization.Encoding.PEM))
    return key, cert, ca


async def _received(daemon: Daemon) -> int:
    info = await daemon.info()
    return int(info["statistics"]["received"])


async def test_a_trusted_mesh_admits_only_its_members(network: Network, tmp_path: Path) -> None:
    await _ucp_ok("trust", "init", "--name", "Test mesh", cwd=tmp_path)
    hub_file = await _issue(tmp_path, "node", "dtn://hub/")
    b_file = await _issue(tmp_path, "node", "dtn://b/")
    alice_file = await _issue(tmp_path, "client", "alice")
    assert oct(hub_file.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "authority" / "ca.key").stat().st_mode & 0o777) == "0o600"

    hub = await start_roles(
        network,
        "hub",
        "broker,executor,datastore",
        "--trust",
        str(hub_file),
        "--trust-client",
        "dtn://alice/",
        "--trust-client",
        "dtn://mallory/",
        "-v",
    )
    assert "OPEN MODE" not in hub.log.read_text()

    # An adversary without a certificate, claiming to be dtn://c/: no session.
    intruder = await network.start("intruder", "-s", hub.url, node_id="dtn://c/")
    # An adversary holding b's certificate and key, claiming to be dtn://c/: no session
    # (RFC 9174 §4.4.4.3: the node ID is not the one its certificate names).
    key, cert, ca = _pem_parts(b_file, tmp_path / "stolen")
    impostor = await network.start(
        "impostor",
        "-s",
        hub.url,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--tls-ca",
        str(ca),
        node_id="dtn://c/",
    )
    for number in range(5):
        done = await hub.ucp("send", "-d", "dtn://c/inbox", stdin=b"for c %d" % number)
        assert done.returncode == 0, explain(done)

    async def both_refused() -> bool:
        log = hub.log.read_text()
        return "requires TLS" in log and "does not match" in log

    await wait_until(both_refused, timeout=20)
    await trio.sleep(1.0)
    for adversary in (intruder, impostor):
        assert (await adversary.info())["peers"] == []
        assert await _received(adversary) == 0
    assert "OPEN MODE" in intruder.log.read_text()

    # A client without a trust file: no session, and told why.
    stranger = Client(tmp_path / "stranger", hub)
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text(ONE_JOB)
    done = await stranger.ucp("submit", str(plan), "--wait", "3s")
    assert "queued" in done.stdout.decode(), explain(done)
    assert "ucp trust use" in done.stdout.decode(), explain(done)

    # An enrolled client runs a job through relay b. Its result is sealed to alice: b's store
    # and the hub's datastore hold no plaintext of it (the job computes the marker, which is
    # in none of its inputs).
    relay = await network.start("b", "--trust", str(b_file), "-s", hub.url, "-v")

    async def relay_connected() -> bool:
        return any(peer["node_id"] == "dtn://b/" for peer in (await hub.info())["peers"])

    await wait_until(relay_connected, timeout=20)
    alice = Client(tmp_path / "alice", relay)
    used = await run_ucp("trust", "use", str(alice_file), "--home", str(alice.home))
    assert used.returncode == 0, explain(used)
    assert oct((alice.home / "trust.pem").stat().st_mode & 0o777) == "0o600"
    shifted = bytes(byte - 1 for byte in MARKER).decode()
    (tmp_path / "shift.wat").write_text(SHIFT_WAT.replace("SHIFTED", shifted))
    write_wasm(tmp_path, "shift.wasm", (tmp_path / "shift.wat").read_text())
    secret = tmp_path / "secret.toml"
    secret.write_text('[jobs.secret]\nwasm = "shift.wasm"\n')
    done = await alice.ucp("run", str(secret), "-o", str(tmp_path / "out"), "--timeout", "40s")
    assert done.returncode == 0, explain(done)
    assert (tmp_path / "out" / "secret" / "stdout").read_bytes() == MARKER
    assert (await relay.info())["statistics"]["forwarded"] > 0
    for where in (network.workdir("b"), network.workdir("hub") / "roles" / "datastore"):
        for path in where.rglob("*"):
            if path.is_file():
                assert MARKER not in path.read_bytes(), f"plaintext of the result in {path}"
    done = await alice.ucp("run", str(plan), "-o", str(tmp_path / "out"), "--timeout", "40s")
    assert done.returncode == 0, explain(done)
    assert (tmp_path / "out" / "secret" / "out.txt").read_text() == "MARKER-7f3a\n"
    jobs = json.loads(await alice.ok("status", "--json"))["jobs"]
    assert [job["state"] for job in jobs] == ["done", "done"]
    job_id = jobs[-1]["job_id"]
    notes = tmp_path / "notes.txt"
    notes.write_text("alice's notes\n")
    await alice.ok("data", "put", "shared/notes", str(notes))
    diary = tmp_path / "diary.txt"
    diary.write_text("alice's diary\n")
    await alice.ok("data", "put", "shared/diary", str(diary), "--private")

    # Another enrolled client: reads shared data (mesh-wide by default), but neither
    # overwrites nor deletes alice's, nor sees her job's data and result; told why each time.
    mallory_file = await _issue(tmp_path, "client", "mallory")
    mallory = Client(tmp_path / "mallory-home", hub)
    used = await run_ucp("trust", "use", str(mallory_file), "--home", str(mallory.home))
    assert used.returncode == 0, explain(used)
    assert await mallory.ok("data", "get", "shared/notes") == "alice's notes\n"
    listing = await mallory.ok("data", "ls", "shared")
    assert "shared/notes" in listing and "shared/diary" not in listing
    evil = tmp_path / "evil.txt"
    evil.write_text("mallory was here\n")
    for attempt in (
        ("data", "get", "shared/diary"),
        ("data", "put", "shared/notes", str(evil), "--replace"),
        ("data", "rm", "shared/notes"),
        ("data", "get", f"{job_id}/result"),
        ("data", "ls", "--job", job_id),
        ("data", "rm", "--job", job_id, "--with-result"),
    ):
        done = await mallory.ucp(*attempt)
        assert done.returncode != 0, explain(done)
        assert "not allowed" in done.stderr.decode(), explain(done)
        assert "dtn://alice/" in done.stderr.decode() or "private" in done.stderr.decode()
    assert await alice.ok("data", "get", "shared/notes") == "alice's notes\n"
    assert await alice.ok("data", "get", "shared/diary") == "alice's diary\n"
    assert "shared/diary" in await alice.ok("data", "ls", "shared")
    await alice.ok("data", "get", f"{job_id}/result", "-o", str(tmp_path / "result.zip"))
    assert (await mallory.status()) == {}

    await run_ucp("agent", "stop", "--home", str(mallory.home))

    # An enrolled client the hub's broker does not list (--trust-client): its job is rejected,
    # and it is told why.
    carol = Client(tmp_path / "carol", hub)
    carol_file = await _issue(tmp_path, "client", "carol")
    used = await run_ucp("trust", "use", str(carol_file), "--home", str(carol.home))
    assert used.returncode == 0, explain(used)
    done = await carol.ucp("run", str(plan), "-o", str(tmp_path / "carol-out"), "--timeout", "20s")
    assert done.returncode != 0, explain(done)
    assert (
        "dtn://carol/ is not among the clients this broker takes jobs from"
        in (done.stdout + done.stderr).decode()
    ), explain(done)
    # The rejection ends the wait for an answer at once (it waited --wait for a job-accepted
    # that never comes, and said "not confirmed yet").
    assert "1 rejected" in done.stdout.decode() and "not confirmed" not in done.stdout.decode()
    await run_ucp("agent", "stop", "--home", str(carol.home))
    # An enrolled client that sends a job straight to the executor, as if it were a broker:
    # refused (executors take jobs only from mesh nodes), and the job never runs.
    wasm = (tmp_path / "cat.wasm").read_bytes()
    job = JobInfo(
        job_id=uuid.UUID(int=77), wasm=InlineData(wasm), name="sneaky", args=("x.txt", "y.txt")
    )
    mallory_trust = MeshTrust.load(mallory_file)
    node = BundleNode(
        mallory_trust.configure(
            NodeConfig(node_id="dtn://mallory/", workdir=tmp_path / "mallory-node")
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await node.connect(*hub.address)
        dispatch = JobDispatch(
            job, broker=str(role_endpoint(hub.node_id, RoleName.BROKER)), client="dtn://mallory/"
        )
        await node.send(
            role_endpoint(hub.node_id, RoleName.EXECUTOR),
            encode_message(dispatch),
            source=role_endpoint("dtn://mallory/", RoleName.CLIENT),
        )

        async def refused() -> bool:
            return "refused job-dispatch from dtn://mallory/ucp/client" in hub.log.read_text()

        await wait_until(refused, timeout=20)
        nursery.cancel_scope.cancel()
    assert "only mesh nodes send jobs to executors" in hub.log.read_text()
    assert str(job.job_id) not in hub.log.read_text().split("refused job-dispatch")[0]
    assert f"job {job.job_id} (sneaky)" not in hub.log.read_text()

    # Revoking mallory: the list is handed to relay b, travels to the hub as a bundle, and
    # from then on the hub refuses mallory's sessions (and so everything mallory sends).
    revoked = await run_ucp(
        "trust",
        "revoke",
        "dtn://mallory/",
        "--socket",
        str(relay.socket),
        "--authority",
        str(tmp_path / "authority"),
    )
    assert revoked.returncode == 0, explain(revoked)

    async def applied() -> bool:
        return "revocation list 1 applied" in hub.log.read_text()

    await wait_until(applied, timeout=20)
    assert "revocation list 1 applied" in relay.log.read_text()
    assert (hub.log.parent / "hub" / "revoked.crl").exists()
    done = await mallory.ucp("data", "get", "shared/notes", "--wait", "3s")
    assert done.returncode != 0, explain(done)
    assert "revoked?" in done.stderr.decode(), explain(done)
    assert "revoked" in hub.log.read_text().split("revocation list 1 applied")[1]
    assert await alice.ok("data", "get", "shared/notes") == "alice's notes\n"
