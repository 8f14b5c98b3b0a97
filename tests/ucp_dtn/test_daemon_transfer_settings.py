"""``ucp-bpnode`` settings of transfers that survive link cuts: flags and TOML keys named
alike, defaults, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucp_dtn.agent import NodeConfig
from ucp_dtn.daemon import SettingsError, load_settings


def test_defaults(tmp_path: Path) -> None:
    node = load_settings(["-W", str(tmp_path)]).node
    assert node.reactive_fragmentation is True
    assert node.receive_memory_bytes == 64 * 1024 * 1024
    assert node.spool_threshold_bytes == 1024 * 1024
    assert node.segment_bytes == 256 * 1024
    assert node.send_window_s == 0.25


def test_flags(tmp_path: Path) -> None:
    node = load_settings(
        [
            "-W",
            str(tmp_path),
            "--no-reactive-fragmentation",
            "--receive-memory",
            "16MiB",
            "--spool-threshold",
            "64KiB",
            "--segment-size",
            "128KiB",
            "--send-window",
            "100ms",
        ]
    ).node
    assert (
        node.reactive_fragmentation,
        node.receive_memory_bytes,
        node.spool_threshold_bytes,
        node.segment_bytes,
        node.send_window_s,
    ) == (False, 16 << 20, 64 << 10, 128 << 10, 0.1)


def test_file_keys_and_flags_over_them(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        'workdir = "w"\nreactive_fragmentation = false\nreceive_memory = "32MiB"\n'
        'spool_threshold = 2097152\nsegment_size = "512KiB"\nsend_window = "1s"\n'
    )
    node = load_settings(["-c", str(config)]).node
    assert node.reactive_fragmentation is False
    assert (node.receive_memory_bytes, node.spool_threshold_bytes) == (32 << 20, 2 << 20)
    assert (node.segment_bytes, node.send_window_s) == (512 << 10, 1.0)
    node = load_settings(["-c", str(config), "--reactive-fragmentation"]).node
    assert node.reactive_fragmentation is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--receive-memory", "lots"], "--receive-memory"),
        (["--segment-size", "1MiB", "--receive-memory", "1MiB"], "two segments"),
        (["--send-window", "0s"], "--send-window: must be longer than zero"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(["-W", str(tmp_path), *args])
    assert "\n" not in str(info.value)


def test_node_config_checks_the_limits() -> None:
    with pytest.raises(ValueError, match="segment_bytes must be a positive integer"):
        NodeConfig("dtn://a/", None, segment_bytes=0)
