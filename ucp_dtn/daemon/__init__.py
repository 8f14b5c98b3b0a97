"""The ``ucp-bpnode`` daemon: settings (TOML file and flags) and the entry point."""

from .bpnode import LOCK_FILE, SOCKET_FILE, StartupError, format_ready_line, main, serve
from .config import (
    KNOWN_ROLES,
    TCPCL_PORT,
    DaemonSettings,
    SettingsError,
    build_parser,
    default_node_id,
    load_settings,
    parse_route,
    parse_static_peer,
)

__all__ = [
    "KNOWN_ROLES",
    "LOCK_FILE",
    "SOCKET_FILE",
    "TCPCL_PORT",
    "DaemonSettings",
    "SettingsError",
    "StartupError",
    "build_parser",
    "default_node_id",
    "format_ready_line",
    "load_settings",
    "main",
    "parse_route",
    "parse_static_peer",
    "serve",
]
