"""Jobs that fail, as ``ucp run`` and ``ucp status`` report them: limits, escapes, missing
inputs, and the jobs waiting for a failed one."""

from __future__ import annotations

import json
from pathlib import Path

from ucp_dtn.ucp import ResultStatus

from .daemons import Network
from .ucp_support import CAT_WAT, GROW_WAT, LOOP_WAT, Client, explain, start_roles, write_wasm

FAILING = """
[jobs.spin]
wasm = "loop.wasm"
limits = { time = "2s" }

[jobs.hog]
wasm = "grow.wasm"
limits = { memory = "4MiB" }

[jobs.counted]
wasm = "loop.wasm"
limits = { fuel = 1e6 }

[jobs.escape]
wasm = "cat.wasm"
args = ["out.txt", "../outside.txt"]

[jobs.starved]
wasm = "cat.wasm"
args = ["out.txt", "x.txt"]
inputs = { "x.txt" = "nowhere/x", "y.txt" = "nowhere/y" }

[jobs.later]
wasm = "cat.wasm"
args = ["out.txt"]
after = ["spin"]
"""


async def test_failing_jobs_are_stopped_and_reported(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore", "--max-jobs", "4")
    for name, wat in (("loop.wasm", LOOP_WAT), ("grow.wasm", GROW_WAT), ("cat.wasm", CAT_WAT)):
        write_wasm(tmp_path, name, wat)
    (tmp_path / "outside.txt").write_text("secret\n")
    plan = tmp_path / "plan.toml"
    plan.write_text(FAILING)
    client = Client(tmp_path / "home", hub)
    done = await client.ucp(
        "run", str(plan), "-o", str(tmp_path / "out"), "--timeout", "40s", "--json"
    )
    assert done.returncode == 1, explain(done)
    report = json.loads(done.stdout)
    jobs = {job["name"]: job for job in report["jobs"]}
    assert {name: job["collect"] for name, job in jobs.items()} == {
        "spin": "failed",
        "hog": "failed",
        "counted": "failed",
        "escape": "failed",
        "starved": "failed",
        "later": "rejected",
    }
    assert jobs["spin"]["result"]["status"] == ResultStatus.TIMEOUT
    assert jobs["spin"]["result"]["message"] == "wall-clock limit of 2 s exceeded"
    assert jobs["hog"]["result"]["status"] == ResultStatus.MEMORY_LIMIT
    # A fuel budget reaches the executor's fuel-metering engine (the others run unmetered).
    counted = jobs["counted"]["result"]
    assert counted["status"] == ResultStatus.OUT_OF_FUEL
    assert counted["message"] == "fuel budget of 1000000 exhausted"
    escape = jobs["escape"]["result"]
    assert escape["status"] == ResultStatus.EXIT and escape["exit_code"] != 0
    assert "cannot open ../outside.txt" in jobs["escape"]["stderr_tail"]
    starved = jobs["starved"]["result"]
    assert starved["status"] == ResultStatus.INPUT_MISSING
    assert "nowhere/x" in starved["message"] and "nowhere/y" in starved["message"]
    assert "spin" in jobs["later"]["detail"] or "after" in jobs["later"]["detail"]

    table = await client.ok("status")
    for name, word in (
        ("spin", "failed"),
        ("hog", "failed"),
        ("counted", "failed"),
        ("later", "rejected"),
    ):
        line = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert word in line, table
