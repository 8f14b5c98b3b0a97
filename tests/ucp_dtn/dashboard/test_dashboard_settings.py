"""``--http`` and the file's ``http`` key, the ready line's ``http=`` item, and that nothing of
the HTTP stack is imported unless the dashboard is asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ucp_dtn.daemon import SettingsError, format_ready_line, load_settings
from ucp_dtn.localnet import parse_ready_line


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("[::1]:8080", ("::1", 8080)),
        (":8080", ("127.0.0.1", 8080)),
    ],
)
def test_http_flag(text: str, address: tuple[str, int]) -> None:
    assert load_settings(["--in-memory", "--http", text]).http == address


def test_http_is_off_by_default_and_bad_values_say_why(tmp_path: Path) -> None:
    assert load_settings(["--in-memory"]).http is None
    with pytest.raises(SettingsError, match="--http: bad port"):
        load_settings(["--in-memory", "--http", "localhost:http"])
    config = tmp_path / "node.toml"
    config.write_text('in_memory = true\nhttp = "127.0.0.1:8081"\n')
    assert load_settings(["-c", str(config)]).http == ("127.0.0.1", 8081)
    assert load_settings(["-c", str(config), "--http", "9000"]).http == ("127.0.0.1", 9000)
    config.write_text("in_memory = true\nhttp = 8081\n")
    with pytest.raises(SettingsError, match="http: must be a string"):
        load_settings(["-c", str(config)])


def test_ready_line_names_the_dashboard() -> None:
    line = format_ready_line("dtn://a/", [("127.0.0.1", 4556)], Path("/s"), ("::1", 8080))
    assert line == "ready node=dtn://a/ tcpcl=127.0.0.1:4556 socket=/s http=[::1]:8080"
    assert parse_ready_line(line).http == ("::1", 8080)
    assert parse_ready_line(line.rsplit(" ", 1)[0]).http is None


def test_the_daemon_imports_no_http_stack_without_http() -> None:
    code = (
        "import sys, ucp_dtn.daemon.bpnode, ucp_dtn.cli.main\n"
        "loaded = [m for m in ('hypercorn', 'starlette', 'prometheus_client', 'ucp_dtn.dashboard')"
        " if m in sys.modules]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.decode().strip() == "[]"
