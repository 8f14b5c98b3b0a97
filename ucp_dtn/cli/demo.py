"""``ucp demo``: a local network of real daemons running real jobs (see :mod:`ucp_dtn.demo`)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .command import EXIT_FAILURE, Subcommand, run_async

__all__ = ["DEMO"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the nodes' work directories, logs and results here (default: a temporary "
        "directory, removed afterwards)",
    )


async def _demo(args: argparse.Namespace) -> int:
    from ucp_dtn.demo import run_demo
    from ucp_dtn.localnet import LocalNetwork

    if args.workdir is not None:
        return 0 if await run_demo(args.workdir) else EXIT_FAILURE
    with tempfile.TemporaryDirectory(prefix="ucp-demo-") as tmp:
        if await run_demo(Path(tmp)):
            return 0
        sys.stderr.write(LocalNetwork(Path(tmp) / "nodes").logs()[-6000:] + "\n")
        return EXIT_FAILURE


DEMO = Subcommand(
    name="demo",
    help="start a local network of daemons and run real WebAssembly jobs through it",
    add_arguments=_add_arguments,
    run=lambda args: run_async(_demo, args),
    client=False,
)
