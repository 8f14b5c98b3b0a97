"""The JSON form of a bundle, both ways: :func:`bundle_to_json` and :func:`bundle_from_json`.

This is what ``python -m bpv7 decode`` prints and ``python -m bpv7 encode`` reads. The shape::

    {
      "primary": {
        "version": 7,
        "flags": 4,                      # bundle processing control flags (int, authoritative)
        "flag_names": ["MUST_NOT_FRAGMENT"],
        "crc_type": 2, "crc_type_name": "CRC32C",
        "crc_verified": true,            # null when the block has no CRC
        "destination": "ipn:5.7", "source": "dtn://a/", "report_to": "dtn://a/",
        "creation": {"time_ms": 1000, "sequence": 2, "utc": "2000-01-01T00:00:01.000+00:00"},
        "lifetime_ms": 3600000,
        "fragment_offset": null, "total_adu_length": null
      },
      "blocks": [                        # transmission order; the payload block is last
        {"type_code": 10, "type": "HOP_COUNT", "number": 2, "flags": 0, "flag_names": [],
         "crc_type": 2, "crc_type_name": "CRC32C", "crc_verified": true,
         "data": "821e01", "hop_count": {"limit": 30, "count": 1}},
        {"type_code": 6, ..., "previous_node": "ipn:9.0"},
        {"type_code": 7, ..., "bundle_age_ms": 55},
        {"type_code": 1, "type": "PAYLOAD", "number": 1, ..., "data": "68656c6c6f"}
      ],
      "payload_length": 5,
      "admin_record": {...}              # only for administrative records, when bpv7.admin exists
    }

A BIB or BCB also shows its abstract security block (RFC 9172 §3.6) decoded under ``security``
(targets, context id and name, flags, source, parameters and results as ``{"id", "value"}``,
byte strings in hex); a block that a BCB encrypts shows ``"encrypted_by": <BCB number>`` and no
decoded contents. With keys (``python -m bpv7 decode --key ...``) the top level also has
``security_operations``, one entry per operation with its ``outcome`` (``verified``,
``decrypted``, ``failed``, ``no-key``, ``unsupported``, ``skipped``), ``reason`` and, for a
signature checked through the signer's certificate chain, ``signer``, and each decrypted block
has ``decrypted``: its plaintext ``data`` and decoded contents.

``data`` is the block-type-specific data in hex (for the payload block: the payload). EIDs are
URI text. An ipn EID's CBOR form follows its text: three components (``ipn:0.5.7``) mean the
three-element form, two (``ipn:5.7``) the two-element form; the one form text cannot express (a
non-zero allocator in the two-element FQNN form) is written ``{"uri": "ipn:1.5.7",
"ipn_elements": 2}``.

Reading JSON back, the informational fields (``crc_verified``, ``utc``, ``payload_length``,
``admin_record``, ``security``, ``encrypted_by``, ``decrypted``, ``security_operations``) are
ignored and CRCs are computed afresh. A field and its redundant companion
(``flags``/``flag_names``, ``type_code``/``type``, ``crc_type``/``crc_type_name``, ``data`` and a
decoded extension field such as ``hop_count``) may be given alone or together; given together they
must agree. ``data`` given with a decoded field is kept byte for byte, so decode → encode
reproduces the input bytes of a bundle whose CRCs were computed the usual way.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum, IntFlag
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .blocks import (
    BundleAgeBlock,
    CanonicalBlock,
    ExtensionValue,
    HopCountBlock,
    PreviousNodeBlock,
)
from .bundle import Bundle
from .codes import BlockFlags, BlockType, BundleFlags
from .crc import CRCType
from .eid import DtnEID, EndpointID, IpnEID, parse_eid
from .errors import DecodeError, EncodeError
from .primary import BP_VERSION, CreationTimestamp, PrimaryBlock, unix_from_dtn_time
from .security_blocks import AbstractSecurityBlock, SecurityContextId, read_targets

if TYPE_CHECKING:
    from .bpsec.processing import SecurityProcessing as SecurityView

__all__ = ["BundleJSONError", "bundle_from_json", "bundle_to_json", "eid_from_json", "eid_to_json"]

logger = logging.getLogger(__name__)

UINT64_MAX = 0xFFFFFFFFFFFFFFFF

JSONObject = dict[str, Any]
"""A JSON object as :func:`json.loads` returns it."""


class BundleJSONError(ValueError):
    """The JSON form of a bundle has a missing or invalid field (a local input error)."""

    field: str
    """Path of the offending field, e.g. ``"blocks[1].crc_type"``."""
    message: str
    """What is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# ---------------------------------------------------------------------------------------------
# Bundle -> JSON


def eid_to_json(eid: EndpointID) -> str | JSONObject:
    """The JSON form of an EID: its URI text, with the ipn component count telling the CBOR
    form (see the module docstring)."""
    if isinstance(eid, IpnEID):
        text = str(eid)
        if eid.three_element == (eid.allocator != 0):
            return text
        if eid.three_element:
            # Three-element form with the default allocator: spell the allocator out.
            return "ipn:0." + text[len("ipn:") :]
        return {"uri": text, "ipn_elements": 2}
    return str(eid)


def _flag_names(value: int, flag_type: type[IntFlag]) -> list[str]:
    return [member.name for member in flag_type if member & value and member.name is not None]


def _utc_text(time_ms: int) -> str | None:
    if time_ms == 0:
        return None  # RFC 9171 §4.2.6: "The DTN time value zero indicates that the time is unknown"
    try:
        moment = datetime.fromtimestamp(unix_from_dtn_time(time_ms), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds")


def _primary_to_json(primary: PrimaryBlock) -> JSONObject:
    creation = primary.creation
    return {
        "version": primary.version,
        "flags": int(primary.flags),
        "flag_names": _flag_names(primary.flags, BundleFlags),
        "crc_type": int(primary.crc_type),
        "crc_type_name": primary.crc_type.name,
        # A Bundle's CRCs are always right: decode_bundle checked every received CRC and a
        # locally built block gets a freshly computed one.
        "crc_verified": True if primary.crc_type else None,
        "destination": eid_to_json(primary.destination),
        "source": eid_to_json(primary.source),
        "report_to": eid_to_json(primary.report_to),
        "creation": {
            "time_ms": creation.time_ms,
            "sequence": creation.sequence,
            "utc": _utc_text(creation.time_ms),
        },
        "lifetime_ms": primary.lifetime_ms,
        "fragment_offset": primary.fragment_offset,
        "total_adu_length": primary.total_adu_length,
    }


def _block_to_json(block: CanonicalBlock, encrypted_by: int | None = None) -> JSONObject:
    type_code = block.type_code
    result: JSONObject = {
        "type_code": int(type_code),
        "type": type_code.name if isinstance(type_code, BlockType) else None,
        "number": block.number,
        "flags": int(block.flags),
        "flag_names": _flag_names(block.flags, BlockFlags),
        "crc_type": int(block.crc_type),
        "crc_type_name": block.crc_type.name,
        "crc_verified": True if block.crc_type else None,
        "data": block.data.hex(),
    }
    if encrypted_by is not None:
        # RFC 9172 §3.8: the data is ciphertext, opaque until decrypted.
        result["encrypted_by"] = encrypted_by
        return result
    result.update(_block_contents(block))
    return result


def _block_contents(block: CanonicalBlock) -> JSONObject:
    """The decoded contents of an extension block or a BIB/BCB (a Bundle's extension blocks were
    checked against their types when it was made)."""
    type_code = block.type_code
    if type_code == BlockType.PREVIOUS_NODE:
        return {"previous_node": eid_to_json(PreviousNodeBlock.decode_data(block.data).node)}
    if type_code == BlockType.BUNDLE_AGE:
        return {"bundle_age_ms": BundleAgeBlock.decode_data(block.data).age_ms}
    if type_code == BlockType.HOP_COUNT:
        hops = HopCountBlock.decode_data(block.data)
        return {"hop_count": {"limit": hops.limit, "count": hops.count}}
    if type_code in (BlockType.BIB, BlockType.BCB):
        try:
            asb = AbstractSecurityBlock.decode(block.data)
        except DecodeError as exc:  # only a BIB decrypted from a BCB can be malformed here
            return {"security_error": exc.message}
        return {"security": _security_json(asb)}
    return {}


def _security_json(asb: AbstractSecurityBlock) -> JSONObject:
    context = asb.context_id
    return {
        "targets": list(asb.targets),
        "context_id": int(context),
        "context_name": context.name if isinstance(context, SecurityContextId) else None,
        "context_flags": asb.context_flags,
        "source": eid_to_json(asb.source),
        "parameters": [{"id": i, "value": _jsonable(v)} for i, v in asb.parameters],
        "results": [[{"id": i, "value": _jsonable(v)} for i, v in items] for items in asb.results],
    }


def bundle_to_json(
    bundle: Bundle, *, admin_record: bool = True, security: SecurityView | None = None
) -> JSONObject:
    """The JSON form of ``bundle`` (a dict ready for :func:`json.dumps`).

    With ``admin_record`` (the default), the payload of an administrative record is also decoded
    with :mod:`bpv7.admin` when that module is available; its :class:`DecodeError` (an
    unintelligible record) propagates. Blocks that a BCB encrypts show ``encrypted_by`` instead
    of decoded contents; with ``security`` (what :func:`bpv7.bpsec.process_security` returned)
    the JSON also lists every security operation's outcome and shows decrypted blocks decoded.
    """
    encrypted = bundle.encrypted_blocks
    blocks = [_block_to_json(block, encrypted.get(block.number)) for block in bundle.blocks]
    result: JSONObject = {
        "primary": _primary_to_json(bundle.primary),
        "blocks": blocks,
        "payload_length": len(bundle.payload_block.data_view),
    }
    if security is not None:
        plaintext = security.plaintext
        for view, block in zip(blocks, bundle.blocks, strict=True):
            decrypted = plaintext.get(block.number)
            if decrypted is not None:
                view["decrypted"] = {"data": decrypted.data.hex(), **_block_contents(decrypted)}
        operations: list[JSONObject] = []
        for op in security.operations:
            entry: JSONObject = {
                "security_block": op.security_block,
                "service": "integrity" if op.block_type == BlockType.BIB else "confidentiality",
                "target": op.target,
                "context_id": int(op.context_id),
                "source": eid_to_json(op.source),
                "outcome": str(op.outcome),
                "reason": op.reason or None,
            }
            if op.signer is not None:
                entry["signer"] = op.signer
            operations.append(entry)
        result["security_operations"] = operations
    if admin_record and bundle.is_admin_record and 1 not in encrypted:
        record = _admin_record_json(bundle.payload)
        if record is not None:
            result["admin_record"] = record
    return result


def _admin_record_json(payload: bytes) -> JSONObject | None:
    """The decoded administrative record, or ``None`` when :mod:`bpv7.admin` is not there.

    The record is rendered generically (its dataclass fields; EIDs as text, bytes as hex, an
    ``IntEnum`` field as its code plus ``<field>_name``), so this module needs no knowledge of
    each record type."""
    try:
        admin = importlib.import_module(f"{__package__}.admin")
    except ImportError:
        logger.debug("bpv7.admin is not available; administrative record left undecoded")
        return None
    decode = getattr(admin, "decode_admin_record", None)
    if decode is None:
        logger.debug("bpv7.admin has no decode_admin_record; record left undecoded")
        return None
    record = decode(payload)
    result: JSONObject = {"kind": type(record).__name__}
    record_type_of = getattr(admin, "record_type_of", None)
    if record_type_of is not None:
        _put_code(result, "record_type", record_type_of(record))
    value = _jsonable(record)
    if isinstance(value, dict):
        result.update(value)
    else:
        result["value"] = value
    return result


def _put_code(result: JSONObject, key: str, value: object) -> None:
    """``result[key]`` = the integer, and ``result[key + "_name"]`` = the member name (or
    ``None`` for a code without a member)."""
    result[key] = int(value) if isinstance(value, int) else _jsonable(value)
    result[f"{key}_name"] = value.name if isinstance(value, Enum) else None


def _jsonable(value: object) -> Any:
    """A JSON-ready form of a codec value (dataclasses, EIDs, enums, bytes, sequences)."""
    if isinstance(value, DtnEID | IpnEID):
        return eid_to_json(value)
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, Enum):
        return int(value.value) if isinstance(value.value, int) else value.name
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        result: JSONObject = {}
        for item in fields(value):
            if item.name.startswith("_"):
                continue
            member = getattr(value, item.name)
            if isinstance(member, Enum) and not isinstance(member, IntFlag):
                _put_code(result, item.name, member)
            else:
                result[item.name] = _jsonable(member)
        return result
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return repr(value)


# ---------------------------------------------------------------------------------------------
# JSON -> Bundle


def _fail(path: str, message: str) -> NoReturn:
    raise BundleJSONError(path, message)


def _object(value: object, path: str) -> JSONObject:
    if not isinstance(value, dict):
        _fail(path, f"must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r:.40}"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _required(obj: JSONObject, key: str, path: str) -> object:
    if key not in obj:
        _fail(_join(path, key), "missing")
    return obj[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _uint(value: object, path: str, limit: int = UINT64_MAX) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        _fail(path, f"must be an unsigned integer up to {limit}, not {_json_type(value)}")
    return value


def _optional_uint(obj: JSONObject, key: str, path: str) -> int | None:
    value = obj.get(key)
    return None if value is None else _uint(value, _join(path, key))


_HEX_WHITESPACE = re.compile(r"\s+")


def _hex(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        _fail(path, f"must be a hex string, not {_json_type(value)}")
    try:
        return bytes.fromhex(_HEX_WHITESPACE.sub("", value))
    except ValueError:
        _fail(path, "is not valid hex")


def eid_from_json(value: object, path: str = "eid") -> EndpointID:
    """Read an EID in the JSON form :func:`eid_to_json` writes; raises :class:`BundleJSONError`
    naming ``path``."""
    elements: object = None
    if isinstance(value, dict):
        text = _required(value, "uri", path)
        elements = value.get("ipn_elements")
        if elements not in (None, 2, 3):
            _fail(_join(path, "ipn_elements"), "must be 2 or 3")
        path = _join(path, "uri")
    else:
        text = value
    if not isinstance(text, str):
        _fail(path, f"must be EID URI text, not {_json_type(text)}")
    try:
        eid = parse_eid(text)
    except DecodeError as exc:
        _fail(path, exc.message)
    if isinstance(eid, IpnEID):
        three = elements == 3 if elements is not None else text.count(".") == 2
        if eid.three_element != three:
            eid = IpnEID(eid.allocator, eid.node, eid.service, three)
    elif elements is not None:
        _fail(path, "ipn_elements applies to ipn EIDs only")
    return eid


_E = TypeVar("_E", bound=Enum)


def _name_lookup(enum: type[_E], name: object, path: str) -> _E:
    if not isinstance(name, str) or name not in enum.__members__:
        known = ", ".join(enum.__members__)
        _fail(path, f"must be one of {known}, not {_json_type(name)}")
    return enum.__members__[name]


def _code(
    obj: JSONObject, path: str, code_key: str, name_key: str, enum: type[IntFlag] | type[Enum]
) -> int:
    """A code given as ``code_key`` (an integer), as ``name_key`` (the member name), or both."""
    if code_key in obj:
        code = _uint(obj[code_key], _join(path, code_key))
        name = obj.get(name_key)
        if name is not None:
            member = _name_lookup(enum, name, _join(path, name_key))
            if member.value != code:
                _fail(
                    _join(path, name_key),
                    f"{name} does not match {code_key} {code}; give one of them",
                )
        return code
    if obj.get(name_key) is None:
        _fail(_join(path, code_key), "missing")
    return int(_name_lookup(enum, obj[name_key], _join(path, name_key)).value)


def _flags(obj: JSONObject, path: str, flag_type: type[IntFlag]) -> int:
    """Flags given as ``flags`` (an integer), ``flag_names`` (a list of names), or both."""
    names = obj.get("flag_names")
    named = 0
    if names is not None:
        if not isinstance(names, list):
            _fail(_join(path, "flag_names"), f"must be an array, not {_json_type(names)}")
        for index, name in enumerate(names):
            named |= int(_name_lookup(flag_type, name, f"{path}.flag_names[{index}]"))
    if "flags" not in obj:
        if names is None:
            _fail(_join(path, "flags"), "missing")
        return named
    value = _uint(obj["flags"], _join(path, "flags"))
    known = sum(int(member) for member in flag_type)
    if names is not None and value & known != named:
        _fail(
            _join(path, "flag_names"),
            f"{names} does not match flags {value:#x}; give one of them",
        )
    return value


def _crc_type(obj: JSONObject, path: str) -> CRCType:
    code = _code(obj, path, "crc_type", "crc_type_name", CRCType)
    if code not in CRCType._value2member_map_:
        # RFC 9171 §4.2.1: "the following values (and no others) are valid: 0 ..., 1 ..., 2"
        _fail(_join(path, "crc_type"), f"{code} is not a CRC type (0, 1 or 2)")
    return CRCType(code)


def _primary_from_json(obj: JSONObject) -> PrimaryBlock:
    path = "primary"
    version = obj.get("version", BP_VERSION)
    if version != BP_VERSION:
        # RFC 9171 §4.3.1 Version: "The present document describes BPv7."
        _fail(_join(path, "version"), f"must be {BP_VERSION}, not {_json_type(version)}")
    flags = _flags(obj, path, BundleFlags)
    crc_type = _crc_type(obj, path)
    destination = eid_from_json(_required(obj, "destination", path), _join(path, "destination"))
    source = eid_from_json(_required(obj, "source", path), _join(path, "source"))
    report_to = eid_from_json(_required(obj, "report_to", path), _join(path, "report_to"))
    creation_path = _join(path, "creation")
    creation_obj = _object(_required(obj, "creation", path), creation_path)
    creation = CreationTimestamp(
        _uint(_required(creation_obj, "time_ms", creation_path), f"{creation_path}.time_ms"),
        _uint(_required(creation_obj, "sequence", creation_path), f"{creation_path}.sequence"),
    )
    lifetime = _uint(_required(obj, "lifetime_ms", path), _join(path, "lifetime_ms"))
    try:
        return PrimaryBlock(
            flags,  # type: ignore[arg-type]  # PrimaryBlock converts an int to BundleFlags
            crc_type,
            destination,
            source,
            report_to,
            creation,
            lifetime,
            _optional_uint(obj, "fragment_offset", path),
            _optional_uint(obj, "total_adu_length", path),
        )
    except EncodeError as exc:
        _fail(path, str(exc))


_EXTENSION_KEYS: dict[int, str] = {
    BlockType.PREVIOUS_NODE: "previous_node",
    BlockType.BUNDLE_AGE: "bundle_age_ms",
    BlockType.HOP_COUNT: "hop_count",
}
"""The JSON key of the decoded contents of each extension block type of RFC 9171 §4.4."""


def _extension_value(type_code: int, value: object, path: str) -> ExtensionValue:
    """The extension value of the block's decoded field ``value`` (at ``path``)."""
    if type_code == BlockType.PREVIOUS_NODE:
        return PreviousNodeBlock(eid_from_json(value, path))
    if type_code == BlockType.BUNDLE_AGE:
        return BundleAgeBlock(_uint(value, path))
    hops = _object(value, path)
    limit = _uint(_required(hops, "limit", path), f"{path}.limit")
    return HopCountBlock(limit, _uint(_required(hops, "count", path), f"{path}.count"))


def _block_data(obj: JSONObject, path: str, type_code: int) -> bytes:
    """The block-type-specific data, from ``data`` and/or the decoded extension field."""
    key = _EXTENSION_KEYS.get(type_code)
    if key is None or key not in obj:
        return _hex(_required(obj, "data", path), _join(path, "data"))
    try:
        value = _extension_value(type_code, obj[key], _join(path, key))
    except EncodeError as exc:
        _fail(_join(path, key), str(exc))
    if "data" not in obj:
        return value.encode_data()
    given = _hex(obj["data"], _join(path, "data"))
    try:
        agrees = type(value).decode_data(given) == value
    except DecodeError:
        agrees = False
    if not agrees:
        _fail(_join(path, "data"), f"does not match {key}; give one of them")
    return given


def _block_from_json(
    obj: JSONObject, path: str, encrypted: frozenset[int] = frozenset()
) -> CanonicalBlock:
    type_code = _code(obj, path, "type_code", "type", BlockType)
    number = _uint(_required(obj, "number", path), _join(path, "number"))
    flags = _flags(obj, path, BlockFlags)
    crc_type = _crc_type(obj, path)
    try:
        if number in encrypted:
            # RFC 9172 §3.8: a BCB's target holds ciphertext; only its data is read.
            data = _hex(_required(obj, "data", path), _join(path, "data"))
            return CanonicalBlock.opaque(type_code, number, flags, crc_type, data)
        data = _block_data(obj, path, type_code)
        return CanonicalBlock(type_code, number, flags, crc_type, data)
    except EncodeError as exc:
        _fail(path, str(exc))


def _encrypted_numbers(items: list[object]) -> frozenset[int]:
    """The targets of the BCBs among the JSON blocks (read from their ``data``)."""
    numbers: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        code = item.get("type_code", BlockType.__members__.get(str(item.get("type")), None))
        data = item.get("data")
        if code == BlockType.BCB and isinstance(data, str):
            try:
                numbers.update(read_targets(bytes.fromhex(data)) or ())
            except ValueError:
                continue
    return frozenset(numbers)


def bundle_from_json(obj: object, *, waive: tuple[str, ...] = ()) -> Bundle:
    """Build the bundle described by ``obj`` (the JSON form :func:`bundle_to_json` writes, as
    :func:`json.loads` returns it). CRCs are computed afresh. ``waive`` names rules of
    :data:`bpv7.bundle.WAIVABLE_RULES` the bundle need not meet.

    Raises :class:`BundleJSONError` naming the field for a missing or invalid field (including
    a field whose value breaks an RFC rule about one block), and
    :class:`~bpv7.errors.EncodeError` when the blocks together break a bundle-level rule."""
    top = _object(obj, "bundle")
    primary = _primary_from_json(_object(_required(top, "primary", ""), "primary"))
    blocks_value = _required(top, "blocks", "")
    if not isinstance(blocks_value, list):
        _fail("blocks", f"must be an array, not {_json_type(blocks_value)}")
    encrypted = _encrypted_numbers(blocks_value)
    blocks = tuple(
        _block_from_json(_object(item, f"blocks[{index}]"), f"blocks[{index}]", encrypted)
        for index, item in enumerate(blocks_value)
    )
    return Bundle(primary, blocks, frozenset(waive))
