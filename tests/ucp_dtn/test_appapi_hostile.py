"""Absurd EIDs and endpoint names over the application API's real Unix socket: each gets a typed
error reply with a short message, and the daemon side keeps serving the same connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from bpv7 import DtnEID, parse_eid
from ucp_dtn.appapi import AppApiError, ErrorCode, api_eid, resolve_endpoint

from .test_appapi import WAIT, RawClient, serving

HUGE = "dtn://a/" + "x" * 100_000

REGISTER = [
    HUGE,
    "x" * 100_000,
    "../../etc",
    "dtn://a/../../etc",
    "inbox/../../etc",
    "in\x00box",
    "in\nbox",
    "in\x7fbox",
    "dtn://a/in box",
    "a//b",
    "./x",
    "dtn://a\x00/x",
]
SEND: list[tuple[str, Any]] = [
    ("destination", HUGE),
    ("destination", "dtn://b/../../etc"),
    ("destination", "dtn://b/\x00"),
    ("destination", "ipn:1." + "9" * 5_000),
    ("report-to", "dtn://a/\x1b[31m"),
    ("source", "dtn://a/" + "." * 2),
]


async def test_absurd_names_get_typed_error_replies(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    async with serving(path) as (node, server):
        raw = await RawClient.open(path)
        assert (await raw.message() or {}).get("t") == "hello"
        replies = []
        for number, endpoint in enumerate(REGISTER):
            replies.append(
                await raw.request({"v": 1, "t": "register", "id": number, "endpoint": endpoint})
            )
        for number, (field, value) in enumerate(SEND, start=100):
            message = {"v": 1, "t": "send", "id": number, "destination": "dtn://b/x"}
            message["payload"] = b"p"
            message[field] = value
            replies.append(await raw.request(message))
        for reply in replies:
            assert reply["t"] == "error", reply
            assert len(reply["message"]) < 300 and "\n" not in reply["message"]
        codes = [reply["code"] for reply in replies]
        assert codes == [ErrorCode.BAD_ENDPOINT] * len(REGISTER) + [ErrorCode.BAD_REQUEST] * len(
            SEND
        )
        assert "too long (at most 1024)" in replies[0]["message"]
        assert "no empty, . or .. part" in replies[2]["message"]
        # Nothing was registered or sent, and the same connection is still served.
        assert node.statistics().registrations == 0
        reply = await raw.request({"v": 1, "t": "register", "id": 999, "endpoint": "in-box/ok"})
        assert reply["t"] == "ok" and reply["endpoint"] == "dtn://a/in-box/ok"
        assert server.statistics().errors == len(replies)
        with trio.fail_after(WAIT):
            await raw.stream.aclose()


@pytest.mark.parametrize(
    ("node", "text"),
    [("dtn://a/", "~group/x.y_z+1-2"), ("dtn://a/", "dtn://a/"), ("ipn:5.0", "7")],
)
def test_plain_names_are_taken(node: str, text: str) -> None:
    eid = resolve_endpoint(parse_eid(node), text)
    assert str(eid).endswith(text.removeprefix("dtn://a/"))


@pytest.mark.parametrize("text", ["../x", "7/..", "x"])
def test_an_ipn_node_takes_service_numbers_only(text: str) -> None:
    with pytest.raises(AppApiError, match="service number"):
        resolve_endpoint(parse_eid("ipn:5.0"), text)


def test_remote_eids_keep_the_rfc_grammar_but_not_dot_segments() -> None:
    assert api_eid("dtn://b/~all", "destination") == DtnEID("b", "~all")
    with pytest.raises(AppApiError, match=r"invalid destination 'dtn://b/a/\./c'"):
        api_eid("dtn://b/a/./c", "destination")
