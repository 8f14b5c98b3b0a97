"""Disruption tolerance of the UCP roles with real ``ucp-bpnode`` processes: an executor killed
mid-job, a broker killed, the last broker killed (a node promotes itself), and a partition
between a broker and its executor that heals (see docs/disruption.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from convergence.lossy.relay import LossyRelay

from .daemons import Daemon, Network
from .ucp_support import HELLO_WAT, Client, start_roles, write_wasm

FAST = ["--executor-timeout", "3s", "--route-interval", "1s", "--reconnect-max", "500ms"]
"""Short timeouts: executors expire after 3 s, routes (and the roles they carry) after 3 s."""

LOSSY = ["--drop-every", "3s", "--cut-after-bytes", "5KiB,7KiB,6KiB", "--latency", "2ms"]
"""Relay flags of the lossy test: connections cut every 3 s on average, and the first three
after exact byte counts (mid-transfer cuts on any machine)."""
COUNT = 200
"""Jobs of the lossy test."""

JOB_S = 4.0
"""How long the sleeping job runs: long enough to be seen running (status polls), and to be
cut off, killed or partitioned away while it runs. It sleeps rather than computes, so that it
lasts as long on a loaded machine as on an idle one and leaves the cores to the daemons."""


class RelayedClient(Client):
    """A client that reaches the network through ``url`` (a relay) instead of a daemon."""

    def __init__(self, home: Path, url: str) -> None:
        super().__init__(home, None)
        self.url = url

    def flags(self, via: Daemon | None = None) -> list[str]:
        return ["--home", str(self.home), "--via", via.url if via is not None else self.url]


def sleep_wat(seconds: float = JOB_S) -> str:
    """Sleeps ``seconds`` (WASI ``poll_oneoff``, a relative timeout on the monotonic clock),
    then writes "slept" to stdout; traps if the sleep fails."""
    return f"""
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "slept\\n")
  ;; 0: the subscription (userdata, tag 0 = clock, then at 16 clock ID 1 = monotonic, at 24
  ;; the timeout in ns, flags 0 = relative); 64: its event; 128: event count; 192: iovec.
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const {round(seconds * 1e9)}))
    (if (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))
      (then unreachable))
    (i32.store (i32.const 192) (i32.const 256))
    (i32.store (i32.const 196) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 192) (i32.const 1) (i32.const 200)))))
"""


def sleep_plan(
    tmp_path: Path, *names: str, file: str = "plan.toml", seconds: float = JOB_S
) -> Path:
    write_wasm(tmp_path, "sleep.wasm", sleep_wat(seconds))
    plan = tmp_path / file
    plan.write_text("".join(f'[jobs.{name}]\nwasm = "sleep.wasm"\n' for name in names))
    return plan


async def nodes_seen(client: Client, via: Daemon | None = None) -> dict[str, list[str]]:
    """``ucp status --nodes``: node → its roles, as the nearest broker knows them."""
    done = await client.ucp("status", "--nodes", "--json", via=via)
    if done.returncode != 0:
        return {}
    document: dict[str, Any] = json.loads(done.stdout)
    return {node["node"]: node["roles"] for node in document["nodes"]}


async def wait_for_nodes(
    client: Client, wanted: dict[str, str], *, timeout: float = 20.0, via: Daemon | None = None
) -> None:
    """Until the nearest broker knows every node of ``wanted`` with its role."""
    seen: dict[str, list[str]] = {}
    with trio.move_on_after(timeout):
        while True:
            seen = await nodes_seen(client, via)
            if all(role in seen.get(node, ()) for node, role in wanted.items()):
                return
            await trio.sleep(0.5)
    raise AssertionError(f"the broker never knew {wanted}: it knows {seen}")


async def submit(client: Client, plan: Path) -> dict[str, str]:
    """``ucp submit``: job name → job ID."""
    report = json.loads(await client.ok("submit", str(plan), "--json"))
    assert report["outcome"] == "accepted", report
    return {job["name"]: job["job_id"] for job in report["jobs"]}


async def collect_all(client: Client, out: Path, names: set[str], *, timeout: float) -> None:
    """``ucp collect`` until every job of ``names`` has its stdout in ``out``."""
    with trio.fail_after(timeout):
        while not all((out / name / "stdout").exists() for name in names):
            await client.ucp("collect", "-o", str(out))
            await trio.sleep(0.5)


async def test_an_executor_killed_mid_job_its_job_completes_elsewhere_once(
    network: Network, tmp_path: Path
) -> None:
    b = await start_roles(network, "b", "broker,datastore", *FAST)
    x1 = await start_roles(network, "x1", "executor", "-s", b.url, *FAST)
    client = Client(tmp_path / "home", b)
    await wait_for_nodes(client, {"dtn://x1/": "executor"})
    ids = await submit(client, sleep_plan(tmp_path, "nap"))
    running = await client.wait_for_state("nap", ["running"])
    assert running["executor"] == "dtn://x1/ucp/executor", running

    # Killed while the job runs; another executor comes (while the broker's executor timeout
    # runs out on x1).
    x1.kill()
    x2 = await start_roles(network, "x2", "executor", "-s", b.url, *FAST)
    done = await client.wait_for_state("nap", ["done", "failed"], timeout=35)
    assert done["state"] == "done" and done["executor"] == "dtn://x2/ucp/executor", done
    out = tmp_path / "out"
    await collect_all(client, out, {"nap"}, timeout=15)
    assert (out / "nap" / "stdout").read_text() == "slept\n"

    job_id = ids["nap"]
    log = b.log.read_text()
    assert f"job {job_id}: executor dtn://x1/ucp/executor lost during attempt 1" in log
    assert f"job {job_id} dispatched to dtn://x2/ucp/executor (attempt 2)" in log
    assert log.count(f"job {job_id} done") == 1
    assert x2.alive


async def test_a_broker_killed_its_executor_and_datastore_serve_through_another(
    network: Network, tmp_path: Path
) -> None:
    b1 = await start_roles(network, "b1", "broker", *FAST)
    b2 = await start_roles(network, "b2", "broker", *FAST)
    both = ["-s", b1.url, "-s", b2.url]
    d = await start_roles(network, "d", "datastore", *both, *FAST)
    await start_roles(network, "x", "executor", *both, *FAST)
    client = Client(tmp_path / "home", d)
    # The nearest broker of d: b1 and b2 are one hop away, b1 has the smaller node ID.
    await wait_for_nodes(client, {"dtn://x/": "executor", "dtn://d/": "datastore"})
    # A long job, so that it still runs when b1 is gone and x no longer lists b1 as a broker
    # (its routes expire 3 s after the kill).
    ids = await submit(client, sleep_plan(tmp_path, "before", seconds=2 * JOB_S))
    running = await client.wait_for_state("before", ["running"])
    assert running["broker"] == "dtn://b1/ucp/broker", running
    # b2 hears of the job from b1's broker syncs (b1 syncs a job it accepted at its next tick).
    synced = await client.wait_for_state("before", ["running"], via=b2, timeout=20)
    assert synced["broker"] == "dtn://b1/ucp/broker", synced
    b1.kill()

    # The executor reports the job to b2 (b1 is gone from its role directory). b2 takes it
    # over and hands the result to the client -- or, if no sync about the job reached b2
    # before b1 died (a slow machine), keeps the result as <job-uuid>/result in the
    # datastore, where the client's collect finds it. Either way the client gets it, once.
    out = tmp_path / "out"
    await collect_all(client, out, {"before"}, timeout=35)
    assert (out / "before" / "stdout").read_text() == "slept\n"
    log = b2.log.read_text()
    taken_over = f"job {ids['before']} taken over from broker dtn://b1/ucp/broker" in log
    kept = f"result for unknown job {ids['before']} from dtn://x/ucp/executor" in log
    assert taken_over or kept
    if taken_over:
        done = await client.wait_for_state("before", ["done", "failed"], timeout=10)
        assert done["state"] == "done", done

    # New work goes to b2, and runs on the same executor with the same datastore.
    await wait_for_nodes(client, {"dtn://x/": "executor", "dtn://d/": "datastore"})
    await submit(client, sleep_plan(tmp_path, "after", file="after.toml", seconds=0))
    after = await client.wait_for_state("after", ["done", "failed"], timeout=20)
    assert after["state"] == "done" and after["broker"] == "dtn://b2/ucp/broker", after
    await collect_all(client, out, {"after"}, timeout=15)


async def test_the_last_broker_killed_a_node_promotes_itself(
    network: Network, tmp_path: Path
) -> None:
    b = await start_roles(network, "b", "broker", *FAST)
    d = await start_roles(network, "d", "datastore", "-s", b.url, *FAST)
    promote = ["--promote-probability", "1", "--broker-timeout", "2s"]
    await start_roles(network, "x", "executor", "-s", b.url, "-s", d.url, *promote, *FAST)
    client = Client(tmp_path / "home", d)
    await wait_for_nodes(client, {"dtn://x/": "executor", "dtn://d/": "datastore"})
    assert "broker" not in (await nodes_seen(client)).get("dtn://x/", [])

    b.kill()
    # x finds no broker for 2 s, promotes itself; d learns of it from x's route advertisement.
    await wait_for_nodes(client, {"dtn://x/": "broker", "dtn://d/": "datastore"}, timeout=25)
    await submit(client, sleep_plan(tmp_path, "orphaned", seconds=0))
    done = await client.wait_for_state("orphaned", ["done", "failed"], timeout=20)
    assert done["state"] == "done" and done["broker"] == "dtn://x/ucp/broker", done
    assert done["executor"] == "dtn://x/ucp/executor", done
    out = tmp_path / "out"
    await collect_all(client, out, {"orphaned"}, timeout=15)
    assert (out / "orphaned" / "stdout").read_text() == "slept\n"


async def test_a_partition_between_broker_and_executor_heals_with_every_result_delivered(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,datastore", *FAST)
    async with trio.open_nursery() as nursery:
        relay = LossyRelay(target=hub.address, name="hub-x")
        await nursery.start(relay.run)
        host, port = relay.address
        x = await start_roles(
            network, "x", "executor", "-s", f"tcp://{host}:{port}", "--max-jobs", "4", *FAST
        )
        client = Client(tmp_path / "home", hub)
        await wait_for_nodes(client, {"dtn://x/": "executor"})
        first = {f"first{n}" for n in range(4)}
        await submit(client, sleep_plan(tmp_path, *sorted(first)))
        with trio.fail_after(20):
            while {job["state"] for job in (await client.status()).values()} != {"running"}:
                await trio.sleep(0.2)

        # Cut off: x keeps running its jobs and keeps their results in its store; the broker
        # loses x and queues its jobs again; new jobs wait for an executor.
        relay.set_down(True)
        later = {"later0", "later1"}
        await submit(client, sleep_plan(tmp_path, *sorted(later), file="later.toml"))
        with trio.fail_after(20):
            while True:
                jobs = await client.status()
                if all(jobs[name]["state"] == "queued" for name in later | first):
                    break
                await trio.sleep(0.5)
        assert all("attempt 1 lost" in jobs[name]["detail"] for name in first), jobs
        with trio.fail_after(30):
            while x.log.read_text().count("finished: ok") < len(first):
                await trio.sleep(0.2)

        relay.set_down(False)
        out = tmp_path / "out"
        await collect_all(client, out, first | later, timeout=40)
        jobs = await client.status()
        assert {jobs[name]["state"] for name in first | later} == {"done"}, jobs
        log = hub.log.read_text()
        for name in first | later:
            job_id = jobs[name]["job_id"]
            assert log.count(f"job {job_id} done") == 1, name
        nursery.cancel_scope.cancel()


async def test_two_hundred_jobs_over_links_that_drop_every_few_seconds(
    network: Network, tmp_path: Path
) -> None:
    # hub (broker, datastore) <- relay <- x1, x2 (executors); the client reaches the hub
    # through a relay too. Every relay cuts its connections at random, every 3 s on average
    # (seeded) and the first three connections after a few KiB; the nodes redial within 0.5 s.
    flags = [*FAST[2:], "--executor-timeout", "5s"]
    hub = await start_roles(network, "hub", "broker,datastore", *flags)
    for index, name in enumerate(("x1", "x2")):
        host, port = await network.relay(hub.address, "--seed", str(31 + index), *LOSSY)
        await start_roles(network, name, "executor", "-s", f"tcp://{host}:{port}", *flags)
    host, port = await network.relay(hub.address, "--seed", "33", *LOSSY)
    client = RelayedClient(tmp_path / "home", f"tcp://{host}:{port}")
    await wait_for_nodes(client, {"dtn://x1/": "executor", "dtn://x2/": "executor"})

    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    names = {f"j{n:03d}" for n in range(COUNT)}
    plan = tmp_path / "plan.toml"
    plan.write_text("".join(f'[jobs.{name}]\nwasm = "hello.wasm"\n' for name in sorted(names)))
    ids = await submit(client, plan)
    assert set(ids) == names
    out = tmp_path / "out"
    with trio.fail_after(50):
        while len(collected := {p.parent.name for p in out.glob("*/stdout")}) < COUNT:
            await client.ucp("collect", "-o", str(out), timeout=30)
            await trio.sleep(0.5)
    assert collected == names
    assert {(out / name / "stdout").read_text() for name in names} == {"hello\n"}
    log = hub.log.read_text()
    assert [job_id for job_id in ids.values() if log.count(f"job {job_id} done") != 1] == []
    # The three links were cut at least three times each (then redialled).
    assert (await hub.info())["statistics"]["sessions_opened"] >= 3 + 9
