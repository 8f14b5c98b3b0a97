"""The pool ⇄ worker frame protocol: frames, spec and outcome round trips, bad input."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.ucp.runtime import ModuleSource, RunOutcome, RunSpec, RunStatus
from ucp_dtn.ucp.runtime._wire import (
    FrameDecoder,
    WireError,
    encode_frame,
    outcome_from_wire,
    outcome_to_wire,
    spec_from_wire,
    spec_to_wire,
)

text = st.text(st.characters(blacklist_characters="\0", codec="utf-8"), max_size=20)
names = text.filter(lambda name: name != "" and "=" not in name)
paths = st.none() | st.sampled_from([Path("/jobs/a/out"), Path("relative/err"), Path("/x y/z")])

specs = st.builds(
    RunSpec,
    wasm=st.binary(max_size=64),
    job_dir=st.sampled_from([Path("/jobs/a"), Path("jobs/b")]),
    args=st.lists(text, max_size=4).map(tuple),
    env=st.lists(st.tuples(names, text), max_size=4).map(tuple),
    stdin=st.binary(max_size=64),
    program_name=st.none() | text,
    entry=names,
    fuel=st.none() | st.integers(1, 2**64 - 1),
    timeout=st.floats(0.001, 1e6),
    memory_limit=st.integers(0, 2**40),
    table_elements_limit=st.integers(0, 2**32),
    stdout_limit=st.integers(0, 2**40),
    stderr_limit=st.integers(0, 2**40),
    stdout_path=st.none() | st.just(Path("/logs/out")),
    stderr_path=st.none() | st.just(Path("/logs/err")),
    job_dir_writable=st.booleans(),
)

outcomes = st.builds(
    RunOutcome,
    status=st.sampled_from(RunStatus),
    exit_code=st.none() | st.integers(0, 125),
    message=text,
    detail=text,
    trap_code=st.none() | st.sampled_from(["UNREACHABLE", "OUT_OF_FUEL"]),
    stdout_path=paths,
    stderr_path=paths,
    stdout_bytes=st.integers(0, 2**40),
    stderr_bytes=st.integers(0, 2**40),
    stdout_truncated=st.booleans(),
    stderr_truncated=st.booleans(),
    fuel_consumed=st.none() | st.integers(0, 2**64 - 1),
    memory_bytes=st.none() | st.integers(0, 2**32),
    run_time=st.floats(0, 1e6),
    load_time=st.floats(0, 1e6),
    module_source=st.sampled_from(ModuleSource),
)


@settings(max_examples=200)
@given(specs)
def test_spec_round_trip(spec: RunSpec) -> None:
    message = cbor2.loads(cbor2.dumps(spec_to_wire(spec)))
    assert "wasm" not in message
    assert spec_from_wire(message, spec.wasm) == spec


@settings(max_examples=200)
@given(outcomes)
def test_outcome_round_trip(outcome: RunOutcome) -> None:
    assert outcome_from_wire(cbor2.loads(cbor2.dumps(outcome_to_wire(outcome)))) == outcome


@settings(max_examples=100)
@given(
    st.lists(
        st.fixed_dictionaries({"t": text}, optional={"b": st.binary(max_size=300)}), max_size=5
    ),
    st.integers(1, 50),
)
def test_frames_survive_any_chunking(messages: list[dict[str, object]], chunk: int) -> None:
    stream = b"".join(encode_frame(message) for message in messages)
    decoder = FrameDecoder()
    received: list[dict[str, object]] = []
    for start in range(0, len(stream), chunk):
        received.extend(decoder.feed(stream[start : start + chunk]))
    assert received == messages
    assert decoder.pending == 0


@pytest.mark.parametrize(
    "frame",
    [
        b"\0\0\0\x02\xff\xff",  # not CBOR
        b"\0\0\0\x01\x01",  # CBOR, but not a map
        b"\0\0\0\x03\xa1\x61t",  # truncated CBOR map inside a complete frame
        encode_frame({"type": "run"}),  # no "t"
        b"\0\0\0\x03" + cbor2.dumps({"t": 1}),  # "t" not a string
    ],
)
def test_bad_frames_raise_wire_error(frame: bytes) -> None:
    with pytest.raises(WireError):
        FrameDecoder().feed(frame)


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"status": "exploded", "exit_code": None, "message": ""},
        {"status": "ok"},
        {"status": "ok", "exit_code": 0, "message": "", "colour": "blue"},
        [1, 2],
    ],
)
def test_bad_outcomes_raise_wire_error(message: object) -> None:
    with pytest.raises(WireError, match="invalid run outcome"):
        outcome_from_wire(message)


@pytest.mark.parametrize(
    "message",
    [{}, {"job_dir": "/j", "timeout": -1}, {"job_dir": "/j", "args": ["\0"]}, "spec"],
)
def test_bad_specs_raise_wire_error(message: object) -> None:
    with pytest.raises(WireError, match="invalid run spec"):
        spec_from_wire(message, b"")
