"""The bundle protocol agent as real ``ucp-bpnode`` daemons on loopback.

- forwarding: 1 KiB bundles forwarded per second through one node, with the durable (sqlite)
  store and with the in-memory store. A source daemon is preloaded with N bundles for a sink
  daemon routed via the relay; the relay starts, connects to both, and the time until the sink
  has received all N is measured (the sink's counters, polled). Source and sink run in memory.
- memory: resident set size (psutil RSS) of one daemon before and after 10,000 1 KiB bundles
  for an unreachable node were stored in it, per stored bundle (durable and in-memory store).
- latency over 3 hops: a -> b -> c -> d (static routes, sessions up), one small bundle at a
  time from an application on a to one on d; median and 99th percentile of send-to-receive.

Targets (shared/design/anchors.md): >= 2,000 bundles/s durable, >= 5,000/s in memory; <= 2 KiB
resident per stored 1 KiB bundle. Always exits 0; each line gives its target and whether it was
met. All three daemons share the machine's cores, so the rate is bounded by their summed CPU per
bundle; the relay's CPU per bundle is the steadier figure on a shared machine.

Run: ``.venv/bin/python bench/bpa.py [--bundles 20000] [--round-trips 300]``
"""

from __future__ import annotations

import argparse
import os
import platform
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
TARGET_DURABLE = 2000.0
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


async def forwarding_rate(count: int, *, durable: bool) -> Forwarding:
    async with daemons() as group:
        source = await group.start("src", "-r", "dtn://sink/*=dtn://relay/")
        sink = await group.start("sink")
        await preload(source, "dtn://sink/in", count, KIB)
        before = {d.name: d.cpu_seconds() for d in (source, sink)}
        start = time.perf_counter()
        relay = await group.start("relay", "-s", source.url, "-s", sink.url, durable=durable)
        before[relay.name] = relay.cpu_seconds()  # (after start-up: imports are not forwarding)
        done = await wait_for_count(sink, "received", count, timeout=600)
        cpu = {
            d.name: (d.cpu_seconds() - before.get(d.name, 0.0)) / count
            for d in (source, relay, sink)
        }
        return Forwarding(count / (done - start), cpu)


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
    for label, kind, target in (
        ("durable store:  ", True, TARGET_DURABLE),
        ("in-memory store:", False, TARGET_MEMORY),
    ):
        result = await forwarding_rate(args.bundles, durable=kind)
        cpu = ", ".join(f"{name} {seconds * 1e6:.0f} us" for name, seconds in result.cpu.items())
        print(
            f"forwarding, 1 KiB bundles, {label} {result.rate:6.0f} bundles/s "
            f"(target >= {target:.0f}: {verdict(result.rate >= target)}); "
            f"CPU per bundle: {cpu}; the relay's CPU alone allows "
            f"{1 / result.cpu['relay']:.0f}/s on one free core",
            flush=True,
        )
    for label, kind in (("durable", True), ("in-memory", False)):
        per_bundle, total = await rss_per_bundle(args.stored, durable=kind)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=20_000, help="bundles per forwarding run")
    parser.add_argument("--stored", type=int, default=10_000, help="bundles for the RSS figure")
    parser.add_argument("--round-trips", type=int, default=300, help="bundles for the latency")
    trio.run(run, parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
