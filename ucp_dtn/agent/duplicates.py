"""The agent's memory of bundles it has finished with, for duplicate suppression.

:class:`RecentBundles` is the bounded memory of bundle IDs the agent has finished with
(delivered, forwarded, deleted), so that a copy arriving again is recognised as a duplicate
(RFC 9171 §5.6 leaves duplicate suppression to the implementation; a DTN sees many). Bundles
still held are recognised by the store itself.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RecentBundles"]


class RecentBundles:
    """The keys of the last ``capacity`` bundles the agent finished with (LRU)."""

    __slots__ = ("_capacity", "_keys")

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        """Remember ``key`` (as the most recent)."""
        keys = self._keys
        keys[key] = None
        keys.move_to_end(key)
        if len(keys) > self._capacity:
            keys.popitem(last=False)

    def discard(self, key: str) -> None:
        """Forget ``key``."""
        self._keys.pop(key, None)
