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

from dataclasses import dataclass
from typing import TypeVar

import cbor2

from ucp_dtn.wire_schema import to_wire

from ._wire import MAX_DEPTH, decode_envelope, decode_payload, decode_wire, load
from .errors import MessageDecodeError
from .job import JobInfo
from .messages import (
    MAX_BATCH_MESSAGES,
    MESSAGE_KINDS,
    SUPPORTED_VERSIONS,
    Message,
    MessageBatch,
    UcpMessage,
)

__all__ = [
    "MAX_DEPTH",
    "DecodedPayload",
    "MESSAGE_KINDS",
    "decode_job_info",
    "decode_message",
    "decode_message_as",
    "decode_messages",
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


@dataclass(frozen=True, slots=True)
class DecodedPayload:
    """What a bundle payload carried (:func:`decode_messages`)."""

    messages: tuple[Message, ...]
    """The good messages, in order."""
    errors: tuple[MessageDecodeError, ...] = ()
    """Why the bad messages of a batch were left out."""
    batch: bool = False
    """Whether the payload was a batch."""


def decode_messages(data: bytes) -> DecodedPayload:
    """The messages a payload carries, for a receiver: one message, or a batch's messages in
    order. A bad message inside a batch does not spoil the others: it is left out and its
    error returned beside them. A payload that is neither raises :class:`MessageDecodeError`
    (as does a batch that is not an array of 2 to :data:`MAX_BATCH_MESSAGES` items)."""
    wire = load(data)
    if not (isinstance(wire, dict) and wire.get("t") == MessageBatch.KIND):
        message: Message = decode_envelope(wire, MESSAGE_KINDS, SUPPORTED_VERSIONS)
        return DecodedPayload((message,))
    if wire.get("v") not in SUPPORTED_VERSIONS:
        decode_envelope(wire, MESSAGE_KINDS, SUPPORTED_VERSIONS)  # raises the version error
    items = wire.get("messages")
    if not isinstance(items, list) or not 2 <= len(items) <= MAX_BATCH_MESSAGES:
        raise MessageDecodeError(
            f"field 'messages' must be an array of 2 to {MAX_BATCH_MESSAGES} messages",
            kind=MessageBatch.KIND,
        )
    messages: list[Message] = []
    errors: list[MessageDecodeError] = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, dict) and item.get("t") == MessageBatch.KIND:
                raise MessageDecodeError("is a batch inside a batch")
            messages.append(decode_envelope(item, MESSAGE_KINDS, SUPPORTED_VERSIONS))
        except MessageDecodeError as exc:
            errors.append(MessageDecodeError(f"messages[{index}]: {exc}", kind=MessageBatch.KIND))
    return DecodedPayload(tuple(messages), tuple(errors), batch=True)


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
