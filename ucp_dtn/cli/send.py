"""``ucp send``: send one bundle with a file's content (or stdin) as payload; print its ID."""

from __future__ import annotations

import argparse
import sys

from ucp_dtn.settings import POSITIVE_DURATION, argument_type

from .command import EXIT_USAGE, CommandError, Subcommand, add_socket_flag, daemon, run_async

__all__ = ["SEND"]


_duration = argument_type(POSITIVE_DURATION.parse)
"""An argparse type: a duration longer than zero (``10s``, ``1h``)."""


REPORT_KINDS = ("received", "forwarded", "delivered", "deleted")
"""Status reports a bundle may ask for (as :data:`ucp_dtn.appapi.REPORT_KINDS`)."""


def _reports(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    for kind in kinds:
        if kind not in REPORT_KINDS:
            raise argparse.ArgumentTypeError(
                f"unknown report {kind!r} (known: {', '.join(REPORT_KINDS)})"
            )
    return kinds


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-d", "--destination", required=True, metavar="EID", help="destination endpoint")
    add("file", nargs="?", default="-", metavar="FILE", help="payload file ('-' or none: stdin)")
    add("--lifetime", type=_duration, metavar="DURATION", help="bundle lifetime (default: node's)")
    add("--custody", action="store_true", help="send with custody transfer")
    add("--report-to", metavar="EID", help="where status reports go (default: the node ID)")
    add(
        "--report",
        type=_reports,
        action="extend",
        default=[],
        metavar="KINDS",
        help=f"request status reports: {','.join(REPORT_KINDS)} (comma-separated, repeatable)",
    )
    add("--source", metavar="EID", help="source endpoint (default: the node ID)")
    add(
        "--bib",
        metavar="KEY",
        help="sign the payload: a BIB with this key of the daemon's security policy "
        "(RFC 9172; docs/security.md)",
    )
    add(
        "--bcb",
        metavar="KEY",
        help="encrypt the payload: a BCB with this key of the daemon's security policy",
    )
    add_socket_flag(parser)


async def _read_payload(name: str) -> bytes:
    import trio

    if name == "-":
        return await trio.to_thread.run_sync(sys.stdin.buffer.read)
    try:
        return await trio.Path(name).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}", EXIT_USAGE) from None


async def _send(args: argparse.Namespace) -> int:
    from ucp_dtn.appapi import format_bundle_id

    payload = await _read_payload(args.file)
    async with daemon(args) as client:
        bundle_id = await client.send(
            args.destination,
            payload,
            lifetime_s=args.lifetime,
            custody=args.custody,
            report_to=args.report_to,
            reports=args.report,
            source=args.source,
            integrity=args.bib,
            confidentiality=args.bcb,
        )
    print(format_bundle_id(bundle_id), flush=True)
    return 0


SEND = Subcommand(
    name="send",
    help="send a bundle (payload from a file or stdin); prints its bundle ID once stored",
    add_arguments=_add_arguments,
    run=lambda args: run_async(_send, args),
    client=False,
)
