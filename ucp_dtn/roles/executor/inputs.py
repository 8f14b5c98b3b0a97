"""Getting a job's inputs: what to fetch, fetching it, and where each datum goes.

Theory of operation
-------------------
A job reads data from four places: its wasm module, its stdin, its job data (each inline bytes
or a data name) and its named inputs (``path ← name`` or ``"dir/*" ← "prefix*"``). Data the
dispatch carries inline (the submission's ``inline_data``) is used as it is; every other name
or pattern becomes one query (:func:`queries_for`).

:class:`DataFetcher` runs a query: a ``data-get`` to the dispatching broker, which relays it to
the datastores; the replies come straight from the datastores (one each, when the broker asks
several: they are merged), one page at a time. The request lists in ``have`` the digests the
executor's input cache holds for the names the query selects; a datum whose current value has
one of them comes without its bytes (``cached``) and is read from the cache (or, for standard
input, linked from it by the caller), and fetched values go into the cache
(:mod:`.input_cache`). The next page is asked of the datastore that
handed out the cursor (a cursor means nothing to anyone else). A request without an answer in
time, or answered ``unavailable``, is retried a few times; then the query fails with
:class:`FetchError`.

:func:`resolve_inputs` turns the fetched data into the job's files:

* a named source (module, stdin, job data file) needs a datum of exactly its name;
* a plain input ``path ← name`` is a file when the datum ``name`` exists, else a directory of
  its subkeys (``name/a/b`` → ``path/a/b``); the query matches by path segment, so ``stdin``
  never picks up ``stdin2``;
* a wildcard input ``"dir/*" ← "prefix*"`` maps every match onto ``dir/<rest>``.

Anything that matches nothing is *missing*; the job then fails, naming every missing name at
once (REC polled every 10 s instead, forever).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from ...agent.progress import wait_while_arriving
from ...ucp.errors import DataNameError
from ...ucp.job import DataRef, DataSource, InlineData, JobInfo
from ...ucp.messages import DataGet, DataGetReply, DataItem, DataStatus
from ...ucp.names import DataName, JobPath, is_wildcard, map_wildcard, name_matches, validate_path
from ..mailbox import Incoming, Mailbox
from .input_cache import InputCache

__all__ = [
    "DataFetcher",
    "FetchError",
    "InvalidModuleText",
    "ResolvedInputs",
    "module_binary",
    "queries_for",
    "resolve_inputs",
]

logger = logging.getLogger(__name__)

Fetched = Mapping[DataName, Mapping[DataName, DataItem]]
"""Query → (name → newest datum) for every query run."""


class FetchError(Exception):
    """A query could not be answered (no reply, no datastore available, a refusal)."""


def _source_names(job: JobInfo) -> list[DataName]:
    sources: list[DataSource | None] = [job.wasm, job.stdin, *job.job_data.values()]
    return [source.name for source in sources if isinstance(source, DataRef)]


def queries_for(job: JobInfo, inline_data: Mapping[DataName, bytes]) -> list[DataName]:
    """The names and patterns to fetch for ``job`` (sorted, each once): every named source
    and plain input the dispatch does not carry inline, and every wildcard input."""
    queries = {name for name in _source_names(job) if name not in inline_data}
    for name in job.inputs.values():
        if is_wildcard(name) or name not in inline_data:
            queries.add(name)
    return sorted(queries)


@dataclass(frozen=True, slots=True)
class ResolvedInputs:
    """A job's inputs, or why it cannot have them."""

    wasm: bytes | None
    """The module (``None`` when missing)."""
    stdin: bytes | None
    """Standard input (``None``: none, or missing)."""
    files: tuple[tuple[JobPath, bytes], ...]
    """Job data and named inputs: path in the job directory → content, in order."""
    missing: tuple[DataName, ...]
    """Names and patterns that matched nothing, sorted."""
    problems: tuple[str, ...]
    """Data that cannot be placed (a name that is no valid job path...)."""


def resolve_inputs(
    job: JobInfo, inline_data: Mapping[DataName, bytes], fetched: Fetched
) -> ResolvedInputs:
    """Place every input of ``job`` (see the module docstring). ``fetched`` holds the answer
    to each of :func:`queries_for`."""
    missing: set[DataName] = set()
    problems: list[str] = []

    def exact(name: DataName) -> bytes | None:
        if name in inline_data:
            return inline_data[name]
        item = fetched.get(name, {}).get(name)
        return None if item is None else item.data

    def source(value: DataSource | None) -> bytes | None:
        if value is None or isinstance(value, InlineData):
            return None if value is None else value.data
        data = exact(value.name)
        if data is None:
            missing.add(value.name)
        return data

    wasm = source(job.wasm)
    stdin = source(job.stdin)
    files: list[tuple[JobPath, bytes]] = []
    for path, job_source in job.job_data.items():
        data = source(job_source)
        if data is not None:
            files.append((path, data))

    for path, name in sorted(job.inputs.items()):
        if is_wildcard(name):
            matches = {n: d for n, d in inline_data.items() if name_matches(name, n)}
            matches.update((n, item.data) for n, item in fetched.get(name, {}).items())
            if not matches:
                missing.add(name)
            for data_name in sorted(matches):
                try:
                    [target] = map_wildcard(
                        name, path, [data_name], target_kind="path", field=f"inputs[{path!r}]"
                    ).values()
                except DataNameError as exc:
                    problems.append(f"{data_name!r} cannot be placed: {exc.reason}")
                    continue
                files.append((target, matches[data_name]))
            continue
        data = exact(name)
        if data is not None:
            files.append((path, data))
            continue
        below = sorted(
            (n, item.data) for n, item in fetched.get(name, {}).items() if n.startswith(name + "/")
        )
        if not below:
            missing.add(name)
        for data_name, content in below:
            target = path + data_name[len(name) :]
            try:
                validate_path(target, f"inputs[{path!r}]")
            except DataNameError as exc:
                problems.append(f"{data_name!r} cannot be placed: {exc.reason}")
                continue
            files.append((target, content))

    return ResolvedInputs(
        wasm=wasm,
        stdin=stdin,
        files=tuple(files),
        missing=tuple(sorted(missing)),
        problems=tuple(problems),
    )


class InvalidModuleText(ValueError):
    """The module is neither a WebAssembly binary nor valid WebAssembly text."""


_WASM_MAGIC = b"\0asm"


def module_binary(data: bytes) -> bytes:
    """The job's module as a binary: a binary as it is, the text format (WAT, which a
    :class:`~ucp_dtn.ucp.job.JobInfo` may carry) compiled with wasmtime's ``wat2wasm``.
    Raises :class:`InvalidModuleText` for anything else. Blocking (call through a thread)."""
    if data.startswith(_WASM_MAGIC):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidModuleText("not a WebAssembly module (neither binary nor text)") from None
    # Imported here: the workers run wasmtime; this process needs it only for text modules.
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise InvalidModuleText(f"not a WebAssembly binary, nor valid text: {first}") from None


class DataFetcher:
    """Runs ``data-get`` queries through a broker, page by page, with retries.

    The broker may relay one query to several datastores, each answering for what it holds, so
    a query takes every reply that arrives within ``settle_s`` of the first and merges them
    (the newest write of each name wins). It stops at the first reply only when that reply
    holds the plain name asked for, which is all a file input or a named module needs. Replies
    reach the fetcher through :meth:`deliver`, which the role's inbox loop calls for every
    ``data-get-reply``.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        timeout_s: float,
        attempts: int = 3,
        retry_delay_s: float = 1.0,
        settle_s: float = 0.5,
        page_bytes: int = 1 << 20,
        lifetime_s: float | None = None,
        reroute: Callable[[str], str] | None = None,
        cache: InputCache | None = None,
    ) -> None:
        """``reroute`` maps a destination to where each attempt goes now (a lost broker's
        successor, :meth:`~ucp_dtn.roles.directory.BrokerDirectory.report_to`). ``cache``:
        the executor's :class:`~.input_cache.InputCache` — its digests go in each request's
        ``have``, values left out of a reply come from it, fetched values go into it."""
        self.mailbox = mailbox
        self.cache = cache
        self.reroute = reroute
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.retry_delay_s = retry_delay_s
        self.settle_s = settle_s
        self.page_bytes = page_bytes
        self.lifetime_s = lifetime_s
        self.requests = 0
        """Requests sent (pages and retries included)."""
        self.bytes = 0
        """Content bytes received."""
        self._waiting: dict[int, trio.MemorySendChannel[Incoming]] = {}

    def deliver(self, incoming: Incoming) -> bool:
        """Hand a ``data-get-reply`` to the query waiting for it; False if none waits (a late
        or stray reply, to be dropped)."""
        message = incoming.message
        if not isinstance(message, DataGetReply):
            return False
        waiter = self._waiting.get(message.request_id)
        if waiter is None:
            return False
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            waiter.send_nowait(incoming)
        return True

    async def fetch(
        self, broker: str, query: DataName, *, keep_cached: bool = False
    ) -> dict[DataName, DataItem]:
        """Every datum ``query`` selects (the newest write of each name); empty when nothing
        matches. Raises :class:`FetchError` when the query cannot be answered. A value the
        input cache holds is read from there — or, with ``keep_cached``, left out (the item
        stays ``cached``, its value in the cache under its digest: the caller links it)."""
        cache = self.cache
        have = () if cache is None else cache.have_for(query)
        found = await self._fetch(broker, query, have)
        if cache is None:
            return found
        missed = False
        for name, item in list(found.items()):
            if item.cached and item.digest is not None:
                if keep_cached:
                    missed = not cache.holds(item.digest)
                    if missed:
                        break
                    continue
                data = await trio.to_thread.run_sync(cache.read, item.digest)
                if data is None:
                    missed = True  # dropped from the cache meanwhile
                    break
                found[name] = dataclasses.replace(item, data=data, cached=False)
        if missed:
            logger.info("fetching %r: a cached value went meanwhile; fetching it whole", query)
            found = await self._fetch(broker, query, ())
        for name, item in found.items():
            if item.digest is not None and not item.cached:
                if await trio.to_thread.run_sync(cache.store, item.digest, item.data):
                    cache.note(name, item.digest)
            elif item.digest is not None:
                cache.note(name, item.digest)
        return found

    async def _fetch(
        self, broker: str, query: DataName, have: tuple[bytes, ...]
    ) -> dict[DataName, DataItem]:
        found: dict[DataName, DataItem] = {}
        replies = await self._ask(broker, query, None, settle=True, have=have)
        pages: list[tuple[DataGetReply, str]] = list(replies)
        while pages:
            reply, source = pages.pop(0)
            if reply.status == DataStatus.NOT_FOUND:
                continue
            if reply.status != DataStatus.OK:
                raise FetchError(_status_text(query, reply))
            for item in reply.items:
                if not name_matches(query, item.name):
                    logger.warning("%s: ignoring %r in the reply to %r", source, item.name, query)
                    continue
                if item.cached and item.digest not in have:
                    logger.warning("%s: %r comes without its value, unasked", source, item.name)
                    continue
                self.bytes += len(item.data)
                known = found.get(item.name)
                if known is None or item.written_at >= known.written_at:
                    found[item.name] = item
            if query in found and not is_wildcard(query):
                continue  # the datum itself: its subkeys are not needed
            if reply.cursor is not None:
                # A cursor means something only to the datastore that handed it out.
                pages.extend(await self._ask(source, query, reply.cursor, settle=False, have=have))
        return found

    async def fetch_all(
        self,
        broker: str,
        queries: list[DataName],
        *,
        parallel: int = 4,
        keep_cached: frozenset[DataName] = frozenset(),
    ) -> dict[DataName, dict[DataName, DataItem]]:
        """:meth:`fetch` each query (a few at once; those in ``keep_cached`` with
        ``keep_cached``). Raises :class:`FetchError` naming every query that failed."""
        results: dict[DataName, dict[DataName, DataItem]] = {}
        failures: list[str] = []
        limiter = trio.CapacityLimiter(parallel)

        async def one(query: DataName) -> None:
            async with limiter:
                try:
                    results[query] = await self.fetch(
                        broker, query, keep_cached=query in keep_cached
                    )
                except FetchError as exc:
                    failures.append(str(exc))

        async with trio.open_nursery() as nursery:
            for query in queries:
                nursery.start_soon(one, query)
        if failures:
            raise FetchError("; ".join(sorted(failures)))
        return results

    async def _ask(
        self,
        destination: str,
        query: DataName,
        cursor: str | None,
        *,
        settle: bool,
        have: tuple[bytes, ...] = (),
    ) -> list[tuple[DataGetReply, str]]:
        """Send one request (retrying) and return its replies with their sources: the first,
        and with ``settle`` whatever else arrives within ``settle_s`` of it."""
        last = ""
        for attempt in range(1, self.attempts + 1):
            if self.reroute is not None:
                destination = self.reroute(destination)
            request_id = self.mailbox.next_request_id()
            send, receive = trio.open_memory_channel[Incoming](64)
            self._waiting[request_id] = send
            try:
                self.requests += 1
                await self.mailbox.send(
                    destination,
                    DataGet(
                        request_id=request_id,
                        query=query,
                        cursor=cursor,
                        max_bytes=self.page_bytes,
                        have=have,
                    ),
                    lifetime_s=self.lifetime_s if self.lifetime_s is not None else self.timeout_s,
                )
                got: list[tuple[DataGetReply, str]] = []
                # A large datum takes long on a slow link: wait as long as octets arrive.
                arrived = await wait_while_arriving(
                    receive.receive, self.timeout_s, self.mailbox.node.received_octets
                )
                if arrived is not None:
                    got.append(_reply(arrived))
                if not got:
                    last = f"no reply from {destination} within {self.timeout_s:g} s"
                    logger.info("fetching %r: %s (attempt %d)", query, last, attempt)
                    continue
                first = got[0][0]
                if first.status == DataStatus.UNAVAILABLE:
                    last = _status_text(query, first)
                    logger.info("fetching %r: %s (attempt %d)", query, last, attempt)
                    if attempt < self.attempts:
                        await trio.sleep(self.retry_delay_s)
                    continue
                done = not is_wildcard(query) and any(i.name == query for i in first.items)
                if settle and not done:
                    with trio.move_on_after(self.settle_s):
                        while True:
                            got.append(_reply(await receive.receive()))
                return got
            finally:
                del self._waiting[request_id]
                send.close()
        raise FetchError(f"could not fetch {query!r}: {last} ({self.attempts} attempts)")


def _reply(incoming: Incoming) -> tuple[DataGetReply, str]:
    assert isinstance(incoming.message, DataGetReply)
    return incoming.message, str(incoming.source)


def _status_text(query: DataName, reply: DataGetReply) -> str:
    try:
        status = DataStatus(reply.status).name.lower().replace("_", " ")
    except ValueError:
        status = f"status {reply.status}"
    detail = f": {reply.detail}" if reply.detail else ""
    return f"could not fetch {query!r}: {status}{detail}"
