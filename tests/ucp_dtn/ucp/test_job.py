"""JobInfo: normalisation and validation errors naming the field."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from ucp_dtn.ucp import (
    DataRef,
    InlineData,
    JobInfo,
    JobValidationError,
    Limits,
    Requirements,
    job_result_name,
)

JOB_ID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
OTHER = uuid.UUID("11111111-2222-3333-4444-555555555555")


def make(**changes: Any) -> JobInfo:
    fields: dict[str, Any] = {"job_id": JOB_ID, "wasm": InlineData(b"\0asm\1\0\0\0")}
    return JobInfo(**(fields | changes))


def test_a_full_job() -> None:
    job = make(
        name="classify",
        stdin=DataRef("survey/stdin"),
        job_data={"params.json": InlineData(b"{}"), "big.bin": DataRef(f"{JOB_ID}/files/1")},
        inputs={"audio": "survey/2026/*", "model.bin": "models/v3"},
        dirs=["out", "tmp"],
        args=["--threshold", "0.7"],
        env={"LANG": "C"},
        zip_results=["out", "log*"],
        named_results={"out/*": "labels/*", "summary.txt": "labels/summary"},
        requirements=Requirements(memory=2**30),
        result_address="dtn://laptop-7/ucp/client",
        limits=Limits(fuel=10**9, time=30.0, memory=2**28),
        after=[OTHER],
        stdout_path="out/stdout.txt",
    )
    # A plain path for a wildcard name is taken as a directory.
    assert job.inputs == {"audio/*": "survey/2026/*", "model.bin": "models/v3"}
    assert job.dirs == ("out", "tmp")
    assert job.after == (OTHER,)
    assert job.referenced_names() == {
        "survey/stdin",
        f"{JOB_ID}/files/1",
        "survey/2026/*",
        "models/v3",
    }
    assert job.published_names() == {"labels/*", "labels/summary"}
    assert job.inline_size() == 8 + 2
    assert dataclasses.replace(job) == job


def test_collections_are_frozen() -> None:
    job = make(env={"A": "1"}, args=["x"])
    with pytest.raises(TypeError):
        job.env["B"] = "2"  # type: ignore[index]
    assert isinstance(job.args, tuple)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"job_id": str(JOB_ID)}, "job_id: must be a UUID"),
        ({"name": "x" * 201}, "name: must be text of at most 200 characters"),
        ({"name": "a\nb"}, "name: must be printable"),
        ({"wasm": b"\0asm"}, "wasm: must be InlineData or DataRef"),
        ({"wasm": DataRef("mods/*")}, "wasm: name 'mods/\\*' has '\\*'"),
        ({"stdin": DataRef("a b")}, "stdin: name 'a b' has the character ' '"),
        (
            {"job_data": {"/etc/x": InlineData(b"")}},
            "job_data\\['/etc/x'\\]: path '/etc/x' must be relative",
        ),
        ({"job_data": {"x": "text"}}, "job_data\\['x'\\]: must be InlineData or DataRef"),
        (
            {"job_data": {"x": InlineData("text")}},  # type: ignore[arg-type]
            "job_data\\['x'\\]: inline data must be bytes",
        ),
        ({"job_data": [("x", InlineData(b""))]}, "job_data: must be a mapping"),
        ({"inputs": {"../x": "a"}}, "inputs\\['../x'\\]: path '../x' has a '..' segment"),
        ({"inputs": {"x": "a**"}}, "inputs\\['x'\\]: name 'a\\*\\*'"),
        ({"inputs": {"in/*": "a/*", "in": "b/*"}}, "inputs\\['in'\\]: path appears twice"),
        ({"inputs": {1: "a"}}, "inputs: keys must be text"),
        ({"dirs": ["out", "out"]}, "dirs: lists a path twice"),
        ({"dirs": "out"}, "dirs: must be a sequence"),
        ({"dirs": ["a/./b"]}, "dirs\\[0\\]: path 'a/./b' has a '.' segment"),
        ({"args": ["a\0b"]}, "args\\[0\\]: must be text without NUL"),
        ({"args": [1]}, "args\\[0\\]: must be text without NUL"),
        ({"env": {"A=B": "x"}}, "env\\['A=B'\\]: variable names must be non-empty"),
        ({"env": {"": "x"}}, "env\\[''\\]: variable names"),
        ({"env": {"A": None}}, "env\\['A'\\]: value must be text"),
        ({"zip_results": ["/out"]}, "zip_results\\[0\\]: path '/out' must be relative"),
        ({"named_results": {"out": "a b"}}, "named_results\\['out'\\]: name 'a b'"),
        (
            {"named_results": {"out.zip": f"{JOB_ID}/result"}},
            "named_results\\['out.zip'\\]: .* would overwrite the job's result archive",
        ),
        ({"requirements": {"memory": 1}}, "requirements: must be Requirements"),
        ({"limits": {"fuel": 1}}, "limits: must be Limits"),
        ({"result_address": "client"}, "result_address: 'client' is not a URI"),
        ({"result_address": "dtn://c"}, "result_address: dtn SSP"),
        ({"after": [JOB_ID]}, "after\\[0\\]: a job cannot wait for itself"),
        ({"after": [str(OTHER)]}, "after\\[0\\]: must be a job UUID"),
        ({"after": [OTHER, OTHER]}, "after: lists a job twice"),
        ({"stdout_path": "/dev/stdout"}, "stdout_path: path '/dev/stdout' must be relative"),
        (
            {"job_data": {"a": InlineData(b"")}, "inputs": {"a": "x"}},
            "inputs\\['a'\\]: path is also job_data\\['a'\\]",
        ),
        ({"inputs": {"a": "x"}, "dirs": ["a"]}, "dirs\\[0\\]: 'a' is also inputs\\['a'\\]"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(JobValidationError, match=f"^{message}"):
        make(**changes)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"fuel": 0}, "limits.fuel: must be a whole number from 1 to 2\\*\\*64-1, got 0"),
        ({"fuel": 1.5}, "limits.fuel: must be a whole number"),
        ({"fuel": 2**64}, r"limits.fuel: must be a whole number .*, got 18446744073709551616$"),
        ({"fuel": 10**300}, r"limits.fuel: must be a whole number .*, got 1e\+300$"),
        ({"memory": True}, "limits.memory: must be a whole number"),
        ({"memory": 2**40 + 1}, "limits.memory: must be a whole number from 1 to 1TiB"),
        ({"time": 0}, "limits.time: must be a number of seconds above 0 and at most 366d"),
        ({"time": float("inf")}, "limits.time: must be a number of seconds above 0"),
        ({"time": 1e300}, r"limits.time: must be .* at most 366d, got 1e\+300$"),
    ],
)
def test_invalid_limits(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(JobValidationError, match=f"^{message}"):
        Limits(**limits)


def test_wildcard_named_results_are_normalised() -> None:
    job = make(named_results={"out/*": "runs/7", "frames": "video/f*"})
    assert job.named_results == {"out/*": "runs/7/*", "frames/*": "video/f*"}


def test_job_result_name_is_free_for_other_names() -> None:
    job = make(named_results={"out/*": f"{JOB_ID}/out/*"})
    assert job.published_names() == {f"{JOB_ID}/out/*"}
    assert job_result_name(JOB_ID) == f"{JOB_ID}/result"
