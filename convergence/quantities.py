"""Quantities and addresses as people write them: one grammar for the daemon, the client, plans
and the lossy-link simulator.

Every parser takes text and returns a plain number or tuple, or raises :class:`QuantityError`
(for :class:`AddressError`: an address), a ``ValueError`` whose message is one line naming the
bad text and saying what to write instead.

Durations → seconds (``float``)
    One or more ``NUMBER UNIT`` parts without spaces between them: ``250us``, ``250ms``, ``10s``,
    ``2m``, ``1h15s``, ``1.5h``, ``1d``. Units ``d h m s ms us`` (lower case: ``M`` would be
    ambiguous). Parts add up in any order, a unit may repeat (``2h1h`` is ``3h``). A bare number
    is seconds (``0``, ``2.5``). A number is ``1``, ``1.5``, ``.5`` or ``5.``; no sign, no exponent.
Sizes → bytes (``int``)
    ``NUMBER [UNIT]``, case-insensitive, a space allowed before the unit: ``1500``, ``1500B``,
    ``64KiB``, ``1.5MB``, ``1TiB``, ``8Mbit``. ``k M G T`` (optionally followed by ``B``) are powers
    of 1000; ``Ki Mi Gi Ti`` (optionally ``KiB``...) powers of 1024; ``bit kbit Mbit Gbit Tbit``
    count bits. ``B`` is always a byte: write bits as ``bit``. The result must be whole bytes
    (``1.5KiB`` is 1536; ``1bit`` is an error); it is computed exactly, however large.
Rates → bytes per second (``float``)
    A size per second: ``2MB/s``, ``500kB/s``, ``8Mbit/s``; the ``/s`` may be left out (``8Mbit``)
    and ``bps`` means bits per second (``8Mbps``). Greater than zero; fractions of a byte allowed.
Frequencies → MHz (``float``)
    ``2.4GHz``, ``1500 MHz`` (case-insensitive) or a bare number of MHz.
Windows → ``(start, end)`` seconds
    ``START-END`` with two durations, e.g. ``30s-40s``; the end after the start.
Lists
    Comma-separated items, spaces around items ignored: ``5s, 12.5s``; no empty item.
Addresses → ``(host, port)``
    ``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` (host ``127.0.0.1``), or ``HOST`` / ``[IPv6]`` alone
    when the caller has a default port. An IPv6 address needs brackets (``::1:4556`` is
    ambiguous). Ports are ``0`` to ``65535``. A TCPCL peer may also be written as a URL,
    ``tcp://HOST:PORT`` (see :func:`parse_peer_address`); its default port is
    :data:`DEFAULT_TCPCL_PORT`.

Values read from TOML or JSON go through the ``*_value`` functions: a number there is already
seconds (bytes, MHz) and text follows the grammar above.

Where the earlier grammars disagreed (the simulator's and the plans'), this one accepts the union:
``us``, bare-number durations, ``.5s``, repeated units in any order, ``Ti``/``TiB``/``TB``, bit
units and exact large sizes. Nothing either accepted is refused now, except an empty address and
a host with spaces or slashes.

This module imports only the standard library; ``convergence.lossy``, ``ucp_dtn.settings``,
``ucp_dtn.ucp`` and the command lines all read quantities through it.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = [
    "DEFAULT_TCPCL_PORT",
    "AddressError",
    "QuantityError",
    "duration_value",
    "format_address",
    "format_duration",
    "format_size",
    "frequency_value",
    "parse_address",
    "parse_duration",
    "parse_duration_list",
    "parse_frequency",
    "parse_peer_address",
    "parse_rate",
    "parse_size",
    "parse_size_list",
    "parse_window",
    "parse_window_list",
    "size_value",
]

DEFAULT_TCPCL_PORT = 4556
"""TCPCL's port. RFC 9174 §8.1: "Within the port registry of [IANA-PORTS], TCP port number 4556
has been previously assigned as the default port for the TCP convergence layer"."""

_LOOPBACK = "127.0.0.1"
"""The host of an address written ``:PORT``."""


class QuantityError(ValueError):
    """A duration, size, rate, frequency or window could not be read (the user wrote it wrong)."""


class AddressError(ValueError):
    """A ``host:port`` address or ``tcp://`` peer URL could not be read."""


# -- durations ------------------------------------------------------------------------------------

_DURATION_UNITS: dict[str, float] = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART = re.compile(rf"({_NUMBER})(d|h|ms|m|s|us)")
_DURATION = re.compile(rf"(?:{_NUMBER}(?:d|h|ms|m|s|us))+")
_BARE_NUMBER = re.compile(_NUMBER)


def parse_duration(text: str) -> float:
    """Seconds from ``250us``, ``250ms``, ``10s``, ``2m``, ``1h15s``, ``1.5h`` or a bare number
    of seconds (see the module docstring)."""
    stripped = text.strip()
    if not stripped:
        raise QuantityError("empty duration (write e.g. 250ms, 10s, 2m, 1h15s)")
    if _BARE_NUMBER.fullmatch(stripped):
        return float(stripped)
    if not _DURATION.fullmatch(stripped):
        raise QuantityError(
            f"bad duration {text!r} (write e.g. 250ms, 10s, 2m, 1h15s; units d h m s ms us)"
        )
    return sum(
        float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(stripped)
    )


def format_duration(seconds: float) -> str:
    """``seconds`` written compactly (``1h15s``, ``250ms``, ``2.5s``); it parses back to the
    same value at display precision (six decimals of the unit shown)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise QuantityError(f"cannot format duration {seconds!r}")
    if seconds < 1:
        milliseconds = seconds * 1e3
        if milliseconds >= 1:
            return f"{_plain(milliseconds)}ms"
        microseconds = _plain(seconds * 1e6)
        return "0s" if microseconds == "0" else f"{microseconds}us"
    whole = int(seconds)
    if seconds != whole:
        return f"{_plain(seconds)}s"
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        count, whole = divmod(whole, int(_DURATION_UNITS[unit]))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _plain(value: float) -> str:
    """A float in plain decimal notation, at most six decimals, no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def duration_value(value: str | float) -> float:
    """Seconds from a TOML/JSON value: a number of seconds (>= 0) or text
    (:func:`parse_duration`)."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise QuantityError(f"a duration must be a number of seconds >= 0, got {value!r}")
    return float(value)


# -- sizes and rates ------------------------------------------------------------------------------

_SIZE_UNITS: dict[str, Fraction] = {"": Fraction(1), "b": Fraction(1)}
for _index, _prefix in enumerate("kmgt", start=1):
    _SIZE_UNITS[_prefix] = _SIZE_UNITS[_prefix + "b"] = Fraction(1000**_index)
    _SIZE_UNITS[_prefix + "i"] = _SIZE_UNITS[_prefix + "ib"] = Fraction(1024**_index)
    _SIZE_UNITS[_prefix + "bit"] = Fraction(1000**_index, 8)
_SIZE_UNITS["bit"] = Fraction(1, 8)
_SIZE = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*")
_SIZE_HINT = "write e.g. 1500, 64KiB, 1.5MB, 1TiB, 8Mbit; units B kB MB GB TB KiB MiB GiB TiB bit"


def _scaled(text: str, what: str) -> Fraction:
    match = _SIZE.fullmatch(text.lower())
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise QuantityError(f"bad {what} {text!r} ({_SIZE_HINT})")
    return Fraction(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_size(text: str) -> int:
    """Bytes from ``1500``, ``64KiB``, ``1.5MB``, ``1TiB`` or ``8Mbit`` (see the module
    docstring)."""
    value = _scaled(text, "size")
    if value.denominator != 1:
        raise QuantityError(f"size {text!r} is not a whole number of bytes")
    return int(value)


def size_value(value: str | float) -> int:
    """Bytes from a TOML/JSON value: a whole number of bytes (>= 0) or text (:func:`parse_size`)."""
    if isinstance(value, str):
        return parse_size(value)
    if isinstance(value, bool) or not math.isfinite(value) or value < 0 or value != int(value):
        raise QuantityError(f"a size must be a whole number of bytes >= 0, got {value!r}")
    return int(value)


_BINARY_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def format_size(size: int) -> str:
    """``size`` bytes written compactly: the largest binary unit that divides it (``1GiB``,
    ``64KiB``), else bytes (``1500``)."""
    if size < 0:
        raise QuantityError(f"cannot format size {size!r}")
    for unit, factor in _BINARY_UNITS:
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def parse_rate(text: str) -> float:
    """Bytes per second from ``2MB/s``, ``500kB/s``, ``8Mbit/s``, ``8Mbps`` or ``1MB``; must be
    greater than zero."""
    body = text.strip()
    lowered = body.lower()
    if lowered.endswith("/s"):
        body = body[:-2]
    elif lowered.endswith("bps"):
        body = body[:-3] + "bit"
    rate = _scaled(body, "rate")
    if rate <= 0:
        raise QuantityError(f"rate {text!r} must be greater than zero")
    return float(rate)


# -- frequencies ----------------------------------------------------------------------------------

_FREQUENCY = re.compile(rf"\s*({_NUMBER})\s*(mhz|ghz)?\s*")


def parse_frequency(text: str) -> float:
    """MHz from ``2.4GHz``, ``1500MHz`` or a bare number of MHz."""
    match = _FREQUENCY.fullmatch(text.lower())
    if match is None:
        raise QuantityError(f"bad frequency {text!r} (write e.g. 2.4GHz, 1500MHz)")
    factor = 1000.0 if match.group(2) == "ghz" else 1.0
    return float(match.group(1)) * factor


def frequency_value(value: str | float) -> float:
    """MHz from a TOML/JSON value: a number of MHz (>= 0) or text (:func:`parse_frequency`)."""
    if isinstance(value, str):
        return parse_frequency(value)
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise QuantityError(f"a frequency must be a number of MHz >= 0, got {value!r}")
    return float(value)


# -- windows and lists ----------------------------------------------------------------------------


def parse_window(text: str) -> tuple[float, float]:
    """``(start, end)`` seconds from ``30s-40s`` or ``1m-1m30s``; the end must come after the
    start."""
    start_text, dash, end_text = text.partition("-")
    if not dash:
        raise QuantityError(f"bad window {text!r} (write START-END, e.g. 30s-40s)")
    start = parse_duration(start_text)
    end = parse_duration(end_text)
    if end <= start:
        raise QuantityError(f"window {text!r} ends before it starts")
    return start, end


def _split_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise QuantityError(f"empty item in list {text!r}")
    return items


def parse_window_list(text: str) -> tuple[tuple[float, float], ...]:
    """Windows from ``30s-40s,60s-65s``."""
    return tuple(parse_window(item) for item in _split_list(text))


def parse_duration_list(text: str) -> tuple[float, ...]:
    """Durations from ``5s,12.5s,1m``."""
    return tuple(parse_duration(item) for item in _split_list(text))


def parse_size_list(text: str) -> tuple[int, ...]:
    """Sizes from ``64KiB,1MB``."""
    return tuple(parse_size(item) for item in _split_list(text))


# -- addresses ------------------------------------------------------------------------------------

_BAD_HOST = re.compile(r"[\s/@\[\]]")
_PEER_SCHEMES = ("tcp", "tcpcl")


def parse_address(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` (127.0.0.1), or ``HOST`` /
    ``[IPv6]`` with ``default_port`` (an error when that is ``None``)."""
    stripped = text.strip()
    if not stripped:
        raise AddressError("empty address (write HOST:PORT)")
    host, port_text = stripped, ""
    if stripped.startswith("["):
        closing = stripped.find("]")
        if closing < 0 or (closing + 1 < len(stripped) and stripped[closing + 1] != ":"):
            raise AddressError(f"bad address {text!r} (write [IPv6]:PORT)")
        host, port_text = stripped[1:closing], stripped[closing + 2 :]
    elif stripped.count(":") == 1:
        host, port_text = stripped.split(":")
    elif ":" in stripped:
        raise AddressError(f"bad address {text!r} (write IPv6 addresses as [ADDRESS]:PORT)")
    host = host or _LOOPBACK
    if _BAD_HOST.search(host):
        raise AddressError(f"bad host in address {text!r}")
    if not port_text:
        if default_port is None:
            raise AddressError(f"address {text!r} needs a port (HOST:PORT)")
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"bad port in address {text!r} (0 to 65535)")
    return host, int(port_text)


def parse_peer_address(text: str, *, default_port: int = DEFAULT_TCPCL_PORT) -> tuple[str, int]:
    """``(host, port)`` of a TCPCL peer from ``tcp://HOST:PORT`` (a trailing ``/`` and the scheme
    ``tcpcl://`` are accepted) or plain ``HOST:PORT``; the port defaults to 4556."""
    rest = text.strip()
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        if scheme.lower() not in _PEER_SCHEMES:
            raise AddressError(f"peer {text!r}: only tcp:// peers are supported")
        rest = rest.removesuffix("/")
    if "/" in rest:
        raise AddressError(f"peer {text!r}: write tcp://HOST:PORT")
    return parse_address(rest, default_port=default_port)


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets (``[::1]:4556``); :func:`parse_address`
    reads it back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
