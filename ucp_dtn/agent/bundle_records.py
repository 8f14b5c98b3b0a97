"""How the agent describes a bundle to its store: the key it is filed under and its record.

The store never parses bundles (see :mod:`ucp_dtn.store.stored_bundle`): the agent decodes a
bundle once, at the edge, and files it under :func:`bundle_key` with a :class:`StoredBundle`
built by :func:`stored_bundle_for`. What later decisions need without reading the bytes back
goes into ``StoredBundle.extra`` under the ``EXTRA_*`` names below (all text, as the store
wants it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping

from bpv7 import (
    STATUS_REPORT_REQUEST_FLAGS,
    BlockType,
    Bundle,
    BundleID,
    unix_from_dtn_time,
)
from ucp_dtn.store import BundleState, StoredBundle

__all__ = [
    "EXTRA_AGE",
    "EXTRA_FLAGS",
    "EXTRA_PREVIOUS",
    "EXTRA_TRANSMISSION",
    "bundle_key",
    "is_fragment_key",
    "key_of",
    "expiry_of",
    "stored_bundle_for",
    "stored_flags",
]

_REPORT_REQUESTS = int(STATUS_REPORT_REQUEST_FLAGS)

EXTRA_FLAGS = "flags"
"""Bundle processing control flags (decimal), present when a status report may be due."""
EXTRA_PREVIOUS = "prev"
"""Node ID of the neighbour the bundle came from (never sent back there unless it is the
destination)."""
EXTRA_AGE = "age"
"""``"1"`` when the bundle carries a Bundle Age Block to update at forwarding time."""
EXTRA_TRANSMISSION = "tid"
"""BIBE transmission ID of the custodial transmission awaiting a custody signal."""


def bundle_key(bundle_id: BundleID) -> str:
    """The store key of a bundle: a stable text form of its ID (RFC 9171 §4.3.1: source node
    ID, creation timestamp and, for a fragment, offset and payload length)."""
    creation = bundle_id.creation
    key = f"{bundle_id.source}|{creation.time_ms}.{creation.sequence}"
    if bundle_id.fragment_offset is not None:
        key += f"|{bundle_id.fragment_offset}+{bundle_id.fragment_length}"
    return key


def key_of(bundle: Bundle) -> str:
    """``bundle_key(bundle.bundle_id)``, read from the primary block directly (once per
    received bundle: no ``BundleID`` built)."""
    primary = bundle.primary
    creation = primary.creation
    key = f"{primary.source}|{creation.time_ms}.{creation.sequence}"
    if primary.fragment_offset is not None:
        key += f"|{primary.fragment_offset}+{len(bundle.payload)}"
    return key


_FRAGMENT_KEY = re.compile(r"\|\d+\+\d+\Z")


def is_fragment_key(key: str) -> bool:
    """Whether ``key`` (from :func:`bundle_key`) names a fragment: its last part is
    ``offset+length`` (a whole bundle's ends with ``time.sequence``)."""
    return _FRAGMENT_KEY.search(key) is not None


def expiry_of(bundle: Bundle, received_at: float) -> float:
    """When ``bundle`` expires (unix seconds). RFC 9171 §4.2.2: a bundle's lifetime counts from
    its creation time; when that is unknown (zero), §5.5 lets the agent use the Bundle Age Block:
    the bundle expires when its age exceeds its lifetime."""
    primary = bundle.primary
    if primary.creation.time_ms:
        return unix_from_dtn_time(primary.creation.time_ms + primary.lifetime_ms)
    age_ms = bundle.bundle_age_ms or 0
    return received_at + (primary.lifetime_ms - age_ms) / 1000


def stored_bundle_for(
    bundle: Bundle,
    size: int,
    *,
    received_at: float,
    state: BundleState,
    previous: str | None = None,
    custody: bool = False,
    key: str | None = None,
) -> StoredBundle:
    """The store record of a decoded bundle whose encoding is ``size`` bytes long (``key``:
    its :func:`bundle_key`, when the caller has it already)."""
    primary = bundle.primary
    extra: dict[str, str] = {}
    flags = int(primary.flags)
    if flags & _REPORT_REQUESTS and not primary.report_to.is_null:
        extra[EXTRA_FLAGS] = str(flags)
    if previous is not None:
        extra[EXTRA_PREVIOUS] = previous
    if bundle.find_block(BlockType.BUNDLE_AGE) is not None:
        extra[EXTRA_AGE] = "1"
    return StoredBundle(
        key=key_of(bundle) if key is None else key,
        # Interned: thousands of stored bundles share a few destinations and sources.
        destination=sys.intern(str(primary.destination)),
        source=sys.intern(str(primary.source)),
        size=size,
        received_at=received_at,
        expires_at=expiry_of(bundle, received_at),
        state=state,
        custody=custody,
        extra=extra,
    )


def stored_flags(extra: Mapping[str, str]) -> int:
    """The bundle flags recorded by :func:`stored_bundle_for` (0 when no report can be due),
    as a plain ``int`` (flag tests on the hot path need no enum arithmetic)."""
    text = extra.get(EXTRA_FLAGS)
    return int(text) if text else 0
