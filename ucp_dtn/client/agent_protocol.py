"""How ``ucp`` commands talk to the client agent of their home (both sides share this module).

The agent (:mod:`ucp_dtn.client.agent`) listens on a Unix stream socket: ``<home>/agent.sock``,
or, when that path is too long for a socket address, an abstract one named after the home
(:func:`socket_address`). Only processes of the agent's own user may connect (checked with
``SO_PEERCRED``).

One connection carries one request. Every message is a *frame*: a 4-byte big-endian length,
then a CBOR map.

* The command sends one request: ``{"v": PROTOCOL_VERSION, "op": name, "args": {...},
  "settings": {...}, "verbose": 0|1|2}``; ``settings`` are
  :meth:`ClientSettings.to_plain <ucp_dtn.client.ClientSettings.to_plain>`.
* The agent answers with any number of events ``{"event": kind, ...}`` (progress of a ``run``,
  output of ``logs -f``, log lines with ``-v``; ``transfer`` figures of large uploads and
  downloads when the request's ``args`` say ``"progress": true``, and ``unsent`` when a large
  upload had not left as the operation ended, see :mod:`ucp_dtn.client.progress` and
  :mod:`ucp_dtn.client.operations`), then exactly one of ``{"done": document}`` or
  ``{"error": message, "status": exit status}``.
* A command that goes away (Ctrl-C) just closes the connection: the agent cancels what only
  reads, and finishes what changes state (a submission, a put, a cancel).

Only the standard library and cbor2 are imported here: the ``ucp`` command imports this module
before anything else (it must start fast).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any

import cbor2

from ucp_dtn.cbor_check import check_cbor

__all__ = [
    "AGENT_LOCK",
    "AGENT_LOG",
    "AGENT_SOCKET",
    "FrameDecoder",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "build_id",
    "decode_frame_body",
    "encode_frame",
    "socket_address",
]

PROTOCOL_VERSION = 1
"""Version of the request format; an agent speaking another one is stopped and replaced."""
AGENT_SOCKET = "agent.sock"
"""File name of the agent's socket in the home."""
AGENT_LOG = "agent.log"
"""File name of the agent's log in the home."""
AGENT_LOCK = "agent.lock"
"""File the running agent holds locked (one agent per home)."""
MAX_FRAME = 1 << 31
"""Largest frame either side accepts (a data get of a large datum travels in one)."""

_LENGTH = struct.Struct(">I")
_MAX_PATH = 100  # sockaddr_un's sun_path holds 108 bytes; keep a margin


class ProtocolError(Exception):
    """A frame that is not one (too long, not a CBOR map)."""


def build_id() -> str:
    """What identifies the code an agent runs: the protocol version, where the package is
    installed and when the client's and the messages' modules last changed. A command and an
    agent that differ in it do not talk: the agent stops and a new one starts (after an
    upgrade, or an edit of an editable install)."""
    package = Path(__file__).resolve().parents[1]
    newest = 0
    for directory in (package / "client", package / "ucp"):
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".py"):
                        newest = max(newest, entry.stat().st_mtime_ns)
        except OSError:
            continue
    return f"{PROTOCOL_VERSION}:{package}:{newest}"


def socket_address(home: Path) -> str | bytes:
    """Where the agent of ``home`` listens: the socket file's path, or an abstract address
    (bytes starting with NUL) if the path is too long."""
    path = str(home / AGENT_SOCKET)
    if len(os.fsencode(path)) <= _MAX_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(str(home.resolve()))).hexdigest()[:32]
    return b"\0ucp-agent-" + digest.encode()


def encode_frame(message: dict[str, Any]) -> bytes:
    """One frame: the length, then the CBOR map."""
    body = cbor2.dumps(message)
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a message of {len(body)} bytes is too large to send")
    return _LENGTH.pack(len(body)) + body


def decode_frame_body(body: bytes) -> dict[str, Any]:
    """The map a frame's body holds; :class:`ProtocolError` if it is not one."""
    try:
        check_cbor(body)  # (bounded depth and size before cbor2 builds anything)
        message = cbor2.loads(body)
    except Exception as exc:  # cbor2 raises many kinds (RecursionError too); none may leak
        raise ProtocolError(f"not a CBOR message: {str(exc)[:200]}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"expected a map, got {type(message).__name__}")
    return message


class FrameDecoder:
    """Frames out of a byte stream fed in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Take ``data``; return the frames completed by it."""
        self._buffer += data
        frames: list[dict[str, Any]] = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ProtocolError(f"a frame of {length} bytes is too large")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            frames.append(decode_frame_body(body))
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buffer)
