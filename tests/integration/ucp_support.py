"""What the ``ucp`` client integration tests share: test modules (WebAssembly text compiled with
``wasmtime.wat2wasm``), a local network of role daemons, and a client with its own home."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
import wasmtime

from .daemons import Daemon, Network, run_ucp

HEARTBEAT = "1s"
"""Heartbeat interval of the test daemons' roles (fast, so brokers learn nodes at once)."""

CAT_WAT = r"""
;; cat OUT IN...: writes the concatenation of the files IN... to the file OUT (paths relative
;; to the job directory, preopened as fd 3) and "cat: ok" to stdout. A file it cannot open: a
;; line on stderr, and the WASI errno as exit status.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: count, 16: opened fd, 64/68: argc and argv size, 512: texts,
  ;; 1024: argv pointers, 4096: argv strings, 16384: copy buffer (32 KiB).
  (memory (export "memory") 1)
  (data (i32.const 512) "cannot open ")
  (data (i32.const 544) "\n")
  (data (i32.const 560) "cat: ok\n")
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end
      (loop $next
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $open (param $path i32) (param $oflags i32) (param $rights i64) (result i32)
    (local $err i32) (local $len i32)
    (local.set $len (call $strlen (local.get $path)))
    (local.set $err
      (call $path_open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len)
        (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err)
      (then
        (call $write (i32.const 2) (i32.const 512) (i32.const 12))
        (call $write (i32.const 2) (local.get $path) (local.get $len))
        (call $write (i32.const 2) (i32.const 544) (i32.const 1))
        (call $proc_exit (local.get $err))))
    (i32.load (i32.const 16)))
  (func (export "_start")
    (local $argc i32) (local $i i32) (local $out i32) (local $in i32) (local $n i32)
    (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (local.set $argc (i32.load (i32.const 64)))
    ;; oflags O_CREAT | O_TRUNC, rights fd_write
    (local.set $out (call $open (i32.load (i32.const 1028)) (i32.const 9) (i64.const 64)))
    (local.set $i (i32.const 2))
    (block $done
      (loop $file
        (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
        (local.set $in
          (call $open
            (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2))))
            (i32.const 0) (i64.const 2)))
        (block $eof
          (loop $more
            (i32.store (i32.const 0) (i32.const 16384))
            (i32.store (i32.const 4) (i32.const 32768))
            (br_if $eof (call $fd_read (local.get $in) (i32.const 0) (i32.const 1) (i32.const 8)))
            (local.set $n (i32.load (i32.const 8)))
            (br_if $eof (i32.eqz (local.get $n)))
            (call $write (local.get $out) (i32.const 16384) (local.get $n))
            (br $more)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $file)))
    (call $write (i32.const 1) (i32.const 560) (i32.const 8))))
"""

HELLO_WAT = r"""
;; Writes "hello" to stdout.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""

LOOP_WAT = r"""
;; Spins forever.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))
"""

GROW_WAT = r"""
;; Grows its memory a page at a time, forever (as long as memory.grow succeeds).
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
"""


def write_wasm(directory: Path, name: str, wat: str) -> Path:
    """Compile ``wat`` to ``directory/name``."""
    path = directory / name
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


async def start_roles(
    network: Network, name: str, roles: str, *args: str, listen: str = "127.0.0.1:0"
) -> Daemon:
    """A daemon running ``roles`` (comma-separated) with fast heartbeats."""
    return await network.start(
        name, "--roles", roles, "--heartbeat", HEARTBEAT, *args, listen=listen
    )


class Client:
    """The ``ucp`` command with a home of its own, reaching the network via one daemon."""

    def __init__(self, home: Path, via: Daemon | None) -> None:
        self.home = home
        self.via = via

    def flags(self, via: Daemon | None = None) -> list[str]:
        target = via or self.via
        flags = ["--home", str(self.home)]
        if target is not None:
            flags += ["--via", target.url]
        return flags

    async def ucp(
        self,
        *args: str,
        via: Daemon | None = None,
        stdin: bytes = b"",
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[bytes]:
        """``ucp ARGS --home HOME --via DAEMON`` (flags after the whole subcommand)."""
        return await run_ucp(*args, *self.flags(via), stdin=stdin, timeout=timeout)

    async def ok(self, *args: str, via: Daemon | None = None, timeout: float = 60.0) -> str:
        """Run ``ucp ARGS``; its stdout, after checking it exited 0."""
        done = await self.ucp(*args, via=via, timeout=timeout)
        assert done.returncode == 0, explain(done)
        return done.stdout.decode()

    async def status(self, *jobs: str, via: Daemon | None = None) -> dict[str, Any]:
        """``ucp status --json``: job name → its JSON."""
        out = await self.ok("status", "--json", *jobs, via=via)
        document: dict[str, Any] = json.loads(out)
        return {job["name"]: job for job in document["jobs"]}

    async def wait_for_state(
        self, job: str, states: Sequence[str], *, timeout: float = 30.0, via: Daemon | None = None
    ) -> dict[str, Any]:
        """Poll ``ucp status`` until ``job`` is in one of ``states``."""
        seen: dict[str, Any] = {}
        with trio.move_on_after(timeout):
            while True:
                seen = (await self.status(job, via=via)).get(job, {})
                if seen.get("state") in states:
                    return seen
                await trio.sleep(0.5)
        raise AssertionError(f"job {job} never reached {states}: last {seen}")


async def stop_agents(base: Path) -> list[Path]:
    """Stop the client agents of every home below ``base`` (``ucp agent stop``); the homes
    whose agent was running."""
    homes = sorted(lock.parent for lock in base.rglob("agent.lock"))
    stopped = []
    for home in homes:
        done = await run_ucp("agent", "stop", "--home", str(home), timeout=60)
        if b"stopped" in done.stdout:
            stopped.append(home)
    return stopped


def explain(done: subprocess.CompletedProcess[bytes]) -> str:
    """A failed command, for assertion messages."""
    return (
        f"exit {done.returncode}\nstdout:\n{done.stdout.decode(errors='replace')}\n"
        f"stderr:\n{done.stderr.decode(errors='replace')}"
    )
