"""Durations, sizes, rates and windows as people write them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convergence.lossy import (
    QuantityError,
    format_duration,
    parse_duration,
    parse_duration_list,
    parse_rate,
    parse_size,
    parse_size_list,
    parse_window,
    parse_window_list,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h15s", 3615.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("1m30s", 90.0),
        ("1d2h3m4s5ms", 86400 + 7200 + 180 + 4 + 0.005),
        ("500us", 0.0005),
        ("0", 0.0),
        ("2.5", 2.5),
        (" 5s ", 5.0),
        (".5s", 0.5),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("5", None),
        ("5x", "bad duration"),
        ("s", "bad duration"),
        ("-5s", "bad duration"),
        ("15s1h", "largest first"),
        ("1s1s", "largest first"),
        ("1h 15s", "bad duration"),
        ("5s,", "bad duration"),
    ],
)
def test_parse_duration_rejects(text: str, message: str | None) -> None:
    if message is None:  # a bare number is fine
        assert parse_duration(text) == 5.0
        return
    with pytest.raises(QuantityError, match=message):
        parse_duration(text)


def test_quantity_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad duration 'soon'"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (3615, "1h15s"), (90, "1m30s"), (2.5, "2.5s"), (1e-4, "100us")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_format_duration_parses_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-5, abs=1e-9)


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(QuantityError, match="cannot format"):
        format_duration(-1)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1500", 1500),
        ("64KiB", 65536),
        ("1MB", 1_000_000),
        ("1.5MB", 1_500_000),
        ("2GiB", 2 * 1024**3),
        ("8Mbit", 1_000_000),
        ("10kB", 10_000),
        ("10 kb", 10_000),
        ("1B", 1),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "bad size"), ("1XB", "bad size"), ("1.5", "whole number"), ("1bit", "whole number")],
)
def test_parse_size_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1MB/s", 1e6),
        ("500kB/s", 5e5),
        ("8Mbit/s", 1e6),
        ("8Mbps", 1e6),
        ("1MiB", 1024.0**2),
        ("100", 100.0),
    ],
)
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize(
    ("text", "message"), [("0MB/s", "greater than zero"), ("fast", "bad rate")]
)
def test_parse_rate_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_rate(text)


def test_windows_and_lists() -> None:
    assert parse_window("30s-40s") == (30.0, 40.0)
    assert parse_window("1m-1m30s") == (60.0, 90.0)
    assert parse_window_list("30s-40s, 60s-65s") == ((30.0, 40.0), (60.0, 65.0))
    assert parse_duration_list("5s,12.5s,1m") == (5.0, 12.5, 60.0)
    assert parse_size_list("64KiB,1MB") == (65536, 1_000_000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30s", "START-END"),
        ("40s-30s", "ends before"),
        ("5s-5s", "ends before"),
        ("1s-2s,", "empty"),
    ],
)
def test_windows_reject(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_window_list(text)
