"""The DNS-SD announcement schema: TXT encoding and decoding, address forms, names. No network."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zeroconf import ServiceInfo

from ucp_dtn.discovery import (
    DEFAULT_SERVICE_TYPE,
    DiscoveredPeer,
    DiscoveryConfigError,
    MalformedAnnouncement,
    check_instance_name,
    check_service_type,
    encode_announcement,
    expand_unspecified,
    format_address,
    instance_name_for,
    parse_address,
    peer_from_announcement,
)

NAME = f"x.{DEFAULT_SERVICE_TYPE}"


def as_txt(properties: dict[str, str]) -> dict[bytes, bytes | None]:
    return {key.encode(): value.encode() for key, value in properties.items()}


def through_zeroconf(properties: dict[str, str]) -> dict[bytes, bytes | None]:
    """Encode ``properties`` into TXT wire bytes with zeroconf, and parse them back with it."""
    sent = ServiceInfo(DEFAULT_SERVICE_TYPE, NAME, port=1, properties=properties)
    received = ServiceInfo(DEFAULT_SERVICE_TYPE, NAME, port=1, properties=sent.text)
    return received.properties


@pytest.mark.parametrize(
    ("node_id", "addresses", "roles", "tls"),
    [
        ("dtn://shelter-3/", [("127.0.0.1", 4556)], {"broker"}, False),
        ("ipn:7.0", [("10.0.0.7", 4556), ("192.168.1.7", 4557)], set(), True),
        (
            "dtn://laptop-7/",
            [("::1", 4556), ("2001:db8::7", 1), ("10.0.0.7", 65535)],
            {"broker", "executor", "datastore"},
            True,
        ),
        ("dtn://ünïcode-node/", [("fe80::1%eth0", 4556)], {"client"}, False),
    ],
)
def test_round_trip_through_zeroconf_txt_bytes(
    node_id: str, addresses: list[tuple[str, int]], roles: set[str], tls: bool
) -> None:
    properties = encode_announcement(node_id, addresses, roles, tls)
    peer = peer_from_announcement(NAME, through_zeroconf(properties))
    assert peer == DiscoveredPeer(
        node_id=node_id,
        addresses=tuple(addresses),
        roles=frozenset(roles),
        tls=tls,
        tcpcl_version=4,
        service_name=NAME,
    )


def test_encoding_keeps_order_and_drops_duplicates() -> None:
    properties = encode_announcement(
        "dtn://a/",
        [("10.0.0.2", 5), ("10.0.0.1", 5), ("10.0.0.2", 5), ("::1", 5)],
        ["executor", "broker"],
        True,
    )
    assert properties == {
        "txtvers": "1",
        "node": "dtn://a/",
        "roles": "broker,executor",
        "tcpcl": "4",
        "tls": "1",
        "addr0": "10.0.0.2:5",
        "addr1": "10.0.0.1:5",
        "addr2": "[::1]:5",
    }


@pytest.mark.parametrize(
    ("node_id", "addresses", "roles", "match"),
    [
        ("", [("127.0.0.1", 1)], (), "non-empty"),
        ("dtn://a\n/", [("127.0.0.1", 1)], (), "control characters"),
        ("dtn://a/", [], (), "at least one listen address"),
        ("dtn://a/", [("0.0.0.0", 4556)], (), "expand it first"),
        ("dtn://a/", [("::", 4556)], (), "expand it first"),
        ("dtn://a/", [("shelter-3.local", 4556)], (), "not an IP address"),
        ("dtn://a/", [("127.0.0.1", 0)], (), "not in 1..65535"),
        ("dtn://a/", [("127.0.0.1", 65536)], (), "not in 1..65535"),
        ("dtn://a/", [("127.0.0.1", 1)], ["Broker"], "lowercase token"),
        ("dtn://a/", [("127.0.0.1", 1)], ["broker,executor"], "lowercase token"),
        ("dtn://" + "n" * 250 + "/", [("127.0.0.1", 1)], (), "RFC 6763 allows 255"),
        (
            "dtn://a/",
            [(f"2001:db8::{i:x}", 40000 + i) for i in range(60)],
            (),
            "under 1300",
        ),
    ],
)
def test_what_cannot_be_announced_is_a_config_error(
    node_id: str, addresses: list[tuple[str, int]], roles: list[str], match: str
) -> None:
    with pytest.raises(DiscoveryConfigError, match=match):
        encode_announcement(node_id, addresses, roles, False)


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        encode_announcement("", [("127.0.0.1", 1)], (), False)


def test_keys_are_case_insensitive_and_first_occurrence_wins() -> None:
    txt = {b"NODE": b"dtn://a/", b"node": b"dtn://b/", b"Addr0": b"127.0.0.1:9", b"TLS": None}
    peer = peer_from_announcement(NAME, txt)
    assert (peer.node_id, peer.addresses, peer.tls) == ("dtn://a/", (("127.0.0.1", 9),), True)


def test_minimal_announcement_has_defaults() -> None:
    peer = peer_from_announcement(NAME, {b"node": b"ipn:7.0"})
    assert peer == DiscoveredPeer("ipn:7.0", (), frozenset(), False, 4, NAME)


def test_addresses_follow_their_index_not_the_txt_order() -> None:
    txt = {
        b"node": b"dtn://a/",
        b"addr10": b"10.0.0.10:1",
        b"addr2": b"10.0.0.2:1",
        b"addr0": b"10.0.0.0:1",
    }
    assert peer_from_announcement(NAME, txt).addresses == (
        ("10.0.0.0", 1),
        ("10.0.0.2", 1),
        ("10.0.0.10", 1),
    )


def test_without_addr_keys_the_srv_port_and_address_records_are_used() -> None:
    peer = peer_from_announcement(
        NAME, {b"node": b"dtn://other-impl/"}, ["10.0.0.1", "not-an-ip", "::1", "10.0.0.1"], 4556
    )
    assert peer.addresses == (("10.0.0.1", 4556), ("::1", 4556))


def test_addr_keys_win_over_address_records() -> None:
    txt = {b"node": b"dtn://a/", b"addr0": b"127.0.0.1:7"}
    assert peer_from_announcement(NAME, txt, ["10.0.0.1"], 4556).addresses == (("127.0.0.1", 7),)


def test_roles_are_split_and_trimmed_and_unknown_ones_kept() -> None:
    txt = {b"node": b"dtn://a/", b"roles": b" broker ,,Weird-Role,executor,"}
    assert peer_from_announcement(NAME, txt).roles == {"broker", "Weird-Role", "executor"}


@pytest.mark.parametrize(
    ("txt", "match"),
    [
        ({}, "no 'node' TXT key"),
        ({b"node": None}, "has no value"),
        ({b"node": b""}, "empty node ID"),
        ({b"node": b"\xff"}, "not UTF-8"),
        ({b"node": b"a", b"txtvers": b"2"}, "unsupported txtvers"),
        ({b"node": b"a", b"tcpcl": b"four"}, "bad TCPCL version"),
        ({b"node": b"a", b"tcpcl": b"256"}, "bad TCPCL version"),
        ({b"node": b"a", b"tls": b"maybe"}, "not a boolean"),
        ({b"node": b"a", b"roles": b"\xc3"}, "not UTF-8"),
        ({b"node": b"a", b"addr0": b"127.0.0.1"}, "not host:port"),
        ({b"node": b"a", b"addr0": b"127.0.0.1:0"}, "out of range"),
        ({b"node": b"a", b"addr0": b"127.0.0.1:99999"}, "out of range"),
        ({b"node": b"a", b"addr0": b"127.0.0.1:+80"}, "not host:port"),
        ({b"node": b"a", b"addr0": b"::1:80"}, "only they go in brackets"),
        ({b"node": b"a", b"addr0": b"[127.0.0.1]:80"}, "only they go in brackets"),
        ({b"node": b"a", b"addr0": b"host.example:80"}, "not an IP address"),
        ({b"node": b"a", b"addr0": None}, "has no value"),
    ],
)
def test_malformed_announcements(txt: dict[bytes, bytes | None], match: str) -> None:
    with pytest.raises(MalformedAnnouncement, match=match) as info:
        peer_from_announcement(NAME, txt)
    assert info.value.service_name == NAME


def test_unknown_keys_and_unrelated_addr_like_keys_are_ignored() -> None:
    txt = {b"node": b"a", b"addr01": b"junk", b"addrx": b"junk", b"future": b"\xff"}
    assert peer_from_announcement(NAME, txt).addresses == ()


_txt_values = st.none() | st.binary(max_size=20) | st.sampled_from([b"1", b"0", b"4", b"[::1]:5"])
_txt_keys = st.binary(max_size=8) | st.sampled_from(
    [b"node", b"roles", b"tls", b"tcpcl", b"txtvers", b"addr0", b"addr1", b"ADDR2"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_txt_keys, _txt_values, max_size=8), st.lists(st.text(max_size=8)))
def test_decoding_arbitrary_txt_raises_only_malformed_announcement(
    txt: dict[bytes, bytes | None], hosts: list[str]
) -> None:
    try:
        peer = peer_from_announcement(NAME, txt, hosts, 4556)
    except MalformedAnnouncement:
        return
    assert peer.node_id
    assert all(0 < port < 65536 for _, port in peer.addresses)


_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_listen = st.tuples(_ipv4 | _ipv6, st.integers(1, 65535)).filter(
    lambda a: a[0] not in ("0.0.0.0", "::")
)


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=60).filter(lambda s: s.isprintable()),
    st.lists(_listen, min_size=1, max_size=8),
    st.frozensets(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True), max_size=4),
    st.booleans(),
)
def test_every_announceable_configuration_round_trips(
    node_id: str, addresses: list[tuple[str, int]], roles: frozenset[str], tls: bool
) -> None:
    peer = peer_from_announcement(
        NAME, through_zeroconf(encode_announcement(node_id, addresses, roles, tls))
    )
    assert peer.node_id == node_id
    assert peer.addresses == tuple(dict.fromkeys(addresses))
    assert (peer.roles, peer.tls) == (roles, tls)


@pytest.mark.parametrize(
    ("host", "port", "text"),
    [
        ("127.0.0.1", 4556, "127.0.0.1:4556"),
        ("::1", 1, "[::1]:1"),
        ("fe80::1%2", 9, "[fe80::1%2]:9"),
    ],
)
def test_address_text_form(host: str, port: int, text: str) -> None:
    assert format_address(host, port) == text
    assert parse_address(text) == (host, port)


def test_parse_address_normalises_ipv6() -> None:
    assert parse_address("[2001:DB8:0::1]:80") == ("2001:db8::1", 80)


LOCAL = ["127.0.0.1", "10.0.0.5", "169.254.3.3", "::1", "fe80::5", "2001:db8::5", "192.168.1.5"]


@pytest.mark.parametrize(
    ("listen", "local", "expected"),
    [
        (
            [("0.0.0.0", 4556)],
            LOCAL,
            [("10.0.0.5", 4556), ("192.168.1.5", 4556)],
        ),
        ([("::", 4556)], LOCAL, [("2001:db8::5", 4556)]),
        (
            [("10.0.0.5", 1), ("0.0.0.0", 1), ("::", 2)],
            LOCAL,
            [("10.0.0.5", 1), ("192.168.1.5", 1), ("2001:db8::5", 2)],
        ),
        (
            [("0.0.0.0", 4556), ("::", 4556)],
            ["127.0.0.1", "::1"],
            [("127.0.0.1", 4556), ("::1", 4556)],
        ),
        ([("127.0.0.1", 9), ("bogus", 9)], LOCAL, [("127.0.0.1", 9), ("bogus", 9)]),
        ([("0.0.0.0", 9)], [], []),
    ],
)
def test_expand_unspecified(
    listen: list[tuple[str, int]], local: list[str], expected: list[tuple[str, int]]
) -> None:
    assert expand_unspecified(listen, local) == expected


@pytest.mark.parametrize(
    ("node_id", "label"),
    [
        ("dtn://shelter-3/", "dtn-shelter-3"),
        ("ipn:7.0", "ipn-7-0"),
        ("dtn://a.b.c/ucp/broker", "dtn-a-b-c-ucp-broker"),
        ("///", "dtn-node"),
        ("dtn://" + "x" * 100, "dtn-" + "x" * 59),
    ],
)
def test_instance_name_for(node_id: str, label: str) -> None:
    assert instance_name_for(node_id) == label
    assert check_instance_name(label) == label


@pytest.mark.parametrize("bad", ["", "a.b", "x" * 64, "tab\there", "é" * 32])
def test_check_instance_name_rejects(bad: str) -> None:
    with pytest.raises(DiscoveryConfigError, match=r"RFC 6763 Section 4\.1\.1"):
        check_instance_name(bad)


@pytest.mark.parametrize(
    "good",
    [DEFAULT_SERVICE_TYPE, "_a._tcp.local.", "_abcdefghijklmno._tcp.local.", "_A1._tcp.local."],
)
def test_check_service_type_accepts(good: str) -> None:
    assert check_service_type(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "_1._tcp.local.",
        "_a--b._tcp.local.",
        "_-a._tcp.local.",
        "_a-._tcp.local.",
        "_abcdefghijklmnop._tcp.local.",
        "_a._udp.local.",
        "_a._tcp.local",
        "a._tcp.local.",
        "x._a._tcp.local.",
    ],
)
def test_check_service_type_rejects(bad: str) -> None:
    with pytest.raises(DiscoveryConfigError, match="RFC 6335"):
        check_service_type(bad)
