"""Bundles cross a link that keeps dropping, with no loss and no corruption.

A sender keeps every bundle until a session acknowledged it in full; when a session dies it
sends the unacknowledged ones again on a new one. The receiver decodes each transfer as BPv7
(CRC-checked: corruption would show), keeps one copy per bundle ID and acknowledges every copy,
duplicates included (a final XFER_ACK lost in a cut makes the sender try again).

* In process, on trio's virtual clock: 1,000 bundles from 1 byte to 5 MiB over
  :class:`~convergence.lossy.LossyStream` connections of one shared link that cuts every few
  seconds (and at fixed byte counts, so cuts fall mid-transfer), with latency and a bandwidth cap.
* Over real loopback sockets: the same through :class:`~convergence.lossy.LossyRelay` between a
  :class:`TcpclListener` and :func:`open_link`, with cuts at byte counts.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio
import trio.testing

from bpv7 import Bundle, BundleID, CreationTimestamp, decode_bundle
from convergence.lossy import LinkProfile, LossyLink, LossyRelay, open_lossy_stream_pair
from convergence.tcpcl.link import LinkConfig, TcpclLink, TransferHandle, TransferOutcome
from convergence.tcpcl.link_errors import LinkClosedError, LinkError
from convergence.tcpcl.listener import TcpclListener, open_link, open_stream_link

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
SENDER = LinkConfig("dtn://sender/", keepalive_s=5)
RECEIVER = LinkConfig("dtn://receiver/", keepalive_s=5)


def make_bundles(seed: int, count: int, *, large: int, largest: int) -> dict[BundleID, bytes]:
    """``count`` encoded bundles: payloads log-uniform from 1 byte to 64 KiB, except ``large``
    of them log-uniform from 1 MiB to ``largest`` — moderate bytes in total, all sizes met. The
    first payload is 1 byte long, one big one exactly ``largest``."""
    rng = random.Random(seed)
    bundles: dict[BundleID, bytes] = {}
    big = rng.sample(range(1, count), large)
    for index in range(count):
        low, high = (MIB, largest) if index in big else (1, 64 * 1024)
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        if index == 0:
            size = 1
        elif index == big[0]:
            size = largest
        bundle = Bundle.build(
            source="dtn://sender/app",
            destination="dtn://receiver/sink",
            payload=rng.randbytes(size),
            creation=CreationTimestamp(800_000_000_000, index),
            lifetime_ms=86_400_000,
        )
        bundles[bundle.bundle_id] = bundle.encode()
    return bundles


class Receiver:
    """Keeps one copy of each bundle; acknowledges every transfer of a valid bundle."""

    def __init__(self) -> None:
        self.store: dict[BundleID, bytes] = {}
        self.duplicates = 0
        self.sessions = 0

    async def serve(self, link: TcpclLink) -> None:
        self.sessions += 1
        async for transfer in link:
            bundle = decode_bundle(transfer.data)  # a corrupted bundle fails here (CRC)
            if bundle.bundle_id in self.store:
                self.duplicates += 1
            else:
                self.store[bundle.bundle_id] = transfer.data  # "durably stored"
            await transfer.accept()


class Sender:
    """Keeps each bundle until acknowledged; sends what is left on each new session."""

    def __init__(self, bundles: dict[BundleID, bytes], *, window: int = 64) -> None:
        self.pending = dict(bundles)
        self.sessions = 0
        self.failed_attempts = 0
        self.resent = 0
        self._window = window
        self._sent_before: set[BundleID] = set()

    async def run(
        self,
        connect: Callable[[], AbstractAsyncContextManager[TcpclLink]],
        *,
        backoff: float,
    ) -> None:
        while self.pending:
            try:
                async with connect() as link:
                    self.sessions += 1
                    await self._send_all(link)
            except LinkError as exc:
                self.failed_attempts += 1
                logger.info("session failed (%d left): %s", len(self.pending), exc)
                await trio.sleep(backoff)

    async def _send_all(self, link: TcpclLink) -> None:
        in_flight: dict[BundleID, TransferHandle] = {}
        queue = list(self.pending)

        async def settle(bundle_id: BundleID) -> None:
            result = await in_flight.pop(bundle_id).wait()
            assert result.outcome is TransferOutcome.ACKED
            del self.pending[bundle_id]

        try:
            for bundle_id in queue:
                while len(in_flight) >= self._window:
                    await settle(next(iter(in_flight)))
                if bundle_id in self._sent_before:
                    self.resent += 1
                self._sent_before.add(bundle_id)
                in_flight[bundle_id] = link.start_send(self.pending[bundle_id])
            while in_flight:
                await settle(next(iter(in_flight)))
        except LinkClosedError:
            # The session died: whatever it did not acknowledge is still pending, and the link
            # reports it (handles that completed before the end are not).
            unacknowledged = link.unacknowledged()
            for handle in in_flight.values():
                if handle.result is None:
                    assert handle.data in unacknowledged


async def test_thousand_bundles_cross_a_dropping_link_in_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bundles = make_bundles(1, 1000, large=6, largest=5 * MIB)
    payloads = sorted(len(decode_bundle(b).payload) for b in bundles.values())
    assert payloads[0] == 1 and payloads[-1] == 5 * MIB
    sizes = [len(b) for b in bundles.values()]
    profile = LinkProfile(
        seed=7,
        drop_every=3.0,
        cut_after_bytes=(2_500_000, 300_000, 6_000_000),
        latency=0.005,
        jitter=0.002,
        bandwidth=8 * MIB,
    )
    link = LossyLink(profile, name="lossy")
    sender = Sender(bundles)
    receiver = Receiver()

    @asynccontextmanager
    async def connect() -> AsyncIterator[TcpclLink]:
        async with open_lossy_stream_pair(link) as (near, far), trio.open_nursery() as nursery:

            async def passive() -> None:
                try:
                    async with open_stream_link(far, RECEIVER, active=False) as session:
                        await receiver.serve(session)
                except LinkError as exc:
                    logger.info("receiver session failed: %s", exc)

            nursery.start_soon(passive)
            async with open_stream_link(near, SENDER, active=True) as session:
                yield session

    start = trio.current_time()
    await sender.run(connect, backoff=0.5)
    elapsed = trio.current_time() - start

    assert receiver.store == bundles  # nothing lost, nothing corrupted
    stats = link.statistics()
    assert stats.cuts >= 4  # the link really dropped, mid-transfer
    assert sender.sessions >= 4 and sender.resent > 0
    logger.info(
        "%d bundles, %.1f MiB in %.1f virtual s: %d sessions, %d failed attempts, %d cuts, "
        "%d resent, %d duplicates",
        len(bundles),
        sum(sizes) / MIB,
        elapsed,
        sender.sessions,
        sender.failed_attempts,
        stats.cuts,
        sender.resent,
        receiver.duplicates,
    )


async def test_bundles_cross_a_lossy_relay_over_real_sockets() -> None:
    bundles = make_bundles(2, 150, large=3, largest=2 * MIB)
    receiver = Receiver()
    sender = Sender(bundles, window=16)
    listener = TcpclListener(RECEIVER, receiver.serve)
    # Each of the first connections is cut once it carried so many bytes (both ways).
    profile = LinkProfile(seed=3, cut_after_bytes=(150_000, 1_200_000, 40_000, 2_500_000))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(listener.run)
            relay = LossyRelay(target=(host, port), link=profile, name="relay")
            relay_port = await nursery.start(relay.run)

            def connect() -> AbstractAsyncContextManager[TcpclLink]:
                return open_link("127.0.0.1", relay_port, SENDER)

            await sender.run(connect, backoff=0.05)
            nursery.cancel_scope.cancel()
    assert receiver.store == bundles
    assert relay.statistics().cuts >= 4
    assert sender.sessions >= 5 and sender.resent > 0
