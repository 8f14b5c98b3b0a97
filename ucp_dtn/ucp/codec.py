"""CBOR encoding and strict decoding of UCP messages (format in :mod:`ucp_dtn.ucp.messages`).

There is no hand-written mapping here: each message's dataclass declares its wire form
(:mod:`ucp_dtn.wire_schema`), and :mod:`ucp_dtn.ucp._wire` puts the ``"v"``/``"t"`` envelope
around it.

Decoding happens at the edge and is then trusted: :func:`decode_message` first checks that the
payload is exactly one well-formed CBOR item nested at most :data:`MAX_DEPTH` deep (no
trailing bytes, no string longer than the payload), lets cbor2 build it, then checks every
field's type and range and builds the frozen message, whose own validation (JobInfo's paths
and names, capabilities' ranges) runs too. Whatever goes wrong surfaces as
:class:`~ucp_dtn.ucp.errors.MessageDecodeError` naming the kind and field — never a cbor2
error, ``KeyError``, ``TypeError`` or ``RecursionError``.
"""

from __future__ import annotations

from typing import TypeVar

import cbor2

from ucp_dtn.wire_schema import to_wire

from ._wire import MAX_DEPTH, decode_payload, decode_wire, load
from .job import JobInfo
from .messages import MESSAGE_KINDS, SUPPORTED_VERSIONS, Message, UcpMessage

__all__ = [
    "MAX_DEPTH",
    "MESSAGE_KINDS",
    "decode_job_info",
    "decode_message",
    "decode_message_as",
    "encode_job_info",
    "encode_message",
]

_M = TypeVar("_M", bound=UcpMessage)


def encode_message(message: UcpMessage) -> bytes:
    """The CBOR payload of ``message``."""
    return message.to_cbor()


def decode_message(data: bytes) -> Message:
    """The message in payload ``data``; :class:`MessageDecodeError` for anything else."""
    message: Message = decode_payload(data, MESSAGE_KINDS, SUPPORTED_VERSIONS)
    return message


def decode_message_as(data: bytes, cls: type[_M]) -> _M:
    """Decode ``data``, which must hold a message of class ``cls``."""
    return cls.from_cbor(data)


def encode_job_info(job: JobInfo) -> bytes:
    """A JobInfo alone as CBOR (its wire map), e.g. for a broker's persistent job table."""
    return bytes(cbor2.dumps(to_wire(job)))


def decode_job_info(data: bytes) -> JobInfo:
    """The JobInfo in ``data`` (from :func:`encode_job_info`); :class:`MessageDecodeError`
    otherwise."""
    job: JobInfo = decode_wire(JobInfo, load(data), "job-info")
    return job
