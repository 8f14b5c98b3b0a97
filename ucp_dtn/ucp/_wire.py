"""The payload layer under :mod:`ucp_dtn.ucp.codec`: a well-formedness scan of CBOR payloads
and the envelope of every message (``"v"`` and ``"t"`` around the fields its dataclass declares,
see :mod:`ucp_dtn.wire_schema`).

It knows no message class: the caller passes the kinds it reads, so :mod:`ucp_dtn.ucp.messages`
(whose ``to_cbor``/``from_cbor`` use it) and :mod:`ucp_dtn.ucp.codec` both build on it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

from ucp_dtn.cbor_check import MAX_DEPTH, MAX_ITEMS, CBORCheckError, check_cbor
from ucp_dtn.wire_schema import WireError, from_wire, to_wire, type_name

from .errors import MessageDecodeError, UcpUsageError

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "decode_envelope",
    "decode_payload",
    "decode_wire",
    "encode_payload",
    "load",
    "scan",
]


def scan(data: bytes) -> None:
    """Check that ``data`` is exactly one well-formed CBOR item of bounded depth and size
    (:func:`ucp_dtn.cbor_check.check_cbor`); :class:`MessageDecodeError` if not."""
    try:
        check_cbor(data)
    except CBORCheckError as exc:
        raise MessageDecodeError(str(exc)) from None


# -- the envelope ---------------------------------------------------------------------------------


def encode_payload(message: Any, kind: str, version: int) -> bytes:
    """The CBOR payload of ``message``: ``{"v": version, "t": kind, <its fields>}``."""
    return bytes(cbor2.dumps(to_wire(message, {"v": version, "t": kind})))


def load(data: bytes) -> object:
    """The one CBOR item of ``data``, after :func:`scan`; :class:`MessageDecodeError` for
    anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageDecodeError(f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    scan(data)
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2's semantic tag decoders raise assorted errors
        raise MessageDecodeError(f"undecodable CBOR: {exc}") from None


def decode_payload(data: bytes, kinds: Mapping[str, type[Any]], versions: tuple[int, ...]) -> Any:
    """The message in payload ``data``, of one of ``kinds`` (by ``"t"``) in one of
    ``versions``; :class:`MessageDecodeError` for anything else."""
    return decode_envelope(load(data), kinds, versions)


def decode_envelope(wire: object, kinds: Mapping[str, type[Any]], versions: tuple[int, ...]) -> Any:
    """The message in decoded CBOR ``wire`` (a map with ``"v"``, ``"t"`` and the kind's
    fields): a payload's one item, or a message inside a batch; :class:`MessageDecodeError`
    for anything else."""
    if not isinstance(wire, dict):
        raise MessageDecodeError(f"a message is a CBOR map, got {type_name(wire)}")
    version = wire.get("v")
    if type(version) is not int:
        raise MessageDecodeError(
            f"field 'v' (version) must be an integer, got {type_name(version)}"
        )
    if version not in versions:
        raise MessageDecodeError(
            f"message version {version} is not supported (supported: "
            f"{', '.join(map(str, versions))})"
        )
    kind = wire.get("t")
    if type(kind) is not str:
        raise MessageDecodeError(f"field 't' (kind) must be text, got {type_name(kind)}")
    cls = kinds.get(kind)
    if cls is None:
        raise MessageDecodeError(f"unknown message kind {kind!r}")
    return decode_wire(cls, wire, kind)


def decode_wire(cls: type[Any], wire: object, kind: str) -> Any:
    """Build a ``cls`` from decoded CBOR; every problem, the schema's or the class's own
    validation (names, paths, ranges), is a :class:`MessageDecodeError` of ``kind``."""
    try:
        return from_wire(cls, wire)
    except (WireError, UcpUsageError) as exc:
        raise MessageDecodeError(str(exc), kind=kind) from None
