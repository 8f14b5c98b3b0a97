"""A local network of real ``ucp-bpnode`` processes (and lossy-link relays) on 127.0.0.1.

Used by ``ucp demo``, the benchmarks and the multi-process integration tests:
:class:`LocalNetwork` starts daemons (``python -m ucp_dtn.daemon``) listening on port 0 with a
work directory each, reads every daemon's ready line (``ready node=... tcpcl=host:port
socket=...``) to learn its TCPCL address and application socket, restarts them on the same port,
starts lossy-link relays (``python -m convergence.lossy``) between them, and stops whatever is
left at the end. Each daemon's stderr goes to a log file (:meth:`LocalNetwork.logs`). Every wait
is bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .appapi import AppApiClient
from .private_files import open_private

__all__ = [
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "LocalNetwork",
    "LocalNode",
    "LocalNodeError",
    "Ready",
    "parse_ready_line",
    "run_ucp",
]

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
"""Longest wait for a daemon's ready line (a loaded 2-core machine starts Python slowly)."""
STOP_TIMEOUT_S = 15.0
"""Longest wait for a daemon to exit after SIGTERM before it is killed."""


class LocalNodeError(RuntimeError):
    """A daemon or relay of the local network did not start (the message says why)."""


@dataclass(frozen=True, slots=True)
class Ready:
    """What a daemon's ready line says."""

    node_id: str
    """The daemon's node ID (``node=``), e.g. ``dtn://b/``."""
    tcpcl: tuple[tuple[str, int], ...]
    """Its bound TCPCLv4 listeners."""
    socket: Path
    """Its application API socket."""
    http: tuple[str, int] | None = None
    """Where its dashboard listens (``--http``), if it serves one."""


def parse_ready_line(line: str) -> Ready:
    """Parse ``ready node=... tcpcl=h:p[,h:p] socket=...``; ``ValueError`` if it is not one."""
    words = line.split()
    if not words or words[0] != "ready":
        raise ValueError(f"not a ready line: {line!r}")
    fields = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    try:
        addresses = []
        for item in fields["tcpcl"].split(","):
            if item in ("", "-"):
                continue
            host, _, port = item.rpartition(":")
            addresses.append((host.strip("[]"), int(port)))
        http = None
        if "http" in fields:
            host, _, port = fields["http"].rpartition(":")
            http = (host.strip("[]"), int(port))
        return Ready(fields["node"], tuple(addresses), Path(fields["socket"]), http)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"malformed ready line {line!r}: {exc}") from None


@dataclass
class LocalNode:
    """One daemon of a :class:`LocalNetwork`."""

    name: str
    """Short name (also the name of its work directory and log)."""
    args: list[str]
    """Its full command line after the program name."""
    process: trio.Process
    """The ``ucp-bpnode`` process (stopped with SIGTERM by :meth:`stop`)."""
    ready: Ready
    """What its ready line said: node ID, bound TCPCL ports, socket."""
    log: Path
    """File receiving its stderr."""
    network: LocalNetwork = field(repr=False)

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
    def dashboard_url(self) -> str | None:
        """``http://host:port/``: its dashboard, if it serves one (``--http``)."""
        if self.ready.http is None:
            return None
        host, port = self.ready.http
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    @property
    def url(self) -> str:
        """``tcp://host:port`` of its first listener (for ``-s``)."""
        host, port = self.address
        return f"tcp://{host}:{port}"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL: no shutdown at all (what a power cut does)."""
        if self.alive:
            self.process.kill()

    async def stop(self) -> int:
        """SIGTERM and wait for the exit status (SIGKILL after :data:`STOP_TIMEOUT_S`)."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT_S):
            return await self.process.wait()
        logger.warning("%s did not stop within %ss: killing it", self.name, STOP_TIMEOUT_S)
        self.kill()
        return await self.process.wait()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[AppApiClient]:
        """A connection to its application API."""
        async with AppApiClient.connect(self.socket) as client:
            yield client

    async def info(self) -> dict[str, Any]:
        """What ``ucp nodes --json`` shows: peers, routes and statistics."""
        async with self.client() as client:
            info = await client.node_info()
        return {"peers": info.peers, "routes": info.routes, "statistics": info.statistics}

    async def ucp(
        self, *args: str, stdin: bytes = b"", timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``ucp ARGS --socket <this daemon's socket>``; never raises on exit status."""
        return await run_ucp(*args, "--socket", str(self.socket), stdin=stdin, timeout=timeout)


async def run_ucp(
    *args: str, stdin: bytes = b"", timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the ``ucp`` command (``python -m ucp_dtn.cli ARGS``) and capture its output."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            [sys.executable, "-m", "ucp_dtn.cli", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


class LocalNetwork:
    """Daemons and relays started under one base directory; :meth:`close` ends them all.

    ``verbose`` adds ``-v`` to every daemon (info logs in their log files)."""

    def __init__(self, base: Path, *, verbose: bool = False) -> None:
        self.base = base
        self.verbose = verbose
        self.nodes: dict[str, LocalNode] = {}
        self.relays: list[trio.Process] = []
        self._everyone: list[LocalNode] = []

    def workdir(self, name: str) -> Path:
        """The default work directory of node ``name``."""
        return self.base / name

    async def start(
        self,
        name: str,
        *args: str,
        in_memory: bool = False,
        workdir: Path | None = None,
        listen: str = "127.0.0.1:0",
        node_id: str | None = None,
    ) -> LocalNode:
        """Start ``ucp-bpnode -n NODE_ID -l LISTEN [-W DIR | --in-memory] ARGS`` (node ID
        ``dtn://<name>/`` unless given; work directory ``base/<name>`` unless given) and wait
        for its ready line."""
        command = ["-n", node_id or f"dtn://{name}/", "-l", listen]
        if self.verbose:
            command.append("-v")
        if in_memory:
            command += ["--in-memory", "--socket", str(self.base / f"{name}.sock")]
        else:
            command += ["-W", str(workdir or self.workdir(name))]
        return await self.start_raw(name, [*command, *args])

    async def start_raw(self, name: str, args: Sequence[str]) -> LocalNode:
        """Start ``ucp-bpnode ARGS`` exactly as given and wait for its ready line."""
        self.base.mkdir(parents=True, exist_ok=True)
        log = self.base / f"{name}.log"
        with os.fdopen(open_private(log, os.O_WRONLY | os.O_APPEND), "ab") as log_file:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "ucp_dtn.daemon", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
            )
        try:
            line = await _first_line(process, START_TIMEOUT_S)
        except BaseException:
            process.kill()
            raise
        if not line.startswith("ready "):
            process.kill()
            await process.wait()
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise LocalNodeError(
                f"node {name} did not start: {' | '.join(tail) or 'no output'} (log: {log})"
            )
        node = LocalNode(name, list(args), process, parse_ready_line(line), log, network=self)
        self.nodes[name] = node
        self._everyone.append(node)
        logger.info("started %s (%s) at %s", name, node.node_id, node.url)
        return node

    async def restart(self, node: LocalNode, *extra: str) -> LocalNode:
        """Start a stopped node again: same arguments, same work directory, and listening on
        the same port (so that peers configured with it find it again)."""
        host, port = node.address
        args = list(node.args)
        for index in range(len(args) - 1):
            if args[index] in ("-l", "--listen") and args[index + 1].endswith(":0"):
                args[index + 1] = f"{host}:{port}"
        return await self.start_raw(node.name, [*args, *extra])

    async def relay(self, target: tuple[str, int], *flags: str) -> tuple[str, int]:
        """Start a lossy-link relay (``python -m convergence.lossy --target ... FLAGS``) in
        front of ``target``; returns the address it listens on."""
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
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.relays.append(process)
        line = await _first_line(process, START_TIMEOUT_S)
        # "listening on HOST:PORT -> HOST:PORT"
        if not line.startswith("listening on "):
            raise LocalNodeError(f"the lossy-link relay did not start: {line!r}")
        relay_host, _, relay_port = line.split()[2].rpartition(":")
        return relay_host.strip("[]"), int(relay_port)

    def logs(self) -> str:
        """Every daemon's log (the last 20,000 characters of each), one after the other."""
        parts = []
        for log in sorted(self.base.glob("*.log")):
            text = log.read_text(errors="replace")
            parts.append(f"--- {log.name} ---\n{text[-20000:]}")
        return "\n".join(parts)

    async def close(self, *, graceful: bool = True) -> None:
        """End every daemon and relay still running: SIGTERM and wait (``graceful``), or
        SIGKILL at once."""
        if graceful:
            # All at once: a mesh of dozens of daemons stops in one daemon's shutdown time.
            async with trio.open_nursery() as stopping:
                for node in self._everyone:
                    if node.alive:
                        stopping.start_soon(node.stop)
        processes = [node.process for node in self._everyone] + self.relays
        for process in processes:
            if process.returncode is None:
                process.kill()
        with trio.move_on_after(10):
            for process in processes:
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
    return buffer.partition(b"\n")[0].decode(errors="replace")
