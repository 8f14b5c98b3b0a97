"""``python -m convergence decode``: a captured TCPCLv4 stream printed as JSON lines."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from convergence.__main__ import main
from convergence.tcpcl import (
    ContactFlags,
    ContactHeader,
    ExtensionFlags,
    ExtensionItem,
    Keepalive,
    MsgReject,
    MsgRejectReason,
    SegmentFlags,
    SessInit,
    SessTerm,
    SessTermFlags,
    SessTermReason,
    XferAck,
    XferRefuse,
    XferRefuseReason,
    XferSegment,
    encode_contact_header,
    encode_message,
)

from .tcpcl_pair import established_pair

STREAM = (
    encode_contact_header(ContactHeader(flags=ContactFlags.CAN_TLS))
    + encode_message(
        SessInit(30, 1000, 2000, "dtn://a/", (ExtensionItem(0x8001, b"\x01", ExtensionFlags(1)),))
    )
    + encode_message(
        XferSegment(SegmentFlags.START, 0, b"hello", (ExtensionItem.transfer_length(7),))
    )
    + encode_message(XferSegment(SegmentFlags.END | 0x80, 0, b"!!"))
    + encode_message(XferAck(SegmentFlags.START | SegmentFlags.END, 3, 9))
    + encode_message(XferRefuse(XferRefuseReason.SESSION_TERMINATING, 4))
    + encode_message(XferRefuse(0x99, 5))
    + encode_message(Keepalive())
    + encode_message(MsgReject(MsgRejectReason.MESSAGE_TYPE_UNKNOWN, 0xEE))
    + encode_message(SessTerm(SessTermReason.IDLE_TIMEOUT, SessTermFlags.REPLY))
)

EXPECTED = [
    {"message": "CONTACT_HEADER", "magic": "dtn!", "version": 4, "flags": ["CAN_TLS"]},
    {
        "message": "SESS_INIT",
        "keepalive_interval": 30,
        "segment_mru": 1000,
        "transfer_mru": 2000,
        "node_id": "dtn://a/",
        "extensions": [{"type": 0x8001, "critical": True, "flags": 1, "value": "01"}],
    },
    {
        "message": "XFER_SEGMENT",
        "flags": ["START"],
        "transfer_id": 0,
        "extensions": [
            {
                "type": 1,
                "critical": False,
                "flags": 0,
                "value": "0000000000000007",
                "type_name": "TRANSFER_LENGTH",
                "total_length": 7,
            }
        ],
        "data_length": 5,
        "data": "68656c6c6f",
    },
    {
        "message": "XFER_SEGMENT",
        "flags": ["END", 0x80],
        "transfer_id": 0,
        "data_length": 2,
        "data": "2121",
    },
    {
        "message": "XFER_ACK",
        "flags": ["END", "START"],
        "transfer_id": 3,
        "acknowledged_length": 9,
    },
    {
        "message": "XFER_REFUSE",
        "reason": "SESSION_TERMINATING",
        "reason_code": 6,
        "transfer_id": 4,
    },
    {"message": "XFER_REFUSE", "reason": 0x99, "reason_code": 0x99, "transfer_id": 5},
    {"message": "KEEPALIVE"},
    {
        "message": "MSG_REJECT",
        "reason": "MESSAGE_TYPE_UNKNOWN",
        "reason_code": 1,
        "rejected_message_type": 0xEE,
    },
    {"message": "SESS_TERM", "flags": ["REPLY"], "reason": "IDLE_TIMEOUT", "reason_code": 1},
]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_decodes_every_message_kind(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, err = run(["decode", STREAM.hex()], capsys)
    assert status == 0 and err == ""
    assert [json.loads(line) for line in lines] == EXPECTED


def test_list_output_and_hex_formatting(capsys: pytest.CaptureFixture[str]) -> None:
    text = "0x" + ":".join(f"{b:02X}" for b in STREAM[:6]) + "\n " + STREAM[6:].hex()
    status, lines, _ = run(["decode", "--list", text], capsys)
    assert status == 0 and len(lines) == 1
    assert json.loads(lines[0]) == EXPECTED


def test_messages_without_contact_header_and_data_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = encode_message(XferSegment(SegmentFlags.START | SegmentFlags.END, 1, b"abcdef"))
    status, lines, _ = run(["decode", "--max-data", "2", stream.hex()], capsys)
    assert status == 0
    (value,) = [json.loads(line) for line in lines]
    assert value["data"] == "6162" and value["data_length"] == 6 and value["data_truncated"]


def test_reads_hex_and_raw_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(STREAM.hex().encode())))
    status, lines, _ = run(["decode", "-"], capsys)
    assert status == 0 and len(lines) == len(EXPECTED)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(STREAM)))
    status, lines, _ = run(["decode", "--raw"], capsys)
    assert status == 0 and [json.loads(line) for line in lines] == EXPECTED


def test_decodes_a_real_session_transcript(capsys: pytest.CaptureFixture[str]) -> None:
    pair = established_pair()
    pair.client.send_transfer(b"bundle")
    pair.client.close()
    pair.pump()
    for session, last in (
        (pair.client, ["SESS_TERM", []]),
        (pair.server, ["SESS_TERM", ["REPLY"]]),
    ):
        status, lines, _ = run(["decode", bytes(pair.sent[session]).hex()], capsys)
        assert status == 0
        values = [json.loads(line) for line in lines]
        assert values[0]["message"] == "CONTACT_HEADER"
        assert [values[-1]["message"], values[-1]["flags"]] == last


@pytest.mark.parametrize(
    ("argv", "printed", "problem"),
    [
        (["decode", "zz"], 0, "input is not hexadecimal"),
        (["decode", "--raw", "0400"], 0, "--raw reads binary data from stdin"),
        (["decode", "64746e"], 0, "truncated input: incomplete contact header (3 octets left)"),
        (["decode", "64780000"], 0, "bad contact header magic"),
        (["decode", "686900"], 0, "unknown message type 0x68"),
        (["decode", "0404ee"], 2, "unknown message type 0xee"),
        (["decode", "04" + "0100"], 1, "truncated input: incomplete XFER_SEGMENT (2 octets left)"),
        (["decode", "64746e21030000"], 1, "TCPCL version 3 stream"),
        (["decode", "07" + "00" * 19 + "02ff00" + "00000000"], 0, "not valid UTF-8"),
    ],
)
def test_malformed_input_prints_one_line_and_exits_1(
    argv: list[str], printed: int, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines, err = run(argv, capsys)
    assert status == 1
    assert len(lines) == printed
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and problem in err


def test_version_3_contact_header_alone_is_fine(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, _ = run(["decode", "64746e210300"], capsys)
    assert status == 0 and json.loads(lines[0])["version"] == 3


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convergence", "decode", "--raw"],
        input=STREAM[:10],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[0]) == EXPECTED[0]
    assert result.stderr.decode().strip() == (
        "error: truncated input: incomplete SESS_INIT (4 octets left)"
    )
