"""``ucp demo`` (also ``python -m ucp_dtn demo``): the platform at work, end to end.

It starts a local network of real ``ucp-bpnode`` processes on 127.0.0.1, each with its own
persistent bundle store, and runs real WebAssembly jobs through it the way a user would:

1. node ``hub`` comes up as broker and datastore, node ``worker`` as executor (it connects to
   the hub and sends heartbeats with its capabilities);
2. a client with its own identity and bundle store submits an execution plan: two river gauges'
   readings as named data, and two jobs running the ``river-gauge`` module (WebAssembly, WASI)
   over them; ``ucp submit`` returns once the broker has accepted the jobs, and the client goes
   offline;
3. while the client is away, the broker dispatches the jobs to the executor, which fetches the
   readings from the datastore, runs the module in its sandbox and sends the results back; the
   broker keeps them for the client;
4. the client comes back, checks the jobs' status and collects the results;
5. every daemon is shut down cleanly (SIGTERM).

Every step prints the command a user would type. The exit status is 0 only if both jobs
produced the expected figures.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import trio

from .localnet import LocalNetwork, LocalNode, run_ucp

__all__ = ["main", "run_demo"]

MARK_CM = 300
"""The flood mark the jobs count readings above."""

PLAN = """\
# Two river gauges, one job each: how many readings, the highest, how many above the mark.
[defaults]
limits = {{ time = "30s", memory = "64MiB" }}

[data]
"gauges/bridge" = "bridge.txt"
"gauges/mill" = "mill.txt"

[jobs.bridge]
wasm = "river-gauge.wasm"
args = ["{mark}"]
stdin = {{ name = "gauges/bridge" }}

[jobs.mill]
wasm = "river-gauge.wasm"
args = ["{mark}"]
stdin = {{ name = "gauges/mill" }}
"""


def _say(text: str) -> None:
    print(text, flush=True)


def _readings(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    level = 200
    values = []
    for _ in range(count):
        # a random walk pulled back towards 260 cm: floods come and go
        level = max(0, level + rng.randint(-9, 9) + (260 - level) // 25)
        values.append(level)
    return values


def _expected(values: list[int]) -> str:
    above = sum(1 for v in values if v > MARK_CM)
    return f"readings={len(values)} max_cm={max(values)} above_mark={above} mark_cm={MARK_CM}"


def _write_plan(directory: Path) -> dict[str, str]:
    """Write the plan, its module and its data; return job name → expected stdout line."""
    import wasmtime  # only the demo's setup compiles WAT; the executor runs the binary

    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("ucp_dtn.demo_assets").joinpath("river-gauge.wat").read_text()
    (directory / "river-gauge.wasm").write_bytes(wasmtime.wat2wasm(source))
    expected = {}
    for name, seed in (("bridge", 1), ("mill", 2)):
        values = _readings(seed, 2000)
        (directory / f"{name}.txt").write_text("".join(f"{v}\n" for v in values))
        expected[name] = _expected(values)
    (directory / "plan.toml").write_text(PLAN.format(mark=MARK_CM))
    return expected


class _Client:
    """The ``ucp`` client of the demo: its own home, reaching the network through the hub."""

    def __init__(self, home: Path, hub: LocalNode) -> None:
        self.home = home
        self.hub = hub

    def argv(self, command: str, *args: str) -> list[str]:
        return ["ucp", command, *args, "--home", str(self.home), "--via", self.hub.url]

    async def run(
        self, command: str, *args: str, show: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        argv = self.argv(command, *args)
        if show:
            _say(f"  $ {shlex.join(argv)}")
        return await run_ucp(*argv[1:], timeout=120)


def _indent(text: bytes) -> str:
    return "\n".join("    " + line for line in text.decode(errors="replace").splitlines())


async def run_demo(base: Path) -> bool:
    """Run the demo with work directories under ``base``; True when every job succeeded."""
    started = time.monotonic()
    expected = _write_plan(base / "plan")
    network = LocalNetwork(base / "nodes")
    try:
        _say("== 1. A local network: a hub (broker + datastore) and a worker (executor)")
        hub = await network.start("hub", "--roles", "broker,datastore", "--heartbeat", "1s")
        _say(
            f"  $ ucp-bpnode -n {hub.node_id} -W {network.workdir('hub')} --roles broker,datastore"
        )
        _say(f"    listening on {hub.url}")
        worker = await network.start(
            "worker", "--roles", "executor", "--heartbeat", "1s", "-s", hub.url
        )
        _say(
            f"  $ ucp-bpnode -n {worker.node_id} -W {network.workdir('worker')} "
            f"--roles executor -s {hub.url}"
        )
        client = _Client(base / "client-home", hub)

        _say("\n== 2. The client submits a plan (two gauges' readings, two WebAssembly jobs)")
        _say(f"  plan: {base / 'plan' / 'plan.toml'}")
        submitted = await client.run("submit", str(base / "plan" / "plan.toml"), "--wait", "60s")
        _say(_indent(submitted.stdout + submitted.stderr))
        if submitted.returncode != 0:
            return False
        _say("  ... the client is now offline: the network stores, forwards and runs the jobs.")

        _say("\n== 3. Later, the client comes back and asks how its jobs stand")
        states: dict[str, str] = {}
        with trio.move_on_after(90):
            while True:
                status = await client.run("status", "--json", show=not states)
                if status.returncode == 0:
                    jobs = json.loads(status.stdout)["jobs"]
                    states = {job["name"]: job["state"] for job in jobs}
                    if states and all(s in ("done", "failed", "rejected") for s in states.values()):
                        break
                await trio.sleep(1.0)
        _say("    " + ", ".join(f"{name}: {state}" for name, state in sorted(states.items())))

        _say("\n== 4. ... and collects the results")
        out = base / "results"
        collected = await client.run("collect", "-o", str(out))
        _say(_indent(collected.stdout + collected.stderr))
        ok = collected.returncode == 0
        for name, line in sorted(expected.items()):
            stdout = out / name / "stdout"
            got = stdout.read_text().strip() if stdout.exists() else "(no result)"
            match = got == line
            ok = ok and match
            _say(f"  {name}: {got}  [{'as expected' if match else 'EXPECTED ' + line}]")

        _say("\n== 5. Shutting the network down (SIGTERM: SESS_TERM to peers, stores closed)")
        for node in (worker, hub):
            status_code = await node.stop()
            _say(f"  {node.name} exited with status {status_code}")
        elapsed = time.monotonic() - started
        _say(f"\nDone in {elapsed:.1f} s: {'success' if ok else 'FAILURE'}.")
        return ok
    finally:
        await network.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ucp demo`` / ``python -m ucp_dtn demo``."""
    parser = argparse.ArgumentParser(prog="ucp demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, help="keep the nodes' work directories, logs and results here"
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        return 0 if trio.run(run_demo, args.workdir) else 1
    with tempfile.TemporaryDirectory(prefix="ucp-demo-") as tmp:
        ok = trio.run(run_demo, Path(tmp))
        if not ok:
            sys.stderr.write(LocalNetwork(Path(tmp) / "nodes").logs()[-6000:] + "\n")
        return 0 if ok else 1
