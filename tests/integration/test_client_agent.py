"""The client agent's life: one per home however many commands start it at once, gone when idle
or when its home is deleted, and replaced when a command of other code asks it."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import trio

from ucp_dtn.client.agent_protocol import (
    PROTOCOL_VERSION,
    FrameDecoder,
    encode_frame,
    socket_address,
)

from .daemons import run_ucp
from .ucp_support import explain

NOWHERE = "tcp://127.0.0.1:1"
"""A --via nobody answers: ``ucp jobs`` reads only the journal, but a home needs a way out."""


def env(**more: str) -> dict[str, str]:
    return {**os.environ, **more}


async def agent_pid(home: Path) -> int | None:
    done = await run_ucp("agent", "status", "--json", "--home", str(home))
    if done.returncode != 0:
        return None
    pid: int = json.loads(done.stdout)["pid"]
    return pid


async def wait_gone(home: Path, timeout: float) -> None:
    with trio.fail_after(timeout):
        while await agent_pid(home) is not None:
            await trio.sleep(0.2)


async def test_commands_started_at_once_share_one_agent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    answers: list[int] = []

    async def jobs() -> None:
        done = await run_ucp("jobs", "--home", str(home), "--via", NOWHERE)
        assert done.stdout == b"no jobs\n", explain(done)
        answers.append(done.returncode)

    try:
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(jobs)
        assert answers == [0, 0, 0, 0]
        first = await agent_pid(home)
        assert first is not None
        again = await run_ucp("jobs", "--home", str(home), "--via", NOWHERE)
        assert again.returncode == 0 and await agent_pid(home) == first
    finally:
        await run_ucp("agent", "stop", "--home", str(home))


async def test_an_idle_agent_stops_and_so_does_one_whose_home_is_gone(tmp_path: Path) -> None:
    idle = tmp_path / "idle"
    quick = env(UCP_AGENT_IDLE="1s")
    done = await run_ucp("jobs", "--home", str(idle), "--via", NOWHERE, env=quick)
    assert done.returncode == 0, explain(done)
    assert await agent_pid(idle) is not None
    await wait_gone(idle, timeout=30)
    assert "client agent idle for" in (idle / "agent.log").read_text()

    doomed = tmp_path / "doomed"
    done = await run_ucp("jobs", "--home", str(doomed), "--via", NOWHERE)
    assert done.returncode == 0, explain(done)
    address = socket_address(doomed)
    shutil.rmtree(doomed)
    with trio.fail_after(30):
        while True:
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(address)
                except OSError:
                    break
            await trio.sleep(0.2)


async def test_an_agent_of_other_code_makes_way(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = await run_ucp("jobs", "--home", str(home), "--via", NOWHERE)
    assert done.returncode == 0, explain(done)
    old = await agent_pid(home)
    assert old is not None
    # A command of another version asks: the agent says it is stale and stops.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(socket_address(home))
        request = {"v": PROTOCOL_VERSION, "build": "other", "op": "jobs", "args": {}}
        sock.sendall(encode_frame(request))
        decoder = FrameDecoder()
        frames: list[dict[str, object]] = []
        while not frames:
            frames = decoder.feed(sock.recv(65536))
    assert frames == [{"error": "stale client agent", "status": 1, "stale": True}]
    await wait_gone(home, timeout=30)
    try:
        again = await run_ucp("jobs", "--home", str(home), "--via", NOWHERE)
        assert again.returncode == 0, explain(again)
        new = await agent_pid(home)
        assert new is not None and new != old
    finally:
        await run_ucp("agent", "stop", "--home", str(home))
