"""The live dashboard of a node (``ucp-bpnode --http HOST:PORT``): a page that draws the mesh as
this node sees it, a read-only JSON API, server-sent events and Prometheus ``/metrics``.

:class:`DashboardServer` serves it from the daemon's trio loop (hypercorn + starlette);
:class:`NodeSources` says what it reads; :class:`SnapshotBuilder` builds the document the page
draws; :class:`NodeCollector` turns the node's counters into metrics. Importing this package
imports the HTTP stack: the daemon does so only when ``--http`` is given. See docs/dashboard.md.
"""

from .app import API_PREFIX, Dashboard, create_app, static_assets
from .feed import SnapshotFeed, Subscription
from .jobs import JOB_STATES, Histogram, JobRow, JobTable
from .metrics import CONTENT_TYPE, NodeCollector, metrics_registry, render_metrics
from .server import DashboardServer, client_certificate_context, is_loopback
from .snapshot import SNAPSHOT_VERSION, Snapshot, SnapshotBuilder, snapshot_json
from .sources import NodeSources

__all__ = [
    "API_PREFIX",
    "CONTENT_TYPE",
    "JOB_STATES",
    "SNAPSHOT_VERSION",
    "Dashboard",
    "DashboardServer",
    "Histogram",
    "JobRow",
    "JobTable",
    "NodeCollector",
    "NodeSources",
    "Snapshot",
    "SnapshotBuilder",
    "SnapshotFeed",
    "Subscription",
    "client_certificate_context",
    "create_app",
    "is_loopback",
    "metrics_registry",
    "render_metrics",
    "snapshot_json",
    "static_assets",
]
