"""Reading TOML documents written by people — configuration files, security policies, execution
plans — with one loader that turns every way a document can be unusable into one line.

:mod:`tomllib` parses arrays and inline tables recursively, so ``a = [[[[...]]]]`` a few hundred
levels deep raises :class:`RecursionError` (a traceback, not a message), and table headers such
as ``[a.b.c.d...]`` build documents nested as deeply as the header is long, which code walking
the document later may recurse into. :func:`parse_toml` refuses both: a document nested more
than :data:`MAX_TOML_DEPTH` levels (tables and arrays counted alike) raises :class:`TomlError`.
No file of ours needs more than a handful of levels.

Only the standard library is imported (``tomllib`` when first used), so ``ucp --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["MAX_TOML_DEPTH", "TomlError", "load_toml", "parse_toml"]

MAX_TOML_DEPTH = 32
"""The deepest nesting of tables and arrays a document may have (the top-level table is 1)."""


class TomlError(ValueError):
    """A TOML document cannot be read or parsed; the message is one line, without the name of
    the file (callers add it the way their messages name things)."""


def _depth(document: dict[str, Any], limit: int) -> int:
    """The nesting depth of ``document``, walked without recursion; stops past ``limit``."""
    deepest = 1
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        children: Iterable[object] = ()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def parse_toml(text: str, *, max_depth: int = MAX_TOML_DEPTH) -> dict[str, Any]:
    """The document of TOML ``text``; :class:`TomlError` if it is not valid TOML or is nested
    more than ``max_depth`` levels."""
    import tomllib

    too_deep = f"not valid TOML: nested more than {max_depth} levels deep"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise TomlError(too_deep) from None
    if _depth(document, max_depth) > max_depth:
        raise TomlError(too_deep)
    return document


def load_toml(path: Path, *, max_depth: int = MAX_TOML_DEPTH) -> dict[str, Any]:
    """The document of the TOML file ``path``; :class:`TomlError` if it cannot be read, is not
    UTF-8, not valid TOML, or nested more than ``max_depth`` levels."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TomlError(f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TomlError("not valid TOML: not UTF-8 text") from None
    return parse_toml(text, max_depth=max_depth)
