"""The bundle agent's CPU per small bundle at the ends: created, stored, sent; received, stored,
delivered, confirmed, deleted (issue #16) — beside a relay's forwarding cost in the same run.

Two nodes on loopback, each with its durable (sqlite) store, one TCPCLv4 session between them.
Node *a* sends a small bundle (64 bytes) to an endpoint of node *b*; the application there
replies with a bundle of the same size to *a*; *a*'s application takes the reply and sends the
next one. ``--chains`` such ping-pong chains run at once (1: one bundle at a time, so no group
commit can take two; 16: what a broker with many jobs in flight sees). Every bundle is thus
created at one end and delivered at the other: the summed CPU of both processes divided by the
bundles is the cost per bundle *end to end*.

- **role**: each node is a child process of this script running a ``BundleNode`` with the
  application in the same process, as the UCP roles and the client library use it
  (``BundleNode.send``, ``Registration.receive``, ``Delivery.done``); without and with custody
  transfer (BIBE, custody signals back to the custodian).
- **app API**: each node is a ``ucp-bpnode`` daemon, the applications are this process talking
  to them over the application-agent API (``AppApiClient``); the daemons' CPU is the agent's,
  this process's the applications' (shown apart).
- **relay**: ``bench/bpa.py``'s forwarding run (source -> relay -> sink, 1 KiB bundles, durable
  relay), the relay's CPU per bundle: what a bundle costs a node that only forwards it.

Per node it also prints the store's commits (group commits: one WAL fsync each) per bundle.
CPU is user + system of the whole process (all threads, sqlite's included), read from /proc;
the load average is printed beside every figure (the machine is shared: rates swing, CPU per
bundle much less).

Run: ``.venv/bin/python bench/delivery.py [--round-trips 1000] [--chains 1,16] [--relay 5000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import trio

import ucp_dtn
from ucp_dtn.appapi import AppApiClient

PAYLOAD = 64
START_TIMEOUT = 60.0
WARM_UP = 30


@dataclass(frozen=True)
class EndToEnd:
    """One ping-pong run."""

    bundles: int
    seconds: float
    cpu: dict[str, float]
    """CPU seconds of each process during the run."""
    commits: dict[str, int]
    """Store commits of each node during the run (-1: not known)."""
    load: float

    def per_bundle_us(self, name: str) -> float:
        return self.cpu[name] / self.bundles * 1e6

    @property
    def end_to_end_us(self) -> float:
        return sum(v for k, v in self.cpu.items() if k in ("a", "b")) / self.bundles * 1e6


# -- the role path: BundleNode in a child process -------------------------------------------------


class StepCounter(trio.abc.Instrument):
    """Counts trio task steps (each resumption of a task: a task switch) and scheduler passes
    (each return from waiting for I/O or a deadline)."""

    def __init__(self) -> None:
        self.steps = 0
        self.passes = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1

    def after_io_wait(self, timeout: float) -> None:
        self.passes += 1


STEPS = StepCounter()


async def child_node(args: argparse.Namespace) -> None:
    """A node with its application in this process (``--node``): ``b`` echoes, ``a`` pings."""
    from ucp_dtn.agent import BundleNode, NodeConfig

    name = args.node
    peers: tuple[tuple[str, int], ...] = ()
    if args.peer:
        host, _, port = args.peer.rpartition(":")
        peers = ((host, int(port)),)
    config = NodeConfig(
        node_id=f"dtn://{name}/",
        workdir=Path(args.workdir),
        listen=(("127.0.0.1", 0),) if name == "b" else (),
        static_peers=peers,
    )
    node = BundleNode(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        if name == "b":
            print(f"ready {node.listen_addresses[0][1]}", flush=True)
            await echo(node, args.custody)
        else:
            await ping(node, args.round_trips, args.chains, args.custody)
            nursery.cancel_scope.cancel()


def _store_commits(node: object) -> int:
    core = getattr(node, "_core", None)
    return -1 if core is None else int(core.store.statistics().commits)


async def echo(node: object, custody: bool) -> None:
    from ucp_dtn.agent import BundleNode

    assert isinstance(node, BundleNode)
    async with node.register("dtn://b/echo") as registration:
        async for delivery in registration:
            if delivery.payload == b"commits":
                await node.send(
                    "dtn://a/ping", str(_store_commits(node)).encode().ljust(PAYLOAD, b" ")
                )
            else:
                await node.send("dtn://a/ping", delivery.payload, custody=custody)
            await delivery.done()


async def ping(node: object, round_trips: int, chains: int, custody: bool) -> None:
    from ucp_dtn.agent import BundleNode, Delivery

    assert isinstance(node, BundleNode)
    waiting: dict[int, trio.MemorySendChannel[Delivery]] = {}

    async def dispatcher(registration: object) -> None:
        async for delivery in registration:  # type: ignore[attr-defined]
            chain = int.from_bytes(delivery.payload[:4], "big")
            await waiting[chain].send(delivery)

    async def chain(number: int, count: int) -> None:
        send, receive = trio.open_memory_channel[Delivery](1)
        waiting[number] = send
        for sequence in range(count):
            payload = number.to_bytes(4, "big") + sequence.to_bytes(4, "big")
            await node.send("dtn://b/echo", payload.ljust(PAYLOAD, b"."), custody=custody)
            reply = await receive.receive()
            await reply.done()

    async def ask_commits(registration: object) -> int:
        await node.send("dtn://b/echo", b"commits")
        reply: Delivery = await registration.receive()  # type: ignore[attr-defined]
        await reply.done()
        return int(reply.payload.decode().strip())

    async with node.register("dtn://a/ping") as registration:
        with trio.fail_after(START_TIMEOUT):
            while not node.peers():
                await trio.sleep(0.01)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dispatcher, registration)
            async with trio.open_nursery() as warm:
                warm.start_soon(chain, 0, WARM_UP)
            nursery.cancel_scope.cancel()
        await trio.sleep(0.3)  # custody signals of the warm-up come back
        b_commits = await ask_commits(registration)
        a_commits = _store_commits(node)
        cpu, main, times = time.process_time(), time.thread_time(), os.times()
        steps, passes = STEPS.steps, STEPS.passes
        print("start", flush=True)
        began = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dispatcher, registration)
            async with trio.open_nursery() as chains_nursery:
                for number in range(chains):
                    share = round_trips // chains + (1 if number < round_trips % chains else 0)
                    chains_nursery.start_soon(chain, number, share)
            elapsed = time.perf_counter() - began
            if custody:
                await trio.sleep(0.3)  # the last custody signals release the last bundles
            a_commits = _store_commits(node) - a_commits
            cpu, main = time.process_time() - cpu, time.thread_time() - main
            system = os.times().system - times.system
            steps, passes = STEPS.steps - steps, STEPS.passes - passes
            nursery.cancel_scope.cancel()
        b_commits = await ask_commits(registration) - b_commits - 3  # the questions' own
        print(
            json.dumps(
                {
                    "elapsed": elapsed,
                    "cpu": cpu,
                    "main": main,
                    "system": system,
                    "steps": steps,
                    "passes": passes,
                    "commits": [a_commits, b_commits],
                }
            )
        )
        print("end", flush=True)


async def role_run(base: Path, round_trips: int, chains: int, custody: bool) -> EndToEnd:
    script = [sys.executable, __file__]
    flags = ["--custody"] if custody else []
    b = await trio.lowlevel.open_process(
        [*script, "--node", "b", "--workdir", str(base / "b"), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    a = None
    try:
        assert b.stdout is not None
        with trio.fail_after(START_TIMEOUT):
            line = await _line(b.stdout)
        port = int(line.split()[1])
        a = await trio.lowlevel.open_process(
            [*script, "--node", "a", "--workdir", str(base / "a"), "--peer", f"127.0.0.1:{port}",
             "--round-trips", str(round_trips), "--chains", str(chains), *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert a.stdout is not None
        reader = _Lines(a.stdout)
        with trio.fail_after(START_TIMEOUT):
            while (await reader.line()) != "start":
                pass
        b_cpu = _cpu(b.pid)
        figures = json.loads(await reader.line())
        b_cpu = _cpu(b.pid) - b_cpu
        return EndToEnd(
            2 * round_trips,
            figures["elapsed"],
            {"a": figures["cpu"], "b": b_cpu},
            {"a": figures["commits"][0], "b": figures["commits"][1]},
            os.getloadavg()[0],
        )
    finally:
        for process in (a, b):
            if process is not None and process.returncode is None:
                process.terminate()
                with trio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()


class _Lines:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def line(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(4096)
            if not chunk:
                raise RuntimeError("the node process ended early")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode().strip()


async def _line(stream: trio.abc.ReceiveStream) -> str:
    return await _Lines(stream).line()


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# -- the app API path: ucp-bpnode daemons ---------------------------------------------------------


async def appapi_run(base: Path, round_trips: int, chains: int) -> EndToEnd:
    sys.path.insert(0, str(Path(__file__).parent))
    from bpa import Daemons

    group = Daemons(base)
    try:
        b = await group.start("b", durable=True)
        a = await group.start("a", "-s", b.url, durable=True)
        async with (
            AppApiClient.connect(a.socket) as client_a,
            AppApiClient.connect(b.socket) as client_b,
        ):
            echo_registration = await client_b.register("echo", window=64)
            ping_registration = await client_a.register("ping", window=64)
            waiting: dict[int, trio.MemorySendChannel[object]] = {}

            async def echo_loop() -> None:
                async for bundle in echo_registration:
                    await client_b.send("dtn://a/ping", bundle.payload)
                    await bundle.confirm()

            async def dispatcher() -> None:
                async for bundle in ping_registration:
                    await waiting[int.from_bytes(bundle.payload[:4], "big")].send(bundle)

            async def chain(number: int, count: int) -> None:
                send, receive = trio.open_memory_channel[object](1)
                waiting[number] = send
                for sequence in range(count):
                    payload = number.to_bytes(4, "big") + sequence.to_bytes(4, "big")
                    await client_a.send("dtn://b/echo", payload.ljust(PAYLOAD, b"."))
                    reply = await receive.receive()
                    await reply.confirm()  # type: ignore[attr-defined]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(echo_loop)
                nursery.start_soon(dispatcher)
                with trio.fail_after(START_TIMEOUT):
                    await chain(0, WARM_UP)
                await trio.sleep(0.3)
                before = {"a": a.cpu_seconds(), "b": b.cpu_seconds(), "app": time.process_time()}
                began = time.perf_counter()
                async with trio.open_nursery() as chains_nursery:
                    for number in range(chains):
                        share = round_trips // chains + (1 if number < round_trips % chains else 0)
                        chains_nursery.start_soon(chain, number, share)
                elapsed = time.perf_counter() - began
                cpu = {
                    "a": a.cpu_seconds() - before["a"],
                    "b": b.cpu_seconds() - before["b"],
                    "app": time.process_time() - before["app"],
                }
                nursery.cancel_scope.cancel()
        return EndToEnd(
            2 * round_trips,
            elapsed,
            cpu,
            {"a": -1, "b": -1},  # the daemons do not publish their store's commits
            os.getloadavg()[0],
        )
    finally:
        with trio.CancelScope(shield=True):
            await group.stop_all()


# -- the report ------------------------------------------------------------------------------------


def describe(label: str, run: EndToEnd) -> str:
    commits = ", ".join(
        f"{name} {run.commits[name] / run.bundles:.2f}"
        for name in ("a", "b")
        if run.commits[name] >= 0
    )
    app = (
        f"; the applications (this process) {run.per_bundle_us('app'):.0f} us"
        if "app" in run.cpu
        else ""
    )
    return (
        f"  {label:34} {run.end_to_end_us:6.0f} us per bundle end to end "
        f"(a {run.per_bundle_us('a'):.0f} us, b {run.per_bundle_us('b'):.0f} us{app}); "
        f"{run.bundles / run.seconds:,.0f} bundles/s; store commits per bundle: {commits or '?'}; "
        f"load {run.load:.1f}"
    )


async def run(args: argparse.Namespace) -> None:
    print(
        f"bench/delivery.py - Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}; {args.round_trips} round trips = "
        f"{2 * args.round_trips} bundles of {PAYLOAD} B per run, durable stores; code from "
        f"{Path(ucp_dtn.__file__).parent.parent}"
    )
    for chains in args.chains:
        print(f"{chains} chain(s) at once:", flush=True)
        for label, custody in (("role, no custody", False), ("role, custody", True)):
            with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
                result = await role_run(Path(tmp), args.round_trips, chains, custody)
            print(describe(label, result), flush=True)
        if not args.no_appapi:
            with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
                result = await appapi_run(Path(tmp), args.round_trips, chains)
            print(describe("app API, no custody", result), flush=True)
    if args.relay:
        sys.path.insert(0, str(Path(__file__).parent))
        from bpa import forwarding_rate

        forwarding = await forwarding_rate(args.relay, durable=True)
        print(
            f"relay (bench/bpa.py, {args.relay:,} x 1 KiB, durable relay): "
            f"{forwarding.cpu['relay'] * 1e6:.0f} us per bundle forwarded, "
            f"{forwarding.rate:,.0f}/s; load {forwarding.load:.1f}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=1000, help="per run (1000)")
    parser.add_argument(
        "--chains",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 16],
        help="ping-pong chains at once, comma-separated (1,16)",
    )
    parser.add_argument(
        "--relay", type=int, default=5000, help="bundles of the relay run (0: skip)"
    )
    parser.add_argument("--no-appapi", action="store_true", help="skip the app API runs")
    parser.add_argument("--node", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--custody", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        args.chains = args.chains[0]
        trio.run(child_node, args, instruments=[STEPS])
        return 0
    trio.run(run, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
