"""Command line tools of :mod:`convergence`.

``python -m convergence decode [HEX | -] [--raw]`` decodes one direction of a captured
TCPCLv4 byte stream (contact header and/or messages) and prints each value as JSON, one per
line. Malformed input prints one ``error: ...`` line on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from .tcpcl import (
    MAGIC,
    VERSION,
    ContactHeader,
    DecodeError,
    ExtensionItem,
    Keepalive,
    Message,
    MessageReader,
    MessageType,
    MsgReject,
    SessInit,
    SessTerm,
    TransferExtensionType,
    XferAck,
    XferRefuse,
    XferSegment,
    find_transfer_length,
)

__all__ = ["main", "to_json"]


def _flag_names(flags: enum.IntFlag, members: type[enum.IntFlag]) -> list[str | int]:
    """Names of the known bits set in ``flags``, then the reserved bits as one int."""
    value = int(flags)
    names: list[str | int] = []
    for member in members:
        if value & member.value and member.name is not None:
            names.append(member.name)
            value &= ~member.value
    if value:
        names.append(value)
    return names


def _code(value: enum.IntEnum | int) -> str | int:
    return value.name if isinstance(value, enum.IntEnum) else value


def _items(items: Sequence[ExtensionItem], *, transfer: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        entry: dict[str, Any] = {
            "type": item.item_type,
            "critical": item.critical,
            "flags": int(item.flags),
            "value": item.value.hex(),
        }
        if transfer and item.item_type == TransferExtensionType.TRANSFER_LENGTH:
            entry["type_name"] = TransferExtensionType.TRANSFER_LENGTH.name
            try:
                entry["total_length"] = find_transfer_length([item])
            except DecodeError as exc:
                entry["error"] = exc.description
        out.append(entry)
    return out


def to_json(value: ContactHeader | Message, *, max_data: int | None = None) -> dict[str, Any]:
    """A JSON-ready description of a decoded contact header or message."""
    if isinstance(value, ContactHeader):
        return {
            "message": "CONTACT_HEADER",
            "magic": MAGIC.decode("ascii"),
            "version": value.version,
            "flags": _flag_names(value.flags, type(value.flags)),
        }
    if isinstance(value, SessInit):
        return {
            "message": "SESS_INIT",
            "keepalive_interval": value.keepalive_interval,
            "segment_mru": value.segment_mru,
            "transfer_mru": value.transfer_mru,
            "node_id": value.node_id,
            "extensions": _items(value.extensions, transfer=False),
        }
    if isinstance(value, XferSegment):
        data = bytes(value.data)
        shown = data if max_data is None else data[:max_data]
        out: dict[str, Any] = {
            "message": "XFER_SEGMENT",
            "flags": _flag_names(value.flags, type(value.flags)),
            "transfer_id": value.transfer_id,
        }
        if value.start:
            out["extensions"] = _items(value.extensions, transfer=True)
        out["data_length"] = len(data)
        out["data"] = shown.hex()
        if len(shown) < len(data):
            out["data_truncated"] = True
        return out
    if isinstance(value, XferAck):
        return {
            "message": "XFER_ACK",
            "flags": _flag_names(value.flags, type(value.flags)),
            "transfer_id": value.transfer_id,
            "acknowledged_length": value.acknowledged_length,
        }
    if isinstance(value, XferRefuse):
        return {
            "message": "XFER_REFUSE",
            "reason": _code(value.reason),
            "reason_code": int(value.reason),
            "transfer_id": value.transfer_id,
        }
    if isinstance(value, Keepalive):
        return {"message": "KEEPALIVE"}
    if isinstance(value, SessTerm):
        return {
            "message": "SESS_TERM",
            "flags": _flag_names(value.flags, type(value.flags)),
            "reason": _code(value.reason),
            "reason_code": int(value.reason),
        }
    if isinstance(value, MsgReject):
        try:
            rejected: str | int = MessageType(value.message_type).name
        except ValueError:
            rejected = value.message_type
        return {
            "message": "MSG_REJECT",
            "reason": _code(value.reason),
            "reason_code": int(value.reason),
            "rejected_message_type": rejected,
        }
    raise TypeError(f"not a TCPCLv4 value: {value!r}")


class _InputError(Exception):
    """The command line input cannot be read as a byte stream."""


def _read_input(source: str, raw: bool) -> bytes:
    if raw:
        if source != "-":
            raise _InputError("--raw reads binary data from stdin; give '-' or no HEX")
        return sys.stdin.buffer.read()
    text = sys.stdin.read() if source == "-" else source
    text = text.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    text = "".join(text.replace(":", " ").split())
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _InputError("input is not hexadecimal (use --raw for binary on stdin)") from None


def _decode(data: bytes, *, max_data: int | None) -> tuple[list[dict[str, Any]], str | None]:
    """Decode a whole captured stream; return the values and the problem, if any."""
    # A stream starts with the contact header ("dtn!") or directly with a message; 0x64 is
    # no message type, so the first octet tells them apart.
    reader = MessageReader(
        contact_header=data[:1] == MAGIC[:1],
        max_segment_length=None,
        max_extensions_length=0xFFFF_FFFF,
    )
    reader.feed(data)
    values: list[dict[str, Any]] = []
    try:
        while (value := reader.next_message()) is not None:
            values.append(to_json(value, max_data=max_data))
            if isinstance(value, ContactHeader) and value.version != VERSION:
                if reader.buffered:
                    return values, (
                        f"TCPCL version {value.version} stream: only version {VERSION} "
                        "messages can be decoded"
                    )
                break
    except DecodeError as exc:
        return values, exc.description
    if reader.buffered:
        if reader.expecting_contact_header:
            what = "contact header"
        else:
            try:
                what = MessageType(data[len(data) - reader.buffered]).name
            except ValueError:  # pragma: no cover - unknown types raise DecodeError above
                what = "message"
        return values, f"truncated input: incomplete {what} ({reader.buffered} octets left)"
    return values, None


def _cmd_decode(args: argparse.Namespace) -> int:
    try:
        data = _read_input(args.hex, args.raw)
    except _InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    values, problem = _decode(data, max_data=args.max_data)
    if args.list:
        print(json.dumps(values))
    else:
        for value in values:
            print(json.dumps(value))
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m convergence", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v INFO, -vv DEBUG logging"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    decode = commands.add_parser(
        "decode",
        help="decode a captured TCPCLv4 byte stream (one direction) to JSON",
        description="Decode one direction of a TCPCLv4 byte stream (contact header and/or "
        "messages) and print each value as a JSON object, one per line.",
    )
    decode.add_argument(
        "hex",
        nargs="?",
        default="-",
        metavar="HEX",
        help="the stream as hexadecimal (spaces and colons allowed); '-' or nothing reads "
        "it from stdin",
    )
    decode.add_argument("--raw", action="store_true", help="read binary data from stdin")
    decode.add_argument("--list", action="store_true", help="print one JSON list instead")
    decode.add_argument(
        "--max-data",
        type=int,
        default=None,
        metavar="OCTETS",
        help="show at most this many octets of each segment's data",
    )
    decode.set_defaults(func=_cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
