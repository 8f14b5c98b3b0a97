"""A job needing more than any executor offers waits at the broker until one that can run it
joins."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from .daemons import Network
from .ucp_support import HELLO_WAT, Client, start_roles, write_wasm


async def test_a_job_waits_for_an_executor_with_enough_memory(
    network: Network, tmp_path: Path
) -> None:
    # The datastore's heartbeats carry the node's --capability overrides too.
    broker = await start_roles(network, "b", "broker,datastore", "--capability", "memory=3GiB")
    executor_flags = ["-s", broker.url, "--broker", "dtn://b/"]
    await start_roles(network, "small", "executor", *executor_flags, "--capability", "memory=1GiB")
    client = Client(tmp_path / "home", broker)
    with trio.fail_after(20):
        while True:
            nodes = json.loads(await client.ok("status", "--nodes", "--json"))["nodes"]
            if any("executor" in node["roles"] for node in nodes) and any(
                "datastore" in node["roles"] for node in nodes
            ):
                break
            await trio.sleep(0.5)
    [datastore] = [node for node in nodes if node["node"] == "dtn://b/"]
    assert datastore["memory"] == 3 * 2**30, datastore
    [small] = [node for node in nodes if node["node"] == "dtn://small/"]
    assert small["memory"] == 2**30, small

    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.big]\nwasm = "hello.wasm"\nrequires = { memory = "8GiB" }\n')
    assert json.loads(await client.ok("submit", str(plan), "--json"))["outcome"] == "accepted"
    await trio.sleep(2.5)  # a few heartbeats of the small executor: still no match
    job = (await client.status("big"))["big"]
    assert job["state"] == "queued", job
    assert "memory" in job["detail"], job

    await start_roles(network, "large", "executor", *executor_flags, "--capability", "memory=16GiB")
    done = await client.wait_for_state("big", ["done", "failed"])
    assert done["state"] == "done" and done["executor"] == "dtn://large/ucp/executor", done
