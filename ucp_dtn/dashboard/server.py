"""Serve the dashboard from the daemon's own trio loop: :class:`DashboardServer`.

hypercorn's trio worker runs the ASGI app of :mod:`.app` as tasks of the daemon's nursery,
beside the bundle node; the snapshot feed's task runs next to it. ``run`` reports the bound
``(host, port)`` (port 0 resolved) once the server listens; cancellation stops it.

Who may look: in open mode (no TLS) the server listens where ``--http`` says, 127.0.0.1 unless
told otherwise; bound to another address it logs a loud warning at start-up, because anybody
who reaches the address sees the node's peers, routes and jobs. The trusted mesh will pass an
``ssl_context`` that requires a client certificate signed by the mesh's authority
(:func:`client_certificate_context`): hypercorn then serves HTTPS only and the TLS handshake
refuses every client without such a certificate, before any request is read.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from .app import Dashboard, create_app, loopback_hosts
from .sources import NodeSources

__all__ = ["DashboardServer", "client_certificate_context", "is_loopback"]

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_certificate_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """A server context that requires every client to present a certificate signed by
    ``client_ca`` (TLS 1.2 or later): how the trusted mesh will guard the dashboard."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class _Config(Config):
    """hypercorn's configuration, with a ready-made TLS context instead of file names."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__()
        self._context = ssl_context

    @property
    def ssl_enabled(self) -> bool:
        return self._context is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._context


class DashboardServer:
    """The dashboard of one node on ``host:port`` (see the module docstring)."""

    def __init__(
        self,
        sources: NodeSources,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        interval_s: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.sources = sources
        self.host = host
        self.port = port
        self.interval_s = interval_s
        """Seconds between two snapshots of the live page."""
        self.ssl_context = ssl_context
        self.address: tuple[str, int] | None = None
        """The bound address once listening."""
        self.dashboard: Dashboard | None = None
        """What the routes read, once running."""

    @property
    def url(self) -> str:
        """The page's address once listening (``http://`` or ``https://``)."""
        if self.address is None:
            raise RuntimeError("the dashboard is not listening")
        host, port = self.address
        scheme = "https" if self.ssl_context is not None else "http"
        host_text = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host_text}:{port}/"

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; ``task_status.started((host, port))`` once listening."""
        dashboard = Dashboard.create(self.sources, interval_s=self.interval_s)
        self.dashboard = dashboard
        local = is_loopback(self.host)
        app = create_app(dashboard, allowed_hosts=loopback_hosts(self.host) if local else None)
        config = _Config(self.ssl_context)
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        config.bind = [f"{host_text}:{self.port}"]
        config.errorlog = logging.getLogger("ucp_dtn.dashboard.http")
        config.accesslog = None
        config.include_server_header = False
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            await nursery.start(dashboard.feed.run)
            # starlette's and hypercorn's ASGI type hints differ in spelling only.
            asgi: Any = app
            binds: list[str] = await nursery.start(functools.partial(serve, asgi, config))
            self.address = _bound_address(binds[0])
            if not local and self.ssl_context is None:
                logger.warning(
                    "THE DASHBOARD IS OPEN TO THE NETWORK: %s answers anybody who can reach "
                    "it, without authentication, and shows this node's peers, routes, store "
                    "and jobs. Use --http 127.0.0.1:PORT (the default host) unless every "
                    "host on that network may see them.",
                    self.url,
                )
            logger.info("dashboard at %s (metrics at %smetrics)", self.url, self.url)
            task_status.started(self.address)


def _bound_address(bind: str) -> tuple[str, int]:
    """``http://127.0.0.1:8080`` → ``("127.0.0.1", 8080)``."""
    rest = bind.partition("://")[2]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)
