"""``ucp send --bib KEY --bcb KEY`` and what ``ucp recv`` says the daemon verified, against an
in-process node with a security policy (the command runs in a worker thread)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from ucp_dtn.agent import BundleNode, NodeConfig
from ucp_dtn.appapi import AppApiServer
from ucp_dtn.cli import main

from .security_support import ACCEPTOR_RULE, policy, write_keys

WAIT = 20
SELF_ACCEPTOR = ACCEPTOR_RULE.replace("dtn://c/*", "dtn://a/*")
"""Node a accepts what it sends itself (one node is enough to see both ends)."""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[BundleNode, Path]]:
    write_keys(tmp_path)
    config = NodeConfig(
        "dtn://a/", None, listen=(("127.0.0.1", 0),), security=policy(tmp_path, SELF_ACCEPTOR)
    )
    node = BundleNode(config)
    path = tmp_path / "api.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await nursery.start(AppApiServer(node, path).run)
        yield node, path
        nursery.cancel_scope.cancel()


async def ucp(*argv: str) -> int:
    with trio.fail_after(WAIT):
        status: int = await trio.to_thread.run_sync(main, list(argv))
    return status


async def test_send_with_named_keys_and_recv_says_what_was_verified(
    api: tuple[BundleNode, Path], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    node, path = api
    socket = ("--socket", str(path))
    payload = tmp_path / "payload"
    payload.write_bytes(b"sealed and signed")
    for _ in range(2):
        status = await ucp(
            "send",
            "-d",
            "dtn://a/in",
            "--bib",
            "a-c-mac",
            "--bcb",
            "a-c-aes",
            str(payload),
            *socket,
        )
        assert status == 0
    capsysbinary.readouterr()
    assert await ucp("recv", "-e", "in", "--count", "1", *socket) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"sealed and signed"
    assert sorted(captured.err.decode().splitlines()) == [
        "ucp recv: confidentiality of block 3 decrypted (key a-c-aes, source dtn://a/, context 2)",
        "ucp recv: confidentiality of the payload decrypted (key a-c-aes, source dtn://a/, "
        "context 2)",
        "ucp recv: integrity of the payload verified (key a-c-mac, source dtn://a/, context 1)",
    ]
    assert await ucp("recv", "-e", "in", "--count", "1", "--json", *socket) == 0
    record = json.loads(capsysbinary.readouterr().out)
    assert {
        (item["service"], item["target"], item["outcome"], item["key"])
        for item in record["security"]
    } == {
        ("integrity", 1, "verified", "a-c-mac"),
        ("confidentiality", 1, "decrypted", "a-c-aes"),
        ("confidentiality", 3, "decrypted", "a-c-aes"),
    }
    assert node.statistics().delivered == 2


async def test_a_key_the_daemon_does_not_have_is_one_line(
    api: tuple[BundleNode, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = api
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    status = await ucp(
        "send", "-d", "dtn://a/in", "--bcb", "nope", str(payload), "--socket", str(path)
    )
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("ucp send: error: no security key named 'nope' (known: a-c-aes, a-c-mac)")
    assert err.count("\n") == 1
