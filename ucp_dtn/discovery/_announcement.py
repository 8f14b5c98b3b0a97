"""What a node announces over DNS-SD, and how to read what others announce. Pure, no I/O.

Theory of operation
-------------------
Each node advertises its TCPCLv4 listener as one DNS-SD service instance (RFC 6763) over
multicast DNS (RFC 6762):

- **Service type** ``_dtn-bundle._tcp.local.``: DNS-SD service types are IANA service names
  (RFC 6763 Section 7; RFC 6335 Section 5), and RFC 9174 Section 8.1 keeps the registration
  "Service Name: dtn-bundle / Transport Protocol(s): TCP / Description: DTN Bundle TCP CL
  Protocol / Port Number: 4556" for TCPCLv4. No other name is registered for TCPCL, so we use
  this one; the TXT key ``tcpcl`` tells TCPCL versions apart (3 vs 4) without a connection.
- **Instance name** derived from the node ID (``dtn://shelter-3/`` → ``dtn-shelter-3``); the
  node ID itself travels in TXT, the instance name is only a label.
- **SRV / A / AAAA**: the port of the first listen address and every distinct listen host, so
  plain DNS-SD browsers (``avahi-browse``) show something useful.
- **TXT** (RFC 6763 Section 6), the authoritative content for us:

  ===========  ============================================================================
  ``txtvers``  ``1``: version of this TXT schema (RFC 6763 Section 6.7 convention).
  ``node``     the node ID, e.g. ``dtn://shelter-3/`` or ``ipn:7.0``. Required.
  ``roles``    comma list, e.g. ``broker,datastore,executor``; may be empty.
  ``tcpcl``    TCPCL version the listener speaks, ``4`` (RFC 9174 Section 4.2).
  ``tls``      ``1`` if the listener sets CAN_TLS in its contact header (RFC 9174 Section 4.2).
  ``addr0``…   every listen address in preference order, ``host:port`` / ``[v6host]:port``.
  ===========  ============================================================================

  The ``addrN`` keys exist because A/AAAA records can carry neither a port per address nor an
  order (a receiver sees them in arbitrary order), and a node may listen on several interfaces
  and ports. A service without ``addrN`` keys (another implementation) is read from its SRV port
  and A/AAAA records instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ._errors import DiscoveryConfigError, MalformedAnnouncement

__all__ = [
    "DEFAULT_SERVICE_TYPE",
    "TCPCL_VERSION",
    "TXT_SCHEMA_VERSION",
    "DiscoveredPeer",
    "check_instance_name",
    "check_service_type",
    "encode_announcement",
    "expand_unspecified",
    "format_address",
    "instance_name_for",
    "parse_address",
    "peer_from_announcement",
]

DEFAULT_SERVICE_TYPE = "_dtn-bundle._tcp.local."
"""DNS-SD type for TCPCL listeners: the IANA service name of RFC 9174 Section 8.1."""

TCPCL_VERSION = 4
"""RFC 9174 Section 4.2: "A 1-byte field value containing the value 4 (current version)"."""

TXT_SCHEMA_VERSION = 1
"""Value of our ``txtvers`` key; a different value is a schema we cannot read."""

# RFC 6763 Section 6.1: "each constituent string of a DNS TXT record is limited to 255 bytes".
_MAX_TXT_STRING = 255
# RFC 6763 Section 6.2: "keeping the size of the TXT record under 1300 bytes should allow it to
# fit in a single 1500-byte Ethernet packet."
_MAX_TXT_TOTAL = 1300
# RFC 6763 Section 4.1.1: the <Instance> portion "is a user-friendly name consisting of arbitrary
# Net-Unicode text [RFC5198]. It MUST NOT contain ASCII control characters [...] but otherwise is
# allowed to contain any characters, [...] up to a maximum of 63 octets".
_MAX_INSTANCE_OCTETS = 63

# RFC 6335 Section 5.1: service names "MUST be at least 1 character and no more than 15
# characters long", "MUST contain only US-ASCII letters 'A' - 'Z' and 'a' - 'z', digits '0' - '9',
# and hyphens", "MUST contain at least one letter", "MUST NOT begin or end with a hyphen" and
# "hyphens MUST NOT be adjacent to other hyphens". RFC 6763 Section 7: the service type is
# "_<Service>._tcp" (or "._udp"); we browse mDNS, so the domain is "local." (RFC 6762 Section 3).
_SERVICE_TYPE = re.compile(
    r"""_
    (?!.*--)                            # no adjacent hyphens
    (?=[a-z0-9-]*[a-z])                 # at least one letter
    [a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?  # 1-15 characters, no hyphen at either end
    \._tcp\.local\.""",
    re.VERBOSE,
)
_ROLE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_PORT = re.compile(r"[0-9]{1,5}")
_ADDRESS_KEY = re.compile(r"addr(0|[1-9][0-9]{0,2})")
_NOT_LABEL_CHARACTER = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class DiscoveredPeer:
    """Another node, as its DNS-SD announcement describes it."""

    node_id: str
    """Its node ID, e.g. ``dtn://shelter-3/`` or ``ipn:7.0`` (a plain string here)."""
    addresses: tuple[tuple[str, int], ...]
    """Every (host, port) it listens on for TCPCL, in the order it prefers; may be empty."""
    roles: frozenset[str]
    """UCP roles it runs, e.g. ``{"broker", "executor"}``; unknown role names are kept."""
    tls: bool
    """Whether its TCPCL listener offers TLS (CAN_TLS)."""
    tcpcl_version: int = TCPCL_VERSION
    """TCPCL version of its listener (4 for RFC 9174)."""
    service_name: str = ""
    """Full DNS-SD instance name it announced under (unique on the link at any time)."""


def format_address(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets (``[::1]:4556``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """Parse ``a.b.c.d:port`` or ``[v6]:port`` into a normalised (host, port).

    Raises ValueError (with a reason) for anything else, including host names: discovery
    announces and accepts IP literals only.
    """
    host_text, colon, port_text = text.rpartition(":")
    if not colon or not _PORT.fullmatch(port_text):
        raise ValueError(f"{text!r} is not host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range in {text!r}")
    bracketed = host_text.startswith("[") and host_text.endswith("]")
    if bracketed:
        host_text = host_text[1:-1]
    try:
        ip = ipaddress.ip_address(host_text)
    except ValueError:
        raise ValueError(f"{host_text!r} is not an IP address") from None
    if (ip.version == 6) != bracketed:
        raise ValueError(f"{text!r}: IPv6 hosts and only they go in brackets")
    return str(ip), port


def _check_listen_address(address: tuple[str, int]) -> tuple[str, int]:
    host, port = address
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise DiscoveryConfigError(f"listen host {host!r} is not an IP address") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise DiscoveryConfigError(f"listen port {port!r} of {host} is not in 1..65535")
    if ip.is_unspecified:
        raise DiscoveryConfigError(f"{host} means nothing to a peer; expand it first")
    return str(ip), port


def expand_unspecified(
    addresses: Sequence[tuple[str, int]], local_ips: Iterable[str]
) -> list[tuple[str, int]]:
    """Replace each 0.0.0.0 / :: listen address by the matching concrete ``local_ips``.

    A listener bound to the unspecified address accepts on every interface, but a peer needs a
    real address. Loopback and link-local addresses are left out (a peer elsewhere would reach
    its own loopback, and a link-local address needs a scope only we know) unless no other
    address of that family exists, so a machine without a network still announces loopback.
    Order is kept; duplicates are dropped.
    """
    by_family: dict[int, list[str]] = {4: [], 6: []}
    loopback: dict[int, list[str]] = {4: [], 6: []}
    for text in local_ips:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip.is_loopback:
            loopback[ip.version].append(str(ip))
        elif not (ip.is_link_local or ip.is_unspecified or ip.is_multicast):
            by_family[ip.version].append(str(ip))
    expanded: dict[tuple[str, int], None] = {}
    for host, port in addresses:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            expanded[(host, port)] = None  # rejected later, with a proper message
            continue
        if not ip.is_unspecified:
            expanded[(host, port)] = None
            continue
        for concrete in by_family[ip.version] or loopback[ip.version]:
            expanded[(concrete, port)] = None
    return list(expanded)


def _check_roles(roles: Iterable[str]) -> frozenset[str]:
    checked = frozenset(roles)
    for role in checked:
        if not isinstance(role, str) or not _ROLE.fullmatch(role):
            raise DiscoveryConfigError(f"role {role!r} is not a lowercase token ([a-z0-9_-])")
    return checked


def encode_announcement(
    node_id: str,
    addresses: Sequence[tuple[str, int]],
    roles: Iterable[str],
    tls: bool,
) -> dict[str, str]:
    """The TXT properties announcing a node (see the module docstring for the schema).

    ``addresses`` must be concrete IP addresses (no 0.0.0.0 / ::) with ports 1..65535; duplicates
    are dropped, order is kept. Raises DiscoveryConfigError for anything that cannot be
    announced, including a TXT record beyond the RFC 6763 size limits.
    """
    if not isinstance(node_id, str) or not node_id:
        raise DiscoveryConfigError("node ID must be a non-empty string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in node_id):
        raise DiscoveryConfigError(f"node ID {node_id!r} contains control characters")
    unique: dict[tuple[str, int], None] = {}
    for address in addresses:
        unique[_check_listen_address(address)] = None
    if not unique:
        raise DiscoveryConfigError("at least one listen address is needed")
    properties = {
        "txtvers": str(TXT_SCHEMA_VERSION),
        "node": node_id,
        "roles": ",".join(sorted(_check_roles(roles))),
        "tcpcl": str(TCPCL_VERSION),
        "tls": "1" if tls else "0",
    }
    for index, (host, port) in enumerate(unique):
        properties[f"addr{index}"] = format_address(host, port)
    total = 0
    for key, value in properties.items():
        length = len(key.encode()) + 1 + len(value.encode())
        if length > _MAX_TXT_STRING:
            raise DiscoveryConfigError(
                f"TXT string {key}=... is {length} bytes; RFC 6763 allows {_MAX_TXT_STRING}"
            )
        total += 1 + length
    if total > _MAX_TXT_TOTAL:
        raise DiscoveryConfigError(
            f"TXT record would be {total} bytes (too many addresses?); keep it under "
            f"{_MAX_TXT_TOTAL} (RFC 6763 Section 6.2)"
        )
    return properties


def check_service_type(service_type: str) -> str:
    """Return ``service_type`` if it is a valid ``_name._tcp.local.`` type, else raise.

    Raises DiscoveryConfigError citing the rule broken (RFC 6335 Section 5.1, RFC 6763 Section 7).
    Matching is case-insensitive, as DNS is; the type is returned as given.
    """
    if not isinstance(service_type, str) or not _SERVICE_TYPE.fullmatch(service_type.lower()):
        raise DiscoveryConfigError(
            f"service type {service_type!r} is not '_<name>._tcp.local.' with a name of 1-15 "
            "letters, digits and single inner hyphens, at least one letter (RFC 6335 Section 5.1)"
        )
    return service_type


def check_instance_name(instance: str) -> str:
    """Return ``instance`` if it can label a DNS-SD service instance, else raise.

    RFC 6763 Section 4.1.1: at most 63 octets of UTF-8, no ASCII control characters. We also
    refuse dots, which DNS-SD tools handle inconsistently. Raises DiscoveryConfigError.
    """
    if (
        not isinstance(instance, str)
        or not instance
        or len(instance.encode()) > _MAX_INSTANCE_OCTETS
        or "." in instance
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in instance)
    ):
        raise DiscoveryConfigError(
            f"instance name {instance!r} must be 1-63 octets of UTF-8 without dots or control "
            "characters (RFC 6763 Section 4.1.1)"
        )
    return instance


def instance_name_for(node_id: str) -> str:
    """A DNS-SD instance label for ``node_id``: ``dtn://shelter-3/`` → ``dtn-shelter-3``.

    Only letters, digits and dashes (no dots or slashes to trip up DNS-SD tools), at most 63
    octets (RFC 6763 Section 4.1.1). Two node IDs may share a label; registration renames on a
    conflict and the node ID in TXT is what counts.
    """
    label = _NOT_LABEL_CHARACTER.sub("-", node_id).strip("-")[:_MAX_INSTANCE_OCTETS].strip("-")
    return label or "dtn-node"


def _text(service_name: str, key: str, value: bytes | None) -> str:
    if value is None:
        raise MalformedAnnouncement(service_name, f"TXT key {key!r} has no value")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAnnouncement(service_name, f"TXT key {key!r} is not UTF-8") from None


def _flag(service_name: str, key: str, value: bytes | None) -> bool:
    # RFC 6763 Section 6.4: a key present with no "=" is a boolean attribute that is true.
    if value is None:
        return True
    lowered = value.lower()
    if lowered in (b"1", b"true", b"yes"):
        return True
    if lowered in (b"0", b"false", b"no", b""):
        return False
    raise MalformedAnnouncement(service_name, f"TXT key {key!r} is not a boolean: {value!r}")


def peer_from_announcement(
    service_name: str,
    properties: Mapping[bytes, bytes | None],
    fallback_hosts: Sequence[str] = (),
    fallback_port: int | None = None,
) -> DiscoveredPeer:
    """Decode a resolved DNS-SD service into a :class:`DiscoveredPeer`.

    ``properties`` are the TXT key/value pairs as received; ``fallback_hosts`` and
    ``fallback_port`` (its A/AAAA addresses and SRV port) are used only when the TXT data
    carries no ``addrN`` keys. Raises only MalformedAnnouncement, whatever the input.
    """
    # RFC 6763 Section 6.4: "Case is ignored when interpreting a key" [...] "If a client receives
    # a TXT record containing the same key more than once, then the client MUST silently ignore
    # all but the first occurrence of that attribute."
    txt: dict[str, bytes | None] = {}
    for raw_key, value in properties.items():
        key = raw_key.decode("ascii", errors="replace").lower()
        txt.setdefault(key, value)

    if "txtvers" in txt:
        version = _text(service_name, "txtvers", txt["txtvers"])
        if version != str(TXT_SCHEMA_VERSION):
            raise MalformedAnnouncement(service_name, f"unsupported txtvers {version!r}")
    if "node" not in txt:
        raise MalformedAnnouncement(service_name, "no 'node' TXT key")
    node_id = _text(service_name, "node", txt["node"])
    if not node_id:
        raise MalformedAnnouncement(service_name, "empty node ID")

    roles: frozenset[str] = frozenset()
    if "roles" in txt:
        roles_text = _text(service_name, "roles", txt["roles"])
        roles = frozenset(role.strip() for role in roles_text.split(",") if role.strip())

    tcpcl_version = TCPCL_VERSION
    if "tcpcl" in txt:
        version_text = _text(service_name, "tcpcl", txt["tcpcl"])
        if not re.fullmatch(r"[0-9]{1,3}", version_text) or int(version_text) > 255:
            raise MalformedAnnouncement(service_name, f"bad TCPCL version {version_text!r}")
        tcpcl_version = int(version_text)

    tls = _flag(service_name, "tls", txt["tls"]) if "tls" in txt else False

    indexed: dict[int, tuple[str, int]] = {}
    for key, value in txt.items():
        match = _ADDRESS_KEY.fullmatch(key)
        if match is None:
            continue
        try:
            indexed[int(match.group(1))] = parse_address(_text(service_name, key, value))
        except ValueError as exc:
            raise MalformedAnnouncement(service_name, f"TXT key {key!r}: {exc}") from None
    addresses: tuple[tuple[str, int], ...]
    if indexed:
        addresses = tuple(dict.fromkeys(indexed[index] for index in sorted(indexed)))
    elif fallback_port:
        hosts: dict[str, None] = {}
        for host in fallback_hosts:
            try:
                hosts[str(ipaddress.ip_address(host))] = None
            except ValueError:
                continue
        addresses = tuple((host, fallback_port) for host in hosts)
    else:
        addresses = ()

    return DiscoveredPeer(
        node_id=node_id,
        addresses=addresses,
        roles=roles,
        tls=tls,
        tcpcl_version=tcpcl_version,
        service_name=service_name,
    )
