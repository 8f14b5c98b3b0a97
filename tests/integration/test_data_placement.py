"""Jobs go to their data (issue #16), with real daemons: the broker sends a job to the
executor on the node whose datastore holds its input — though another executor scores far
higher — and that executor's input cache spares a second job on the same data any fetch (its
``/metrics`` counters say so), while a new version of the name is fetched, never served
stale."""

from __future__ import annotations

import random
import urllib.request
from pathlib import Path

import trio
from prometheus_client.parser import text_string_to_metric_families

from .daemons import Daemon, Network
from .test_disruption import collect_all, submit, wait_for_nodes
from .ucp_support import CAT_WAT, Client, start_roles, write_wasm

#: Each job copies its input file to copy.bin and has a second datum as standard input (which
#: the executor links from its cache instead of writing it again).
PLAN = """\
[jobs.{name}]
wasm = "cat.wasm"
args = ["copy.bin", "in.bin"]
inputs = {{ "in.bin" = "probe/input.bin" }}
stdin = {{ name = "probe/stdin.bin" }}
results = ["copy.bin"]
"""


def _executor_counters(daemon: Daemon) -> dict[str, float]:
    assert daemon.ready.http is not None
    host, port = daemon.ready.http
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=20) as reply:
        text = reply.read().decode()
    wanted = {
        "ucp_executor_fetched_bytes_total": "fetched",
        "ucp_executor_input_cache_hits_total": "hits",
        "ucp_executor_input_cache_saved_bytes_total": "saved",
        "ucp_executor_jobs_succeeded_total": "succeeded",
    }
    return {
        wanted[sample.name]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in wanted
    }


async def _run_job(client: Client, tmp_path: Path, name: str) -> tuple[str, bytes]:
    """Submit one job of :data:`PLAN`; (its executor, the copy it made)."""
    plan = tmp_path / f"{name}.toml"
    plan.write_text(PLAN.format(name=name))
    await submit(client, plan)
    job = await client.wait_for_state(name, ["done", "failed"], timeout=30)
    assert job["state"] == "done", job
    out = tmp_path / "out"
    await collect_all(client, out, {name}, timeout=20)
    return job["executor"], (out / name / "copy.bin").read_bytes()


async def test_a_job_runs_where_its_input_is_and_a_second_fetches_nothing(
    network: Network, tmp_path: Path
) -> None:
    b = await start_roles(network, "b", "broker")
    # "near" holds the data and is a poor executor; "far" is a much better one without data.
    near = await start_roles(
        network, "near", "datastore,executor", "-s", b.url, "--http", "127.0.0.1:0",
        "--capability", "cpu_cores=1", "--capability", "memory=1GiB",
    )  # fmt: skip
    far = await start_roles(
        network, "far", "executor", "-s", b.url, "--http", "127.0.0.1:0",
        "--capability", "cpu_cores=64", "--capability", "memory=64GiB",
    )  # fmt: skip
    client = Client(tmp_path / "home", b)
    await wait_for_nodes(client, {"dtn://near/": "datastore", "dtn://far/": "executor"})
    await wait_for_nodes(client, {"dtn://near/": "executor"})
    rng = random.Random(16)
    data = rng.randbytes(300_000)
    stdin = rng.randbytes(50_000)
    (tmp_path / "input.bin").write_bytes(data)
    (tmp_path / "stdin.bin").write_bytes(stdin)
    for name, file in (("probe/input.bin", "input.bin"), ("probe/stdin.bin", "stdin.bin")):
        # "near" runs the only datastore: the data are there.
        stored = await client.ok("data", "put", name, str(tmp_path / file))
        assert stored.startswith(f"stored {name}"), stored
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)

    # Placement: the job goes to the data, not to the better-scoring executor.
    executor, copy = await _run_job(client, tmp_path, "first")
    assert executor == "dtn://near/ucp/executor"
    assert copy == data
    first = await trio.to_thread.run_sync(_executor_counters, near)
    assert first["fetched"] == len(data) + len(stdin), first
    assert first["hits"] == 0, first

    # The input cache: the second job on the same data fetches nothing.
    executor, copy = await _run_job(client, tmp_path, "second")
    assert executor == "dtn://near/ucp/executor"
    assert copy == data
    second = await trio.to_thread.run_sync(_executor_counters, near)
    assert second["fetched"] == first["fetched"], second
    assert second["hits"] == 2, second
    assert second["saved"] == len(data) + len(stdin), second

    # A new version of the input is fetched (the datastore judges the digest, not the name).
    changed = rng.randbytes(200_000)
    (tmp_path / "input.bin").write_bytes(changed)
    await client.ok("data", "put", "probe/input.bin", str(tmp_path / "input.bin"), "--replace")
    executor, copy = await _run_job(client, tmp_path, "third")
    assert copy == changed
    third = await trio.to_thread.run_sync(_executor_counters, near)
    assert third["fetched"] == second["fetched"] + len(changed), third
    assert third["hits"] == 3, third  # the unchanged standard input
    far_counters = await trio.to_thread.run_sync(_executor_counters, far)
    assert far_counters.get("succeeded", 0) == 0, far_counters
