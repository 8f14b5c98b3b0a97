"""A local network of real ``ucp-bpnode`` processes on 127.0.0.1.

Used by ``ucp demo`` and by the multi-process integration tests: :class:`LocalNetwork` starts
daemons (``python -m ucp_dtn.daemon``) with port 0 and a work directory each, reads every
daemon's ready line (``ready node=... tcpcl=host:port socket=...``) to learn its TCPCL address and
application socket, sends SIGTERM (or SIGKILL) to stop them and kills whatever is left at the
end. Each daemon's stderr goes to a log file. Every wait is bounded.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

__all__ = [
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
    """A daemon of the local network did not start or misbehaved (the message says how)."""


@dataclass(frozen=True, slots=True)
class Ready:
    """What a daemon's ready line says."""

    node_id: str
    """Its node ID."""
    tcpcl: tuple[tuple[str, int], ...]
    """Its bound TCPCLv4 listeners."""
    socket: Path
    """Its application API socket."""


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
        return Ready(fields["node"], tuple(addresses), Path(fields["socket"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"malformed ready line {line!r}: {exc}") from None


@dataclass
class LocalNode:
    """One daemon of a :class:`LocalNetwork`."""

    name: str
    """Short name (also the work directory's name)."""
    args: list[str]
    """Its command-line arguments after the program name."""
    process: trio.Process
    """The running process."""
    ready: Ready
    """Its ready line."""
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
    """Daemons started under one base directory; :meth:`close` stops them all."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.nodes: dict[str, LocalNode] = {}

    def workdir(self, name: str) -> Path:
        """The work directory of node ``name``."""
        return self.base / name

    async def start(
        self,
        name: str,
        *args: str,
        in_memory: bool = False,
        node_id: str | None = None,
        python_args: Sequence[str] = (),
    ) -> LocalNode:
        """Start daemon ``name`` (node ID ``dtn://<name>/`` unless given) listening on
        127.0.0.1 port 0, with ``args`` added; wait for its ready line. Restarting a stopped
        name reuses its work directory (and so its store)."""
        self.base.mkdir(parents=True, exist_ok=True)
        workdir = self.workdir(name)
        command = [
            sys.executable,
            *python_args,
            "-m",
            "ucp_dtn.daemon",
            "-n",
            node_id or f"dtn://{name}/",
            "-l",
            "127.0.0.1:0",
        ]
        if in_memory:
            command.append("--in-memory")
        else:
            command += ["-W", str(workdir)]
        command += list(args)
        log = self.base / f"{name}.log"
        with log.open("ab") as log_file:
            process = await trio.lowlevel.open_process(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file
            )
        assert process.stdout is not None
        line = b""
        with trio.move_on_after(START_TIMEOUT_S):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"ready "):
            process.kill()
            await process.wait()
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise LocalNodeError(
                f"node {name} did not start: {' | '.join(tail) or 'no output'} (log: {log})"
            )
        node = LocalNode(
            name, list(args), process, parse_ready_line(line.decode()), log, network=self
        )
        self.nodes[name] = node
        logger.info("started %s (%s) at %s", name, node.node_id, node.url)
        return node

    def logs(self) -> str:
        """Every daemon's log, one after the other (for failure reports)."""
        parts = []
        for log in sorted(self.base.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')}")
        return "\n".join(parts)

    async def close(self) -> None:
        """Stop every daemon still running."""
        for node in self.nodes.values():
            if node.alive:
                await node.stop()
