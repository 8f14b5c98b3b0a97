"""Wire forms of frozen dataclasses: one declarative schema for the UCP messages and the
application API.

A message is a frozen dataclass; its fields' type hints say how it travels, and
``Annotated[T, Wire(...)]`` on a field says what the hints cannot. :func:`to_wire` turns an
instance into plain CBOR data (a map with text keys, ready for ``cbor2.dumps``) and
:func:`from_wire` checks decoded CBOR data and builds the instance, whose own ``__post_init__``
validation runs as usual. The plan for each class is built once, on first use, from
``dataclasses.fields`` and ``typing.get_type_hints``.

Theory of the wire form
-----------------------
* **Keys.** A field travels under its name with ``-`` for ``_`` (``sent_at`` → ``sent-at``), or
  under ``Wire(key=...)``. Keys are written in field order, except that a class may name the
  fields to write first in ``_WIRE_ORDER`` (version 1 of the UCP messages was written by hand and
  its key order is kept, so every byte stays the same).
* **Types.** ``str`` text; ``bytes``; ``bool``; ``int`` an unsigned integer (0..2**64-1) unless
  ``Wire(min=..., max=...)`` says otherwise; ``float`` a finite number (an integer is accepted and
  read as a float); ``uuid.UUID`` 16 bytes; ``SomeIntEnum | int`` an unsigned integer, a known
  code becomes the enum member and an unknown one stays a plain ``int``; an ``IntFlag`` an
  unsigned integer (unknown bits kept); ``tuple[X, ...]`` an array; ``frozenset[X]`` a sorted
  array; ``Mapping[str, X]`` a map with text keys; a union of scalar types (``str | int | float |
  bool``) any of them; another dataclass a nested map, or an array of its fields in order if it
  sets ``_WIRE_ARRAY = True`` (extra elements are ignored, missing trailing ones take their
  defaults). ``Wire(codec=...)`` gives any other conversion (:class:`WireCodec`). ``Wire(min,
  max, choices, codec)`` constrain the field's values: the value itself, or the elements of an
  array or the values of a map.
* **Presence.** ``X | None`` and fields with a default are optional: a field equal to its default
  is left out, and one that is absent (or null) on the wire takes its default. A field without a
  default is always written and must be present (unless it is ``X | None``: absent reads as
  ``None``). ``Wire(required=True)`` makes a field with a default required on the wire (and
  always written); ``Wire(always=True)`` writes it even at its default; ``Wire(absent=value)``
  reads ``value`` when it is absent, instead of the field's default (and writes the field
  always).
* **Strictness.** Every value is checked against its type before the dataclass is built; keys
  the class does not know are ignored (a newer sender may add some). Anything wrong raises
  :class:`WireError`, which names the field by its path (``job.files['a']``, ``items[0].data``);
  each protocol turns it into its own error type. Nothing else escapes: no ``KeyError``, no
  ``TypeError`` from a constructor fed the wrong type.

Adding a message is writing its dataclass (plus registering its kind with the protocol, see
:mod:`ucp_dtn.ucp.messages` and :mod:`ucp_dtn.appapi.messages`); :func:`to_wire` and
:func:`from_wire` then handle it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

__all__ = [
    "UINT_MAX",
    "Wire",
    "WireCodec",
    "WireError",
    "from_wire",
    "to_wire",
    "type_name",
]

UINT_MAX: Final = 2**64 - 1
"""Largest CBOR unsigned integer (major type 0)."""
_INT_MIN: Final = -(2**63)

_T = TypeVar("_T")


class _Unset:
    """Marks "no value given" where ``None`` is a value."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


@dataclasses.dataclass(frozen=True, slots=True)
class WireCodec:
    """A conversion for values the type hints cannot describe (``Wire(codec=...)``)."""

    expected: str
    """What the wire value must be, for error messages: ``"bytes (inline) or text (a data
    name)"``."""
    decode: Callable[[Any], Any]
    """Plain CBOR data (never ``None``) → the Python value; raises :class:`WireError`."""
    encode: Callable[[Any], Any] | None = None
    """The Python value → plain CBOR data; ``None``: the value as it is."""


@dataclasses.dataclass(frozen=True, slots=True)
class Wire:
    """How one dataclass field travels, where its type hint does not say it all; used as
    ``name: Annotated[T, Wire(...)] = default``."""

    key: str | None = None
    """The wire key; ``None``: the attribute name with ``-`` for ``_``."""
    required: bool = False
    """Must be on the wire although the field has a default (and so is always written)."""
    always: bool = False
    """Written even when it equals the field's default."""
    absent: object = _UNSET
    """The value read when the key is absent or null, if not the field's default."""
    min: float | None = None
    """Smallest value of an ``int`` or ``float`` field (``int``: 0 unless given)."""
    max: float | None = None
    """Largest value of an ``int`` or ``float`` field (``int``: 2**64-1 unless given)."""
    choices: tuple[str, ...] | None = None
    """The only values a text field may have."""
    codec: WireCodec | None = None
    """A conversion of the field's values that replaces the one of their type."""


class WireError(Exception):
    """Wire data does not fit the schema. ``str()`` is one line naming the field's path."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        """What is wrong: ``"is missing"``, ``"must be text, got integer"``..."""
        self.path = path
        """The field: ``"job.files['a']"``, ``"items[0].data"``; ``""`` for the value itself."""

    def inside(self, step: str) -> WireError:
        """This error, seen from the map or array holding the value (``step`` is its key or
        ``[index]``)."""
        if not self.path:
            self.path = step
        else:
            self.path = step + ("" if self.path[0] == "[" else ".") + self.path
        return self

    def __str__(self) -> str:
        return f"field '{self.path}' {self.problem}" if self.path else self.problem


_TYPE_NAMES: Final[Mapping[type, str]] = {
    str: "text",
    bytes: "bytes",
    bool: "bool",
    int: "integer",
    float: "float",
    list: "array",
    dict: "map",
    type(None): "null",
}


def type_name(value: object) -> str:
    """The CBOR name of a decoded value's type, for error messages."""
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


# -- public API ---------------------------------------------------------------------------------


def to_wire(obj: Any, into: dict[str, Any] | None = None) -> Any:
    """The wire form of the dataclass instance ``obj``: a map (``dict``) with text keys, or a
    list for an ``_WIRE_ARRAY`` class. With ``into``, the fields are added to that map (after
    the keys it has, such as a protocol's envelope), which is returned."""
    plan = _plan(type(obj))
    return plan.encode(obj) if into is None else plan.encode_into(obj, into)


def from_wire(cls: type[_T], value: object) -> _T:
    """Check the wire data ``value`` and build a ``cls`` from it; :class:`WireError` (naming the
    field) if it does not fit. Errors of the class's own validation propagate."""
    result: _T = _plan(cls).decode(value)
    return result


# -- value types ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Type:
    """How values of one type hint travel."""

    expected: str
    """What the wire value must be (for ``must be ..., got null``)."""
    encode: Callable[[Any], Any] | None
    """Python → wire; ``None``: the value as it is."""
    decode: Callable[[Any], Any]
    """Wire (not ``None``) → Python; raises :class:`WireError` with the path below the value."""


def _wrong(expected: str, value: object) -> WireError:
    return WireError(f"must be {expected}, got {type_name(value)}")


def _wrong_integer(expected: str, value: object) -> WireError:
    if type(value) is int:  # out of range: the value says more than its type
        text = str(value)
        return WireError(
            f"must be {expected}, got {text if len(text) <= 24 else text[:21] + '...'}"
        )
    return _wrong(expected, value)


def _exact(pytype: type, expected: str) -> _Type:
    def decode(value: Any) -> Any:
        if type(value) is pytype:
            return value
        raise _wrong(expected, value)

    return _Type(expected, None, decode)


def _text(choices: tuple[str, ...] | None) -> _Type:
    if choices is None:
        return _exact(str, "text")
    allowed = frozenset(choices)
    listed = ", ".join(choices)

    def decode(value: Any) -> str:
        if type(value) is not str:
            raise _wrong("text", value)
        if value not in allowed:
            raise WireError(f"must be one of {listed}, got {value!r}")
        return value

    return _Type("text", None, decode)


def _integer(meta: Wire) -> _Type:
    low = 0 if meta.min is None else int(meta.min)
    high = UINT_MAX if meta.max is None else int(meta.max)
    expected = "an unsigned integer" if low >= 0 else "an integer"
    # Only a range narrower than CBOR's is worth stating; outside CBOR's, the type is wrong.
    stated = low > (0 if low >= 0 else _INT_MIN) or high < UINT_MAX

    def decode(value: Any) -> int:
        if type(value) is int and low <= value <= high:
            return value
        if stated and type(value) is int:
            raise WireError(f"must be within {low}..{high}, got {value}")
        raise _wrong_integer(expected, value)

    return _Type(expected, None, decode)


def _number(meta: Wire) -> _Type:
    low, high = meta.min, meta.max
    expected = "a finite number"
    if low is not None:
        expected += f" >= {low:g}"
    if high is not None:
        expected += f" <= {high:g}"

    def decode(value: Any) -> float:
        if (
            type(value) not in (int, float)
            or not math.isfinite(value)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise _wrong(expected, value)
        return float(value)

    return _Type(expected, None, decode)


def _uuid() -> _Type:
    def decode(value: Any) -> uuid.UUID:
        if type(value) is bytes and len(value) == 16:
            return uuid.UUID(bytes=value)
        raise _wrong("a 16-byte UUID", value)

    return _Type("a 16-byte UUID", _uuid_bytes, decode)


def _uuid_bytes(value: uuid.UUID) -> bytes:
    return value.bytes


def _code(codes: type[enum.IntEnum]) -> _Type:
    members: Mapping[int, Any] = codes._value2member_map_

    def decode(value: Any) -> int:
        if type(value) is not int or not 0 <= value <= UINT_MAX:
            raise _wrong_integer("an unsigned integer", value)
        return members.get(value, value)  # type: ignore[no-any-return]  # unknown: plain int

    return _Type("an unsigned integer", int, decode)


def _flags(flags: type[enum.IntFlag]) -> _Type:
    def decode(value: Any) -> enum.IntFlag:
        if type(value) is not int or not 0 <= value <= UINT_MAX:
            raise _wrong_integer("an unsigned integer", value)
        return flags(value)

    return _Type("an unsigned integer", int, decode)


_SCALAR_NAMES: Final[Mapping[type, str]] = {
    str: "text",
    bytes: "bytes",
    bool: "a bool",
    int: "an integer",
    float: "a float",
}


def _scalar_union(members: tuple[type, ...]) -> _Type:
    names = [_SCALAR_NAMES[member] for member in members]
    expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    allowed = frozenset(members)

    def decode(value: Any) -> Any:
        if type(value) in allowed:
            return value
        raise _wrong(expected, value)

    return _Type(expected, None, decode)


def _array(item: _Type) -> _Type:
    item_encode, item_decode = item.encode, item.decode

    def encode(values: Any) -> list[Any]:
        if item_encode is None:
            return list(values)
        return [item_encode(value) for value in values]

    def decode(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _wrong("an array", value)
        items = []
        for index, element in enumerate(value):
            try:
                items.append(item_decode(element))
            except WireError as exc:
                raise exc.inside(f"[{index}]") from None
        return tuple(items)

    return _Type("an array", encode, decode)


def _set(item: _Type) -> _Type:
    array = _array(item)
    array_decode = array.decode
    item_encode = item.encode

    def encode(values: Any) -> list[Any]:
        ordered = sorted(values)
        return ordered if item_encode is None else [item_encode(value) for value in ordered]

    def decode(value: Any) -> frozenset[Any]:
        return frozenset(array_decode(value))

    return _Type("an array", encode, decode)


def _map(item: _Type) -> _Type:
    item_encode, item_decode = item.encode, item.decode

    def encode(values: Mapping[str, Any]) -> dict[str, Any]:
        if item_encode is None:
            return dict(values)
        return {key: item_encode(value) for key, value in values.items()}

    def decode(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _wrong("a map", value)
        for key in value:
            if type(key) is not str:
                raise _wrong("a map with text keys", key)
        result = {}
        for key, element in value.items():
            try:
                result[key] = item_decode(element)
            except WireError as exc:
                raise exc.inside(f"[{key!r}]") from None
        return result

    return _Type("a map", encode, decode)


def _optional(inner: _Type) -> _Type:
    inner_encode = inner.encode
    if inner_encode is None:
        return inner

    def encode(value: Any) -> Any:
        return None if value is None else inner_encode(value)

    return _Type(inner.expected, encode, inner.decode)


def _nested(cls: type) -> _Type:
    # The nested class's plan is looked up on first use, so that classes may refer to each other.
    plan: _Plan | None = None

    def encode(value: Any) -> Any:
        nonlocal plan
        if plan is None:
            plan = _plan(cls)
        return plan.encode(value)

    def decode(value: Any) -> Any:
        nonlocal plan
        if plan is None:
            plan = _plan(cls)
        return plan.decode(value)

    return _Type("an array" if getattr(cls, "_WIRE_ARRAY", False) else "a map", encode, decode)


def _value_type(hint: Any, meta: Wire, where: str) -> _Type:
    """The wire type of the values of a field typed ``hint`` (Optional already removed)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _array(_value_type(args[0], meta, where))
    if origin is frozenset:
        return _set(_value_type(args[0], meta, where))
    if origin in (Mapping, dict):
        if args[0] is not str:
            raise TypeError(f"{where}: only mappings with text keys have a wire form")
        return _map(_value_type(args[1], meta, where))
    if meta.codec is not None:
        return _Type(meta.codec.expected, meta.codec.encode, meta.codec.decode)
    if origin in (typing.Union, types.UnionType):
        codes = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.IntEnum)]
        if len(codes) == 1 and set(args) == {codes[0], int}:
            return _code(codes[0])
        if all(arg in _SCALAR_NAMES for arg in args):
            return _scalar_union(args)
    if hint is str:
        return _text(meta.choices)
    if hint is bytes:
        return _exact(bytes, "bytes")
    if hint is bool:
        return _exact(bool, "a bool")
    if hint is float:
        return _number(meta)
    if hint is uuid.UUID:
        return _uuid()
    if isinstance(hint, type):
        if issubclass(hint, enum.IntFlag):
            return _flags(hint)
        if issubclass(hint, enum.IntEnum):
            return _code(hint)
        if hint is int:
            return _integer(meta)
        if dataclasses.is_dataclass(hint):
            return _nested(hint)
    raise TypeError(f"{where}: no wire form for {hint!r}; give it a Wire(codec=...)")


# -- per-class plans -------------------------------------------------------------------------------


_Encoder = tuple[str, str, Callable[[Any], Any] | None, bool, object]
_Decoder = tuple[str, str, Callable[[Any], Any], str, bool, object]


class _Plan:
    """Encoder and decoder of one dataclass, built once from its fields."""

    def __init__(self, cls: type) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__qualname__} is not a dataclass")
        self.cls = cls
        self.array = bool(getattr(cls, "_WIRE_ARRAY", False))
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
        order: tuple[str, ...] = getattr(cls, "_WIRE_ORDER", ())
        unknown = set(order) - set(fields)
        if unknown:
            raise TypeError(f"{cls.__qualname__}._WIRE_ORDER names no field {sorted(unknown)}")
        entries = {name: self._entries(cls, field, hints[name]) for name, field in fields.items()}
        wire_order = (*order, *(name for name in fields if name not in order))
        self.encoders = [entries[name][0] for name in wire_order]
        """In wire order: (attribute, key, encode, always, default); a field is written if
        ``always`` or unlike its default."""
        self.decoders = [entries[name][1] for name in fields]
        """In field order: (attribute, key, decode, expected, required, absent); an absent
        field takes ``absent``, or the class's default when that is unset."""
        self._compile_encoders()

    @staticmethod
    def _entries(cls: type, field: dataclasses.Field[Any], hint: Any) -> tuple[_Encoder, _Decoder]:
        meta = Wire()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            meta = next((extra for extra in extras if isinstance(extra, Wire)), meta)
        where = f"{cls.__qualname__}.{field.name}"
        args = typing.get_args(hint)
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and (
            type(None) in args
        )
        if optional:
            rest = tuple(arg for arg in args if arg is not type(None))
            hint = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
        value_type = _value_type(hint, meta, where)
        if optional:
            value_type = _optional(value_type)
        if field.default is not dataclasses.MISSING:
            default: object = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = _UNSET
        key = meta.key or field.name.replace("_", "-")
        always = default is _UNSET or meta.required or meta.always or meta.absent is not _UNSET
        required = meta.required or (default is _UNSET and not optional and meta.absent is _UNSET)
        absent = meta.absent
        if absent is _UNSET and default is _UNSET and optional:
            absent = None
        return (
            (field.name, key, value_type.encode, always, default),
            (field.name, key, value_type.decode, value_type.expected, required, absent),
        )

    def encode(self, obj: Any) -> Any:
        return self.encode_array(obj) if self.array else self.encode_into(obj, {})

    def _compile_encoders(self) -> None:
        """Write ``encode_into(obj, wire)`` (add the fields to ``wire``) and
        ``encode_array(obj)`` as straight-line Python, as :mod:`dataclasses` writes
        ``__init__``: a loop over the plan costs ~15% more per message."""
        namespace: dict[str, Any] = {}
        into = ["def encode_into(obj, wire):"]
        array = []
        for index, (name, key, encode, always, default) in enumerate(self.encoders):
            value = "value"
            if encode is None:
                array.append(f"obj.{name}")
            else:
                namespace[f"encode_{index}"] = encode
                value = f"encode_{index}(value)"
                array.append(f"encode_{index}(obj.{name})")
            into.append(f"    value = obj.{name}")
            if always:
                into.append(f"    wire[{key!r}] = {value}")
                continue
            namespace[f"default_{index}"] = default
            test = "is not None" if default is None else f"!= default_{index}"
            into.append(f"    if value {test}:")
            into.append(f"        wire[{key!r}] = {value}")
        into.append("    return wire")
        source = "\n".join(into) + f"\ndef encode_array(obj):\n    return [{', '.join(array)}]\n"
        exec(source, namespace)  # our own source, from identifiers and indices
        self.encode_into: Callable[[Any, dict[str, Any]], dict[str, Any]] = namespace["encode_into"]
        """Add the fields of an instance to a map, in wire order; returns the map."""
        self.encode_array: Callable[[Any], list[Any]] = namespace["encode_array"]
        """The fields of an instance as an array, in field order (``_WIRE_ARRAY`` classes)."""

    def decode(self, value: Any) -> Any:
        if self.array:
            return self._decode_array(value)
        if type(value) is not dict:
            raise _wrong("a map", value)
        arguments: dict[str, Any] = {}
        for name, key, decode, expected, required, absent in self.decoders:
            item = value.get(key)
            if item is None:
                if required:
                    if key not in value:
                        raise WireError("is missing", key)
                    raise WireError(f"must be {expected}, got null", key)
                if absent is not _UNSET:
                    arguments[name] = absent
                continue
            try:
                arguments[name] = decode(item)
            except WireError as exc:
                raise exc.inside(key) from None
        return self.cls(**arguments)

    def _decode_array(self, value: Any) -> Any:
        if type(value) is not list:
            raise _wrong("an array", value)
        arguments: dict[str, Any] = {}
        for index, (name, _, decode, _, required, _) in enumerate(self.decoders):
            if index >= len(value):
                if required:
                    raise WireError("is missing", f"[{index}]")
                break
            try:
                arguments[name] = decode(value[index])
            except WireError as exc:
                raise exc.inside(f"[{index}]") from None
        return self.cls(**arguments)


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _Plan(cls)
    return plan
