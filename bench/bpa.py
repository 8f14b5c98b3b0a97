"""The bundle protocol agent as real ``ucp-bpnode`` daemons on loopback.

- forwarding: 1 KiB bundles forwarded per second through one node, with the durable (sqlite)
  store and with the in-memory store. A source daemon is preloaded with N bundles for a sink
  daemon routed via the relay; the relay starts, connects to both, and the time until the sink
  has received all N is measured (the sink's counters, polled). Source and sink run in memory.
  CPU seconds per bundle of each daemon (user + system, from /proc), and the load average of
  the machine beside each figure (it is shared: rates swing with it, CPU per bundle much less).
- baseline, same run: the same source and sink with a bare TCPCLv4 relay in the middle (this
  script, ``--bare-relay``): it passes each transfer's bytes on and acknowledges it at once,
  without decoding, storing or routing — what the transport and trio alone cost per bundle.
- stages (``--stages``, on by default when py-spy works): the agent relay again, sampled by
  py-spy (``--nonblocking``, so it is not paused); every sample is put in the stage of the
  deepest agent function on its stack (decode, reception checks and edits, store write, routing
  and queue, TCPCL receive, TCPCL send, acknowledgement handling, ...), and the relay's CPU per
  bundle is shared out in proportion.
- memory: resident set size (psutil RSS) of one daemon before and after 10,000 1 KiB bundles
  for an unreachable node were stored in it, per stored bundle (durable and in-memory store).
- latency over 3 hops: a -> b -> c -> d (static routes, sessions up), one small bundle at a
  time from an application on a to one on d; median and 99th percentile of send-to-receive.

Targets (shared/design/anchors.md and issue #16): >= 3,500 bundles/s durable, >= 5,000/s in
memory; <= 2 KiB resident per stored 1 KiB bundle. Always exits 0; each line gives its target
and whether it was met. All three daemons share the machine's cores, so the rate is bounded by
their summed CPU per bundle; the relay's CPU per bundle is the steadier figure on a shared
machine ("allows N/s on one free core").

Run: ``.venv/bin/python bench/bpa.py [--bundles 20000] [--round-trips 300] [--no-stages]``
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import trio

from ucp_dtn.appapi import AppApiClient

KIB = 1024
TARGET_DURABLE = 3500.0
TARGET_MEMORY = 5000.0
TARGET_RSS_PER_BUNDLE = 2 * KIB
START_TIMEOUT = 60.0


@dataclass
class Daemon:
    name: str
    process: trio.Process
    address: tuple[str, int]
    socket: Path

    @property
    def url(self) -> str:
        return f"tcp://{self.address[0]}:{self.address[1]}"

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    async def statistics(self) -> dict[str, object]:
        async with AppApiClient.connect(self.socket) as client:
            return (await client.node_info()).statistics


class Daemons:
    """Starts ``ucp-bpnode`` processes in a temporary directory; stops them all at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.running: list[Daemon] = []

    async def start(self, name: str, *args: str, durable: bool = False) -> Daemon:
        command = [sys.executable, "-m", "ucp_dtn.daemon", "-n", f"dtn://{name}/"]
        command += ["-l", "127.0.0.1:0", "--quota", "4GiB"]
        if durable:
            command += ["-W", str(self.base / name)]
        else:
            command += ["--in-memory", "--socket", str(self.base / f"{name}.sock")]
        process = await trio.lowlevel.open_process(
            [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(START_TIMEOUT):
            while b"\n" not in buffer:
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"daemon {name} did not start")
                buffer += chunk
        fields = dict(word.split("=", 1) for word in buffer.decode().split()[1:])
        host, _, port = fields["tcpcl"].split(",")[0].rpartition(":")
        daemon = Daemon(name, process, (host, int(port)), Path(fields["socket"]))
        self.running.append(daemon)
        return daemon

    async def start_bare_relay(self, name: str, upstream: Daemon, downstream: Daemon) -> Daemon:
        """This script as a bare TCPCLv4 relay from ``upstream`` to ``downstream``."""
        command = [sys.executable, __file__, "--bare-relay", f"dtn://{name}/"]
        command += [f"{d.address[0]}:{d.address[1]}" for d in (upstream, downstream)]
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert process.stdout is not None
        with trio.fail_after(START_TIMEOUT):
            if not (await process.stdout.receive_some(64)).startswith(b"ready"):
                raise RuntimeError("the bare relay did not start")
        daemon = Daemon(name, process, ("127.0.0.1", 0), self.base / f"{name}.sock")
        self.running.append(daemon)
        return daemon

    async def stop_all(self) -> None:
        for daemon in self.running:
            if daemon.process.returncode is None:
                daemon.process.terminate()
        with trio.move_on_after(20):
            for daemon in self.running:
                await daemon.process.wait()
        for daemon in self.running:
            if daemon.process.returncode is None:
                daemon.process.kill()
        self.running.clear()


@asynccontextmanager
async def daemons() -> AsyncIterator[Daemons]:
    with tempfile.TemporaryDirectory(prefix="bpa-bench-") as base:
        group = Daemons(Path(base))
        try:
            yield group
        finally:
            with trio.CancelScope(shield=True):
                await group.stop_all()


async def preload(daemon: Daemon, destination: str, count: int, size: int) -> None:
    """Send ``count`` bundles of ``size`` bytes (pipelined, 128 in flight)."""
    async with AppApiClient.connect(daemon.socket) as client:
        limiter = trio.Semaphore(128)
        async with trio.open_nursery() as nursery:
            for number in range(count):
                await limiter.acquire()

                async def one(number: int = number) -> None:
                    try:
                        payload = number.to_bytes(8, "big") + bytes(size - 8)
                        await client.send(destination, payload, lifetime_s=3600)
                    finally:
                        limiter.release()

                nursery.start_soon(one)


async def wait_for_count(daemon: Daemon, key: str, count: int, timeout: float) -> float:
    """Poll ``statistics[key]`` until it reaches ``count``; return when it did."""
    with trio.fail_after(timeout):
        async with AppApiClient.connect(daemon.socket) as client:
            while True:
                value = (await client.node_info()).statistics.get(key, 0)
                if isinstance(value, int) and value >= count:
                    return time.perf_counter()
                await trio.sleep(0.02)


@dataclass(frozen=True)
class Forwarding:
    rate: float
    """Bundles per second through the relay."""
    cpu: dict[str, float]
    """CPU seconds per bundle of each daemon during the run."""
    load: float
    """The machine's 1-minute load average at the end of the run."""
    stages: dict[str, float] | None = None
    """Share of the relay's active samples per stage (with ``--stages``)."""


async def forwarding_rate(
    count: int, *, durable: bool = False, bare: bool = False, stages: bool = False
) -> Forwarding:
    async with daemons() as group:
        source = await group.start("src", "-r", "dtn://sink/*=dtn://relay/")
        sink = await group.start("sink")
        await preload(source, "dtn://sink/in", count, KIB)
        before = {d.name: d.cpu_seconds() for d in (source, sink)}
        start = time.perf_counter()
        if bare:
            relay = await group.start_bare_relay("relay", source, sink)
        else:
            relay = await group.start("relay", "-s", source.url, "-s", sink.url, durable=durable)
        before[relay.name] = relay.cpu_seconds()  # (after start-up: imports are not forwarding)
        spy = Sampler(relay.process.pid) if stages else None
        try:
            done = await wait_for_count(sink, "received", count, timeout=600)
        finally:
            samples = spy.stop() if spy is not None else None
        cpu = {
            d.name: (d.cpu_seconds() - before.get(d.name, 0.0)) / count
            for d in (source, relay, sink)
        }
        return Forwarding(
            count / (done - start),
            cpu,
            os.getloadavg()[0],
            None if samples is None else classify(samples),
        )


# -- the bare TCPCLv4 relay (the baseline) ------------------------------------------------------


async def bare_relay(node_id: str, peers: list[str]) -> None:
    """Connect to two peers; pass every transfer from the first on to the second, unchanged,
    acknowledging it at once; take and drop what the second sends. No decoding, no store."""
    from convergence.tcpcl.link import LinkConfig
    from convergence.tcpcl.listener import open_link

    config = LinkConfig(node_id=node_id, incoming_queue=256)
    (host_a, _, port_a), (host_b, _, port_b) = (peer.rpartition(":") for peer in peers)
    async with (
        open_link(host_a, int(port_a), config) as upstream,
        open_link(host_b, int(port_b), config) as downstream,
    ):
        print("ready", flush=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pass_on, upstream, downstream)
            nursery.start_soon(_pass_on, downstream, None)


async def _pass_on(source: object, target: object) -> None:
    from convergence.tcpcl.link import TcpclLink
    from convergence.tcpcl.link_errors import LinkClosedError

    assert isinstance(source, TcpclLink)
    assert target is None or isinstance(target, TcpclLink)
    while True:
        try:
            transfers = await source.receive_many(256)
        except LinkClosedError:
            return
        for transfer in transfers:
            if target is not None:
                target.start_send(transfer.data)
            await transfer.accept()


# -- where the relay's time goes ----------------------------------------------------------------

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (stage, function names that mark it); a sample belongs to the stage of the deepest marked
    # frame on its stack.
    ("decode + validate (bpv7)", ("decode_bundle ",)),
    (
        "reception checks, edits, re-encode",
        ("Receiver._check ", "with_forwarding_edits ", "Receiver._stored ", "Bundle.encode "),
    ),
    ("store write (record, index, put)", ("AgentCore.admit_many ", "put_many ", "_record_for ")),
    ("routing and forwarding queue", ("AgentCore._admitted ", "ForwardQueue.", "RoutingTable.")),
    ("final XFER_ACK (accept)", ("_answer_with ", "IncomingBundleTransfer.accept ")),
    ("reception, other (read, batch)", ("Receiver.on_transfers ",)),
    ("TCPCL receive (parse, sink)", ("TcpclLink._reader ",)),
    ("TCPCL send (queue, segment)", ("Neighbours._send_loop ", "TcpclLink.start_send ")),
    ("TCPCL writer (gather, send_all)", ("TcpclLink._writer ",)),
    (
        "acknowledged: store delete",
        ("Neighbours._complete_worker ", "_on_transfer_done", "forwarded_many "),
    ),
    ("sqlite in worker threads", ("BundleDatabase.apply ", "BundleDatabase.read ")),
    ("route adverts, janitor, app API", ("Neighbours._advertise", "Janitor.", "appapi")),
)
FSYNC = "fsync wait (not CPU)"
OTHER = "trio scheduling, other"


class Sampler:
    """py-spy attached to a running daemon (not pausing it), raw stacks to a file."""

    def __init__(self, pid: int) -> None:
        self.path = Path(tempfile.mkstemp(prefix="bpa-stacks-", suffix=".txt")[1])
        command = [SPY, "record", "--pid", str(pid), "--nonblocking", "--format", "raw"]
        command += ["--nolineno", "--rate", "250", "--output", str(self.path)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> list[tuple[list[str], int]]:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        try:
            text = self.path.read_text()
        finally:
            self.path.unlink(missing_ok=True)
        samples = []
        for line in text.splitlines():
            stack, _, number = line.rpartition(" ")
            if stack and number.isdigit():
                samples.append((stack.split(";"), int(number)))
        return samples


def stage_of(frames: list[str]) -> str:
    """The stage of one sampled stack (root first)."""
    if frames and frames[-1].startswith("transaction (") and "sqlite_files" in frames[-1]:
        return FSYNC  # COMMIT waiting for the WAL's fsync
    for frame in reversed(frames):
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return OTHER


def classify(samples: list[tuple[list[str], int]]) -> dict[str, float]:
    """Share of the active samples per stage (the fsync wait is left out of the shares)."""
    counts: dict[str, int] = {}
    for frames, number in samples:
        stage = stage_of(frames)
        counts[stage] = counts.get(stage, 0) + number
    busy = sum(n for stage, n in counts.items() if stage != FSYNC)
    shares = {stage: n / busy for stage, n in counts.items() if stage != FSYNC and busy}
    if FSYNC in counts and busy:
        shares[FSYNC] = counts[FSYNC] / busy
    return shares


def spy_usable() -> str | None:
    """Why py-spy cannot sample here (``None``: it can)."""
    if not Path(SPY).exists():
        return "py-spy is not installed (it comes with the test extra: make setup)"
    probe = subprocess.run(
        [SPY, "dump", "--pid", str(os.getpid())], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"py-spy cannot attach here: {probe.stderr.strip()[:120]}"
    return None


SPY = str(Path(sys.executable).with_name("py-spy"))


async def rss_per_bundle(count: int, *, durable: bool) -> tuple[float, int]:
    async with daemons() as group:
        node = await group.start("store", durable=durable)
        # Warm up the API and the store, so that start-up allocations are not counted.
        await preload(node, "dtn://elsewhere/x", 200, KIB)
        await trio.sleep(0.5)
        before = node.rss()
        await preload(node, "dtn://elsewhere/x", count, KIB)
        await trio.sleep(0.5)
        after = node.rss()
        return (after - before) / count, after


async def three_hop_latency(round_trips: int) -> list[float]:
    async with daemons() as group:
        a = await group.start("a", "-r", "dtn://d/*=dtn://b/")
        b = await group.start("b", "-s", a.url, "-r", "dtn://d/*=dtn://c/")
        c = await group.start("c", "-s", b.url)
        d = await group.start("d", "-s", c.url)
        samples = []
        async with (
            AppApiClient.connect(a.socket) as sender,
            AppApiClient.connect(d.socket) as receiver,
        ):
            registration = await receiver.register("ping")
            with trio.fail_after(60):  # the first bundle waits for the sessions to come up
                await sender.send("dtn://d/ping", b"warm-up")
                await (await registration.receive()).confirm()
            for _ in range(round_trips):
                with trio.fail_after(30):
                    start = time.perf_counter()
                    await sender.send("dtn://d/ping", b"x")
                    bundle = await registration.receive()
                    samples.append(time.perf_counter() - start)
                    await bundle.confirm()
        return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def run(args: argparse.Namespace) -> None:
    print(
        f"ucp-bpnode benchmark - Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"forwarding, {args.bundles:,} x 1 KiB bundles, source -> relay -> sink "
        "(CPU per bundle: user + system, from /proc; load = 1-minute load average):"
    )
    runs: dict[str, Forwarding] = {}
    for label, kind, target in (
        ("durable store", "durable", TARGET_DURABLE),
        ("in-memory store", "memory", TARGET_MEMORY),
        ("bare TCPCL relay", "bare", None),
    ):
        result = await forwarding_rate(args.bundles, durable=kind == "durable", bare=kind == "bare")
        runs[kind] = result
        cpu = ", ".join(f"{name} {seconds * 1e6:.0f} us" for name, seconds in result.cpu.items())
        verdict_text = (
            f"target >= {target:,.0f}: {verdict(result.rate >= target)}"
            if target is not None
            else "baseline: no decoding, store or routing"
        )
        print(
            f"  {label:17} {result.rate:6,.0f} bundles/s ({verdict_text}; load {result.load:.1f}); "
            f"CPU per bundle: {cpu}; the relay's CPU alone allows "
            f"{1 / result.cpu['relay']:,.0f}/s on one free core",
            flush=True,
        )
    bare_cpu = runs["bare"].cpu["relay"]
    for kind in ("durable", "memory"):
        print(
            f"  the agent relay ({kind}) costs {runs[kind].cpu['relay'] / bare_cpu:.1f}x the bare "
            f"TCPCL relay's CPU per bundle (+{(runs[kind].cpu['relay'] - bare_cpu) * 1e6:.0f} us)"
        )
    if args.stages:
        problem = spy_usable()
        if problem is not None:
            print(f"stages: not measured ({problem})")
        else:
            for kind in ("memory", "durable"):
                result = await forwarding_rate(args.bundles, durable=kind == "durable", stages=True)
                print_stages(kind, result)
    for label, durable in (("durable", True), ("in-memory", False)):
        per_bundle, total = await rss_per_bundle(args.stored, durable=durable)
        print(
            f"resident memory, {label} store: {per_bundle:7.0f} B per stored 1 KiB bundle "
            f"({per_bundle * 10_000 / 2**20:.1f} MiB per 10,000; RSS {total / 2**20:.0f} MiB; "
            f"target <= 2 KiB: {verdict(per_bundle <= TARGET_RSS_PER_BUNDLE)})",
            flush=True,
        )
    samples = await three_hop_latency(args.round_trips)
    print(
        f"latency over 3 hops (a->b->c->d, in memory, {len(samples)} bundles): "
        f"median {statistics.median(samples) * 1000:.2f} ms, "
        f"p99 {percentile(samples, 0.99) * 1000:.2f} ms",
        flush=True,
    )


def print_stages(kind: str, result: Forwarding) -> None:
    assert result.stages is not None
    relay = result.cpu["relay"]
    print(
        f"where the relay's CPU goes, {kind} store (py-spy samples, deepest agent function on "
        f"each stack; relay {relay * 1e6:.0f} us per bundle, {result.rate:,.0f}/s, load "
        f"{result.load:.1f}):"
    )
    ordered = sorted(result.stages.items(), key=lambda item: -item[1])
    for stage, share in ordered:
        if stage == FSYNC:
            continue
        print(f"  {stage:36} {share * 100:5.1f}%  {share * relay * 1e6:6.1f} us")
    if FSYNC in result.stages:
        print(
            f"  (and {FSYNC}: {result.stages[FSYNC] * 100:.0f} samples per 100 busy ones, "
            "waiting on the disk)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=20_000, help="bundles per forwarding run")
    parser.add_argument("--stored", type=int, default=10_000, help="bundles for the RSS figure")
    parser.add_argument("--round-trips", type=int, default=300, help="bundles for the latency")
    parser.add_argument(
        "--no-stages", dest="stages", action="store_false", help="skip the py-spy breakdown"
    )
    parser.add_argument("--bare-relay", nargs=3, metavar=("NODE", "UPSTREAM", "DOWNSTREAM"))
    args = parser.parse_args()
    if args.bare_relay:
        node, *peers = args.bare_relay
        trio.run(bare_relay, node, peers)
        return 0
    trio.run(run, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
