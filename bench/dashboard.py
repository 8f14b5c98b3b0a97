"""What the dashboard (``ucp-bpnode --http``) weighs and costs, on real daemons on loopback.

- page weight: the bytes a browser loads for the page (HTML, script, style sheet, icon; no
  other request, nothing from another site) and the snapshot document one event carries;
- forwarding with and without the page open: the ``bpa.py`` set-up (a source preloaded with
  1 KiB bundles -> relay -> sink, in memory), the relay started with ``--http``; runs alternate
  between nobody looking and two pages open (two event streams reading a snapshot a second),
  and a run without ``--http`` at all. Reported: bundles per second and the relay's CPU per
  bundle (the steadier figure on a shared machine); target: the open page costs < 5%;
- serving while forwarding at full speed: requests per second of ``/metrics``, of
  ``/api/v1/snapshot`` and of ``/api/v1/jobs`` (one keep-alive connection, requests back to
  back) while the relay forwards, and what that load costs the forwarding.

Always exits 0; each line gives its target and whether it was met.

Run: ``.venv/bin/python bench/dashboard.py [--bundles 20000] [--repeats 3] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import trio

sys.path.insert(0, str(Path(__file__).parent))
from bpa import preload, wait_for_count

from ucp_dtn.appapi import AppApiClient
from ucp_dtn.appapi.server import plain_data
from ucp_dtn.dashboard import JobTable, static_assets
from ucp_dtn.roles.broker import JobBook, JobRecord
from ucp_dtn.ucp import InlineData, JobInfo, JobStatus, JobSubmission

KIB = 1024
START_TIMEOUT = 60.0
TARGET_PAGE_COST = 0.05
MAX_REQUESTS = 100_000
"""Most requests one measurement sends (it also stops after its seconds)."""


@dataclass
class Node:
    name: str
    process: trio.Process
    address: tuple[str, int]
    socket: Path
    http: tuple[str, int] | None

    @property
    def url(self) -> str:
        return f"tcp://{self.address[0]}:{self.address[1]}"

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)


@asynccontextmanager
async def network() -> AsyncIterator[list[Node]]:
    """A list to start nodes into (:func:`start`); every node stopped at the end."""
    nodes: list[Node] = []
    try:
        yield nodes
    finally:
        with trio.CancelScope(shield=True):
            for node in nodes:
                if node.process.returncode is None:
                    node.process.terminate()
            with trio.move_on_after(20):
                for node in nodes:
                    await node.process.wait()
            for node in nodes:
                if node.process.returncode is None:
                    node.process.kill()


async def start(nodes: list[Node], base: Path, name: str, *args: str) -> Node:
    command = [sys.executable, "-m", "ucp_dtn.daemon", "-n", f"dtn://{name}/", "-l", "127.0.0.1:0"]
    command += ["--quota", "4GiB", "--in-memory", "--socket", str(base / f"{name}.sock"), *args]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
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
    http = None
    if "http" in fields:
        http_host, _, http_port = fields["http"].rpartition(":")
        http = (http_host, int(http_port))
    node = Node(name, process, (host, int(port)), Path(fields["socket"]), http)
    nodes.append(node)
    return node


# -- HTTP from the benchmark's side ----------------------------------------------------------


class KeepAlive:
    """One HTTP/1.1 connection; requests back to back."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.buffer = b""

    async def get(self, path: str) -> bytes:
        with trio.fail_after(30):
            return await self._get(path)

    async def _get(self, path: str) -> bytes:
        await self.stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += await self.stream.receive_some(65536)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += await self.stream.receive_some(65536)
        self.buffer = rest[length:]
        return rest[:length]


@asynccontextmanager
async def keep_alive(address: tuple[str, int]) -> AsyncIterator[KeepAlive]:
    stream = await trio.open_tcp_stream(*address)
    async with stream:
        yield KeepAlive(stream, f"{address[0]}:{address[1]}")


async def watch_page(address: tuple[str, int], events: list[int]) -> None:
    """What an open page does: read the event stream (counting the snapshots) until cancelled."""
    stream = await trio.open_tcp_stream(*address)
    async with stream:
        host = f"{address[0]}:{address[1]}"
        await stream.send_all(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            events.append(chunk.count(b"event: snapshot"))


async def hammer(address: tuple[str, int], path: str, seconds: float) -> tuple[float, int]:
    """Requests per second of ``path`` over ``seconds``, and the size of the last reply."""
    async with keep_alive(address) as connection:
        count, size = 0, 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and count < MAX_REQUESTS:
            size = len(await connection.get(path))
            count += 1
        return count / seconds, size


# -- the measurements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    rate: float
    """Bundles per second through the relay."""
    relay_cpu: float
    """The relay's CPU seconds per bundle."""
    snapshots: int = 0
    """Snapshot events the open pages received."""


async def forward(count: int, *, http: bool, pages: int) -> Run:
    """One forwarding run; ``pages`` event streams read the relay's dashboard meanwhile."""
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as directory:
        base = Path(directory)
        async with network() as nodes:
            source = await start(nodes, base, "src", "-r", "dtn://sink/*=dtn://relay/")
            sink = await start(nodes, base, "sink")
            await preload(source, "dtn://sink/in", count, KIB)
            extra = ("--http", "127.0.0.1:0") if http else ()
            relay = await start(nodes, base, "relay", *extra)
            events: list[int] = []
            async with trio.open_nursery() as nursery:
                if pages:
                    assert relay.http is not None
                    for _ in range(pages):
                        nursery.start_soon(watch_page, relay.http, events)
                    await trio.sleep(1.5)  # the pages are open before the bundles flow
                cpu_before = relay.cpu_seconds()
                started = time.perf_counter()
                # The relay connects to both now (a peer added through the API).
                async with _api(relay) as api:
                    await api.connect_peer(*source.address)
                    await api.connect_peer(*sink.address)
                done = await wait_for_count(sink, "received", count, timeout=600)
                relay_cpu = (relay.cpu_seconds() - cpu_before) / count
                nursery.cancel_scope.cancel()
            return Run(count / (done - started), relay_cpu, sum(events))


@asynccontextmanager
async def _api(node: Node) -> AsyncIterator[AppApiClient]:
    async with AppApiClient.connect(node.socket) as client:
        yield client


async def serving(count: int, seconds: float) -> list[tuple[str, float, int, float]]:
    """Requests per second of each route while the relay forwards ``count`` bundles, and the
    forwarding rate meanwhile."""
    results = []
    for path in ("/metrics", "/api/v1/snapshot", "/api/v1/jobs"):
        with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as directory:
            base = Path(directory)
            async with network() as nodes:
                source = await start(nodes, base, "src", "-r", "dtn://sink/*=dtn://relay/")
                sink = await start(nodes, base, "sink")
                await preload(source, "dtn://sink/in", count, KIB)
                relay = await start(nodes, base, "relay", "--http", "127.0.0.1:0")
                assert relay.http is not None
                async with _api(relay) as api:
                    started = time.perf_counter()
                    await api.connect_peer(*source.address)
                    await api.connect_peer(*sink.address)
                await trio.sleep(0.5)  # forwarding under way
                rps, size = await hammer(relay.http, path, seconds)
                done = await wait_for_count(sink, "received", count, timeout=600)
                results.append((path, rps, size, count / (done - started)))
    return results


def page_weight() -> tuple[int, int, dict[str, int]]:
    assets = static_assets()
    sizes = {name: len(content) for name, (content, _) in sorted(assets.items())}
    compressed = sum(len(gzip.compress(content, 9)) for content, _ in assets.values())
    return sum(sizes.values()), compressed, sizes


async def snapshot_size() -> int:
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as directory:
        async with network() as nodes:
            node = await start(nodes, Path(directory), "one", "--http", "127.0.0.1:0")
            assert node.http is not None
            async with keep_alive(node.http) as connection:
                body = await connection.get("/api/v1/snapshot")
            json.loads(body)
            return len(body)


class _BookBroker:
    """A broker's real job book behind the one accessor the job table reads."""

    def __init__(self, book: JobBook) -> None:
        self.book = book

    def jobs_changed_since(self, mark: int) -> tuple[int, list[JobRecord]]:
        return self.book.change_mark, self.book.changed_since(mark)


def job_table_cost(jobs: int) -> tuple[float, float, float, int]:
    """Seconds to take in ``jobs`` records, to refresh with 1% of them changed, and to
    select and encode the 500 newest rows a snapshot carries (with its size)."""
    book = JobBook()
    for n in range(jobs):
        info = JobInfo(job_id=uuid.UUID(int=n + 1), wasm=InlineData(b"\0asm"), name=f"job-{n}")
        book.put(
            JobRecord(JobSubmission(info), "dtn://c/ucp/client", n + 1, JobStatus.DONE,
                      submitted_at=n, updated_at=n + 1.0, started_at=n + 0.1,
                      finished_at=n + 0.9, executor="dtn://w/ucp/executor", attempts=1)
        )  # fmt: skip
    broker = _BookBroker(book)
    table = JobTable()
    started = time.perf_counter()
    table.refresh(broker)  # type: ignore[arg-type]
    first = time.perf_counter() - started
    for record in book.records()[: max(1, jobs // 100)]:
        book.put(dataclasses.replace(record, detail="changed"))
    started = time.perf_counter()
    table.refresh(broker)  # type: ignore[arg-type]
    again = time.perf_counter() - started
    started = time.perf_counter()
    body = json.dumps(plain_data(table.select(limit=500)), separators=(",", ":")).encode()
    encode = time.perf_counter() - started
    return first, again, encode, len(body)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def run(args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    print(
        f"dashboard benchmark - Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    total, compressed, sizes = page_weight()
    print(
        f"page weight: {total / KIB:.1f} KiB in {len(sizes)} files "
        f"({', '.join(f'{name} {size / KIB:.1f} KiB' for name, size in sizes.items())}); "
        f"{compressed / KIB:.1f} KiB if gzipped; no request to another site",
        flush=True,
    )
    size = await snapshot_size()
    print(f"snapshot of a node without roles: {size / KIB:.1f} KiB per event", flush=True)
    for jobs in (1_000, 10_000):
        first, again, encode, body = job_table_cost(jobs)
        print(
            f"job table of {jobs:,} jobs: taken in {first * 1000:.1f} ms once, then "
            f"{again * 1000:.1f} ms per snapshot with 1% changed; the 500 newest rows selected "
            f"and encoded in {encode * 1000:.1f} ms ({body / KIB:.0f} KiB per event)",
            flush=True,
        )

    runs: dict[str, list[Run]] = {"no --http": [], "--http, nobody looking": [], "2 pages open": []}
    for _ in range(args.repeats):
        runs["--http, nobody looking"].append(await forward(args.bundles, http=True, pages=0))
        runs["2 pages open"].append(await forward(args.bundles, http=True, pages=2))
        runs["no --http"].append(await forward(args.bundles, http=False, pages=0))
    medians = {}
    for label, results in runs.items():
        rate = statistics.median(r.rate for r in results)
        cpu = statistics.median(r.relay_cpu for r in results)
        medians[label] = (rate, cpu)
        snapshots = sum(r.snapshots for r in results)
        print(
            f"forwarding {args.bundles} x 1 KiB, in memory, {label:24s}: median "
            f"{rate:6.0f} bundles/s (runs: {', '.join(f'{r.rate:.0f}' for r in results)}); "
            f"relay CPU {cpu * 1e6:.0f} us per bundle"
            + (f"; {snapshots} snapshot events received" if snapshots else ""),
            flush=True,
        )
    idle_rate, idle_cpu = medians["--http, nobody looking"]
    open_rate, open_cpu = medians["2 pages open"]
    rate_cost = 1 - open_rate / idle_rate
    cpu_cost = open_cpu / idle_cpu - 1
    print(
        f"cost of two open pages: forwarding {abs(rate_cost):.1%} "
        f"{'slower' if rate_cost > 0 else 'faster'}, relay CPU per bundle {abs(cpu_cost):.1%} "
        f"{'more' if cpu_cost > 0 else 'less'} (target < 5%: "
        f"{verdict(rate_cost < TARGET_PAGE_COST)} on the rate, "
        f"{verdict(cpu_cost < TARGET_PAGE_COST)} on CPU)",
        flush=True,
    )
    for path, rps, size, rate in await serving(args.bundles, args.seconds):
        print(
            f"{path:17s} while forwarding: {rps:6.0f} requests/s ({size / KIB:.1f} KiB each; "
            f"one connection, back to back); forwarding meanwhile {rate:.0f} bundles/s",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    trio.run(run, parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
