"""Handling several messages as one round: one journal transaction and batched bundles.

The broker takes the messages that wait in its mailbox together (a batch bundle of a plan's
submissions arrives as many messages at once). Handled one by one, each would cost a journal
transaction (a durable sqlite commit) per job record it changes and a bundle per message it
sends. In a :class:`HandlingRound` the handlers run as before, against the in-memory state,
but their journal writes of job records and their sends are collected, and made durable at
the end of the round, in an order that keeps every promise the one-by-one handling made:

Theory of operation
-------------------
Each handler's effects are a sequence of writes (a job record) and sends (a message). What a
handler relies on is their order: a record is durable before a message that tells of it is
sent ("dispatched" before the dispatch), and a send is durable before a record that says it
happened ("result delivered" after the result). The round gives each effect a *level*: a
handler starts at level 0, and a write that follows a send of the same handler moves it one
level up. At the end, level by level, the level's records are written in one transaction and
then its messages are sent together (:meth:`~ucp_dtn.roles.mailbox.Mailbox.send_many`, which
puts the messages for one destination into as few bundles as it may). So every handler's own
writes and sends happen in its order, and a round of N submissions costs two transactions and
a few bundles instead of N of each.

A record written again in the same round keeps only its newest version per level, and is never
written at a lower level than before (a later handler's change of a job moves that handler to
the job's level), so the journal never goes back to an older version of a job.

Only after the round's effects are durable are its messages confirmed to the agent; a crash
in between re-delivers them all, and the handlers take a message they already acted on as a
duplicate (job UUIDs at submission, the first result wins, states only move forward).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from bpv7 import EndpointID, parse_eid

from ...ucp.messages import (
    DataEntry,
    DataReply,
    Heartbeat,
    JobCancel,
    JobLogQuery,
    JobOutput,
    JobResult,
    JobState,
    JobSubmission,
    StatusQuery,
    UcpMessage,
)
from ..coalescing import Outgoing
from .job_records import JobRecord

__all__ = ["ROUND_KINDS", "ROUND_MESSAGES", "HandlingRound"]

ROUND_MESSAGES = 64
"""Most messages handled in one round."""
ROUND_KINDS = (
    JobSubmission,
    JobState,
    JobResult,
    Heartbeat,
    JobOutput,
    DataReply,
    StatusQuery,
    JobLogQuery,
    JobCancel,
)
"""The kinds handled in rounds: the job flow, whose handlers write only job records (and
through the relay, pending requests at once). Broker syncs (which may delete jobs), replica
reports and data requests are handled alone."""


@dataclass
class _Level:
    records: dict[object, JobRecord] = field(default_factory=dict)
    sends: list[Outgoing] = field(default_factory=list)


class HandlingRound:
    """The collected effects of the messages handled in one round (module docstring)."""

    def __init__(self) -> None:
        self._levels: list[_Level] = [_Level()]
        self._level = 0
        self._after_send = False
        self._written_at: dict[object, int] = {}
        self._names: dict[str, DataEntry] = {}

    def begin_message(self) -> None:
        """The next message's handler starts (at level 0)."""
        self._level = 0
        self._after_send = False

    def write(self, record: JobRecord) -> None:
        """The handler saves ``record`` (its newest version at its level wins)."""
        if self._after_send:
            self._level += 1
            self._after_send = False
        self._level = max(self._level, self._written_at.get(record.job_id, 0))
        self._at(self._level).records[record.job_id] = record
        self._written_at[record.job_id] = self._level

    def write_names(self, entries: Iterable[DataEntry]) -> None:
        """The handler updates the name cache: a hint where data lives, which needs no order
        with the sends; written with the first level (the newest entry per name wins)."""
        for entry in entries:
            self._names[entry.name] = entry

    def send(
        self,
        destination: EndpointID | str,
        message: UcpMessage,
        *,
        custody: bool,
        lifetime_s: float | None,
    ) -> None:
        """The handler sends ``message`` (the destination is checked now, as a send would)."""
        eid = parse_eid(destination) if isinstance(destination, str) else destination
        self._at(self._level).sends.append(Outgoing(eid, message, custody, lifetime_s))
        self._after_send = True

    @property
    def empty(self) -> bool:
        """Nothing to write or send."""
        return not self._names and all(
            not level.records and not level.sends for level in self._levels
        )

    @property
    def counts(self) -> tuple[int, int, int]:
        """(levels, records, messages) collected."""
        return (
            len(self._levels),
            sum(len(level.records) for level in self._levels),
            sum(len(level.sends) for level in self._levels),
        )

    async def flush(
        self,
        put_round: Callable[[Iterable[JobRecord], Iterable[DataEntry]], Awaitable[None]],
        send_many: Callable[[Iterable[Outgoing]], Awaitable[object]],
    ) -> None:
        """Make the round durable: level by level, one transaction (job records; the name
        cache entries with the first), then the sends."""
        levels, self._levels = self._levels, [_Level()]
        names, self._names = list(self._names.values()), {}
        self._written_at.clear()
        for level in levels:
            if level.records or names:
                await put_round(list(level.records.values()), names)
                names = []
            if level.sends:
                await send_many(level.sends)

    def _at(self, index: int) -> _Level:
        while len(self._levels) <= index:
            self._levels.append(_Level())
        return self._levels[index]
