"""``ucp data put|get|ls|rm|df``: named data in the datastores, through a broker.

* ``put NAME FILE|- [--replicas N] [--replace] [--private]`` stores a file (or stdin) as
  ``NAME`` (``--private``: in a trusted mesh, readable by this client only), with ``N``
  copies on distinct datastores (default: the datastores' default for the name); a name
  another write holds is refused (exit status 1) unless ``--replace`` (then the newest write
  wins);
* ``get NAME [-o PATH]`` fetches ``NAME`` and its subkeys (or a ``prefix*`` pattern): one datum
  named exactly ``NAME`` goes to stdout or to the file ``PATH``; several go under the directory
  ``PATH``, each at its full data name (``PATH/survey/a.wav``);
* ``ls [PREFIX] [--job UUID] [--page-size N] [--all | --page TOKEN]`` lists names, sizes,
  write times and holders; a page has up to N entries per datastore and ends with the token
  of the next page; ``ls --replicas [PREFIX]`` shows where each datum lives and whether it has
  as many copies as its replication factor;
* ``rm NAME | --job UUID`` deletes a name with its subkeys, or every datum of a job (its result
  too with ``--with-result``); nothing to delete is an error;
* ``df`` shows every datastore's free and used space.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from .client_options import add_global_arguments, call
from .command import EXIT_USAGE, CommandError, Subcommand
from .formatting import format_listing, format_replicas, format_space

__all__ = ["DATA"]


def _job_uuid(text: str) -> str:
    import uuid  # (only when a job is named: uuid imports platform, ~2 ms of every start)

    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job UUID: {text!r}") from None


def _page_size(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"page size must be a positive integer, got {text!r}")
    return int(text)


def _replicas(text: str) -> int:
    # Imported only when the flag is given: ucp_dtn.ucp is too heavy for every command line.
    from ucp_dtn.ucp.job import MAX_REPLICAS

    if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(
            f"replicas must be a whole number from 1 to {MAX_REPLICAS}, got {text!r}"
        )
    return int(text)


def _add_arguments(parser: argparse.ArgumentParser, client: Callable[[Any], None]) -> None:
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
    put.add_argument(
        "--replace", action="store_true", help="overwrite the name if it is taken already"
    )
    put.add_argument(
        "--private",
        action="store_true",
        help="in a trusted mesh, only this client (and admins) may read it (default: every "
        "member may)",
    )
    client(put)

    get = actions.add_parser("get", help="fetch a name and its subkeys (or a prefix* pattern)")
    get.add_argument("name", metavar="NAME", help="data name or prefix* pattern")
    get.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="file for one datum, directory for several (default: stdout, one datum only)",
    )
    client(get)

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
    client(ls)

    rm = actions.add_parser("rm", help="delete a name with its subkeys, or a job's data")
    rm.add_argument("name", nargs="?", metavar="NAME", help="data name or prefix* pattern")
    rm.add_argument("--job", type=_job_uuid, metavar="UUID", help="delete every datum of a job")
    rm.add_argument(
        "--with-result",
        action="store_true",
        help="with --job: delete the job's result (<job-uuid>/result) too",
    )
    client(rm)

    df = actions.add_parser("df", help="free and used space of every datastore")
    df.add_argument("--json", action="store_true", help="print JSON")
    client(df)


def _put(args: argparse.Namespace) -> int:
    op_args: dict[str, Any] = {
        "name": args.name,
        "job": args.job,
        "replace": args.replace,
        "replicas": args.replicas,
        "private": args.private,
    }
    if args.file == "-":
        op_args["data"] = sys.stdin.buffer.read()
    else:
        op_args["file"] = os.path.abspath(args.file)
    document = call(args, "data-put", op_args)
    replicas = document.get("replicas")
    if document["stored"] and replicas is not None and replicas > 1:
        # Which datastore took it, and that the other copies follow.
        holder = document.get("holder")
        where = f" on {holder}" if holder else ""
        print(f"stored {document['name']} ({document['size']} bytes){where}")
        more = replicas - 1
        copies = "1 more copy follows" if more == 1 else f"{more} more copies follow"
        print(f"{copies} on other datastores: ucp data ls --replicas {document['name']}")
    elif document["stored"]:
        print(f"stored {document['name']} ({document['size']} bytes)")
    else:
        print(f"{document['name']} ({document['size']} bytes): {document['detail']}")
    return 0


def _get(args: argparse.Namespace) -> int:
    output = None if args.output is None else os.path.abspath(args.output)
    document = call(args, "data-get", {"name": args.name, "output": output})
    if output is None:
        sys.stdout.buffer.write(document["data"])
        sys.stdout.buffer.flush()
        return 0
    for line in document["written"]:
        print(line)
    return 0


def _ls_replicas(args: argparse.Namespace) -> int:
    document = call(args, "data-replicas", {"prefix": args.prefix, "job": args.job})
    if args.json:
        print(json.dumps(document, sort_keys=True))
        return 0
    entries = document["entries"]
    print(format_replicas(document) if entries else "no data")
    below = sum(1 for entry in entries if not entry["meets_factor"])
    if below:
        print(
            f"{below} below their replication factor "
            f"({document['datastores']} datastores answered)",
            file=sys.stderr,
        )
    return 0


def _ls(args: argparse.Namespace) -> int:
    if args.replicas:
        return _ls_replicas(args)
    document = call(
        args,
        "data-ls",
        {
            "prefix": args.prefix,
            "job": args.job,
            "page_size": args.page_size,
            "page": args.page,
            "all": args.all,
        },
    )
    if args.json:
        print(json.dumps(document, sort_keys=True))
        return 0
    print(format_listing(document) if document["entries"] else "no data")
    if document["next_page"] is not None:
        print(f"more: --page {document['next_page']}", file=sys.stderr)
    return 0


def _rm(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.job is None):
        raise CommandError("give a NAME or --job UUID (not both)", EXIT_USAGE)
    if args.with_result and args.job is None:
        raise CommandError("--with-result goes with --job", EXIT_USAGE)
    document = call(
        args, "data-rm", {"name": args.name, "job": args.job, "with_result": args.with_result}
    )
    count = document["deleted"]
    print(f"deleted {count} datum" if count == 1 else f"deleted {count} data")
    return 0


def _df(args: argparse.Namespace) -> int:
    document = call(args, "data-df", {})
    if args.json:
        print(json.dumps(document, sort_keys=True))
    else:
        print(format_space(document))
    return 0


_ACTIONS = {"put": _put, "get": _get, "ls": _ls, "rm": _rm, "df": _df}


def _run(args: argparse.Namespace) -> int:
    return _ACTIONS[args.data_command](args)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    _add_arguments(parser, add_global_arguments)


DATA = Subcommand(
    name="data",
    help="named data: put, get, ls, rm, df (through a broker)",
    add_arguments=_add_data_arguments,
    run=_run,
    interrupted="a put or rm that reached the client agent is carried out",
)
"""The ``ucp data`` subcommand."""
