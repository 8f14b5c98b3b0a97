"""The one grammar of quantities and addresses (convergence.quantities)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convergence.quantities import (
    DEFAULT_TCPCL_PORT,
    AddressError,
    QuantityError,
    duration_value,
    format_address,
    format_duration,
    format_size,
    frequency_value,
    parse_address,
    parse_duration,
    parse_duration_list,
    parse_frequency,
    parse_peer_address,
    parse_rate,
    parse_size,
    parse_size_list,
    parse_window,
    parse_window_list,
    size_value,
)
from convergence.tcpcl import DEFAULT_PORT

# -- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h15s", 3615.0),
        ("250ms", 0.25),
        ("250us", 0.00025),
        ("1.5s", 1.5),
        ("1.5h", 5400.0),
        ("1m30s", 90.0),
        ("1d2h3m4s5ms", 86400 + 7200 + 180 + 4 + 0.005),
        ("0", 0.0),
        ("2.5", 2.5),
        ("5", 5.0),
        (" 5s ", 5.0),
        (".5s", 0.5),
        ("5.s", 5.0),
        # The plans' grammar let parts come in any order and repeat; the union keeps that.
        ("2h1h", 3 * 3600.0),
        ("15s1h", 3615.0),
        ("1s1s", 2.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("5x", "bad duration '5x'"),
        ("s", "bad duration"),
        ("-5s", "bad duration"),
        ("1h 15s", "bad duration"),
        ("5s,", "bad duration"),
        ("10S", "bad duration"),
        ("1e3s", "bad duration"),
        ("inf", "bad duration"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_duration(text)


def test_quantity_errors_are_value_errors_naming_the_text() -> None:
    with pytest.raises(ValueError, match=r"^bad duration 'soon' \(write e\.g\. 250ms"):
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


@pytest.mark.parametrize(("value", "seconds"), [(10, 10.0), (0.5, 0.5), ("1m", 60.0), (0, 0.0)])
def test_duration_value(value: str | float, seconds: float) -> None:
    assert duration_value(value) == seconds


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), True])
def test_duration_value_rejects(value: float) -> None:
    with pytest.raises(QuantityError, match="number of seconds >= 0"):
        duration_value(value)


# -- sizes, rates, frequencies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1500", 1500),
        ("1500B", 1500),
        ("64KiB", 65536),
        ("64ki", 65536),
        ("64k", 64_000),
        ("1MB", 1_000_000),
        ("1.5MB", 1_500_000),
        ("1.5KiB", 1536),
        ("2GiB", 2 * 1024**3),
        ("3tib", 3 * 2**40),
        ("1TB", 10**12),
        ("8Mbit", 1_000_000),
        ("16bit", 2),
        ("10kB", 10_000),
        ("10 kb", 10_000),
        (" 1 KiB ", 1024),
        ("1B", 1),
        ("0", 0),
        # Exact, however large (the plans' grammar kept big integers whole).
        ("99999999999999999999", 99999999999999999999),
        ("1000000TiB", 1_000_000 * 2**40),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bad size"),
        ("1XB", "bad size '1XB'"),
        ("MiB", "bad size"),
        ("1 parsec", "bad size"),
        ("-1", "bad size"),
        ("1.5", "whole number"),
        ("1bit", "whole number"),
        ("0.1B", "whole number"),
    ],
)
def test_parse_size_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_size(text)


@pytest.mark.parametrize(("value", "size"), [(1024, 1024), (2.0, 2), ("1KiB", 1024), (0, 0)])
def test_size_value(value: str | float, size: int) -> None:
    assert size_value(value) == size


@pytest.mark.parametrize("value", [-1, 1.5, float("nan"), True])
def test_size_value_rejects(value: float) -> None:
    with pytest.raises(QuantityError, match="whole number of bytes >= 0"):
        size_value(value)


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0"), (1500, "1500"), (1024, "1KiB"), (4 * 1024**3, "4GiB")]
)
def test_format_size_parses_back(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1MB/s", 1e6),
        ("2MB/s", 2e6),
        ("500kB/s", 5e5),
        ("8Mbit/s", 1e6),
        ("8Mbit", 1e6),
        ("8Mbps", 1e6),
        ("1MiB", 1024.0**2),
        ("100", 100.0),
        ("1bit/s", 0.125),
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


@pytest.mark.parametrize(
    ("text", "mhz"), [("2.4GHz", 2400.0), ("800 MHz", 800.0), ("1500", 1500.0), ("1ghz", 1000.0)]
)
def test_parse_frequency(text: str, mhz: float) -> None:
    assert parse_frequency(text) == mhz
    assert frequency_value(text) == mhz


@pytest.mark.parametrize("text", ["fast", "2 THz", "", "-1GHz"])
def test_parse_frequency_rejects(text: str) -> None:
    with pytest.raises(QuantityError, match="bad frequency"):
        parse_frequency(text)


# -- windows and lists ----------------------------------------------------------------------------


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


# -- addresses ------------------------------------------------------------------------------------


def test_the_tcpcl_port_is_defined_once() -> None:
    assert DEFAULT_TCPCL_PORT == 4556
    assert DEFAULT_PORT is DEFAULT_TCPCL_PORT


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:4600", ("127.0.0.1", 4600)),
        ("localhost:0", ("localhost", 0)),
        (":4600", ("127.0.0.1", 4600)),
        ("[::1]:4556", ("::1", 4556)),
        ("[fe80::1%eth0]:7", ("fe80::1%eth0", 7)),
        ("example.org", ("example.org", 4556)),
        ("[::1]", ("::1", 4556)),
        (" host:1 ", ("host", 1)),
    ],
)
def test_parse_address(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text, default_port=4556) == address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host:port", "bad port"),
        ("h:70000", "bad port"),
        ("h:-1", "bad port"),
        ("::1", "IPv6"),
        ("[::1", r"\[IPv6\]"),
        ("[::1]x", r"\[IPv6\]"),
        ("", "empty address"),
        ("a b:1", "bad host"),
        ("a/b:1", "bad host"),
    ],
)
def test_parse_address_rejects(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_address(text, default_port=1)


def test_an_address_needs_a_port_without_a_default() -> None:
    with pytest.raises(AddressError, match="needs a port"):
        parse_address("host")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://host:4000", ("host", 4000)),
        ("tcp://host:4000/", ("host", 4000)),
        ("TCP://host", ("host", 4556)),
        ("tcpcl://host", ("host", 4556)),
        ("host:1", ("host", 1)),
        ("tcp://[::1]:9", ("::1", 9)),
    ],
)
def test_parse_peer_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_peer_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("http://x:1", "only tcp://"), ("tcp://x:1/dtn://b/", "write tcp://HOST:PORT")],
)
def test_parse_peer_address_rejects(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_peer_address(text)


@given(
    st.one_of(st.ip_addresses().map(str), st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True)),
    st.integers(0, 65535),
)
def test_format_address_parses_back(host: str, port: int) -> None:
    assert parse_address(format_address(host, port)) == (host, port)
