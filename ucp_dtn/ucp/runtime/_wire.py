"""The pipe protocol between a :class:`WorkerPool` and its worker processes (private).

Each message is one frame: a 4-byte big-endian length, then a CBOR map whose ``"t"`` names the
message. The pool writes to the worker's stdin and reads its stdout.

pool → worker::

    {"t": "run", "spec": {...RunSpec without wasm...}, "digest": bytes, "wasm": bytes | null}

    ``wasm`` is null when the pool believes the module is cached; the worker then loads it by
    digest or answers "need-wasm". Closing the pipe tells the worker to exit.

worker → pool::

    {"t": "ready", "pid": int, "wasmtime": str}   once, after the engine is up
    {"t": "need-wasm"}                            resend the run with the wasm bytes
    {"t": "compiling"}                            cache miss: compiling the module now
    {"t": "started"}                              compiled; the guest starts now
    {"t": "done", "outcome": {...RunOutcome...}}  the run is over

A run whose module is in memory or on disk is one frame each way. When the worker must compile,
it says so, and the pool's wall-clock limit for the job restarts at "started": compiling a large
module does not eat into the job's time (compiling has its own, generous limit in the pool).
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import Any

import cbor2

from .spec import ModuleSource, RunOutcome, RunSpec, RunStatus

__all__ = [
    "MAX_FRAME",
    "FrameDecoder",
    "WireError",
    "encode_frame",
    "outcome_from_wire",
    "outcome_to_wire",
    "spec_from_wire",
    "spec_to_wire",
]

#: Largest frame accepted (the length field is 32 bits).
MAX_FRAME = 2**32 - 1
_LENGTH = struct.Struct(">I")
_SPEC_PATHS = frozenset({"job_dir", "stdin_path", "stdout_path", "stderr_path"})
_OUTCOME_PATHS = frozenset({"stdout_path", "stderr_path"})


class WireError(Exception):
    """The other end sent something that is not a valid frame or message."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """One message as a frame."""
    body = cbor2.dumps(message)
    if len(body) > MAX_FRAME:
        raise ValueError(f"message of {len(body)} bytes is too large for a frame")
    return _LENGTH.pack(len(body)) + body


class FrameDecoder:
    """Bytes in, messages out (sans-IO)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[dict[str, Any]]:
        """Add received bytes; return the messages they complete."""
        self._buffer += data
        messages: list[dict[str, Any]] = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            try:
                message = cbor2.loads(body)
            except Exception as exc:  # cbor2 raises several types on bad input
                raise WireError(f"undecodable frame: {exc}") from None
            if not isinstance(message, dict) or not isinstance(message.get("t"), str):
                raise WireError("a frame must hold a map with a string 't'")
            messages.append(message)
        return messages

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def spec_to_wire(spec: RunSpec) -> dict[str, Any]:
    """A spec as a CBOR-ready map, without its wasm bytes (they travel beside it)."""
    return {
        field.name: _plain(getattr(spec, field.name))
        for field in dataclasses.fields(spec)
        if field.name != "wasm"
    }


def spec_from_wire(message: Any, wasm: bytes) -> RunSpec:
    """The spec sent by :func:`spec_to_wire`, with ``wasm`` put back."""
    try:
        values = dict(message)
        for name in _SPEC_PATHS:
            if values.get(name) is not None:
                values[name] = Path(values[name])
        values["args"] = tuple(values.get("args", ()))
        values["env"] = tuple(tuple(pair) for pair in values.get("env", ()))
        return RunSpec(wasm=wasm, **values)
    except (TypeError, ValueError) as exc:
        raise WireError(f"invalid run spec: {exc}") from None


def outcome_to_wire(outcome: RunOutcome) -> dict[str, Any]:
    """An outcome as a CBOR-ready map."""
    return {
        field.name: _plain(getattr(outcome, field.name)) for field in dataclasses.fields(outcome)
    }


def outcome_from_wire(message: Any) -> RunOutcome:
    """The outcome sent by :func:`outcome_to_wire`."""
    try:
        values = dict(message)
        values["status"] = RunStatus(values["status"])
        values["module_source"] = ModuleSource(values.get("module_source", "none"))
        for name in _OUTCOME_PATHS:
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return RunOutcome(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"invalid run outcome: {exc}") from None
