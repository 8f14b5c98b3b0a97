"""Several UCP messages in one bundle: which messages go together, and the batch's payload.

Every bundle costs its sender and each node on its way the same fixed work whatever it holds:
encoding, a durable store write, a TCPCL transfer, reception, another store write, the
confirmation and deletion, and a custody signal if it travels with custody. A role that has
several messages for one endpoint at the same moment (a plan's submissions, the acceptances
and states a broker owes one client, several dispatches to one executor) sends them as one
``batch`` message (:class:`~ucp_dtn.ucp.messages.MessageBatch`) in one bundle instead.

This module is the pure part: :func:`pack` takes the outgoing messages of a moment, in order,
and groups them into bundles:

* only messages for the same destination share a bundle, in the order they were given;
* a bundle holds at most :data:`~ucp_dtn.ucp.messages.MAX_BATCH_MESSAGES` messages and at most
  :data:`MAX_BATCH_BYTES` of encoded messages; a message at least :data:`ALONE_BYTES` long
  always goes alone (a big result or datum gains nothing and would hold the small ones back);
* a batch travels with custody if any of its messages asks for custody (the others then get
  it too: they are no worse off), and lives as long as its longest-lived message (a short-lived
  state message next to a result lives as long as the result; the receiver's handling of a
  late state is unchanged).

The mailbox (:mod:`.mailbox`) decides what "the same moment" is and sends what this returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cbor2

from bpv7 import EndpointID

from ..ucp import encode_message
from ..ucp.messages import MAX_BATCH_MESSAGES, PROTOCOL_VERSION, MessageBatch, UcpMessage

__all__ = ["ALONE_BYTES", "MAX_BATCH_BYTES", "Outgoing", "PackedBundle", "batch_payload", "pack"]

MAX_BATCH_BYTES: Final = 64 * 1024
"""Most octets of encoded messages in one batch."""
ALONE_BYTES: Final = 16 * 1024
"""A message whose encoding is at least this long is sent in a bundle of its own."""

# {"v": 1, "t": "batch", "messages": [ — the array's header follows.
_BATCH_HEAD: Final = bytes(
    cbor2.dumps({"v": PROTOCOL_VERSION, "t": MessageBatch.KIND, "messages": []})
)[:-1]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send."""

    destination: EndpointID
    """Where it goes."""
    message: UcpMessage
    """What it is."""
    custody: bool = False
    """Whether it must travel with custody transfer."""
    lifetime_s: float | None = None
    """Its bundle lifetime; ``None``: the node's default."""
    linger_s: float = 0.0
    """How long it may wait for other messages to the same destination before its bundle
    leaves (:class:`~ucp_dtn.roles.mailbox.Mailbox`); 0: after one scheduling tick."""


@dataclass(frozen=True, slots=True)
class PackedBundle:
    """One bundle to send: a message alone, or a batch."""

    destination: EndpointID
    """Where it goes."""
    payload: bytes
    """The bundle payload: one message's CBOR, or a ``batch`` of several."""
    custody: bool
    """Whether it travels with custody (one of its messages asked for it)."""
    lifetime_s: float | None
    """Its lifetime (the longest of its messages'; ``None``: the node's default)."""
    items: tuple[int, ...]
    """The positions, in :func:`pack`'s input, of the messages it carries, in order."""


def batch_payload(encoded: Sequence[bytes]) -> bytes:
    """The payload of a ``batch`` of the given encoded messages (each a whole message's CBOR,
    as :func:`~ucp_dtn.ucp.codec.encode_message` made it): the same bytes as
    ``MessageBatch(messages).to_cbor()``, without encoding the messages again."""
    count = len(encoded)
    if count < 24:
        head = bytes((0x80 + count,))
    elif count < 256:
        head = bytes((0x98, count))
    else:
        head = bytes((0x99,)) + count.to_bytes(2, "big")
    return b"".join((_BATCH_HEAD, head, *encoded))


def pack(items: Sequence[Outgoing], *, default_lifetime_s: float) -> list[PackedBundle]:
    """Group ``items`` into bundles (see the module docstring); every item is in exactly one
    bundle, and the bundles of one destination keep the items' order."""
    by_destination: dict[EndpointID, list[int]] = {}
    for index, item in enumerate(items):
        by_destination.setdefault(item.destination, []).append(index)
    bundles: list[PackedBundle] = []
    for destination, indexes in by_destination.items():
        group: list[tuple[int, bytes]] = []
        size = 0
        for index in indexes:
            encoded = encode_message(items[index].message)
            if len(encoded) >= ALONE_BYTES:
                if group:  # what came before it leaves before it
                    bundles.append(_bundle(destination, group, items, default_lifetime_s))
                    group, size = [], 0
                bundles.append(_bundle(destination, [(index, encoded)], items, default_lifetime_s))
                continue
            if group and (
                len(group) == MAX_BATCH_MESSAGES or size + len(encoded) > MAX_BATCH_BYTES
            ):
                bundles.append(_bundle(destination, group, items, default_lifetime_s))
                group, size = [], 0
            group.append((index, encoded))
            size += len(encoded)
        if group:
            bundles.append(_bundle(destination, group, items, default_lifetime_s))
    return bundles


def _bundle(
    destination: EndpointID,
    group: list[tuple[int, bytes]],
    items: Sequence[Outgoing],
    default_lifetime_s: float,
) -> PackedBundle:
    indexes = tuple(index for index, _ in group)
    if len(group) == 1:
        item = items[indexes[0]]
        return PackedBundle(destination, group[0][1], item.custody, item.lifetime_s, indexes)
    lifetimes = [items[i].lifetime_s for i in indexes]
    return PackedBundle(
        destination,
        batch_payload([encoded for _, encoded in group]),
        any(items[i].custody for i in indexes),
        max(default_lifetime_s if lifetime is None else lifetime for lifetime in lifetimes),
        indexes,
    )
