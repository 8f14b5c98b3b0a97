"""What a TCPCLv4 link tells about transfers under way and its round-trip time (read by the
dashboard and ``ucp nodes``): :attr:`LinkStatistics.transfers` and :attr:`LinkStatistics.rtt_s`
(the peer's transfers in progress are covered in test_link_sinks.py)."""

from __future__ import annotations

import trio
import trio.testing

from convergence.tcpcl.link import LinkConfig, TcpclLink
from convergence.tcpcl.listener import TcpclListener, open_link

from .link_fixtures import link_pair

B = LinkConfig("dtn://b/")


async def test_link_lists_our_unacknowledged_transfers_with_their_progress() -> None:
    config = LinkConfig("dtn://a/", max_segment_size=1000)
    async with link_pair(config, B) as (a, b):
        assert a.statistics().transfers == ()
        handle = a.start_send(b"z" * 3500)
        transfer = await b.receive()
        await trio.testing.wait_all_tasks_blocked()
        # The final XFER_ACK waits for accept(): 3000 of 3500 octets acknowledged so far.
        (progress,) = a.statistics().transfers
        assert (progress.outgoing, progress.transfer_id, progress.done, progress.total) == (
            True,
            handle.transfer_id,
            3000,
            3500,
        )
        await transfer.accept()
        await handle.wait()
        assert a.statistics().transfers == ()
        # An in-memory stream has no TCP socket: no round-trip time to tell.
        assert a.statistics().rtt_s is None


async def test_round_trip_time_of_a_tcp_session_comes_from_the_kernel() -> None:
    received: list[bytes] = []

    async def serve(link: TcpclLink) -> None:
        async for transfer in link:
            received.append(transfer.data)
            await transfer.accept()

    listener = TcpclListener(B, serve, "127.0.0.1", 0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(listener.run)
            async with open_link("127.0.0.1", port, LinkConfig("dtn://a/")) as link:
                await link.send(b"ping")
                rtt = link.statistics().rtt_s
            nursery.cancel_scope.cancel()
    assert received == [b"ping"]
    # Measured by the kernel (at least a microsecond), whatever the machine's load.
    assert rtt is not None and rtt > 0
