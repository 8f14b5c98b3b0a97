"""``python -m bpv7``: decode a bundle to JSON, or encode JSON to a bundle.

Examples::

    python -m bpv7 decode 9f8907...ff            # hex on the command line
    xxd -p bundle.bin | python -m bpv7 decode -  # hex on stdin (whitespace is fine)
    python -m bpv7 decode --raw < bundle.bin     # binary on stdin
    python -m bpv7 decode HEX | python -m bpv7 encode   # JSON back to hex
    python -m bpv7 encode bundle.json --raw > bundle.bin

``decode`` exits 0 and prints the JSON form (see :mod:`bpv7.json_view`); for an invalid bundle it
prints one line naming the violated rule and its RFC section to stderr and exits 1. ``encode``
exits 1 with one line naming the field when its input is incomplete or invalid.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import BinaryIO, TextIO

from .bundle import decode_bundle
from .errors import DecodeError, EncodeError
from .json_view import BundleJSONError, bundle_from_json, bundle_to_json

logger = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"\s+")


class CommandError(Exception):
    """A one-line error for the user; the program prints it and exits 1."""


def _read_hex(text: str, where: str) -> bytes:
    digits = _WHITESPACE.sub("", text)
    if digits[:2].lower() == "0x":
        digits = digits[2:]
    try:
        return bytes.fromhex(digits)
    except ValueError:
        bad = next((c for c in digits if c not in "0123456789abcdefABCDEF"), None)
        reason = f"invalid character {bad!r}" if bad else "odd number of hex digits"
        raise CommandError(f"bad hex in {where}: {reason}") from None


def _decode(args: argparse.Namespace, stdin: BinaryIO, stdout: BinaryIO) -> None:
    if args.raw:
        if args.hex is not None:
            raise CommandError("--raw reads the bundle from stdin; give no HEX argument")
        data = stdin.read()
    elif args.hex is None or args.hex == "-":
        data = _read_hex(stdin.read().decode("ascii", "replace"), "stdin")
    else:
        data = _read_hex(args.hex, "argument")
    logger.info("decoding %d bytes", len(data))
    try:
        bundle = decode_bundle(data)
    except DecodeError as exc:
        raise CommandError(f"invalid bundle: {exc}") from None
    try:
        view = bundle_to_json(bundle, admin_record=not args.no_admin)
    except DecodeError as exc:
        # The bundle is valid but its ADU, flagged as an administrative record, is not one.
        raise CommandError(
            f"invalid administrative record: {exc} (--no-admin shows the bundle)"
        ) from None
    text = json.dumps(view, indent=None if args.compact else 2)
    stdout.write(text.encode() + b"\n")


def _encode(args: argparse.Namespace, stdin: BinaryIO, stdout: BinaryIO) -> None:
    if args.file is None or args.file == "-":
        text, where = stdin.read().decode("utf-8", "replace"), "stdin"
    else:
        try:
            with open(args.file, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {args.file}: {exc}") from None
        where = args.file
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"bad JSON in {where}: {exc}") from None
    try:
        bundle = bundle_from_json(obj)
    except BundleJSONError as exc:
        raise CommandError(f"invalid field {exc}") from None
    except EncodeError as exc:
        raise CommandError(f"invalid bundle: {exc}") from None
    data = bundle.encode()
    logger.info("encoded %d bytes", len(data))
    stdout.write(data if args.raw else data.hex().encode() + b"\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bpv7``."""
    parser = argparse.ArgumentParser(
        prog="python -m bpv7",
        description="Decode BPv7 bundles (RFC 9171) to JSON and encode JSON to bundles.",
        epilog=(
            "examples:\n"
            "  python -m bpv7 decode 9f8907...ff              hex argument\n"
            "  xxd -p bundle.bin | python -m bpv7 decode -    hex on stdin\n"
            "  python -m bpv7 decode --raw < bundle.bin       binary on stdin\n"
            "  python -m bpv7 decode HEX | python -m bpv7 encode --raw > bundle.bin\n\n"
            "Run 'python -m bpv7 decode -h' or 'python -m bpv7 encode -h' for details."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-v INFO, -vv DEBUG)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode",
        help="decode and validate a bundle, print it as JSON",
        description=(
            "Decode and fully validate one bundle (CBOR shape, CRCs, every RFC 9171 rule) and "
            "print it as JSON: primary block fields, each block with its type, number, flags, "
            "CRC type and status and decoded contents, the data of every block in hex (the "
            "payload block's data is the payload), and the decoded administrative record if "
            "there is one. An invalid bundle prints one line naming the violated rule and its "
            "RFC section to stderr, exit status 1."
        ),
    )
    decode.add_argument(
        "hex",
        nargs="?",
        metavar="HEX",
        help="the bundle in hex (whitespace allowed); '-' or nothing reads hex from stdin",
    )
    decode.add_argument("--raw", action="store_true", help="read the binary bundle from stdin")
    decode.add_argument("--compact", action="store_true", help="print the JSON on one line")
    decode.add_argument(
        "--no-admin",
        action="store_true",
        help="do not decode the payload of an administrative record",
    )
    decode.set_defaults(run=_decode)

    encode = commands.add_parser(
        "encode",
        help="encode a bundle from JSON, print it as hex",
        description=(
            "Read the JSON form that 'decode' prints and print the bundle in hex. CRCs are "
            "computed afresh; informational fields (crc_verified, utc, payload_length, "
            "admin_record) are ignored. A missing or invalid field prints one line naming it, "
            "exit status 1."
        ),
    )
    encode.add_argument(
        "file", nargs="?", metavar="FILE", help="JSON file to read; '-' or nothing reads stdin"
    )
    encode.add_argument("--raw", action="store_true", help="write the binary bundle to stdout")
    encode.set_defaults(run=_encode)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    stderr = sys.stderr if stderr is None else stderr
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            stream=stderr,
            format="%(levelname)s %(name)s: %(message)s",
        )
    try:
        args.run(
            args,
            sys.stdin.buffer if stdin is None else stdin,
            sys.stdout.buffer if stdout is None else stdout,
        )
    except CommandError as exc:
        print(f"error: {exc}", file=stderr)
        return 1
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
