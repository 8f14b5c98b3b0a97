"""Named data through the broker: put, get, list and delete.

Every request goes to the broker, which relays it to the datastores with ``reply_to`` = the
client, so the answers come straight from the datastores — one per datastore the broker asked:

* a **put** goes to one datastore; its ``data-reply`` says whether it was stored. A put may
  ask for ``replicas`` copies on distinct datastores: the network makes the others afterwards
  (:func:`replica_listing` shows where each datum lives);
* a **list** and a **delete** go to every live datastore; the client asks the broker first how
  many it knows (a status query), waits for that many answers (or, if the broker knows none,
  for a moment after the first) and merges them;
* a **get** goes to the datastores the broker believes hold matching names (or all of them),
  so with several datastores the number of answers is unknown: the client then lists first
  (which reaches every datastore and says who holds what) and asks each holder directly. Each
  answers a page of items and, when there is more, a cursor that only that datastore
  understands, so the next page is asked of it directly. Items of the same name from several
  datastores are merged: the newest write wins (:mod:`ucp_dtn.ucp.versions`: time, then
  writer, then content digest — what every datastore applies too).
* a **delete** carries its time: it removes the writes made before it, on every replica, and
  later arrivals of them (docs/disruption.md).

A listing's continuation is a *page token* bundling every datastore's cursor
(:func:`encode_page_token`); a page holds up to ``page_size`` entries *per datastore*.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from bpv7 import EndpointID

from ..agent.progress import wait_while_arriving
from ..roles import Incoming
from ..ucp import (
    DataDelete,
    DataEntry,
    DataFreeSpace,
    DataFreeSpaceReply,
    DataGet,
    DataGetReply,
    DataItem,
    DataList,
    DataListReply,
    DataPut,
    DataReply,
    DataStatus,
    DataVersion,
    content_digest,
    validate_pattern,
)
from ..ucp.errors import DataNameError, FieldError
from ..ucp.job import check_replicas
from .errors import ClientError, ClientUsageError, NoReply
from .session import ClientSession

__all__ = [
    "DataPage",
    "PutOutcome",
    "ReplicaEntry",
    "decode_page_token",
    "delete_data",
    "encode_page_token",
    "free_space",
    "get_data",
    "list_data",
    "put_data",
    "replica_listing",
]

logger = logging.getLogger(__name__)

_MAX_PAGES = 10_000


def _status_text(status: DataStatus | int, detail: str = "") -> str:
    """Why a datastore said no: its detail when it gave one (it names the status's reason, e.g.
    "not allowed: dtn://a/ owns 'x'"), else the status's name."""
    if detail.strip():
        return detail.strip()
    if isinstance(status, DataStatus):
        return status.name.lower().replace("_", " ")
    return f"status {status}"


def check_query(name: str, what: str = "name") -> str:
    """``name`` if it is a valid data name or ``prefix*`` pattern, else
    :class:`ClientUsageError`."""
    try:
        return validate_pattern(name, what)
    except DataNameError as exc:
        raise ClientUsageError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """What became of a put."""

    name: str
    """The data name put."""
    size: int
    """Content bytes sent."""
    stored: bool
    """A datastore confirmed it (or answered that a newer write already won)."""
    detail: str = ""
    """The datastore's line about it, or why there is no answer yet."""
    holder: str | None = None
    """The datastore that answered (EID), when one did."""
    replicas: int | None = None
    """The replication factor asked for (``None``: the datastores' default)."""


async def put_data(
    session: ClientSession,
    name: str,
    data: bytes,
    *,
    job_id: uuid.UUID | None = None,
    wait_s: float | None = None,
    replicas: int | None = None,
    exclusive: bool = False,
    private: bool = False,
) -> PutOutcome:
    """Store ``data`` as ``name`` (custody; it survives the client going offline), with
    ``replicas`` copies on distinct datastores if given (else the datastores' default for the
    name), and wait for the first datastore's answer: as long as the upload is moving, then up
    to ``wait_s`` (default ``settings.request_timeout_s``); the other copies are made by the
    network afterwards. A refusal (no space, invalid, or — ``exclusive`` — the name is taken by
    another write) raises :class:`ClientError`; no answer in time is not an error (``stored``
    false: the put is on its way, and the broker keeps it until a datastore appears). Without
    ``exclusive`` the newest write of a name wins. ``private``: in a trusted mesh only this
    client (and admins, and the mesh's nodes) may read it."""
    name = check_query(name)
    if name.endswith("*"):
        raise ClientUsageError(f"cannot store data under a pattern: {name!r}")
    if replicas is not None:
        try:
            check_replicas(replicas, "replicas")
        except FieldError as exc:
            raise ClientUsageError(str(exc)) from None
    put = DataPut(
        request_id=session.new_request_id(),
        name=name,
        data=data,
        written_at=time.time(),
        job_id=job_id,
        replicas=replicas,
        exclusive=exclusive,
        private=private,
    )
    broker = await session.find_broker()
    with session.replies([put.request_id]) as replies:
        sent_to = await session.post([put])
        if broker is None:
            where = "the outbox" if sent_to is None else "the client's store"
            detail = f"no broker reachable: waiting in {where}"
            return PutOutcome(name, len(data), False, detail, replicas=replicas)
        timeout = session.settings.request_timeout_s if wait_s is None else wait_s
        reply: DataReply | None = None
        holder: str | None = None
        # A large datum takes long to leave on a slow link: wait as long as it is moving.
        incoming = await wait_while_arriving(replies.receive, timeout, session.activity)
        if incoming is not None and isinstance(incoming.message, DataReply):
            reply, holder = incoming.message, str(incoming.source)
    if reply is None:
        detail = "sent; no datastore has confirmed it yet"
        return PutOutcome(name, len(data), False, detail, replicas=replicas)
    if reply.status in (DataStatus.OK, DataStatus.STALE):
        return PutOutcome(name, len(data), True, reply.detail, holder, replicas)
    if reply.status == DataStatus.TAKEN:
        raise ClientError(f"storing {name!r} refused: {reply.detail or 'name already taken'}")
    raise ClientError(f"storing {name!r} failed: {_status_text(reply.status, reply.detail)}")


def _item_version(item: DataItem) -> DataVersion:
    return DataVersion(item.written_at, item.writer or "", content_digest(item.data))


def _entry_version(entry: DataEntry) -> DataVersion:
    return DataVersion(entry.written_at, entry.writer or "", entry.digest or b"")


def _newest(items: Iterable[DataItem]) -> list[DataItem]:
    best: dict[str, DataItem] = {}
    for item in items:
        held = best.get(item.name)
        if held is None or _item_version(item) > _item_version(held):
            best[item.name] = item
    return [best[name] for name in sorted(best)]


def _has_items(incoming: Incoming) -> bool:
    message = incoming.message
    return isinstance(message, DataGetReply) and bool(message.items) and message.cursor is None


async def get_data(
    session: ClientSession,
    query: str,
    *,
    max_bytes: int = 1 << 20,
    first_answer: bool = False,
) -> list[DataItem]:
    """Every datum ``query`` selects (a name with its subkeys, or a ``prefix*`` pattern),
    newest write per name, sorted by name; ``[]`` if none exists. ``first_answer``: stop at
    the first datastore that has something (for names written once, like results).
    :class:`NoReply` if no datastore answered."""
    query = check_query(query, "query")
    request = DataGet(request_id=session.new_request_id(), query=query, max_bytes=max_bytes)
    replies: list[Incoming] = []
    if first_answer:
        replies = await session.request(request, expect=None, enough=_has_items)
    else:
        expected = await _expected_datastores(session)
        if expected is None or expected == 1:
            replies = await session.request(request, expect=expected)
        else:
            # Several datastores: the broker asks only those it believes hold matching names,
            # so how many answer is unknown. Ask every datastore where the names are (a
            # listing goes to all of them), then each holder directly.
            page = await list_data(session, query, page_size=1000, all_pages=True)
            for holder in sorted({entry.holder for entry in page.entries if entry.holder}):
                direct = DataGet(
                    request_id=session.new_request_id(), query=query, max_bytes=max_bytes
                )
                replies += await session.request(direct, destination=holder)
    items: list[DataItem] = []
    found = False
    for incoming in replies:
        found |= await _follow_pages(session, incoming, query, max_bytes, items)
    if not found:
        return []
    return _newest(items)


async def _follow_pages(
    session: ClientSession, incoming: Incoming, query: str, max_bytes: int, items: list[DataItem]
) -> bool:
    """Collect one datastore's pages; whether it had anything."""
    for _ in range(_MAX_PAGES):
        reply = incoming.message
        if not isinstance(reply, DataGetReply):
            return False
        if reply.status == DataStatus.NOT_FOUND:
            return False
        if reply.status != DataStatus.OK:
            raise ClientError(
                f"{incoming.source} could not read {query!r}: "
                f"{_status_text(reply.status, reply.detail)}"
            )
        items.extend(reply.items)
        if reply.cursor is None:
            return True
        following = DataGet(
            request_id=session.new_request_id(),
            query=query,
            cursor=reply.cursor,
            max_bytes=max_bytes,
        )
        (incoming,) = await session.request(following, destination=incoming.source)
    raise ClientError(f"{incoming.source} keeps paging {query!r}: giving up")


@dataclass(frozen=True, slots=True)
class DataPage:
    """One page of a listing, merged over the datastores."""

    entries: tuple[DataEntry, ...]
    """The data (newest write per name), sorted by name; ``holder`` says which datastore."""
    next_page: str | None
    """Token for the next page (:func:`list_data`'s ``page``); ``None``: this was the last."""
    datastores: int
    """How many datastores answered."""


def encode_page_token(cursors: dict[str, str]) -> str:
    """A page token: every datastore's cursor, as URL-safe text."""
    text = json.dumps(cursors, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> dict[str, str]:
    """The cursors in a page token; :class:`ClientUsageError` if it is not one."""
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ClientUsageError(f"not a page token: {token!r}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ClientUsageError(f"not a page token: {token!r}")
    return value


async def _expected_datastores(session: ClientSession) -> int | None:
    try:
        count = len(await session.datastores())
    except NoReply:
        return None
    return count or None


async def list_data(
    session: ClientSession,
    prefix: str | None = None,
    *,
    job_id: uuid.UUID | None = None,
    page_size: int = 1000,
    page: str | None = None,
    all_pages: bool = False,
) -> DataPage:
    """List data (without content) under ``prefix`` (a name with its subkeys, or a pattern;
    ``None``: everything), only of ``job_id`` if given. ``page`` continues a listing;
    ``all_pages`` follows every cursor and returns everything in one page."""
    if prefix is not None:
        prefix = check_query(prefix, "prefix")
    if page_size < 1:
        raise ClientUsageError(f"page size must be at least 1, got {page_size}")
    answers: list[tuple[EndpointID, DataListReply]] = []
    if page is None:
        request = DataList(
            request_id=session.new_request_id(), prefix=prefix, job_id=job_id, page_size=page_size
        )
        expected = await _expected_datastores(session)
        for incoming in await session.request(request, expect=expected):
            if isinstance(incoming.message, DataListReply):
                answers.append((incoming.source, incoming.message))
    else:
        for holder, cursor in decode_page_token(page).items():
            answers.append(await _list_more(session, holder, prefix, job_id, page_size, cursor))
    entries: list[DataEntry] = []
    cursors: dict[str, str] = {}
    for source, reply in answers:
        while True:
            if reply.status not in (DataStatus.OK, DataStatus.NOT_FOUND):
                raise ClientError(
                    f"{source} could not list: {_status_text(reply.status, reply.detail)}"
                )
            entries.extend(
                e if e.holder is not None else _with_holder(e, str(source)) for e in reply.entries
            )
            if reply.cursor is None:
                break
            if not all_pages:
                cursors[str(source)] = reply.cursor
                break
            source, reply = await _list_more(
                session, str(source), prefix, job_id, page_size, reply.cursor
            )
    merged: dict[str, DataEntry] = {}
    for entry in entries:
        held = merged.get(entry.name)
        if held is None or _entry_version(entry) > _entry_version(held):
            merged[entry.name] = entry
    return DataPage(
        entries=tuple(merged[name] for name in sorted(merged)),
        next_page=encode_page_token(cursors) if cursors else None,
        datastores=len(answers),
    )


@dataclass(frozen=True, slots=True)
class ReplicaEntry:
    """Where one datum lives (:func:`replica_listing`)."""

    name: str
    """The data name."""
    size: int
    """Size of the winning write, in bytes."""
    written_at: float
    """When the winning write was made (the writer's clock)."""
    replicas: int
    """The replication factor the winning write was stored with."""
    holders: tuple[str, ...]
    """Datastores (EIDs) that answered holding the winning write."""
    stale: tuple[str, ...] = ()
    """Datastores that answered holding an older write (being brought up to date)."""

    @property
    def meets_factor(self) -> bool:
        """Whether enough reachable datastores hold it."""
        return len(self.holders) >= self.replicas


async def replica_listing(
    session: ClientSession, prefix: str | None = None, *, job_id: uuid.UUID | None = None
) -> tuple[list[ReplicaEntry], int]:
    """Where each datum under ``prefix`` (``None``: every datum) lives: every live datastore
    lists what it holds (all pages), and the entries are grouped by name — the winning write,
    its factor, the datastores holding it and those holding an older one. Returns the entries,
    by name, and how many datastores answered. A datastore that is away cannot answer, so a
    datum it holds shows fewer holders than its factor until the copies are made again."""
    if prefix is not None:
        prefix = check_query(prefix, "prefix")
    request = DataList(request_id=session.new_request_id(), prefix=prefix, job_id=job_id)
    expected = await _expected_datastores(session)
    by_name: dict[str, list[DataEntry]] = {}
    answered = 0
    for incoming in await session.request(request, expect=expected):
        reply = incoming.message
        if not isinstance(reply, DataListReply):
            continue
        answered += 1
        source = str(incoming.source)
        for _ in range(_MAX_PAGES):
            if reply.status not in (DataStatus.OK, DataStatus.NOT_FOUND):
                raise ClientError(
                    f"{source} could not list: {_status_text(reply.status, reply.detail)}"
                )
            for entry in reply.entries:
                by_name.setdefault(entry.name, []).append(
                    entry if entry.holder is not None else _with_holder(entry, source)
                )
            if reply.cursor is None:
                break
            _, reply = await _list_more(session, source, prefix, job_id, 1000, reply.cursor)
    found = []
    for name in sorted(by_name):
        entries = by_name[name]
        winner = max(entries, key=_entry_version)
        version = _entry_version(winner)
        found.append(
            ReplicaEntry(
                name=name,
                size=winner.size,
                written_at=winner.written_at,
                replicas=winner.replicas,
                holders=tuple(
                    sorted({e.holder or "" for e in entries if _entry_version(e) == version})
                ),
                stale=tuple(
                    sorted({e.holder or "" for e in entries if _entry_version(e) < version})
                ),
            )
        )
    return found, answered


def _with_holder(entry: DataEntry, holder: str) -> DataEntry:
    return dataclasses.replace(entry, holder=holder)


async def _list_more(
    session: ClientSession,
    holder: str,
    prefix: str | None,
    job_id: uuid.UUID | None,
    page_size: int,
    cursor: str,
) -> tuple[EndpointID, DataListReply]:
    request = DataList(
        request_id=session.new_request_id(),
        prefix=prefix,
        job_id=job_id,
        page_size=page_size,
        cursor=cursor,
    )
    (incoming,) = await session.request(request, destination=holder)
    if not isinstance(incoming.message, DataListReply):
        raise ClientError(f"{holder} answered a listing with {incoming.message.KIND}")
    return incoming.source, incoming.message


async def delete_data(
    session: ClientSession,
    name: str | None = None,
    *,
    job_id: uuid.UUID | None = None,
    keep_result: bool = True,
) -> int:
    """Delete ``name`` with its subkeys (or a pattern), or every datum of ``job_id`` (its
    ``<job-uuid>/result`` too unless ``keep_result``); returns how many data the datastores
    deleted."""
    if (name is None) == (job_id is None):
        raise ClientUsageError("delete a name or a job's data, not both or neither")
    if name is not None:
        name = check_query(name)
    request = DataDelete(
        request_id=session.new_request_id(),
        name=name,
        job_id=job_id,
        keep_result=keep_result,
        deleted_at=time.time(),
    )
    expected = await _expected_datastores(session)
    count = 0
    for incoming in await session.request(request, expect=expected):
        reply = incoming.message
        if not isinstance(reply, DataReply):
            continue
        if reply.status in (DataStatus.OK, DataStatus.NOT_FOUND):
            count += reply.count
        else:
            raise ClientError(
                f"{incoming.source} could not delete: {_status_text(reply.status, reply.detail)}"
            )
    return count


async def free_space(session: ClientSession) -> list[DataFreeSpaceReply]:
    """Every datastore's room (free and used bytes, data, quota), by datastore."""
    request = DataFreeSpace(request_id=session.new_request_id())
    expected = await _expected_datastores(session)
    replies = [
        incoming.message
        for incoming in await session.request(request, expect=expected)
        if isinstance(incoming.message, DataFreeSpaceReply)
    ]
    return sorted(replies, key=lambda reply: reply.node)
