"""``ucp recv``: receive bundles for one endpoint and write their payloads.

Each delivery is confirmed to the daemon only after its payload is written (and, for files,
flushed to disk): if ``ucp recv`` dies first, the bundle stays in the daemon's store and the
next ``ucp recv`` of the endpoint gets it again.

Output: payloads to stdout, or with ``-o PATH`` to a file (all payloads one after the other),
or with ``{n}`` in ``PATH`` to one file per bundle (``{n}`` = 1, 2, ...). ``--json`` writes one
JSON object per line instead (bundle ID, source, payload in base64, status reports decoded,
what the daemon verified and decrypted under ``security``). Without ``--json``, each security
operation the daemon verified or decrypted (it is the bundle's security acceptor, RFC 9172) is
one line on stderr: ``ucp recv: integrity of the payload verified (key k, source dtn://a/...)``.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
from typing import IO, TYPE_CHECKING, Any

from ucp_dtn.settings import POSITIVE_DURATION, argument_type

from .command import EXIT_FAILURE, CommandError, Subcommand, add_socket_flag, daemon, run_async

if TYPE_CHECKING:
    from bpv7.admin import BundleStatusReport
    from ucp_dtn.appapi import ReceivedBundle

__all__ = ["RECV", "bundle_json"]


_duration = argument_type(POSITIVE_DURATION.parse)
"""An argparse type: a duration longer than zero (``10s``, ``1h``)."""


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"count must be a positive integer, got {text!r}")
    return int(text)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "-e",
        "--endpoint",
        required=True,
        metavar="ENDPOINT",
        help="endpoint to receive on: a full EID of the node, or a name under its node ID",
    )
    add("-o", "--output", metavar="PATH", help="write payloads here ({n}: one file per bundle)")
    add("--count", type=_count, metavar="N", help="stop after N bundles (default: run on)")
    add(
        "--timeout",
        type=_duration,
        metavar="DURATION",
        help="give up after this long (an error if fewer than --count bundles came)",
    )
    add("--json", action="store_true", help="one JSON object per bundle instead of payloads")
    add_socket_flag(parser)


def _status_report_json(report: BundleStatusReport) -> dict[str, Any]:
    from bpv7.admin import StatusReportReason

    try:
        reason = StatusReportReason(report.reason).name.lower()
    except ValueError:
        reason = str(report.reason)
    subject = f"{report.source}-{report.creation.time_ms}-{report.creation.sequence}"
    if report.fragment_offset is not None:
        subject += f"-{report.fragment_offset}-{report.fragment_length}"
    assertions = {}
    for kind in ("received", "forwarded", "delivered", "deleted"):
        assertion = getattr(report, kind)
        if assertion.asserted:
            assertions[kind] = {"time_ms": assertion.time_ms}
    return {"subject": subject, "reason": reason, "reason_code": int(report.reason)} | {
        "asserted": assertions
    }


def bundle_json(bundle: ReceivedBundle) -> dict[str, Any]:
    """The ``--json`` form of a received bundle."""
    from bpv7 import DecodeError
    from bpv7.admin import (
        AdminRecordError,
        BundleStatusReport,
        decode_admin_record,
        record_type_of,
    )
    from ucp_dtn.appapi import format_bundle_id

    result: dict[str, Any] = {
        "bundle_id": format_bundle_id(bundle.bundle_id),
        "source": bundle.source,
        "destination": bundle.destination,
        "report_to": bundle.report_to,
        "lifetime_ms": bundle.lifetime_ms,
        "admin_record": bundle.is_admin_record,
        "payload_length": len(bundle.payload),
        "payload": base64.b64encode(bundle.payload).decode("ascii"),
    }
    if bundle.security:
        result["security"] = [
            {
                name: value
                for name, value in (
                    ("service", report.service),
                    ("target", report.target),
                    ("source", report.source),
                    ("context", report.context),
                    ("outcome", report.outcome),
                    ("key", report.key),
                    ("signer", report.signer),
                )
                if value is not None
            }
            for report in bundle.security
        ]
    if bundle.is_admin_record:
        try:
            record = decode_admin_record(bundle.payload)
        except (AdminRecordError, DecodeError) as exc:
            result["admin_error"] = str(exc)
        else:
            result["record_type"] = int(record_type_of(record))
            if isinstance(record, BundleStatusReport):
                result["status_report"] = _status_report_json(record)
    return result


class _Output:
    """Where payloads go; :meth:`write` returns once the data is durable enough to confirm."""

    def __init__(self, path: str | None, as_json: bool) -> None:
        self._path = path
        self._json = as_json
        self._per_bundle = path is not None and "{n}" in path
        self._file: IO[bytes] | None = None
        self.written = 0

    def _open(self, path: str, mode: str) -> IO[bytes]:
        try:
            return open(path, mode, opener=_private)  # bundles are for their owner only
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _write_sync(self, bundle: ReceivedBundle) -> None:
        number = self.written + 1
        data = (
            (json.dumps(bundle_json(bundle), sort_keys=True) + "\n").encode()
            if self._json
            else bundle.payload
        )
        if self._path is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        elif self._per_bundle:
            with self._open(self._path.replace("{n}", str(number)), "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        else:
            if self._file is None:
                self._file = self._open(self._path, "wb")
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        self.written = number

    async def write(self, bundle: ReceivedBundle) -> None:
        import trio

        try:
            await trio.to_thread.run_sync(self._write_sync, bundle)
        except BrokenPipeError:
            raise CommandError("output closed (broken pipe)") from None
        except OSError as exc:
            raise CommandError(f"cannot write output: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def _receive(args: argparse.Namespace) -> int:
    import trio

    from ucp_dtn.appapi import MAX_WINDOW

    output = _Output(args.output, args.json)
    count: int | None = args.count
    window = min(count, 64) if count is not None else 64
    deadline = math.inf if args.timeout is None else trio.current_time() + args.timeout
    try:
        async with daemon(args) as client:
            registration = await client.register(args.endpoint, window=min(window, MAX_WINDOW))
            async with registration:
                with trio.move_on_at(deadline):
                    async for bundle in registration:
                        await output.write(bundle)
                        if not args.json:
                            for report in bundle.security:
                                print(f"ucp recv: {report.describe()}", file=sys.stderr)
                        await bundle.confirm()
                        if count is not None and output.written >= count:
                            break
    finally:
        output.close()
    if count is not None and output.written < count:
        raise CommandError(
            f"timed out after receiving {output.written} of {count} bundles", EXIT_FAILURE
        )
    return 0


RECV = Subcommand(
    name="recv",
    help="receive bundles for an endpoint and write their payloads",
    add_arguments=_add_arguments,
    run=lambda args: run_async(_receive, args),
    client=False,
)


def _private(path: str, flags: int) -> int:
    """An ``open`` opener creating files with mode 0600 (see :mod:`ucp_dtn.private_files`)."""
    from pathlib import Path

    from ucp_dtn.private_files import open_private

    return open_private(Path(path), flags)
