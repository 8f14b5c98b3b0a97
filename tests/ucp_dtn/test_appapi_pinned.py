"""The wire form of every application-API message, pinned byte for byte (whole frames:
the 4-byte length, then the CBOR map).

Encoding a case must give its bytes and decoding them must give it back. A change here is a
change of the protocol: it needs a new version, not an edit.
"""

from __future__ import annotations

from typing import Any

import pytest

from bpv7 import BundleID, CreationTimestamp, parse_eid
from ucp_dtn.appapi import (
    DeliveryPush,
    ErrorCode,
    ErrorReply,
    Hello,
    Reply,
    decode_body,
    decode_request,
    decode_server_message,
    encode_frame,
    encode_request,
    encode_server_message,
)
from ucp_dtn.appapi.messages import (
    AddRouteRequest,
    ConfirmRequest,
    ConnectRequest,
    NodeInfoRequest,
    RegisterRequest,
    SecurityReport,
    SendRequest,
    UnregisterRequest,
)

BUNDLE_ID = BundleID(parse_eid("dtn://a/"), CreationTimestamp(849_000_000_123, 7))
FRAGMENT_ID = BundleID(parse_eid("ipn:5.0"), CreationTimestamp(1, 2), 100, 50)

PINNED_REQUESTS = [
    pytest.param(
        RegisterRequest(1, "inbox", window=32),
        "0000002ba561760162696401617468726567697374657268656e64706f696e7465696e"
        "626f786677696e646f771820",
        id="register",
    ),
    pytest.param(
        RegisterRequest(2, "dtn://a/inbox"),
        "00000032a561760162696402617468726567697374657268656e64706f696e746d6474"
        "6e3a2f2f612f696e626f786677696e646f7710",
        id="register-default-window",
    ),
    pytest.param(
        UnregisterRequest(3, registration=1),
        "00000023a46176016269640361746a756e72656769737465726c726567697374726174696f6e01",
        id="unregister",
    ),
    pytest.param(
        ConfirmRequest(4, delivery=17),
        "0000001ca461760162696404617467636f6e6669726d6864656c697665727911",
        id="confirm",
    ),
    pytest.param(
        SendRequest(
            5,
            destination="dtn://b/inbox",
            payload=b"payload",
            lifetime_s=3600.0,
            custody=True,
            report_to="dtn://a/reports",
            reports=frozenset({"delivered", "received"}),
            source="dtn://a/app",
        ),
        "0000009daa6176016269640561746473656e646b64657374696e6174696f6e6d64746e"
        "3a2f2f622f696e626f78677061796c6f6164477061796c6f616467637573746f6479f5"
        "686c69666574696d65fb40ac200000000000697265706f72742d746f6f64746e3a2f2f"
        "612f7265706f727473677265706f727473826964656c69766572656468726563656976"
        "656466736f757263656b64746e3a2f2f612f617070",
        id="send-full",
    ),
    pytest.param(
        SendRequest(6, destination="ipn:5.3", payload=b""),
        "00000035a66176016269640661746473656e646b64657374696e6174696f6e6769706e"
        "3a352e33677061796c6f61644067637573746f6479f4",
        id="send-minimal",
    ),
    pytest.param(
        SendRequest(
            10,
            destination="dtn://c/inbox",
            payload=b"secret",
            integrity="a-c-mac",
            confidentiality="a-c-aes",
        ),
        "0000006ba86176016269640a61746473656e646b64657374696e6174696f6e6d64746e"
        "3a2f2f632f696e626f78677061796c6f61644673656372657467637573746f6479f469"
        "696e7465677269747967612d632d6d61636f636f6e666964656e7469616c6974796761"
        "2d632d616573",
        id="send-secured",
    ),
    pytest.param(
        NodeInfoRequest(7),
        "00000014a3617601626964076174696e6f64652d696e666f",
        id="node-info",
    ),
    pytest.param(
        ConnectRequest(8, host="127.0.0.1", port=4556),
        "00000029a561760162696408617467636f6e6e65637464686f7374693132372e302e30"
        "2e3164706f72741911cc",
        id="connect",
    ),
    pytest.param(
        AddRouteRequest(9, pattern="dtn://c/*", next_hop="dtn://b/"),
        "00000038a5617601626964096174696164642d726f757465677061747465726e696474"
        "6e3a2f2f632f2a686e6578742d686f706864746e3a2f2f622f",
        id="add-route",
    ),
]


@pytest.mark.parametrize(("request_", "pinned"), PINNED_REQUESTS)
def test_requests_are_pinned(request_: Any, pinned: str) -> None:
    frame = bytes.fromhex(pinned)
    assert encode_frame(encode_request(request_)) == frame
    assert decode_request(decode_body(frame[4:])) == request_


def test_every_request_type_is_pinned() -> None:
    pinned = {type(param.values[0]) for param in PINNED_REQUESTS}
    assert pinned == {
        RegisterRequest,
        UnregisterRequest,
        ConfirmRequest,
        SendRequest,
        NodeInfoRequest,
        ConnectRequest,
        AddRouteRequest,
    }


PINNED_SERVER_MESSAGES = [
    pytest.param(
        Hello("dtn://a/"),
        "00000039a561760161746568656c6c6f676e6f64652d69646864746e3a2f2f612f6876"
        "657273696f6e73810168736f667477617265677563702d64746e",
        id="hello",
    ),
    pytest.param(
        Hello("dtn://a/", versions=(1, 2), software="ucp-dtn 0.1"),
        "0000003ea561760161746568656c6c6f676e6f64652d69646864746e3a2f2f612f6876"
        "657273696f6e7382010268736f6674776172656b7563702d64746e20302e31",
        id="hello-full",
    ),
    pytest.param(
        Reply(1, {"registration": 3, "endpoint": "dtn://a/inbox"}),
        "00000032a56176016c726567697374726174696f6e0368656e64706f696e746d64746e"
        "3a2f2f612f696e626f786174626f6b62696401",
        id="reply",
    ),
    pytest.param(
        Reply(4),
        "0000000da36176016174626f6b62696404",
        id="reply-empty",
    ),
    pytest.param(
        Reply(5, {"bundle-id": {"source": "dtn://a/", "time": 1, "seq": 2}}),
        "00000033a46176016962756e646c652d6964a366736f757263656864746e3a2f2f612f"
        "6474696d650163736571026174626f6b62696405",
        id="reply-bundle-id",
    ),
    pytest.param(
        ErrorReply(6, ErrorCode.BAD_REQUEST, "send: field 'destination' is missing"),
        "0000004fa56176016174656572726f726269640664636f64656b6261642d7265717565"
        "7374676d657373616765782473656e643a206669656c64202764657374696e6174696f"
        "6e27206973206d697373696e67",
        id="error",
    ),
    pytest.param(
        ErrorReply(None, ErrorCode.UNKNOWN_TYPE, "unknown request type 'x'"),
        "00000044a56176016174656572726f72626964f664636f64656c756e6b6e6f776e2d74"
        "797065676d6573736167657818756e6b6e6f776e207265717565737420747970652027"
        "7827",
        id="error-without-id",
    ),
    pytest.param(
        DeliveryPush(
            registration=1,
            delivery=2,
            bundle_id=BUNDLE_ID,
            destination="dtn://b/inbox",
            report_to="dtn:none",
            lifetime_ms=86_400_000,
            flags=0x10,
            admin_record=False,
            payload=b"hello",
        ),
        "000000b6ab61760161746864656c69766572796c726567697374726174696f6e016864"
        "656c6976657279026962756e646c652d6964a366736f757263656864746e3a2f2f612f"
        "6474696d651b000000c5ac57ea7b63736571076b64657374696e6174696f6e6d64746e"
        "3a2f2f622f696e626f78697265706f72742d746f6864746e3a6e6f6e656b6c69666574"
        "696d652d6d731a05265c0065666c616773106c61646d696e2d7265636f7264f4677061"
        "796c6f61644568656c6c6f",
        id="delivery",
    ),
    pytest.param(
        DeliveryPush(
            registration=1,
            delivery=4,
            bundle_id=BUNDLE_ID,
            destination="dtn://c/inbox",
            report_to="dtn://a/",
            lifetime_ms=60_000,
            flags=0,
            admin_record=False,
            payload=b"secret",
            security=(
                SecurityReport("confidentiality", 1, "dtn://a/", 2, "decrypted", "a-c-aes"),
                SecurityReport("integrity", 1, "dtn://a/", 3, "verified", "mesh", "dtn://a/"),
            ),
        ),
        "00000175ac61760161746864656c69766572796c726567697374726174696f6e016864"
        "656c6976657279046962756e646c652d6964a366736f757263656864746e3a2f2f612f"
        "6474696d651b000000c5ac57ea7b63736571076b64657374696e6174696f6e6d64746e"
        "3a2f2f632f696e626f78697265706f72742d746f6864746e3a2f2f612f6b6c69666574"
        "696d652d6d7319ea6065666c616773006c61646d696e2d7265636f7264f4677061796c"
        "6f61644673656372657468736563757269747982a667736572766963656f636f6e6669"
        "64656e7469616c697479667461726765740166736f757263656864746e3a2f2f612f67"
        "636f6e7465787402676f7574636f6d6569646563727970746564636b657967612d632d"
        "616573a7677365727669636569696e74656772697479667461726765740166736f7572"
        "63656864746e3a2f2f612f67636f6e7465787403676f7574636f6d6568766572696669"
        "6564636b6579646d657368667369676e65726864746e3a2f2f612f",
        id="delivery-secured",
    ),
    pytest.param(
        DeliveryPush(
            registration=1,
            delivery=3,
            bundle_id=FRAGMENT_ID,
            destination="ipn:7.1",
            report_to="ipn:5.0",
            lifetime_ms=1000,
            flags=0x11,
            admin_record=True,
            payload=b"",
        ),
        "000000b1ab61760161746864656c69766572796c726567697374726174696f6e016864"
        "656c6976657279036962756e646c652d6964a566736f757263656769706e3a352e3064"
        "74696d65016373657102666f66667365741864666c656e67746818326b64657374696e"
        "6174696f6e6769706e3a372e31697265706f72742d746f6769706e3a352e306b6c6966"
        "6574696d652d6d731903e865666c616773116c61646d696e2d7265636f7264f5677061"
        "796c6f616440",
        id="delivery-fragment",
    ),
]


@pytest.mark.parametrize(("message", "pinned"), PINNED_SERVER_MESSAGES)
def test_daemon_messages_are_pinned(message: Any, pinned: str) -> None:
    frame = bytes.fromhex(pinned)
    assert encode_frame(encode_server_message(message)) == frame
    assert decode_server_message(decode_body(frame[4:])) == message


def test_every_daemon_message_type_is_pinned() -> None:
    pinned = {type(param.values[0]) for param in PINNED_SERVER_MESSAGES}
    assert pinned == {Hello, Reply, ErrorReply, DeliveryPush}
