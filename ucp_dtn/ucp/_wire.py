"""The wire layer under :mod:`ucp_dtn.ucp.codec`: a well-formedness scan of CBOR payloads
and typed access to decoded CBOR maps whose errors name the message kind and field."""

from __future__ import annotations

import enum
import math
import uuid
from typing import Any

from .errors import MessageDecodeError

__all__ = ["MAX_DEPTH", "Fields", "put", "scan", "type_name"]

MAX_DEPTH = 32
"""Deepest nesting of CBOR arrays, maps and tags a message may have."""

_UINT_MAX = 2**64 - 1


# -- well-formedness ---------------------------------------------------------------------------


def scan(data: bytes) -> None:
    """Check that ``data`` is exactly one well-formed CBOR item (RFC 8949 §5.3.1) of bounded
    depth; cheap, allocates nothing proportional to declared lengths."""
    end = len(data)
    pos = 0
    # Items still expected per open container; None: indefinite length, closed by a break.
    stack: list[int | None] = []
    while True:
        if pos >= end:
            raise MessageDecodeError("truncated CBOR")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if initial == 0xFF:  # break: closes the innermost indefinite-length container
            if not stack or stack[-1] is not None:
                raise MessageDecodeError("CBOR break outside an indefinite-length item")
            stack.pop()
        else:
            if info < 24:
                argument = info
            elif info <= 27:
                size = 1 << (info - 24)
                if pos + size > end:
                    raise MessageDecodeError("truncated CBOR")
                argument = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            elif info == 31 and major in (2, 3, 4, 5):
                argument = -1
            else:
                raise MessageDecodeError(f"malformed CBOR initial byte 0x{initial:02x}")
            if major in (2, 3):
                if argument >= 0:
                    if pos + argument > end:
                        raise MessageDecodeError("truncated CBOR string")
                    pos += argument
                else:  # indefinite string: definite chunks of the same major type, then break
                    while True:
                        if pos >= end:
                            raise MessageDecodeError("truncated CBOR")
                        chunk = data[pos]
                        pos += 1
                        if chunk == 0xFF:
                            break
                        if chunk >> 5 != major or chunk & 0x1F > 27:
                            raise MessageDecodeError("malformed indefinite-length CBOR string")
                        chunk_info = chunk & 0x1F
                        length = chunk_info
                        if chunk_info >= 24:
                            size = 1 << (chunk_info - 24)
                            if pos + size > end:
                                raise MessageDecodeError("truncated CBOR")
                            length = int.from_bytes(data[pos : pos + size], "big")
                            pos += size
                        if pos + length > end:
                            raise MessageDecodeError("truncated CBOR string")
                        pos += length
            elif major in (4, 5, 6):
                count = 1 if major == 6 else argument * (2 if major == 5 else 1)
                if argument < 0 or count > 0:  # a container opens; its items come next
                    stack.append(None if argument < 0 else count)
                    if len(stack) > MAX_DEPTH:
                        raise MessageDecodeError(f"CBOR nested deeper than {MAX_DEPTH}")
                    continue
            elif major == 7 and info == 24 and argument < 32:
                # RFC 8949 §3.3: simple values 0..31 in the two-byte form are not well-formed.
                raise MessageDecodeError("malformed CBOR simple value")
        _complete(stack)
        if not stack:
            break
    if pos != end:
        raise MessageDecodeError(f"{end - pos} bytes after the CBOR item")


def _complete(stack: list[int | None]) -> None:
    """One item finished: count it against the open containers, closing those it fills."""
    while stack and stack[-1] is not None:
        remaining = stack[-1] - 1
        if remaining:
            stack[-1] = remaining
            return
        stack.pop()


# -- typed field access ----------------------------------------------------------------------


def type_name(value: object) -> str:
    names = {str: "text", bytes: "bytes", bool: "bool", int: "integer", float: "float"}
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "map"
    return names.get(type(value), type(value).__name__)


class Fields:
    """Typed access to one CBOR map; errors name the message kind and the field path."""

    def __init__(self, wire: object, kind: str, where: str = "") -> None:
        if not isinstance(wire, dict):
            raise MessageDecodeError(f"{where or 'message'} must be a map", kind=kind)
        self.wire: dict[Any, Any] = wire
        self.kind = kind
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, expected: str, value: object) -> MessageDecodeError:
        return MessageDecodeError(
            f"field '{self._name(key)}' must be {expected}, got {type_name(value)}",
            kind=self.kind,
        )

    def has(self, key: str) -> bool:
        return self.wire.get(key) is not None

    def get(self, key: str) -> object:
        if key not in self.wire:
            raise MessageDecodeError(f"field '{self._name(key)}' is missing", kind=self.kind)
        return self.wire[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if type(value) is not str:
            raise self.fail(key, "text", value)
        return value

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def text_or(self, key: str, default: str) -> str:
        return self.text(key) if self.has(key) else default

    def uint(self, key: str) -> int:
        value = self.get(key)
        if type(value) is not int or not 0 <= value <= _UINT_MAX:
            raise self.fail(key, "an unsigned integer", value)
        return value

    def uint_or(self, key: str, default: int) -> int:
        return self.uint(key) if self.has(key) else default

    def opt_uint(self, key: str) -> int | None:
        return self.uint(key) if self.has(key) else None

    def opt_int(self, key: str) -> int | None:
        if not self.has(key):
            return None
        value = self.wire[key]
        if type(value) is not int or not -(2**63) <= value <= _UINT_MAX:
            raise self.fail(key, "an integer", value)
        return value

    def number(self, key: str) -> float:
        value = self.get(key)
        if type(value) not in (int, float):
            raise self.fail(key, "a finite number", value)
        assert isinstance(value, int | float)
        if not math.isfinite(value):
            raise self.fail(key, "a finite number", value)
        return float(value)

    def number_or(self, key: str, default: float) -> float:
        return self.number(key) if self.has(key) else default

    def opt_number(self, key: str) -> float | None:
        return self.number(key) if self.has(key) else None

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.wire[key]
        if type(value) is not bool:
            raise self.fail(key, "a bool", value)
        return value

    def blob(self, key: str) -> bytes:
        value = self.get(key)
        if type(value) is not bytes:
            raise self.fail(key, "bytes", value)
        return value

    def blob_or(self, key: str, default: bytes) -> bytes:
        return self.blob(key) if self.has(key) else default

    def opt_blob(self, key: str) -> bytes | None:
        return self.blob(key) if self.has(key) else None

    def job_uuid(self, key: str) -> uuid.UUID:
        value = self.get(key)
        if type(value) is not bytes or len(value) != 16:
            raise self.fail(key, "a 16-byte UUID", value)
        return uuid.UUID(bytes=value)

    def opt_job_uuid(self, key: str) -> uuid.UUID | None:
        return self.job_uuid(key) if self.has(key) else None

    def array(self, key: str) -> list[Any]:
        if not self.has(key):
            return []
        value = self.wire[key]
        if type(value) is not list:
            raise self.fail(key, "an array", value)
        return value

    def job_uuids(self, key: str) -> tuple[uuid.UUID, ...]:
        items = self.array(key)
        for index, item in enumerate(items):
            if type(item) is not bytes or len(item) != 16:
                raise self.fail(f"{key}[{index}]", "a 16-byte UUID", item)
        return tuple(uuid.UUID(bytes=item) for item in items)

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.array(key)
        for index, item in enumerate(items):
            if type(item) is not str:
                raise self.fail(f"{key}[{index}]", "text", item)
        return tuple(items)

    def mapping(self, key: str) -> dict[str, Any]:
        if not self.has(key):
            return {}
        value = self.wire[key]
        if type(value) is not dict:
            raise self.fail(key, "a map", value)
        for item in value:
            if type(item) is not str:
                raise self.fail(key, "a map with text keys", item)
        return value

    def text_map(self, key: str) -> dict[str, str]:
        value = self.mapping(key)
        for item_key, item in value.items():
            if type(item) is not str:
                raise self.fail(f"{key}[{item_key!r}]", "text", item)
        return value

    def blob_map(self, key: str) -> dict[str, bytes]:
        value = self.mapping(key)
        for item_key, item in value.items():
            if type(item) is not bytes:
                raise self.fail(f"{key}[{item_key!r}]", "bytes", item)
        return value

    def sub(self, key: str) -> Fields:
        return Fields(self.get(key), self.kind, self._name(key))

    def subs(self, key: str) -> list[Fields]:
        return [
            Fields(item, self.kind, f"{self._name(key)}[{index}]")
            for index, item in enumerate(self.array(key))
        ]

    def code(self, key: str, codes: type[enum.IntEnum]) -> int:
        value = self.uint(key)
        try:
            return codes(value)
        except ValueError:
            return value  # an unknown code stays a plain int


def put(wire: dict[str, Any], key: str, value: object, default: object = None) -> None:
    """Set ``wire[key]`` unless ``value`` is the default (left out on the wire)."""
    if value != default:
        wire[key] = value
