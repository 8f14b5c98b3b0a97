"""Data names, job paths and wildcards."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.ucp import (
    DataNameError,
    is_wildcard,
    job_name,
    job_of_name,
    job_result_name,
    map_wildcard,
    name_matches,
    normalize_wildcard_pair,
    parent_name,
    patterns_overlap,
    select_names,
    validate_name,
    validate_path,
    validate_path_pattern,
    validate_pattern,
    wildcard_prefix,
)

from .strategies import names, paths, segments


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "survey/2026-11-26/audio.wav",
        "wasm-module",
        "wasm_output_file",
        "12345678-1234-5678-1234-567812345678/result",
        "messungen/größe",
        "a/.hidden",
        "x@y:z,1%2~3+4=5",
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name
    assert validate_pattern(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "name is empty"),
        ("/a", "empty segment"),
        ("a/", "empty segment"),
        ("a//b", "empty segment"),
        ("a/../b", "has a '..' segment"),
        ("./a", "has a '.' segment"),
        ("a b", "the character ' '"),
        ("a\\b", "the character"),
        ("a*", "only a trailing wildcard"),
        ("a*/b", "only a trailing wildcard"),
        ("x" * 256, "segment longer than 255"),
        ("a/" * 600, "longer than 1024"),
    ],
)
def test_invalid_names_name_the_field(name: str, reason: str) -> None:
    with pytest.raises(DataNameError, match=f"^inputs\\['x'\\]: .*{reason}") as info:
        validate_name(name, "inputs['x']")
    assert info.value.field == "inputs['x']"


def test_names_must_be_text() -> None:
    with pytest.raises(DataNameError, match="name must be text, got bytes"):
        validate_name(b"a")


@pytest.mark.parametrize("pattern", ["*", "a/*", "a/b*", "survey/2026/*"])
def test_valid_patterns(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern
    assert is_wildcard(pattern)
    with pytest.raises(DataNameError, match="trailing wildcard"):
        validate_name(pattern)


@pytest.mark.parametrize("pattern", ["**", "a//*", "/*", "*a", "a/**"])
def test_invalid_patterns(pattern: str) -> None:
    with pytest.raises(DataNameError):
        validate_pattern(pattern)


@pytest.mark.parametrize("path", ["out.txt", "out/log 1.txt", "a/b/c", ".config/x", "ünï"])
def test_valid_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "must be relative to the job directory"),
        ("../x", "'..' segment"),
        ("a/../../x", "'..' segment"),
        ("a/./b", "'.' segment"),
        ("a\\..\\b", "the character '\\\\\\\\'"),
        ("a\x00b", "the character"),
        ("a\nb", "the character"),
        ("out/*", "only a trailing wildcard"),
        ("", "path is empty"),
    ],
)
def test_invalid_paths(path: str, reason: str) -> None:
    with pytest.raises(DataNameError, match=reason):
        validate_path(path, "dirs[0]")


def test_path_patterns() -> None:
    assert validate_path_pattern("out/*") == "out/*"
    assert validate_path_pattern("out/frame*") == "out/frame*"
    with pytest.raises(DataNameError, match="must be relative"):
        validate_path_pattern("/out/*")


# -- matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name", "matches"),
    [
        ("stdin", "stdin", True),
        ("stdin", "stdin/part-1", True),
        ("stdin", "stdin2", False),  # REC's plain prefix matching got this wrong
        ("stdin", "std", False),
        ("a/b", "a/b/c/d", True),
        ("a/b", "a/bc", False),
        ("a/b*", "a/bc", True),
        ("a/b*", "a/b", False),
        ("a/b/*", "a/b/c", True),
        ("a/b/*", "a/b", False),
        ("*", "anything/at/all", True),
    ],
)
def test_name_matches(query: str, name: str, matches: bool) -> None:
    assert name_matches(query, name) is matches


@settings(max_examples=200)
@given(names, names)
def test_plain_query_matches_by_segment(query: str, name: str) -> None:
    expected = name.split("/")[: len(query.split("/"))] == query.split("/")
    assert name_matches(query, name) is expected


@settings(max_examples=200)
@given(names, st.lists(names, max_size=8))
def test_select_is_sorted_unique_and_exact(query: str, candidates: list[str]) -> None:
    selected = select_names(query, candidates + candidates)
    assert selected == sorted(set(selected))
    assert set(selected) == {c for c in candidates if name_matches(query, c)}


def test_select_names_example() -> None:
    keys = ["stdin", "stdin/a", "stdin2", "other"]
    assert select_names("stdin", keys) == ["stdin", "stdin/a"]
    assert select_names("stdin*", keys) == ["stdin/a", "stdin2"]


# -- wildcard mapping -----------------------------------------------------------------------------


def test_map_wildcard_into_a_directory() -> None:
    keys = ["survey/2026/a.wav", "survey/2026/b/c.wav", "survey/2026", "survey/20260"]
    assert map_wildcard("survey/2026/*", "audio/*", keys, target_kind="path") == {
        "survey/2026/a.wav": "audio/a.wav",
        "survey/2026/b/c.wav": "audio/b/c.wav",
    }


def test_map_wildcard_string_prefix() -> None:
    files = ["out/frame001.png", "out/frame002.png", "out/log.txt"]
    assert map_wildcard("out/frame*", "frames/f*", files) == {
        "out/frame001.png": "frames/f001.png",
        "out/frame002.png": "frames/f002.png",
    }


def test_map_wildcard_plain_target_is_a_directory() -> None:
    assert map_wildcard("out/*", "runs/7", ["out/a"]) == {"out/a": "runs/7/a"}


def test_map_wildcard_rejects_bad_products() -> None:
    with pytest.raises(DataNameError, match=r"named_results\['x\*'\]: name 'y//a'"):
        map_wildcard("x*", "y/*", ["x/a"], field="named_results['x*']")
    with pytest.raises(DataNameError, match="the character ' '"):
        map_wildcard("out/*", "r/*", ["out/a b"])
    with pytest.raises(DataNameError, match="not a wildcard pattern"):
        map_wildcard("out", "r/*", ["out"])


@settings(max_examples=200)
@given(names, names, st.lists(segments, min_size=1, max_size=3).map("/".join))
def test_map_wildcard_moves_subtrees(source: str, target: str, rest: str) -> None:
    mapped = map_wildcard(source + "/*", target + "/*", [f"{source}/{rest}", source])
    assert mapped == {f"{source}/{rest}": f"{target}/{rest}"}


@settings(max_examples=200)
@given(paths, names, st.lists(names, max_size=6))
def test_map_wildcard_products_are_valid_and_injective(
    directory: str, prefix: str, keys: list[str]
) -> None:
    mapped = map_wildcard(prefix + "/*", directory + "/*", keys, target_kind="path")
    assert set(mapped) == {k for k in keys if name_matches(prefix + "/*", k)}
    assert len(set(mapped.values())) == len(mapped)
    for produced in mapped.values():
        assert validate_path(produced) == produced
        assert produced.startswith(directory + "/")


@pytest.mark.parametrize(
    ("pair", "normalized"),
    [
        (("audio", "survey/*"), ("audio/*", "survey/*")),
        (("out/*", "runs/7"), ("out/*", "runs/7/*")),
        (("a", "b"), ("a", "b")),
        (("a*", "b*"), ("a*", "b*")),
    ],
)
def test_normalize_wildcard_pair(pair: tuple[str, str], normalized: tuple[str, str]) -> None:
    assert normalize_wildcard_pair(*pair) == normalized


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/*", "a/b", True),
        ("a/b", "a/*", True),
        ("a/*", "a", False),
        ("a/*", "a/b/*", True),
        ("a/b*", "a/c*", False),
        ("res*", "results/x", True),
        ("stdin", "stdin2", False),
    ],
)
def test_patterns_overlap(first: str, second: str, overlap: bool) -> None:
    assert patterns_overlap(first, second) is overlap
    assert patterns_overlap(second, first) is overlap


@settings(max_examples=200)
@given(st.one_of(names, names.map(lambda n: n + "*")), names)
def test_overlap_agrees_with_matching(pattern: str, name: str) -> None:
    if name_matches(pattern, name) and (is_wildcard(pattern) or name == pattern):
        assert patterns_overlap(pattern, name)


def test_wildcard_prefix() -> None:
    assert wildcard_prefix("a/b/*") == "a/b/"
    assert wildcard_prefix("a") == "a"


# -- job names -------------------------------------------------------------------------------------


def test_job_names() -> None:
    job_id = uuid.UUID("abcdef78-1234-5678-1234-567812345678")
    assert job_name(job_id, "files", "0") == f"{job_id}/files/0"
    assert job_result_name(job_id) == f"{job_id}/result"
    assert job_of_name(f"{job_id}/files/0") == job_id
    assert job_of_name(str(job_id)) == job_id
    assert job_of_name("survey/a") is None
    assert job_of_name(str(job_id).upper() + "/x") is None  # not canonical
    assert job_of_name("x" * 36) is None
    assert parent_name("a/b/c") == "a/b"
    assert parent_name("a") is None
