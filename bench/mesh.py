"""A mesh of N real ``ucp-bpnode`` daemons on loopback: memory, idle CPU, control traffic, how
fast routes settle, and 500 jobs across it (issue #16).

The shape (:func:`plan_mesh`): ``C = max(3, round(N / 8))`` clusters. Each cluster has a *hub*
(the shelter's server) and members (volunteers' laptops) that keep a session with their hub
only; the hubs are joined in a ring (the relays between shelters), so every cluster has two
ways to the others. Brokers run on the hubs of even clusters (at most 3), datastores on the
hubs of odd clusters (at most 3); every member is an executor (one job at a time). Every daemon
has a durable store (``-W``), the default route advertisement and heartbeat intervals (10 s and
5 s), and reconnects to a lost static peer within 2 s (``--reconnect-max 2s``). The link
between hub 0 and hub 1 runs through a relay in this process, so that it can be cut.

Measured, in order:

1. start-up: daemons started (hubs first), then the time until every node's routes are the
   shortest paths of the mesh (``ucp nodes``: each node's best usable metric to every other
   node equals the breadth-first distance);
2. idle, for ``--idle`` seconds (default 60) with nothing polling the daemons: resident memory
   and CPU of each daemon; control bytes sent per node per minute (TCPCL octets of all its
   sessions: route advertisements, heartbeats, broker syncs, keepalives), of which route
   advertisements; averages and maxima per kind of node (hubs, members, all);
3. route settling: the hub 0 -- hub 1 link is cut (the relay resets the connections and refuses
   new ones); time until every node's routes are the shortest paths without it; then the link
   returns: time until they are the shortest paths with it again (the reconnection included);
4. jobs: ``--jobs`` trivial WebAssembly jobs (default 500), split evenly over one client per
   broker (each client a DTN node of its own, attached to its broker's hub), submitted at once;
   time from the first submission to the last result collected, and every result checked.

Run: ``.venv/bin/python bench/mesh.py [--nodes 10 25 50] [--idle 60] [--jobs 500]``. Each size
takes 2-8 minutes on 2 cores. Prints a table; exits 0 (1 if a job failed or routes never
settled, with the reason).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import trio
import wasmtime

from convergence.lossy.model import LinkProfile
from convergence.lossy.relay import LossyRelay
from ucp_dtn.client import (
    ClientSession,
    ClientSettings,
    collect_results,
    submit_plan,
    wait_for_jobs,
)
from ucp_dtn.localnet import LocalNetwork, LocalNode
from ucp_dtn.ucp import load_plan

SETTLE_TIMEOUT_S = 180.0
"""Longest wait for routes to settle (then the run fails, saying so)."""
POLL_S = 0.25
"""How often every node's routes are read while waiting for them to settle."""
JOBS_TIMEOUT_S = 300.0
"""Longest wait for the jobs' results (those missing then are counted as not done)."""
STARTING_AT_ONCE = 3
"""Daemons started at the same time."""
MAX_BROKERS = 3
MAX_DATASTORES = 3
COMMON = ["--reconnect-max", "2s", "--quota", "1GiB"]

TRIVIAL_WAT = (Path(__file__).with_name("trivial.wat")).read_text()
"""A module that writes "ok" and exits (shared by the benchmarks that run trivial jobs)."""


# -- the shape ----------------------------------------------------------------------------------


@dataclass
class MeshPlan:
    """Who runs where and who connects to whom."""

    clusters: int
    hubs: list[str]
    members: dict[str, str]
    """member -> its hub"""
    roles: dict[str, list[str]]
    edges: set[frozenset[str]] = field(default_factory=set)

    @property
    def names(self) -> list[str]:
        return [*self.hubs, *self.members]

    def brokers(self) -> list[str]:
        return [name for name in self.hubs if "broker" in self.roles[name]]


def plan_mesh(n: int) -> MeshPlan:
    """The mesh of ``n`` daemons (see the module docstring)."""
    clusters = max(3, round(n / 8))
    if n < clusters + 1:
        raise ValueError(f"a mesh of {n} nodes is too small for {clusters} clusters")
    hubs = [f"hub{i}" for i in range(clusters)]
    members = {f"m{j}": hubs[j % clusters] for j in range(n - clusters)}
    roles: dict[str, list[str]] = {}
    brokers = datastores = 0
    for index, hub in enumerate(hubs):
        roles[hub] = []
        if index % 2 == 0 and brokers < MAX_BROKERS:
            roles[hub].append("broker")
            brokers += 1
        elif index % 2 == 1 and datastores < MAX_DATASTORES:
            roles[hub].append("datastore")
            datastores += 1
    for member in members:
        roles[member] = ["executor"]
    plan = MeshPlan(clusters, hubs, members, roles)
    for member, hub in members.items():
        plan.edges.add(frozenset((member, hub)))
    for index, hub in enumerate(hubs):
        plan.edges.add(frozenset((hub, hubs[(index + 1) % clusters])))
    return plan


def distances(names: list[str], edges: set[frozenset[str]]) -> dict[str, dict[str, int]]:
    """Breadth-first hop counts between every pair."""
    neighbours: dict[str, set[str]] = {name: set() for name in names}
    for edge in edges:
        a, b = tuple(edge)
        neighbours[a].add(b)
        neighbours[b].add(a)
    result: dict[str, dict[str, int]] = {}
    for start in names:
        seen = {start: 0}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for there in neighbours[here]:
                if there not in seen:
                    seen[there] = seen[here] + 1
                    queue.append(there)
        del seen[start]
        result[start] = seen
    return result


# -- the running mesh ---------------------------------------------------------------------------


@dataclass
class Mesh:
    plan: MeshPlan
    network: LocalNetwork
    nodes: dict[str, LocalNode] = field(default_factory=dict)
    cut: LossyRelay | None = None


async def start_mesh(plan: MeshPlan, base: Path, nursery: trio.Nursery) -> Mesh:
    """Start every daemon (hubs first, each group at once) and the relay of the cut link."""
    mesh = Mesh(plan, LocalNetwork(base))
    hubs = plan.hubs

    def roles(name: str) -> list[str]:
        return ["--roles", ",".join(plan.roles[name])] if plan.roles[name] else []

    async def start(name: str, *args: str) -> None:
        mesh.nodes[name] = await mesh.network.start(name, *roles(name), *COMMON, *args)

    # hub1 .. hub(C-1): each keeps a session with the previous one (hub1 waits for hub0).
    for index in range(1, len(hubs)):
        previous = [] if index == 1 else ["-s", mesh.nodes[hubs[index - 1]].url]
        await start(hubs[index], *previous)
    relay = LossyRelay(target=mesh.nodes[hubs[1]].address, link=LinkProfile(seed=1))
    port = await nursery.start(relay.run)
    mesh.cut = relay
    # hub0 closes the ring: to hub1 through the relay, and to the last hub.
    await start(hubs[0], "-s", f"tcp://127.0.0.1:{port}", "-s", mesh.nodes[hubs[-1]].url)
    # A few at a time: a Python daemon takes a second or two of CPU to start, and 2 cores
    # shared by dozens of starting daemons would let each miss its start-up deadline.
    limiter = trio.CapacityLimiter(STARTING_AT_ONCE)

    async def start_member(member: str, hub: str) -> None:
        async with limiter:
            await start(member, "--max-jobs", "1", "-s", mesh.nodes[hub].url)

    async with trio.open_nursery() as starting:
        for member, hub in plan.members.items():
            starting.start_soon(start_member, member, hub)
    return mesh


async def all_info(mesh: Mesh) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}

    async def one(name: str, node: LocalNode) -> None:
        with trio.fail_after(30):
            results[name] = await node.info()

    async with trio.open_nursery() as nursery:
        for name, node in mesh.nodes.items():
            nursery.start_soon(one, name, node)
    return results


def best_metrics(info: dict[str, Any]) -> dict[str, int]:
    """Node ID -> best usable metric, from ``ucp nodes`` routes."""
    best: dict[str, int] = {}
    for route in info["routes"]:
        if route.get("usable") and route.get("origin") in ("neighbour", "learned"):
            pattern = str(route["pattern"])
            metric = int(route["metric"])
            if metric < best.get(pattern, 1 << 30):
                best[pattern] = metric
    return best


async def wait_settled(mesh: Mesh, edges: set[frozenset[str]]) -> float:
    """Seconds until every node's routes are the shortest paths over ``edges``."""
    expected = distances(mesh.plan.names, edges)
    began = time.perf_counter()
    with trio.fail_after(SETTLE_TIMEOUT_S):
        while True:
            infos = await all_info(mesh)
            if all(
                best_metrics(infos[name])
                == {f"dtn://{other}/": hops for other, hops in expected[name].items()}
                for name in mesh.plan.names
            ):
                return time.perf_counter() - began
            await trio.sleep(POLL_S)


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Idle:
    seconds: float
    rss: dict[str, int]
    cpu: dict[str, float]
    """fraction of one core"""
    control: dict[str, float]
    """octets sent per minute (all sessions)"""
    adverts: dict[str, float]
    """route advertisement octets sent per minute"""
    neighbours: dict[str, int]


def sent_octets(info: dict[str, Any]) -> int:
    return sum(int((peer.get("stats") or {}).get("bytes_sent", 0)) for peer in info["peers"])


async def measure_idle(mesh: Mesh, seconds: float) -> Idle:
    processes = {name: psutil.Process(node.process.pid) for name, node in mesh.nodes.items()}
    before = await all_info(mesh)
    cpu0 = {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}
    began = time.perf_counter()
    await trio.sleep(seconds)
    cpu1 = {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}
    elapsed = time.perf_counter() - began
    after = await all_info(mesh)
    per_minute = 60.0 / elapsed
    return Idle(
        elapsed,
        rss={name: p.memory_info().rss for name, p in processes.items()},
        cpu={name: (cpu1[name] - cpu0[name]) / elapsed for name in processes},
        control={
            name: (sent_octets(after[name]) - sent_octets(before[name])) * per_minute
            for name in processes
        },
        adverts={
            name: (
                int(after[name]["statistics"].get("advert_bytes_sent", 0))
                - int(before[name]["statistics"].get("advert_bytes_sent", 0))
            )
            * per_minute
            for name in processes
        },
        neighbours={name: len(after[name]["peers"]) for name in processes},
    )


async def cut_and_return(mesh: Mesh) -> tuple[float, float]:
    assert mesh.cut is not None
    plan = mesh.plan
    link = frozenset((plan.hubs[0], plan.hubs[1]))
    mesh.cut.set_down(True)
    mesh.cut.cut_all()
    cut = await wait_settled(mesh, plan.edges - {link})
    mesh.cut.set_down(False)
    back = await wait_settled(mesh, plan.edges)
    return cut, back


async def run_jobs(mesh: Mesh, jobs: int, base: Path) -> tuple[float, int]:
    """(seconds for all jobs, jobs that printed ``ok``)."""
    plan = mesh.plan
    brokers = plan.brokers()
    wasm = base / "trivial.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(TRIVIAL_WAT))
    shares = [
        jobs // len(brokers) + (1 if i < jobs % len(brokers) else 0) for i in range(len(brokers))
    ]
    done = 0

    async def client(index: int, broker: str, count: int) -> None:
        nonlocal done
        plan_file = base / f"plan-{index}.toml"
        plan_file.write_text(
            "".join(f'[jobs.j{index}x{n:04d}]\nwasm = "{wasm}"\n\n' for n in range(count))
        )
        node = mesh.nodes[broker]
        settings = ClientSettings(
            home=base / f"client-{index}",
            via=(node.address,),
            broker=node.node_id,
            wait_s=60.0,
        )
        async with ClientSession.open(settings) as session:
            report = await submit_plan(session, load_plan(plan_file))
            entries = await wait_for_jobs(
                session, [job.job_id for job in report.jobs], timeout_s=JOBS_TIMEOUT_S
            )
            collected = await collect_results(session, entries, base / f"out-{index}")
        for item in collected:
            result = item.entry.result
            directory = item.directory
            if result is not None and result.ok and directory is not None:
                done += (directory / "stdout").read_text() == "ok\n"

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index, (broker, count) in enumerate(zip(brokers, shares, strict=True)):
            nursery.start_soon(client, index, broker, count)
    return time.perf_counter() - began, done


# -- report -------------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class Outcome:
    n: int
    plan: MeshPlan
    start_s: float
    converge_s: float
    idle: Idle
    cut_s: float
    back_s: float
    jobs: int
    jobs_s: float
    jobs_ok: int
    load: float


async def one_size(n: int, args: argparse.Namespace) -> Outcome:
    plan = plan_mesh(n)
    with tempfile.TemporaryDirectory(prefix=f"mesh-{n}-") as tmp:
        base = Path(tmp)
        async with trio.open_nursery() as nursery:
            began = time.perf_counter()
            mesh = await start_mesh(plan, base / "nodes", nursery)
            try:
                started = time.perf_counter() - began
                print(f"  N={n}: {len(mesh.nodes)} daemons started in {started:.0f} s", flush=True)
                converge = await wait_settled(mesh, plan.edges)
                print(f"  N={n}: routes settled {converge:.1f} s later", flush=True)
                idle = await measure_idle(mesh, args.idle)
                cut, back = await cut_and_return(mesh)
                print(f"  N={n}: cut settled in {cut:.1f} s, return in {back:.1f} s", flush=True)
                jobs_s, jobs_ok = await run_jobs(mesh, args.jobs, base)
                load = os.getloadavg()[0]
            finally:
                with trio.CancelScope(shield=True):
                    await mesh.network.close()
                nursery.cancel_scope.cancel()
    return Outcome(n, plan, started, converge, idle, cut, back, args.jobs, jobs_s, jobs_ok, load)


def print_outcomes(outcomes: list[Outcome]) -> None:
    print()
    header = (
        f"{'N':>3} {'clusters':>8} {'brokers':>7} | {'RSS MB':>14} {'idle CPU %':>14} | "
        f"{'control B/min per node':>33} {'adverts B/min':>15} | "
        f"{'settle s':>15} | {'jobs':>12}"
    )
    print(header)
    print(
        f"{'':>3} {'':>8} {'':>7} | {'mean':>6} {'max':>7} {'mean':>6} {'max':>7} | "
        f"{'member':>8} {'hub':>8} {'mean':>7} {'max':>7} {'mean':>7} {'max':>7} | "
        f"{'cut':>7} {'return':>7} | {'s':>5} {'ok':>6}"
    )
    for o in outcomes:
        idle, plan = o.idle, o.plan
        rss = [v / 2**20 for v in idle.rss.values()]
        cpu = [v * 100 for v in idle.cpu.values()]
        members = [idle.control[m] for m in plan.members]
        hubs = [idle.control[h] for h in plan.hubs]
        control = list(idle.control.values())
        adverts = list(idle.adverts.values())
        print(
            f"{o.n:>3} {plan.clusters:>8} {len(plan.brokers()):>7} | "
            f"{mean(rss):6.1f} {max(rss):7.1f} {mean(cpu):6.2f} {max(cpu):7.2f} | "
            f"{mean(members):8.0f} {mean(hubs):8.0f} {mean(control):7.0f} {max(control):7.0f} "
            f"{mean(adverts):7.0f} {max(adverts):7.0f} | "
            f"{o.cut_s:7.1f} {o.back_s:7.1f} | {o.jobs_s:5.1f} {o.jobs_ok:>3}/{o.jobs}"
        )
    print()
    for o in outcomes:
        idle, plan = o.idle, o.plan
        per_neighbour = [idle.control[name] / max(1, idle.neighbours[name]) for name in plan.names]
        print(
            f"N={o.n}: started in {o.start_s:.0f} s, routes settled {o.converge_s:.1f} s after; "
            f"idle window {idle.seconds:.0f} s; control octets per node per minute per "
            f"neighbour: mean {mean(per_neighbour):.0f}, max {max(per_neighbour):.0f}; "
            f"hubs have {mean([idle.neighbours[h] for h in plan.hubs]):.1f} neighbours on "
            f"average; {o.jobs} jobs at {o.jobs / o.jobs_s:.1f} jobs/s; load {o.load:.1f}"
        )


async def run(args: argparse.Namespace) -> int:
    print(
        f"mesh benchmark - Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    outcomes = []
    for n in args.nodes:
        outcomes.append(await one_size(n, args))
        print_outcomes(outcomes[-1:])
    if len(outcomes) > 1:
        print_outcomes(outcomes)
    failed = [o for o in outcomes if o.jobs_ok != o.jobs]
    for o in failed:
        print(f"N={o.n}: only {o.jobs_ok} of {o.jobs} jobs printed ok")
    return 1 if failed else 0


def main() -> int:
    # The cut link's relay logs every refused connection while it is down: expected here.
    logging.getLogger("convergence.lossy").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of the idle window")
    parser.add_argument("--jobs", type=int, default=500)
    args = parser.parse_args()
    if any(n < 4 for n in args.nodes) or args.jobs < 1 or not math.isfinite(args.idle):
        parser.error("--nodes must be at least 4, --jobs at least 1")
    return trio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
