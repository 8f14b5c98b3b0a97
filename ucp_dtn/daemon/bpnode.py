"""``ucp-bpnode``: run one bundle node in the foreground.

Starts a :class:`~ucp_dtn.agent.BundleNode` from :mod:`ucp_dtn.daemon.config` settings and an
:class:`~ucp_dtn.appapi.AppApiServer` on its Unix socket, then prints one line on stdout::

    ready node=dtn://a/ tcpcl=127.0.0.1:40123 socket=/var/lib/ucp/a/bpnode.sock

(``tcpcl=`` lists every bound listener, comma-separated; scripts read the ports from it; with
``--http`` an ``http=HOST:PORT`` item follows: where the dashboard listens).
SIGINT or SIGTERM ends the node cleanly (SESS_TERM to peers, store closed) and the process
exits 0. Bad flags or configuration: one line on stderr, exit 2; a failure to start (address in
use, store unreadable, another daemon on the work directory): one line, exit 1. Logs go to
stderr (``-v`` info, ``-vv`` debug); settings given by an old name are logged as warnings.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

import ucp_dtn
from convergence.quantities import format_address
from ucp_dtn.agent import AgentError, BundleNode
from ucp_dtn.appapi import AppApiError, AppApiServer
from ucp_dtn.private_files import make_private_directory, open_private, tighten_tree
from ucp_dtn.roles.runner import run_roles
from ucp_dtn.store import StoreError

from .config import DaemonSettings, SettingsError, load_settings

if TYPE_CHECKING:
    from ucp_dtn.trust import MeshTrust

__all__ = ["LOCK_FILE", "SOCKET_FILE", "StartupError", "format_ready_line", "main", "serve"]

logger = logging.getLogger(__name__)

SOCKET_FILE = "bpnode.sock"
"""Name of the application API socket in the work directory (the default ``--socket``)."""
LOCK_FILE = "bpnode.lock"
"""Lock file in the work directory: one daemon per work directory."""
SPOOL_DIR = "spool"
"""The spool directory in the work directory (:class:`~ucp_dtn.agent.BundleNode` puts it there)."""

_PROG = "ucp-bpnode"


class StartupError(Exception):
    """The daemon cannot start (one-line message)."""


def format_ready_line(
    node_id: str,
    listen: Sequence[tuple[str, int]],
    socket_path: Path,
    http: tuple[str, int] | None = None,
) -> str:
    """The line printed once the node listens."""
    addresses = ",".join(format_address(host, port) for host, port in listen) or "-"
    line = f"ready node={node_id} tcpcl={addresses} socket={socket_path}"
    return line if http is None else f"{line} http={format_address(*http)}"


@contextmanager
def _workdir_lock(workdir: Path, own: Sequence[Path] = ()) -> Iterator[None]:
    """Hold an exclusive lock on ``workdir`` (released by the kernel if we die); the work
    directory and the daemon's files in it (the lock, the socket, the spool and ``own``) are
    for our user only (:mod:`ucp_dtn.private_files`): what an older version left readable by
    others is tightened. Other files there, if any, are not ours to change."""
    try:
        make_private_directory(workdir)
        handle = os.fdopen(open_private(workdir / LOCK_FILE, os.O_RDWR | os.O_APPEND), "a+")
        for path in (workdir / SOCKET_FILE, workdir / SPOOL_DIR, *own):
            tighten_tree(path)
    except OSError as exc:
        raise StartupError(f"cannot use work directory {workdir}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(f"another ucp-bpnode uses the work directory {workdir}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


@contextmanager
def _socket_location(settings: DaemonSettings) -> Iterator[Path]:
    """The socket path: as configured, in the work directory, or in a temporary directory
    that is removed afterwards."""
    if settings.socket_path is not None:
        yield settings.socket_path
    elif settings.node.workdir is not None:
        yield settings.node.workdir / SOCKET_FILE
    else:
        directory = Path(tempfile.mkdtemp(prefix="ucp-bpnode-"))
        try:
            yield directory / SOCKET_FILE
        finally:
            shutil.rmtree(directory, ignore_errors=True)


async def serve(settings: DaemonSettings, socket_path: Path) -> None:
    """Run the node and its API until SIGINT or SIGTERM (printing the ready line)."""
    started_at = time.time()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        node = BundleNode(settings.node)
        server = AppApiServer(node, socket_path, software=f"ucp-bpnode {_version()}")
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await nursery.start(server.run)
            if settings.trust is not None:
                from ucp_dtn.trust.revocation import RevocationService

                await nursery.start(RevocationService(node, settings.trust.anchors).run)
            services: list[object] = []
            if settings.roles.roles:
                services = await nursery.start(functools.partial(run_roles, node, settings.roles))
            http: tuple[str, int] | None = None
            if settings.http is not None:
                http = await nursery.start(
                    functools.partial(
                        _serve_dashboard, node, services, settings.http, started_at, settings.trust
                    )
                )
            print(
                format_ready_line(str(node.node_id), node.listen_addresses, socket_path, http),
                flush=True,
            )
            _announce_trust(settings, node)
            async for signum in signals:
                logger.info("%s received: shutting down", signal.Signals(signum).name)
                break
            nursery.cancel_scope.cancel()
        stats = node.statistics()
        logger.info(
            "stopped: %d bundles stored, %d received, %d forwarded, %d delivered",
            stats.stored_bundles,
            stats.received,
            stats.forwarded,
            stats.delivered,
        )


async def _serve_dashboard(
    node: BundleNode,
    services: list[object],
    address: tuple[str, int],
    started_at: float,
    trust: MeshTrust | None = None,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The dashboard (``--http``); the HTTP stack is imported only here. In a trusted mesh,
    off loopback, it serves HTTPS only, to holders of a member's certificate."""
    from ucp_dtn.dashboard import DashboardServer, NodeSources, is_loopback

    sources = NodeSources(node, services, f"ucp-bpnode {_version()}", started_at)
    context = None
    if trust is not None and not is_loopback(address[0]):
        context = trust.dashboard_context()
    dashboard = DashboardServer(sources, *address, ssl_context=context)
    await dashboard.run(task_status=task_status)


def _announce_trust(settings: DaemonSettings, node: BundleNode) -> None:
    """Say at start-up, loudly in open mode, who may connect."""
    trust = settings.trust
    if trust is not None:
        facts = trust.trust.facts
        logger.info(
            "trusted mesh: sessions need TLS with a certificate of the mesh authority %s naming "
            "the peer's node ID; UCP messages are signed and checked (this node %s, %s, "
            "certificate valid until %s)",
            trust.trust.authority.subject.rfc4514_string(),
            trust.node_id,
            facts.role,
            f"{facts.not_after:%Y-%m-%d}",
        )
    elif node.listen_addresses:
        logger.warning(
            "OPEN MODE: anyone who reaches %s may connect, send bundles, submit jobs and read "
            "data; for a mesh of people you do not all know, use --trust (docs/security.md)",
            ", ".join(format_address(*address) for address in node.listen_addresses),
        )


def _version() -> str:
    return getattr(ucp_dtn, "__version__", "0.1.0")


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon; return its exit status."""
    try:
        settings = load_settings(argv)
    except SettingsError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.verbosity)
    for notice in settings.notices:
        logger.warning("%s", notice)
    try:
        with _socket_location(settings) as socket_path:
            workdir = settings.node.workdir
            if workdir is None:
                trio.run(serve, settings, socket_path)
            else:
                own = [settings.node.store_path, settings.roles.workdir]
                with _workdir_lock(workdir, [path for path in own if path is not None]):
                    trio.run(serve, settings, socket_path)
    except StartupError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException as error:
        expected = (OSError, AppApiError, AgentError, StoreError)
        leaves = _leaves(error)
        if all(isinstance(leaf, expected) for leaf in leaves):
            print(f"{_PROG}: error: {_describe(leaves[0])}", file=sys.stderr)
            logger.debug("startup failure", exc_info=error)
            return 1
        raise
    return 0
