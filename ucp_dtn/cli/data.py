"""``ucp data put|get|ls|rm``: named data in the datastores, through a broker.

* ``put NAME FILE|- [--replicas N]`` stores a file (or stdin) as ``NAME``, with ``N`` copies on
  distinct datastores (default: the datastores' default for the name);
* ``get NAME [-o PATH]`` fetches ``NAME`` and its subkeys (or a ``prefix*`` pattern): one datum
  named exactly ``NAME`` goes to stdout or to the file ``PATH``; several go under the directory
  ``PATH``, each at its full data name (``PATH/survey/a.wav``);
* ``ls [PREFIX] [--job UUID] [--page-size N] [--all | --page TOKEN]`` lists names, sizes,
  write times and holders; a page has up to N entries per datastore and ends with the token
  of the next page; ``ls --replicas [PREFIX]`` shows where each datum lives and whether it has
  as many copies as its replication factor;
* ``rm NAME | --job UUID`` deletes a name with its subkeys, or every datum of a job (its result
  too with ``--with-result``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import trio

from ucp_dtn.client import (
    DataPage,
    ReplicaEntry,
    delete_data,
    get_data,
    list_data,
    put_data,
    replica_listing,
)
from ucp_dtn.ucp import MAX_REPLICAS, DataItem

from .client_options import add_client_arguments, client_errors, client_session
from .command import EXIT_USAGE, CommandError, Subcommand

__all__ = ["DATA", "format_listing", "format_replicas"]


def _job_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job UUID: {text!r}") from None


def _page_size(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"page size must be a positive integer, got {text!r}")
    return int(text)


def _replicas(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(
            f"replicas must be a whole number from 1 to {MAX_REPLICAS}, got {text!r}"
        )
    return int(text)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    put = actions.add_parser("put", help="store a file (or stdin) as named data")
    put.add_argument("name", metavar="NAME", help="data name, e.g. survey/site-a.wav")
    put.add_argument("file", metavar="FILE", help="the content ('-': stdin)")
    put.add_argument("--job", type=_job_uuid, metavar="UUID", help="the job the datum belongs to")
    put.add_argument(
        "--replicas",
        type=_replicas,
        metavar="N",
        help="keep N copies on distinct datastores (default: the datastores' default for the "
        "name, 1 unless configured)",
    )
    add_client_arguments(put)

    get = actions.add_parser("get", help="fetch a name and its subkeys (or a prefix* pattern)")
    get.add_argument("name", metavar="NAME", help="data name or prefix* pattern")
    get.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="file for one datum, directory for several (default: stdout, one datum only)",
    )
    add_client_arguments(get)

    ls = actions.add_parser("ls", help="list named data")
    ls.add_argument("prefix", nargs="?", metavar="PREFIX", help="name (with subkeys) or pattern")
    ls.add_argument("--job", type=_job_uuid, metavar="UUID", help="only the data of this job")
    ls.add_argument(
        "--page-size",
        type=_page_size,
        default=100,
        metavar="N",
        help="entries per datastore and page (default 100)",
    )
    pages = ls.add_mutually_exclusive_group()
    pages.add_argument("--all", action="store_true", help="every page at once")
    pages.add_argument("--page", metavar="TOKEN", help="continue a listing")
    pages.add_argument(
        "--replicas",
        action="store_true",
        help="where each datum lives, and whether it has its replication factor (all pages)",
    )
    ls.add_argument("--json", action="store_true", help="print JSON")
    add_client_arguments(ls)

    rm = actions.add_parser("rm", help="delete a name with its subkeys, or a job's data")
    rm.add_argument("name", nargs="?", metavar="NAME", help="data name or prefix* pattern")
    rm.add_argument("--job", type=_job_uuid, metavar="UUID", help="delete every datum of a job")
    rm.add_argument(
        "--with-result",
        action="store_true",
        help="with --job: delete the job's result (<job-uuid>/result) too",
    )
    add_client_arguments(rm)


async def _read_input(name: str) -> bytes:
    if name == "-":
        return await trio.to_thread.run_sync(sys.stdin.buffer.read)
    try:
        return await trio.Path(name).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}", EXIT_USAGE) from None


def _write_items(items: list[DataItem], query: str, output: Path | None) -> list[str]:
    """Write fetched data; returns what was written (one line each). Blocking."""
    single = len(items) == 1 and items[0].name == query
    if output is None:
        if not single:
            raise CommandError(
                f"{query!r} selects {len(items)} data: give -o DIR to write them", EXIT_USAGE
            )
        sys.stdout.buffer.write(items[0].data)
        sys.stdout.buffer.flush()
        return []
    written = []
    try:
        if single and not output.is_dir():
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_bytes(items[0].data)
            return [f"{items[0].name} -> {output} ({len(items[0].data)} bytes)"]
        for item in items:
            path = output / item.name
            if path.is_dir():
                written.append(f"{item.name}: skipped (also a directory of subkeys)")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.data)
            written.append(f"{item.name} -> {path} ({len(item.data)} bytes)")
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or output}: {exc.strerror}") from None
    return written


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def format_listing(page: DataPage) -> str:
    """The ``ls`` table."""
    rows = [("NAME", "SIZE", "WRITTEN", "JOB", "HOLDER")]
    for entry in page.entries:
        rows.append(
            (
                entry.name,
                str(entry.size),
                _when(entry.written_at),
                "-" if entry.job_id is None else str(entry.job_id)[:8],
                entry.holder or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


async def _put(args: argparse.Namespace) -> int:
    data = await _read_input(args.file)
    async with client_session(args, progress=True) as session:
        with client_errors():
            outcome = await put_data(
                session, args.name, data, job_id=args.job, replicas=args.replicas
            )
    if outcome.stored and outcome.replicas is not None and outcome.replicas > 1:
        # Which datastore took it, and that the other copies follow.
        where = f" on {outcome.holder}" if outcome.holder else ""
        print(f"stored {outcome.name} ({outcome.size} bytes){where}")
        more = outcome.replicas - 1
        copies = "1 more copy follows" if more == 1 else f"{more} more copies follow"
        print(f"{copies} on other datastores: ucp data ls --replicas {outcome.name}")
    elif outcome.stored:
        print(f"stored {outcome.name} ({outcome.size} bytes)")
    else:
        print(f"{outcome.name} ({outcome.size} bytes): {outcome.detail}")
    return 0


async def _get(args: argparse.Namespace) -> int:
    async with client_session(args, progress=True) as session:
        with client_errors():
            items = await get_data(session, args.name)
    if not items:
        raise CommandError(f"no data named {args.name!r}")
    for line in await trio.to_thread.run_sync(_write_items, items, args.name, args.output):
        print(line)
    return 0


def format_replicas(entries: list[ReplicaEntry]) -> str:
    """The ``ls --replicas`` table: one line per datum, its copies against its factor and
    the datastores holding it."""
    rows = [("NAME", "SIZE", "WRITTEN", "REPLICAS", "HOLDERS")]
    for entry in entries:
        copies = f"{len(entry.holders)}/{entry.replicas}"
        if not entry.meets_factor:
            copies += " below"
        holders = ", ".join(entry.holders)
        if entry.stale:
            holders += " (older write: " + ", ".join(entry.stale) + ")"
        rows.append((entry.name, str(entry.size), _when(entry.written_at), copies, holders))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


async def _ls_replicas(args: argparse.Namespace) -> int:
    async with client_session(args) as session:
        with client_errors():
            entries, datastores = await replica_listing(session, args.prefix, job_id=args.job)
    if args.json:
        document = {
            "entries": [
                {
                    "name": e.name,
                    "size": e.size,
                    "written_at": e.written_at,
                    "replicas": e.replicas,
                    "holders": list(e.holders),
                    "stale": list(e.stale),
                    "meets_factor": e.meets_factor,
                }
                for e in entries
            ],
            "datastores": datastores,
        }
        print(json.dumps(document, sort_keys=True))
        return 0
    print(format_replicas(entries) if entries else "no data")
    below = sum(1 for e in entries if not e.meets_factor)
    if below:
        print(
            f"{below} below their replication factor ({datastores} datastores answered)",
            file=sys.stderr,
        )
    return 0


async def _ls(args: argparse.Namespace) -> int:
    if args.replicas:
        return await _ls_replicas(args)
    async with client_session(args) as session:
        with client_errors():
            page = await list_data(
                session,
                args.prefix,
                job_id=args.job,
                page_size=args.page_size,
                page=args.page,
                all_pages=args.all,
            )
    if args.json:
        document = {
            "entries": [
                {
                    "name": e.name,
                    "size": e.size,
                    "written_at": e.written_at,
                    "job_id": None if e.job_id is None else str(e.job_id),
                    "holder": e.holder,
                }
                for e in page.entries
            ],
            "next_page": page.next_page,
            "datastores": page.datastores,
        }
        print(json.dumps(document, sort_keys=True))
        return 0
    if page.entries:
        print(format_listing(page))
    else:
        print("no data")
    if page.next_page is not None:
        print(f"more: --page {page.next_page}", file=sys.stderr)
    return 0


async def _rm(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.job is None):
        raise CommandError("give a NAME or --job UUID (not both)", EXIT_USAGE)
    if args.with_result and args.job is None:
        raise CommandError("--with-result goes with --job", EXIT_USAGE)
    async with client_session(args) as session:
        with client_errors():
            count = await delete_data(
                session, args.name, job_id=args.job, keep_result=not args.with_result
            )
    print(f"deleted {count} datum" if count == 1 else f"deleted {count} data")
    return 0


_ACTIONS = {"put": _put, "get": _get, "ls": _ls, "rm": _rm}


async def _run(args: argparse.Namespace) -> int:
    return await _ACTIONS[args.data_command](args)


DATA = Subcommand(
    name="data",
    help="named data: put, get, ls, rm (through a broker)",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp data`` subcommand."""
