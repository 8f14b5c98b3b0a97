"""Which datastore holds which data name, as far as the broker knows (sans-IO).

The broker learns it from the puts it relays (it chose the datastore), from its own result puts
and from other brokers' syncs; it forgets names it relayed a delete for. The cache is a hint:
a get for names no live datastore is known to hold goes to every datastore. Last write wins, by
``written_at`` and then by holder, the rule the datastores apply to the data themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from ...ucp.messages import DataEntry
from ...ucp.names import is_wildcard, job_of_name, job_result_name, name_matches

__all__ = ["NameCache"]


def _newer(entry: DataEntry, than: DataEntry) -> bool:
    return (entry.written_at, entry.holder or "") > (than.written_at, than.holder or "")


class NameCache:
    """Name → holding datastore (see the module docstring). Holders are datastore endpoints
    (``…/ucp/datastore``, text)."""

    def __init__(self) -> None:
        self._entries: dict[str, DataEntry] = {}
        self._changed: dict[str, int] = {}
        self._change = 0

    def load(self, entries: Iterable[DataEntry]) -> None:
        """Fill from the journal."""
        for entry in entries:
            self._entries[entry.name] = entry

    def holder(self, name: str) -> str | None:
        """The datastore known to hold exactly ``name``."""
        entry = self._entries.get(name)
        return None if entry is None else entry.holder

    def holders(self, query: str) -> set[str]:
        """Datastores known to hold names that ``query`` selects."""
        return {
            e.holder
            for e in self._entries.values()
            if e.holder is not None and name_matches(query, e.name)
        }

    def by_name(self, query: str) -> dict[str, str]:
        """Names ``query`` selects → the datastore known to hold each."""
        return {
            name: e.holder
            for name, e in self._entries.items()
            if e.holder is not None and name_matches(query, name)
        }

    def selected(self, query: str) -> list[DataEntry]:
        """The cached entries of the names ``query`` selects (with holder and size)."""
        return [e for name, e in self._entries.items() if name_matches(query, name)]

    def record(self, entry: DataEntry) -> DataEntry | None:
        """Note that ``entry.holder`` holds ``entry.name``; returns the entry if the cache
        changed (an older write than the known one changes nothing)."""
        assert entry.holder is not None
        known = self._entries.get(entry.name)
        if known is not None and not _newer(entry, known):
            return None
        self._entries[entry.name] = entry
        self._change += 1
        self._changed[entry.name] = self._change
        return entry

    def merge(self, entries: Iterable[DataEntry]) -> list[DataEntry]:
        """Take in another broker's entries; returns those that changed the cache."""
        return [
            changed
            for entry in entries
            if entry.holder is not None and (changed := self.record(entry)) is not None
        ]

    def forget(
        self, *, name: str | None = None, job_id: uuid.UUID | None = None, keep_result: bool = True
    ) -> list[str]:
        """Drop the names a delete removes (a name or pattern with its subkeys, or a job's
        data); returns them."""
        if name is not None:
            gone = [n for n in self._entries if name_matches(name, n)]
        elif job_id is not None:
            result = job_result_name(job_id)
            gone = [
                n
                for n, e in self._entries.items()
                if (e.job_id == job_id or job_of_name(n) == job_id)
                and not (keep_result and n == result)
            ]
        else:
            gone = []
        for n in gone:
            del self._entries[n]
            self._changed.pop(n, None)
        return gone

    @property
    def change_mark(self) -> int:
        """The number of the latest change (for :meth:`changed_since`)."""
        return self._change

    def changed_since(self, mark: int) -> list[DataEntry]:
        """Entries changed after ``mark``."""
        return [self._entries[n] for n, c in self._changed.items() if c > mark]

    def entries(self) -> list[DataEntry]:
        """Every cached name with its holder, in no particular order (a full broker sync)."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def cacheable(name: str) -> bool:
        """Whether a put of ``name`` can be cached (patterns cannot)."""
        return not is_wildcard(name)
