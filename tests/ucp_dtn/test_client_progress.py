"""Progress of the client's transfers: :class:`TransferWatch` figures from a real node's
counters, the ``transfer`` and ``unsent`` events the client operations send (large transfers
only, and only when asked), and the terminal display (only on a terminal, never with
``--quiet``)."""

from __future__ import annotations

import io
import os
import random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from convergence.lossy import LinkProfile, LossyRelay
from ucp_dtn.cli.progress import TransferBars, unsent_line
from ucp_dtn.client import ClientSettings
from ucp_dtn.client.node import ClientNode
from ucp_dtn.client.operations import run_operation
from ucp_dtn.client.progress import TransferFigures, TransferWatch
from ucp_dtn.roles import RoleName
from ucp_dtn.roles.runner import run_roles
from ucp_dtn.roles.settings import RoleSettings

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


async def test_operations_send_transfer_events_for_large_transfers_when_asked(
    tmp_path: Path,
) -> None:
    # A hub with the broker and datastore roles behind a 2 MB/s link; the client's node as
    # the agent runs it, and the operations the agent runs for the commands.
    blob = random.Random(5).randbytes(3 * SIZE)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            hub = await start_node(nursery, "hub")
            roles = (RoleName.BROKER, RoleName.DATASTORE)
            await nursery.start(
                run_roles, hub.node, RoleSettings(roles=roles, heartbeat_interval_s=0.2)
            )
            relay = LossyRelay(target=hub.address, link=LinkProfile(seed=2, bandwidth=RATE))
            port = await nursery.start(relay.run)
            settings = ClientSettings(home=tmp_path / "home", via=(("127.0.0.1", port),))
            async with ClientNode.open(settings, patient_drain=False) as client:
                events: list[dict[str, Any]] = []

                async def emit(event: dict[str, Any]) -> None:
                    events.append(event)

                async def operate(op: str, **args: Any) -> list[dict[str, Any]]:
                    events.clear()
                    await run_operation(client, settings, op, args, emit)
                    return [event for event in events if event["event"] == "transfer"]

                put = await operate("data-put", name="big/blob", data=blob, progress=True)
                assert put and {event["direction"] for event in put} == {"upload"}
                assert put[0]["seconds"] >= 1.0  # a moment passed before the first
                dones = [event["done"] for event in put]
                assert dones == sorted(dones) and dones[-1] > len(blob) // 2
                assert all(event["total"] >= len(blob) for event in put)
                assert not any(event["event"] == "unsent" for event in events)  # confirmed

                got = await operate("data-get", name="big/blob", output=None, progress=True)
                assert got and {event["direction"] for event in got} == {"download"}
                assert got[-1]["done"] > len(blob) // 2

                # Not asked for (not a terminal, or --quiet), or nothing large: no events.
                assert await operate("data-get", name="big/blob", output=None) == []
                assert await operate("data-put", name="small", data=b"0.7", progress=True) == []
                assert await operate("data-ls", progress=True) == []
            nursery.cancel_scope.cancel()


async def test_an_upload_left_unsent_is_reported(tmp_path: Path) -> None:
    # The broker is known (--broker) but unreachable: the put waits in the client's store.
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nowhere = await start_node(nursery, "nowhere")
            address = nowhere.address
            await nowhere.stop()
            settings = ClientSettings(
                home=tmp_path / "home", via=(address,), broker="dtn://hub/", wait_s=0.5
            )
            async with ClientNode.open(settings) as client:
                events: list[dict[str, Any]] = []

                async def emit(event: dict[str, Any]) -> None:
                    events.append(event)

                document = await run_operation(
                    client,
                    settings,
                    "data-put",
                    {"name": "big/blob", "data": bytes(SIZE), "progress": True},
                    emit,
                    node_stays=False,
                )
                assert not document["stored"]
                assert "waiting in the client's store" in document["detail"]
                [unsent] = [event for event in events if event["event"] == "unsent"]
                assert unsent["octets"] >= SIZE
            nursery.cancel_scope.cancel()
    assert unsent_line(41_943_040, agent=True) == (
        "40.0 MiB still to send: the client agent goes on sending it (ucp agent status)"
    )
    assert "the next command sends it from where it stopped" in unsent_line(SIZE, agent=False)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bars_show_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    events = [
        {"event": "transfer", "direction": "upload", "done": done, "total": 40_000_000}
        for done in (1_000_000, 11_200_000, 20_000_000)
    ]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with TransferBars() as bars:
        assert bars.enabled
        for event in events:
            bars.show(event)
        bars.show({"event": "transfer", "direction": "download", "done": 300_000, "total": None})
    shown = terminal.getvalue()
    assert "uploading" in shown and "20.0/40.0 MB" in shown
    assert "downloading" in shown
    # --quiet: nothing at all.
    terminal.truncate(0)
    terminal.seek(0)
    with TransferBars(quiet=True) as bars:
        assert not bars.enabled
        for event in events:
            bars.show(event)
    assert terminal.getvalue() == ""
    # Not a terminal: nothing either.
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not TransferBars().enabled


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
