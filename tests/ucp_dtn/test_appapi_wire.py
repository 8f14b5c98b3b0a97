"""The application API's frames and messages: round trips, and hostile bytes only ever raise
our protocol errors."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpv7 import BundleID, CreationTimestamp, parse_eid
from ucp_dtn.appapi import (
    AppApiProtocolError,
    DeliveryPush,
    ErrorCode,
    ErrorReply,
    FrameDecoder,
    FrameTooLargeError,
    Hello,
    Reply,
    bundle_id_from_wire,
    bundle_id_to_wire,
    decode_body,
    decode_request,
    decode_server_message,
    encode_frame,
    encode_request,
    encode_server_message,
    format_bundle_id,
)
from ucp_dtn.appapi.messages import (
    AddRouteRequest,
    ConfirmRequest,
    ConnectRequest,
    NodeInfoRequest,
    RegisterRequest,
    SendRequest,
    UnregisterRequest,
)

texts = st.text(max_size=30)
uints = st.integers(min_value=0, max_value=2**64 - 1)
ids = st.integers(min_value=0, max_value=2**32)
requests = st.one_of(
    st.builds(RegisterRequest, ids, texts, st.integers(min_value=1, max_value=1024)),
    st.builds(UnregisterRequest, ids, uints),
    st.builds(ConfirmRequest, ids, uints),
    st.builds(
        SendRequest,
        ids,
        destination=texts,
        payload=st.binary(max_size=200),
        lifetime_s=st.none() | st.floats(min_value=0.001, max_value=1e9),
        custody=st.booleans(),
        report_to=st.none() | texts,
        reports=st.frozensets(st.sampled_from(["received", "forwarded", "delivered", "deleted"])),
        source=st.none() | texts,
    ),
    st.builds(NodeInfoRequest, ids),
    st.builds(ConnectRequest, ids, texts, st.integers(min_value=1, max_value=65535)),
    st.builds(AddRouteRequest, ids, texts, texts),
)
bundle_ids = st.builds(
    BundleID,
    st.sampled_from([parse_eid("dtn://a/"), parse_eid("ipn:5.0")]),
    st.builds(CreationTimestamp, uints, uints),
) | st.builds(
    BundleID,
    st.just(parse_eid("dtn://b/")),
    st.builds(CreationTimestamp, uints, uints),
    uints,
    uints,
)
server_messages = st.one_of(
    st.builds(Hello, texts, st.tuples(st.integers(0, 9)), texts),
    st.builds(Reply, ids, st.dictionaries(st.sampled_from(["a", "b-c"]), uints | texts)),
    st.builds(ErrorReply, st.none() | ids, texts, texts),
    st.builds(
        DeliveryPush,
        registration=uints,
        delivery=uints,
        bundle_id=bundle_ids,
        destination=texts,
        report_to=texts,
        lifetime_ms=uints,
        flags=uints,
        admin_record=st.booleans(),
        payload=st.binary(max_size=100),
    ),
)


def frame_bodies(data: bytes, max_frame: int = 1024) -> list[bytes]:
    decoder = FrameDecoder(max_frame)
    decoder.feed(data)
    bodies = []
    while (body := decoder.next_body()) is not None:
        bodies.append(body)
    return bodies


@settings(max_examples=200)
@given(requests)
def test_requests_round_trip_through_frames(request: Any) -> None:
    (body,) = frame_bodies(encode_frame(encode_request(request)), 1 << 20)
    assert decode_request(decode_body(body)) == request


@settings(max_examples=200)
@given(server_messages)
def test_daemon_messages_round_trip(message: Any) -> None:
    (body,) = frame_bodies(encode_frame(encode_server_message(message)), 1 << 20)
    assert decode_server_message(decode_body(body)) == message


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=50), max_size=8), st.lists(st.integers(0, 500), max_size=6))
def test_frames_split_anywhere_come_out_whole(bodies: list[bytes], positions: list[int]) -> None:
    stream = b"".join(struct.pack(">I", len(body)) + body for body in bodies)
    cuts = sorted(position % (len(stream) + 1) for position in positions)
    decoder = FrameDecoder(100)
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        while (body := decoder.next_body()) is not None:
            out.append(body)
    assert out == bodies
    assert decoder.buffered == 0


def test_a_frame_above_the_limit_breaks_the_stream_for_good() -> None:
    decoder = FrameDecoder(10)
    decoder.feed(struct.pack(">I", 11))
    with pytest.raises(FrameTooLargeError, match="11 bytes exceeds the limit of 10") as info:
        decoder.next_body()
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE
    decoder.feed(struct.pack(">I", 1) + b"x")
    with pytest.raises(FrameTooLargeError):
        decoder.next_body()


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bodies_raise_only_protocol_errors(body: bytes) -> None:
    try:
        message = decode_body(body)
    except AppApiProtocolError:
        return
    for decode in (decode_request, decode_server_message):
        with contextlib.suppress(AppApiProtocolError):
            decode(message)


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
field_names = st.sampled_from(
    [
        "v",
        "t",
        "id",
        "endpoint",
        "window",
        "registration",
        "delivery",
        "destination",
        "payload",
        "lifetime",
        "custody",
        "report-to",
        "reports",
        "source",
        "host",
        "port",
        "pattern",
        "next-hop",
        "node-id",
        "versions",
        "code",
        "message",
        "bundle-id",
        "flags",
        "lifetime-ms",
        "admin-record",
    ]
)
types = st.sampled_from(
    [
        "register",
        "unregister",
        "confirm",
        "send",
        "node-info",
        "connect",
        "add-route",
        "hello",
        "ok",
        "error",
        "delivery",
        "nonsense",
    ]
)


@settings(max_examples=300)
@given(st.dictionaries(field_names, cbor_values), types, st.sampled_from([1, 1, 2, "1"]))
def test_maps_with_wrong_fields_raise_only_protocol_errors(
    fields: dict[str, Any], kind: str, version: object
) -> None:
    message = fields | {"v": version, "t": kind}
    body = cbor2.dumps(message)
    for decode in (decode_request, decode_server_message):
        with contextlib.suppress(AppApiProtocolError):
            decode(decode_body(body))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\xff", "not valid CBOR: CBOR break outside"),
        (b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "not valid CBOR"),
        (cbor2.dumps([1, 2]), "must be a CBOR map, got list"),
        (cbor2.dumps({1: 2}), "keys must be text"),
        (b"\x81" * 100_000 + b"\x00", "CBOR"),
        (cbor2.dumps({"v": 1, "t": "send", "id": 1}) + b"junk", "not valid CBOR"),
    ],
)
def test_bad_bodies(body: bytes, match: str) -> None:
    with pytest.raises(AppApiProtocolError, match=match):
        decode_body(body)


@pytest.mark.parametrize(
    ("message", "code", "match"),
    [
        ({"t": "send", "id": 1}, ErrorCode.BAD_REQUEST, "needs a protocol version"),
        ({"v": 2, "t": "send", "id": 1}, ErrorCode.UNSUPPORTED_VERSION, "version 2 is not"),
        ({"v": 1, "id": 1}, ErrorCode.BAD_REQUEST, "needs a type"),
        ({"v": 1, "t": "dance", "id": 1}, ErrorCode.UNKNOWN_TYPE, "unknown request type 'dance'"),
        ({"v": 1, "t": "node-info"}, ErrorCode.BAD_REQUEST, "'id' must be an unsigned integer"),
        ({"v": 1, "t": "node-info", "id": -1}, ErrorCode.BAD_REQUEST, "'id' must be"),
        (
            {"v": 1, "t": "send", "id": 1, "payload": b""},
            ErrorCode.BAD_REQUEST,
            "send: field 'destination' is missing",
        ),
        (
            {"v": 1, "t": "send", "id": 1, "destination": "dtn://b/", "payload": "text"},
            ErrorCode.BAD_REQUEST,
            "field 'payload' must be bytes, got text",
        ),
        (
            {
                "v": 1,
                "t": "send",
                "id": 1,
                "destination": "dtn://b/",
                "payload": b"",
                "lifetime": -1,
            },
            ErrorCode.BAD_REQUEST,
            "'lifetime' must be a positive number",
        ),
        (
            {
                "v": 1,
                "t": "send",
                "id": 1,
                "destination": "dtn://b/",
                "payload": b"",
                "reports": ["eaten"],
            },
            ErrorCode.BAD_REQUEST,
            r"field 'reports\[0\]' must be one of received, .*, got 'eaten'",
        ),
        (
            {"v": 1, "t": "send", "id": 1, "destination": "dtn://b/", "payload": b"", "custody": 1},
            ErrorCode.BAD_REQUEST,
            "'custody' must be a bool, got integer",
        ),
        (
            {"v": 1, "t": "register", "id": 1, "endpoint": "x", "window": 0},
            ErrorCode.BAD_REQUEST,
            "field 'window' must be within 1..1024, got 0",
        ),
        (
            {"v": 1, "t": "connect", "id": 1, "host": "h", "port": 0},
            ErrorCode.BAD_REQUEST,
            "field 'port' must be within 1..65535, got 0",
        ),
        (
            {"v": 1, "t": "confirm", "id": 1, "delivery": True},
            ErrorCode.BAD_REQUEST,
            "'delivery' must be an unsigned integer, got bool",
        ),
    ],
)
def test_bad_requests_name_the_problem(message: dict[str, Any], code: str, match: str) -> None:
    with pytest.raises(AppApiProtocolError, match=match) as info:
        decode_request(message)
    assert info.value.code == code


def test_bundle_ids() -> None:
    plain = BundleID(parse_eid("dtn://a/"), CreationTimestamp(849_000_000_123, 7))
    assert format_bundle_id(plain) == "dtn://a/-849000000123-7"
    fragment = BundleID(parse_eid("ipn:5.0"), CreationTimestamp(1, 2), 100, 50)
    assert format_bundle_id(fragment) == "ipn:5.0-1-2-100-50"
    for bundle_id in (plain, fragment):
        assert bundle_id_from_wire(bundle_id_to_wire(bundle_id)) == bundle_id
    with pytest.raises(AppApiProtocolError, match="bundle-id: must have both offset and length"):
        bundle_id_from_wire({"source": "dtn://a/", "time": 1, "seq": 0, "offset": 3})
    with pytest.raises(
        AppApiProtocolError, match=r"bundle-id: field 'source' must be an EID: .*URI"
    ):
        bundle_id_from_wire({"source": "nope", "time": 1, "seq": 0})
