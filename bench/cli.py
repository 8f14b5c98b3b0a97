"""Start-up of the ``ucp`` command, measured beside a bare ``python -c pass`` in the same run.

Rows (each a fresh process, wall time from ``fork`` to exit, medians of ``--runs``, the kinds
interleaved so that a busy spell of the shared machine hits all of them alike):

* ``python -c pass``: the interpreter alone (the baseline);
* ``ucp --help`` and ``ucp --version``: parsing alone; target within 100 ms of the baseline;
* ``ucp status``, the home's client agent running and connected to a local daemon (broker,
  executor and datastore roles, 127.0.0.1): target 250 ms;
* ``ucp status`` with no agent running (it starts one: the first command of a session) and
  ``ucp --no-agent status`` (the command runs its own node, as every command did before the
  agent): for comparison, no target;
* a trivial job through ``ucp run`` (agent running) and through the client library in one
  process (``submit_plan`` + ``wait_for_jobs`` + ``collect_results``): target ``ucp run``
  within 150 ms of the library.

Run: ``.venv/bin/python bench/cli.py [--runs 15]``. Exits 0 (also when a target is missed:
the table says so).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio
import wasmtime

from ucp_dtn.client import (
    ClientSession,
    ClientSettings,
    collect_results,
    submit_plan,
    wait_for_jobs,
)
from ucp_dtn.localnet import LocalNetwork
from ucp_dtn.ucp import load_plan

TRIVIAL_WAT = (Path(__file__).with_name("trivial.wat")).read_text()
"""A module that writes "ok" and exits (shared by the benchmarks that run trivial jobs)."""
HELP_TARGET_MS = 100.0
STATUS_TARGET_MS = 250.0
RUN_TARGET_MS = 150.0


@dataclass
class Row:
    label: str
    ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Milliseconds ``command`` takes, from start to exit; it must succeed."""
    began = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = 1000 * (time.perf_counter() - began)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


async def library_once(session: ClientSession, plan: Path, out: Path) -> float:
    began = time.perf_counter()
    report = await submit_plan(session, load_plan(plan))
    entries = await wait_for_jobs(session, [job.job_id for job in report.jobs], timeout_s=60)
    collected = await collect_results(session, entries, out)
    elapsed = 1000 * (time.perf_counter() - began)
    [item] = collected
    assert item.directory is not None and (item.directory / "stdout").read_text() == "ok\n"
    return elapsed


async def measure(runs: int, base: Path) -> dict[str, Row]:
    ucp = str(Path(sys.executable).with_name("ucp"))
    plan = base / "trivial.toml"
    (base / "trivial.wasm").write_bytes(wasmtime.wat2wasm(TRIVIAL_WAT))
    plan.write_text('[jobs.t]\nwasm = "trivial.wasm"\n')
    network = LocalNetwork(base / "nodes")
    rows = {
        key: Row(label)
        for key, label in (
            ("pass", "python -c pass (baseline)"),
            ("help", "ucp --help"),
            ("version", "ucp --version"),
            ("status", "ucp status (agent running)"),
            ("cold", "ucp status (no agent: starts one)"),
            ("no-agent", "ucp --no-agent status"),
            ("run", "ucp run, trivial job (agent running)"),
            ("lib", "trivial job, client library in-process"),
        )
    }
    try:
        hub = await network.start(
            "hub", "--roles", "broker,executor,datastore", "--heartbeat", "1s"
        )
        env = {**os.environ, "UCP_VIA": hub.url}
        warm = {**env, "UCP_HOME": str(base / "warm")}
        cold = {**env, "UCP_HOME": str(base / "cold")}
        alone = {**env, "UCP_HOME": str(base / "alone")}

        def run(key: str, command: list[str], environment: dict[str, str]) -> None:
            rows[key].ms.append(timed(command, environment, base))

        # Warm-up: the executor compiles and caches the module, the homes get their identity,
        # the warm home's agent starts and finds the broker.
        for environment in (warm, cold, alone):
            await trio.to_thread.run_sync(
                timed, [ucp, "run", str(plan), "-o", str(base / "out")], environment, base
            )
        await trio.to_thread.run_sync(timed, [ucp, "agent", "stop"], cold, base)
        await trio.to_thread.run_sync(timed, [ucp, "agent", "stop"], alone, base)
        for number in range(runs):
            await trio.to_thread.run_sync(run, "pass", [sys.executable, "-c", "pass"], env)
            await trio.to_thread.run_sync(run, "help", [ucp, "--help"], env)
            await trio.to_thread.run_sync(run, "version", [ucp, "--version"], env)
            await trio.to_thread.run_sync(run, "status", [ucp, "status"], warm)
            await trio.to_thread.run_sync(run, "cold", [ucp, "status"], cold)
            await trio.to_thread.run_sync(timed, [ucp, "agent", "stop"], cold, base)
            await trio.to_thread.run_sync(run, "no-agent", [ucp, "--no-agent", "status"], alone)
            out = str(base / f"run-{number}")
            await trio.to_thread.run_sync(run, "run", [ucp, "run", str(plan), "-o", out], warm)
        await trio.to_thread.run_sync(timed, [ucp, "agent", "stop"], warm, base)
        settings = ClientSettings(home=base / "lib", via=(hub.address,), wait_s=30.0)
        async with ClientSession.open(settings) as session:
            await library_once(session, plan, base / "lib-warm-up")
            for number in range(runs):
                rows["lib"].ms.append(await library_once(session, plan, base / f"lib-{number}"))
    finally:
        await network.close()
    return rows


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each row (default 15)")
    args = parser.parse_args()
    print("bench/cli.py: start-up of the ucp command beside a bare python -c pass")
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs "
        f"({cpu_name()}), load average {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d')}"
    )
    began = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        rows = trio.run(measure, args.runs, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{'':42} {'median':>9} {'min':>9} {'max':>9}  n")
    for row in rows.values():
        print(
            f"{row.label:42} {row.median:7.0f}ms {min(row.ms):7.0f}ms {max(row.ms):7.0f}ms"
            f" {len(row.ms):2}"
        )
    bare = rows["pass"].median
    print()
    for key in ("help", "version"):
        extra = rows[key].median - bare
        print(
            f"{rows[key].label}: {extra:.0f} ms more than python -c pass "
            f"(target <= {HELP_TARGET_MS:.0f} ms: {verdict(extra <= HELP_TARGET_MS)})"
        )
    status = rows["status"].median
    print(
        f"ucp status, agent running: {status:.0f} ms "
        f"(target <= {STATUS_TARGET_MS:.0f} ms: {verdict(status <= STATUS_TARGET_MS)})"
    )
    extra = rows["run"].median - rows["lib"].median
    print(
        f"ucp run, trivial job: {extra:.0f} ms more than the client library "
        f"(target <= {RUN_TARGET_MS:.0f} ms: {verdict(extra <= RUN_TARGET_MS)})"
    )
    print(f"\nwhole bench: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
