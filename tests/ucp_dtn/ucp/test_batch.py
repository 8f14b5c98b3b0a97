"""The ``batch`` message: several whole messages in one payload, never a batch in a batch."""

from __future__ import annotations

import uuid

import cbor2
import pytest

from ucp_dtn.ucp import (
    MAX_BATCH_MESSAGES,
    FieldError,
    JobAccepted,
    JobState,
    JobStatus,
    MessageBatch,
    MessageDecodeError,
    decode_message,
    decode_messages,
    encode_message,
)

BROKER = "dtn://hub/ucp/broker"


def accepted(number: int) -> JobAccepted:
    return JobAccepted(uuid.UUID(int=number), BROKER)


def wire(message: object) -> object:
    return cbor2.loads(encode_message(message))  # type: ignore[arg-type]


def test_a_batch_round_trips_in_order() -> None:
    messages = (
        *tuple(accepted(n) for n in range(1, 6)),
        JobState(uuid.UUID(int=1), JobStatus.DONE, 2.0),
    )
    batch = MessageBatch(messages)
    decoded = decode_message(encode_message(batch))
    assert isinstance(decoded, MessageBatch)
    assert decoded.messages == messages


def test_each_message_in_a_batch_is_its_own_payload_map() -> None:
    batch = MessageBatch((accepted(1), accepted(2)))
    assert wire(batch) == {"v": 1, "t": "batch", "messages": [wire(accepted(1)), wire(accepted(2))]}


@pytest.mark.parametrize("count", [0, 1, MAX_BATCH_MESSAGES + 1])
def test_a_batch_holds_two_to_the_maximum(count: int) -> None:
    with pytest.raises(FieldError, match="a batch holds 2 to 256 messages"):
        MessageBatch(tuple(accepted(n) for n in range(count)))
    payload = cbor2.dumps(
        {"v": 1, "t": "batch", "messages": [wire(accepted(n)) for n in range(count)]}
    )
    with pytest.raises(MessageDecodeError, match="batch message: messages: a batch holds"):
        decode_message(payload)


def test_no_batch_inside_a_batch() -> None:
    inner = MessageBatch((accepted(1), accepted(2)))
    with pytest.raises(FieldError, match=r"messages\[1\]: must be a UCP message other than"):
        MessageBatch((accepted(3), inner))
    payload = cbor2.dumps({"v": 1, "t": "batch", "messages": [wire(accepted(3)), wire(inner)]})
    with pytest.raises(MessageDecodeError, match=r"'messages\[1\]' is a batch inside a batch"):
        decode_message(payload)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"v": 1, "t": "nope"}, r"'messages\[1\]' unknown message kind 'nope'"),
        ({"v": 9, "t": "job-accepted"}, r"'messages\[1\]' message version 9 is not supported"),
        ("text", r"'messages\[1\]' a message is a CBOR map, got text"),
        (
            {"v": 1, "t": "job-accepted", "job-id": b"short", "broker": BROKER},
            r"'messages\[1\]' job-accepted message: field 'job-id'",
        ),
    ],
)
def test_one_bad_message_makes_the_batch_malformed(bad: object, match: str) -> None:
    payload = cbor2.dumps({"v": 1, "t": "batch", "messages": [wire(accepted(1)), bad]})
    with pytest.raises(MessageDecodeError, match=match):
        decode_message(payload)


def test_messages_must_be_an_array() -> None:
    payload = cbor2.dumps({"v": 1, "t": "batch", "messages": {"a": 1}})
    with pytest.raises(MessageDecodeError, match="field 'messages'"):
        decode_message(payload)


def test_a_receiver_keeps_the_good_messages_of_a_batch() -> None:
    payload = cbor2.dumps(
        {"v": 1, "t": "batch", "messages": [wire(accepted(1)), {"v": 1, "t": "nope"},
                                            wire(MessageBatch((accepted(7), accepted(8)))),
                                            wire(accepted(2))]}
    )  # fmt: skip
    decoded = decode_messages(payload)
    assert decoded.batch
    assert decoded.messages == (accepted(1), accepted(2))
    assert [str(error) for error in decoded.errors] == [
        "batch message: messages[1]: unknown message kind 'nope'",
        "batch message: messages[2]: is a batch inside a batch",
    ]
    alone = decode_messages(encode_message(accepted(3)))
    assert (alone.messages, alone.errors, alone.batch) == ((accepted(3),), (), False)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"v": 1, "t": "batch", "messages": "x"}, "must be an array of 2 to 256"),
        ({"v": 1, "t": "batch", "messages": [{"v": 1, "t": "job-accepted"}]}, "2 to 256"),
        ({"v": 2, "t": "batch", "messages": []}, "message version 2 is not supported"),
        ({"v": 1, "t": "nope"}, "unknown message kind 'nope'"),
    ],
)
def test_a_receiver_rejects_what_is_no_message_or_batch(payload: object, match: str) -> None:
    with pytest.raises(MessageDecodeError, match=match):
        decode_messages(cbor2.dumps(payload))
