"""``ucp submit / status / collect / run`` against real ``ucp-bpnode`` processes running the
broker, executor and datastore roles."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from .daemons import Network
from .ucp_support import CAT_WAT, HELLO_WAT, Client, explain, start_roles, write_wasm

PIPELINE = """
[jobs.first]
wasm = "cat.wasm"
args = ["out/a.txt", "in.txt"]
files = { "in.txt" = { text = "alpha\\n" } }
dirs = ["out"]
named_results = { "out/a.txt" = "pipe/a" }

[jobs.second]
wasm = "cat.wasm"
args = ["b.txt", "in.txt"]
files = { "in.txt" = { text = "beta\\n" } }
named_results = { "b.txt" = "pipe/b" }

[jobs.third]
wasm = "cat.wasm"
args = ["result.txt", "a.txt", "b.txt"]
inputs = { "a.txt" = "pipe/a", "b.txt" = "pipe/b" }
results = ["result.txt"]
"""


async def test_three_jobs_where_the_third_consumes_the_first_two(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text(PIPELINE)
    client = Client(tmp_path / "home", hub)
    out = tmp_path / "out"
    done = await client.ucp("run", str(plan), "-o", str(out), "--timeout", "40s")
    assert done.returncode == 0, explain(done)
    text = done.stdout.decode()
    assert "3 jobs accepted by dtn://hub/ucp/broker" in text
    assert re.search(r"^third \([0-9a-f]{8}\): dispatched to dtn://hub/ucp/executor$", text, re.M)
    assert (out / "third" / "result.txt").read_text() == "alpha\nbeta\n"
    assert (out / "third" / "stdout").read_text() == "cat: ok\n"
    # The first two published their results; their archives hold only stdout and stderr.
    assert sorted(p.name for p in (out / "first").iterdir()) == ["stderr", "stdout"]
    jobs = await client.status()
    assert {name: job["state"] for name, job in jobs.items()} == {
        "first": "done",
        "second": "done",
        "third": "done",
    }
    assert jobs["third"]["result"]["exit_code"] == 0


async def test_a_client_submits_exits_and_collects_after_the_job_finished(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.greet]\nwasm = "hello.wasm"\n')
    client = Client(tmp_path / "home", hub)
    out = await client.ok("submit", str(plan), "--json")
    report = json.loads(out)
    assert report["outcome"] == "accepted"
    (job,) = report["jobs"]
    assert job["name"] == "greet" and job["accepted"]
    await client.wait_for_state("greet", ["done"])
    results = tmp_path / "results"
    collected = await client.ok("collect", "-o", str(results))
    assert f"greet ({job['job_id'][:8]}): done, exit code 0 -> {results}/greet/" in collected
    assert "  | hello" in collected
    assert (results / "greet" / "stdout").read_text() == "hello\n"
    # Collected jobs are not collected again unless asked; asking again is harmless.
    assert (await client.ok("collect", "-o", str(results))).strip() == "nothing to collect"
    again = await client.ok("collect", "greet", "-o", str(results))
    assert "greet" in again and (results / "greet" / "stdout").read_text() == "hello\n"
    by_uuid = await client.ok("collect", job["job_id"][:8], "-o", str(results), "--json")
    assert json.loads(by_uuid)[0]["collect"] == "done"


async def test_a_plan_with_an_error_sends_nothing(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker")
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.bad]\nwasm = "missing.wasm"\n')
    client = Client(tmp_path / "home", hub)
    done = await client.ucp("submit", str(plan))
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"ucp submit: error: {plan}: job 'bad': field 'wasm")
    status = await client.ok("status")
    assert "no jobs submitted from this client" in status


async def test_large_files_and_results_travel_as_named_data(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    blob = random.Random(7).randbytes(300_000)  # incompressible: the archive stays large
    (tmp_path / "blob.bin").write_bytes(blob)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[jobs.copy]\nwasm = "cat.wasm"\nargs = ["copy.bin", "blob.bin"]\n'
        'files = { "blob.bin" = "blob.bin" }\nresults = ["copy.bin"]\n'
    )
    client = Client(tmp_path / "home", hub)
    out = tmp_path / "out"
    report = json.loads(await client.ok("submit", str(plan), "--json"))
    assert report["uploads"] == report["uploads_confirmed"] == 1
    job_id = report["jobs"][0]["job_id"]
    await client.wait_for_state("copy", ["done"])
    listing = json.loads(await client.ok("data", "ls", job_id, "--json"))
    names = {entry["name"] for entry in listing["entries"]}
    assert names == {f"{job_id}/files/0", f"{job_id}/archive", f"{job_id}/result"}
    await client.ok("collect", "-o", str(out))
    assert (out / "copy" / "copy.bin").read_bytes() == blob


async def test_a_client_reaches_the_broker_through_a_relay(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    relay = await network.start("relay", "-s", hub.url)
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.far]\nwasm = "hello.wasm"\n')
    client = Client(tmp_path / "home", relay)
    out = tmp_path / "out"
    done = await client.ucp("run", str(plan), "-o", str(out), "--timeout", "40s")
    assert done.returncode == 0, explain(done)
    assert "1 job accepted by dtn://hub/ucp/broker" in done.stdout.decode()
    assert (out / "far" / "stdout").read_text() == "hello\n"
