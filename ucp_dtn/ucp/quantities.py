"""Sizes, durations, frequencies and counts read from plan files (``"512MiB"``, ``"1h15s"``).

The grammar is :mod:`convergence.quantities` (the one the daemon and the command lines use);
these functions add what a plan asks of the value — a duration above zero, a count of at least
one — and take the raw TOML value (a number or a string). Each raises :class:`ValueError` with a
one-line ``must be ...`` message; the plan loader adds the file, job and field.
"""

from __future__ import annotations

import math

from convergence.quantities import QuantityError, duration_value, frequency_value, size_value

__all__ = ["parse_count", "parse_duration", "parse_frequency", "parse_size"]


def _number_or_text(value: object) -> str | float | None:
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    return None


def parse_size(value: object) -> int:
    """Bytes from a whole number or a size such as ``"512MiB"``, ``"1.5GB"``, ``"64k"``."""
    raw = _number_or_text(value)
    try:
        if raw is not None:
            return size_value(raw)
    except QuantityError:
        pass
    raise ValueError(f"must be a size like 512MiB, 2GB or a number of bytes, got {value!r}")


def parse_duration(value: object) -> float:
    """Seconds (> 0) from a number or a duration such as ``"10s"``, ``"2m"``, ``"1h15s"``."""
    raw = _number_or_text(value)
    try:
        if raw is not None and (seconds := duration_value(raw)) > 0:
            return seconds
    except QuantityError:
        pass
    raise ValueError(
        f"must be a duration like '10s', '2m', '1h15s' or a number of seconds > 0, got {value!r}"
    )


def parse_frequency(value: object) -> float:
    """MHz from a number (MHz) or a frequency such as ``"2.4GHz"``, ``"1500MHz"``."""
    raw = _number_or_text(value)
    try:
        if raw is not None:
            return frequency_value(raw)
    except QuantityError:
        pass
    raise ValueError(
        f"must be a frequency like '2.4GHz', '1500MHz' or a number of MHz, got {value!r}"
    )


def parse_count(value: object) -> int:
    """A whole number > 0 (TOML's ``1e9`` is a float; whole floats are accepted)."""
    raw = _number_or_text(value)
    if isinstance(raw, int | float) and math.isfinite(raw) and raw == int(raw) and raw > 0:
        return int(raw)
    raise ValueError(f"must be a whole number > 0, got {value!r}")
