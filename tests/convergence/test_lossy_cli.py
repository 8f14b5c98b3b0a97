"""``python -m convergence.lossy``: arguments, the schedule listing, and the relay as a process."""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys

import pytest
import trio

from convergence.lossy import LinkProfile, Window
from convergence.lossy.cli import build_parser, main, profile_from_args

COMMAND = [sys.executable, "-m", "convergence.lossy"]


def test_flags_make_a_profile() -> None:
    args = build_parser().parse_args(
        shlex.split(
            "--target 127.0.0.1 --seed 7 --drop-every 5s --latency 20ms --jitter 5ms "
            "--bandwidth 1MB/s --down 30s-40s,60s-65s --stall-every 1m --stall-for 250ms "
            "--stall 1s-2s --cut-at 3s --cut-after-bytes 64KiB --down-every 1h --down-for 1m"
        )
    )
    assert profile_from_args(args) == LinkProfile(
        seed=7,
        drop_every=5.0,
        cut_at=(3.0,),
        cut_after_bytes=(65536,),
        stall_every=60.0,
        stall_for=0.25,
        stalls=(Window(1, 2),),
        down_every=3600.0,
        down_for=60.0,
        down=(Window(30, 40), Window(60, 65)),
        latency=0.02,
        jitter=0.005,
        bandwidth=1e6,
    )


def test_schedule_listing_follows_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    def listing(seed: str) -> str:
        flags = ["--seed", seed, "--drop-every", "5s", "--stall-every", "20s", "--down", "30s-40s"]
        assert main([*flags, "--schedule", "2m"]) == 0
        return capsys.readouterr().out

    first = listing("7")
    assert first == listing("7")
    assert first != listing("8")
    assert "       30s  down for 10s\n" in first
    assert re.search(r"^ +[\d.]+s  cut$", first, re.MULTILINE)
    assert re.search(r"stall for 1s$", first, re.MULTILINE)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--target is required"),
        (["--target", "h:1", "--latency", "5q"], "argument --latency: bad duration '5q'"),
        (["--target", "h:1", "--down", "5s-2s"], "ends before it starts"),
        (["--target", "h:1", "--bandwidth", "0"], "greater than zero"),
        (["--target", "h:1", "--drop-every", "0s"], "drop_every must be"),
        (["--target", "h:99999"], "bad port"),
        (["--target", "h:1", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("python -m convergence.lossy: error: ")
    assert message in error


def test_listen_failure_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*COMMAND, "--listen", f"127.0.0.1:{port}", "--target", "127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "error:" in done.stderr


async def _echo(stream: trio.SocketStream) -> None:
    try:
        while data := await stream.receive_some():
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass


async def _exchange(port: int, payload: bytes) -> bytes:
    received = bytearray()
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(payload)
        try:
            while len(received) < len(payload) and (data := await stream.receive_some()):
                received += data
        except trio.BrokenResourceError:
            pass
    return bytes(received)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_command_relays_then_stops_on_signal(
    nursery: trio.Nursery, signum: signal.Signals
) -> None:
    listeners = await nursery.start(trio.serve_tcp, _echo, 0)
    target = listeners[0].socket.getsockname()[1]
    argv = [
        *COMMAND,
        "--listen=127.0.0.1:0",
        f"--target=127.0.0.1:{target}",
        "--seed=7",
        "--latency=5ms",
        "--jitter=2ms",
        "--cut-after-bytes=1000",
        "-v",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        with trio.fail_after(20):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some()
                assert chunk, "the relay exited before printing its address"
                line += chunk
            match = re.fullmatch(rb"listening on 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+)\n", line)
            assert match is not None, line
            port = int(match.group(1))
            assert int(match.group(2)) == target
            # The first connection is cut after 1000 bytes; the second is not.
            assert len(await _exchange(port, bytes(5000))) < 1000
            payload = os.urandom(50_000)
            assert await _exchange(port, payload) == payload
            process.send_signal(signum)
            assert await process.wait() == 0
            errors = b""
            while chunk := await process.stderr.receive_some():
                errors += chunk
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.aclose()
        await process.stderr.aclose()
    log = errors.decode()
    assert "connection #0 cut (byte budget spent)" in log
    assert re.search(r"2 connections, 0 refused, 1 cut", log), log
