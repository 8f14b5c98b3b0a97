"""The kinds of value the daemon's own settings take, beside the shared ones of
:mod:`ucp_dtn.settings` (durations, sizes, addresses...): routes, roles, the dashboard's
address, capabilities, replication defaults, how many jobs to dispatch ahead and the
``[security]`` table. Each is a :class:`~ucp_dtn.settings.Kind`: one parser for the flag, the
environment and the TOML file (:data:`ucp_dtn.daemon.config.SETTINGS` uses them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from convergence.quantities import format_address, parse_address, size_value
from ucp_dtn.settings import Kind

KNOWN_ROLES = ("broker", "executor", "datastore")
"""The UCP roles a node may take."""


def parse_route(text: str) -> tuple[str, str]:
    """``PATTERN=NEXTHOP`` (e.g. ``dtn://c/*=dtn://b/``), split at the last ``=``."""
    pattern, equals, next_hop = text.rpartition("=")
    if not equals or not pattern.strip() or not next_hop.strip():
        raise ValueError(f"route {text!r}: write PATTERN=NEXTHOP, e.g. dtn://c/*=dtn://b/")
    return pattern.strip(), next_hop.strip()


def _route_entry(pattern: str, next_hop: object) -> tuple[str, str]:
    if not isinstance(next_hop, str):
        raise ValueError(f"next hop of {pattern!r} must be a string")
    return parse_route(f"{pattern}={next_hop}")


def _http_address(text: str) -> tuple[str, int]:
    """The dashboard's address: ``HOST:PORT``, ``[IPv6]:PORT``, or a bare ``PORT``
    (127.0.0.1, this machine only); port 0 picks a free one."""
    stripped = text.strip()
    if stripped.isdigit():
        stripped = f"127.0.0.1:{stripped}"
    return parse_address(stripped)


def _check_roles(roles: Sequence[object]) -> tuple[str, ...]:
    for role in roles:
        if role not in KNOWN_ROLES:
            raise ValueError(f"unknown role {role!r} (known: {', '.join(KNOWN_ROLES)})")
    return tuple(dict.fromkeys(str(role) for role in roles))


def _parse_roles(text: str) -> tuple[str, ...]:
    return _check_roles([part.strip() for part in text.split(",") if part.strip()])


def _roles_from_toml(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return _parse_roles(value)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be an array of role names")
    return _check_roles(value)


_SIZE_CAPABILITIES = ("memory", "disk")

Capability = tuple[str, int | float | bool | str]


def _capability(key: str, value: object) -> Capability:
    """A capability override: sizes for memory/disk (``2GiB``), numbers, booleans, text."""
    if isinstance(value, str):
        value = value.strip()
        if key in _SIZE_CAPABILITIES:
            return key, size_value(value)
        if value.lower() in ("true", "false"):
            return key, value.lower() == "true"
        for convert in (int, float):
            try:
                return key, convert(value)
            except ValueError:
                pass
        return key, value
    if isinstance(value, bool | int | float):
        return key, value
    raise ValueError(f"{key}: must be a number, a boolean or a string")


def _parse_capability(text: str) -> Capability:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return _capability(key.strip(), raw)


ReplicaDefault = tuple[str, int]


def _replica_default(key: str, value: object) -> ReplicaDefault:
    """``PREFIX=N``: data names ``PREFIX`` selects (a name with its subkeys, a ``prefix*``
    pattern, ``*`` for all) get ``N`` replicas unless a put names its own factor."""
    from ucp_dtn.ucp import MAX_REPLICAS
    from ucp_dtn.ucp.errors import DataNameError
    from ucp_dtn.ucp.names import validate_pattern

    try:
        validate_pattern(key, "replicas")
    except DataNameError as exc:
        raise ValueError(exc.reason) from None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or not 1 <= value <= MAX_REPLICAS:
        raise ValueError(f"{key}: the factor must be a whole number from 1 to {MAX_REPLICAS}")
    return key, value


def _parse_replica_default(text: str) -> ReplicaDefault:
    key, sep, raw = text.rpartition("=")
    if not sep or not key.strip() or not raw.strip():
        raise ValueError(f"expected PREFIX=N, e.g. survey=2, got {text!r}")
    return _replica_default(key.strip(), raw)


ROUTE: Kind[tuple[str, str]] = Kind(
    "PATTERN=NEXTHOP",
    parse_route,
    "a string",
    from_entry=_route_entry,
    expected_many="an array of 'PATTERN=NEXTHOP' or a table PATTERN = NEXTHOP",
)
ROLES: Kind[tuple[str, ...]] = Kind(
    "ROLES",
    _parse_roles,
    "an array of role names",
    toml_types=(list, str),
    from_toml=_roles_from_toml,
    show=",".join,
)
HTTP_ADDRESS: Kind[tuple[str, int]] = Kind(
    "HOST:PORT", _http_address, "a string", show=lambda address: format_address(*address)
)
REPLICA_DEFAULT: Kind[ReplicaDefault] = Kind(
    "PREFIX=N",
    _parse_replica_default,
    "a string PREFIX=N",
    from_entry=_replica_default,
    expected_many="a table PREFIX = N",
)


def _jobs_ahead(text: object) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


JOBS_AHEAD: Kind[int] = Kind(
    "N", _jobs_ahead, "an integer", toml_types=(int,), from_toml=_jobs_ahead
)
CAPABILITY: Kind[Capability] = Kind(
    "KEY=VALUE",
    _parse_capability,
    "a string KEY=VALUE",
    from_entry=_capability,
    expected_many="a table KEY = VALUE",
)


SECURITY_NAME = "security"
"""The security setting's name: its TOML table, and its value read by name."""


@dataclass(frozen=True, slots=True)
class SecuritySpec:
    """The ``[security]`` table as written, before its key files are read."""

    table: dict[str, object]
    """The table (``keys`` and ``rule``)."""
    base: Path | None = None
    """The directory relative key file names start from; ``None``: the config file's."""
    origin: str = SECURITY_NAME
    """Where it was written, for messages."""


def _security_file(text: str) -> SecuritySpec:
    """``--security FILE``: a TOML file with the ``[security]`` table (or just its contents);
    key file names in it are relative to its directory."""
    from ucp_dtn.settings.toml_file import TomlError, load_toml

    path = Path(text).expanduser()
    try:
        document = load_toml(path)
    except TomlError as exc:
        raise ValueError(f"{path}: {exc}") from None
    table = document.get(SECURITY_NAME, document)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: security must be a table")
    return SecuritySpec(table, path.parent, f"{path}: {SECURITY_NAME}")


SECURITY: Kind[SecuritySpec] = Kind(
    "FILE",
    _security_file,
    "a table ([security.keys] and [[security.rule]], see docs/security.md)",
    toml_types=(dict,),
    from_toml=lambda table: SecuritySpec(table),
)
