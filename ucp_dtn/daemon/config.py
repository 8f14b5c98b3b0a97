"""Settings of ``ucp-bpnode``: a TOML file and command-line flags → :class:`DaemonSettings`.

Every setting can be written in the file (``-c FILE``) and most as a flag; a flag given on the
command line replaces the file's value (for the repeatable flags ``-l``, ``-s`` and ``-r``: the
file's whole list). Relative paths in the file are relative to the file's directory. An unknown
key, a value of the wrong type or a malformed value is an error naming the key and the file.
docs/bpnode.md lists every key with an example.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import socket
import ssl
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from bpv7 import DecodeError, parse_eid
from convergence.lossy.cli import parse_address
from convergence.lossy.units import QuantityError, parse_duration, parse_size
from convergence.tcpcl.tls import TlsSettings, load_tls_settings
from ucp_dtn.agent import ConfigError, NodeConfig
from ucp_dtn.roles.settings import RoleSettings

__all__ = [
    "KNOWN_ROLES",
    "TCPCL_PORT",
    "DaemonSettings",
    "SettingsError",
    "build_parser",
    "default_node_id",
    "load_settings",
    "parse_route",
    "parse_static_peer",
]

TCPCL_PORT = 4556
"""TCPCLv4's registered port (RFC 9174 §9.1), used when an address names none."""

KNOWN_ROLES = ("broker", "executor", "datastore")
"""The UCP roles a node may take."""


class SettingsError(ValueError):
    """The command line or the configuration file is wrong (one-line message)."""


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Everything ``ucp-bpnode`` needs to start."""

    node: NodeConfig
    """The bundle node's configuration."""
    socket_path: Path | None
    """The application API socket; ``None``: ``<workdir>/bpnode.sock``, or a fresh temporary
    directory for an in-memory node."""
    verbosity: int
    """0: warnings, 1: info, 2: debug."""
    config_file: Path | None
    """The file the settings were read from, if any."""
    roles: RoleSettings = field(default_factory=RoleSettings)
    """The UCP roles this node runs and their settings."""


# -- value parsers (shared by flags and file) ---------------------------------------------------


def parse_static_peer(text: str) -> tuple[str, int]:
    """Read ``tcp://HOST:PORT`` (or ``HOST:PORT``; port 4556 if omitted)."""
    rest = text.strip()
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        if scheme.lower() not in ("tcp", "tcpcl"):
            raise ValueError(f"static peer {text!r}: only tcp:// peers are supported")
        rest = rest.removesuffix("/")
    if "/" in rest:
        raise ValueError(f"static peer {text!r}: write tcp://HOST:PORT")
    return parse_address(rest, default_port=TCPCL_PORT)


def parse_listen(text: str) -> tuple[str, int]:
    """Read a listening address ``HOST:PORT`` (port 0: any free port; 4556 if omitted)."""
    return parse_address(text, default_port=TCPCL_PORT)


def parse_route(text: str) -> tuple[str, str]:
    """Read ``PATTERN=NEXTHOP`` (e.g. ``dtn://c/*=dtn://b/``)."""
    pattern, equals, next_hop = text.rpartition("=")
    if not equals or not pattern.strip() or not next_hop.strip():
        raise ValueError(f"route {text!r}: write PATTERN=NEXTHOP, e.g. dtn://c/*=dtn://b/")
    return pattern.strip(), next_hop.strip()


def parse_interface(text: str) -> str:
    """Read an interface's IP address (``127.0.0.1``, ``::1``)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def parse_service_type(text: str) -> str:
    """Read a DNS-SD service type (``_name._tcp.local.``; the trailing ``.local.`` may be
    left out)."""
    from ucp_dtn.discovery import DiscoveryConfigError, check_service_type

    service_type = text.strip()
    if not service_type.endswith(".local."):
        service_type = service_type.rstrip(".") + ".local."
    try:
        return check_service_type(service_type)
    except DiscoveryConfigError as exc:
        raise ValueError(str(exc)) from None


def parse_roles(text: str) -> tuple[str, ...]:
    """Read a comma-separated role list (``broker,executor``)."""
    roles = tuple(part.strip() for part in text.split(",") if part.strip())
    return _check_roles(roles)


def parse_broker(text: str) -> str:
    """A broker's node ID (any endpoint of the node is accepted and reduced to its node ID)."""
    try:
        return str(parse_eid(text.strip()).node_id)
    except DecodeError as exc:
        raise ValueError(f"not a node ID: {text!r} ({exc.message})") from None


def parse_positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def parse_probability(text: str) -> float:
    """A number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


_SIZE_CAPABILITIES = ("memory", "disk")


def parse_capability(text: str) -> tuple[str, int | float | bool | str]:
    """``KEY=VALUE``: sizes for memory/disk (``2GiB``), numbers, ``true``/``false``, text."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    if key in _SIZE_CAPABILITIES:
        return key, parse_size(raw)
    return key, _capability_value(raw)


def _capability_value(raw: str) -> int | float | bool | str:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def _check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    for role in roles:
        if role not in KNOWN_ROLES:
            raise ValueError(f"unknown role {role!r} (known: {', '.join(KNOWN_ROLES)})")
    return tuple(dict.fromkeys(roles))


def default_node_id() -> str:
    """``dtn://<host name>/``, the node ID when none is given."""
    name = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    return f"dtn://{name or 'localhost'}/"


# -- the command line ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def _flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a parser so argparse reports its message (argparse hides a ValueError's text)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ucp-bpnode`` (flags default to ``None``: not given)."""
    parser = _Parser(
        prog="ucp-bpnode",
        description="Run a bundle node: store, forward and deliver BPv7 bundles over TCPCLv4, "
        "and serve local applications on a Unix socket.",
        epilog="Durations: 10s, 2m, 1h15s. Sizes: 64MiB, 1GiB. Flags override the config file. "
        "See docs/bpnode.md.",
        argument_default=None,
    )
    add = parser.add_argument
    add("-n", "--node-id", metavar="EID", help="node ID, dtn://NAME/ or ipn:N.0")
    add("-W", "--workdir", type=Path, metavar="DIR", help="directory of the persistent store")
    add(
        "--in-memory",
        action="store_const",
        const=True,
        help="keep bundles in memory only (lost on exit)",
    )
    add(
        "-l",
        "--listen",
        action="append",
        type=_flag_type(parse_listen),
        metavar="HOST:PORT",
        help="TCPCL listening address (repeatable; port 0: any free port; default 127.0.0.1:4556)",
    )
    add(
        "-s",
        "--static-peer",
        action="append",
        type=_flag_type(parse_static_peer),
        metavar="tcp://HOST:PORT",
        help="peer to stay connected to (repeatable)",
    )
    add(
        "-r",
        "--route",
        action="append",
        type=_flag_type(parse_route),
        metavar="PATTERN=NEXTHOP",
        help="static route, e.g. 'dtn://c/*=dtn://b/' (repeatable)",
    )
    add("-c", "--config", type=Path, metavar="FILE", help="TOML configuration file")
    add(
        "--discovery",
        action=argparse.BooleanOptionalAction,
        help="announce this node and connect to nodes found over zeroconf (default: off)",
    )
    add(
        "--discovery-interface",
        action="append",
        type=_flag_type(parse_interface),
        metavar="ADDRESS",
        help="IP address of an interface discovery runs on (repeatable; default: all)",
    )
    add(
        "--discovery-service-type",
        type=_flag_type(parse_service_type),
        metavar="TYPE",
        help="DNS-SD service type (default _dtn-bundle._tcp.local.; another one isolates a "
        "group of nodes)",
    )
    add("--tls-cert", type=Path, metavar="PEM", help="our certificate chain")
    add("--tls-key", type=Path, metavar="PEM", help="its private key")
    add("--tls-ca", type=Path, metavar="PEM", help="trust anchors for peers' certificates")
    add("--require-tls", action="store_const", const=True, help="refuse sessions without TLS")
    add(
        "--roles",
        type=_flag_type(parse_roles),
        metavar="ROLES",
        help=f"UCP roles to advertise, comma-separated ({', '.join(KNOWN_ROLES)})",
    )
    add(
        "--broker",
        action="append",
        type=_flag_type(parse_broker),
        metavar="NODE_ID",
        help="broker the roles use (repeatable, nearest first; default: brokers found through "
        "route advertisements and discovery)",
    )
    add(
        "--heartbeat",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="heartbeat interval of executors and datastores (default 5s)",
    )
    add(
        "--executor-timeout",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="a broker forgets executors and datastores silent this long (default 15s)",
    )
    add(
        "--broker-timeout",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="a node without any reachable broker this long may promote itself (default 30s)",
    )
    add(
        "--promote-probability",
        type=_flag_type(parse_probability),
        metavar="P",
        help="chance per heartbeat, once no broker was reachable for --broker-timeout, that "
        "this node promotes itself to broker (0 to 1; default 0: never)",
    )
    add("--max-jobs", type=_flag_type(parse_positive_int), metavar="N", help="jobs run at once")
    add(
        "--datastore-quota",
        type=_flag_type(parse_size),
        metavar="SIZE",
        help="space the datastore role may use (default 4GiB)",
    )
    add(
        "--capability",
        action="append",
        type=_flag_type(parse_capability),
        metavar="KEY=VALUE",
        help="announce this capability instead of the measured one, e.g. memory=2GiB, "
        "cpu_cores=4, gpu=true (repeatable)",
    )
    add("--quota", type=_flag_type(parse_size), metavar="SIZE", help="store quota (default 1GiB)")
    add("--socket", type=Path, metavar="PATH", help="application API socket")
    add(
        "--lifetime",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="default lifetime of bundles sent by local applications (default 24h)",
    )
    add(
        "--custody-retransmit",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="wait for a custody signal before sending again (default 30s)",
    )
    add(
        "--route-interval",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="interval of route advertisements to neighbours (default 10s)",
    )
    add(
        "--keepalive",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="TCPCL keepalive interval offered (default 30s; 0 disables)",
    )
    add(
        "--reconnect-max",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="longest wait between attempts to reach a static peer (default 1m)",
    )
    # -- transfers that survive link cuts (issue #9) --
    add(
        "--reactive-fragmentation",
        action=argparse.BooleanOptionalAction,
        help="when a session ends mid-transfer, keep what was acknowledged and send only the "
        "rest (RFC 9171 §5.8; default: on)",
    )
    add(
        "--receive-memory",
        type=_flag_type(parse_size),
        metavar="SIZE",
        help="memory for incoming transfers, all sessions together (default 64MiB)",
    )
    add(
        "--spool-threshold",
        type=_flag_type(parse_size),
        metavar="SIZE",
        help="incoming transfers larger than this go to a spool file (default 1MiB)",
    )
    add(
        "--segment-size",
        type=_flag_type(parse_size),
        metavar="SIZE",
        help="TCPCL segment size sent and accepted (default 256KiB)",
    )
    add(
        "--send-window",
        type=_flag_type(parse_duration),
        metavar="DURATION",
        help="unacknowledged data kept in flight per session, in time at the peer's rate "
        "(default 250ms)",
    )
    add("-v", "--verbose", action="count", help="log more (-v info, -vv debug)")
    return parser


# -- the file -----------------------------------------------------------------------------------

_TOML_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
}


def _toml_type(value: object) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


class _FileReader:
    """Typed access to the keys of one table of the file; errors name key and file."""

    def __init__(self, table: Mapping[str, Any], file: Path, prefix: str = "") -> None:
        self._table = table
        self._file = file
        self._prefix = prefix
        self._base = file.parent

    def fail(self, key: str, message: str) -> NoReturn:
        raise SettingsError(f"{self._file}: {self._prefix}{key}: {message}")

    def check_keys(self, known: Sequence[str]) -> None:
        for key in self._table:
            if key not in known:
                raise SettingsError(
                    f"{self._file}: unknown key {self._prefix + key!r} "
                    f"(known: {', '.join(self._prefix + k for k in known)})"
                )

    def _typed(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self._table.get(key)
        if value is None:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(key, f"must be {expected}, got {_toml_type(value)}")
        return value

    def text(self, key: str) -> str | None:
        value: str | None = self._typed(key, (str,), "a string")
        return value

    def boolean(self, key: str) -> bool | None:
        value: bool | None = self._typed(key, (bool,), "a boolean")
        return value

    def path(self, key: str) -> Path | None:
        text = self.text(key)
        if text is None:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self._base / path

    def text_list(self, key: str) -> list[str] | None:
        value: list[Any] | None = self._typed(key, (list,), "an array of strings")
        if value is not None and not all(isinstance(item, str) for item in value):
            self.fail(key, "must be an array of strings")
        return value

    def parsed_list(self, key: str, parse: Callable[[str], Any]) -> list[Any] | None:
        items = self.text_list(key)
        if items is None:
            return None
        try:
            return [parse(item) for item in items]
        except ValueError as exc:
            self.fail(key, str(exc))

    def duration(self, key: str) -> float | None:
        value = self._typed(key, (str, int, float), "a duration ('10s', '2m') or seconds")
        if value is None or not isinstance(value, str):
            return None if value is None else float(value)
        try:
            return parse_duration(value)
        except QuantityError as exc:
            self.fail(key, str(exc))

    def size(self, key: str) -> int | None:
        value = self._typed(key, (str, int), "a size ('64MiB') or a number of bytes")
        if value is None or isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except QuantityError as exc:
            self.fail(key, str(exc))

    def number(self, key: str) -> float | None:
        value = self._typed(key, (int, float), "a number")
        return None if value is None else float(value)

    def integer(self, key: str) -> int | None:
        value: int | None = self._typed(key, (int,), "an integer")
        return value

    def table(self, key: str) -> _FileReader | None:
        value = self._typed(key, (dict,), "a table")
        if value is None:
            return None
        return _FileReader(value, self._file, f"{self._prefix}{key}.")


_FILE_KEYS = (
    "node_id",
    "workdir",
    "in_memory",
    "listen",
    "static_peers",
    "routes",
    "discovery",
    "discovery_interfaces",
    "discovery_service_type",
    "roles",
    "brokers",
    "heartbeat",
    "executor_timeout",
    "broker_timeout",
    "promote_probability",
    "max_jobs",
    "datastore_quota",
    "capabilities",
    "quota",
    "socket",
    "lifetime",
    "custody_retransmit",
    "route_interval",
    "keepalive",
    "reconnect_max",
    "verbose",
    "tls",
    "reactive_fragmentation",
    "receive_memory",
    "spool_threshold",
    "segment_size",
    "send_window",
)
_TLS_KEYS = ("cert", "key", "ca", "require")


def _read_file(path: Path) -> dict[str, Any]:
    """The file's settings, in the same shape as the parsed flags."""
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not valid TOML: not UTF-8 text") from None
    reader = _FileReader(document, path)
    reader.check_keys(_FILE_KEYS)
    values: dict[str, Any] = {
        "node_id": reader.text("node_id"),
        "workdir": reader.path("workdir"),
        "in_memory": reader.boolean("in_memory"),
        "listen": reader.parsed_list("listen", parse_listen),
        "static_peer": reader.parsed_list("static_peers", parse_static_peer),
        "discovery": reader.boolean("discovery"),
        "discovery_interface": reader.parsed_list("discovery_interfaces", parse_interface),
        "quota": reader.size("quota"),
        "socket": reader.path("socket"),
        "lifetime": reader.duration("lifetime"),
        "custody_retransmit": reader.duration("custody_retransmit"),
        "route_interval": reader.duration("route_interval"),
        "keepalive": reader.duration("keepalive"),
        "reconnect_max": reader.duration("reconnect_max"),
        "verbose": reader.integer("verbose"),
        "reactive_fragmentation": reader.boolean("reactive_fragmentation"),
        "receive_memory": reader.size("receive_memory"),
        "spool_threshold": reader.size("spool_threshold"),
        "segment_size": reader.size("segment_size"),
        "send_window": reader.duration("send_window"),
    }
    roles = reader.text_list("roles")
    if roles is not None:
        try:
            values["roles"] = _check_roles(roles)
        except ValueError as exc:
            reader.fail("roles", str(exc))
    service_type = reader.text("discovery_service_type")
    if service_type is not None:
        try:
            values["discovery_service_type"] = parse_service_type(service_type)
        except ValueError as exc:
            reader.fail("discovery_service_type", str(exc))
    values["broker"] = reader.parsed_list("brokers", parse_broker)
    values["heartbeat"] = reader.duration("heartbeat")
    values["executor_timeout"] = reader.duration("executor_timeout")
    values["broker_timeout"] = reader.duration("broker_timeout")
    probability = reader.number("promote_probability")
    if probability is not None:
        try:
            values["promote_probability"] = parse_probability(str(probability))
        except ValueError as exc:
            reader.fail("promote_probability", str(exc))
    values["max_jobs"] = reader.integer("max_jobs")
    values["datastore_quota"] = reader.size("datastore_quota")
    capabilities = reader.table("capabilities")
    if capabilities is not None:
        values["capability"] = [
            _file_capability(capabilities, key, value)
            for key, value in document["capabilities"].items()
        ]
    values["route"] = _read_routes(reader, document.get("routes"))
    tls = reader.table("tls")
    if tls is not None:
        tls.check_keys(_TLS_KEYS)
        values["tls_cert"] = tls.path("cert")
        values["tls_key"] = tls.path("key")
        values["tls_ca"] = tls.path("ca")
        values["require_tls"] = tls.boolean("require")
    return values


def _file_capability(
    table: _FileReader, key: str, value: object
) -> tuple[str, int | float | bool | str]:
    if isinstance(value, bool | int | float):
        return key, value
    if isinstance(value, str):
        try:
            return parse_capability(f"{key}={value}")
        except ValueError as exc:
            table.fail(key, str(exc))
    table.fail(key, f"must be a number, a boolean or a string, got {_toml_type(value)}")


def _read_routes(reader: _FileReader, value: object) -> list[tuple[str, str]] | None:
    """``routes`` is an array of ``"PATTERN=NEXTHOP"`` or a table ``PATTERN = NEXTHOP``."""
    if value is None:
        return None
    if isinstance(value, dict):
        routes = []
        for pattern, next_hop in value.items():
            if not isinstance(next_hop, str):
                reader.fail("routes", f"next hop of {pattern!r} must be a string")
            routes.append((pattern, next_hop))
        return routes
    if isinstance(value, list):
        parsed: list[tuple[str, str]] | None = reader.parsed_list("routes", parse_route)
        return parsed
    reader.fail(
        "routes", f"must be an array of 'PATTERN=NEXTHOP' or a table, got {_toml_type(value)}"
    )


# -- putting it together --------------------------------------------------------------------------


def load_settings(argv: Sequence[str] | None = None) -> DaemonSettings:
    """Parse the command line (and the file it names); :class:`SettingsError` if anything is
    wrong. Nothing is created on disk."""
    args = vars(build_parser().parse_args(argv))
    config_file: Path | None = args.pop("config")
    from_file = _read_file(config_file) if config_file is not None else {}
    given = {key: value for key, value in args.items() if value is not None}
    origin = str(config_file) if config_file is not None else ""

    # -W and --in-memory exclude each other; on the command line, either replaces the file's.
    if "workdir" in given and "in_memory" in given:
        raise SettingsError("-W/--workdir and --in-memory exclude each other")
    if "workdir" in given or "in_memory" in given:
        from_file.pop("workdir", None)
        from_file.pop("in_memory", None)
    elif from_file.get("workdir") is not None and from_file.get("in_memory"):
        raise SettingsError(f"{origin}: workdir and in_memory = true exclude each other")
    merged = {key: value for key, value in from_file.items() if value is not None} | given

    workdir: Path | None = merged.get("workdir")
    if workdir is None and not merged.get("in_memory"):
        raise SettingsError("give a work directory (-W DIR) or --in-memory")
    node_fields: dict[str, Any] = {
        "node_id": merged.get("node_id") or default_node_id(),
        "workdir": None if merged.get("in_memory") else workdir,
    }
    if "listen" in merged:
        node_fields["listen"] = tuple(merged["listen"])
    if "static_peer" in merged:
        node_fields["static_peers"] = tuple(merged["static_peer"])
    if "route" in merged:
        node_fields["static_routes"] = tuple(merged["route"])
    if "discovery" in merged:
        node_fields["discovery"] = merged["discovery"]
    if "discovery_interface" in merged:
        node_fields["discovery_interfaces"] = tuple(merged["discovery_interface"])
    if "discovery_service_type" in merged:
        node_fields["discovery_service_type"] = merged["discovery_service_type"]
    if "roles" in merged:
        node_fields["roles"] = tuple(merged["roles"])
    if "quota" in merged:
        node_fields["store_quota_bytes"] = merged["quota"]
    for key, field_name in (
        ("lifetime", "default_lifetime_s"),
        ("custody_retransmit", "custody_retransmit_s"),
        ("route_interval", "route_advert_interval_s"),
        ("reconnect_max", "reconnect_max_s"),
        ("reactive_fragmentation", "reactive_fragmentation"),
        ("receive_memory", "receive_memory_bytes"),
        ("spool_threshold", "spool_threshold_bytes"),
        ("segment_size", "segment_bytes"),
        ("send_window", "send_window_s"),
    ):
        if key in merged:
            node_fields[field_name] = merged[key]
    if "keepalive" in merged:
        keepalive = merged["keepalive"]
        if not math.isfinite(keepalive) or keepalive != int(keepalive):
            raise SettingsError(f"keepalive must be whole seconds, got {keepalive!r}")
        node_fields["keepalive_s"] = int(keepalive)
    node_fields["tls"] = _tls(merged)
    try:
        node = NodeConfig(**node_fields)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    verbosity = merged.get("verbose", 0)
    if verbosity < 0:
        raise SettingsError(f"verbose must be 0, 1 or 2, got {verbosity}")
    return DaemonSettings(
        node=node,
        socket_path=merged.get("socket"),
        verbosity=verbosity,
        config_file=config_file,
        roles=_role_settings(merged, workdir=node.workdir),
    )


def _role_settings(merged: Mapping[str, Any], *, workdir: Path | None) -> RoleSettings:
    fields: dict[str, Any] = {
        "roles": tuple(merged.get("roles", ())),
        "workdir": workdir / "roles" if workdir is not None else None,
        "brokers": tuple(merged.get("broker", ())),
        "capability_overrides": dict(merged.get("capability", ())),
    }
    for key, field_name in (
        ("heartbeat", "heartbeat_interval_s"),
        ("executor_timeout", "executor_timeout_s"),
        ("broker_timeout", "broker_timeout_s"),
        ("promote_probability", "promote_probability"),
        ("max_jobs", "max_jobs"),
        ("datastore_quota", "datastore_quota_bytes"),
    ):
        if key in merged:
            fields[field_name] = merged[key]
    try:
        return RoleSettings(**fields)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _tls(merged: Mapping[str, Any]) -> TlsSettings | None:
    cert, key, ca = merged.get("tls_cert"), merged.get("tls_key"), merged.get("tls_ca")
    require = bool(merged.get("require_tls"))
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
