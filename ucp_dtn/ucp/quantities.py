"""Sizes, durations and frequencies as people write them in plans (``"512MiB"``, ``"1h15s"``).

Each parser takes the value read from TOML (a number or a string) and returns plain numbers —
bytes, seconds, MHz — or raises :class:`ValueError` with a one-line message saying what was
expected; the plan loader adds the file, job and field.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_count", "parse_duration", "parse_frequency", "parse_size"]

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_FREQUENCY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(mhz|ghz)\s*", re.IGNORECASE)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_size(value: object) -> int:
    """Bytes from an integer or a string with a unit: ``"512MiB"``, ``"1.5GB"``, ``"64k"``
    (k/M/G/T are powers of 1000, KiB/MiB/GiB/TiB of 1024; case-insensitive)."""
    if _is_number(value):
        assert isinstance(value, int | float)
        if not math.isfinite(value) or value < 0 or value != int(value):
            raise ValueError(f"must be a whole number of bytes >= 0, got {value!r}")
        return int(value)
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match is not None and match.group(2).lower() in _SIZE_UNITS:
            number, unit = match.group(1), _SIZE_UNITS[match.group(2).lower()]
            if "." not in number:
                return int(number) * unit
            amount = float(number) * unit
            if amount == int(amount):
                return int(amount)
    raise ValueError(f"must be a size like 512MiB, 2GB or a number of bytes, got {value!r}")


def parse_duration(value: object) -> float:
    """Seconds from a number or a string of ``<number><unit>`` parts, units ms/s/m/h/d:
    ``"10s"``, ``"2m"``, ``"1h15s"``, ``"1.5h"``. Must be positive."""
    seconds: float | None = None
    if _is_number(value):
        assert isinstance(value, int | float)
        seconds = float(value)
    elif isinstance(value, str) and value and _DURATION_PART.sub("", value) == "":
        seconds = sum(
            float(amount) * _DURATION_UNITS[unit] for amount, unit in _DURATION_PART.findall(value)
        )
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(
            "must be a duration like '10s', '2m', '1h15s' or a number of seconds > 0, "
            f"got {value!r}"
        )
    return seconds


def parse_frequency(value: object) -> float:
    """MHz from a number (MHz) or a string ``"1500MHz"`` / ``"2.4GHz"``."""
    if _is_number(value):
        assert isinstance(value, int | float)
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        match = _FREQUENCY.fullmatch(value)
        if match is not None:
            factor = 1000.0 if match.group(2).lower() == "ghz" else 1.0
            return float(match.group(1)) * factor
    raise ValueError(
        f"must be a frequency like '2.4GHz', '1500MHz' or a number of MHz, got {value!r}"
    )


def parse_count(value: object) -> int:
    """A positive whole number (TOML's ``1e9`` is a float; whole floats are accepted)."""
    if _is_number(value):
        assert isinstance(value, int | float)
        if math.isfinite(value) and value == int(value) and value > 0:
            return int(value)
    raise ValueError(f"must be a whole number > 0, got {value!r}")
