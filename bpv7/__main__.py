"""``python -m bpv7``: decode a bundle to JSON, or encode JSON to a bundle; verify, decrypt and
add BPSec operations.

Examples::

    python -m bpv7 decode 9f8907...ff            # hex on the command line
    xxd -p bundle.bin | python -m bpv7 decode -  # hex on stdin (whitespace is fine)
    python -m bpv7 decode --raw < bundle.bin     # binary on stdin
    python -m bpv7 decode HEX | python -m bpv7 encode   # JSON back to hex
    python -m bpv7 encode bundle.json --raw > bundle.bin
    python -m bpv7 decode --key ipn:2.1=1a2b... HEX     # verify/decrypt BPSec operations
    python -m bpv7 accept --key-file keys.cbor HEX      # verify, decrypt, remove security blocks
    python -m bpv7 secure --integrity 1 --source ipn:2.1 --key ipn:2.1=1a2b... HEX

``decode`` exits 0 and prints the JSON form (see :mod:`bpv7.json_view`); for an invalid bundle it
prints one line naming the violated rule and its RFC section to stderr and exits 1. With keys it
also prints each security operation's outcome, and a failed operation prints one line naming the
security block and the target to stderr and exits 1. ``accept`` writes the bundle with its
security operations verified, decrypted and removed, or exits 1 saying why. ``secure`` adds one
BIB or BCB. ``encode`` exits 1 with one line naming the field when its input is incomplete or
invalid. Keys: ``--key NAME=HEX`` (NAME: the security source EID for the RFC 9173 contexts, or
``bib@EID`` / ``bcb@EID`` for one service only; the COSE key id for the COSE context) and
``--key-file FILE`` (a COSE_Key or COSE_KeySet in CBOR); both repeatable.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO, TextIO

from .bundle import WAIVABLE_RULES, Bundle, decode_bundle
from .errors import DecodeError, EncodeError
from .json_view import BundleJSONError, bundle_from_json, bundle_to_json

if TYPE_CHECKING:
    from .bpsec import KeyStore

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


def _read_bundle_bytes(args: argparse.Namespace, stdin: BinaryIO) -> bytes:
    if args.raw:
        if args.hex is not None:
            raise CommandError("--raw reads the bundle from stdin; give no HEX argument")
        return stdin.read()
    if args.hex is None or args.hex == "-":
        return _read_hex(stdin.read().decode("ascii", "replace"), "stdin")
    return _read_hex(args.hex, "argument")


def _read_bundle(args: argparse.Namespace, stdin: BinaryIO) -> Bundle:
    data = _read_bundle_bytes(args, stdin)
    logger.info("decoding %d bytes", len(data))
    try:
        return decode_bundle(data, waive=args.waive or ())
    except DecodeError as exc:
        hint = ""
        if exc.rule in WAIVABLE_RULES:
            hint = f" (--waive {exc.rule} accepts such bundles, as RFC 9173's examples need)"
        raise CommandError(f"invalid bundle: {exc}{hint}") from None


def _keys(args: argparse.Namespace) -> KeyStore | None:
    """The key store from --key and --key-file, or ``None`` when no key was given."""
    if not args.key and not args.key_file:
        return None
    from .bpsec import KeyFormatError, KeyStore, read_cose_keys

    keys = KeyStore()
    for item in args.key:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--key {item!r}: expected NAME=HEX")
        keys.add(name, _read_hex(value, f"--key {name}"))
    for path in args.key_file:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            for key in read_cose_keys(data):
                keys.add_cose_key(key)
        except KeyFormatError as exc:
            raise CommandError(f"{path}: {exc.message}") from None
    return keys


def _decode(args: argparse.Namespace, stdin: BinaryIO, stdout: BinaryIO) -> None:
    keys = _keys(args)
    bundle = _read_bundle(args, stdin)
    processing = None
    if keys is not None:
        from .bpsec import process_security

        processing = process_security(bundle, keys)
    try:
        view = bundle_to_json(bundle, admin_record=not args.no_admin, security=processing)
    except DecodeError as exc:
        # The bundle is valid but its ADU, flagged as an administrative record, is not one.
        raise CommandError(
            f"invalid administrative record: {exc} (--no-admin shows the bundle)"
        ) from None
    text = json.dumps(view, indent=None if args.compact else 2)
    stdout.write(text.encode() + b"\n")
    if processing is not None:
        failed = [op for op in processing.operations if op.outcome == "failed"]
        if failed:
            stdout.flush()
            raise CommandError("; ".join(op.describe() for op in failed))


def _write_bundle(args: argparse.Namespace, bundle: Bundle, stdout: BinaryIO) -> None:
    data = bundle.encode()
    logger.info("writing %d bytes", len(data))
    stdout.write(data if args.raw_out else data.hex().encode() + b"\n")


def _accept(args: argparse.Namespace, stdin: BinaryIO, stdout: BinaryIO) -> None:
    from .bpsec import process_security

    keys = _keys(args)
    if keys is None:
        raise CommandError("accept needs keys: give --key NAME=HEX or --key-file FILE")
    bundle = _read_bundle(args, stdin)
    processing = process_security(bundle, keys, accept=True)
    problems = [op for op in processing.operations if not op.succeeded]
    if problems:
        raise CommandError(problems[0].describe())
    if processing.unreadable:
        raise CommandError(f"BIB {processing.unreadable[0]} stays encrypted")
    _write_bundle(args, processing.bundle, stdout)


def _targets(text: str) -> list[int]:
    try:
        targets = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"bad target list {text!r}: give block numbers like 1,2") from None
    if not targets or any(t < 0 for t in targets):
        raise CommandError(f"bad target list {text!r}: give block numbers like 1,2")
    return targets


def _secure(args: argparse.Namespace, stdin: BinaryIO, stdout: BinaryIO) -> None:
    from . import bpsec
    from .eid import parse_eid

    integrity = args.integrity is not None
    targets = _targets(args.integrity if integrity else args.confidentiality)
    keys = _keys(args)
    if keys is None:
        raise CommandError("secure needs a key: give --key NAME=HEX or --key-file FILE")
    bundle = _read_bundle(args, stdin)
    try:
        source = parse_eid(args.source)
    except DecodeError as exc:
        raise CommandError(f"--source: {exc.message}") from None
    iv = _read_hex(args.iv, "--iv") if args.iv else None
    context: bpsec.IntegritySource | bpsec.ConfidentialitySource
    if args.context == "cose":
        if args.kid is None:
            raise CommandError("the COSE context needs --kid naming a key")
        key = keys.get(args.kid.encode())
        if key is None:
            raise CommandError(f"no key with kid {args.kid!r} among the given keys")
        operation = bpsec.CoseOperation(key, alg=args.alg, iv=iv)
        if iv is not None and len(targets) > 1:
            raise CommandError("--iv with several targets would reuse the IV; leave it out")
        context = bpsec.CoseSource(operation)
    else:
        service = "bib" if integrity else "bcb"
        secret = keys.symmetric(f"{service}@{source}") or keys.symmetric(str(source))
        if secret is None:
            raise CommandError(f"no key named {source} (or {service}@{source}) among the keys")
        try:
            if integrity:
                context = bpsec.HmacSha2(
                    secret, variant=args.alg or 6, scope=args.scope, wrap=args.wrap
                )
            else:
                context = bpsec.AesGcm(
                    secret, variant=args.alg or 3, scope=args.scope, iv=iv, wrap=args.wrap
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    try:
        if integrity:
            assert isinstance(context, bpsec.IntegritySource)
            secured = bpsec.add_integrity(
                bundle, targets, context, source=source, block_number=args.block_number
            )
        else:
            assert isinstance(context, bpsec.ConfidentialitySource)
            secured = bpsec.add_confidentiality(
                bundle, targets, context, source=source, block_number=args.block_number
            )
    except EncodeError as exc:
        raise CommandError(f"cannot secure the bundle: {exc}") from None
    except ValueError as exc:
        raise CommandError(f"cannot secure the bundle: {exc}") from None
    _write_bundle(args, secured, stdout)


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
        bundle = bundle_from_json(obj, waive=tuple(args.waive or ()))
    except BundleJSONError as exc:
        raise CommandError(f"invalid field {exc}") from None
    except EncodeError as exc:
        raise CommandError(f"invalid bundle: {exc}") from None
    data = bundle.encode()
    logger.info("encoded %d bytes", len(data))
    stdout.write(data if args.raw else data.hex().encode() + b"\n")


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "hex",
        nargs="?",
        metavar="HEX",
        help="the bundle in hex (whitespace allowed); '-' or nothing reads hex from stdin",
    )
    parser.add_argument("--raw", action="store_true", help="read the binary bundle from stdin")
    parser.add_argument(
        "--raw-out", action="store_true", help="write the binary bundle instead of hex"
    )


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="NAME=HEX",
        help="a symmetric key: NAME is a security source EID (RFC 9173; bib@EID or bcb@EID "
        "for one service) or a COSE key id; repeatable",
    )
    parser.add_argument(
        "--key-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a COSE_Key or COSE_KeySet (CBOR); repeatable",
    )
    parser.add_argument(
        "--waive",
        action="append",
        choices=sorted(WAIVABLE_RULES),
        metavar="RULE",
        help="accept a bundle that breaks this RFC 9171 rule, as RFC 9173's examples do ("
        + ", ".join(sorted(WAIVABLE_RULES))
        + "); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bpv7``."""
    parser = argparse.ArgumentParser(
        prog="python -m bpv7",
        description=(
            "Decode BPv7 bundles (RFC 9171) to JSON and encode JSON to bundles; verify, decrypt "
            "and add BPSec (RFC 9172) operations."
        ),
        epilog=(
            "examples:\n"
            "  python -m bpv7 decode 9f8907...ff              hex argument\n"
            "  xxd -p bundle.bin | python -m bpv7 decode -    hex on stdin\n"
            "  python -m bpv7 decode --raw < bundle.bin       binary on stdin\n"
            "  python -m bpv7 decode HEX | python -m bpv7 encode --raw > bundle.bin\n\n"
            "  python -m bpv7 decode --key ipn:2.1=HEX HEX    verify/decrypt BPSec blocks\n"
            "  python -m bpv7 accept --key-file keys.cbor HEX remove them (security acceptor)\n"
            "  python -m bpv7 secure --integrity 1 --source ipn:2.1 --key ipn:2.1=HEX HEX\n\n"
            "Run 'python -m bpv7 COMMAND -h' for details."
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
    _add_key_options(decode)
    decode.set_defaults(run=_decode)

    accept = commands.add_parser(
        "accept",
        help="verify, decrypt and remove a bundle's security blocks (BPSec acceptor)",
        description=(
            "Act as the security acceptor of every BPSec operation in the bundle: verify each "
            "BIB operation, decrypt each BCB operation, remove them, and write the resulting "
            "bundle in hex (or binary with --raw-out). An operation that fails or has no key "
            "prints one line naming the security block and the target, exit status 1."
        ),
    )
    _add_input_options(accept)
    _add_key_options(accept)
    accept.set_defaults(run=_accept)

    secure = commands.add_parser(
        "secure",
        help="add a BIB or BCB to a bundle (BPSec security source)",
        description=(
            "Add one BPSec block over the given targets (block numbers, 0 the primary block) "
            "and write the bundle in hex (or binary with --raw-out). RFC 9173 contexts take "
            "the key named by --source (or bib@SOURCE / bcb@SOURCE); the COSE context takes "
            "the key whose id is --kid: a symmetric key MACs or encrypts, an A128KW/A192KW/"
            "A256KW key wraps a fresh content key, an EC2 or Ed25519 private key signs."
        ),
    )
    _add_input_options(secure)
    _add_key_options(secure)
    service = secure.add_mutually_exclusive_group(required=True)
    service.add_argument("--integrity", metavar="TARGETS", help="add a BIB over TARGETS (1,2)")
    service.add_argument(
        "--confidentiality", metavar="TARGETS", help="add a BCB encrypting TARGETS (1,2)"
    )
    secure.add_argument("--source", required=True, help="the security source EID")
    secure.add_argument(
        "--context",
        choices=("rfc9173", "cose"),
        default="rfc9173",
        help="BIB-HMAC-SHA2/BCB-AES-GCM (RFC 9173, default) or the COSE context",
    )
    secure.add_argument(
        "--alg",
        type=int,
        help="RFC 9173: SHA variant (5, 6, 7) or AES variant (1, 3); COSE: the algorithm id",
    )
    secure.add_argument(
        "--scope", type=int, default=7, help="RFC 9173 integrity/AAD scope flags (default 7)"
    )
    secure.add_argument("--iv", metavar="HEX", help="the IV (default: 12 random bytes)")
    secure.add_argument(
        "--wrap", action="store_true", help="RFC 9173: wrap a fresh key under the given key"
    )
    secure.add_argument("--kid", help="COSE: the id of the key to use")
    secure.add_argument("--block-number", type=int, help="the new block's number")
    secure.set_defaults(run=_secure)

    encode = commands.add_parser(
        "encode",
        help="encode a bundle from JSON, print it as hex",
        description=(
            "Read the JSON form that 'decode' prints and print the bundle in hex. CRCs are "
            "computed afresh; informational fields (crc_verified, utc, payload_length, security, "
            "encrypted_by, decrypted, security_operations, "
            "admin_record) are ignored. A missing or invalid field prints one line naming it, "
            "exit status 1."
        ),
    )
    encode.add_argument(
        "file", nargs="?", metavar="FILE", help="JSON file to read; '-' or nothing reads stdin"
    )
    encode.add_argument("--raw", action="store_true", help="write the binary bundle to stdout")
    encode.add_argument(
        "--waive",
        action="append",
        choices=sorted(WAIVABLE_RULES),
        metavar="RULE",
        help="accept a bundle that breaks this RFC 9171 rule; repeatable",
    )
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
