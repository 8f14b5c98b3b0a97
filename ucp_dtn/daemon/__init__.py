"""The ``ucp-bpnode`` daemon: its settings table (flags, TOML file, help) and the entry point."""

from .bpnode import LOCK_FILE, SOCKET_FILE, StartupError, format_ready_line, main, serve
from .config import (
    KNOWN_ROLES,
    SETTINGS,
    DaemonSettings,
    SettingsError,
    build_parser,
    default_node_id,
    load_settings,
    parse_route,
)

__all__ = [
    "KNOWN_ROLES",
    "LOCK_FILE",
    "SETTINGS",
    "SOCKET_FILE",
    "DaemonSettings",
    "SettingsError",
    "StartupError",
    "build_parser",
    "default_node_id",
    "format_ready_line",
    "load_settings",
    "main",
    "parse_route",
    "serve",
]
