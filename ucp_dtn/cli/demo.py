"""``ucp demo``: a local network of real daemons running real jobs (see :mod:`ucp_dtn.demo`).

``ucp demo --modules DIR`` only writes the demo's WebAssembly modules into ``DIR``, for trying
plans by hand (the examples of ``docs/plans.md`` use them): ``cat.wat`` (``cat OUT IN...``:
concatenates files), ``river-gauge.wat`` (summarises water levels read on stdin) and
``classifier.wasm`` (labels 16 kHz audio read on stdin, window by window). ``ucp demo
--dashboard [HOST:PORT]`` has the nodes serve their live dashboards and keeps the network up
until Ctrl-C. The demo runs a trusted mesh (an authority, trust files, ``--trust``; a stranger
refused); ``ucp demo --open`` runs it in open mode.
"""

from __future__ import annotations

import argparse
import sys
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
    parser.add_argument(
        "--modules",
        type=Path,
        metavar="DIR",
        help="only write the demo's modules (cat.wat, river-gauge.wat, classifier.wasm) into DIR",
    )
    parser.add_argument(
        "--open",
        action="store_true",
        help="run the demo in open mode (no mesh authority, no TLS, anyone may connect) "
        "instead of a trusted mesh",
    )
    parser.add_argument(
        "--dashboard",
        nargs="?",
        const="127.0.0.1:0",
        metavar="HOST:PORT",
        help="serve the nodes' live dashboards (the hub's at HOST:PORT, default 127.0.0.1 and "
        "any free port), print their addresses and keep the network up until Ctrl-C",
    )


def _write_modules(directory: Path) -> int:
    import shutil
    from importlib import resources

    from ucp_dtn.workloads import classifier_wasm_path

    directory.mkdir(parents=True, exist_ok=True)
    assets = resources.files("ucp_dtn.demo_assets")
    for name in ("cat.wat", "river-gauge.wat"):
        (directory / name).write_text(assets.joinpath(name).read_text())
    shutil.copyfile(classifier_wasm_path(), directory / "classifier.wasm")
    print(f"{directory}: cat.wat river-gauge.wat classifier.wasm")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.modules is not None:
        return _write_modules(args.modules)
    return run_async(_demo, args)


async def _demo(args: argparse.Namespace) -> int:
    import tempfile

    from ucp_dtn.demo import run_demo
    from ucp_dtn.localnet import LocalNetwork

    if args.workdir is not None:
        done = await run_demo(args.workdir, dashboard=args.dashboard, trusted=not args.open)
        return 0 if done else EXIT_FAILURE
    with tempfile.TemporaryDirectory(prefix="ucp-demo-") as tmp:
        if await run_demo(Path(tmp), dashboard=args.dashboard, trusted=not args.open):
            return 0
        sys.stderr.write(LocalNetwork(Path(tmp) / "nodes").logs()[-6000:] + "\n")
        return EXIT_FAILURE


DEMO = Subcommand(
    name="demo",
    help="start a local network of daemons and run real WebAssembly jobs through it",
    add_arguments=_add_arguments,
    run=_run,
    client=False,
)
