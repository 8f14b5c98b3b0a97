"""A worker process of :class:`~ucp_dtn.ucp.runtime.WorkerPool` (private).

Started by the pool's launcher (or ``python -m ucp_dtn.ucp.runtime._worker '<config json>'``);
speaks the frame protocol of :mod:`._wire` on its stdin and stdout, which it moves to private
descriptors first so nothing else (a stray print, a library's message) can write into the
protocol stream. It imports wasmtime and builds its engine once (the fuel-metering one on the
first job with a fuel budget), then runs jobs one after another until its stdin closes. It
ignores SIGINT: a Ctrl-C in the terminal is for the node, which then shuts its workers down.
While a guest runs, ``RLIMIT_FSIZE`` bounds the files it writes.

A worker dies with its parent: a thread waits on a pidfd of the parent process (Linux 5.3+;
elsewhere it polls ``getppid()``) and ends the process the moment the parent is gone, even in
the middle of a guest — after a ``kill -9`` of the node, no job goes on running unowned.
(``PR_SET_PDEATHSIG`` would not do: it fires when the parent *thread* that started the worker
ends, and trio starts processes from short-lived worker threads.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import _wire
from .errors import InvalidModuleError, ModuleNotCachedError
from .sandbox import JobSandbox
from .spec import ModuleSource, RunOutcome, RunStatus, SandboxConfig

logger = logging.getLogger(__name__)

_READ_SIZE = 1 << 20
_PARENT_POLL_S = 0.5
"""How often the watcher checks ``getppid()`` where pidfds are not available."""


def _config_from_argv(argv: list[str]) -> tuple[Path | None, SandboxConfig]:
    if len(argv) != 2:
        raise SystemExit("usage: python -m ucp_dtn.ucp.runtime._worker CONFIG_JSON")
    settings = json.loads(argv[1])
    cache_dir = settings.pop("cache_dir")
    return (Path(cache_dir) if cache_dir else None), SandboxConfig(**settings)


class _Channel:
    """Blocking frame I/O on two private descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._decoder = _wire.FrameDecoder()
        self._pending: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        view = memoryview(_wire.encode_frame(message))
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None once the pool closed the pipe."""
        while not self._pending:
            data = os.read(self._read_fd, _READ_SIZE)
            if not data:
                return None
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)


def _serve(channel: _Channel, sandbox: JobSandbox) -> None:
    while (message := channel.receive()) is not None:
        if message["t"] != "run":
            raise _wire.WireError(f"unexpected message {message['t']!r}")
        digest = message["digest"]
        wasm = message.get("wasm")
        spec = _wire.spec_from_wire(message["spec"], wasm if wasm is not None else b"")
        started = time.perf_counter()
        try:
            loaded, source = sandbox.load(
                digest,
                wasm,
                fuel_budget=spec.fuel is not None,
                on_compile=lambda: channel.send({"t": "compiling"}),
            )
        except ModuleNotCachedError:
            channel.send({"t": "need-wasm"})
            continue
        except InvalidModuleError as exc:
            outcome = RunOutcome(
                status=RunStatus.INVALID_MODULE,
                exit_code=None,
                message=str(exc),
                load_time=time.perf_counter() - started,
            )
            channel.send({"t": "done", "outcome": _wire.outcome_to_wire(outcome)})
            continue
        load_time = time.perf_counter() - started
        if source is ModuleSource.COMPILED:
            channel.send({"t": "started"})
        with _file_size_limit(spec.file_size_limit):
            outcome = sandbox.run_loaded(spec, loaded, source=source, load_time=load_time)
        channel.send({"t": "done", "outcome": _wire.outcome_to_wire(outcome)})


@contextlib.contextmanager
def _file_size_limit(limit: int | None) -> Iterator[None]:
    """Bound every file this process writes (the guest's included) while the guest runs.

    With SIGXFSZ ignored (see :func:`main`), a write past the limit fails with EFBIG, which the
    guest sees as WASI's ``fbig``.
    """
    if limit is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _die_with_parent() -> None:
    """End this process as soon as its parent (the node running the pool) is gone."""
    parent = os.getppid()
    pidfd: int | None
    try:
        pidfd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        pidfd = None
    if os.getppid() != parent:  # the parent died before the pidfd was open
        os._exit(1)

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])  # readable once the parent has exited
        else:
            while os.getppid() == parent:
                time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    """Run the worker until the pool closes its stdin (or its parent dies)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING,
        format=f"wasm-worker[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    cache_dir, config = _config_from_argv(sys.argv)
    read_fd, write_fd = os.dup(0), os.dup(1)
    null_fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(null_fd, 0)
    os.dup2(null_fd, 1)
    os.close(null_fd)
    channel = _Channel(read_fd, write_fd)
    status = 0
    try:
        sandbox = JobSandbox(cache_dir, config)
        channel.send({"t": "ready", "pid": os.getpid(), "wasmtime": sandbox.cache.version})
        _serve(channel, sandbox)
    except BrokenPipeError:
        pass  # the pool went away
    except Exception:
        logger.exception("worker failed")
        status = 1
    sys.stderr.flush()
    # Skip interpreter teardown: wasmtime's runtime threads must not call back into a finalising
    # interpreter, and there is nothing left to clean up.
    os._exit(status)


if __name__ == "__main__":
    main()
