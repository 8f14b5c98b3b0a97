"""``ucp demo`` (also ``python -m ucp_dtn demo``): the platform at work, end to end.

It starts a local network of real ``ucp-bpnode`` processes on 127.0.0.1, each with its own
persistent bundle store, and runs real WebAssembly jobs through it the way a user would:

1. a mesh authority is made and issues one trust file per device (``ucp trust init``, ``ucp
   trust issue``): node ``hub`` comes up as broker and datastore, node ``worker`` as executor
   (it connects to the hub and sends heartbeats with its capabilities), both with ``--trust``
   (TLS with authenticated node IDs, signed messages; docs/security.md), and the client joins
   with ``ucp trust use``; a client without a trust file tries and is refused. ``--open``
   runs the demo in open mode instead (no authority, no TLS);
2. a client with its own identity and bundle store submits an execution plan: recordings from
   two field sites as named data (generated audio with known content: silence, speech-like
   sounds, engine hum, alarms, noise), a job per site running the audio classifier (C compiled
   to WebAssembly, ``workloads/classifier``) over its recording, and a third job (the
   ``river-gauge`` module) over a gauge's readings; ``ucp submit`` returns once the broker has
   accepted the jobs, and the client goes offline;
3. while the client is away, the broker dispatches the jobs to the executor, which fetches the
   inputs from the datastore, runs the modules in its sandbox and sends the results back; the
   broker keeps them for the client;
4. the client comes back, checks the jobs' status and collects the results;
5. every daemon is shut down cleanly (SIGTERM).

With ``--dashboard`` both nodes serve their live dashboard (``--http``) and the demo prints the
pages' addresses; on a terminal it waits for Enter before submitting, so the jobs can be watched
as they move, and after step 4 the network stays up (with the command to submit the plan again)
until Ctrl-C.

Every step prints the command a user would type. The exit status is 0 only if every job
succeeded, the classifier labelled at least 90% of the windows as the generator intended and
the gauge job printed the expected figures.
"""

from __future__ import annotations

import json
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import trio

from .localnet import LocalNetwork, LocalNode, run_ucp
from .workloads import (
    Scene,
    classifier_wasm_path,
    generate_scene,
    parse_classifier_output,
    score_labels,
)

__all__ = ["run_demo"]

MIN_ACCURACY = 0.9
"""Share of windows the classifier must label as the generator intended."""
MARK_CM = 300
"""The flood mark the jobs count readings above."""

SITES = {"site-a": 11, "site-b": 12}
"""Field sites and the seeds of their generated recordings."""
RECORDING_S = 120
"""Seconds of audio per site (16 kHz, 16-bit mono: 3.8 MB each)."""

PLAN = """\
# Field recordings from two sites, classified window by window, and a river gauge's readings.
[defaults]
limits = {{ time = "60s", memory = "64MiB" }}

[data]
"survey/site-a.wav" = "site-a.wav"
"survey/site-b.wav" = "site-b.wav"
"gauges/bridge" = "bridge.txt"
"modules/classifier" = "classifier.wasm"

[jobs.site-a]
wasm = {{ name = "modules/classifier" }}
stdin = {{ name = "survey/site-a.wav" }}

[jobs.site-b]
wasm = {{ name = "modules/classifier" }}
stdin = {{ name = "survey/site-b.wav" }}

[jobs.bridge]
wasm = "river-gauge.wasm"
args = ["{mark}"]
stdin = {{ name = "gauges/bridge" }}
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


def _write_plan(directory: Path) -> tuple[dict[str, Scene], str]:
    """Write the plan, its modules and its data; return the scenes per site and the gauge
    job's expected stdout line."""
    import wasmtime  # only the demo's setup compiles WAT; the executor runs the binary

    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("ucp_dtn.demo_assets").joinpath("river-gauge.wat").read_text()
    (directory / "river-gauge.wasm").write_bytes(wasmtime.wat2wasm(source))
    shutil.copyfile(classifier_wasm_path(), directory / "classifier.wasm")
    scenes = {}
    for site, seed in SITES.items():
        scene = generate_scene(seed, RECORDING_S)
        (directory / f"{site}.wav").write_bytes(scene.wav())
        scenes[site] = scene
    values = _readings(1, 2000)
    (directory / "bridge.txt").write_text("".join(f"{v}\n" for v in values))
    (directory / "plan.toml").write_text(PLAN.format(mark=MARK_CM))
    return scenes, _expected(values)


class _Client:
    """The ``ucp`` client of the demo: its own home, reaching the network through the hub."""

    def __init__(self, home: Path, hub: LocalNode) -> None:
        self.home = home
        self.hub = hub

    def argv(self, command: str, *args: str) -> list[str]:
        if command in ("agent", "trust"):
            return ["ucp", command, *args, "--home", str(self.home)]
        return ["ucp", command, *args, "--home", str(self.home), "--via", self.hub.url]

    async def run(
        self, command: str, *args: str, show: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        argv = self.argv(command, *args)
        if show:
            _say(f"  $ {shlex.join(argv)}")
        return await run_ucp(*argv[1:], timeout=120)


def _check_site(site: str, scene: Scene, results: Path) -> bool:
    """Print what the classifier found at ``site`` and whether it matches the scene."""
    stdout = results / "stdout"
    if not stdout.exists():
        _say(f"  {site}: no result")
        return False
    try:
        report = parse_classifier_output(stdout.read_text())
        score = score_labels(scene.expected_labels(), [label for _, label in report.windows])
    except ValueError as exc:  # ClassifierOutputError is a ValueError
        _say(f"  {site}: unreadable classifier output: {exc}")
        return False
    found = ", ".join(f"{label} {n}" for label, n in sorted(report.counts.items()) if n)
    verdict = "as expected" if score.accuracy >= MIN_ACCURACY else "BELOW 90%"
    _say(
        f"  {site}: {len(report.windows)} windows: {found}; "
        f"{score.matched}/{score.compared} labelled as generated ({score.accuracy:.0%}) "
        f"[{verdict}]"
    )
    return score.accuracy >= MIN_ACCURACY


def _indent(text: bytes) -> str:
    return "\n".join("    " + line for line in text.decode(errors="replace").splitlines())


async def _wait_for_enter() -> None:
    """On a terminal, wait until the user presses Enter (at once otherwise)."""
    if sys.stdin is None or not sys.stdin.isatty():
        return
    _say("  Open the page, then press Enter to submit the jobs.")
    await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)


async def _stay_up(client: _Client, plan: Path) -> None:
    """Keep the network up until SIGINT or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        _say("\n== The network stays up: watch the dashboards, submit the plan again with")
        _say(f"  $ {shlex.join(client.argv('submit', str(plan)))}")
        _say("  and press Ctrl-C to shut it down.")
        async for _ in signals:
            break


async def _make_mesh(base: Path) -> dict[str, Path] | None:
    """The demo's mesh authority and trust files (hub, worker, the client); ``None`` if a
    command failed (its output was shown)."""
    authority = base / "mesh-authority"
    files = {
        "hub": base / "hub.trust.pem",
        "worker": base / "worker.trust.pem",
        "client": base / "client.trust.pem",
    }
    commands = [
        ["trust", "init", "--name", "ucp demo mesh", "--authority", str(authority)],
        ["trust", "issue", "node", "dtn://hub/", "-o", str(files["hub"])],
        ["trust", "issue", "node", "dtn://worker/", "-o", str(files["worker"])],
        ["trust", "issue", "client", "demo-client", "-o", str(files["client"])],
    ]
    for command in commands:
        argv = command if command[1] == "init" else [*command, "--authority", str(authority)]
        _say(f"  $ ucp {shlex.join(argv)}")
        done = await run_ucp(*argv, timeout=60)
        if done.returncode != 0:
            _say(_indent(done.stdout + done.stderr))
            return None
    return files


async def run_demo(base: Path, *, dashboard: str | None = None, trusted: bool = True) -> bool:
    """Run the demo with work directories under ``base``; True when every job succeeded.
    ``dashboard``: the hub's dashboard address (``HOST:PORT``, port 0 for any); the worker's
    listens on 127.0.0.1, any port; then the network stays up until SIGINT or SIGTERM.
    ``trusted``: a trusted mesh (``--trust``), else open mode."""
    started = time.monotonic()
    _say("== 0. Preparing the plan: two sites' recordings (generated, known content) and a gauge")
    scenes, gauge_line = _write_plan(base / "plan")
    network = LocalNetwork(base / "nodes")
    hub_http = ("--http", dashboard) if dashboard is not None else ()
    worker_http = ("--http", "127.0.0.1:0") if dashboard is not None else ()
    try:
        trust: dict[str, tuple[str, ...]] = {"hub": (), "worker": ()}
        if trusted:
            _say("== 1. A trusted mesh: an authority and one trust file per device")
            files = await _make_mesh(base)
            if files is None:
                return False
            trust = {name: ("--trust", str(files[name])) for name in ("hub", "worker")}
        else:
            _say("== 1. Open mode: anyone who reaches the nodes may use them")
        _say("   A local network: a hub (broker + datastore) and a worker (executor)")
        hub = await network.start(
            "hub", "--roles", "broker,datastore", "--heartbeat", "1s", *hub_http, *trust["hub"]
        )
        _say(
            f"  $ ucp-bpnode -n {hub.node_id} -W {network.workdir('hub')} --roles broker,datastore"
            + (f" --http {dashboard}" if dashboard is not None else "")
            + (f" {shlex.join(trust['hub'])}" if trusted else "")
        )
        _say(f"    listening on {hub.url}")
        worker = await network.start(
            "worker",
            "--roles",
            "executor",
            "--heartbeat",
            "1s",
            "-s",
            hub.url,
            *worker_http,
            *trust["worker"],
        )
        _say(
            f"  $ ucp-bpnode -n {worker.node_id} -W {network.workdir('worker')} "
            f"--roles executor -s {hub.url}"
            + (f" {shlex.join(trust['worker'])}" if trusted else "")
        )
        client = _Client(base / "client-home", hub)
        if trusted:
            stranger = _Client(base / "stranger-home", hub)
            _say("   A client without a trust file gets no session, and is told why:")
            refused = await stranger.run("status", "--wait", "2s")
            _say(_indent(refused.stdout + refused.stderr))
            await run_ucp("agent", "stop", "--home", str(stranger.home), timeout=60)
            _say("   The demo's client joins the mesh with its trust file:")
            used = await client.run("trust", "use", str(base / "client.trust.pem"))
            _say(_indent(used.stdout + used.stderr))
            if used.returncode != 0:
                return False
        if dashboard is not None:
            _say(f"  dashboard of the hub (broker, job table): {hub.dashboard_url}")
            _say(f"  dashboard of the worker (executor):       {worker.dashboard_url}")
            _say(f"  Prometheus metrics:                       {hub.dashboard_url}metrics")
            await _wait_for_enter()

        _say("\n== 2. The client submits a plan (recordings and readings, three WebAssembly jobs)")
        _say(f"  plan: {base / 'plan' / 'plan.toml'}")
        submit_started = time.monotonic()
        submitted = await client.run("submit", str(base / "plan" / "plan.toml"), "--wait", "60s")
        _say(_indent(submitted.stdout + submitted.stderr))
        if submitted.returncode != 0:
            return False
        stopped = await client.run("agent", "stop")
        _say(_indent(stopped.stdout + stopped.stderr))
        _say("  ... the client is now offline: the network stores, forwards and runs the jobs.")

        _say("\n== 3. Later, the client comes back and asks how its jobs stand")
        states: dict[str, str] = {}
        with trio.move_on_after(90):
            while True:
                status = await client.run("status", "--json", show=not states)
                if status.returncode == 0:
                    jobs = json.loads(status.stdout)["jobs"]
                    states = {job["name"]: job["state"] for job in jobs}
                    finished = ("done", "failed", "rejected", "cancelled")
                    if states and all(s in finished for s in states.values()):
                        break
                await trio.sleep(1.0)
        _say("    " + ", ".join(f"{name}: {state}" for name, state in sorted(states.items())))

        _say("\n== 4. ... and collects the results")
        out = base / "results"
        collected = await client.run("collect", "-o", str(out))
        round_trip = time.monotonic() - submit_started
        _say(_indent(collected.stdout + collected.stderr))
        ok = collected.returncode == 0
        for site, scene in sorted(scenes.items()):
            ok = _check_site(site, scene, out / site) and ok
        stdout = out / "bridge" / "stdout"
        got = stdout.read_text().strip() if stdout.exists() else "(no result)"
        match = got == gauge_line
        ok = ok and match
        _say(f"  bridge gauge: {got}  [{'as expected' if match else 'EXPECTED ' + gauge_line}]")
        _say(
            f"  {2 * RECORDING_S} s of audio and 2000 readings: submitted, run and collected "
            f"in {round_trip:.1f} s (client offline in between)"
        )

        if dashboard is not None:
            await _stay_up(client, base / "plan" / "plan.toml")
        _say("\n== 5. Shutting the network down (SIGTERM: SESS_TERM to peers, stores closed)")
        for node in (worker, hub):
            status_code = await node.stop()
            _say(f"  {node.name} exited with status {status_code}")
        elapsed = time.monotonic() - started
        _say(f"\nDone in {elapsed:.1f} s: {'success' if ok else 'FAILURE'}.")
        await client.run("agent", "stop", show=False)
        return ok
    finally:
        with trio.CancelScope(shield=True):
            await run_ucp("agent", "stop", "--home", str(base / "client-home"), timeout=60)
        await network.close()
