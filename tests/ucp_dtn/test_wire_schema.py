"""The wire schema's rules, one by one, on small dataclasses of this test (the real messages'
wire forms are pinned in ucp/test_wire_pinned.py and test_appapi_pinned.py)."""

from __future__ import annotations

import contextlib
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.wire_schema import Wire, WireCodec, WireError, from_wire, to_wire


class Colour(enum.IntEnum):
    RED = 1
    GREEN = 2


class Flags(enum.IntFlag):
    A = 1
    B = 2


@dataclass(frozen=True, slots=True)
class Point:
    _WIRE_ARRAY: ClassVar[bool] = True

    x: Annotated[float, Wire(min=0)] = 0.0
    y: Annotated[float, Wire(min=0)] = 0.0


@dataclass(frozen=True, slots=True)
class Inner:
    name: str
    size: int = 0


def _upper(value: object) -> str:
    if type(value) is not str:
        raise WireError("must be lower-case text")
    return value.upper()


SHOUT = WireCodec("lower-case text", decode=_upper, encode=str.lower)


@dataclass(frozen=True, slots=True)
class Sample:
    _WIRE_ORDER: ClassVar[tuple[str, ...]] = ("request_id", "reply_to")

    request_id: int
    sent_at: float
    code: Colour | int = Colour.RED
    flags: Flags = Flags.A
    job: uuid.UUID | None = None
    note: Annotated[str, Wire(key="n")] = ""
    count: Annotated[int, Wire(required=True)] = 1
    full: Annotated[bool, Wire(always=True)] = False
    level: Annotated[int, Wire(min=1, max=9, absent=5)] = 5
    signed: Annotated[int | None, Wire(min=-(2**63))] = None
    kinds: Annotated[frozenset[str], Wire(choices=("a", "b", "c"))] = frozenset()
    items: tuple[Inner, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    point: Point = field(default_factory=Point)
    shout: Annotated[str | None, Wire(codec=SHOUT)] = None
    reply_to: str | None = None


MINIMAL = Sample(7, 1.5)
FULL = Sample(
    request_id=7,
    sent_at=1.5,
    code=Colour.GREEN,
    flags=Flags.A | Flags.B,
    job=uuid.UUID(int=1),
    note="hi",
    count=3,
    full=True,
    level=9,
    signed=-3,
    kinds=frozenset({"c", "a"}),
    items=(Inner("x", 2), Inner("y")),
    tags={"k": "v"},
    extra={"gpu": True, "n": 3},
    point=Point(1.0, 2.5),
    shout="LOUD",
    reply_to="dtn://b/",
)


def error(cls: type[Any], value: object) -> str:
    with pytest.raises(WireError) as info:
        from_wire(cls, value)
    return str(info.value)


def test_a_minimal_instance_writes_what_has_no_default_and_what_is_always_written() -> None:
    assert to_wire(MINIMAL) == {
        "request-id": 7,
        "sent-at": 1.5,
        "count": 1,  # required on the wire although it has a default
        "full": False,  # always written
        "level": 5,  # has an "absent" value: always written
    }
    assert from_wire(Sample, to_wire(MINIMAL)) == MINIMAL


def test_a_full_instance_in_wire_order() -> None:
    wire = to_wire(FULL)
    assert list(wire) == [
        "request-id",
        "reply-to",  # _WIRE_ORDER first, then declaration order
        "sent-at",
        "code",
        "flags",
        "job",
        "n",
        "count",
        "full",
        "level",
        "signed",
        "kinds",
        "items",
        "tags",
        "extra",
        "point",
        "shout",
    ]
    assert wire["code"] == 2 and type(wire["code"]) is int
    assert wire["flags"] == 3 and type(wire["flags"]) is int
    assert wire["job"] == uuid.UUID(int=1).bytes
    assert wire["kinds"] == ["a", "c"]  # a set travels sorted
    assert wire["items"] == [{"name": "x", "size": 2}, {"name": "y"}]
    assert wire["point"] == [1.0, 2.5]
    assert wire["shout"] == "loud"
    assert from_wire(Sample, cbor2.loads(cbor2.dumps(wire))) == FULL


def test_into_adds_the_fields_after_an_envelope() -> None:
    wire = to_wire(MINIMAL, {"v": 1, "t": "sample"})
    assert list(wire)[:3] == ["v", "t", "request-id"]


def test_absent_and_null_read_as_the_default_or_the_absent_value() -> None:
    wire = {"request-id": 7, "sent-at": 1.5, "count": 1, "level": None, "note": None}
    assert from_wire(Sample, wire) == MINIMAL
    assert from_wire(Sample, wire | {"n": "x", "unknown": [1, 2]}).note == "x"


def test_codes_flags_and_scalar_unions() -> None:
    decoded = from_wire(Sample, to_wire(MINIMAL) | {"code": 99, "flags": 64 | 1})
    assert decoded.code == 99 and type(decoded.code) is int  # unknown code: plain int
    assert decoded.flags == 65 and Flags.A in decoded.flags  # unknown bits kept
    assert from_wire(Sample, to_wire(MINIMAL) | {"code": 2}).code is Colour.GREEN


def test_array_form_ignores_extra_elements_and_defaults_missing_ones() -> None:
    assert from_wire(Point, [1, 2, 3]) == Point(1.0, 2.0)
    assert from_wire(Point, [4]) == Point(4.0, 0.0)
    assert error(Point, [1, -2.0]) == "field '[1]' must be a finite number >= 0, got float"
    assert error(Point, {"x": 1}) == "must be an array, got map"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"request-id": None}, "field 'request-id' must be an unsigned integer, got null"),
        ({"request-id": -1}, "field 'request-id' must be an unsigned integer, got -1"),
        ({"request-id": 2**64}, "field 'request-id' must be an unsigned integer, got 184467"),
        ({"request-id": True}, "field 'request-id' must be an unsigned integer, got bool"),
        ({"sent-at": float("inf")}, "field 'sent-at' must be a finite number, got float"),
        ({"sent-at": "1"}, "field 'sent-at' must be a finite number, got text"),
        ({"count": None}, "field 'count' must be an unsigned integer, got null"),
        ({"level": 0}, "field 'level' must be within 1..9, got 0"),
        ({"level": "x"}, "field 'level' must be an unsigned integer, got text"),
        ({"signed": 2.0}, "field 'signed' must be an integer, got float"),
        ({"signed": -(2**63) - 1}, "field 'signed' must be an integer, got -9223372036854775809"),
        ({"code": -1}, "field 'code' must be an unsigned integer, got -1"),
        ({"job": b"short"}, "field 'job' must be a 16-byte UUID, got bytes"),
        ({"full": 1}, "field 'full' must be a bool, got integer"),
        ({"kinds": ["a", "d"]}, "field 'kinds[1]' must be one of a, b, c, got 'd'"),
        ({"kinds": "a"}, "field 'kinds' must be an array, got text"),
        ({"items": [{"size": 1}]}, "field 'items[0].name' is missing"),
        ({"items": [{"name": "x"}, 5]}, "field 'items[1]' must be a map, got integer"),
        ({"tags": {1: "v"}}, "field 'tags' must be a map with text keys, got integer"),
        ({"tags": {"k": b"v"}}, "field 'tags['k']' must be text, got bytes"),
        ({"extra": {"k": []}}, "field 'extra['k']' must be text, an integer, a float or a bool"),
        ({"point": [0, "y"]}, "field 'point[1]' must be a finite number >= 0, got text"),
        ({"shout": 3}, "field 'shout' must be lower-case text"),
    ],
)
def test_errors_name_the_field_and_what_it_must_be(
    changes: dict[str, object], message: str
) -> None:
    assert error(Sample, to_wire(MINIMAL) | changes).startswith(message)


def test_a_missing_field_and_a_value_that_is_no_map() -> None:
    assert error(Sample, {"sent-at": 1.0}) == "field 'request-id' is missing"
    assert error(Sample, [1, 2]) == "must be a map, got array"


def test_a_type_without_a_wire_form_is_refused_when_the_plan_is_built() -> None:
    @dataclass(frozen=True)
    class Odd:
        when: complex

    with pytest.raises(TypeError, match=r"Odd.when: no wire form for <class 'complex'>"):
        to_wire(Odd(1j))

    @dataclass(frozen=True)
    class Misordered:
        _WIRE_ORDER: ClassVar[tuple[str, ...]] = ("nothing",)
        a: int

    with pytest.raises(TypeError, match=r"_WIRE_ORDER names no field \['nothing'\]"):
        to_wire(Misordered(1))


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)
keys = st.sampled_from([*to_wire(FULL), "other"])


@settings(max_examples=300)
@given(st.dictionaries(keys, cbor_values))
def test_any_wire_data_builds_a_sample_or_raises_wire_error(fields: dict[str, object]) -> None:
    with contextlib.suppress(WireError):
        decoded = from_wire(Sample, to_wire(MINIMAL) | fields)
        assert from_wire(Sample, to_wire(decoded)) == decoded
