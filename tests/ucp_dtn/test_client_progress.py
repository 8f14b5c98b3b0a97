"""Progress of the client's transfers: :class:`TransferWatch` figures from a real node's
counters, and the terminal display (only on a terminal, never with ``--quiet``)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from convergence.lossy import LinkProfile, LossyRelay
from ucp_dtn.cli.progress import show_transfers
from ucp_dtn.client.progress import TransferFigures, TransferWatch

from .agent_support import start_node, wait_until

SIZE = 1_500_000
RATE = 2e6


async def _two_nodes(nursery: trio.Nursery, tmp_path: Path) -> tuple[Any, Any]:
    b = await start_node(nursery, "b", workdir=tmp_path / "b")
    relay = LossyRelay(target=b.address, link=LinkProfile(seed=1, bandwidth=RATE))
    port = await nursery.start(relay.run)
    a = await start_node(nursery, "a", workdir=tmp_path / "a", static_peers=(("127.0.0.1", port),))
    return a, b


async def test_upload_and_download_figures_follow_the_transfer(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            a, b = await _two_nodes(nursery, tmp_path)
            registration = b.node.register("dtn://b/app")
            up = TransferWatch(SimpleNamespace(node=a.node))  # type: ignore[arg-type]
            down = TransferWatch(SimpleNamespace(node=b.node))  # type: ignore[arg-type]
            up.start()
            down.start()
            await a.node.send("dtn://b/app", os.urandom(SIZE))
            seen: list[tuple[TransferFigures, TransferFigures]] = []
            delivered = False
            while not delivered:
                with trio.move_on_after(0.2):
                    delivery = await registration.receive()
                    await delivery.done()
                    delivered = True
                seen.append((await up.upload(), down.download()))
            uploads = [u for u, _ in seen]
            # Midway: part done, the rest known to be left, a rate near the link's.
            midway = [u for u in uploads if u.done > 0 and u.left]
            assert midway, uploads
            assert all(u.total is not None and u.total >= SIZE for u in midway)
            assert any(0.3 * RATE < u.rate < 1.5 * RATE for u in midway)
            assert any(u.eta_s is not None and 0 < u.eta_s < 5 for u in midway)
            await wait_until(lambda: a.node.statistics().stored_bundles == 0)
            final_up = await up.upload()
            assert final_up.done >= SIZE and final_up.left == 0
            final_down = down.download()
            assert final_down.done >= SIZE
            # The incoming transfer announced its length: the total was known on the way.
            assert any(d.total is not None and d.total >= SIZE for _, d in seen if d.done)
            nursery.cancel_scope.cancel()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_display_shows_a_bar_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            a, b = await _two_nodes(nursery, tmp_path)
            registration = b.node.register("dtn://b/app")
            session = SimpleNamespace(node=a.node)
            async with show_transfers(session):  # type: ignore[arg-type]
                # Long enough (1.5 s) to be more than a moment.
                await a.node.send("dtn://b/app", os.urandom(2 * SIZE))
                delivery = await registration.receive()
                await delivery.done()
            shown = terminal.getvalue()
            assert "uploading" in shown and "MB" in shown
            # --quiet (enabled=False): nothing at all.
            terminal.truncate(0)
            terminal.seek(0)
            async with show_transfers(session, enabled=False):  # type: ignore[arg-type]
                await a.node.send("dtn://b/app", os.urandom(SIZE))
                delivery = await registration.receive()
                await delivery.done()
            assert terminal.getvalue() == ""
            nursery.cancel_scope.cancel()


def test_ucp_nodes_shows_transfers_in_progress_per_peer() -> None:
    from ucp_dtn.appapi import NodeInfo
    from ucp_dtn.cli.nodes import format_node_info

    peer = {
        "node_id": "dtn://b/",
        "address": ["127.0.0.1", 4556],
        "active": True,
        "transfers": [
            {"outgoing": True, "done": 10_485_760, "total": 41_943_040, "seconds": 5.0},
            {"outgoing": False, "done": 1_048_576, "total": None, "seconds": 2.0},
        ],
    }
    statistics = {
        "incoming_transfers": 1,
        "incoming_memory_bytes": 0,
        "incoming_spooled_bytes": 1_048_576,
    }
    text = format_node_info(NodeInfo("dtn://a/", [peer], [], statistics, {}, []))
    assert "sending 10.0 MiB of 40.0 MiB (25%) at 2.0 MiB/s" in text
    assert "receiving 1.0 MiB at 512.0 KiB/s" in text
    assert "incoming: 1 transfers, 0 B in memory, 1.0 MiB in spool files" in text
