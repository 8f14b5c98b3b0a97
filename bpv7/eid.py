"""Endpoint IDs: the dtn scheme (RFC 9171 §4.2.5.1.1) and the ipn scheme (RFC 9171 §4.2.5.1.2 as
updated by RFC 9758).

An EID is a frozen value: :class:`DtnEID` or :class:`IpnEID` (``EndpointID`` is their union).
``str(eid)`` is its URI text and :func:`parse_eid` reads URI text back; :func:`eid_to_cbor` /
:func:`eid_from_cbor` convert to and from the CBOR data model (Python lists as cbor2 produces them),
``eid.cbor`` is the encoded CBOR bytes and :func:`eid_from_bytes` decodes them.

ipn EIDs have two CBOR forms (RFC 9758 §6): ``[fqnn, service]`` where the fully qualified node
number is ``(allocator << 32) | node``, and ``[allocator, node, service]``. An :class:`IpnEID`
remembers which form it came in (``three_element``) so that re-encoding reproduces the same bytes;
the form does not take part in equality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, NoReturn

from ._cbor import (
    BREAK,
    INDEFINITE,
    MAJOR_TEXT,
    encode_text,
    encode_uint,
    read_array,
    read_head,
    read_text,
    read_uint,
    truncated,
    wrong_type,
)
from .errors import EIDError, EncodeError

__all__ = [
    "DTN_NONE",
    "DtnEID",
    "EIDScheme",
    "EndpointID",
    "IpnEID",
    "MAX_EID_LENGTH",
    "decode_eid",
    "eid_from_bytes",
    "eid_from_cbor",
    "eid_to_cbor",
    "parse_eid",
]

UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF
MAX_EID_LENGTH = 1024
"""The longest EID this codec reads or writes, in characters of its URI text (``dtn://`` and
all). Our policy, not RFC 9171's: the dtn grammar (§4.2.5.1.1, a reg-name and ``*VCHAR``) sets
no length, but an EID is copied into every bundle, index and log line that names it, so one of
100,000 characters must not get that far. An ipn EID is at most 66 characters anyway (three
20-digit numbers, RFC 9758 §3)."""
_SHOWN = 60
"""Characters of a bad EID quoted in a message (the rest is elided)."""
IPN_LOCAL_NODE = UINT32_MAX
"""RFC 9758 §3.3: the LocalNode number 2^32-1, written ``!`` in ipn URI text."""


class EIDScheme(IntEnum):
    """URI scheme codes (RFC 9171 §9.6; IANA "Bundle Protocol URI Scheme Types")."""

    DTN = 1
    """RFC 9171 §9.6: scheme code 1, "dtn" (§4.2.5.1.1)."""
    IPN = 2
    """RFC 9171 §9.6: scheme code 2, "ipn" (§4.2.5.1.2, RFC 9758)."""


# RFC 9171 §4.2.5.1.1: node-name = reg-name (RFC 3986 §3.2.2:
# reg-name = *( unreserved / pct-encoded / sub-delims )); we also require it to be non-empty.
_NODE_NAME = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+\Z")
# RFC 9171 §4.2.5.1.1: demux = *VCHAR (printable US-ASCII, 0x21-0x7E).
_DEMUX = re.compile(r"[\x21-\x7e]*\Z")
# RFC 9758 §3 (ABNF): numbers are decimal without leading zeros; none exceeds 2**64-1, which
# has 20 digits (more would also hit Python's limit on converting long digit strings).
_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,19})\Z")


def _quoted(text: str) -> str:
    """``repr(text)``, cut to :data:`_SHOWN` characters (hostile input makes long messages)."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


@dataclass(frozen=True, slots=True)
class DtnEID:
    """A dtn-scheme endpoint ID: ``dtn://node_name/demux``, or ``dtn:none`` when both fields are
    empty (use :data:`DTN_NONE`)."""

    node_name: str
    """The node name (an RFC 3986 reg-name, non-empty except for dtn:none)."""
    demux: str = ""
    """The demultiplexing token after the ``/`` (printable ASCII, may be empty). An empty demux
    makes this a node ID; a demux starting with ``~`` names a non-singleton endpoint."""
    _cbor: bytes = field(init=False, repr=False, compare=False)
    _text: str | None = field(init=False, default=None, repr=False, compare=False)
    _node: DtnEID | None = field(init=False, default=None, repr=False, compare=False)

    scheme: ClassVar[EIDScheme] = EIDScheme.DTN

    def __post_init__(self) -> None:
        if not isinstance(self.node_name, str) or not isinstance(self.demux, str):
            raise EncodeError("dtn EID parts must be str", rule="dtn-ssp", section="4.2.5.1.1")
        if self.node_name == "" and self.demux == "":
            # RFC 9171 §4.2.5.1.1: "the SSP SHALL be represented as a CBOR unsigned integer with
            # the value zero" when the SSP is "none".
            object.__setattr__(self, "_cbor", b"\x82\x01\x00")
            return
        length = len(self.node_name) + len(self.demux) + 7  # dtn:// and the / between
        if length > MAX_EID_LENGTH:  # (our policy, see MAX_EID_LENGTH)
            raise EncodeError(
                f"dtn EID of {length} characters is too long (at most {MAX_EID_LENGTH})",
                rule="eid-too-long",
                section="4.2.5.1.1",
            )
        # RFC 9171 §4.2.5.1.1: dtn-hier-part = "//" node-name name-delim demux
        if not _NODE_NAME.match(self.node_name):
            raise EncodeError(
                f"invalid dtn node name {_quoted(self.node_name)} (must be a non-empty RFC 3986 "
                "reg-name)",
                rule="dtn-node-name",
                section="4.2.5.1.1",
            )
        if not _DEMUX.match(self.demux):
            raise EncodeError(
                f"invalid dtn demux {_quoted(self.demux)} (must be printable US-ASCII, no spaces)",
                rule="dtn-demux",
                section="4.2.5.1.1",
            )
        object.__setattr__(self, "_cbor", b"\x82\x01" + encode_text(self.ssp))

    @property
    def ssp(self) -> str:
        """The scheme-specific part: ``"none"`` or ``"//node_name/demux"``."""
        if self.is_null:
            return "none"
        return f"//{self.node_name}/{self.demux}"

    @property
    def cbor(self) -> bytes:
        """The CBOR encoding ``[1, ssp]`` of this EID (``[1, 0]`` for dtn:none)."""
        return self._cbor

    @property
    def is_null(self) -> bool:
        """True for dtn:none, the null endpoint (RFC 9171 §4.2.5.1.1)."""
        return self.node_name == ""

    @property
    def is_singleton(self) -> bool:
        """RFC 9171 §4.2.5.1.1: singleton unless the demux starts with ``~``; the null endpoint
        "never has any members" and so is not a singleton."""
        return not self.is_null and not self.demux.startswith("~")

    @property
    def is_node_id(self) -> bool:
        """RFC 9171 §4.2.5.1.1: only a dtn EID whose demux is empty may serve as a node ID."""
        return not self.is_null and self.demux == ""

    @property
    def node_id(self) -> DtnEID:
        """The node ID ``dtn://node_name/`` of the node this EID names (dtn:none for dtn:none)."""
        if self.demux == "":
            return self
        node = self._node
        if node is None:  # built (and validated) once: EIDs are immutable
            node = DtnEID(self.node_name)
            object.__setattr__(self, "_node", node)
        return node

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = "dtn:" + self.ssp
            object.__setattr__(self, "_text", text)
        return text


@dataclass(frozen=True, slots=True)
class IpnEID:
    """An ipn-scheme endpoint ID (RFC 9758): ``ipn:node.service`` or
    ``ipn:allocator.node.service``."""

    allocator: int
    """Allocator identifier, 0..2^32-1 (0 is the default allocator)."""
    node: int
    """Node number, 0..2^32-1 (2^32-1 is LocalNode, written ``!``)."""
    service: int
    """Service number, 0..2^64-1; 0 is the node's administrative endpoint."""
    three_element: bool | None = field(default=None, compare=False)
    """Whether the CBOR form is ``[allocator, node, service]`` (True) or
    ``[fqnn, service]`` (False). ``None`` chooses: three elements iff the allocator is non-zero.
    Not part of equality; decoding sets it to the form received."""
    _cbor: bytes = field(init=False, repr=False, compare=False)
    _text: str | None = field(init=False, default=None, repr=False, compare=False)
    _node: IpnEID | None = field(init=False, default=None, repr=False, compare=False)

    scheme: ClassVar[EIDScheme] = EIDScheme.IPN

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("allocator", self.allocator, UINT32_MAX),
            ("node", self.node, UINT32_MAX),
            ("service", self.service, UINT64_MAX),
        ):
            # RFC 9758 §3: allocator identifiers and node numbers are 32-bit, service numbers
            # 64-bit unsigned integers.
            if type(value) is not int or not 0 <= value <= limit:
                raise EncodeError(
                    f"ipn {name} {value!r} out of range 0..{limit}",
                    rule="ipn-range",
                    section="3",
                    rfc=9758,
                )
        three = self.three_element
        if three is None:
            three = self.allocator != 0
            object.__setattr__(self, "three_element", three)
        if three:
            cbor = (
                b"\x82\x02\x83"
                + encode_uint(self.allocator)
                + encode_uint(self.node)
                + encode_uint(self.service)
            )
        else:
            cbor = b"\x82\x02\x82" + encode_uint(self.fqnn) + encode_uint(self.service)
        object.__setattr__(self, "_cbor", cbor)

    @property
    def fqnn(self) -> int:
        """The fully qualified node number ``(allocator << 32) | node`` (RFC 9758 §3.3)."""
        return (self.allocator << 32) | self.node

    @property
    def cbor(self) -> bytes:
        """The CBOR encoding of this EID in its remembered form."""
        return self._cbor

    @property
    def is_null(self) -> bool:
        """RFC 9758 §3.1/§3.3: ipn:0.0 is the null endpoint, and "any ipn URI with a zero (0)
        Allocator Identifier and a zero (0) Node Number, but a non-zero Service Number component
        is invalid ... processors of such ipn URIs MUST consider them as the Null ipn URI"."""
        return self.allocator == 0 and self.node == 0

    @property
    def is_singleton(self) -> bool:
        """RFC 9171 §4.2.5.1.2: "All BP endpoints identified by ipn-scheme endpoint IDs are
        singleton endpoints" (except the memberless null endpoint)."""
        return not self.is_null

    @property
    def is_node_id(self) -> bool:
        """RFC 9171 §4.2.5.1.2: only an ipn EID whose service number is zero may serve as a node
        ID."""
        return self.service == 0 and not self.is_null

    @property
    def node_id(self) -> IpnEID:
        """The node ID (service 0) of the node this EID names, in the same CBOR form."""
        if self.service == 0:
            return self
        node = self._node
        if node is None:  # built (and validated) once: EIDs are immutable
            node = IpnEID(self.allocator, self.node, 0, self.three_element)
            object.__setattr__(self, "_node", node)
        return node

    def __str__(self) -> str:
        text = self._text
        if text is None:
            node = "!" if self.node == IPN_LOCAL_NODE and self.allocator == 0 else str(self.node)
            if self.allocator == 0:
                text = f"ipn:{node}.{self.service}"
            else:
                text = f"ipn:{self.allocator}.{node}.{self.service}"
            object.__setattr__(self, "_text", text)
        return text


EndpointID = DtnEID | IpnEID
"""Any endpoint ID this codec understands."""

DTN_NONE = DtnEID("", "")
"""The null endpoint ``dtn:none`` (CBOR ``[1, 0]``)."""


def _eid_error(message: str, rule: str, section: str = "4.2.5.1", rfc: int = 9171) -> NoReturn:
    raise EIDError(message, rule=rule, section=section, rfc=rfc)


def _checked_dtn(node_name: str, demux: str) -> DtnEID:
    """Construct a dtn EID from received values, reporting invalid ones as :class:`EIDError`."""
    try:
        return DtnEID(node_name, demux)
    except EncodeError as exc:
        raise EIDError(exc.message, rule=exc.rule, section=exc.section, rfc=exc.rfc) from None


def _checked_ipn(allocator: int, node: int, service: int, three_element: bool) -> IpnEID:
    """Construct an ipn EID from received values, reporting invalid ones as :class:`EIDError`."""
    try:
        return IpnEID(allocator, node, service, three_element)
    except EncodeError as exc:
        raise EIDError(exc.message, rule=exc.rule, section=exc.section, rfc=exc.rfc) from None


def _dtn_from_ssp(ssp: str) -> DtnEID:
    # RFC 9171 §4.2.5.1.1: dtn-hier-part = "//" node-name name-delim demux
    if not ssp.startswith("//"):
        _eid_error(
            f"dtn SSP {_quoted(ssp)} must be 'none' or '//node-name/demux'", "dtn-ssp", "4.2.5.1.1"
        )
    node_name, delim, demux = ssp[2:].partition("/")
    if not delim:
        _eid_error(
            f"dtn SSP {_quoted(ssp)} lacks the '/' after the node name", "dtn-ssp", "4.2.5.1.1"
        )
    if not node_name:
        _eid_error(f"dtn SSP {_quoted(ssp)} has an empty node name", "dtn-node-name", "4.2.5.1.1")
    return _checked_dtn(node_name, demux)


_CACHE: dict[bytes, EndpointID] = {}
_TEXT_CACHE: dict[str, EndpointID] = {}
_CACHE_MAX = 4096
_CACHE_KEY_MAX = 128  # hostile input must not fill the caches with huge EIDs
"""Decoded EIDs by their exact CBOR bytes (and parsed EIDs by their text): a node sees the same
few EIDs over and over, and EIDs are immutable, so decoding one is usually a dictionary lookup."""


def parse_eid(text: str) -> EndpointID:
    """Parse endpoint ID URI text: ``dtn:none``, ``dtn://node/demux``, ``ipn:node.service``,
    ``ipn:allocator.node.service`` (``!`` as node means LocalNode). Raises :class:`EIDError`."""
    if not isinstance(text, str):
        _eid_error(f"EID text must be str, not {type(text).__name__}", "eid-text")
    eid = _TEXT_CACHE.get(text)
    if eid is not None:
        return eid
    eid = _parse_eid(text)
    if len(text) <= _CACHE_KEY_MAX:
        if len(_TEXT_CACHE) >= _CACHE_MAX:
            _TEXT_CACHE.clear()
        _TEXT_CACHE[text] = eid
    return eid


def _parse_eid(text: str) -> EndpointID:
    if len(text) > MAX_EID_LENGTH:  # (our policy, see MAX_EID_LENGTH)
        _eid_error(
            f"EID of {len(text)} characters is too long (at most {MAX_EID_LENGTH})",
            "eid-too-long",
        )
    scheme, colon, ssp = text.partition(":")
    scheme = scheme.lower()  # RFC 3986 §3.1: schemes are case-insensitive
    if not colon:
        _eid_error(f"{_quoted(text)} is not a URI (no scheme)", "eid-text")
    if scheme == "dtn":
        if ssp == "none":
            return DTN_NONE
        return _dtn_from_ssp(ssp)
    if scheme == "ipn":
        parts = ssp.split(".")
        if len(parts) not in (2, 3):
            _eid_error(
                f"ipn EID {_quoted(text)} must be ipn:node.service or ipn:allocator.node.service",
                "ipn-text",
                "3",
                9758,
            )
        if len(parts) == 2:
            parts.insert(0, "0")
        numbers = []
        for index, part in enumerate(parts):
            if index == 1 and part == "!":
                numbers.append(IPN_LOCAL_NODE)
            elif _NUMBER.match(part):
                numbers.append(int(part))
            else:
                _eid_error(
                    f"bad number {_quoted(part)} in ipn EID {_quoted(text)}", "ipn-text", "3", 9758
                )
        return _checked_ipn(numbers[0], numbers[1], numbers[2], numbers[0] != 0)
    _eid_error(
        f"unsupported EID scheme {_quoted(scheme)} in {_quoted(text)}",
        "eid-unknown-scheme",
        "4.2.5.1",
    )


# ---------------------------------------------------------------------------------------------
# CBOR bytes


_UINT_SIZE = bytes(
    1 if ib < 24 else {24: 2, 25: 3, 26: 5, 27: 9}.get(ib, 0) for ib in range(256)
)  # size of a CBOR unsigned integer item by its initial byte; 0 when not an unsigned integer


def decode_eid(data: bytes, pos: int, what: str = "EID") -> tuple[EndpointID, int]:
    """Decode the EID whose CBOR starts at ``data[pos]``; return it and the position after it.
    Raises :class:`EIDError` / :class:`~bpv7.errors.CBORError` (or ``IndexError`` when ``data``
    ends early — block decoders turn that into a ``cbor-truncated`` error)."""
    # Fast path: the usual shapes ([1, short text], [1, 0], [2, [uint, uint]]) seen before. The
    # cache holds only fully validated EIDs keyed by their exact bytes, so a hit needs no checks.
    if data[pos] == 0x82:
        scheme_byte = data[pos + 1]
        end = 0
        if scheme_byte == 1:
            ssp_byte = data[pos + 2]
            if 0x60 <= ssp_byte < 0x78:
                end = pos + 3 + ssp_byte - 0x60
            elif ssp_byte == 0x78:
                end = pos + 4 + data[pos + 3]
        elif scheme_byte == 2 and data[pos + 2] == 0x82:
            first = _UINT_SIZE[data[pos + 3]]
            if first:
                second = _UINT_SIZE[data[pos + 3 + first]]
                if second:
                    end = pos + 3 + first + second
        if end:
            cached = _CACHE.get(data[pos:end])
            if cached is not None:
                return cached, end
    start = pos
    # RFC 9171 §4.2.5.1: "Each BP endpoint ID (EID) SHALL be represented as a CBOR array
    # comprising two items."
    count, pos = read_array(data, pos, what)
    if count != 2 and count != INDEFINITE:
        _eid_error(f"{what}: EID array has {count} items, not 2", "eid-array")
    scheme, pos = read_uint(data, pos, f"{what} scheme")
    values: list[int] = []
    ssp_pos = pos
    if scheme == EIDScheme.DTN:
        ib = data[pos]
        if ib == 0:
            pos += 1
        elif ib >> 5 == MAJOR_TEXT:
            _, length, pos = read_head(data, pos)
            if length == INDEFINITE:
                _, pos = read_text(data, ssp_pos, what)
            else:
                pos += length
                if pos > len(data):
                    raise truncated()
        else:
            # RFC 9171 §4.2.5.1.1: "the scheme-specific part of a URI of the dtn scheme SHALL be
            # represented as a CBOR text string unless the EID's SSP is 'none', in which case the
            # SSP SHALL be represented as a CBOR unsigned integer with the value zero."
            if ib >> 5 == 0:
                _eid_error(f"{what}: dtn SSP integer must be 0", "dtn-ssp", "4.2.5.1.1")
            raise wrong_type(ib, "a text string or 0", f"{what} dtn SSP")
    elif scheme == EIDScheme.IPN:
        # RFC 9758 §6: the ipn SSP is a CBOR array of two ([fqnn, service]) or three
        # ([allocator, node, service]) unsigned integers.
        length, pos = read_array(data, pos, f"{what} ipn SSP")
        if length == INDEFINITE:
            while data[pos] != BREAK and len(values) < 4:
                value, pos = read_uint(data, pos, f"{what} ipn number")
                values.append(value)
            pos += 1
        elif length in (2, 3):
            for _ in range(length):
                value, pos = read_uint(data, pos, f"{what} ipn number")
                values.append(value)
        if len(values) not in (2, 3):
            _eid_error(f"{what}: ipn SSP must have 2 or 3 items", "ipn-ssp", "6", 9758)
    else:
        # RFC 9171 §4.2.5.1: the scheme code identifies the scheme "as defined in the registry of
        # URI scheme code numbers"; this codec knows dtn (1) and ipn (2) only.
        _eid_error(f"{what}: unsupported EID scheme code {scheme}", "eid-unknown-scheme")
    if count == INDEFINITE:
        if data[pos] != BREAK:
            _eid_error(f"{what}: EID array has more than 2 items", "eid-array")
        pos += 1
    key = data[start:pos]
    eid = _CACHE.get(key)
    if eid is not None:
        return eid, pos
    if scheme == EIDScheme.DTN:
        if data[ssp_pos] == 0:
            eid = DTN_NONE
        else:
            ssp, _ = read_text(data, ssp_pos, f"{what} dtn SSP")
            if ssp == "none":
                _eid_error(
                    f'{what}: dtn:none must be encoded as [1, 0], not [1, "none"]',
                    "dtn-none-encoding",
                    "4.2.5.1.1",
                )
            eid = _dtn_from_ssp(ssp)
    elif len(values) == 2:
        fqnn, service = values
        # RFC 9758 §6.1: in the two-element form the first item is the FQNN, the allocator in
        # its high 32 bits and the node number in its low 32 bits.
        eid = _checked_ipn(fqnn >> 32, fqnn & UINT32_MAX, service, False)
    else:
        eid = _checked_ipn(values[0], values[1], values[2], True)
    if len(key) <= _CACHE_KEY_MAX:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = eid
    return eid, pos


def eid_from_bytes(data: bytes | bytearray | memoryview, what: str = "EID") -> EndpointID:
    """Decode an EID from exactly the CBOR bytes ``data`` (no trailing bytes)."""
    raw = bytes(data)
    try:
        eid, end = decode_eid(raw, 0, what)
    except IndexError:
        raise truncated() from None
    if end != len(raw):
        _eid_error(f"{what}: {len(raw) - end} bytes after the EID", "eid-trailing-bytes")
    return eid


def eid_from_cbor(obj: object) -> EndpointID:
    """Convert an EID in the CBOR data model (``[1, 0]``, ``[1, "//node/demux"]``,
    ``[2, [fqnn, service]]``, ``[2, [allocator, node, service]]``, as cbor2 decodes them) to an
    :data:`EndpointID`. Raises :class:`EIDError`."""
    if not isinstance(obj, list | tuple) or len(obj) != 2:
        _eid_error(f"EID must be a 2-item array, not {obj!r:.60}", "eid-array")
    scheme, ssp = obj
    if type(scheme) is not int:
        _eid_error(f"EID scheme code must be an unsigned integer, not {scheme!r:.60}", "eid-array")
    if scheme == EIDScheme.DTN:
        if type(ssp) is int and ssp == 0:
            return DTN_NONE
        if isinstance(ssp, str) and ssp != "none":
            return _dtn_from_ssp(ssp)
        _eid_error(
            f"dtn SSP must be 0 or a '//node/demux' text string, not {ssp!r:.60}",
            "dtn-ssp",
            "4.2.5.1.1",
        )
    if scheme == EIDScheme.IPN:
        if (
            not isinstance(ssp, list | tuple)
            or len(ssp) not in (2, 3)
            or not all(type(v) is int and 0 <= v <= UINT64_MAX for v in ssp)
        ):
            _eid_error(
                f"ipn SSP must be 2 or 3 unsigned integers, not {ssp!r:.60}", "ipn-ssp", "6", 9758
            )
        if len(ssp) == 2:
            return _checked_ipn(ssp[0] >> 32, ssp[0] & UINT32_MAX, ssp[1], False)
        return _checked_ipn(ssp[0], ssp[1], ssp[2], True)
    _eid_error(f"unsupported EID scheme code {scheme}", "eid-unknown-scheme")


def eid_to_cbor(eid: EndpointID) -> list[object]:
    """The EID in the CBOR data model (the inverse of :func:`eid_from_cbor`)."""
    if isinstance(eid, DtnEID):
        return [1, 0] if eid.is_null else [1, eid.ssp]
    if eid.three_element:
        return [2, [eid.allocator, eid.node, eid.service]]
    return [2, [eid.fqnn, eid.service]]
