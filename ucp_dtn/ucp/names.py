"""Data names, job paths and ``*`` wildcards (pure functions).

Theory of operation
-------------------
A **data name** is a hierarchical key of segments joined by ``/``: ``survey/2026-11-26/a.wav``.
A segment is 1 to 255 characters, each a letter or digit (Unicode) or one of
``- _ . ~ + = @ , : %``; ``.`` and ``..`` are not segments; a name has no leading, trailing or
doubled ``/`` and is at most 1024 characters long. Data that belongs to a job lives under
``<job-uuid>/`` (:func:`job_name`), its result archive at ``<job-uuid>/result``
(:func:`job_result_name`).

A **query** for a name matches the name and everything below it *by path segment*:
``survey`` matches ``survey`` and ``survey/a.wav`` but not ``survey2`` (REC compared plain string
prefixes, so its ``stdin`` matched ``stdin2``).

A **wildcard pattern** is a prefix followed by one trailing ``*`` — the only place ``*`` may
appear: ``survey/2026/*`` (everything under ``survey/2026``) or ``frames/f*`` (every name starting
with ``frames/f``, e.g. ``frames/f001.png``; here the prefix is compared as a string, because the
user asked for exactly that). A pattern matches a name that starts with its prefix and is longer
than it; the rest of the name is the *remainder*.

Wildcards map names onto names (or job paths): ``prefix*`` → ``target*`` sends every match to
``target + remainder`` (:func:`map_wildcard`). A job reads ``"audio/*" = "survey/2026/*"`` to
put every datum under ``survey/2026`` into its ``audio`` directory, and publishes
``"out/*" = "runs/7/*"`` to store every file under ``out`` as named data under ``runs/7``. When
only one side of a pair ends in ``*``, the other side is taken as a directory:
``"audio" = "survey/*"`` means ``"audio/*" = "survey/*"`` (:func:`normalize_wildcard_pair`).

A **job path** names a file or directory inside a job's directory — the only directory the job
sees. It is relative (no leading ``/``), uses ``/`` as separator, has no empty, ``.`` or ``..``
segment, no backslash and no control character, and is at most 1024 characters; it may contain
spaces. A path pattern ends in ``*`` like a name pattern.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal, TypeAlias

from .errors import DataNameError

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_SEGMENT_LENGTH",
    "WILDCARD",
    "DataName",
    "JobPath",
    "is_wildcard",
    "job_name",
    "job_of_name",
    "job_result_name",
    "map_wildcard",
    "name_matches",
    "normalize_wildcard_pair",
    "parent_name",
    "patterns_overlap",
    "select_names",
    "validate_name",
    "validate_path",
    "validate_path_pattern",
    "validate_pattern",
    "wildcard_prefix",
]

DataName: TypeAlias = str
"""A data name (``a/b/c``) or, where patterns are allowed, a wildcard pattern (``a/b/*``)."""
JobPath: TypeAlias = str
"""A path relative to the job directory (``out/log.txt``), or a path pattern (``out/*``)."""

WILDCARD = "*"
"""The wildcard character; only ever the last character of a pattern."""
MAX_NAME_LENGTH = 1024
"""Longest data name or job path, in characters."""
MAX_SEGMENT_LENGTH = 255
"""Longest segment of a data name or job path, in characters."""

_NAME_PUNCTUATION = frozenset("-_.~+=@,:%")
_RESULT_SEGMENT = "result"


def _segment_problem(segment: str, *, path: bool) -> str | None:
    """Why ``segment`` cannot be a segment of a name (``path=False``) or path, or ``None``."""
    if not segment:
        return "has an empty segment (leading, trailing or doubled '/')"
    if segment in (".", ".."):
        return f"has a {segment!r} segment"
    if len(segment) > MAX_SEGMENT_LENGTH:
        return f"has a segment longer than {MAX_SEGMENT_LENGTH} characters"
    for char in segment:
        if char == WILDCARD:
            return "has '*' where only a trailing wildcard may be"
        if path:
            if char == "\\" or not char.isprintable():
                return f"has the character {char!r}"
        elif not (char.isalnum() or char in _NAME_PUNCTUATION):
            return f"has the character {char!r} (allowed: letters, digits and - _ . ~ + = @ , : %)"
    return None


def _check(text: object, field: str, *, path: bool, pattern: bool) -> str:
    what = "path" if path else "name"
    if not isinstance(text, str):
        raise DataNameError(field, f"{what} must be text, got {type(text).__name__}")
    if not text:
        raise DataNameError(field, f"{what} is empty")
    if len(text) > MAX_NAME_LENGTH:
        raise DataNameError(field, f"{what} is longer than {MAX_NAME_LENGTH} characters")
    body = text
    if pattern and text.endswith(WILDCARD):
        body = text[:-1]
        if not body:
            return text
        if body.endswith("/"):
            body = body[:-1]
    if path and body.startswith("/"):
        raise DataNameError(field, f"path {text!r} must be relative to the job directory")
    for segment in body.split("/"):
        problem = _segment_problem(segment, path=path)
        if problem is not None:
            raise DataNameError(field, f"{what} {text!r} {problem}")
    return text


def validate_name(name: object, field: str = "name") -> DataName:
    """``name`` if it is a valid data name (no wildcard), else :class:`DataNameError` naming
    ``field``."""
    return _check(name, field, path=False, pattern=False)


def validate_pattern(pattern: object, field: str = "name") -> DataName:
    """``pattern`` if it is a valid data name or wildcard pattern (``prefix*``, ``*``)."""
    return _check(pattern, field, path=False, pattern=True)


def validate_path(path: object, field: str = "path") -> JobPath:
    """``path`` if it is a valid job path (relative, no ``..``; no wildcard)."""
    return _check(path, field, path=True, pattern=False)


def validate_path_pattern(path: object, field: str = "path") -> JobPath:
    """``path`` if it is a valid job path or path pattern (``out/*``)."""
    return _check(path, field, path=True, pattern=True)


def is_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` ends in the wildcard ``*``."""
    return pattern.endswith(WILDCARD)


def wildcard_prefix(pattern: str) -> str:
    """The prefix of a wildcard pattern (``a/b/`` for ``a/b/*``); ``pattern`` itself otherwise."""
    return pattern[:-1] if is_wildcard(pattern) else pattern


def name_matches(query: str, name: str) -> bool:
    """Whether ``name`` is selected by ``query``.

    A plain query selects the name itself and its subkeys, by segment (``stdin`` selects
    ``stdin`` and ``stdin/x``, never ``stdin2``). A wildcard ``prefix*`` selects every name that
    starts with ``prefix`` and is longer than it.
    """
    if is_wildcard(query):
        prefix = query[:-1]
        return len(name) > len(prefix) and name.startswith(prefix)
    return name == query or name.startswith(query + "/")


def select_names(query: str, names: Iterable[str]) -> list[str]:
    """The names ``query`` selects (:func:`name_matches`), sorted, without duplicates."""
    return sorted({name for name in names if name_matches(query, name)})


def normalize_wildcard_pair(source: str, target: str) -> tuple[str, str]:
    """The pair with both sides wildcards if either is: the plain side is taken as a directory
    (``("audio", "survey/*")`` → ``("audio/*", "survey/*")``). Plain pairs are returned as
    they are."""
    source_wild, target_wild = is_wildcard(source), is_wildcard(target)
    if source_wild and not target_wild:
        return source, target + "/" + WILDCARD
    if target_wild and not source_wild:
        return source + "/" + WILDCARD, target
    return source, target


def map_wildcard(
    source: str,
    target: str,
    candidates: Iterable[str],
    *,
    target_kind: Literal["name", "path"] = "name",
    field: str = "",
) -> dict[str, str]:
    """Map every candidate that the wildcard ``source`` matches onto ``target``'s prefix plus
    its remainder: ``map_wildcard("out/*", "runs/7/*", ["out/a", "log"])`` is
    ``{"out/a": "runs/7/a"}``. A plain ``target`` is taken as a directory.

    Every produced name (or job path, with ``target_kind="path"``) is validated;
    :class:`DataNameError` naming ``field`` if one is invalid (``"x*"`` onto ``"y/*"`` turns
    ``x/a`` into ``y//a``). :class:`DataNameError` too if ``source`` is not a wildcard.
    """
    if not is_wildcard(source):
        raise DataNameError(field, f"{source!r} is not a wildcard pattern")
    source, target = normalize_wildcard_pair(source, target)
    source_prefix, target_prefix = source[:-1], target[:-1]
    mapped: dict[str, str] = {}
    for candidate in candidates:
        if not name_matches(source, candidate):
            continue
        produced = target_prefix + candidate[len(source_prefix) :]
        if target_kind == "path":
            validate_path(produced, field)
        else:
            validate_name(produced, field)
        mapped[candidate] = produced
    return mapped


def patterns_overlap(first: str, second: str) -> bool:
    """Whether some data name could be both ``first`` and ``second`` (each a name or a wildcard
    pattern): equal plain names, a pattern matching a plain name, or two patterns one of whose
    prefixes starts with the other. Used to find which job of a plan produces what another
    reads."""
    first_wild, second_wild = is_wildcard(first), is_wildcard(second)
    if first_wild and second_wild:
        a, b = first[:-1], second[:-1]
        return a.startswith(b) or b.startswith(a)
    if first_wild:
        return name_matches(first, second)
    if second_wild:
        return name_matches(second, first)
    return first == second


def parent_name(name: str) -> str | None:
    """The name one segment up (``a/b`` for ``a/b/c``), or ``None`` for a one-segment name."""
    head, sep, _ = name.rpartition("/")
    return head if sep else None


def job_name(job_id: uuid.UUID, *parts: str) -> DataName:
    """The data name of a job's own data: ``<job-uuid>/part/...`` (validated)."""
    name = "/".join((str(job_id), *parts))
    return validate_name(name, "job data name")


def job_result_name(job_id: uuid.UUID) -> DataName:
    """Where a job's result is kept in the datastores: ``<job-uuid>/result``."""
    return f"{job_id}/{_RESULT_SEGMENT}"


def job_of_name(name: str) -> uuid.UUID | None:
    """The job a name belongs to, if its first segment is a job UUID in canonical form."""
    first = name.split("/", 1)[0]
    if len(first) != 36:
        return None
    try:
        job_id = uuid.UUID(first)
    except ValueError:
        return None
    return job_id if str(job_id) == first else None
