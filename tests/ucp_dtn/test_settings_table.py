"""The settings-table machinery on a small table of its own: flags, file, environment, merge
order, old names, exclusions, help and the docs table."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from ucp_dtn.settings import (
    BOOL,
    COUNT,
    DURATION,
    PATH,
    PEER,
    SIZE,
    Setting,
    SettingsError,
    SettingsTable,
)


@dataclass(frozen=True, slots=True)
class Box:
    """A target with defaults, as NodeConfig has."""

    size: int = 1024
    wait_s: float = 10.0
    peers: tuple[tuple[str, int], ...] = ()
    store: Path | None = None
    loud: int = 0


TABLE = SettingsTable(
    [
        Setting("size", SIZE, "how big", feeds=("box.size",), short="-z", example="2KiB"),
        Setting(
            "wait",
            DURATION,
            "how long",
            feeds=("box.wait_s",),
            old_names=("patience",),
            env="BOX_WAIT",
        ),
        Setting(
            "peer",
            PEER,
            "who",
            feeds=("box.peers",),
            many=True,
            old_names=("peers",),
            env="BOX_PEERS",
        ),
        Setting("store", PATH, "where", feeds=("box.store",), excludes=("volatile",)),
        Setting("volatile", BOOL, "nowhere"),
        Setting("deep.flag", BOOL, "nested", old_names=("flat_flag",)),
        Setting("verbose", COUNT, "louder", feeds=("box.loud",), short="-v"),
        Setting("config", PATH, "the file", short="-c", in_file=False),
    ],
    targets={"box": Box},
    config="config",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def resolve(argv: list[str], environ: dict[str, str] | None = None) -> Box:
    parser = _Parser(prog="box")
    TABLE.add_arguments(parser)
    resolved = TABLE.resolve(parser, argv, environ=environ or {})
    return Box(**resolved.arguments("box"))


def test_defaults_come_from_the_target() -> None:
    assert resolve([]) == Box()
    assert TABLE.help_of(TABLE["size"]) == "how big (default 1KiB)"
    assert TABLE.help_of(TABLE["wait"]) == "how long (default 10s)"
    assert TABLE.help_of(TABLE["peer"]) == "who (repeatable)"


def test_flags_file_and_environment_merge_in_order(tmp_path: Path) -> None:
    config = tmp_path / "box.toml"
    config.write_text('size = "2KiB"\nwait = "1m"\npeer = ["tcp://f:1", "g"]\nstore = "s"\n')
    environ = {"BOX_WAIT": "2m", "BOX_PEERS": "tcp://e:1, e2:2"}
    assert resolve(["-c", str(config)]) == Box(
        size=2048, wait_s=60.0, peers=(("f", 1), ("g", 4556)), store=tmp_path / "s"
    )
    # The environment beats the file, the flags beat both; a list is replaced whole.
    assert resolve(["-c", str(config)], environ) == Box(
        size=2048, wait_s=120.0, peers=(("e", 1), ("e2", 2)), store=tmp_path / "s"
    )
    assert resolve(["-c", str(config), "--wait", "5s", "--peer", "h:3", "-z", "1"], environ) == Box(
        size=1, wait_s=5.0, peers=(("h", 3),), store=tmp_path / "s"
    )


def test_old_names_work_with_a_notice(tmp_path: Path) -> None:
    config = tmp_path / "box.toml"
    config.write_text('peers = ["a:1"]\nflat_flag = true\n')
    parser = _Parser(prog="box")
    TABLE.add_arguments(parser)
    resolved = TABLE.resolve(parser, ["-c", str(config), "--patience", "3s"], environ={})
    assert resolved.arguments("box") == {"peers": (("a", 1),), "wait_s": 3.0}
    assert resolved.get("deep.flag") is True
    assert resolved.notices == (
        f"{config}: 'peers' is the old name of 'peer': rename it (it is still read, for now)",
        f"{config}: 'flat_flag' is the old name of 'deep.flag': rename it (it is still read, "
        "for now)",
        "--patience is the old name of --wait: it still works, for now",
    )
    # Old switches keep their --no- form; old flags stay out of the help.
    resolved = TABLE.resolve(parser, ["--no-flat-flag"], environ={})
    assert resolved.get("deep.flag") is False
    assert "--patience" not in parser.format_help()
    assert "--flat-flag" not in parser.format_help()


def test_an_old_and_a_new_name_together_are_an_error(tmp_path: Path) -> None:
    config = tmp_path / "box.toml"
    config.write_text('peers = ["a:1"]\npeer = ["b:1"]\n')
    with pytest.raises(SettingsError, match=r"box\.toml: peer: given twice: as 'peers' and 'peer'"):
        resolve(["-c", str(config)])


def test_exclusions(tmp_path: Path) -> None:
    config = tmp_path / "box.toml"
    config.write_text('store = "s"\nvolatile = true\n')
    with pytest.raises(SettingsError, match=r"box\.toml: store and volatile = true exclude"):
        resolve(["-c", str(config)])
    with pytest.raises(SettingsError, match=r"^--store and --volatile exclude each other$"):
        resolve(["--store", "x", "--volatile"])
    # One given higher up drops the other from below; a false switch excludes nothing.
    assert resolve(["-c", str(config), "--store", "x"]).store == Path("x")
    assert resolve(["-c", str(config), "--volatile"]).store is None
    config.write_text('store = "s"\nvolatile = false\n')
    assert resolve(["-c", str(config)]).store == tmp_path / "s"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("sise = 1\n", r"box\.toml: unknown key 'sise' \(known: size, wait, peer, store, "),
        ("deep = 1\n", r"box\.toml: deep: must be a table, got an integer"),
        ("[deep]\nflg = true\n", r"unknown key 'deep\.flg' \(known: deep\.flag\)$"),
        ("size = true\n", r"size: must be a size \('64MiB', '1GB'\) or a number of bytes, got a"),
        ('size = "big"\n', r"size: bad size 'big'"),
        ("peer = 'a:1'\n", r"peer: must be an array of strings, got a string"),
        ('peer = ["udp://a"]\n', r"peer: peer 'udp://a': only tcp:// peers"),
        ("verbose = -1\n", r"verbose: must be 0 or more"),
        ("config = 'x'\n", r"unknown key 'config'"),
    ],
)
def test_file_errors_are_one_line_naming_file_and_key(
    tmp_path: Path, text: str, match: str
) -> None:
    config = tmp_path / "box.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=match) as error:
        resolve(["-c", str(config)])
    assert "\n" not in str(error.value)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^\$BOX_WAIT: bad duration 'soon'"):
        resolve([], {"BOX_WAIT": "soon"})


def test_flag_errors_keep_the_message() -> None:
    with pytest.raises(SettingsError, match=r"argument -z/--size: bad size 'lots'"):
        resolve(["-z", "lots"])


def test_a_bad_table_fails_at_import() -> None:
    with pytest.raises(ValueError, match=r"feeds 'box\.nothing': no such parameter"):
        SettingsTable([Setting("x", SIZE, "x", feeds=("box.nothing",))], targets={"box": Box})
    with pytest.raises(ValueError, match=r"feeds unknown target 'crate'"):
        SettingsTable([Setting("x", SIZE, "x", feeds=("crate.size",))], targets={"box": Box})


def test_markdown_lists_every_setting() -> None:
    lines = TABLE.markdown().splitlines()
    assert lines[:2] == ["| Flag | File key | Meaning |", "|---|---|---|"]
    assert lines[2] == "| `-z SIZE`, `--size SIZE` | `size` | How big (default 1KiB). |"
    assert len(lines) == 2 + len(TABLE)
    assert "Formerly `patience`. Environment: `BOX_WAIT`." in lines[3]
    assert lines[-1].startswith("| `-c PATH`, `--config PATH` | — |")


def test_the_settings_modules_load_no_heavy_modules() -> None:
    code = (
        "import sys, ucp_dtn.settings, convergence.quantities; "
        "print(sorted(m for m in ('trio', 'wasmtime', 'zeroconf', 'ucp_dtn.agent', 'cbor2') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
