"""The contract every bundle store keeps (:class:`BundleStore`).

The agent accepts a bundle from a convergence layer, calls :meth:`BundleStore.put`, and only when
``put`` has returned sends the final TCPCLv4 XFER_ACK (RFC 9174 §5.2.3): what a store has
acknowledged must survive ``kill -9`` and a restart (for a persistent store). Before receiving a
transfer it may ask :meth:`BundleStore.can_accept` or hold space with :meth:`BundleStore.reserve`
and refuse with XFER_REFUSE "No Resources" (RFC 9174 §5.2.4) when the store is full.

Rules shared by all implementations:

* Methods that read or change stored data are ``async``; bookkeeping that never touches the disk
  (``can_accept``, ``reserve``, ``statistics``) is synchronous.
* A mutation is visible to queries once its ``await`` returns, not before; a persistent store
  changes what queries see only after the change is durable.
* Mutations are atomic: after cancellation or an error they have happened fully or not at all.
  A persistent store finishes a mutation it has already handed to the disk even if the caller is
  cancelled meanwhile (the caller still sees :class:`trio.Cancelled`): a put the agent was
  cancelled out of may therefore be stored — harmless, the bundle ID de-duplicates it.
* Duplicates are normal in a DTN: ``put`` of a stored key changes nothing and returns ``False``.
* After :meth:`BundleStore.close` every method raises :class:`StoreClosedError`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Protocol, Self

from .errors import StoreError
from .quota import Reservation
from .stored_bundle import BundleState, StoredBundle, StoreStatistics

__all__ = ["BundleStore", "PutItem"]

PutItem = tuple[StoredBundle, bytes, Reservation | None]
"""One bundle for :meth:`BundleStore.put_many`: its record, its bytes, and the reservation its
space comes from (``None``: from the quota)."""


class BundleStore(Protocol):
    """A store of bundles: raw bytes plus :class:`StoredBundle` metadata, keyed by bundle ID."""

    async def put(
        self, meta: StoredBundle, raw: bytes, *, reservation: Reservation | None = None
    ) -> bool:
        """Store ``raw`` under ``meta.key``; durable when it returns. ``True`` if stored,
        ``False`` if that key was already stored (nothing changed; that copy is durable too).

        The space comes from ``reservation`` if given (grown if ``raw`` is larger; consumed
        whatever happens), else from the quota. Raises :class:`StoreFullError` if the bundle
        does not fit the quota or the disk is full — nothing is left behind then — and
        :class:`ValueError` if ``meta.size != len(raw)``.
        """
        ...

    async def put_many(self, items: Sequence[PutItem]) -> list[bool | StoreError]:
        """:meth:`put` of several bundles at once — for a persistent store, in one group commit
        (one fsync) — each durable when it returns. Per item, in order: ``True`` (stored),
        ``False`` (already stored) or the :class:`StoreError` its ``put`` would have raised
        (:class:`StoreFullError` when it does not fit); one item's failure does not affect the
        others. Every reservation is consumed. Raises :class:`ValueError` before storing
        anything if an item's ``meta.size`` is not its length.
        """
        ...

    async def get(self, key: str) -> bytes | None:
        """The raw bytes of bundle ``key``, or ``None`` if it is not stored."""
        ...

    async def meta(self, key: str) -> StoredBundle | None:
        """The metadata of bundle ``key``, or ``None`` if it is not stored."""
        ...

    async def contains(self, key: str) -> bool:
        """Whether bundle ``key`` is stored (for de-duplication of received bundles)."""
        ...

    async def update(self, meta: StoredBundle) -> None:
        """Replace the metadata of the stored bundle ``meta.key`` (durable when it returns).

        Raises :class:`BundleNotFoundError` if it is not stored, :class:`ValueError` if
        ``meta.size`` differs from the stored size (the bytes never change).
        """
        ...

    async def delete(self, key: str) -> bool:
        """Remove bundle ``key`` (durable when it returns); ``False`` if it was not stored."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> list[bool]:
        """:meth:`delete` of several bundles at once (one group commit for a persistent store):
        per key, whether it was stored."""
        ...

    async def delete_later(self, keys: Sequence[str]) -> list[bool]:
        """Remove bundles whose fate is settled (delivered, forwarded, released) without
        waiting for the disk: gone from queries, :meth:`get` and the quota at once, from the
        disk with the next group commit or :meth:`flush`; per key, whether it was stored. A
        crash before that brings them back (a duplicate, never a loss)."""
        ...

    async def flush(self) -> None:
        """Commit what :meth:`delete_later` left for later."""
        ...

    async def query(
        self,
        *,
        destination: str | None = None,
        destination_prefix: str | None = None,
        states: Collection[BundleState] | None = None,
        limit: int | None = None,
    ) -> list[StoredBundle]:
        """Bundles matching all given criteria, oldest ``received_at`` first.

        ``destination`` is an exact EID; ``destination_prefix`` a plain text prefix that the
        caller ends at a component boundary (``"dtn://node/"``, ``"ipn:5."``) to select a whole
        node. E.g. on contact with a neighbour: ``query(destination_prefix="dtn://n/",
        states={BundleState.PENDING_FORWARD})``.
        """
        ...

    async def expired(self, now: float, *, limit: int | None = None) -> list[StoredBundle]:
        """Bundles with ``expires_at <= now`` (unix seconds), earliest first."""
        ...

    async def due_for_retry(self, now: float, *, limit: int | None = None) -> list[StoredBundle]:
        """Bundles with ``next_retry_at <= now``, earliest first."""
        ...

    async def next_deadline(self) -> float | None:
        """The earliest ``expires_at`` or ``next_retry_at`` of any stored bundle (``None`` if
        none): the agent's timer task sleeps until then."""
        ...

    def can_accept(self, size: int) -> bool:
        """Whether a bundle of ``size`` bytes would fit now (quota only; the disk may still be
        full). For refusing a transfer before receiving it."""
        ...

    def reserve(self, size: int) -> Reservation:
        """Hold space for one bundle of ``size`` bytes until it is put or the reservation is
        released; :class:`StoreFullError` if it does not fit."""
        ...

    def statistics(self) -> StoreStatistics:
        """A snapshot of contents and counters."""
        ...

    async def close(self) -> None:
        """Finish operations in progress, then release everything. Idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
