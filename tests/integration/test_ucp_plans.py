"""Plans with wildcard named results and inputs, and REC's plan format, run by ``ucp run``."""

from __future__ import annotations

from pathlib import Path

from .daemons import Network
from .ucp_support import CAT_WAT, HELLO_WAT, Client, explain, start_roles, write_wasm

WILDCARDS = """
[data]
"wild/z.txt" = { text = "zeta\\n" }

[jobs.publish]
wasm = "hello.wasm"
files = { "out/x.txt" = { text = "ex\\n" }, "out/sub/y.txt" = { text = "why\\n" } }
named_results = { "out/*" = "wild/made/*" }

[jobs.gather]
wasm = "cat.wasm"
args = ["all.txt", "in/made/x.txt", "in/made/sub/y.txt", "in/z.txt"]
inputs = { "in/*" = "wild/*" }
results = ["all.txt", "in"]
"""

REC = """
[named_data]
cat-module = "cat.wasm"
words = "words.txt"

[[jobs]]
[jobs.metadata]
wasm_module = "cat-module"
# REC passes argv as it is: the module's argv[0] is the plan's first argument.
argv = ["cat", "out/first.txt", "words.txt", "extra.txt"]
dirs = ["/out"]
results = ["/out"]
[jobs.metadata.data]
"/words.txt" = "words"
"/extra.txt" = "rec-extra"
[jobs.metadata.named_results]
"/out/first.txt" = "rec/first"
[jobs.data]
rec-extra = "extra.txt"

[[jobs]]
[jobs.metadata]
wasm_module = "cat-module"
argv = ["cat", "final.txt", "previous.txt"]
stdout_file = "/log.txt"
results = ["/final.txt", "/log.txt"]
[jobs.metadata.data]
"/previous.txt" = "rec/first"
"""


async def test_wildcard_named_results_and_inputs(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text(WILDCARDS)
    client = Client(tmp_path / "home", hub)
    out = tmp_path / "out"
    done = await client.ucp("run", str(plan), "-o", str(out), "--timeout", "40s")
    assert done.returncode == 0, explain(done)
    assert (out / "gather" / "all.txt").read_text() == "ex\nwhy\nzeta\n"
    assert (out / "gather" / "in" / "made" / "sub" / "y.txt").read_text() == "why\n"
    listing = await client.ok("data", "ls", "wild/*")
    names = [line.split()[0] for line in listing.splitlines()[1:]]
    assert names == ["wild/made/sub/y.txt", "wild/made/x.txt", "wild/z.txt"]


async def test_a_rec_plan(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "cat.wasm", CAT_WAT)
    (tmp_path / "words.txt").write_text("one two\n")
    (tmp_path / "extra.txt").write_text("three\n")
    plan = tmp_path / "rec.toml"
    plan.write_text(REC)
    client = Client(tmp_path / "home", hub)
    out = tmp_path / "out"
    done = await client.ucp("run", str(plan), "-o", str(out), "--timeout", "40s")
    assert done.returncode == 0, explain(done)
    assert (out / "job-0" / "out" / "first.txt").read_text() == "one two\nthree\n"
    assert (out / "job-1" / "final.txt").read_text() == "one two\nthree\n"
    assert (out / "job-1" / "log.txt").read_text() == "cat: ok\n"
