"""The ``ucp-bpnode`` process: ready line, clean exit on signals, exit statuses on bad input,
and the ``ucp`` commands against it."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from .daemons import Network, parse_ready_line, run_ucp

WAIT = 30


async def test_ready_line_ucp_commands_and_sigterm(network: Network, tmp_path: Path) -> None:
    a = await network.start("a", "--roles", "broker")
    assert a.node_id == "dtn://a/"
    assert a.socket == tmp_path / "a" / "bpnode.sock"
    host, port = a.address
    assert host == "127.0.0.1" and port > 0
    with socket.create_connection(a.address, timeout=WAIT):
        pass  # the TCPCL port is open

    sent = await a.ucp("send", "-d", "dtn://a/inbox", stdin=b"payload one")
    assert sent.returncode == 0, sent.stderr
    bundle_id = sent.stdout.decode().strip()
    assert bundle_id.startswith("dtn://a/-")
    (tmp_path / "two.txt").write_bytes(b"payload two")
    sent = await a.ucp("send", "-d", "inbox", str(tmp_path / "two.txt"), "--lifetime", "1h")
    assert sent.returncode != 0  # "inbox" is not an EID
    assert sent.stderr.decode().count("\n") == 1
    sent = await a.ucp("send", "-d", "dtn://a/inbox", str(tmp_path / "two.txt"), "--lifetime", "1h")
    assert sent.returncode == 0, sent.stderr

    nodes = await a.ucp("nodes", "--json")
    assert nodes.returncode == 0, nodes.stderr
    info = json.loads(nodes.stdout)
    assert info["node_id"] == "dtn://a/"
    assert info["roles"] == ["broker"]
    assert info["statistics"]["pending_delivery"] == 2
    text = await a.ucp("nodes")
    assert b"node dtn://a/ (roles: broker)" in text.stdout and b"2 to deliver" in text.stdout

    received = await a.ucp("recv", "-e", "inbox", "--count", "2", "--timeout", "20s")
    assert received.returncode == 0, received.stderr
    assert received.stdout == b"payload onepayload two"
    # Confirmed, so gone:
    again = await a.ucp("recv", "-e", "inbox", "--count", "1", "--timeout", "1s")
    assert again.returncode == 1
    assert again.stderr == b"ucp recv: error: timed out after receiving 0 of 1 bundles\n"

    assert await a.stop() == 0
    assert not a.socket.exists()
    down = await a.ucp("nodes")
    assert down.returncode == 1 and b"is ucp-bpnode running?" in down.stderr


async def test_recv_writes_files_and_json(network: Network, tmp_path: Path) -> None:
    a = await network.start("a", in_memory=True)
    for text in (b"first", b"second", b"third"):
        assert (await a.ucp("send", "-d", "dtn://a/files", stdin=text)).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    got = await a.ucp("recv", "-e", "files", "-o", str(out / "b{n}.bin"), "--count", "2")
    assert got.returncode == 0, got.stderr
    assert (out / "b1.bin").read_bytes() == b"first"
    assert (out / "b2.bin").read_bytes() == b"second"
    got = await a.ucp("recv", "-e", "files", "--json", "--count", "1")
    record = json.loads(got.stdout)
    assert record["destination"] == "dtn://a/files"
    assert record["payload"] == "dGhpcmQ="  # base64 of "third"
    assert record["admin_record"] is False
    assert await a.stop() == 0


async def test_sigint_also_stops_cleanly(network: Network) -> None:
    a = await network.start("a", in_memory=True)
    socket_dir = a.socket.parent
    a.process.send_signal(signal.SIGINT)
    with trio.fail_after(WAIT):
        assert await a.process.wait() == 0
    assert not a.socket.exists()
    assert socket_dir == network.base  # --socket was given, the directory stays


async def test_in_memory_default_socket_is_temporary(network: Network) -> None:
    a = await network.start_raw("a", ["-n", "dtn://a/", "--in-memory", "-l", "127.0.0.1:0"])
    assert a.socket.name == "bpnode.sock"
    assert a.socket.parent.name.startswith("ucp-bpnode-")
    assert a.socket.exists()
    assert await a.stop() == 0
    assert not a.socket.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--in-memory", "--quota", "lots"], "ucp-bpnode: error: argument --quota"),
        (["-n", "dtn://a/x", "--in-memory"], "is not a node ID"),
        ([], "give a work directory"),
    ],
)
async def test_bad_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    with trio.fail_after(WAIT):
        result = await trio.run_process(
            [sys.executable, "-m", "ucp_dtn.daemon", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().count("\n") == 1
    assert message in result.stderr.decode()


async def test_startup_failures_exit_1(network: Network, tmp_path: Path) -> None:
    a = await network.start("a")
    host, port = a.address

    async def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(WAIT):
            return await trio.run_process(
                [sys.executable, "-m", "ucp_dtn.daemon", "-n", "dtn://x/", *args],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )

    # The same work directory twice.
    twice = await run("-W", str(tmp_path / "a"), "-l", "127.0.0.1:0")
    assert twice.returncode == 1
    assert b"another ucp-bpnode uses the work directory" in twice.stderr
    # A listening address in use.
    busy = await run("--in-memory", "-l", f"{host}:{port}")
    assert busy.returncode == 1, busy.stderr
    assert busy.stderr.decode().startswith("ucp-bpnode: error: ")
    assert busy.stderr.decode().count("\n") == 1
    # Another daemon's socket.
    taken = await run("--in-memory", "-l", "127.0.0.1:0", "--socket", str(a.socket))
    assert taken.returncode == 1
    assert b"another daemon is listening on" in taken.stderr
    assert await a.stop() == 0


async def test_config_file_and_environment_socket(network: Network, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'node_id = "dtn://cfg/"\nworkdir = "state"\nlisten = ["127.0.0.1:0"]\n'
        'roles = ["executor"]\nquota = "10MiB"\n[routes]\n"dtn://far/*" = "dtn://near/"\n'
    )
    daemon = await network.start_raw("cfg", ["-c", str(config)])
    assert daemon.node_id == "dtn://cfg/"
    # [routes] is the old name of [route]: still read, with a warning in the log.
    assert "'routes' is the old name of 'route'" in daemon.log.read_text()
    assert daemon.socket == tmp_path / "state" / "bpnode.sock"
    result = await run_ucp(
        "nodes", "--json", env={"UCP_BPNODE_SOCKET": str(daemon.socket), "PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["statistics"]["store_quota_bytes"] == 10 * 1024 * 1024
    assert {"pattern": "dtn://far/*", "next_hop": "dtn://near/"}.items() <= info["routes"][
        0
    ].items()
    assert await daemon.stop() == 0


async def test_ucp_without_a_socket_is_a_usage_error() -> None:
    result = await run_ucp("nodes", env={"PATH": "/usr/bin"})
    assert result.returncode == 2
    assert result.stderr == (
        b"ucp nodes: error: no daemon socket given: use --socket PATH or set UCP_BPNODE_SOCKET\n"
    )


def test_console_scripts_are_installed() -> None:
    for name in ("ucp", "ucp-bpnode"):
        path = shutil.which(name, path=str(Path(sys.executable).parent))
        if path is None:
            pytest.skip(f"{name} not installed (pip install -e .)")
        result = subprocess.run([path, "--help"], capture_output=True, check=False, timeout=WAIT)
        assert result.returncode == 0
        assert b"usage:" in result.stdout


def test_parse_ready_line() -> None:
    ready = parse_ready_line("ready node=ipn:5.0 tcpcl=127.0.0.1:1,[::1]:2 socket=/s")
    assert ready.node_id == "ipn:5.0"
    assert ready.tcpcl == (("127.0.0.1", 1), ("::1", 2))
    assert ready.socket == Path("/s")


async def test_sigterm_ends_sessions_cleanly_and_keeps_the_store(network: Network) -> None:
    b = await network.start("b")
    a = await network.start("a", "-s", b.url, "-r", "dtn://c/*=dtn://b/")
    sent = await a.ucp("send", "-d", "dtn://c/x", stdin=b"kept by b")
    assert sent.returncode == 0, sent.stderr

    async def b_holds_it() -> bool:
        info = await b.info()
        return bool(info["statistics"]["pending_forward"] == 1 and info["peers"])

    with trio.fail_after(WAIT):
        while not await b_holds_it():
            await trio.sleep(0.1)
    assert await b.stop() == 0
    # a saw a SESS_TERM, not a dropped connection.
    a_log = a.log.read_text()
    assert "session with dtn://b/" in a_log and "closed (clean)" in a_log
    assert "closed (unclean" not in a_log
    # b's store kept the bundle across the shutdown.
    b = await network.restart(b)
    assert (await b.info())["statistics"]["pending_forward"] == 1
    assert await a.stop() == 0
    assert await b.stop() == 0
