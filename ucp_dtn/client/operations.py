"""What the ``ucp`` client commands do, as operations on a client session: each takes the
command's arguments as plain values and returns a plain document (:mod:`.documents`), sending
events (progress, output) on the way.

The client agent runs them for the commands that connect to it (:mod:`.agent`); ``ucp
--no-agent`` runs them in the command's own process (:func:`run_in_process`). Either way the
command only formats what comes back, so both give the same output.

An operation that changes state — submitting, putting or deleting data, cancelling — shields
that part from cancellation: a command interrupted (Ctrl-C) after it asked for it does not
leave it half done.

Operations that may move large data (``submit``, ``run``, ``collect``, ``data-put``,
``data-get``) send ``transfer`` events while they run when the command asks for them
(``progress`` in its arguments: it shows bars, see :mod:`.progress`). Those that upload
(``submit``, ``run``, ``data-put``) end by looking at what is left to send: in the command's
own process (``--no-agent``) they first wait while it leaves (:meth:`ClientSession.drain`: as
long as peers keep acknowledging it), since the node stops with the command; the agent's node
goes on forwarding after the command, so there they do not wait. An ``unsent`` event
(``{"event": "unsent", "octets": n}``) tells the command when a large part is left.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..private_files import write_private
from ..ucp import (
    DataItem,
    ExecutionPlan,
    JobAccepted,
    JobResult,
    JobState,
    JobStatus,
    JobSubmission,
    PlanError,
)
from ..ucp.plan_loader import parse_plan
from .collect import Collected, CollectState, collect_results, result_summary
from .data import delete_data, free_space, get_data, list_data, put_data, replica_listing
from .documents import (
    JobNames,
    cancel_document,
    collected_document,
    foreign_document,
    job_document,
    listing_document,
    node_document,
    replicas_document,
    space_document,
    submit_document,
)
from .errors import BrokerUnreachable, ClientError, ClientUsageError, NoReply
from .jobs import SubmitOutcome, cancel_jobs, job_output, submit_plan, wait_for_jobs
from .journal import JobEntry
from .node import ClientNode, JobEvent
from .progress import LARGE_OCTETS, report_transfers
from .session import ClientSession
from .settings import ClientSettings
from .stranded import move_stranded

__all__ = ["OPERATIONS", "Emit", "run_in_process", "run_operation"]

logger = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
"""Sends an event to the command (progress, output)."""
Operation = Callable[[ClientSession, dict[str, Any], Emit], Awaitable[dict[str, Any]]]

_LOG_POLL_S = 1.0
_STATE_WORDS = {status.name.lower(): status for status in JobStatus}


def _uuid(text: object, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        raise ClientUsageError(f"{what}: not a job UUID: {text!r}") from None


async def _names(session: ClientSession) -> JobNames:
    return JobNames(await session.journal.jobs())


async def _find_all(session: ClientSession, references: Sequence[str]) -> list[JobEntry]:
    return [await session.journal.find(reference) for reference in references]


# -- submitting and running ------------------------------------------------------------------------


async def _load_plan(args: dict[str, Any]) -> ExecutionPlan:
    shown = str(args["plan"])
    path = Path(args["path"])

    def load() -> ExecutionPlan:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(shown, f"not UTF-8 text: {exc.reason}") from None
        except OSError as exc:
            raise PlanError(shown, f"cannot read it: {exc.strerror or exc}") from None
        return parse_plan(text, source=path, file=shown)

    try:
        return await trio.to_thread.run_sync(load)
    except PlanError as exc:
        raise ClientUsageError(str(exc)) from None


async def _submit(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    plan = await _load_plan(args)
    with trio.CancelScope(shield=True):
        report = await submit_plan(session, plan)
    document = submit_document(report, str(args["plan"]), str(session.home.path))
    if report.outcome is SubmitOutcome.QUEUED:
        document["why"] = session.unreachable()
    return document


def progress(event: JobEvent) -> str | None:
    """What a change to a job says, after its label (``None``: nothing worth a line)."""
    entry, message = event.entry, event.message
    if isinstance(message, JobAccepted):
        return f"accepted by {message.broker}"
    if isinstance(message, JobState):
        state = message.state
        word = state.name.lower() if isinstance(state, JobStatus) else f"state {state}"
        if state == JobStatus.DISPATCHED and message.executor:
            # A short job reports no "running" (its result follows at once): say where it went.
            return f"dispatched to {message.executor}"
        if state in (JobStatus.DONE, JobStatus.FAILED) and entry.result is not None:
            return None  # the result's line said it
        if state == JobStatus.RUNNING and message.executor:
            return f"running on {message.executor}"
        if message.detail and message.detail != word:
            return f"{word}: {message.detail}"
        return word
    if isinstance(message, JobResult):
        return None if entry.final else result_summary(entry)
    if isinstance(message, JobSubmission) and message.moved_from is not None:
        # Sent again by this client (:mod:`.stranded`).
        return (
            f"moved to {entry.broker}: {message.moved_from} accepted it, does not answer, "
            "and no other broker knows the job"
        )
    return None


@contextlib.asynccontextmanager
async def _moves_told(session: ClientSession, emit: Emit) -> AsyncIterator[None]:
    """Say in one line each (on the command's stderr) which jobs the block sent to another
    broker because theirs was lost (:mod:`.stranded`)."""
    lines: list[str] = []

    def note(event: JobEvent) -> None:
        text = progress(event) if isinstance(event.message, JobSubmission) else None
        if text is not None:
            lines.append(f"ucp: {event.entry.label}: {text}")

    session.client.watch(note)
    try:
        yield
    finally:
        session.client.unwatch(note)
    for line in lines:
        await emit({"event": "log", "line": line})


async def _run(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    plan = await _load_plan(args)
    timeout = math.inf if args.get("timeout") is None else float(args["timeout"])
    send, receive = trio.open_memory_channel[JobEvent](math.inf)
    session.watch(send.send_nowait)
    with trio.CancelScope(shield=True):
        report = await submit_plan(session, plan)
    names = await _names(session)
    submitted = submit_document(report, str(args["plan"]), str(session.home.path))
    await emit({"event": "submitted", **submitted})
    while True:  # what happened during the submission was said by it
        try:
            receive.receive_nowait()
        except trio.WouldBlock:
            break
    job_ids = [job.job_id for job in report.jobs]

    async def forward() -> None:
        async for event in receive:
            text = progress(event)
            if text is not None and event.entry.job_id in job_ids:
                line = f"{event.entry.label}: {names.humanize(text)}"
                await emit({"event": "progress", "line": line})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(forward)
        if report.outcome is SubmitOutcome.QUEUED:
            await emit({"event": "note", "line": "waiting for a broker..."})
            if await session.find_broker(timeout) is None:
                raise BrokerUnreachable(
                    f"{session.unreachable()}: the jobs stay queued (see ucp status)"
                )
        entries = await wait_for_jobs(session, job_ids, timeout_s=timeout)
        items = await collect_results(session, entries, Path(args["output"]))
        await trio.sleep(0)
        nursery.cancel_scope.cancel()
    names = await _names(session)
    return {
        "submit": submitted,
        "jobs": [collected_document(item, names) for item in items],
        "unfinished": sum(1 for entry in entries if not entry.settled),
    }


# -- following jobs ----------------------------------------------------------------------------


async def _status(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    chosen = await _find_all(session, args.get("jobs", []))
    job_ids = tuple(entry.job_id for entry in chosen)
    broker = await session.find_broker()
    problem: str | None = None
    nodes = []
    extra = []
    if broker is None:
        problem = session.unreachable()
    else:
        try:
            async with _moves_told(session, emit):
                reply = await session.status(job_ids, include_nodes=bool(args.get("nodes")))
                asked = job_ids or tuple(
                    entry.job_id for entry in await session.journal.jobs() if not entry.settled
                )
                # A job no broker knows may be stranded with a lost one: send it again here.
                await move_stranded(session, asked, reply)
            nodes = [node_document(node) for node in reply.nodes]
            extra = [
                status for status in reply.jobs if await session.journal.get(status.job_id) is None
            ]
        except NoReply as exc:
            problem = str(exc)
    if job_ids:
        entries = [await session.journal.get(e.job_id) or e for e in chosen]
    else:
        entries = await session.journal.jobs()
    names = await _names(session)
    return {
        "jobs": [job_document(entry, names) for entry in entries]
        + [foreign_document(status, names) for status in extra],
        "nodes": nodes,
        "error": problem,
    }


def _plan_matches(entry: JobEntry, plan: str) -> bool:
    return entry.plan == plan or Path(entry.plan).name == plan or entry.plan.endswith("/" + plan)


async def _jobs(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    states = [str(state) for state in args.get("states", [])]
    plan = args.get("plan")
    limit = int(args.get("limit") or 0)
    names = await _names(session)
    if args.get("all"):
        broker_states = []
        for word in states:
            if word not in _STATE_WORDS:
                raise ClientUsageError(
                    f"the broker knows no state {word!r} (it knows {', '.join(_STATE_WORDS)})"
                )
            broker_states.append(_STATE_WORDS[word])
        await session.require_broker()
        reply = await session.status(everyone=True, states=tuple(broker_states), limit=limit)
        documents = []
        for status in reply.jobs:
            entry = await session.journal.get(status.job_id)
            if entry is not None:
                document = job_document(entry, names)
            else:
                document = foreign_document(status, names)
            if plan is None or (entry is not None and _plan_matches(entry, plan)):
                documents.append(document)
        documents.sort(key=lambda document: document.get("updated_at") or 0.0)
        return {"jobs": documents, "more": reply.more, "source": "broker"}
    entries = await session.journal.jobs()
    documents = [job_document(entry, names) for entry in entries]
    if states:
        documents = [document for document in documents if document["state"] in states]
    if plan is not None:
        kept = {str(e.job_id) for e in entries if _plan_matches(e, plan)}
        documents = [document for document in documents if document["job_id"] in kept]
    more = 0
    if limit and len(documents) > limit:
        more = len(documents) - limit
        documents = documents[-limit:]
    return {"jobs": documents, "more": more, "source": "journal"}


async def _cancel(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    entries = await _find_all(session, args.get("jobs", []))
    with trio.CancelScope(shield=True):
        outcomes = await cancel_jobs(session, entries, reason=str(args.get("reason") or ""))
    return cancel_document(outcomes, await _names(session))


async def _logs(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    [entry] = await _find_all(session, [args["job"]])
    follow = bool(args.get("follow"))
    positions = {"stdout": 0, "stderr": 0}
    shown = 0
    state: JobStatus | int | None = entry.state
    source = "broker"
    while True:
        try:
            reply = await job_output(
                session,
                entry.job_id,
                stdout_from=positions["stdout"],
                stderr_from=positions["stderr"],
            )
        except (BrokerUnreachable, NoReply):
            current = await session.journal.get(entry.job_id) or entry
            if follow or current.result is None:
                raise
            break
        if not reply.found:
            break
        state = reply.state
        for stream, at, data in (
            ("stdout", reply.stdout_at, reply.stdout),
            ("stderr", reply.stderr_at, reply.stderr),
        ):
            if at > positions[stream]:
                await emit(
                    {"event": "gap", "stream": stream, "at": at, "missing": at - positions[stream]}
                )
            if data:
                await emit({"event": "output", "stream": stream, "data": data})
                shown += len(data)
            positions[stream] = max(positions[stream], at + len(data))
        final = isinstance(state, JobStatus) and state.final
        if not follow or final:
            break
        await trio.sleep(_LOG_POLL_S)
    current = await session.journal.get(entry.job_id) or entry
    if shown == 0 and current.result is not None:
        # The broker holds none of it (any more): the end of each stream from the result.
        source = "result"
        for stream, data in (
            ("stdout", current.result.stdout_tail),
            ("stderr", current.result.stderr_tail),
        ):
            if data:
                await emit({"event": "output", "stream": stream, "data": data})
    names = await _names(session)
    document = job_document(current, names)
    if state is not None and current.state is None:
        document["state"] = state.name.lower() if isinstance(state, JobStatus) else str(state)
    return {"job": document, "source": source, "stdout_bytes": positions["stdout"]}


async def _collect(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    if args.get("jobs"):
        entries = await _find_all(session, args["jobs"])
    else:
        entries = [
            entry
            for entry in await session.journal.jobs()
            if args.get("all") or entry.collected_at is None
        ]
    items: list[Collected] = []
    if entries:
        async with _moves_told(session, emit):
            items = await collect_results(session, entries, Path(args["output"]))
    names = await _names(session)
    return {
        "jobs": [collected_document(item, names) for item in items],
        "pending": sum(1 for item in items if item.state is CollectState.PENDING),
    }


# -- named data ------------------------------------------------------------------------------------


async def _data_put(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    data = args.get("data")
    if data is None:
        file = str(args["file"])
        try:
            data = await trio.Path(file).read_bytes()
        except OSError as exc:
            raise ClientUsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    job = None if args.get("job") is None else _uuid(args["job"], "--job")
    replace = bool(args.get("replace"))
    replicas = args.get("replicas")
    with trio.CancelScope(shield=True):
        try:
            outcome = await put_data(
                session,
                str(args["name"]),
                data,
                job_id=job,
                replicas=replicas,
                exclusive=not replace,
                private=bool(args.get("private")),
            )
        except ClientError as exc:
            if "already taken" in str(exc):
                raise ClientError(f"{exc} (--replace overwrites it)") from None
            raise
    return {
        "name": outcome.name,
        "size": outcome.size,
        "stored": outcome.stored,
        "detail": outcome.detail,
        "holder": outcome.holder,
        "replicas": outcome.replicas,
    }


def _write_items(items: list[DataItem], output: Path) -> list[str]:
    """Write fetched data under ``output`` (files for their owner only); returns what was
    written (one line each)."""
    written = []
    try:
        if len(items) == 1 and not output.is_dir():
            output.parent.mkdir(parents=True, exist_ok=True)
            write_private(output, items[0].data)
            return [f"{items[0].name} -> {output} ({len(items[0].data)} bytes)"]
        for item in items:
            path = output / item.name
            if path.is_dir():
                written.append(f"{item.name}: skipped (also a directory of subkeys)")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, item.data)
            written.append(f"{item.name} -> {path} ({len(item.data)} bytes)")
    except OSError as exc:
        raise ClientError(f"cannot write {exc.filename or output}: {exc.strerror}") from None
    return written


async def _data_get(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    name = str(args["name"])
    items = await get_data(session, name)
    if not items:
        raise ClientError(f"no data named {name!r}")
    if args.get("output") is None:
        if len(items) != 1 or items[0].name != name:
            raise ClientUsageError(f"{name!r} selects {len(items)} data: give -o DIR to write them")
        return {"name": items[0].name, "data": items[0].data}
    written = await trio.to_thread.run_sync(_write_items, items, Path(args["output"]))
    return {"written": written}


async def _data_ls(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    page = await list_data(
        session,
        args.get("prefix"),
        job_id=None if args.get("job") is None else _uuid(args["job"], "--job"),
        page_size=int(args.get("page_size", 100)),
        page=args.get("page"),
        all_pages=bool(args.get("all")),
    )
    return listing_document(page)


async def _data_replicas(
    session: ClientSession, args: dict[str, Any], emit: Emit
) -> dict[str, Any]:
    entries, datastores = await replica_listing(
        session,
        args.get("prefix"),
        job_id=None if args.get("job") is None else _uuid(args["job"], "--job"),
    )
    return replicas_document(entries, datastores)


async def _data_rm(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    name = args.get("name")
    job = None if args.get("job") is None else _uuid(args["job"], "--job")
    with trio.CancelScope(shield=True):
        count = await delete_data(
            session, name, job_id=job, keep_result=not args.get("with_result")
        )
    if count == 0:
        raise ClientError(
            f"no data named {name!r}" if name is not None else f"job {job} has no data"
        )
    return {"deleted": count}


async def _data_df(session: ClientSession, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
    return space_document(await free_space(session))


# -- running them ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """One operation of the client."""

    run: Operation
    """What it does."""
    transfers: bool = False
    """Whether it may move large data (it sends ``transfer`` events when asked)."""
    uploads: bool = False
    """Whether it sends data (it ends by looking at what is left to send)."""


OPERATIONS: dict[str, OperationInfo] = {
    "submit": OperationInfo(_submit, transfers=True, uploads=True),
    "run": OperationInfo(_run, transfers=True, uploads=True),
    "status": OperationInfo(_status),
    "jobs": OperationInfo(_jobs),
    "cancel": OperationInfo(_cancel),
    "logs": OperationInfo(_logs),
    "collect": OperationInfo(_collect, transfers=True),
    "data-put": OperationInfo(_data_put, transfers=True, uploads=True),
    "data-get": OperationInfo(_data_get, transfers=True),
    "data-ls": OperationInfo(_data_ls),
    "data-replicas": OperationInfo(_data_replicas),
    "data-rm": OperationInfo(_data_rm),
    "data-df": OperationInfo(_data_df),
}
"""Every operation by the name commands ask for."""


async def run_operation(
    client: ClientNode,
    settings: ClientSettings,
    name: str,
    args: dict[str, Any],
    emit: Emit,
    *,
    node_stays: bool = True,
) -> dict[str, Any]:
    """Run operation ``name`` with ``args`` in a session with ``settings`` on ``client``.
    ``node_stays``: the node goes on forwarding after the operation (the agent's); otherwise an
    operation that uploads waits while what is left leaves (see the module docstring)."""
    operation = OPERATIONS.get(name)
    if operation is None:
        raise ClientUsageError(f"unknown operation {name!r}")
    async with ClientSession.on(client, settings) as session:
        async with contextlib.AsyncExitStack() as reports:
            if operation.transfers and args.get("progress"):
                await reports.enter_async_context(report_transfers(session, emit))
            document = await operation.run(session, args, emit)
            if operation.uploads and not node_stays:
                await session.drain()
        if operation.uploads:
            left = await session.node.pending_forward_bytes()
            if left >= LARGE_OCTETS:
                await emit({"event": "unsent", "octets": left})
        return document


def run_in_process(
    settings: ClientSettings,
    name: str,
    args: dict[str, Any],
    on_event: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Run operation ``name`` in this process, with a client node of its own (``ucp
    --no-agent``): waits for the home, as a program using the library does.

    Ctrl-C (SIGINT, in the main thread) cancels the operation as a command going away does
    with the agent — what it shields (a submission, a put, a cancel) finishes, and the node
    leaves as usual — then raises :class:`KeyboardInterrupt`."""

    async def emit(event: dict[str, Any]) -> None:
        on_event(event)

    interrupted = False

    async def on_sigint(scope: trio.CancelScope) -> None:
        nonlocal interrupted
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                interrupted = True
                scope.cancel()

    async def main() -> dict[str, Any]:
        async with ClientNode.open(settings) as client, trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:
                if threading.current_thread() is threading.main_thread():
                    nursery.start_soon(on_sigint, scope)
                document = await run_operation(client, settings, name, args, emit, node_stays=False)
                nursery.cancel_scope.cancel()
                return document
            nursery.cancel_scope.cancel()
            raise KeyboardInterrupt

    try:
        return trio.run(main)
    except KeyboardInterrupt:
        raise
    except BaseExceptionGroup as group:
        if interrupted:
            raise KeyboardInterrupt from None
        raise group
