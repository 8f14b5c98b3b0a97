"""Deeply nested TOML (arrays, inline tables, long table headers) is a one-line error wherever
people write TOML: the daemon's config and security files, and execution plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucp_dtn.daemon.config import SettingsError, load_settings
from ucp_dtn.settings.toml_file import MAX_TOML_DEPTH, TomlError, load_toml, parse_toml
from ucp_dtn.ucp import PlanError, parse_plan

DEEP_DOCUMENTS = {
    "array": "a = " + "[" * 100_000 + "]" * 100_000,
    "inline table": "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
    "header": "[" + ".".join(f"k{i}" for i in range(2_000)) + "]\nx = 1",
    "just too deep": "a = " + "[" * MAX_TOML_DEPTH + "]" * MAX_TOML_DEPTH,
}


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS.keys())
def test_deep_documents_are_one_line_errors(text: str) -> None:
    with pytest.raises(TomlError, match=f"nested more than {MAX_TOML_DEPTH} levels") as caught:
        parse_toml(text)
    assert "\n" not in str(caught.value)


def test_nesting_up_to_the_limit_is_read() -> None:
    depth = MAX_TOML_DEPTH - 1  # the top-level table is one level
    document = parse_toml("a = " + "[" * depth + "]" * depth)
    value = document["a"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


def test_load_toml_reports_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(TomlError, match="cannot read it"):
        load_toml(tmp_path / "absent.toml")
    (tmp_path / "latin1.toml").write_bytes(b"a = '\xe9'\n")
    with pytest.raises(TomlError, match="not UTF-8"):
        load_toml(tmp_path / "latin1.toml")
    (tmp_path / "bad.toml").write_text("a = = 1\n")
    with pytest.raises(TomlError, match="not valid TOML"):
        load_toml(tmp_path / "bad.toml")


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS.keys())
def test_daemon_config_file(tmp_path: Path, text: str) -> None:
    config = tmp_path / "node.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=r"node\.toml: not valid TOML: nested more than"):
        load_settings(["--in-memory", "-c", str(config)])


def test_daemon_security_file(tmp_path: Path) -> None:
    policy = tmp_path / "security.toml"
    policy.write_text(DEEP_DOCUMENTS["inline table"])
    with pytest.raises(SettingsError, match=r"security\.toml: not valid TOML: nested more than"):
        load_settings(["--in-memory", "--security", str(policy)])


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS.keys())
def test_plan(tmp_path: Path, text: str) -> None:
    with pytest.raises(PlanError, match=r"plan\.toml: not valid TOML: nested more than"):
        parse_plan(text, source=tmp_path / "plan.toml")
