"""Helpers of the executor role tests: a broker-and-datastore played by one plain Mailbox, a
small WASI "copy" program, and a network of two real bundle nodes around an executor."""

from __future__ import annotations

import dataclasses
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from tests.ucp_dtn.agent_support import RunningNode, start_node, wait_until
from ucp_dtn.agent import BundleNode
from ucp_dtn.roles import Mailbox, RoleName, role_endpoint
from ucp_dtn.roles.executor import ExecutorRole
from ucp_dtn.roles.settings import RoleSettings
from ucp_dtn.store import BundleStore
from ucp_dtn.ucp import name_matches
from ucp_dtn.ucp.job import JobInfo
from ucp_dtn.ucp.messages import (
    DataGet,
    DataGetReply,
    DataItem,
    DataPut,
    DataReply,
    DataStatus,
    Heartbeat,
    JobCancel,
    JobDispatch,
    JobOutput,
    JobResult,
    JobState,
)
from ucp_dtn.ucp.runtime import WorkerPool

from ..runtime.wat import wat

LIMIT = 60.0
"""Seconds any one wait may take (worker processes start slowly on a busy machine)."""

COPY_WAT = """
;; Copies files in pairs of arguments: "copy SRC DST SRC DST ...". "-" is stdin as a source and
;; stdout as a destination; other paths are opened beneath the preopened job directory (fd 3).
;; Exits with the WASI errno when a path cannot be opened.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: count, 16: opened fd, 64/68: argc and argv buffer size,
  ;; 1024: argv pointers, 4096: argv strings (up to 12 KiB), 16384: copy buffer (4096 bytes).
  (memory (export "memory") 1)
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $n))
  (func $open (param $p i32) (param $write i32) (result i32) (local $err i32)
    (if (i32.and (i32.eq (i32.load8_u (local.get $p)) (i32.const 45))
                 (i32.eqz (i32.load8_u offset=1 (local.get $p))))
      (then (return (local.get $write))))
    (local.set $err
      (call $path_open (i32.const 3) (i32.const 0) (local.get $p) (call $strlen (local.get $p))
        (select (i32.const 9) (i32.const 0) (local.get $write))
        (select (i64.const 64) (i64.const 2) (local.get $write))
        (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err) (then (call $proc_exit (local.get $err))))
    (i32.load (i32.const 16)))
  (func $copy (param $in i32) (param $out i32) (local $n i32)
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.const 16384))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done (call $fd_read (local.get $in) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store (i32.const 4) (local.get $n))
        (drop (call $fd_write (local.get $out) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br $more))))
  (func $arg (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
  (func (export "_start") (local $i i32)
    (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (local.set $i (i32.const 1))
    (block $done
      (loop $pairs
        (br_if $done
          (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (i32.load (i32.const 64))))
        (call $copy
          (call $open (call $arg (local.get $i)) (i32.const 0))
          (call $open (call $arg (i32.add (local.get $i) (i32.const 1))) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $pairs)))))
"""


def copy_wasm() -> bytes:
    """The copy program (see :data:`COPY_WAT`)."""
    return wat(COPY_WAT)


def unzip(archive: bytes) -> dict[str, bytes]:
    """Name → content of every entry of a zip."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


async def answer_get(
    mailbox: Mailbox, data: Mapping[str, DataItem], message: DataGet, reply_to: str
) -> None:
    """Answer a data-get from ``data`` as a datastore does, one datum per page."""
    matches = sorted(
        (item for item in data.values() if name_matches(message.query, item.name)),
        key=lambda item: item.name,
    )
    start = int(message.cursor or 0)
    more = start + 1 < len(matches)
    await mailbox.send(
        reply_to,
        DataGetReply(
            request_id=message.request_id,
            status=DataStatus.OK if matches else DataStatus.NOT_FOUND,
            items=tuple(matches[start : start + 1]),
            cursor=str(start + 1) if more else None,
        ),
    )


@dataclass
class FakeDatastore:
    """A datastore that only answers data-get requests from ``data``."""

    mailbox: Mailbox
    data: dict[str, DataItem] = field(default_factory=dict)
    gets: list[DataGet] = field(default_factory=list)

    def store(self, name: str, data: bytes, written_at: float = 1.0) -> None:
        self.data[name] = DataItem(name, data, written_at=written_at)

    async def serve(self) -> None:
        while True:
            incoming = await self.mailbox.receive()
            message = incoming.message
            if isinstance(message, DataGet):
                self.gets.append(message)
                reply_to = message.reply_to or str(incoming.source)
                await answer_get(self.mailbox, self.data, message, reply_to)
            await incoming.done()


@dataclass
class FakeBroker:
    """A broker and a datastore in one plain Mailbox: answers data requests from ``data``
    (one datum per page, to exercise paging) and relays new queries to ``datastore`` as well
    (so the executor merges two datastores' replies), stores puts, and records what the
    executor sends."""

    mailbox: Mailbox
    datastore: FakeDatastore
    data: dict[str, DataItem] = field(default_factory=dict)
    results: list[JobResult] = field(default_factory=list)
    states: list[JobState] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    gets: list[DataGet] = field(default_factory=list)
    puts: list[DataPut] = field(default_factory=list)
    outputs: list[JobOutput] = field(default_factory=list)
    refuse_puts: bool = False
    taken: set[str] = field(default_factory=set)
    """Names an exclusive put of another job finds taken (answered TAKEN)."""
    hold_gets: trio.Event | None = None
    """While set to an event not yet set, data requests wait for it (and so does everything
    the broker receives after them)."""

    @property
    def endpoint(self) -> str:
        return str(self.mailbox.endpoint)

    def store(self, name: str, data: bytes, written_at: float = 1.0) -> None:
        self.data[name] = DataItem(name, data, written_at=written_at)

    async def serve(self) -> None:
        while True:
            incoming = await self.mailbox.receive()
            message = incoming.message
            reply_to = getattr(message, "reply_to", None) or str(incoming.source)
            if isinstance(message, DataGet):
                self.gets.append(message)
                if self.hold_gets is not None:
                    await self.hold_gets.wait()
                if message.cursor is None:
                    relayed = dataclasses.replace(message, reply_to=reply_to)
                    await self.mailbox.send(self.datastore.mailbox.endpoint, relayed)
                await answer_get(self.mailbox, self.data, message, reply_to)
            elif isinstance(message, DataPut):
                self.puts.append(message)
                if self.refuse_puts:
                    status = DataStatus.NO_SPACE
                elif message.exclusive and message.name in self.taken:
                    status = DataStatus.TAKEN
                    await self.mailbox.send(
                        reply_to,
                        DataReply(
                            request_id=message.request_id,
                            status=status,
                            detail=f"name {message.name!r} already taken",
                        ),
                    )
                    await incoming.done()
                    continue
                else:
                    status = DataStatus.OK
                    self.data[message.name] = DataItem(
                        message.name, message.data, message.written_at, message.job_id
                    )
                await self.mailbox.send(
                    reply_to, DataReply(request_id=message.request_id, status=status, count=1)
                )
            elif isinstance(message, JobResult):
                self.results.append(message)
            elif isinstance(message, JobState):
                self.states.append(message)
            elif isinstance(message, Heartbeat):
                self.heartbeats.append(message)
            elif isinstance(message, JobOutput):
                self.outputs.append(message)
            await incoming.done()

    async def dispatch(
        self,
        executor: str,
        job: JobInfo,
        *,
        inline_data: Mapping[str, bytes] | None = None,
        attempt: int = 1,
    ) -> None:
        await self.mailbox.send(
            executor,
            JobDispatch(
                job=job,
                broker=self.endpoint,
                client="dtn://client/ucp/client",
                attempt=attempt,
                inline_data=dict(inline_data or {}),
            ),
            custody=True,
        )

    async def cancel(self, executor: str, job_id: uuid.UUID, reason: str = "") -> None:
        message = JobCancel(self.mailbox.next_request_id(), (job_id,), reason=reason)
        await self.mailbox.send(executor, message, custody=True)

    def output_of(self, job_id: uuid.UUID) -> bytes:
        """Standard output the executor reported for ``job_id`` (chunks placed at their
        offsets)."""
        text = bytearray()
        for message in self.outputs:
            if message.job_id == job_id:
                end = message.stdout_at + len(message.stdout)
                text[message.stdout_at : end] = message.stdout
        return bytes(text)

    def results_of(self, job_id: uuid.UUID) -> list[JobResult]:
        return [result for result in self.results if result.job_id == job_id]

    async def result(self, job_id: uuid.UUID, *, count: int = 1) -> JobResult:
        """The first result of ``job_id``, once ``count`` have arrived."""
        await wait_until(lambda: len(self.results_of(job_id)) >= count, timeout=LIMIT)
        return self.results_of(job_id)[0]


@dataclass
class Network:
    """Node ``b`` (the fake broker and a second datastore) and node ``e`` (the executor),
    connected."""

    broker_node: RunningNode
    executor_node: RunningNode
    broker: FakeBroker

    @property
    def node(self) -> BundleNode:
        return self.executor_node.node

    @property
    def executor_endpoint(self) -> str:
        return str(role_endpoint(self.node.node_id, RoleName.EXECUTOR))


@asynccontextmanager
async def network(executor_store: BundleStore | None = None) -> AsyncIterator[Network]:
    """Two connected nodes and the fake broker serving on ``b`` (``executor_store``: the
    bundle store of ``e``, in memory by default)."""
    async with trio.open_nursery() as nursery:
        b = await start_node(nursery, "b")
        e = await start_node(nursery, "e", store=executor_store)
        with trio.fail_after(LIMIT):
            await e.node.connect(*b.address)
            await wait_until(lambda: any(p.node_id == "dtn://b/" for p in e.node.peers()))
        datastore = FakeDatastore(
            Mailbox(b.node, role_endpoint(b.node.node_id, RoleName.DATASTORE))
        )
        broker = FakeBroker(
            Mailbox(b.node, role_endpoint(b.node.node_id, RoleName.BROKER)), datastore
        )
        for fake in (datastore, broker):
            await nursery.start(fake.mailbox.run)
            nursery.start_soon(fake.serve)
        yield Network(b, e, broker)
        nursery.cancel_scope.cancel()


def executor_settings(workdir: Path | None = None, **overrides: Any) -> RoleSettings:
    """Settings of an executor that uses broker ``b`` and heartbeats often."""
    values: dict[str, Any] = {
        "roles": (RoleName.EXECUTOR,),
        "workdir": workdir,
        "brokers": ("dtn://b/",),
        "heartbeat_interval_s": 0.2,
        "max_jobs": 2,
        "request_timeout_s": 10.0,
    }
    values.update(overrides)
    return RoleSettings(**values)


@dataclass
class RunningExecutor:
    """An executor role started by :func:`start_executor`; ``stop()`` cancels just it."""

    role: ExecutorRole
    scope: trio.CancelScope
    stopped: trio.Event

    async def stop(self) -> None:
        self.scope.cancel()
        with trio.fail_after(LIMIT):
            await self.stopped.wait()


async def start_executor(
    nursery: trio.Nursery,
    node: BundleNode,
    settings: RoleSettings,
    *,
    pool: WorkerPool | None = None,
) -> RunningExecutor:
    role = ExecutorRole(node, settings, pool=pool)
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await role.run(task_status=task_status)
        finally:
            stopped.set()

    with trio.fail_after(LIMIT):
        await nursery.start(run)
    return RunningExecutor(role, scope, stopped)
