"""UCP messages: round trips, the wire form, strict decoding, and only MessageDecodeError from
bad bytes."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import uuid
from typing import Any

import cbor2
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ucp_dtn.ucp import (
    MAX_DEPTH,
    MESSAGE_KINDS,
    DataDelete,
    DataGet,
    DataNameError,
    DataPut,
    DataRef,
    DataStatus,
    FieldError,
    Heartbeat,
    InlineData,
    JobAccepted,
    JobInfo,
    JobResult,
    JobState,
    JobStatus,
    JobSubmission,
    MessageDecodeError,
    ResultStatus,
    Role,
    UcpMessage,
    UcpUsageError,
    decode_job_info,
    decode_message,
    decode_message_as,
    encode_job_info,
    encode_message,
)

from .strategies import job_infos, message_strategies, messages

JOB_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def wire(message: UcpMessage) -> dict[str, Any]:
    decoded = cbor2.loads(encode_message(message))
    assert isinstance(decoded, dict)
    return decoded


def payload(**fields: object) -> bytes:
    return bytes(cbor2.dumps({"v": 1} | fields))


def simple_job(**changes: object) -> JobInfo:
    fields: dict[str, Any] = {"job_id": JOB_ID, "wasm": DataRef("modules/echo")}
    return JobInfo(**(fields | changes))


# -- round trips --------------------------------------------------------------------------------


@settings(max_examples=300)
@given(messages)
def test_every_message_round_trips(message: UcpMessage) -> None:
    data = encode_message(message)
    assert decode_message(data) == message
    assert type(message).from_cbor(message.to_cbor()) == message


@settings(max_examples=100)
@given(job_infos())
def test_job_info_round_trips_alone(job: JobInfo) -> None:
    assert decode_job_info(encode_job_info(job)) == job


@settings(max_examples=1, phases=[Phase.generate])
@given(st.data())
def test_strategy_covers_every_kind(data: st.DataObject) -> None:
    # One strategy per kind, each drawn once: deterministic, unlike counting what a sample of
    # the combined strategy happened to contain; and quick, unlike find(), which shrinks its
    # first example to the simplest one (14 s for the job strategies).
    kinds = [data.draw(strategy).KIND for strategy in message_strategies]
    assert sorted(kinds) == sorted(MESSAGE_KINDS)


# -- the wire form ------------------------------------------------------------------------------


def test_every_message_class_defined_is_a_kind_the_decoder_reads() -> None:
    """The classes live in one module per family; the Message union in messages.py is the list
    of kinds. A class left out of the union would encode but not decode (from_cbor reads the
    classes as they are defined)."""
    from ucp_dtn.ucp.message_base import _KINDS_DEFINED

    assert dict(_KINDS_DEFINED) == dict(MESSAGE_KINDS)


def test_wire_form_of_a_job_accepted_is_pinned() -> None:
    message = JobAccepted(JOB_ID, "dtn://shelter-3/ucp/broker", duplicate=True)
    assert wire(message) == {
        "v": 1,
        "t": "job-accepted",
        "job-id": JOB_ID.bytes,
        "broker": "dtn://shelter-3/ucp/broker",
        "duplicate": True,
    }


def test_wire_form_of_a_submission_leaves_out_empty_fields() -> None:
    job = simple_job(stdin=InlineData(b"hello"), args=("-v",))
    assert wire(JobSubmission(job)) == {
        "v": 1,
        "t": "job-submit",
        "job": {"id": JOB_ID.bytes, "wasm": "modules/echo", "stdin": b"hello", "args": ["-v"]},
    }


def test_unknown_fields_are_ignored() -> None:
    data = payload(t="job-accepted", **{"job-id": JOB_ID.bytes, "broker": "dtn://b/", "new": 1})
    assert decode_message(data) == JobAccepted(JOB_ID, "dtn://b/")


@pytest.mark.parametrize(
    ("message", "field", "expected"),
    [
        (JobState(JOB_ID, 99, 1.0), "state", 99),
        (JobResult(JOB_ID, "dtn://e/", 42), "status", 42),
    ],
)
def test_unknown_codes_stay_plain_ints(message: UcpMessage, field: str, expected: int) -> None:
    decoded = decode_message(encode_message(message))
    value = getattr(decoded, field)
    assert value == expected
    assert type(value) is int


def test_known_codes_become_enums() -> None:
    decoded = decode_message(encode_message(JobState(JOB_ID, 2, 1.0)))
    assert isinstance(decoded, JobState)
    assert decoded.state is JobStatus.RUNNING
    assert not JobStatus.RUNNING.final
    assert JobStatus.FAILED.final


def test_unknown_role_bits_are_kept() -> None:
    beat = Heartbeat("dtn://e/", Role(Role.EXECUTOR | 64), 1, 0.0, 5.0)
    decoded = decode_message(encode_message(beat))
    assert isinstance(decoded, Heartbeat)
    assert int(decoded.roles) == 66
    assert Role.EXECUTOR in decoded.roles


def test_heartbeat_load() -> None:
    beat = Heartbeat("dtn://e/", Role.EXECUTOR, 1, 0.0, 5.0, running_jobs=(JOB_ID,), max_jobs=4)
    assert beat.load == 0.25
    assert Heartbeat("dtn://d/", Role.DATASTORE, 1, 0.0, 5.0).load == 0.0


def test_result_ok_only_for_status_ok() -> None:
    assert JobResult(JOB_ID, "dtn://e/", ResultStatus.OK, exit_code=0).ok
    assert not JobResult(JOB_ID, "dtn://e/", ResultStatus.EXIT, exit_code=0).ok


def test_decode_as_checks_the_kind() -> None:
    data = encode_message(JobAccepted(JOB_ID, "dtn://b/"))
    assert decode_message_as(data, JobAccepted) == JobAccepted(JOB_ID, "dtn://b/")
    with pytest.raises(MessageDecodeError, match="expected a job-state message, got job-accepted"):
        JobState.from_cbor(data)


def test_data_delete_needs_exactly_one_target() -> None:
    with pytest.raises(UcpUsageError, match="exactly one of name and job_id"):
        DataDelete(1)
    with pytest.raises(UcpUsageError, match="exactly one"):
        DataDelete(1, name="a", job_id=JOB_ID)
    with pytest.raises(MessageDecodeError, match="data-delete message: data-delete needs"):
        decode_message(payload(t="data-delete", **{"request-id": 1}))


def test_names_and_eids_are_checked_on_construction() -> None:
    with pytest.raises(DataNameError, match=r"^name: name '/a' has an empty segment"):
        DataPut(1, "/a", b"", 0.0)
    with pytest.raises(FieldError, match=r"^reply_to: must be EID text, got bytes"):
        DataGet(1, "a", reply_to=b"dtn://c/")  # type: ignore[arg-type]
    with pytest.raises(FieldError, match=r"^executor: 'e' is not a URI"):
        JobResult(JOB_ID, "e", ResultStatus.OK)
    assert DataGet(1, "survey/*").query == "survey/*"


def test_inline_data_is_validated_and_read_only() -> None:
    with pytest.raises(UcpUsageError, match=r"inline_data\['/x'\]"):
        JobSubmission(simple_job(), {"/x": b""})
    submission = JobSubmission(simple_job(), {"a": b"1"})
    with pytest.raises(TypeError):
        submission.inline_data["b"] = b"2"  # type: ignore[index]


# -- strict decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated CBOR"),
        (b"\xff", "break outside"),
        (b"\x1c", "malformed CBOR initial byte 0x1c"),
        (b"\x5a\x00\x01\x00\x00ab", "truncated CBOR string"),
        (b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x01", "truncated CBOR"),
        (b"\xf8\x10", "malformed CBOR simple value"),
        (b"\x7f\x41a\xff", "malformed indefinite-length CBOR string"),
        (cbor2.dumps({"v": 1}) + b"\x00", "1 bytes after the CBOR item"),
        (b"\x81" * (MAX_DEPTH + 1) + b"\x00", f"nested deeper than {MAX_DEPTH}"),
        (cbor2.dumps([1, 2]), "a message is a CBOR map, got array"),
        (cbor2.dumps({"t": "heartbeat"}), "field 'v' .* must be an integer, got null"),
        (cbor2.dumps({"v": 2, "t": "heartbeat"}), "message version 2 is not supported"),
        (cbor2.dumps({"v": 1}), "field 't' .* must be text, got null"),
        (cbor2.dumps({"v": 1, "t": "job-teleport"}), "unknown message kind 'job-teleport'"),
        (
            payload(t="job-accepted", broker="dtn://b/"),
            "job-accepted message: field 'job-id' is missing",
        ),
        (
            payload(t="job-accepted", broker="dtn://b/", **{"job-id": b"short"}),
            "field 'job-id' must be a 16-byte UUID, got bytes",
        ),
        (
            payload(t="job-accepted", broker=7, **{"job-id": JOB_ID.bytes}),
            "field 'broker' must be text, got integer",
        ),
        (
            payload(t="job-state", state=True, at=1.0, **{"job-id": JOB_ID.bytes}),
            "field 'state' must be an unsigned integer, got bool",
        ),
        (
            payload(t="job-state", state=1, at=math.nan, **{"job-id": JOB_ID.bytes}),
            "field 'at' must be a finite number, got float",
        ),
        (
            payload(t="data-reply", status=-1, **{"request-id": 1}),
            "field 'status' must be an unsigned integer",
        ),
        (
            payload(t="data-get", query="a", **{"request-id": 2**64, "max-bytes": 1}),
            "field 'request-id' must be an unsigned integer",
        ),
        (
            payload(t="job-submit", job={"id": JOB_ID.bytes, "wasm": 5}),
            r"field 'job.wasm' must be bytes \(inline\) or text \(a data name\)",
        ),
        (
            payload(t="job-submit", job={"id": JOB_ID.bytes, "wasm": b"", "dirs": ["/etc"]}),
            r"job-submit message: dirs\[0\]: path '/etc' must be relative",
        ),
        (
            payload(t="job-submit", job={"id": JOB_ID.bytes, "wasm": b"", "env": {"A": 1}}),
            r"field 'job.env\['A'\]' must be text, got integer",
        ),
        (
            payload(
                t="job-submit", job={"id": JOB_ID.bytes, "wasm": b""}, **{"inline-data": {"a": "x"}}
            ),
            r"field 'inline-data\['a'\]' must be bytes, got text",
        ),
        (
            payload(
                t="heartbeat",
                node="dtn://e/",
                roles=2,
                sequence=1,
                interval=5,
                capabilities={"memory": 1, "disk": 1, "cpu-load": -1, "cpu-cores": 1},
                **{"sent-at": 0},
            ),
            "heartbeat message: cpu_load: must be a finite number >= 0",
        ),
        (
            payload(t="data-get-reply", status=0, items=[{"name": "a"}], **{"request-id": 1}),
            r"field 'items\[0\].data' is missing",
        ),
        (
            payload(
                t="job-result",
                executor="dtn://e/",
                status=0,
                attempt=1,
                timings=[1.0, -1.0],
                **{"job-id": JOB_ID.bytes, "started-at": 0, "finished-at": 0},
            ),
            r"field 'timings\[1\]' must be a finite number >= 0",
        ),
        (cbor2.dumps({"v": 1, "t": "data-get", "query": cbor2.CBORTag(4000, 1)}), "field"),
        (
            payload(t="data-put", name="a b", data=b"", at=0, **{"request-id": 1}),
            "data-put message: name: name 'a b' has the character ' '",
        ),
        (
            payload(t="data-get", query="a*b", **{"request-id": 1, "max-bytes": 1}),
            "data-get message: query: name 'a\\*b' has '\\*'",
        ),
        (
            payload(t="job-accepted", broker="broker-1", **{"job-id": JOB_ID.bytes}),
            "job-accepted message: broker: 'broker-1' is not a URI",
        ),
        (
            payload(
                t="job-result",
                executor="dtn://e/",
                status=0,
                attempt=1,
                published=["ok", "not ok"],
                **{"job-id": JOB_ID.bytes, "started-at": 0, "finished-at": 0},
            ),
            "job-result message: published\\[1\\]: name 'not ok'",
        ),
        (
            payload(
                t="status-reply",
                broker="dtn://b/",
                jobs=[],
                nodes=[{"node": "dtn://x", "roles": 1, "last-seen": 0}],
                **{"request-id": 1},
            ),
            "status-reply message: node: dtn SSP",
        ),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(data: bytes, match: str) -> None:
    with pytest.raises(MessageDecodeError, match=match):
        decode_message(data)


def test_undecodable_semantic_tags_become_decode_errors() -> None:
    # Tag 0 (date/time string) holding a bad date: cbor2 raises its own error inside.
    data = b"\xa2\x61v\x01\x61t\xc0\x63bad"
    with pytest.raises(MessageDecodeError, match="undecodable CBOR"):
        decode_message(data)


def test_payload_must_be_bytes() -> None:
    with pytest.raises(MessageDecodeError, match="payload must be bytes, got str"):
        decode_message("not bytes")  # type: ignore[arg-type]


def test_decode_job_info_rejects_bad_bytes() -> None:
    with pytest.raises(MessageDecodeError, match="job-info message: field 'id' is missing"):
        decode_job_info(cbor2.dumps({"wasm": b""}))
    with pytest.raises(MessageDecodeError, match="job-info message: name: "):
        decode_job_info(cbor2.dumps({"id": JOB_ID.bytes, "wasm": b"", "name": "\n"}))


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(MessageDecodeError):
        decode_message(data)


@settings(max_examples=300)
@given(messages, st.data())
def test_mutated_messages_raise_only_decode_errors(
    message: UcpMessage, data: st.DataObject
) -> None:
    encoded = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    for candidate in (bytes(encoded), bytes(encoded[:cut])):
        try:
            decoded = decode_message(candidate)
        except MessageDecodeError:
            continue
        assert decode_message(encode_message(decoded)) == decoded


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.sampled_from(sorted(MESSAGE_KINDS)), st.dictionaries(st.text(max_size=12), cbor_values))
def test_random_fields_of_every_kind_raise_only_decode_errors(
    kind: str, fields: dict[str, object]
) -> None:
    with contextlib.suppress(MessageDecodeError):
        decode_message(cbor2.dumps(fields | {"v": 1, "t": kind}))


@settings(max_examples=300)
@given(cbor_values)
def test_scan_accepts_all_well_formed_cbor(value: object) -> None:
    data = cbor2.dumps(value)
    try:
        decode_message(data)
    except MessageDecodeError as exc:
        assert "CBOR" not in str(exc) or "a message is a CBOR map" in str(exc)


def test_scan_accepts_indefinite_lengths() -> None:
    # {_ "v": 1, "t": "data-free-space", "request-id": (_ h'' ...) } built by hand: indefinite map,
    # indefinite text chunks for the kind, then a break.
    data = b"\xbf\x61v\x01\x61t\x7f\x64data\x6b-free-space\xff\x6arequest-id\x05\xff"
    message = decode_message(data)
    assert message.KIND == "data-free-space"


def test_data_get_reply_round_trip_keeps_job_ids() -> None:
    entry = dataclasses.replace(DataGet(1, "a/b"), cursor="next")
    assert decode_message(encode_message(entry)) == entry
    assert int(DataStatus.STALE) == 5
