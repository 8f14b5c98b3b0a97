"""Name ranges: how a query by name or pattern becomes index range scans, and paging cursors.

Theory of operation
-------------------
Data names sort by code point, which is also the byte order of their UTF-8 form and so the order
of sqlite's ``BINARY`` collation: the store's index on names answers every query with one or two
range scans instead of a full scan. Every range is half-open, ``low <= name < high``.

* A plain query ``q`` selects ``q`` itself and the names below it *by segment*
  (:func:`ucp_dtn.ucp.names.name_matches`): the range ``[q, q + "\\0")`` holds just ``q`` (no
  name contains NUL, so nothing sorts between them) and ``[q + "/", q + "0")`` holds exactly the
  names starting with ``q/`` (``0`` follows ``/`` in ASCII). ``q.txt`` or ``q2`` fall in neither.
* A pattern ``p*`` selects the names that start with ``p`` and are longer:
  ``[p + "\\0", successor(p))`` where the successor is the smallest string above every string
  starting with ``p`` (``p`` with its last character incremented). ``*`` alone selects all.
* A job's data are the names whose ``job`` column holds the job (see :mod:`.database`).

A **cursor** continues a listing after the last name of the previous page. It is opaque to the
requester (``c1.`` and the name in URL-safe base64) and carries no state of the store: a page
starts at the first name after it, so paging visits every name present throughout exactly once,
whatever is written or deleted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ...ucp.errors import DataNameError
from ...ucp.names import is_wildcard, validate_name, validate_pattern
from .errors import InvalidCursorError

__all__ = ["NameRange", "after", "decode_cursor", "encode_cursor", "query_ranges", "successor"]

_CURSOR_PREFIX = "c1."
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True, slots=True)
class NameRange:
    """The names ``n`` with ``low <= n < high`` (no upper bound when ``high`` is ``None``)."""

    low: str
    """Smallest name in the range."""
    high: str | None
    """First name above the range, or ``None``."""

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.low <= name and (self.high is None or name < self.high)

    @property
    def empty(self) -> bool:
        """Whether no string lies in the range."""
        return self.high is not None and self.high <= self.low

    def starting_after(self, name: str | None) -> NameRange:
        """This range without the names up to and including ``name``."""
        if name is None:
            return self
        return NameRange(max(self.low, after(name)), self.high)


def after(name: str) -> str:
    """The smallest string greater than ``name``."""
    return name + "\0"


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``; ``None`` when
    there is none (``prefix`` is empty or only maximal code points)."""
    stripped = prefix.rstrip(chr(_MAX_CODE_POINT))
    if not stripped:
        return None
    code = ord(stripped[-1]) + 1
    if code in _SURROGATES:  # lone surrogates cannot be stored; no name contains one either
        code = _SURROGATES.stop
    return stripped[:-1] + chr(code)


def query_ranges(query: str) -> tuple[NameRange, ...]:
    """The disjoint ranges, in order, that hold exactly the names ``query`` selects (a data
    name or a ``prefix*`` pattern; :class:`~ucp_dtn.ucp.errors.DataNameError` otherwise)."""
    validate_pattern(query, "query")
    if is_wildcard(query):
        prefix = query[:-1]
        return (NameRange(after(prefix), successor(prefix)),)
    return (NameRange(query, after(query)), NameRange(query + "/", query + "0"))


def encode_cursor(name: str) -> str:
    """The cursor that continues after ``name``."""
    encoded = base64.urlsafe_b64encode(name.encode("utf-8")).rstrip(b"=").decode("ascii")
    return _CURSOR_PREFIX + encoded


def decode_cursor(cursor: str | None) -> str | None:
    """The name a cursor continues after (``None`` for ``None``); :class:`InvalidCursorError`
    for anything :func:`encode_cursor` did not make."""
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX):
        raise InvalidCursorError(f"not a cursor of this datastore: {cursor!r:.80}")
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        name = validate_name(raw.decode("utf-8"), "cursor")
    except (binascii.Error, ValueError, UnicodeDecodeError, DataNameError):
        raise InvalidCursorError(f"damaged cursor: {cursor!r:.80}") from None
    if encode_cursor(name) != cursor:
        raise InvalidCursorError(f"damaged cursor: {cursor!r:.80}")
    return name
