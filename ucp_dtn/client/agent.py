"""The client agent: the one process that holds a client home and runs its node, for every
``ucp`` command of that home (``python -m ucp_dtn.client.agent --home DIR``).

Theory of operation
-------------------
A client home is one DTN node — an identity and a bundle store — and one process at a time may
run it. The first ``ucp`` command that needs the network starts the agent of its home in the
background (as ssh-agent or gpg-agent are started) and talks to it over a Unix socket in the home
(:mod:`.agent_protocol`); later commands connect to the same agent. So any number of commands
use one home at once (``ucp status`` while ``ucp run`` waits; two submissions side by side), a
command starts in the time Python takes to start (the node, its sessions and the broker found
are already there), and what a command submitted keeps being forwarded after it exits — or
after it was interrupted: the agent finishes every request that changes state (a submission, a
put, a cancel) even when its command goes away, and the bundles wait in the home's store until
they leave.

The agent runs the client's node (:class:`~.node.ClientNode`) from its first request on, with
that request's discovery settings (a request that wants other ones waits until the node is idle
and gets a node started afresh with them); each request gets a session of its own on it
(:class:`~.session.ClientSession`) and runs one operation (:mod:`.operations`).

It stops by itself after ``idle`` without a command (default 10 min) once nothing waits in its
store to be forwarded; while bundles wait (no broker reachable), it keeps trying up to ``linger``
(default 6 h) after the last command — then they wait in the store for the next command. It
also stops on SIGTERM or SIGINT, on ``ucp agent stop``, and when its home is deleted. Stopping
gives waiting bundles a few seconds to leave.

Start-up: the process detaches at once (a new session, no controlling terminal, so a Ctrl-C in
the terminal of the command that started it does not reach it), takes ``agent.lock`` (a second
agent of the home finds it taken, waits for the first one's socket and reports it ready
instead), binds the socket, says ``ready`` on its standard output and closes it. It logs to
``<home>/agent.log`` (the previous log is kept as ``agent.log.1`` beyond 1 MiB); a command run
with ``-v`` also receives the agent's log lines while its request runs.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
from pathlib import Path

from .agent_protocol import AGENT_LOCK, AGENT_LOG, build_id, socket_address

__all__ = ["DEFAULT_IDLE_S", "DEFAULT_LINGER_S", "IDLE_ENV", "LINGER_ENV", "main"]

DEFAULT_IDLE_S = 600.0
"""The agent stops after this long without a command (if nothing waits to be forwarded)."""
DEFAULT_LINGER_S = 6 * 3600.0
"""While bundles wait to be forwarded, it keeps trying this long after the last command."""
IDLE_ENV = "UCP_AGENT_IDLE"
"""Environment variable: the idle time (a duration)."""
LINGER_ENV = "UCP_AGENT_LINGER"
"""Environment variable: the linger time (a duration)."""
_LOG_KEEP = 1 << 20
_READY_WAIT_S = 30.0


def _detach() -> None:
    """Become a daemon of our own: the parent (the process the command started) exits at once,
    the child leaves the command's session and process group."""
    if os.fork():
        os._exit(0)
    os.setsid()


def _open_log(home: Path) -> None:
    log = home / AGENT_LOG
    try:
        if log.stat().st_size > _LOG_KEEP:
            os.replace(log, home / (AGENT_LOG + ".1"))
    except OSError:
        pass
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.close(fd)


def _say(line: str) -> None:
    """Tell the command that started us how the start went, then let go of its pipe."""
    with contextlib.suppress(OSError):
        os.write(1, (line + "\n").encode())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 0)
    os.close(null)


def _lock(home: Path) -> int | None:
    """The descriptor of ``agent.lock``, locked; ``None`` if another agent holds it."""
    fd = os.open(home / AGENT_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


def _answering(address: str | bytes) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def _duration(text: str | None, default: float) -> float:
    if not text:
        return default
    from convergence.quantities import parse_duration

    return parse_duration(text)


def main(argv: list[str] | None = None) -> int:
    """Start the agent of ``--home`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m ucp_dtn.client.agent")
    parser.add_argument("--home", type=Path, required=True, help="the client home")
    parser.add_argument("--idle", help=f"stop after this long without a command (${IDLE_ENV})")
    parser.add_argument("--linger", help=f"keep forwarding this long (${LINGER_ENV})")
    parser.add_argument("--foreground", action="store_true", help="do not detach")
    args = parser.parse_args(argv)
    if not args.foreground:
        _detach()
    home: Path = args.home.expanduser().absolute()
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chdir(home)  # not the directory of the command that started us: it may go away
        _open_log(home)
        idle = _duration(args.idle or os.environ.get(IDLE_ENV), DEFAULT_IDLE_S)
        linger = _duration(args.linger or os.environ.get(LINGER_ENV), DEFAULT_LINGER_S)
        lock = _lock(home)
    except (OSError, ValueError) as exc:
        _say(f"error cannot start the client agent of {home}: {exc}")
        return 1
    address = socket_address(home)
    if lock is None:
        # Another agent of this home is starting or running: it is the one to use.
        deadline = time.monotonic() + _READY_WAIT_S
        while time.monotonic() < deadline:
            if _answering(address):
                _say("ready")
                return 0
            time.sleep(0.05)
        _say(f"error another client agent holds {home / AGENT_LOCK} but does not answer")
        return 1
    from .agent_server import ClientAgent  # the heavy part: trio, the node, the roles

    agent = ClientAgent(home, address, idle_s=idle, linger_s=linger, build=build_id())
    return agent.start(ready=_say)


if __name__ == "__main__":
    sys.exit(main())
