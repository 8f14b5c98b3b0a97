"""Many small jobs with real daemons (issue #16): a plan's messages travel in batch bundles, and
a hub killed (SIGKILL) while batches are in flight loses no job and runs none twice.

The figures come from the daemons' ``/metrics`` (the broker's mailbox counters and the
executor's job counters), never from timing."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import trio
from prometheus_client.parser import text_string_to_metric_families

from .daemons import Daemon, Network
from .test_disruption import collect_all, submit, wait_for_nodes
from .ucp_support import HELLO_WAT, Client, explain, start_roles, write_wasm

JOBS = 40


def counters(daemon: Daemon) -> dict[str, float]:
    """The daemon's ``/metrics`` counters by sample name."""
    assert daemon.ready.http is not None
    host, port = daemon.ready.http
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=20) as reply:
        text = reply.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def trivial_plan(directory: Path, jobs: int) -> Path:
    write_wasm(directory, "hello.wasm", HELLO_WAT)
    plan = directory / "plan.toml"
    plan.write_text("".join(f'[jobs.j{n:02d}]\nwasm = "hello.wasm"\n\n' for n in range(jobs)))
    return plan


async def test_a_plan_of_many_jobs_travels_in_fewer_bundles_than_jobs(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,datastore", "--http", "127.0.0.1:0")
    await start_roles(network, "worker", "executor", "-s", hub.url)
    client = Client(tmp_path / "home", hub)
    await wait_for_nodes(client, {"dtn://worker/": "executor"})
    before = counters(hub)
    out = tmp_path / "out"
    done = await client.ucp("run", str(trivial_plan(tmp_path, JOBS)), "-o", str(out))
    assert done.returncode == 0, explain(done)
    assert all((out / f"j{n:02d}" / "stdout").read_text() == "hello\n" for n in range(JOBS))

    after = counters(hub)

    def grew(name: str) -> float:
        return after[f"ucp_broker_{name}_total"] - before.get(f"ucp_broker_{name}_total", 0)

    assert grew("jobs_submitted") == JOBS
    assert grew("results") == JOBS
    # The broker heard a submission and a result per job (and heartbeats, status queries);
    # the plan's submissions came in one batch bundle (here: 122 messages in 79 bundles).
    assert grew("messages_received") >= 2 * JOBS
    assert grew("bundles_received") <= grew("messages_received") - (JOBS - 1)
    # It sent an acceptance, a dispatch, the result, a final state and the result's copy to
    # the datastore per job: a job's result and final state always share a bundle, and the
    # acceptances went together (a run of 40 jobs here: 277 messages in 111 bundles).
    assert grew("messages_sent") >= 5 * JOBS
    assert grew("bundles_sent") <= grew("messages_sent") - JOBS


async def test_a_hub_killed_while_batches_are_in_flight_loses_no_job_and_runs_none_twice(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,datastore", "--http", "127.0.0.1:0")
    worker = await start_roles(
        network, "worker", "executor", "-s", hub.url, "--http", "127.0.0.1:0"
    )
    client = Client(tmp_path / "home", hub)
    await wait_for_nodes(client, {"dtn://worker/": "executor"})
    ids = await submit(client, trivial_plan(tmp_path, JOBS))
    assert len(ids) == JOBS
    # Kill the hub once some results are in and others are not (submissions, dispatches,
    # results and their batches in flight); whatever the moment, nothing may be lost.
    with trio.fail_after(30):
        while counters(worker)["ucp_executor_jobs_succeeded_total"] < 3:
            await trio.sleep(0.02)
    hub.kill()
    await hub.process.wait()
    hub = await network.restart(hub)

    out = tmp_path / "out"
    await collect_all(client, out, set(ids), timeout=60)
    assert all((out / name / "stdout").read_text() == "hello\n" for name in ids)
    states = {name: job["state"] for name, job in (await client.status()).items()}
    assert states == dict.fromkeys(ids, "done")
    # The executor ran each job once: a dispatch sent again after the restart was answered
    # from its journal, not run again.
    worker_counters = counters(worker)
    assert worker_counters["ucp_executor_jobs_received_total"] == JOBS
    assert worker_counters["ucp_executor_jobs_succeeded_total"] == JOBS
