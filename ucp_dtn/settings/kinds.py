"""Kinds of setting values: how each is written on the command line, in the environment and in
a TOML file, and how it is shown in ``--help``.

A :class:`Kind` is a small frozen value: the text parser (flags, environment variables and TOML
strings all use it), the TOML types it also accepts, and what to say when a value has the wrong
type. The quantities and addresses come from :mod:`convergence.quantities`, so ``10s`` or
``tcp://host:4556`` mean the same everywhere. Kinds specific to one program (the daemon's roles
and routes) are defined beside its settings table with the same class.

Only the standard library and :mod:`convergence.quantities` are imported here (``ucp --help``
must start fast); the node-ID and service-type checks import their modules when first used.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from convergence.quantities import (
    DEFAULT_TCPCL_PORT,
    duration_value,
    format_address,
    format_duration,
    format_size,
    parse_address,
    parse_duration,
    parse_peer_address,
    parse_size,
    size_value,
)

__all__ = [
    "ADDRESS",
    "BOOL",
    "COUNT",
    "DURATION",
    "INTERFACE",
    "NODE_ID",
    "PATH",
    "PEER",
    "POSITIVE_DURATION",
    "POSITIVE_INT",
    "PROBABILITY",
    "SERVICE_TYPE",
    "SIZE",
    "TEXT",
    "WHOLE_SECONDS",
    "FlagStyle",
    "Kind",
    "argument_type",
    "toml_type_name",
]

T = TypeVar("T")


class FlagStyle(Enum):
    """How a setting looks on the command line."""

    VALUE = "value"
    """``--name VALUE`` (repeatable settings: once per item)."""
    SWITCH = "switch"
    """``--name`` / ``--no-name`` (booleans)."""
    COUNT = "count"
    """``-v``, ``-vv``: the number of times it is given."""


@dataclass(frozen=True, slots=True)
class Kind(Generic[T]):
    """How the values of one kind of setting are written and read."""

    metavar: str
    """Placeholder in ``--help`` (``DURATION``)."""
    parse: Callable[[str], T]
    """Text (a flag's argument, an environment variable, a TOML string) to value; raises
    ``ValueError`` with a one-line message."""
    expected: str
    """What a TOML value must be, for type errors (``a duration ('10s', '2m') or seconds``)."""
    toml_types: tuple[type, ...] = (str,)
    """TOML types accepted; ``bool`` only when listed (TOML's ``true`` is no number here)."""
    from_toml: Callable[[Any], T] | None = None
    """Reads a TOML value of :attr:`toml_types`; ``None``: :attr:`parse` for strings, any other
    accepted type as it is."""
    from_entry: Callable[[str, Any], T] | None = None
    """Reads one ``KEY = VALUE`` entry when a repeatable setting is written as a TOML table
    (routes, capabilities); ``None``: only arrays are accepted."""
    show: Callable[[Any], str] = str
    """Writes a value for the defaults in ``--help`` and the docs."""
    flag: FlagStyle = FlagStyle.VALUE
    """How it looks on the command line."""
    file_relative: bool = False
    """TOML strings are paths relative to the file's directory."""
    expected_many: str = "an array of strings"
    """What a repeatable setting's TOML value must be."""
    bounds: tuple[Any, Any] | None = None
    """The smallest and the largest value allowed (both allowed), whichever layer gives it;
    ``None``: whatever :attr:`parse` accepts. Set with :meth:`within`."""

    def within(self, low: T, high: T) -> Kind[T]:
        """This kind, taking only values from ``low`` to ``high`` (a setting's range is part
        of its declaration: ``POSITIVE_DURATION.within(0.001, DAY)``)."""
        return dataclasses.replace(self, bounds=(low, high))

    def check(self, value: T) -> T:
        """``value`` if it is within :attr:`bounds`, else ``ValueError`` naming the range."""
        if self.bounds is not None:
            low, high = self.bounds
            if not low <= value <= high:  # (also refuses NaN)
                shown = self.show(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise ValueError(f"must be from {self.show(low)} to {self.show(high)}, got {shown}")
        return value

    def read_text(self, text: str) -> T:
        """The value of ``text`` (a flag's argument, an environment variable), checked against
        :attr:`bounds`."""
        return self.check(self.parse(text))

    def read_toml(self, value: Any) -> T:
        """The value of a TOML value already checked against :attr:`toml_types`, checked
        against :attr:`bounds`."""
        if self.from_toml is not None:
            return self.check(self.from_toml(value))
        if isinstance(value, str):
            return self.read_text(value)
        result: T = value
        return self.check(result)

    def accepts(self, value: object) -> bool:
        """Whether ``value``'s TOML type is one this kind reads."""
        if isinstance(value, bool):
            return bool in self.toml_types
        return isinstance(value, self.toml_types)


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` that reports ``parse``'s ``ValueError`` message (argparse would
    print only "invalid value")."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


_TOML_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
}


def toml_type_name(value: object) -> str:
    """``a string``, ``an integer``... for messages about a TOML value."""
    return _TOML_TYPE_NAMES.get(type(value), type(value).__name__)


# -- text and numbers ------------------------------------------------------------------------------


def _text(text: str) -> str:
    return text


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _count(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


TEXT: Kind[str] = Kind("TEXT", _text, "a string")
BOOL: Kind[bool] = Kind(
    "BOOL",
    _boolean,
    "a boolean",
    toml_types=(bool,),
    show=lambda value: "on" if value else "off",
    flag=FlagStyle.SWITCH,
)
COUNT: Kind[int] = Kind(
    "N",
    _count,
    "an integer (0, 1 or 2)",
    toml_types=(int,),
    from_toml=lambda value: _count(str(value)),
    flag=FlagStyle.COUNT,
)
POSITIVE_INT: Kind[int] = Kind(
    "N", _positive_int, "an integer", toml_types=(int,), from_toml=lambda v: _positive_int(str(v))
)
PROBABILITY: Kind[float] = Kind(
    "P",
    _probability,
    "a number from 0 to 1",
    toml_types=(int, float),
    from_toml=lambda value: _probability(str(value)),
)


# -- quantities ------------------------------------------------------------------------------------


def _positive(seconds: float, text: object) -> float:
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {text!r}")
    return seconds


def _whole_seconds(seconds: float, text: object) -> int:
    if seconds != int(seconds):
        raise ValueError(f"must be whole seconds, got {text!r}")
    return int(seconds)


_DURATION_EXPECTED = "a duration ('10s', '2m') or a number of seconds"

DURATION: Kind[float] = Kind(
    "DURATION",
    parse_duration,
    _DURATION_EXPECTED,
    toml_types=(str, int, float),
    from_toml=duration_value,
    show=format_duration,
)
POSITIVE_DURATION: Kind[float] = Kind(
    "DURATION",
    lambda text: _positive(parse_duration(text), text),
    _DURATION_EXPECTED,
    toml_types=(str, int, float),
    from_toml=lambda value: _positive(duration_value(value), value),
    show=format_duration,
)
WHOLE_SECONDS: Kind[int] = Kind(
    "DURATION",
    lambda text: _whole_seconds(parse_duration(text), text),
    "a duration of whole seconds ('30s', '1m') or a number of seconds",
    toml_types=(str, int, float),
    from_toml=lambda value: _whole_seconds(duration_value(value), value),
    show=format_duration,
)
SIZE: Kind[int] = Kind(
    "SIZE",
    parse_size,
    "a size ('64MiB', '1GB') or a number of bytes",
    toml_types=(str, int, float),
    from_toml=size_value,
    show=format_size,
)
PATH: Kind[Path] = Kind(
    "PATH", lambda text: Path(text).expanduser(), "a path (a string)", file_relative=True
)


# -- addresses and names ---------------------------------------------------------------------------


def _show_address(address: tuple[str, int]) -> str:
    return format_address(*address)


def _listen_address(text: str) -> tuple[str, int]:
    return parse_address(text, default_port=DEFAULT_TCPCL_PORT)


def _interface(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _service_type(text: str) -> str:
    from ucp_dtn.discovery import DiscoveryConfigError, check_service_type

    service_type = text.strip()
    if not service_type.endswith(".local."):
        service_type = service_type.rstrip(".") + ".local."
    try:
        return check_service_type(service_type)
    except DiscoveryConfigError as exc:
        raise ValueError(str(exc)) from None


def _node_id(text: str) -> str:
    from bpv7 import DecodeError, parse_eid

    try:
        return str(parse_eid(text.strip()).node_id)
    except DecodeError as exc:
        raise ValueError(f"not a node ID: {text!r} ({exc.message})") from None


ADDRESS: Kind[tuple[str, int]] = Kind("HOST:PORT", _listen_address, "a string", show=_show_address)
"""``HOST:PORT`` (a host alone: TCPCL's port 4556; port 0: any free port)."""
PEER: Kind[tuple[str, int]] = Kind(
    "tcp://HOST:PORT", parse_peer_address, "a string", show=_show_address
)
"""A TCPCL peer, ``tcp://HOST:PORT`` or ``HOST:PORT`` (port 4556 if left out)."""
INTERFACE: Kind[str] = Kind("ADDRESS", _interface, "a string")
"""An interface's IP address (``127.0.0.1``, ``::1``)."""
SERVICE_TYPE: Kind[str] = Kind("TYPE", _service_type, "a string")
"""A DNS-SD service type (``_name._tcp``; ``.local.`` is added)."""
NODE_ID: Kind[str] = Kind("NODE_ID", _node_id, "a string")
"""A node ID; any endpoint of a node is reduced to the node's ID."""
