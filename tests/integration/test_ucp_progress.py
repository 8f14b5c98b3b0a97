"""``ucp`` as a person sees a large transfer: with stderr on a terminal (a pseudo-terminal here),
``ucp data put`` and ``get`` show progress bars — through the client agent and with
``--no-agent`` alike — and nothing with ``--quiet``. (Without a terminal nothing shows either:
test_transfer_cuts.py's put and get of 20 MB check that.)"""

from __future__ import annotations

import os
import pty
import random
import subprocess
import sys
from pathlib import Path

import trio

from .daemons import Network, run_ucp
from .ucp_support import explain, start_roles

MB = 1_000_000
PEER = ["--reconnect-max", "1s", "--keepalive", "5s"]


async def _on_terminal(*args: str) -> tuple[int, str, bytes]:
    """Run ``ucp ARGS`` with stderr on a pseudo-terminal: its exit status, what the terminal
    showed, and its stdout."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "ucp_dtn.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    screen = bytearray()
    stdout = bytearray()

    async def read_terminal() -> None:
        while True:
            try:
                chunk = await trio.to_thread.run_sync(os.read, master, 65536)
            except OSError:  # EIO: the command (the only writer) is gone
                return
            if not chunk:
                return
            screen.extend(chunk)

    async def read_stdout() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.receive_some(65536):
            stdout.extend(chunk)

    try:
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_terminal)
                nursery.start_soon(read_stdout)
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(master)
    return process.returncode, screen.decode(errors="replace"), bytes(stdout)


async def test_large_puts_and_gets_show_progress_on_a_terminal(
    network: Network, tmp_path: Path
) -> None:
    # The client reaches the hub (broker, datastore) over a 2 MB/s link: 4 MB take 2 s.
    hub = await start_roles(network, "hub", "broker,datastore", *PEER)
    relay = await network.relay(hub.address, "--bandwidth", "2MB/s", "--seed", "21")
    blob = random.Random(21).randbytes(4 * MB)
    (tmp_path / "blob.bin").write_bytes(blob)
    home = tmp_path / "home"
    client = ["--home", str(home), "--via", f"tcp://{relay[0]}:{relay[1]}"]

    # Through the client agent (started by this command).
    status, screen, stdout = await _on_terminal(
        "data", "put", "big/blob", str(tmp_path / "blob.bin"), *client
    )
    assert status == 0, screen
    assert stdout.decode().strip() == "stored big/blob (4000000 bytes)"
    assert "uploading" in screen and "MB" in screen, screen
    assert "still to send" not in screen  # the datastore confirmed it: all of it left

    # The command's own node (--no-agent needs the home to itself).
    stopped = await run_ucp("agent", "stop", "--home", str(home))
    assert stopped.returncode == 0, explain(stopped)
    got = tmp_path / "got.bin"
    status, screen, _ = await _on_terminal(
        "data", "get", "big/blob", "-o", str(got), "--no-agent", *client
    )
    assert status == 0, screen
    assert got.read_bytes() == blob
    assert "downloading" in screen and "MB" in screen, screen

    # --quiet: no bars.
    quiet = tmp_path / "quiet.bin"
    status, screen, _ = await _on_terminal(
        "data", "get", "big/blob", "-o", str(quiet), "--quiet", *client
    )
    assert status == 0, screen
    assert quiet.read_bytes() == blob
    assert "downloading" not in screen and "MB" not in screen, screen
