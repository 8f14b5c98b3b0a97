"""The ``ucp`` command (send, recv, nodes) against an in-process node and API server; the
command runs in a worker thread, as it would run in its own process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from bpv7 import BundleFlags
from ucp_dtn.agent import BundleNode, NodeConfig
from ucp_dtn.appapi import AppApiClient, AppApiServer
from ucp_dtn.cli import SUBCOMMANDS, build_parser, main
from ucp_dtn.cli.client_options import CLIENT_SETTINGS, settings_from
from ucp_dtn.cli.command import EXIT_INTERRUPTED, CommandError
from ucp_dtn.cli.main import parse_arguments
from ucp_dtn.client import ClientSettings

WAIT = 20


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[BundleNode, Path]]:
    node = BundleNode(
        NodeConfig("dtn://a/", None, listen=(("127.0.0.1", 0),), store_quota_bytes=50_000)
    )
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


def stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


async def test_send_from_stdin_and_from_a_file(
    api: tuple[BundleNode, Path],
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, path = api
    stdin_bytes(monkeypatch, b"from stdin")
    assert await ucp("send", "-d", "dtn://a/in", "--socket", str(path)) == 0
    first_id = capsysbinary.readouterr().out.decode().strip()
    assert first_id.startswith("dtn://a/-")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)))
    monkeypatch.setenv("UCP_BPNODE_SOCKET", str(path))  # no --socket: the environment
    status = await ucp(
        "send", "-d", "dtn://a/in", str(payload), "--lifetime", "2m", "--custody",
        "--report", "deleted,delivered", "--report", "received", "--report-to", "dtn://a/r",
    )  # fmt: skip
    assert status == 0
    second_id = capsysbinary.readouterr().out.decode().strip()
    assert second_id != first_id
    async with AppApiClient.connect(path) as client:
        registration = await client.register("in")
        with trio.fail_after(WAIT):
            first = await registration.receive()
            second = await registration.receive()
    assert first.payload == b"from stdin"
    assert second.payload == bytes(range(256))
    assert second.lifetime_ms == 120_000
    assert second.report_to == "dtn://a/r"
    wanted = (
        BundleFlags.REPORT_DELETION | BundleFlags.REPORT_DELIVERY | BundleFlags.REPORT_RECEPTION
    )
    assert second.flags & wanted == wanted
    assert node.statistics().created == 2


async def test_recv_to_stdout_files_and_json(
    api: tuple[BundleNode, Path], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    node, path = api
    for text in (b"one", b"two", b"three", b"four", b"five"):
        await node.send("dtn://a/in", text)
    socket = ("--socket", str(path))
    assert await ucp("recv", "-e", "in", "--count", "1", *socket) == 0
    assert capsysbinary.readouterr().out == b"one"
    out = tmp_path / "all.bin"
    assert await ucp("recv", "-e", "dtn://a/in", "--count", "2", "-o", str(out), *socket) == 0
    assert out.read_bytes() == b"twothree"
    assert await ucp("recv", "-e", "in", "--count", "1", "-o", str(tmp_path / "f{n}"), *socket) == 0
    assert (tmp_path / "f1").read_bytes() == b"four"
    assert await ucp("recv", "-e", "in", "--count", "1", "--json", *socket) == 0
    record = json.loads(capsysbinary.readouterr().out)
    assert record["payload"] == "Zml2ZQ=="  # "five"
    assert record["source"] == "dtn://a/" and record["payload_length"] == 4
    assert record["bundle_id"].startswith("dtn://a/-")
    assert node.statistics().delivered == 5
    assert node.statistics().stored_bundles == 0


async def test_recv_timeout(
    api: tuple[BundleNode, Path], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    node, path = api
    await node.send("dtn://a/in", b"only one")
    status = await ucp(
        "recv", "-e", "in", "--count", "2", "--timeout", "300ms", "--socket", str(path)
    )
    assert status == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b"only one"
    assert captured.err == b"ucp recv: error: timed out after receiving 1 of 2 bundles\n"
    # Without --count, the timeout just ends the command.
    assert await ucp("recv", "-e", "in", "--timeout", "200ms", "--socket", str(path)) == 0


async def test_nodes_text_and_json(
    api: tuple[BundleNode, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    node, path = api
    node.add_route("dtn://c/*", "dtn://b/")
    await node.send("dtn://c/x", b"waiting")
    assert await ucp("nodes", "--socket", str(path)) == 0
    text = capsys.readouterr().out
    assert text.startswith("node dtn://a/\n")
    assert "store: 1 bundles" in text and "1 to forward" in text
    assert "dtn://c/*  via dtn://b/  static  metric 1  waiting" in text
    assert await ucp("nodes", "--json", "--socket", str(path)) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["node_id"] == "dtn://a/"
    assert info["statistics"]["pending_forward"] == 1
    assert info["routes"][0]["pattern"] == "dtn://c/*"
    assert info["peers"] == []


async def test_nodes_to_a_pipe_closed_early_ends_quietly(
    api: tuple[BundleNode, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ucp nodes --json | head -c 1``: status 141 and nothing on stderr, as for the client
    commands (not "error: Broken pipe")."""
    _, path = api
    for argv in (["nodes", "--json"], ["nodes"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader has gone
        with open(write_end, "w", buffering=1) as closed:
            monkeypatch.setattr(sys, "stdout", closed)
            assert await ucp(*argv, "--socket", str(path)) == 141
            monkeypatch.undo()
        assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["send", "-d", "nonsense"], 1, "ucp send: error: invalid destination 'nonsense'"),
        (["send", "-d", "dtn://a/x", "/no/such/file"], 2, "ucp send: error: cannot read"),
        (["send", "-d", "dtn://a/x", "--lifetime", "soon"], 2, "argument --lifetime"),
        (["send", "-d", "dtn://a/x", "--report", "lost"], 2, "unknown report 'lost'"),
        (["send"], 2, "the following arguments are required: -d/--destination"),
        (["recv", "-e", "dtn://b/x", "--count", "1"], 1, "not an endpoint of this node"),
        (["recv", "-e", "in", "--count", "0"], 2, "count must be a positive integer"),
        (["fly"], 2, "invalid choice: 'fly'"),
        ([], 2, "the following arguments are required: COMMAND"),
    ],
)
async def test_errors_are_one_line(
    api: tuple[BundleNode, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    status: int,
    message: str,
) -> None:
    _, path = api
    stdin_bytes(monkeypatch, b"")
    monkeypatch.setenv("UCP_BPNODE_SOCKET", str(path))
    assert await ucp(*argv) == status
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


async def test_store_full_is_reported(
    api: tuple[BundleNode, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = api
    big = tmp_path / "big"
    big.write_bytes(bytes(60_000))
    assert await ucp("send", "-d", "dtn://a/in", str(big), "--socket", str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("ucp send: error: the node's store is full")
    assert err.endswith("(store-full)\n")


async def test_no_daemon(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCP_BPNODE_SOCKET", raising=False)
    assert await ucp("nodes") == 2
    assert "use --socket PATH or set UCP_BPNODE_SOCKET" in capsys.readouterr().err
    assert await ucp("nodes", "--socket", str(tmp_path / "none.sock")) == 1
    assert "is ucp-bpnode running?" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    names = [command.name for command in SUBCOMMANDS]
    assert names == [
        "submit",
        "status",
        "jobs",
        "cancel",
        "logs",
        "collect",
        "run",
        "data",
        "agent",
        "send",
        "recv",
        "nodes",
        "trust",
        "demo",
    ]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    for name in names:
        assert name in text


COMMAND_LINES = [
    ["status"],
    ["--home", "/h", "-v", "status", "--json"],
    ["status", "--via", "tcp://127.0.0.1:4556", "-vv"],
    ["submit", "plan.toml", "--wait", "5s"],
    ["run", "plan.toml", "-o", "out", "--no-agent"],
    ["jobs", "--json"],
    ["cancel", "0f0e0d0c-0b0a-0908-0706-050403020100"],
    ["logs", "0f0e0d0c-0b0a-0908-0706-050403020100"],
    ["collect", "-o", "out"],
    ["data", "ls"],
    ["agent", "stop"],
    ["send", "-d", "dtn://b/x", "payload.bin"],
    ["recv", "-e", "dtn://a/x", "--timeout", "2"],
    ["nodes"],
    ["demo", "--open"],
    ["--via", "tcp://127.0.0.1:1", "run", "p.toml", "--json"],
]
BAD_COMMAND_LINES = [[], ["nosuch"], ["status", "--bogus"], ["--bogus", "status"], ["cancel"]]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_only_the_named_subcommand_is_built_and_reads_the_same(argv: list[str]) -> None:
    """parse_arguments builds only the named subcommand's flags; what it reads is what the
    parser of every subcommand reads."""
    expected = vars(build_parser().parse_args(argv))
    assert vars(parse_arguments(argv)) == expected


@pytest.mark.parametrize("argv", BAD_COMMAND_LINES, ids=" ".join)
def test_a_bad_command_line_gets_the_full_parsers_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert message.startswith("ucp") and "error:" in message
    assert message.count("\n") == 1


# -- the client's flags: their own settings table ------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _client_settings(argv: list[str]) -> ClientSettings:
    return settings_from(build_parser().parse_args(["status", *argv]))


def test_client_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("UCP_VIA", raising=False)
    monkeypatch.delenv("UCP_BROKER", raising=False)
    assert _client_settings([]) == ClientSettings()
    given = _client_settings(
        [
            *("--home", str(tmp_path), "--via", "tcp://a:1", "--via", "b", "--discover"),
            *("--discovery-interface", "::1", "--discovery-service-type", "_t._tcp"),
            *("--broker", "dtn://hub/ucp/broker", "--wait", "1m"),
        ]
    )
    assert given == ClientSettings(
        home=tmp_path,
        via=(("a", 1), ("b", 4556)),
        discover=True,
        discovery_interfaces=("::1",),
        discovery_service_type="_t._tcp.local.",
        broker="dtn://hub/ucp/broker",
        wait_s=60.0,
        request_timeout_s=60.0,
    )
    monkeypatch.setenv("UCP_VIA", "tcp://e:1, e2")
    monkeypatch.setenv("UCP_BROKER", "dtn://env/")
    from_env = _client_settings(["--wait", "0"])
    assert from_env.via == (("e", 1), ("e2", 4556))
    assert from_env.broker == "dtn://env/"
    assert from_env.request_timeout_s == 5.0  # requests wait at least 5 s
    flags_win = _client_settings(["--via", "f:2", "--broker", "dtn://flag/"])
    assert (flags_win.via, flags_win.broker) == ((("f", 2),), "dtn://flag/")
    monkeypatch.setenv("UCP_VIA", "udp://x")
    with pytest.raises(CommandError, match=r"^\$UCP_VIA: peer 'udp://x': only tcp://") as error:
        _client_settings([])
    assert error.value.status == 2


def test_the_client_docs_list_its_flags() -> None:
    docs = (ROOT / "docs" / "client.md").read_text()
    assert CLIENT_SETTINGS.markdown() in docs, (
        "docs/client.md's flag table is out of date; paste this in:\n" + CLIENT_SETTINGS.markdown()
    )


HEAVY = (
    "trio",
    "wasmtime",
    "cryptography",
    "zeroconf",
    "pytest",
    "sqlite3",
    "bpv7",
    "convergence.tcpcl",
    "convergence.lossy",
    "ucp_dtn.agent",
    "ucp_dtn.appapi",
    "ucp_dtn.client.node",
    "ucp_dtn.daemon",
    "ucp_dtn.roles",
    "ucp_dtn.store",
    "ucp_dtn.ucp",
)
"""What ``ucp`` must not import to parse its command line (start-up time)."""


def test_the_command_line_imports_nothing_heavy() -> None:
    code = (
        "import sys; from ucp_dtn.cli.main import build_parser; "
        "build_parser().parse_args(['status', '-v']); "
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_global_flags_go_before_or_after_the_subcommand(tmp_path: Path) -> None:
    parse = build_parser().parse_args
    before = parse(["-v", "--home", str(tmp_path), "--via", "tcp://h:1", "status", "x"])
    after = parse(["status", "x", "-v", "--home", str(tmp_path), "--via", "tcp://h:1"])
    for args in (before, after):
        assert args.verbose == 1 and args.jobs == ["x"]
        assert settings_from(args) == ClientSettings(home=tmp_path, via=(("h", 1),))
    # Given on both sides, the one after the subcommand counts.
    both = parse(["--via", "tcp://h:1", "data", "ls", "--via", "tcp://k:2", "-vv"])
    assert settings_from(both).via == (("k", 2),) and both.verbose == 2
    assert parse(["--no-agent", "jobs"]).agent is False
    assert parse(["nodes", "-v"]).verbose == 1  # daemon subcommands take -v too


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("ucp (ucp-dtn) ")


def test_the_report_kinds_are_the_api_s() -> None:
    from ucp_dtn.appapi import REPORT_KINDS as API_KINDS
    from ucp_dtn.cli.send import REPORT_KINDS

    assert REPORT_KINDS == API_KINDS


def test_ctrl_c_while_the_command_imports_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ``ucp`` entry point (ucp_dtn.cli_start) takes a Ctrl-C that comes while the command's
    modules are still being imported as Ctrl-C later is taken: one line, exit status 130."""
    import builtins

    from ucp_dtn import cli_start

    real_import = builtins.__import__

    def interrupted_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ucp_dtn.cli.main":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    assert cli_start.main() == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "ucp: interrupted\n"
    monkeypatch.undo()
    monkeypatch.setattr(sys, "argv", ["ucp", "--version"])
    assert cli_start.main() == 0
