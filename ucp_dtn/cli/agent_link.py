"""The ``ucp`` command's end of the client agent (:mod:`ucp_dtn.client.agent`): connect to the
agent of the home, starting it first if none runs, send one request and hand its events on
until the answer comes.

Blocking and light (the standard library and cbor2): a command that only talks to a running
agent starts as fast as Python does. Ctrl-C while waiting raises ``KeyboardInterrupt`` here; the
connection closes with the process and the agent finishes or drops the request (see there).
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ucp_dtn.client.agent_protocol import (
    AGENT_LOG,
    PROTOCOL_VERSION,
    FrameDecoder,
    ProtocolError,
    build_id,
    encode_frame,
    socket_address,
)
from ucp_dtn.private_files import make_private_directory, open_private

from .command import EXIT_FAILURE, CommandError

__all__ = ["START_TIMEOUT_S", "call_agent", "connect"]

START_TIMEOUT_S = 60.0
"""Longest wait for a new agent to say it is ready (a loaded machine starts Python slowly)."""
_READ_SIZE = 1 << 16

EventHandler = Callable[[dict[str, Any]], None]


def connect(home: Path) -> socket.socket | None:
    """A connection to the agent of ``home``, or ``None`` if none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_address(home))
    except OSError:
        sock.close()
        return None
    return sock


def _log_tail(home: Path) -> str:
    try:
        lines = (home / AGENT_LOG).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _start(home: Path) -> None:
    """Start the agent of ``home`` and wait until it says it is ready."""
    import subprocess  # (only the first command of a session starts the agent)

    try:
        make_private_directory(home)
        log = os.fdopen(open_private(home / AGENT_LOG, os.O_WRONLY | os.O_APPEND), "ab")
    except OSError as exc:
        raise CommandError(f"cannot use the client home {home}: {exc.strerror or exc}") from None
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ucp_dtn.client.agent", "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            close_fds=True,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    with process.stdout:
        fd = process.stdout.fileno()
        while b"\n" not in line:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            line += chunk
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    text = line.decode(errors="replace").strip()
    if text == "ready":
        return
    if text.startswith("error "):
        raise CommandError(text[len("error ") :])
    why = _log_tail(home) or "no word from it"
    raise CommandError(f"the client agent of {home} did not start: {why}")


def _connect_or_start(home: Path) -> socket.socket:
    sock = connect(home)
    if sock is not None:
        return sock
    _start(home)
    for _ in range(50):
        sock = connect(home)
        if sock is not None:
            return sock
        time.sleep(0.02)
    raise CommandError(f"the client agent of {home} started but does not answer")


def _exchange(
    sock: socket.socket, request: dict[str, Any], on_event: EventHandler
) -> tuple[bool, dict[str, Any]]:
    """Send ``request``; ``(True, document)`` for an answer, ``(False, frame)`` for an
    error."""
    try:
        sock.sendall(encode_frame(request))
    except OSError as exc:
        raise CommandError(f"cannot reach the client agent: {exc.strerror or exc}") from None
    decoder = FrameDecoder()
    while True:
        try:
            data = sock.recv(_READ_SIZE)
        except OSError as exc:
            raise CommandError(f"the client agent went away: {exc.strerror or exc}") from None
        if not data:
            raise CommandError("the client agent went away (its log: agent.log in the home)")
        try:
            frames = decoder.feed(data)
        except ProtocolError as exc:
            raise CommandError(f"the client agent said something unreadable: {exc}") from None
        for frame in frames:
            if "event" in frame:
                on_event(frame)
            elif "done" in frame:
                document: dict[str, Any] = frame["done"]
                return True, document
            else:
                return False, frame


def call_agent(
    home: Path,
    op: str,
    args: dict[str, Any],
    settings: dict[str, Any],
    *,
    verbose: int = 0,
    on_event: EventHandler | None = None,
) -> dict[str, Any]:
    """Ask the agent of ``home`` (started if none runs) to run ``op``; its document. Events go
    to ``on_event``; an error answer raises :class:`CommandError` with its exit status."""
    request = {
        "v": PROTOCOL_VERSION,
        "build": build_id(),
        "op": op,
        "args": args,
        "settings": settings,
        "verbose": verbose,
    }
    handler = on_event if on_event is not None else (lambda event: None)
    for attempt in range(2):
        with _connect_or_start(home) as sock:
            done, answer = _exchange(sock, request, handler)
        if done:
            return answer
        if answer.get("stale") and attempt == 0:
            _wait_gone(home)  # an agent of other code: it stops; start ours
            continue
        raise CommandError(str(answer["error"]), int(answer.get("status", EXIT_FAILURE)))
    raise CommandError("the client agent keeps answering as another version")


def _wait_gone(home: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = connect(home)
        if sock is None:
            return
        sock.close()
        time.sleep(0.05)
