"""Jobs through the platform: the audio classifier natively, under plain wasmtime and through real
``ucp-bpnode`` daemons; the end-to-end latency of a trivial job; jobs per second.

1. **Audio classifier, 10 minutes of audio** (``workloads/classifier``; a generated scene, 16 kHz
   mono, 19.2 MB, seed 1). Every row runs the same job and checks its labels against the scene.

   - *native*: ``gcc -O2`` build of ``classifier.c`` made here in a temporary directory (skipped,
     saying so, without gcc); the process reads the audio file on stdin.
   - *plain wasmtime*: ``classifier.wasm`` with wasmtime-py directly (``wasm_runtime.py``'s
     ``PlainWasmtime``): a default engine and store, nothing on; WASI stdin from the file. The
     module is compiled beforehand (its own row), as the warm pool has it after a first job.
     This is the baseline of the ratios. Beside it, for older figures: with epoch interruption
     (and the executor's store limits), the baseline of 2026-12-07 evening; and with fuel
     metering too, the executor's settings before fuel on demand. The three run in turn.
   - *JobSandbox in-process*: the same through our sandbox with the executor's engine settings
     (no epoch interruption: the pool's kill enforces time limits), no worker process, no
     network.
   - *platform*: a hub daemon (broker + datastore) and a worker daemon (executor), real
     processes on 127.0.0.1 with their persistent stores (``LocalNetwork``). The timer runs from
     submission to the result being available at the client, nothing subtracted:
     ``ucp run`` (whole command, including its process start) with the audio as named data in
     the plan; the client library in-process (``submit_plan`` + ``wait_for_jobs`` +
     ``collect_results``) with the audio in the plan; and the same with the audio already in
     the datastore (uploaded before the clock starts): its first run, whose worker fetches the
     19 MB (its input cache is cold), and ``--repeats`` later runs, which find the audio in the
     worker's input cache (the datastore confirms the digest; no bytes move). The worker has
     run the module once before (warm-up), so it is compiled and cached there as in the
     wasmtime row.

   The ratio platform / plain wasmtime (nothing on) of the later runs on stored audio is the
   target (<= 1.10); the other rows show how far the first run and an upload with the plan are. The
   executor's own account of the platform job (input fetch, run, collect) is printed beside
   it. For the later runs the CPU time of each process is read from ``/proc`` (the job in the
   worker's wasm worker process, the hub's and the worker's daemons, the client library in
   this process) and compared with plain wasmtime's CPU time: on a machine shared with other
   work these figures hold still where the times do not.

2. **Trivial job latency**: a module whose ``_start`` writes ``ok`` (the wasm travels inside the
   job-submission bundle); submission to result at the client, repeated: through ``ucp run``
   (a fresh Python process each time; its bare start-up is shown too) and through the client
   library in one process. Target: median < 100 ms.

3. **Jobs per second**: one plan of ``--jobs`` trivial jobs through the client library,
   submission of the plan to the last result at the client, ``--many-repeats`` times (target
   >= 100 jobs/s). Beside the rate, per job: the CPU time of the hub daemon, the worker daemon
   (without its wasm worker processes) and the bench's own process (the client library and its
   bundle node), read with psutil around each run, and the bundles the hub received and created
   and the worker created (the daemons' statistics). ``--only-many`` runs this section alone.

Medians over ``--repeats`` runs (the machine is shared). Run:
``.venv/bin/python bench/jobs.py [--seconds 600] [--repeats 3] [--latency-runs 20] [--jobs 100]
[--many-repeats 3] [--only-many] [--executor-epoch]`` (the last: the worker's executor with
epoch interruption on, as before 2026-12-07 night, for a before/after in one session).
Exits 0 (also when targets are missed; the table says so).
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import psutil
import trio
import wasmtime
from wasm_runtime import PlainWasmtime  # bench/: the classifier under wasmtime-py directly

from ucp_dtn.client import (
    ClientSession,
    ClientSettings,
    collect_results,
    put_data,
    submit_plan,
    wait_for_jobs,
)
from ucp_dtn.localnet import LocalNetwork, LocalNode, run_ucp
from ucp_dtn.ucp import JobResult, load_plan
from ucp_dtn.ucp.runtime import (
    DEFAULT_TIMEOUT,
    JobSandbox,
    RunSpec,
    SandboxConfig,
    module_digest,
)
from ucp_dtn.workloads import (
    Scene,
    classifier_wasm_path,
    generate_scene,
    parse_classifier_output,
    score_labels,
)

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = ROOT / "workloads" / "classifier"
TARGET_RATIO = 1.10
TARGET_LATENCY_MS = 100.0
TARGET_JOBS_PER_S = 100.0

TRIVIAL_WAT = (Path(__file__).with_name("trivial.wat")).read_text()
"""A module that writes "ok" and exits (shared by the benchmarks that run trivial jobs)."""


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Row:
    label: str
    seconds: list[float]
    note: str = ""
    cpu: list[float] = field(default_factory=list)
    """CPU seconds of this process per run, where measured."""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def check_labels(scene: Scene, stdout: str, where: str) -> str:
    """'labels 100.0%' after checking the output; raise if it is wrong."""
    report = parse_classifier_output(stdout)
    score = score_labels(scene.expected_labels(), report.labels)
    if score.accuracy < 0.9:
        raise RuntimeError(f"{where}: labels {score.accuracy:.1%} right: {score.confusions}")
    return f"labels {score.accuracy:.1%} of {score.compared}"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The children of a process (its wasm worker processes, for an executor's daemon)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return found


# ------------------------------------------------------------------------------ local baselines


def native_row(scene: Scene, audio: Path, work: Path, repeats: int) -> Row | str:
    gcc = shutil.which("gcc")
    if gcc is None:
        return "native: skipped, gcc is not installed"
    binary = work / "classifier-native"
    subprocess.run(
        [gcc, "-std=c11", "-O2", "-ffp-contract=off", "-o", str(binary),
         str(CLASSIFIER / "classifier.c"), "-lm"],
        check=True,
    )  # fmt: skip
    times = []
    note = ""
    for _ in range(repeats):
        with audio.open("rb") as stdin:
            began = time.perf_counter()
            done = subprocess.run([str(binary)], stdin=stdin, capture_output=True, check=True)
            times.append(time.perf_counter() - began)
        note = check_labels(scene, done.stdout.decode(), "native")
    return Row("native (gcc -O2)", times, note)


@dataclass(frozen=True)
class Engine:
    """One way of running the module under wasmtime-py directly."""

    label: str
    note: str
    epoch: bool
    fuel: bool


PLAIN_ENGINES = (
    Engine(
        "plain wasmtime: instantiate + run",
        "default engine, nothing on (no epoch, no fuel)",
        epoch=False,
        fuel=False,
    ),
    Engine(
        "  (wasmtime with epoch interruption on)",
        "the baseline of the figures of 2026-12-07 evening",
        epoch=True,
        fuel=False,
    ),
    Engine(
        "  (wasmtime with epoch and fuel metering on)",
        "the executor's settings before fuel on demand",
        epoch=True,
        fuel=True,
    ),
)
"""Plain wasmtime first (the baseline of the ratios), then the settings of older baselines."""


def plain_wasmtime_rows(scene: Scene, audio: Path, work: Path, repeats: int) -> list[Row]:
    """The module under wasmtime-py directly: a default engine with nothing on, and for
    comparison with older figures the same with epoch interruption, and with epoch interruption
    and fuel metering; each repeat runs all three in turn."""
    wasm = classifier_wasm_path().read_bytes()
    engines = [PlainWasmtime(wasm, fuel=how.fuel, epoch=how.epoch) for how in PLAIN_ENGINES]
    compile_time = engines[0].compile_s
    times: list[list[float]] = [[] for _ in PLAIN_ENGINES]
    cpu: list[list[float]] = [[] for _ in PLAIN_ENGINES]
    note = ""
    for number in range(repeats):
        for index, engine in enumerate(engines):
            out = work / f"wasmtime-{number}-{index}.out"
            began = time.perf_counter()
            began_cpu = time.process_time()
            engine.run(audio, out, work / "wasmtime.err")
            times[index].append(time.perf_counter() - began)
            cpu[index].append(time.process_time() - began_cpu)
            note = check_labels(scene, out.read_text(), "wasmtime")
    rows = [Row("plain wasmtime: compile the module", [compile_time], "once per module")]
    for index, how in enumerate(PLAIN_ENGINES):
        rows.append(Row(how.label, times[index], f"{note}; {how.note}", cpu[index]))
    return rows


def sandbox_row(scene: Scene, audio: Path, work: Path, repeats: int) -> Row:
    sandbox = JobSandbox(None, SandboxConfig(epoch_interruption=False))  # the executor's settings
    wasm = classifier_wasm_path().read_bytes()
    times = []
    note = ""
    try:
        sandbox.load(module_digest(wasm), wasm)  # compiled before the clock starts
        for number in range(repeats):
            job_dir = work / f"sandbox-{number}"
            job_dir.mkdir()
            spec = RunSpec(wasm, job_dir, stdin_path=audio, timeout=DEFAULT_TIMEOUT)
            began = time.perf_counter()
            outcome = sandbox.run_job(spec)
            times.append(time.perf_counter() - began)
            if not outcome.ok:
                raise RuntimeError(f"sandbox: {outcome.message}")
            note = check_labels(scene, (job_dir / "stdout").read_text(), "sandbox")
    finally:
        sandbox.close()
    return Row("JobSandbox in-process (module in memory, no epoch)", times, note)


# ------------------------------------------------------------------------------ the platform


CLASSIFY_PLAN = """\
[data]
"{name}" = "audio.pcm"

[jobs.classify]
wasm = "classifier.wasm"
stdin = {{ name = "{name}" }}
"""

STORED_PLAN = """\
[jobs.classify]
wasm = "classifier.wasm"
stdin = {{ name = "{name}" }}
"""


def trivial_plan(jobs: int) -> str:
    return "".join(f'[jobs.t{number:03d}]\nwasm = "trivial.wasm"\n\n' for number in range(jobs))


class Platform:
    """A hub (broker + datastore) and a worker (executor), and plan files to submit."""

    def __init__(
        self,
        base: Path,
        scene: Scene,
        audio: Path,
        hub_args: tuple[str, ...] = (),
        worker_args: tuple[str, ...] = (),
    ) -> None:
        self.base = base
        self.hub_args = hub_args
        self.worker_args = worker_args
        self.scene = scene
        self.plans = base / "plans"
        self.plans.mkdir(parents=True)
        shutil.copy(classifier_wasm_path(), self.plans / "classifier.wasm")
        os.link(audio, self.plans / "audio.pcm")
        (self.plans / "trivial.wasm").write_bytes(wasmtime.wat2wasm(TRIVIAL_WAT))
        self.network = LocalNetwork(base / "nodes")
        self.stored_cpu: list[dict[str, float]] = []
        """CPU seconds per process of each later run on the stored audio."""
        self.hub: LocalNode | None = None
        self.worker: LocalNode | None = None
        self._count = 0

    def plan(self, template: str, **fields: str) -> Path:
        self._count += 1
        path = self.plans / f"plan-{self._count}.toml"
        path.write_text(template.format(**fields))
        return path

    async def start(self) -> None:
        self.hub = await self.network.start(
            "hub", "--roles", "broker,datastore", "--heartbeat", "1s", *self.hub_args
        )
        self.worker = await self.network.start(
            "worker", "--roles", "executor", "--heartbeat", "1s", "-s", self.hub.url,
            *self.worker_args,
        )  # fmt: skip

    def cpu_counters(self, wasm_workers: list[int]) -> dict[str, float]:
        """CPU seconds used so far by each process of the platform: the hub's daemon, the
        worker's daemon, its wasm worker processes ``wasm_workers`` and this process (the
        client library)."""
        hub, worker = (
            self.network.nodes["hub"].process.pid,
            self.network.nodes["worker"].process.pid,
        )
        return {
            "job (wasm worker)": sum(process_cpu(pid) for pid in wasm_workers),
            "hub daemon": process_cpu(hub),
            "worker daemon": process_cpu(worker),
            "client (this process)": time.process_time(),
        }

    def wasm_workers(self) -> list[int]:
        """Process IDs of the worker daemon's wasm worker processes."""
        return child_pids(self.network.nodes["worker"].process.pid)

    def settings(self, home: str) -> ClientSettings:
        assert self.hub is not None
        return ClientSettings(home=self.base / home, via=(self.hub.address,), wait_s=30.0)

    async def cli_run(self, plan: Path, home: str) -> tuple[float, Path]:
        assert self.hub is not None
        out = self.base / f"out-{plan.stem}"
        began = time.perf_counter()
        done = await run_ucp(
            "run", str(plan), "-o", str(out), "--home", str(self.base / home),
            "--via", self.hub.url, timeout=600,
        )  # fmt: skip
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"ucp run failed: {done.stderr.decode()[-2000:]}")
        return elapsed, out


async def library_run(
    session: ClientSession, plan: Path, out: Path
) -> tuple[float, list[str], list[JobResult]]:
    """Submit ``plan``, wait for every result, collect; (seconds, stdout and result of each
    job)."""
    began = time.perf_counter()
    report = await submit_plan(session, load_plan(plan))
    entries = await wait_for_jobs(session, [job.job_id for job in report.jobs], timeout_s=600)
    collected = await collect_results(session, entries, out)
    elapsed = time.perf_counter() - began
    stdouts = []
    results = []
    for item in collected:
        result = item.entry.result
        if result is None or not result.ok or item.directory is None:
            raise RuntimeError(f"job {item.entry.name} did not succeed: {item.entry.detail}")
        stdouts.append((item.directory / "stdout").read_text())
        results.append(result)
    return elapsed, stdouts, results


def executor_account(result: JobResult) -> str:
    """The job's timings as the executor reported them."""
    t = result.timings
    return f"executor: fetch {t.fetch:.2f}s run {t.run:.2f}s collect {t.collect:.2f}s"


async def timed(repeats: int, once: Callable[[int], Awaitable[float]]) -> list[float]:
    return [await once(number) for number in range(repeats)]


@dataclass(frozen=True)
class Account:
    """CPU seconds of the three processes and the daemons' bundle counters at one moment."""

    hub_cpu: float
    worker_cpu: float
    client_cpu: float
    hub_received: int
    hub_created: int
    worker_created: int

    def __sub__(self, other: Account) -> Account:
        return Account(
            self.hub_cpu - other.hub_cpu,
            self.worker_cpu - other.worker_cpu,
            self.client_cpu - other.client_cpu,
            self.hub_received - other.hub_received,
            self.hub_created - other.hub_created,
            self.worker_created - other.worker_created,
        )


def _cpu(pid: int | None) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def account(platform_: Platform) -> Account:
    """Where the three processes stand now (the worker's wasm worker processes not counted)."""
    assert platform_.hub is not None and platform_.worker is not None
    hub = (await platform_.hub.info())["statistics"]
    worker = (await platform_.worker.info())["statistics"]
    return Account(
        _cpu(platform_.hub.process.pid),
        _cpu(platform_.worker.process.pid),
        _cpu(None),
        int(hub["received"]),
        int(hub["created"]),
        int(worker["created"]),
    )


def account_line(spent: Account, jobs: int) -> str:
    """Per job: CPU of each process in ms, bundles at the hub and the worker."""
    total = spent.hub_cpu + spent.worker_cpu + spent.client_cpu
    return (
        f"CPU per job: hub {spent.hub_cpu / jobs * 1e3:.1f} ms, worker "
        f"{spent.worker_cpu / jobs * 1e3:.1f} ms, client {spent.client_cpu / jobs * 1e3:.1f} ms, "
        f"sum {total / jobs * 1e3:.1f} ms; bundles per job: hub received "
        f"{spent.hub_received / jobs:.2f}, created {spent.hub_created / jobs:.2f}; worker "
        f"created {spent.worker_created / jobs:.2f}"
    )


async def platform_figures(args: argparse.Namespace, platform_: Platform) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    scene = platform_.scene
    await platform_.start()

    if args.only_many:
        async with ClientSession.open(platform_.settings("home-lib")) as session:
            await library_run(session, platform_.plan(trivial_plan(1)), platform_.base / "w2")
            await many_jobs(args, platform_, session, rows)
        await platform_.network.close()
        return rows

    # Warm-up: the worker compiles and caches both modules, the client homes get their identity.
    async with ClientSession.open(platform_.settings("home-lib")) as session:
        short = generate_scene(9, 5.0)
        await put_data(session, "bench/warm-up.pcm", short.pcm)
        await library_run(
            session, platform_.plan(STORED_PLAN, name="bench/warm-up.pcm"), platform_.base / "w1"
        )
        await library_run(session, platform_.plan(trivial_plan(1)), platform_.base / "w2")
    await platform_.cli_run(platform_.plan(trivial_plan(1)), "home-cli")

    # 1. the classifier through ucp run, audio uploaded by the plan
    notes = ""

    async def cli_once(number: int) -> float:
        nonlocal notes
        plan = platform_.plan(CLASSIFY_PLAN, name=f"bench/cli-{number}.pcm")
        elapsed, out = await platform_.cli_run(plan, "home-cli")
        notes = check_labels(scene, (out / "classify" / "stdout").read_text(), "ucp run")
        return elapsed

    rows["cli"] = Row(
        "platform: ucp run, audio in the plan", await timed(args.repeats, cli_once), ""
    )
    rows["cli"].note = notes

    async with ClientSession.open(platform_.settings("home-lib")) as session:

        async def lib_once(number: int) -> float:
            nonlocal notes
            plan = platform_.plan(CLASSIFY_PLAN, name=f"bench/lib-{number}.pcm")
            elapsed, stdouts, results = await library_run(
                session, plan, platform_.base / f"lib-{number}"
            )
            notes = check_labels(scene, stdouts[0], "library") + "; " + executor_account(results[0])
            return elapsed

        rows["lib"] = Row(
            "platform: client library, audio in the plan", await timed(args.repeats, lib_once)
        )
        rows["lib"].note = notes

        began = time.perf_counter()
        await put_data(session, "bench/stored.pcm", scene.pcm)
        upload = time.perf_counter() - began

        cpu_per_job: list[dict[str, float]] = []

        async def stored_once(number: int) -> float:
            nonlocal notes
            plan = platform_.plan(STORED_PLAN, name="bench/stored.pcm")
            wasm_workers = platform_.wasm_workers()
            before = platform_.cpu_counters(wasm_workers)
            elapsed, stdouts, results = await library_run(
                session, plan, platform_.base / f"st-{number}"
            )
            after = platform_.cpu_counters(wasm_workers)
            cpu_per_job.append({name: after[name] - before[name] for name in after})
            notes = check_labels(scene, stdouts[0], "stored") + "; " + executor_account(results[0])
            return elapsed

        # The first job on the stored audio fetches it (the worker's input cache is cold);
        # the later ones find it in the cache (issue #16: jobs go to their data).
        rows["stored-first"] = Row(
            "platform: library, audio stored, first run", await timed(1, stored_once)
        )
        rows["stored-first"].note = notes
        cpu_per_job.clear()
        rows["stored"] = Row(
            "platform: library, audio stored, later runs",
            await timed(args.repeats, stored_once),
        )
        rows["stored"].note = notes
        platform_.stored_cpu = cpu_per_job
        rows["upload"] = Row(
            "  (ucp data put of the 19 MB beforehand)", [upload], "not in the row above"
        )

        # 2. trivial job latency, in-process
        async def trivial_once(number: int) -> float:
            plan = platform_.plan(trivial_plan(1))
            elapsed, stdouts, _ = await library_run(session, plan, platform_.base / f"t-{number}")
            if stdouts != ["ok\n"]:
                raise RuntimeError(f"trivial job printed {stdouts!r}")
            return elapsed

        rows["trivial-lib"] = Row(
            "trivial job, client library", await timed(args.latency_runs, trivial_once)
        )

        # 3. jobs per second
        await many_jobs(args, platform_, session, rows)

    # 2b. trivial job latency through ucp run (a Python process per job)
    async def trivial_cli_once(number: int) -> float:
        elapsed, out = await platform_.cli_run(platform_.plan(trivial_plan(1)), "home-cli")
        if (out / "t000" / "stdout").read_text() != "ok\n":
            raise RuntimeError("trivial job through ucp run printed something else")
        return elapsed

    rows["trivial-cli"] = Row(
        "trivial job, ucp run", await timed(args.cli_latency_runs, trivial_cli_once)
    )

    async def cli_start(number: int) -> float:
        began = time.perf_counter()
        await trio.run_process([sys.executable, "-m", "ucp_dtn.cli", "--help"], capture_stdout=True)
        return time.perf_counter() - began

    rows["cli-start"] = Row(
        "  (ucp --help: process start alone)", await timed(args.cli_latency_runs, cli_start)
    )
    await run_ucp("agent", "stop", "--home", str(platform_.base / "home-cli"))
    await platform_.network.close()
    return rows


async def many_jobs(
    args: argparse.Namespace, platform_: Platform, session: ClientSession, rows: dict[str, Row]
) -> None:
    """Section 3: ``--many-repeats`` runs of a plan of ``--jobs`` trivial jobs, with the CPU
    and bundles each run cost per job."""
    notes: list[str] = []

    async def many_once(number: int) -> float:
        # library_run's steps, timed apart: submission to the last result, then collecting.
        plan = platform_.plan(trivial_plan(args.jobs))
        before = await account(platform_)
        began = time.perf_counter()
        report = await submit_plan(session, load_plan(plan))
        entries = await wait_for_jobs(session, [job.job_id for job in report.jobs], timeout_s=600)
        settled = time.perf_counter()
        collected = await collect_results(session, entries, platform_.base / f"m{number}")
        elapsed = time.perf_counter() - began
        line = account_line(await account(platform_) - before, args.jobs)
        notes.append(f"{line}; collecting {(elapsed - (settled - began)) * 1e3:.0f} ms")
        stdouts = [
            (item.directory / "stdout").read_text() if item.directory is not None else ""
            for item in collected
        ]
        if stdouts != ["ok\n"] * args.jobs:
            raise RuntimeError("a trivial job printed something else")
        return elapsed

    rows["many"] = Row(
        f"{args.jobs} trivial jobs in one plan", await timed(args.many_repeats, many_once)
    )
    rows["many"].note = "\n".join(notes)


# ------------------------------------------------------------------------------ report


def print_rows(rows: list[Row], unit: str = "s") -> None:
    print(f"{'':50} {'median':>9} {'min':>9} {'max':>9}  n")
    for row in rows:
        scale = 1e3 if unit == "ms" else 1.0
        cells = (row.median * scale, min(row.seconds) * scale, max(row.seconds) * scale)
        figures = " ".join(f"{value:8.3f}{unit}" if unit == "s" else f"{value:7.1f}{unit}"
                           for value in cells)  # fmt: skip
        print(f"{row.label:50} {figures} {len(row.seconds):2}  {row.note}")


def print_many(args: argparse.Namespace, many: Row) -> None:
    print(f"== 3. throughput: {args.jobs} trivial jobs in one plan, {len(many.seconds)} runs")
    rates = sorted(args.jobs / seconds for seconds in many.seconds)
    verdict = "met" if statistics.median(rates) >= TARGET_JOBS_PER_S else "MISSED"
    print(
        f"submission to the last result: median {many.median:.2f} s = "
        f"{args.jobs / many.median:.1f} jobs/s (runs: {', '.join(f'{r:.1f}' for r in rates)}; "
        f"target >= {TARGET_JOBS_PER_S:g} jobs/s: {verdict})"
    )
    for number, line in enumerate(many.note.splitlines()):
        print(f"  run {number + 1}: {line}")
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="audio duration (600)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per classifier row (3)")
    parser.add_argument("--latency-runs", type=int, default=20, help="trivial jobs timed (20)")
    parser.add_argument(
        "--cli-latency-runs", type=int, default=10, help="trivial jobs timed through ucp run (10)"
    )
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the throughput plan (100)")
    parser.add_argument(
        "--many-repeats", type=int, default=3, help="runs of the throughput plan (3)"
    )
    parser.add_argument(
        "--only-many", action="store_true", help="run section 3 (jobs per second) alone"
    )
    parser.add_argument(
        "--dispatch-ahead", help="the hub broker's --dispatch-ahead (default: the daemon's)"
    )
    parser.add_argument(
        "--executor-epoch",
        action="store_true",
        help="the worker's executor with epoch interruption on (its default before 2026-12-07"
        " night), for before/after figures in one session",
    )
    args = parser.parse_args()

    print("bench/jobs.py: the audio classifier natively, under wasmtime and through the platform")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"wasmtime-py {version('wasmtime')}; {platform.system()} {platform.release()}"
    )
    if args.executor_epoch:
        print("the worker's executor runs with --epoch-interruption")
    began_all = time.perf_counter()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ucp-bench-jobs-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        scene = generate_scene(1, 1.0 if args.only_many else args.seconds)
        audio = work / "audio.pcm"
        audio.write_bytes(scene.pcm)
        print(
            f"audio: {args.seconds:g} s at {scene.rate} Hz, {len(scene.pcm) / 1e6:.1f} MB, "
            f"{len(scene.segments)} segments, generated in {time.perf_counter() - began:.1f} s\n",
            flush=True,
        )

        local: list[Row] = []
        plain_rows: list[Row] = []
        if not args.only_many:
            native = native_row(scene, audio, work, args.repeats)
            skipped = native if isinstance(native, str) else None
            if isinstance(native, Row):
                local.append(native)
            plain_rows = plain_wasmtime_rows(scene, audio, work, args.repeats)
            local += plain_rows
            local.append(sandbox_row(scene, audio, work, args.repeats))

        hub_args = () if args.dispatch_ahead is None else ("--dispatch-ahead", args.dispatch_ahead)
        worker_args = ("--epoch-interruption",) if args.executor_epoch else ()
        platform_ = Platform(work / "platform", scene, audio, hub_args, worker_args)
        rows = trio.run(platform_figures, args, platform_)
        load_end = os.getloadavg()[0]

    if args.only_many:
        print_many(args, rows["many"])
        print(f"\nwhole bench: {time.perf_counter() - began_all:.0f} s")
        return
    wasm_run = plain_rows[1].median  # plain: a default engine, nothing on
    wasm_run_epoch = plain_rows[2].median
    wasm_run_metered = plain_rows[3].median
    print(f"== 1. audio classifier, {args.seconds / 60:g} minutes of audio")
    if skipped:
        print(skipped)
    print_rows(
        [*local, rows["cli"], rows["lib"], rows["stored-first"], rows["stored"], rows["upload"]]
    )
    print()
    if isinstance(native, Row):
        print(f"plain wasmtime / native:  {wasm_run / native.median:5.2f}x")
    for key, what in (
        ("cli", "ucp run, audio in the plan"),
        ("lib", "library, audio in the plan"),
        ("stored-first", "library, audio stored, first run"),
        ("stored", "library, audio stored, later runs"),
    ):
        ratio = rows[key].median / wasm_run
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(
            f"platform / plain wasmtime ({what}): {ratio:5.2f}x  "
            f"(target <= {TARGET_RATIO:.2f}x: {verdict})"
        )
    stored = rows["stored"].median
    print(
        "for comparison with older figures, later runs on stored audio / wasmtime with epoch"
        f" interruption on: {stored / wasm_run_epoch:5.2f}x, with epoch and fuel metering on:"
        f" {stored / wasm_run_metered:5.2f}x; plain wasmtime / with epoch on:"
        f" {wasm_run / wasm_run_epoch:5.2f}x, / with epoch and fuel on:"
        f" {wasm_run / wasm_run_metered:5.2f}x"
    )
    if platform_.stored_cpu and plain_rows[1].cpu:
        per_process = {
            name: statistics.median(job[name] for job in platform_.stored_cpu)
            for name in platform_.stored_cpu[0]
        }
        total = statistics.median(sum(job.values()) for job in platform_.stored_cpu)
        plain_cpu = statistics.median(plain_rows[1].cpu)
        plain_cpu_epoch = statistics.median(plain_rows[2].cpu)
        plain_cpu_metered = statistics.median(plain_rows[3].cpu)
        print(
            "CPU per job, audio stored, later runs (medians; steadier than the times on a busy"
            " machine): "
            + ", ".join(f"{name} {seconds:.3f}s" for name, seconds in per_process.items())
        )
        print(
            f"  all processes {total:.3f}s = {total / plain_cpu:.2f}x plain wasmtime's CPU"
            f" ({plain_cpu:.3f}s; with epoch on {plain_cpu_epoch:.3f}s, with epoch and fuel on"
            f" {plain_cpu_metered:.3f}s); the job alone"
            f" {per_process['job (wasm worker)'] / plain_cpu:.2f}x"
        )
    print(
        f"load average (1 min): {load_start:.2f} at the start, {load_end:.2f} after the"
        " platform runs (2 cores)"
    )

    print("\n== 2. trivial job, submission to result at the client")
    print_rows([rows["trivial-lib"], rows["trivial-cli"], rows["cli-start"]], unit="ms")
    for key in ("trivial-lib", "trivial-cli"):
        samples = rows[key].seconds
        median_ms = statistics.median(samples) * 1e3
        verdict = "met" if median_ms < TARGET_LATENCY_MS else "MISSED"
        print(
            f"{rows[key].label}: median {median_ms:.1f} ms, p90 "
            f"{percentile(samples, 0.9) * 1e3:.1f} ms (target median < "
            f"{TARGET_LATENCY_MS:g} ms: {verdict})"
        )

    print()
    print_many(args, rows["many"])
    print(f"\nwhole bench: {time.perf_counter() - began_all:.0f} s")


if __name__ == "__main__":
    main()
