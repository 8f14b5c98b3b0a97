"""Every numeric setting of the daemon and the client has a range, declared with its kind and
checked in every layer (flag, environment, file); plan fields too. Out of range: one line
naming the setting and the range, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucp_dtn.cli import main as ucp_main
from ucp_dtn.cli.client_options import CLIENT_SETTINGS
from ucp_dtn.daemon.bpnode import main as bpnode_main
from ucp_dtn.daemon.config import SETTINGS, SettingsError, load_settings
from ucp_dtn.settings import COUNT, SIZE, FlagStyle, Kind
from ucp_dtn.ucp import PlanError, parse_plan

NUMERIC = ("N", "DURATION", "SIZE", "P")


@pytest.mark.parametrize("table", [SETTINGS, CLIENT_SETTINGS], ids=["daemon", "client"])
def test_every_numeric_setting_has_a_range(table: object) -> None:
    for setting in table:  # type: ignore[attr-defined]
        kind: Kind[object] = setting.kind
        if kind.metavar in NUMERIC and kind.metavar != "P":  # (probabilities check 0..1)
            assert kind.bounds is not None, f"{setting.name} has no range"
            default = table.default_of(setting)  # type: ignore[attr-defined]
            if default is not None:
                assert kind.check(default) == default, setting.name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lifetime", "100000000d"], "argument --lifetime: must be from 1ms to 3650d, got"),
        (["--quota", "99999999TiB"], "argument --quota: must be from 1 to 1024TiB, got"),
        (["--max-jobs", "10000000"], "argument --max-jobs: must be from 1 to 1024, got 10000000"),
        (["--keepalive", "70000"], "argument --keepalive: must be from 0s to 65535s, got 70000s"),
        (["--heartbeat", "400d"], "argument --heartbeat: must be from 1ms to 1d, got 400d"),
        (["--segment-size", "2GiB"], "argument --segment-size: must be from 1 to 1GiB, got 2GiB"),
        (["-vvv"], "-v/--verbose: given 3 times: must be from 0 to 2, got 3"),
    ],
)
def test_daemon_flags_out_of_range(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(["--in-memory", *argv])
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("verbose = 9", "verbose: must be from 0 to 2, got 9"),
        ("route_interval = 1e300", "route_interval: must be from 1ms to 1d, got"),
        ("receive_memory = '1000TiB'", "receive_memory: must be from 1 to 64GiB, got 1000TiB"),
        ("replication_rate = -1", "replication_rate: "),
        ("keepalive = 65536", "keepalive: must be from 0s to 65535s, got 65536s"),
    ],
)
def test_daemon_file_values_out_of_range(tmp_path: Path, line: str, message: str) -> None:
    config = tmp_path / "node.toml"
    config.write_text(line + "\n")
    with pytest.raises(SettingsError, match=r"node\.toml: ") as caught:
        load_settings(["--in-memory", "-c", str(config)])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert bpnode_main(["--in-memory", "-c", str(config)]) == 2


def test_kind_bounds_are_checked_in_every_layer() -> None:
    ranged = SIZE.within(1, 1024)
    assert ranged.read_text("1KiB") == 1024
    assert ranged.read_toml(512) == 512
    for read in (lambda: ranged.read_text("2KiB"), lambda: ranged.read_toml("0")):
        with pytest.raises(ValueError, match="must be from 1 to 1KiB"):
            read()
    assert COUNT.flag is FlagStyle.COUNT and COUNT.bounds is None  # the plain kinds stay open


def test_client_settings_out_of_range(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = ("--home", str(tmp_path / "home"))
    assert ucp_main(["status", "--wait", "2d", *home]) == 2
    assert "argument --wait: must be from 0s to 1d, got 2d" in capsys.readouterr().err
    assert ucp_main(["collect", "--collect-max-files", "20000000", *home]) == 2
    err = capsys.readouterr().err
    assert "--collect-max-files: must be from 1 to 10000000, got 20000000" in err
    monkeypatch.setenv("UCP_COLLECT_MAX_SIZE", str(2 * 1024**5))
    assert ucp_main(["collect", *home]) == 2
    err = capsys.readouterr().err
    assert (
        err == "ucp collect: error: $UCP_COLLECT_MAX_SIZE: must be from 1 to 1024TiB, got 2048TiB\n"
    )
    assert not (tmp_path / "home").exists()  # refused before anything was done


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("limits = { fuel = 1e300 }", r"limits\.fuel': must be a whole number from 1 to 2\*\*64-1"),
        ("limits = { memory = '2TiB' }", r"limits\.memory': must be a whole number from 1 to 1TiB"),
        ("limits = { time = '400d' }", r"limits\.time': must be .* at most 366d"),
        ("requires = { memory = 1e300 }", r"requires\.memory': must be at most"),
        ("replicas = 17", r"replicas': must be a whole number from 1 to 16"),
    ],
)
def test_plan_fields_out_of_range(tmp_path: Path, field: str, message: str) -> None:
    (tmp_path / "job.wasm").write_bytes(b"\0asm\1\0\0\0")
    text = f'[jobs.a]\nwasm = "job.wasm"\n{field}\n'
    with pytest.raises(PlanError, match=message):
        parse_plan(text, source=tmp_path / "plan.toml")


@pytest.mark.parametrize("capability", ["memory=99999999TiB", "cpu_cores=" + "9" * 25])
def test_capability_overrides_out_of_range(capability: str) -> None:
    with pytest.raises(SettingsError, match=r"capability \w+: must be at most 1.84e\+19"):
        load_settings(["--in-memory", "--roles", "executor", "--capability", capability])
