"""The dashboard's web application: the page, its assets, the JSON API, the event stream and
``/metrics`` (an ASGI app built with starlette; :mod:`.server` serves it with hypercorn).

Every route is read-only (``GET``/``HEAD``; anything else is ``405``). Routes:

* ``/`` — the page; ``/static/…`` — its script, style sheet and icon, shipped in the package
  (nothing comes from another site: the Content-Security-Policy says so to the browser too);
* ``/api/v1/snapshot`` — the current :class:`~.snapshot.Snapshot` as JSON;
* ``/api/v1/jobs`` — the broker's jobs, filtered (``state``, ``executor``, ``q``, ``limit``);
  ``/api/v1/jobs/{uuid}`` — one job;
* ``/api/v1/events`` — server-sent events: one ``snapshot`` event per interval;
* ``/metrics`` — Prometheus' text format.

docs/dashboard.md documents the API. When the server listens on a loopback address only
requests whose ``Host`` names a loopback address are answered (a web page elsewhere cannot read
the API through DNS rebinding).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from importlib import resources

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..appapi.server import plain_data
from .feed import SnapshotFeed
from .jobs import JOB_STATES, JobTable
from .metrics import CONTENT_TYPE, render_metrics
from .snapshot import SnapshotBuilder, snapshot_json
from .sources import NodeSources

__all__ = [
    "API_PREFIX",
    "MAX_EVENT_STREAMS",
    "MAX_JOBS_PER_REQUEST",
    "Dashboard",
    "create_app",
    "static_assets",
]

API_PREFIX = "/api/v1"
"""Where the JSON API lives."""
MAX_EVENT_STREAMS = 64
"""Open event streams at most (more get ``503``): each holds a connection."""
MAX_JOBS_PER_REQUEST = 10_000
"""Largest ``limit`` of ``/api/v1/jobs``."""

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

_ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def static_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the page, from the package: name → (content, media type)."""
    assets = {}
    for item in resources.files("ucp_dtn.dashboard").joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _ASSET_TYPES:
            assets[item.name] = (item.read_bytes(), _ASSET_TYPES[suffix])
    return assets


@dataclass(slots=True)
class Dashboard:
    """What the routes read: the node's sources, the shared job table, the snapshot builder,
    the feed and the metrics registry."""

    sources: NodeSources
    """The node and its roles."""
    jobs: JobTable
    """The broker's jobs (shared by snapshots, the API and the metrics)."""
    builder: SnapshotBuilder
    """Builds snapshots."""
    feed: SnapshotFeed
    """The one periodic snapshot the event streams share."""
    registry: CollectorRegistry
    """The Prometheus registry of ``/metrics``."""

    @classmethod
    def create(cls, sources: NodeSources, *, interval_s: float = 1.0) -> Dashboard:
        """The dashboard of ``sources`` with snapshots every ``interval_s`` while watched."""
        from .metrics import metrics_registry

        jobs = JobTable()
        builder = SnapshotBuilder(sources, jobs)
        feed = SnapshotFeed(lambda: snapshot_json(builder.build()), interval_s)
        return cls(sources, jobs, builder, feed, metrics_registry(sources, jobs))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(dashboard: Dashboard, *, allowed_hosts: Collection[str] | None = None) -> ASGIApp:
    """The ASGI application of ``dashboard``. ``allowed_hosts``: the host names a request's
    ``Host`` header may carry (``None``: any)."""
    assets = static_assets()
    index, index_type = assets["index.html"]
    feed = dashboard.feed
    streams = 0

    async def page(request: Request) -> Response:
        return Response(index, media_type=index_type, headers={"cache-control": "no-cache"})

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None or request.path_params["name"] == "index.html":
            return _error(404, "no such file")
        content, media_type = found
        return Response(content, media_type=media_type, headers={"cache-control": "no-cache"})

    async def snapshot(request: Request) -> Response:
        return Response(feed.current(), media_type="application/json")

    async def jobs(request: Request) -> Response:
        params = request.query_params
        states = [s for value in params.getlist("state") for s in value.split(",") if s]
        unknown = sorted(set(states) - set(JOB_STATES))
        if unknown:
            return _error(400, f"unknown state {unknown[0]!r} (known: {', '.join(JOB_STATES)})")
        limit_text = params.get("limit", "1000")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_JOBS_PER_REQUEST:
            return _error(400, f"limit must be a whole number from 1 to {MAX_JOBS_PER_REQUEST}")
        broker = dashboard.sources.broker()
        table = dashboard.jobs
        table.refresh(broker)
        rows = table.select(
            states=states,
            executor=params.get("executor") or None,
            text=params.get("q") or None,
            limit=int(limit_text),
        )
        body = {
            "broker": None if broker is None else str(broker.endpoint),
            "total": len(table),
            "counts": table.counts(),
            "jobs": plain_data(rows),
        }
        return JSONResponse(body)

    async def job(request: Request) -> Response:
        try:
            job_id = str(uuid.UUID(request.path_params["job_id"]))
        except ValueError:
            return _error(400, "not a job UUID")
        table = dashboard.jobs
        table.refresh(dashboard.sources.broker())
        row = table.get(job_id)
        if row is None:
            return _error(404, f"no job {job_id} at this broker")
        return JSONResponse(plain_data(row))

    async def events(request: Request) -> Response:
        nonlocal streams
        if streams >= MAX_EVENT_STREAMS:
            return _error(503, "too many open event streams")
        streams += 1

        async def stream() -> AsyncIterator[bytes]:
            nonlocal streams
            try:
                async with feed.subscribe() as subscription:
                    yield f"retry: {int(feed.interval_s * 3000)}\n\n".encode()
                    while True:
                        data = await subscription.next()
                        yield b"event: snapshot\ndata: " + data + b"\n\n"
            finally:
                streams -= 1

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def metrics(request: Request) -> Response:
        return Response(render_metrics(dashboard.registry), media_type=CONTENT_TYPE)

    async def index_of_api(request: Request) -> Response:
        return JSONResponse(
            {
                "snapshot": f"{API_PREFIX}/snapshot",
                "jobs": f"{API_PREFIX}/jobs",
                "events": f"{API_PREFIX}/events",
                "metrics": "/metrics",
            }
        )

    app = Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/static/{name}", asset, methods=["GET"]),
            Route(API_PREFIX, index_of_api, methods=["GET"]),
            Route(f"{API_PREFIX}/snapshot", snapshot, methods=["GET"]),
            Route(f"{API_PREFIX}/jobs", jobs, methods=["GET"]),
            Route(f"{API_PREFIX}/jobs/{{job_id}}", job, methods=["GET"]),
            Route(f"{API_PREFIX}/events", events, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
    return _Guard(app, allowed_hosts)


class _Guard:
    """ASGI wrapper: refuses requests for other host names, adds the security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str] | None) -> None:
        self._app = app
        self._allowed = None if allowed_hosts is None else frozenset(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._allowed is not None and _host_name(scope) not in self._allowed:
            body = json.dumps({"error": "unexpected Host header"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 421,
                    "headers": [(b"content-type", b"application/json"), *_SECURITY_HEADERS],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *_SECURITY_HEADERS]}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _host_name(scope: Scope) -> str:
    """The host name of the request's ``Host`` header, without port and brackets."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[1 : host.find("]")] if "]" in host else host
            return host.rpartition(":")[0] if ":" in host else host
    return ""


def loopback_hosts(bound_host: str) -> frozenset[str]:
    """The ``Host`` names a loopback-bound dashboard answers."""
    return _LOOPBACK_NAMES | {bound_host.lower()}
