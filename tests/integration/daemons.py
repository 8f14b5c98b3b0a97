"""Real ``ucp-bpnode`` processes for the integration tests.

:class:`Network` starts daemons (``python -m ucp_dtn.daemon``) on 127.0.0.1 with port 0 and a
work directory under the test's tmp path, reads each one's ready line to learn its TCPCL port
and socket, and kills whatever is left at the end. Each daemon's stderr goes to a log file that
:meth:`Network.logs` shows when a test fails. Every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ucp_dtn.appapi import AppApiClient, AppApiClosedError

START_TIMEOUT = 30.0
"""Longest wait for a daemon's ready line (a loaded 2-core machine starts Python slowly)."""
STOP_TIMEOUT = 15.0
"""Longest wait for a daemon to exit after SIGTERM."""


@dataclass(frozen=True, slots=True)
class Ready:
    """What a ready line says."""

    node_id: str
    tcpcl: tuple[tuple[str, int], ...]
    socket: Path


def parse_ready_line(line: str) -> Ready:
    """Parse ``ready node=... tcpcl=h:p[,h:p] socket=...``."""
    words = line.split()
    assert words and words[0] == "ready", line
    fields = dict(word.split("=", 1) for word in words[1:])
    addresses = []
    for item in fields["tcpcl"].split(","):
        if item == "-":
            continue
        host, _, port = item.rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    return Ready(fields["node"], tuple(addresses), Path(fields["socket"]))


@dataclass
class Daemon:
    """One running (or stopped) daemon process."""

    name: str
    args: list[str]
    process: trio.Process
    ready: Ready
    log: Path
    network: Network = field(repr=False)

    @property
    def node_id(self) -> str:
        return self.ready.node_id

    @property
    def socket(self) -> Path:
        return self.ready.socket

    @property
    def address(self) -> tuple[str, int]:
        """Its first TCPCL listener."""
        return self.ready.tcpcl[0]

    @property
    def url(self) -> str:
        """``tcp://host:port`` of its first listener (for ``-s``)."""
        host, port = self.address
        return f"tcp://{host}:{port}"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        if self.alive:
            self.process.kill()

    async def stop(self) -> int:
        """SIGTERM, and wait for the exit status."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_TIMEOUT):
            return await self.process.wait()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[AppApiClient]:
        async with AppApiClient.connect(self.socket) as client:
            yield client

    async def info(self) -> dict[str, Any]:
        """``ucp nodes --json`` through the API, as a dict."""
        async with self.client() as client:
            info = await client.node_info()
        return {"peers": info.peers, "routes": info.routes, "statistics": info.statistics}

    async def ucp(
        self, *args: str, stdin: bytes = b"", timeout: float = 30.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``ucp ARGS --socket <this daemon's socket>``; never raises on exit status."""
        return await run_ucp(*args, "--socket", str(self.socket), stdin=stdin, timeout=timeout)


async def run_ucp(
    *args: str, stdin: bytes = b"", timeout: float = 30.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m ucp_dtn.cli ARGS``."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            [sys.executable, "-m", "ucp_dtn.cli", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


class Network:
    """Daemons (and lossy relays) of one test; see the module docstring."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.daemons: list[Daemon] = []
        self.relays: list[trio.Process] = []
        self._logs: list[Path] = []

    def workdir(self, name: str) -> Path:
        return self.base / name

    async def start(
        self,
        name: str,
        *args: str,
        in_memory: bool = False,
        workdir: Path | None = None,
        listen: str = "127.0.0.1:0",
    ) -> Daemon:
        """Start ``ucp-bpnode -n dtn://NAME/ -l LISTEN [-W base/NAME | --in-memory] ARGS``."""
        command = ["-n", f"dtn://{name}/", "-l", listen, "-v"]
        if in_memory:
            command += ["--in-memory", "--socket", str(self.base / f"{name}.sock")]
        else:
            command += ["-W", str(workdir or self.workdir(name))]
        return await self.start_raw(name, [*command, *args])

    async def start_raw(self, name: str, args: Sequence[str]) -> Daemon:
        """Start ``ucp-bpnode ARGS`` as given and wait for its ready line."""
        log = self.base / f"{name}.{len(self._logs)}.log"
        self._logs.append(log)
        with log.open("wb") as stderr:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "ucp_dtn.daemon", *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        try:
            line = await _first_line(process, START_TIMEOUT)
        except BaseException:
            process.kill()
            raise
        if not line.startswith("ready "):
            await process.wait()
            raise RuntimeError(
                f"daemon {name} did not start (exit {process.returncode}):\n{log.read_text()}"
            )
        daemon = Daemon(name, list(args), process, parse_ready_line(line), log, self)
        self.daemons.append(daemon)
        return daemon

    async def restart(self, daemon: Daemon, *extra: str) -> Daemon:
        """Start the same daemon again: same arguments, same work directory, and listening on
        the same port (so that peers configured with it find it again)."""
        host, port = daemon.address
        args = list(daemon.args)
        for index in range(len(args) - 1):
            if args[index] in ("-l", "--listen") and args[index + 1].endswith(":0"):
                args[index + 1] = f"{host}:{port}"
        return await self.start_raw(daemon.name, [*args, *extra])

    async def relay(self, target: tuple[str, int], *flags: str) -> tuple[str, int]:
        """Start ``python -m convergence.lossy --target ...``; returns where it listens."""
        host, port = target
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "convergence.lossy",
                "--listen",
                "127.0.0.1:0",
                "--target",
                f"{host}:{port}",
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.relays.append(process)
        line = await _first_line(process, START_TIMEOUT)
        # "listening on HOST:PORT -> HOST:PORT"
        assert line.startswith("listening on "), line
        listen = line.split()[2]
        relay_host, _, relay_port = listen.rpartition(":")
        return relay_host.strip("[]"), int(relay_port)

    def logs(self) -> str:
        parts = []
        for log in self._logs:
            if log.exists():
                text = log.read_text(errors="replace")
                parts.append(f"--- {log.name} ---\n{text[-20000:]}")
        return "\n".join(parts)

    async def close(self) -> None:
        for process in [d.process for d in self.daemons] + self.relays:
            if process.returncode is None:
                process.kill()
        with trio.move_on_after(10):
            for process in [d.process for d in self.daemons] + self.relays:
                await process.wait()


async def _first_line(process: trio.Process, timeout: float) -> str:
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(timeout):
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                break
            buffer += chunk
    return buffer.partition(b"\n")[0].decode()


async def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll the async ``predicate`` until it returns something true; bounded by ``timeout``."""
    with trio.move_on_after(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await trio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def stats_line(info: dict[str, Any]) -> str:
    return json.dumps(info["statistics"], sort_keys=True)


class Inbox:
    """Receives on one daemon's endpoint in the background; counts every payload."""

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self.arrived = trio.Event()
        self.on_count: dict[int, trio.Event] = {}

    def reached(self, count: int) -> trio.Event:
        event = self.on_count.setdefault(count, trio.Event())
        if len(self.counts) >= count:
            event.set()
        return event

    async def run(self, daemon: Daemon, endpoint: str) -> None:
        async with daemon.client() as client:
            registration = await client.register(endpoint, window=64)
            async for bundle in registration:
                self.counts[bundle.payload] = self.counts.get(bundle.payload, 0) + 1
                await bundle.confirm()
                for count, event in self.on_count.items():
                    if len(self.counts) >= count:
                        event.set()

    def duplicates(self) -> list[bytes]:
        return [payload for payload, n in self.counts.items() if n > 1]


async def send_many(
    daemon: Daemon,
    payloads: list[bytes],
    acknowledged: set[bytes],
    destination: str = "dtn://c/inbox",
) -> None:
    """Send ``payloads`` (pipelined); those whose ID came back go into ``acknowledged``.
    Stops quietly when the daemon dies."""

    async def one(client: AppApiClient, payload: bytes) -> None:
        try:
            await client.send(destination, payload)
        except AppApiClosedError:
            return
        acknowledged.add(payload)

    try:
        async with daemon.client() as client, trio.open_nursery() as nursery:
            limiter = trio.Semaphore(64)
            for payload in payloads:
                await limiter.acquire()

                async def task(payload: bytes = payload) -> None:
                    try:
                        await one(client, payload)
                    finally:
                        limiter.release()

                nursery.start_soon(task)
    except AppApiClosedError:
        pass


async def ucp_sender(daemon: Daemon, payloads: list[bytes], acknowledged: set[bytes]) -> None:
    """``ucp send`` each payload in turn; an ID printed means acknowledged."""
    for payload in payloads:
        result = await daemon.ucp("send", "-d", "dtn://c/inbox", stdin=payload)
        if result.returncode == 0 and result.stdout.startswith(b"dtn://a/-"):
            acknowledged.add(payload)
