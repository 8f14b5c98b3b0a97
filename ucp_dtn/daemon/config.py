"""Settings of ``ucp-bpnode``: one table (:data:`SETTINGS`) → flags, TOML file, merge, help.

Every setting can be written in the file (``-c FILE``) under its name, and as the flag of the
same name (``custody_retransmit`` ↔ ``--custody-retransmit``; ``tls.cert`` ↔ ``--tls-cert`` and
``[tls] cert``). A flag replaces the file's value (a repeatable flag: the file's whole list).
Relative paths in the file are relative to the file's directory. An unknown key, a value of the
wrong type or a malformed value is an error naming the key and the file. Old names
(``static_peers``, ``--require-tls``...) still work and leave a warning in
:attr:`DaemonSettings.notices`. docs/bpnode.md lists every setting; its table is
:meth:`~ucp_dtn.settings.SettingsTable.markdown` of :data:`SETTINGS`.

Adding a setting: add a :class:`~ucp_dtn.settings.Setting` to :data:`SETTINGS` whose ``feeds``
names the parameter it configures (``"node.<NodeConfig field>"``, ``"role.<RoleSettings
field>"``, ``"tls.<parameter of _tls>"`` or ``"daemon.<DaemonSettings field>"``), add that
parameter with its default where it is used, and paste the new docs table (the test of the docs
prints it). Nothing else needs to name the setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from convergence.tcpcl.tls import TlsSettings, load_tls_settings
from ucp_dtn.agent import ConfigError, NodeConfig, SecurityPolicy, read_security_policy
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.settings import (
    ADDRESS,
    BOOL,
    COUNT,
    DURATION,
    INTERFACE,
    NODE_ID,
    PATH,
    PEER,
    POSITIVE_DURATION,
    POSITIVE_INT,
    PROBABILITY,
    SERVICE_TYPE,
    SIZE,
    TEXT,
    WHOLE_SECONDS,
    Kind,
    Setting,
    SettingsError,
    SettingsTable,
)
from ucp_dtn.trust import MeshTrust, TrustError

from .setting_kinds import (
    CAPABILITY,
    HTTP_ADDRESS,
    JOBS_AHEAD,
    KNOWN_ROLES,
    REPLICA_DEFAULT,
    ROLES,
    ROUTE,
    SECURITY,
    SECURITY_NAME,
    SecuritySpec,
    parse_route,
)

__all__ = [
    "KNOWN_ROLES",
    "SETTINGS",
    "DaemonSettings",
    "SecuritySpec",
    "SettingsError",
    "build_parser",
    "default_node_id",
    "load_settings",
    "parse_route",
]


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Everything ``ucp-bpnode`` needs to start."""

    node: NodeConfig
    """The bundle node's configuration."""
    socket_path: Path | None = None
    """The application API socket; ``None``: ``<workdir>/bpnode.sock``, or a fresh temporary
    directory for an in-memory node."""
    verbosity: int = 0
    """0: warnings, 1: info, 2: debug."""
    config_file: Path | None = None
    """The file the settings were read from, if any."""
    roles: RoleSettings = field(default_factory=RoleSettings)
    """The UCP roles this node runs and their settings."""
    notices: tuple[str, ...] = ()
    """Warnings to log once logging is set up (old setting names that still work)."""
    http: tuple[str, int] | None = None
    """Where the dashboard, its JSON API and ``/metrics`` listen (``--http``); ``None``: off."""
    trust: MeshTrust | None = None
    """The trusted mesh this node is a member of (``--trust``); ``None``: open mode, anyone
    who reaches a listener may connect."""


# -- kinds of values only the daemon has ----------------------------------------------------------


def default_node_id() -> str:
    """``dtn://<host name>/``, the node ID when none is given."""
    name = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    return f"dtn://{name or 'localhost'}/"


def _trust(path: Path | None) -> MeshTrust | None:
    """The trusted mesh of the ``trust`` setting (``None``: open mode)."""
    if path is None:
        return None
    try:
        return MeshTrust.load(path)
    except TrustError as exc:
        raise SettingsError(f"trust: {exc}") from None


def _tls(
    cert: Path | None = None, key: Path | None = None, ca: Path | None = None, require: bool = False
) -> TlsSettings | None:
    """The TLS settings of the ``tls.*`` settings (``None``: plain TCP)."""
    if cert is None and key is None and ca is None and not require:
        return None
    if (cert is None) != (key is None):
        raise SettingsError("TLS: a certificate (--tls-cert) needs its private key (--tls-key)")
    for what, path in (("certificate", cert), ("key", key), ("CA", ca)):
        if path is not None and not os.access(path, os.R_OK):
            raise SettingsError(f"TLS: cannot read the {what} file {path}")
    try:
        return load_tls_settings(cert, key, ca, require=require)
    except ValueError as exc:
        raise SettingsError(f"TLS: {exc}") from None
    except ssl.SSLError as exc:  # (an OSError too)
        raise SettingsError(f"TLS: bad certificate or key: {exc.reason or exc}") from None
    except OSError as exc:
        raise SettingsError(f"TLS: cannot load the files: {exc.strerror or exc}") from None


# -- the table ------------------------------------------------------------------------------------

# Ranges: what the protocols allow where they set a limit (keepalive: RFC 9174 §4.6, 16 bits),
# else what a node can use — wide enough for any real deployment, narrow enough that a slip
# (a lifetime of 1e9 days, a quota of 10^20 TiB, -vvvvv) is refused at start-up.
_MS = 0.001
_HOUR = 3600.0
_DAY = 24 * _HOUR
_LONGEST_LIFETIME_S = 3650 * _DAY
"""Ten years: the longest bundle lifetime (and delete memory) a node accepts."""
_GIB = 1024**3
_TIB = 1024**4
_PIB = 1024**5

KEEPALIVE: Kind[int] = dataclasses.replace(
    WHOLE_SECONDS.within(0, 0xFFFF), show=lambda seconds: f"{seconds}s"
)
"""TCPCL's keepalive interval: whole seconds, 16 bits (RFC 9174 §4.6), shown in seconds."""

_WORKDIR_NEEDED = "give a work directory (-W DIR) or --in-memory"

SETTINGS = SettingsTable(
    [
        Setting(
            "node_id",
            TEXT,
            "node ID, dtn://NAME/ or ipn:N.0",
            feeds=("node.node_id",),
            short="-n",
            metavar="EID",
            default_factory=default_node_id,
            default_help="dtn://<host name>/",
            example="dtn://example/",
        ),
        Setting(
            "workdir",
            PATH,
            "work directory: the persistent store lives in DIR/store (created if missing)",
            feeds=("node.workdir",),
            short="-W",
            metavar="DIR",
            excludes=("in_memory",),
            example="state",
        ),
        Setting(
            "in_memory",
            BOOL,
            "keep bundles in memory only, lost on exit; either this or -W is required",
        ),
        Setting(
            "listen",
            ADDRESS,
            "TCPCL listening address; port 0 picks a free port, a host alone port 4556",
            feeds=("node.listen",),
            short="-l",
            many=True,
            example="0.0.0.0:4557",
        ),
        Setting(
            "static_peer",
            PEER,
            "peer to keep a session with, reconnected with backoff forever",
            feeds=("node.static_peers",),
            short="-s",
            many=True,
            old_names=("static_peers",),
            example="tcp://10.0.0.7:4556",
        ),
        Setting(
            "route",
            ROUTE,
            "static route, e.g. 'dtn://c/*=dtn://b/'; patterns: *, dtn://b/*, ipn:5.*, a node "
            "ID, an exact EID or a text prefix ending in *; in the file also a table [route] "
            "PATTERN = NEXTHOP",
            feeds=("node.static_routes",),
            short="-r",
            many=True,
            old_names=("routes",),
            example="dtn://c/*=dtn://b/",
        ),
        Setting(
            "discovery",
            BOOL,
            "announce this node and connect to nodes found over zeroconf (DNS-SD _dtn-bundle._tcp)",
            feeds=("node.discovery",),
        ),
        Setting(
            "discovery_interface",
            INTERFACE,
            "IP address of an interface discovery runs on",
            feeds=("node.discovery_interfaces",),
            many=True,
            old_names=("discovery_interfaces",),
            default_help="all interfaces",
            example="127.0.0.1",
        ),
        Setting(
            "discovery_service_type",
            SERVICE_TYPE,
            "DNS-SD service type; another one keeps a group of nodes apart (tests)",
            feeds=("node.discovery_service_type",),
            default_help="_dtn-bundle._tcp.local.",
            example="_test._tcp",
        ),
        Setting(
            "trust",
            PATH,
            "join a trusted mesh with this device's trust file (ucp trust issue node): TLS "
            "with authenticated node IDs on every session, UCP messages signed and checked "
            "(docs/security.md); replaces the tls.* settings",
            excludes=("tls.cert", "tls.key", "tls.ca"),
            metavar="FILE",
            default_help="open mode: anyone who reaches a listener may connect",
            example="hub.trust.pem",
        ),
        Setting(
            "trust_client",
            NODE_ID,
            "brokers in a trusted mesh take jobs only from these clients (node IDs); by "
            "default from every client the mesh authority enrolled",
            feeds=("role.allowed_clients",),
            many=True,
            example="dtn://alice/",
        ),
        Setting(
            "tls.cert",
            PATH,
            "our certificate chain, naming our node ID in an id-on-bundleEID subjectAltName",
            feeds=("tls.cert",),
            metavar="PEM",
            example="node.pem",
        ),
        Setting(
            "tls.key", PATH, "the private key of --tls-cert", feeds=("tls.key",), metavar="PEM"
        ),
        Setting(
            "tls.ca",
            PATH,
            "trust anchors for peers' certificates",
            feeds=("tls.ca",),
            metavar="PEM",
        ),
        Setting(
            "tls.require",
            BOOL,
            "refuse sessions without TLS",
            feeds=("tls.require",),
            old_names=("require_tls",),
        ),
        Setting(
            "roles",
            ROLES,
            f"UCP roles of this node, comma-separated ({', '.join(KNOWN_ROLES)}); in the file "
            "an array; advertised through discovery",
            feeds=("node.roles", "role.roles"),
            example="broker,executor",
        ),
        Setting(
            "broker",
            NODE_ID,
            "broker the roles use, nearest first; by default the brokers found through route "
            "advertisements and discovery",
            feeds=("role.brokers",),
            many=True,
            old_names=("brokers",),
            example="dtn://hub/",
        ),
        Setting(
            "heartbeat",
            POSITIVE_DURATION.within(_MS, _DAY),
            "heartbeat interval of executors and datastores",
            feeds=("role.heartbeat_interval_s",),
            example="1s",
        ),
        Setting(
            "executor_timeout",
            POSITIVE_DURATION.within(_MS, 30 * _DAY),
            "a broker forgets executors and datastores silent this long",
            feeds=("role.executor_timeout_s",),
            example="1m",
        ),
        Setting(
            "broker_timeout",
            POSITIVE_DURATION.within(_MS, 30 * _DAY),
            "a node without any reachable broker this long may promote itself to broker "
            "(docs/disruption.md)",
            feeds=("role.broker_timeout_s",),
            example="2m",
        ),
        Setting(
            "promote_probability",
            PROBABILITY,
            "chance (0 to 1) at each heartbeat, once no broker was reachable for "
            "--broker-timeout, that this node promotes itself to broker; 0: never",
            feeds=("role.promote_probability",),
            example="0.5",
        ),
        Setting(
            "max_jobs",
            POSITIVE_INT.within(1, 1024),
            "jobs an executor runs at once",
            feeds=("role.max_jobs",),
            default_help="CPU cores",
            example="2",
        ),
        Setting(
            "epoch_interruption",
            BOOL,
            "executors: let wasmtime interrupt a job at its time limit from inside its worker "
            "process (epoch interruption; guests run ~20% slower); off, the worker is killed at "
            "the limit and replaced, and the job is reported the same way (docs/plans.md)",
            feeds=("role.epoch_interruption",),
        ),
        Setting(
            "input_cache",
            SIZE.within(0, _PIB),
            "executors: fetched named data kept by content so that later jobs on the same "
            "data fetch nothing (least recently used goes first); 0 keeps none",
            feeds=("role.input_cache_bytes",),
            example="4GiB",
        ),
        Setting(
            "dispatch_ahead",
            JOBS_AHEAD.within(0, 1000),
            "brokers: jobs an executor may be sent beyond its free slots, to wait there, when "
            "no capable executor has one free (many short jobs run back to back); 0: never",
            feeds=("role.dispatch_ahead",),
            example="2",
        ),
        Setting(
            "dispatch_ahead_time",
            DURATION.within(0.0, 3600.0),
            "brokers: an executor whose jobs are short may be sent more than "
            "--dispatch-ahead: as many as its slots get through in this time by how long its "
            "recent jobs ran (at most 64), never while one of its jobs has been out longer; "
            "0: --dispatch-ahead only",
            feeds=("role.dispatch_ahead_time_s",),
            example="1s",
        ),
        Setting(
            "output_interval",
            DURATION.within(0.0, _DAY),
            "how often an executor sends a running job's new output to its broker (ucp logs); "
            "0 sends none while the job runs",
            feeds=("role.output_interval_s",),
            example="5s",
        ),
        Setting(
            "datastore_quota",
            SIZE.within(1, _PIB),
            "space the datastore role may use",
            feeds=("role.datastore_quota_bytes",),
            example="64MiB",
        ),
        Setting(
            "replicas",
            REPLICA_DEFAULT,
            "datastores: the replication factor of data a put gives none, by name, e.g. "
            "survey=2 (a name with its subkeys), 'frames/f*=3', '*=2' (every name); the "
            "longest match wins; in the file a table [replicas]",
            feeds=("role.replica_defaults",),
            many=True,
            collect=dict,
            default_help="1 for every name",
            example="survey=2",
        ),
        Setting(
            "replica_timeout",
            POSITIVE_DURATION.within(_MS, 30 * _DAY),
            "brokers: a datastore silent this long no longer counts as holding its replicas; "
            "the missing copies are made elsewhere (docs/disruption.md)",
            feeds=("role.replica_timeout_s",),
            example="10m",
        ),
        Setting(
            "replication_rate",
            SIZE.within(0, _TIB),
            "datastores: bytes per second of replica copies sent over one link at most, and "
            "only while nothing else waits for it; 0: no limit",
            feeds=("role.replication_rate",),
            example="256KiB",
        ),
        Setting(
            "tombstone_lifetime",
            POSITIVE_DURATION.within(_MS, _LONGEST_LIFETIME_S),
            "datastores: how long a delete is remembered, so that older writes arriving later "
            "stay deleted; keep it at least as long as put bundles live",
            feeds=("role.tombstone_lifetime_s",),
            example="14d",
        ),
        Setting(
            "capability",
            CAPABILITY,
            "announce this capability instead of the measured one, e.g. memory=2GiB, "
            "cpu_cores=4, gpu=true; in the file a table [capability]",
            feeds=("role.capability_overrides",),
            many=True,
            collect=dict,
            old_names=("capabilities",),
            example="gpu=true",
        ),
        Setting(
            "security",
            SECURITY,
            "BPSec policy: named keys and rules saying which security operations this node "
            "adds, checks and accepts (docs/security.md); in the file the table [security], "
            "on the command line a TOML file holding it",
            default_help="none: security blocks are carried unchecked",
        ),
        Setting(
            "quota",
            SIZE.within(1, _PIB),
            "store quota; a full store refuses transfers (XFER_REFUSE No Resources) and local "
            "sends",
            feeds=("node.store_quota_bytes",),
            example="64MiB",
        ),
        Setting(
            "socket",
            PATH,
            "application API socket",
            feeds=("daemon.socket_path",),
            default_help="<workdir>/bpnode.sock, in memory a fresh temporary directory",
            example="api.sock",
        ),
        Setting(
            "http",
            HTTP_ADDRESS,
            "serve the dashboard, its JSON API and /metrics here (a bare PORT: 127.0.0.1); "
            "another host than loopback lets anyone who reaches it look (docs/dashboard.md)",
            feeds=("daemon.http",),
            default_help="off",
            example="127.0.0.1:8080",
        ),
        Setting(
            "lifetime",
            POSITIVE_DURATION.within(_MS, _LONGEST_LIFETIME_S),
            "lifetime of bundles local applications send without one",
            feeds=("node.default_lifetime_s",),
            example="2d",
        ),
        Setting(
            "custody_retransmit",
            POSITIVE_DURATION.within(_MS, _DAY),
            "how long a custodian waits for a custody signal before sending again",
            feeds=("node.custody_retransmit_s",),
            example="45s",
        ),
        Setting(
            "route_interval",
            POSITIVE_DURATION.within(_MS, _DAY),
            "interval of route advertisements to neighbours; learned routes live 3 intervals",
            feeds=("node.route_advert_interval_s",),
            example="5s",
        ),
        Setting(
            "reactive_fragmentation",
            BOOL,
            "when a session ends mid-transfer, keep what was acknowledged and send only the rest "
            "(RFC 9171 §5.8; both peers must have it on)",
            feeds=("node.reactive_fragmentation",),
        ),
        Setting(
            "receive_memory",
            SIZE.within(1, 64 * _GIB),
            "memory for incoming transfers, all sessions together; past it sessions stop reading",
            feeds=("node.receive_memory_bytes",),
            example="16MiB",
        ),
        Setting(
            "spool_threshold",
            SIZE.within(1, 64 * _GIB),
            "incoming transfers larger than this go to a spool file beside the store",
            feeds=("node.spool_threshold_bytes",),
            example="4MiB",
        ),
        Setting(
            "segment_size",
            SIZE.within(1, _GIB),
            "TCPCL segment size sent and offered as Segment MRU: what a cut transfer keeps is "
            "counted in segments",
            feeds=("node.segment_bytes",),
            example="64KiB",
        ),
        Setting(
            "send_window",
            POSITIVE_DURATION.within(_MS, _HOUR),
            "unacknowledged data kept in flight per session, in time at the rate the peer "
            "acknowledges",
            feeds=("node.send_window_s",),
            example="500ms",
        ),
        Setting(
            "keepalive",
            KEEPALIVE,
            "TCPCL keepalive interval offered, whole seconds; 0 disables",
            feeds=("node.keepalive_s",),
            example="10s",
        ),
        Setting(
            "reconnect_max",
            POSITIVE_DURATION.within(_MS, _DAY),
            "longest wait between attempts to reach a static peer",
            feeds=("node.reconnect_max_s",),
            example="2m",
        ),
        Setting(
            "verbose",
            COUNT.within(0, 2),
            "log more: -v info, -vv debug; in the file 1 or 2",
            feeds=("daemon.verbosity",),
            short="-v",
            example="2",
        ),
        Setting(
            "config",
            PATH,
            "TOML configuration file; flags override it",
            short="-c",
            metavar="FILE",
            in_file=False,
        ),
    ],
    targets={"node": NodeConfig, "role": RoleSettings, "tls": _tls, "daemon": DaemonSettings},
    config="config",
)
"""Every setting of ``ucp-bpnode``."""


def _security(spec: SecuritySpec | None, config_file: Path | None) -> SecurityPolicy | None:
    """The policy of the ``security`` setting, its key files read (every error: one line)."""
    if spec is None:
        return None
    base = spec.base
    where = spec.origin
    if base is None:
        base = config_file.parent if config_file is not None else Path.cwd()
        if config_file is not None:
            where = f"{config_file}: {where}"
    try:
        return read_security_policy(spec.table, base, where=where)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse's parser, reporting errors as :class:`SettingsError` (main prints one line)."""

    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ucp-bpnode`` (flags not given stay out of the namespace)."""
    parser = _Parser(
        prog="ucp-bpnode",
        description="Run a bundle node: store, forward and deliver BPv7 bundles over TCPCLv4, "
        "and serve local applications on a Unix socket.",
        epilog="Every flag has a key of the same name in the config file (--static-peer: "
        "static_peer = [...], --tls-cert: [tls] cert). Durations: 250ms, 10s, 2m, 1h15s. "
        "Sizes: 64MiB, 1GiB. Flags override the file. See docs/bpnode.md.",
    )
    SETTINGS.add_arguments(parser)
    return parser


def load_settings(argv: Sequence[str] | None = None) -> DaemonSettings:
    """Parse the command line (and the file it names); :class:`SettingsError` if anything is
    wrong. Nothing is created on disk."""
    resolved = SETTINGS.resolve(build_parser(), argv)
    node_arguments = resolved.arguments("node")
    workdir = node_arguments.pop("workdir", None)
    if workdir is None and not resolved.get("in_memory"):
        raise SettingsError(_WORKDIR_NEEDED)
    security = _security(resolved.get(SECURITY_NAME), resolved.config_file)
    trust = _trust(resolved.get("trust"))
    try:
        node = NodeConfig(
            workdir=workdir,
            tls=None if trust is not None else _tls(**resolved.arguments("tls")),
            security=security,
            **node_arguments,
        )
        if trust is not None:
            if str(node.node_id) == default_node_id():  # -n defaults to the trust file's
                node = dataclasses.replace(node, node_id=trust.node_id)
            node = trust.configure(node)
    except (ConfigError, TrustError) as exc:
        raise SettingsError(str(exc)) from None
    try:
        roles = RoleSettings(
            workdir=None if node.workdir is None else node.workdir / "roles",
            **resolved.arguments("role"),
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return DaemonSettings(
        node=node,
        roles=roles,
        config_file=resolved.config_file,
        notices=resolved.notices,
        trust=trust,
        **resolved.arguments("daemon"),
    )
