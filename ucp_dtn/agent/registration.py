"""Registrations: how an application receives the bundles for one of the node's endpoints.

RFC 9171 §3.1: a registration is "the state machine characterizing a given node's membership in
a given endpoint"; §5.7 (local delivery) hands a bundle's ADU to the application registered on
its destination, or keeps it until one registers ("Deferred delivery").

A :class:`Registration` is an async iterator of :class:`Delivery`. Bundles that waited in the
store before the registration opened come first (oldest first), then new ones as they are
stored. A delivery stays in the store until the application confirms it with
:meth:`Delivery.done`; closing the registration (or the process dying) before that leaves it
there, and the next registration of the endpoint gets it again. At most one registration per
endpoint is open at a time.

The node side is the small :class:`DeliveryBackend` interface, implemented by ``BundleNode``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import trio

from bpv7 import Bundle, BundleID, EndpointID

from .errors import RegistrationClosedError

if TYPE_CHECKING:
    from .security import SecurityCheck

__all__ = ["Accepted", "Delivery", "DeliveryBackend", "Registration"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A bundle ready for delivery, and the security operations checked to get it there."""

    bundle: Bundle
    """The bundle (reassembled, its accepted security operations removed)."""
    security: tuple[SecurityCheck, ...] = ()
    """What this node verified and decrypted (RFC 9172 security acceptor)."""


logger = logging.getLogger(__name__)


class DeliveryBackend(Protocol):
    """What a registration needs from its node."""

    async def pending_for(self, endpoint: EndpointID) -> list[str]:
        """Keys of the bundles waiting in the store for ``endpoint``, oldest first."""
        ...

    async def load_delivery(self, key: str) -> Accepted | None:
        """The bundle to deliver for ``key`` (reassembled, security operations accepted),
        ``None`` if gone or discarded."""
        ...

    async def delivered(self, key: str, bundle: Bundle) -> None:
        """The application confirmed ``key``: remove it and report delivery (§5.7)."""
        ...

    def unregister(self, registration: Registration) -> None:
        """``registration`` closed."""
        ...


class Delivery:
    """One bundle handed to an application."""

    __slots__ = ("_done", "_key", "_registration", "bundle", "security")

    def __init__(
        self,
        registration: Registration,
        key: str,
        bundle: Bundle,
        security: tuple[SecurityCheck, ...] = (),
    ) -> None:
        self._registration = registration
        self._key = key
        self._done = False
        self.bundle = bundle
        """The bundle (for fragments: the reassembled bundle)."""
        self.security = security
        """The security operations this node verified or decrypted before delivering it (RFC
        9172 security acceptor): empty when no security rule applied."""

    @property
    def payload(self) -> bytes:
        """The application data unit."""
        return self.bundle.payload

    @property
    def source(self) -> EndpointID:
        """The bundle's source node ID."""
        return self.bundle.primary.source

    @property
    def destination(self) -> EndpointID:
        """The endpoint it was delivered to."""
        return self.bundle.primary.destination

    @property
    def bundle_id(self) -> BundleID:
        """The bundle's ID."""
        return self.bundle.bundle_id

    @property
    def confirmed(self) -> bool:
        """Whether :meth:`done` has completed."""
        return self._done

    async def done(self) -> None:
        """Confirm the delivery: the bundle leaves the store and a "delivered" status report
        goes out if the bundle asked for one. Idempotent. Without it, the bundle is delivered
        again to the endpoint's next registration."""
        if self._done:
            return
        await self._registration._confirm(self._key, self.bundle)
        self._done = True

    def __repr__(self) -> str:
        return f"<Delivery {self._key} to {self.destination} ({len(self.payload)} bytes)>"


class Registration:
    """An application's registration on one endpoint of the node (see the module docstring).

    Created by ``BundleNode.register``; use ``async for delivery in registration`` or
    :meth:`receive`, and :meth:`aclose` (or ``async with``) when done.
    """

    def __init__(self, endpoint: EndpointID, backend: DeliveryBackend) -> None:
        self.endpoint = endpoint
        """The registered endpoint."""
        self._backend = backend
        self._queue: OrderedDict[str, None] = OrderedDict()
        self._known: set[str] = set()  # queued, being loaded, or handed out and not confirmed
        self._backlog_loaded = False
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.delivered = 0
        """Deliveries confirmed through this registration."""

    @property
    def closed(self) -> bool:
        """Whether the registration is closed."""
        return self._closed

    @property
    def waiting(self) -> int:
        """Bundles known to wait for this registration (not yet handed out)."""
        return len(self._queue)

    def offer(self, key: str) -> None:
        """The node stored bundle ``key`` for this endpoint (called by the node)."""
        if self._closed or key in self._known:
            return
        self._known.add(key)
        self._queue[key] = None
        self._lot.unpark_all()

    def withdraw(self, key: str) -> None:
        """Bundle ``key`` left the store otherwise (e.g. expired): do not hand it out."""
        if key in self._queue:
            del self._queue[key]
            self._known.discard(key)

    async def receive(self) -> Delivery:
        """The next bundle for this endpoint; waits until there is one. Raises
        :class:`RegistrationClosedError` once the registration is closed."""
        while True:
            if self._closed:
                raise RegistrationClosedError(f"the registration of {self.endpoint} is closed")
            if not self._backlog_loaded:
                self._backlog_loaded = True
                backlog = await self._backend.pending_for(self.endpoint)
                fresh = [key for key in backlog if key not in self._known]
                # Stored earlier than anything offered since: they go first.
                for key in reversed(fresh):
                    self._known.add(key)
                    self._queue[key] = None
                    self._queue.move_to_end(key, last=False)
                continue
            if not self._queue:
                await self._lot.park()
                continue
            key, _ = self._queue.popitem(last=False)
            accepted = await self._backend.load_delivery(key)
            if accepted is None:
                self._known.discard(key)
                continue
            if self._closed:
                self._known.discard(key)
                raise RegistrationClosedError(f"the registration of {self.endpoint} is closed")
            return Delivery(self, key, accepted.bundle, accepted.security)

    async def _confirm(self, key: str, bundle: Bundle) -> None:
        await self._backend.delivered(key, bundle)
        self._known.discard(key)
        self.delivered += 1

    def __aiter__(self) -> Registration:
        return self

    async def __anext__(self) -> Delivery:
        try:
            return await self.receive()
        except RegistrationClosedError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Close without waiting (bundles not confirmed stay in the store). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._lot.unpark_all()
        self._backend.unregister(self)

    async def aclose(self) -> None:
        """Close the registration (see :meth:`close`)."""
        self.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Registration {self.endpoint} {state}, {len(self._queue)} waiting>"
