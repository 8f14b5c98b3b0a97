"""Human-written quantities: durations, byte sizes, rates and time windows.

Command lines and configuration files write durations the way people say them (``250ms``,
``10s``, ``2m``, ``1h15s``), sizes with decimal or binary prefixes (``1500``, ``64KiB``, ``1MB``)
and rates as sizes per second (``1MB/s``, ``8Mbit/s``). The parsers here turn them into plain
numbers (seconds as ``float``, bytes as ``int``, bytes per second as ``float``) and raise
:class:`QuantityError`, a ``ValueError``, with a one-line message naming the bad text otherwise.
:func:`format_duration` goes the other way for log lines; its output parses back (to display
precision).
"""

from __future__ import annotations

import math
import re

__all__ = [
    "QuantityError",
    "format_duration",
    "parse_duration",
    "parse_duration_list",
    "parse_rate",
    "parse_size",
    "parse_size_list",
    "parse_window",
    "parse_window_list",
]


class QuantityError(ValueError):
    """A duration, size, rate or window could not be read (the caller wrote it wrong)."""


# Duration units, largest first: a duration lists each unit at most once, in this order.
_DURATION_UNITS: dict[str, float] = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(d|h|ms|m|s|us)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")

# Size units (case-insensitive). Decimal prefixes are powers of 1000, binary (``Ki``...) powers
# of 1024; ``bit`` units count bits, so ``8Mbit`` is one million bytes.
_SIZE_UNITS: dict[str, float] = {
    "": 1.0,
    "b": 1.0,
    "k": 1e3,
    "kb": 1e3,
    "m": 1e6,
    "mb": 1e6,
    "g": 1e9,
    "gb": 1e9,
    "ki": 1024.0,
    "kib": 1024.0,
    "mi": 1024.0**2,
    "mib": 1024.0**2,
    "gi": 1024.0**3,
    "gib": 1024.0**3,
    "bit": 1 / 8,
    "kbit": 1e3 / 8,
    "mbit": 1e6 / 8,
    "gbit": 1e9 / 8,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*")


def parse_duration(text: str) -> float:
    """Read a duration such as ``250ms``, ``10s``, ``2m``, ``1h15s`` or ``1.5s``; return seconds.

    Units are ``d``, ``h``, ``m``, ``s``, ``ms`` and ``us``; several may be combined, largest
    first, each at most once. A bare number is seconds (``"0"``, ``"2.5"``).
    """
    stripped = text.strip()
    if not stripped:
        raise QuantityError("empty duration")
    if _NUMBER.fullmatch(stripped):
        return float(stripped)
    total = 0.0
    position = 0
    previous_rank = -1
    order = list(_DURATION_UNITS)
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != position:
            break
        unit = match.group(2)
        rank = order.index(unit)
        if rank <= previous_rank:
            raise QuantityError(f"duration {text!r}: units must appear once each, largest first")
        previous_rank = rank
        total += float(match.group(1)) * _DURATION_UNITS[unit]
        position = match.end()
    if position != len(stripped):
        raise QuantityError(
            f"bad duration {text!r} (write e.g. 250ms, 10s, 2m, 1h15s; units d h m s ms us)"
        )
    return total


def format_duration(seconds: float) -> str:
    """Write ``seconds`` compactly for humans (``1h15s``, ``250ms``, ``2.5s``)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise QuantityError(f"cannot format duration {seconds!r}")
    whole = int(seconds)
    if seconds < 1:
        milliseconds = seconds * 1e3
        if milliseconds >= 1:
            return f"{_plain(milliseconds)}ms"
        microseconds = _plain(seconds * 1e6)
        return "0s" if microseconds == "0" else f"{microseconds}us"
    if seconds != whole:
        return f"{_plain(seconds)}s"
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        size = int(_DURATION_UNITS[unit])
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _plain(value: float) -> str:
    """A float in plain decimal notation, at most six decimals, no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _parse_scaled(text: str, what: str) -> float:
    match = _SIZE.fullmatch(text.lower())
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise QuantityError(
            f"bad {what} {text!r} (write e.g. 1500, 64KiB, 1MB, 8Mbit; units B kB MB GB KiB MiB "
            "GiB bit kbit Mbit Gbit)"
        )
    return float(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_size(text: str) -> int:
    """Read a byte count such as ``1500``, ``64KiB``, ``1.5MB`` or ``8Mbit``; return whole bytes."""
    value = _parse_scaled(text, "size")
    if value != int(value):
        raise QuantityError(f"size {text!r} is not a whole number of bytes")
    return int(value)


def parse_rate(text: str) -> float:
    """Read a rate such as ``1MB/s``, ``500kB/s``, ``8Mbit/s`` or ``1MB``; return bytes per second.

    The ``/s`` suffix is optional; ``bps`` is accepted as ``bit/s`` (``8Mbps``). A rate must be
    greater than zero.
    """
    body = text.strip()
    lowered = body.lower()
    if lowered.endswith("/s"):
        body = body[:-2]
    elif lowered.endswith("bps"):
        body = body[:-3] + "bit"
    rate = _parse_scaled(body, "rate")
    if rate <= 0:
        raise QuantityError(f"rate {text!r} must be greater than zero")
    return rate


def parse_window(text: str) -> tuple[float, float]:
    """Read a time window ``START-END`` such as ``30s-40s`` or ``1m-1m30s``; return seconds.

    The end must come after the start.
    """
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
    """Read comma-separated windows such as ``30s-40s,60s-65s``."""
    return tuple(parse_window(item) for item in _split_list(text))


def parse_duration_list(text: str) -> tuple[float, ...]:
    """Read comma-separated durations such as ``5s,12.5s,1m``."""
    return tuple(parse_duration(item) for item in _split_list(text))


def parse_size_list(text: str) -> tuple[int, ...]:
    """Read comma-separated sizes such as ``64KiB,1MB``."""
    return tuple(parse_size(item) for item in _split_list(text))
