"""Replication and broker takeover with real ``ucp-bpnode`` processes (docs/disruption.md):
no single loss loses data or strands work.

One network shows the data side: a datum put with ``--replicas 2`` survives ``kill -9`` of the
datastore that took it (it is read, and a job that reads it runs); its factor is restored on a
third datastore once the dead one has been away past the replica timeout; two concurrent writes
of one name end with the same value on every replica; a delete made while a replica holder is
partitioned away reaches it when the partition heals; a datum with factor 1 stays on one
datastore. A second network shows the jobs side: a plan accepted by broker A whose jobs are
still queued when A is killed completes through broker B, each job run once, also after A comes
back.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import trio

from ucp_dtn.client import ClientSession, ClientSettings

from .daemons import Network, wait_until
from .test_disruption import FAST, collect_all, submit, wait_for_nodes
from .ucp_support import CAT_WAT, Client, explain, start_roles, write_wasm

REPLICAS = ["--replica-timeout", "3s"]
"""A datastore away for 3 s no longer counts as holding its replicas."""


async def replica_listing(client: Client, prefix: str | None = None) -> dict[str, Any]:
    """``ucp data ls --replicas --json``: the document (``entries`` by name)."""
    args = ["data", "ls", "--replicas", "--json"] + ([prefix] if prefix else [])
    done = await client.ucp(*args)
    if done.returncode != 0:
        return {"entries": {}, "datastores": 0}
    document: dict[str, Any] = json.loads(done.stdout)
    document["entries"] = {entry["name"]: entry for entry in document["entries"]}
    return document


async def settled(
    client: Client, name: str, *, holders: int, timeout: float = 30.0
) -> dict[str, Any]:
    """Wait until ``name`` meets its factor on ``holders`` datastores, none with an older
    write; its listing entry."""

    async def check() -> dict[str, Any] | None:
        entry: dict[str, Any] | None = (await replica_listing(client, name))["entries"].get(name)
        if entry and entry["meets_factor"] and len(entry["holders"]) == holders:
            return entry if not entry["stale"] else None
        return None

    found: dict[str, Any] = await wait_until(check, timeout=timeout, what=f"{name} on {holders}")
    return found


def datastore(node: str) -> str:
    return f"dtn://{node}/ucp/datastore"


async def test_replicated_data_survive_a_lost_datastore_and_deletes_reach_a_partitioned_one(
    network: Network, tmp_path: Path
) -> None:
    b = await start_roles(network, "b", "broker,executor", *FAST, *REPLICAS)
    d1 = await start_roles(network, "d1", "datastore", "-s", b.url, *FAST)
    d2 = await start_roles(network, "d2", "datastore", "-s", b.url, *FAST)
    client = Client(tmp_path / "home", b)
    await wait_for_nodes(client, {"dtn://d1/": "datastore", "dtn://d2/": "datastore"})

    # A put with two replicas: one datastore takes it, the other gets a copy.
    (tmp_path / "a.wav").write_bytes(b"RIFF" + bytes(range(256)) * 40)
    out = await client.ok("data", "put", "survey/a.wav", str(tmp_path / "a.wav"), "--replicas", "2")
    took = out.split(" on ")[1].split()[0]
    assert took in (datastore("d1"), datastore("d2")), out
    entry = await settled(client, "survey/a.wav", holders=2)
    assert entry["replicas"] == 2 and entry["holders"] == [datastore("d1"), datastore("d2")]

    # Two clients write one name at the same moment (--replace: the newest write wins, no
    # refusal of a taken name): every replica ends with the same write.
    other = Client(tmp_path / "other-home", b)
    for who in ("one", "two"):
        (tmp_path / who).write_bytes(f"gauge reading from {who}\n".encode())
    async with trio.open_nursery() as nursery:
        for writer, who in ((client, "one"), (other, "two")):
            nursery.start_soon(
                writer.ok,
                *("data", "put", "gauge", str(tmp_path / who), "--replicas", "2", "--replace"),
            )
    gauge = await settled(client, "gauge", holders=2)
    value = (await client.ucp("data", "get", "gauge")).stdout
    assert value in (b"gauge reading from one\n", b"gauge reading from two\n")
    assert gauge["size"] == len(value)
    # Without --replace a replicated name another write holds is refused, and stays as it is.
    taken = await other.ucp("data", "put", "gauge", str(tmp_path / "a.wav"), "--replicas", "2")
    assert taken.returncode == 1 and "already taken" in taken.stderr.decode(), explain(taken)
    assert (await client.ucp("data", "get", "gauge")).stdout == value

    # kill -9 the datastore that took the put: the datum is still read, and a job reads it.
    dead, survivor = (d1, d2) if took == datastore("d1") else (d2, d1)
    dead.kill()
    got = await client.ucp("data", "get", "survey/a.wav")
    assert got.returncode == 0 and got.stdout == (tmp_path / "a.wav").read_bytes(), explain(got)
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    plan = tmp_path / "reads.toml"
    plan.write_text(
        '[jobs.reads]\nwasm = "cat.wasm"\nargs = ["copy.wav", "in.wav"]\n'
        'inputs = { "in.wav" = "survey/a.wav" }\nresults = ["copy.wav"]\n'
    )
    await submit(client, plan)
    job = await client.wait_for_state("reads", ["done", "failed"], timeout=30)
    assert job["state"] == "done", job
    results = tmp_path / "results"
    await collect_all(client, results, {"reads"}, timeout=20)
    assert (results / "reads" / "copy.wav").read_bytes() == (tmp_path / "a.wav").read_bytes()

    # A third datastore joins; once the dead one has been away past the replica timeout, the
    # second copy is made there. d3 reaches b through a relay (to partition it later).
    relay = await network.relay(b.address)
    relay_url = f"tcp://{relay[0]}:{relay[1]}"
    d3 = await start_roles(network, "d3", "datastore", "-s", relay_url, *FAST)
    entry = await settled(client, "survey/a.wav", holders=2)
    assert sorted(entry["holders"]) == sorted([datastore(survivor.name), datastore("d3")])
    await settled(client, "gauge", holders=2)

    # A delete made while d3 is partitioned away reaches it when the partition heals.
    (tmp_path / "doomed").write_bytes(b"delete me")
    await client.ok("data", "put", "doomed", str(tmp_path / "doomed"), "--replicas", "2")
    await settled(client, "doomed", holders=2)
    network.relays[-1].kill()  # the partition
    removed = await client.ok("data", "rm", "doomed")
    assert removed.strip() in ("deleted 1 datum", "deleted 2 data"), removed
    await network.relay(b.address, "--listen", f"{relay[0]}:{relay[1]}")  # healed

    async def gone_everywhere() -> bool:
        listing = await replica_listing(client)
        return listing["datastores"] == 2 and "doomed" not in listing["entries"]

    await wait_until(gone_everywhere, timeout=30, what="the delete to reach d3")

    # Factor 1 behaves as before: one datastore, no copies.
    (tmp_path / "plain").write_bytes(b"once")
    await client.ok("data", "put", "plain", str(tmp_path / "plain"))
    plain = await settled(client, "plain", holders=1)
    assert plain["replicas"] == 1
    await trio.sleep(2)
    assert len((await replica_listing(client, "plain"))["entries"]["plain"]["holders"]) == 1
    assert not dead.alive and d3.alive


async def test_queued_jobs_of_a_killed_broker_complete_through_another_once(
    network: Network, tmp_path: Path
) -> None:
    takeover = ["--broker-timeout", "2s"]
    ba = await start_roles(network, "ba", "broker", *FAST, *takeover)
    bb = await start_roles(network, "bb", "broker", "-s", ba.url, *FAST, *takeover)
    d = await start_roles(network, "d", "datastore", "-s", ba.url, "-s", bb.url, *FAST)
    client = Client(tmp_path / "home", ba)
    await wait_for_nodes(client, {"dtn://d/": "datastore"})

    # Three jobs with inline data (module and input travel inside the submissions); no
    # executor yet, so they wait at ba, which syncs them to bb.
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        "".join(
            f'[jobs.j{n}]\nwasm = "cat.wasm"\nargs = ["out.txt", "in.txt"]\n'
            f'files = {{ "in.txt" = {{ text = "payload {n}\\n" }} }}\nresults = ["out.txt"]\n'
            for n in range(3)
        )
    )
    ids = await submit(client, plan)
    via_bb = Client(tmp_path / "home", bb)
    for name in ids:
        queued = await client.wait_for_state(name, ["queued"])
        assert queued["accepted_by"] == "dtn://ba/ucp/broker", queued
    # bb has them from ba's syncs (a broker syncs a job it accepted at its next tick). Asked of
    # bb itself, from another home: `ucp status` in the submitter's home answers from its
    # journal and whichever broker it reaches first, so it said "queued" before bb knew.
    job_ids = tuple(uuid.UUID(job_id) for job_id in ids.values())
    observer = ClientSettings(
        home=tmp_path / "observer", via=(bb.address,), broker="dtn://bb/", wait_s=10.0
    )
    async with ClientSession.open(observer) as session:

        async def bb_knows_them() -> bool:
            reply = await session.status(job_ids)
            return {entry.job_id for entry in reply.jobs} == set(job_ids)

        await wait_until(bb_knows_them, timeout=20, what="bb to hear of the jobs from ba")

    ba.kill()
    x = await start_roles(network, "x", "executor", "-s", bb.url, "-s", d.url, *FAST)
    results = tmp_path / "out"
    await collect_all(via_bb, results, set(ids), timeout=40)
    for n, name in enumerate(sorted(ids)):
        assert (results / name / "out.txt").read_text() == f"payload {n}\n"
        status = (await via_bb.status(name, via=bb))[name]
        assert status["state"] == "done" and status["accepted_by"] == "dtn://bb/ucp/broker"

    # ba comes back with its journal (the jobs queued there): it waits for bb's sync and drops
    # them; x, which now hears of ba too, runs nothing twice.
    before = len(ba.log.read_text())
    ba = await network.restart(ba)

    async def handed_back() -> bool:
        return ba.log.read_text()[before:].count("it took the job over") == len(ids)

    await wait_until(handed_back, timeout=20, what="ba to hand the jobs back")
    await trio.sleep(2)
    broker_log, executor_log = bb.log.read_text(), x.log.read_text()
    after_restart = ba.log.read_text()[before:]
    for job_id in ids.values():
        assert f"job {job_id} taken over from broker dtn://ba/ucp/broker" in broker_log
        assert broker_log.count(f"job {job_id} dispatched to") == 1
        assert executor_log.count(f"job {job_id} finished") == 1
        assert f"job {job_id} dispatched to" not in after_restart
    assert d.alive


async def test_a_job_whose_broker_dies_before_its_first_sync_moves_with_its_client_once(
    network: Network, tmp_path: Path
) -> None:
    # ba ticks every ten minutes (heartbeat 10m, executor timeout 1h): its first broker sync,
    # and the one it owes a job it accepted, would come long after this test. So the window
    # between its job-accepted and its sync, in which no other broker knows the job, is open
    # for the whole test instead of a race of about a second.
    slow_sync = ["--heartbeat", "10m", "--executor-timeout", "1h"]
    ba = await start_roles(network, "ba", "broker", *FAST, *slow_sync)
    bb = await start_roles(network, "bb", "broker", "-s", ba.url, *FAST)
    client = Client(tmp_path / "home", ba)
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[jobs.lone]\nwasm = "cat.wasm"\nargs = ["out.txt", "in.txt"]\n'
        'files = { "in.txt" = { text = "only the client knew\\n" } }\nresults = ["out.txt"]\n'
    )
    ids = await submit(client, plan)  # asserts that ba accepted it
    job_id = ids["lone"]
    assert (await client.status("lone"))["lone"]["accepted_by"] == "dtn://ba/ucp/broker"

    # bb has not heard of it (asked of bb itself, from another home)...
    observer = ClientSettings(
        home=tmp_path / "observer", via=(bb.address,), broker="dtn://bb/", wait_s=10.0
    )
    async with ClientSession.open(observer) as session:
        assert (await session.status((uuid.UUID(job_id),))).jobs == ()
    # ...when ba dies for good.
    ba.kill()
    x = await start_roles(network, "x", "executor", "-s", bb.url, *FAST)

    # The client asks bb, which does not know the job, and ba, which does not answer: it sends
    # the job to bb (once: bb knows it from then on), says so, and collects its result.
    results = tmp_path / "out"
    told = ""
    with trio.fail_after(40):
        while not (results / "lone" / "out.txt").exists():
            done = await client.ucp(
                *("collect", "-o", str(results), "--broker", "dtn://bb/"),
                *("--resubmit-after", "1s", "--wait", "5s"),
                via=bb,
            )
            assert done.returncode == 0, explain(done)
            told += done.stderr.decode()
            await trio.sleep(0.5)
    assert (results / "lone" / "out.txt").read_text() == "only the client knew\n"
    moved = "lone ({}): moved to dtn://bb/ucp/broker: dtn://ba/ucp/broker accepted it, does not"
    assert told.count(moved.format(job_id[:8])) == 1, told
    status = (await client.status("lone", via=bb))["lone"]
    assert status["state"] == "done" and status["accepted_by"] == "dtn://bb/ucp/broker", status

    broker_log, executor_log = bb.log.read_text(), x.log.read_text()
    assert broker_log.count(f"job {job_id} (lone) accepted from") == 1
    assert "moved here from broker dtn://ba/ucp/broker by its client" in broker_log
    assert broker_log.count(f"job {job_id} dispatched to") == 1
    assert executor_log.count(f"job {job_id} finished") == 1
    assert not ba.alive
