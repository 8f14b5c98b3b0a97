"""Space accounting: a store's byte/bundle quota and reservations against it.

A TCPCLv4 receiver learns a transfer's length before the bytes arrive (the Transfer Length
extension of the first XFER_SEGMENT, RFC 9174 §5.2.5) and may refuse the transfer right away with
XFER_REFUSE "No Resources" (RFC 9174 §5.2.4). :meth:`Quota.reserve` lets the agent claim that
space up front, so concurrent transfers can never together overrun the quota; the reservation is
handed to ``put`` and turns into stored bytes when the bundle is durable.

Committed usage comes from the store's :class:`BundleIndex`; this module adds only what is
promised but not yet stored. Everything here is synchronous bookkeeping on the event loop.
"""

from __future__ import annotations

from types import TracebackType

from .errors import StoreFullError
from .index import BundleIndex

__all__ = ["Quota", "Reservation"]


class Reservation:
    """Space promised to one bundle that is not stored yet (from :meth:`BundleStore.reserve`).

    Pass it to ``put(..., reservation=r)``; ``put`` consumes it whatever the outcome. A
    reservation that is not used must be released: call :meth:`release` or use it as a context
    manager (``with store.reserve(n) as r: ...``). Releasing twice is harmless.
    """

    __slots__ = ("_quota", "_released", "_size")

    def __init__(self, quota: Quota, size: int) -> None:
        self._quota = quota
        self._size = size
        self._released = False

    @property
    def size(self) -> int:
        """Bytes currently reserved (0 once released)."""
        return 0 if self._released else self._size

    @property
    def released(self) -> bool:
        """Whether the space has been given back (or consumed by ``put``)."""
        return self._released

    def grow(self, size: int) -> None:
        """Raise the reservation to ``size`` bytes if that fits; :class:`StoreFullError` if not.

        ``put`` calls this when the bundle turned out larger than announced.
        """
        if self._released:
            raise ValueError("reservation already released")
        if size > self._size:
            self._quota.claim(size - self._size, bundles=0)
            self._size = size

    def split(self, size: int) -> Reservation:
        """Move ``size`` of the reserved bytes (all if fewer are left) into a new reservation
        for one more bundle, e.g. one of several fragments made from what this reservation
        held; :class:`StoreFullError` if the bundle quota has no room for one more bundle."""
        if self._released:
            raise ValueError("reservation already released")
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self._quota.claim(0, bundles=1)
        moved = min(size, self._size)
        self._size -= moved
        return Reservation(self._quota, moved)

    def release(self) -> None:
        """Give the reserved space back. Idempotent."""
        if not self._released:
            self._released = True
            self._quota.unclaim(self._size, bundles=1)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<Reservation size={self._size} released={self._released}>"


class Quota:
    """Limits on stored plus reserved bytes (and optionally bundles)."""

    __slots__ = ("_index", "quota_bundles", "quota_bytes", "refused", "reserved_bundles",
                 "reserved_bytes")  # fmt: skip

    def __init__(self, index: BundleIndex, quota_bytes: int, quota_bundles: int | None) -> None:
        if quota_bytes < 0:
            raise ValueError(f"quota_bytes must be >= 0, got {quota_bytes}")
        if quota_bundles is not None and quota_bundles < 0:
            raise ValueError(f"quota_bundles must be >= 0, got {quota_bundles}")
        self._index = index
        self.quota_bytes = quota_bytes
        """Most bytes stored plus reserved."""
        self.quota_bundles = quota_bundles
        """Most bundles stored plus reserved, or ``None`` for no limit."""
        self.reserved_bytes = 0
        """Bytes held by live reservations (including puts in progress)."""
        self.reserved_bundles = 0
        """Live reservations (each stands for one future bundle)."""
        self.refused = 0
        """Claims refused for lack of space since creation."""

    @property
    def free_bytes(self) -> int:
        """Bytes that can still be claimed."""
        return max(0, self.quota_bytes - self._index.total_bytes - self.reserved_bytes)

    def fits(self, size: int, *, bundles: int = 1) -> bool:
        """Whether ``size`` more bytes and ``bundles`` more bundles fit under the quota."""
        if size > self.quota_bytes - self._index.total_bytes - self.reserved_bytes:
            return False
        if self.quota_bundles is None or bundles == 0:
            return True
        return len(self._index) + self.reserved_bundles + bundles <= self.quota_bundles

    def claim(self, size: int, *, bundles: int) -> None:
        """Hold ``size`` bytes and ``bundles`` bundle slots, or raise :class:`StoreFullError`."""
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        if not self.fits(size, bundles=bundles):
            self.refused += 1
            free = self.free_bytes
            if size <= free:
                stored = len(self._index) + self.reserved_bundles
                message = f"store full: bundle quota of {self.quota_bundles} reached ({stored})"
            else:
                message = f"store full: {size} bytes needed, {free} of {self.quota_bytes} free"
            raise StoreFullError(message, needed=size, available=free)
        self.reserved_bytes += size
        self.reserved_bundles += bundles

    def unclaim(self, size: int, *, bundles: int) -> None:
        """Return what :meth:`claim` held."""
        self.reserved_bytes -= size
        self.reserved_bundles -= bundles

    def reserve(self, size: int) -> Reservation:
        """Claim space for one bundle of ``size`` bytes; :class:`StoreFullError` if it won't fit."""
        self.claim(size, bundles=1)
        return Reservation(self, size)
