"""CBOR encoding and strict decoding of UCP messages (format in :mod:`ucp_dtn.ucp.messages`).

Decoding happens at the edge and is then trusted: :func:`decode_message` first checks that the
payload is exactly one well-formed CBOR item nested at most :data:`MAX_DEPTH` deep (no
trailing bytes, no string longer than the payload), lets cbor2 build it, then checks every
field's type and range and builds the frozen message, whose own validation (JobInfo's paths
and names, capabilities' ranges) runs too. Whatever goes wrong surfaces as
:class:`~ucp_dtn.ucp.errors.MessageDecodeError` naming the kind and field — never a cbor2
error, ``KeyError``, ``TypeError`` or ``RecursionError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import cbor2

from ._wire import MAX_DEPTH, Fields, put, scan, type_name
from .capabilities import Capabilities, Requirements
from .errors import MessageDecodeError, UcpUsageError
from .job import DataRef, DataSource, InlineData, JobInfo, Limits
from .messages import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    BrokerSync,
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
    Heartbeat,
    JobAccepted,
    JobDispatch,
    JobResult,
    JobState,
    JobStatus,
    JobStatusEntry,
    JobSubmission,
    Message,
    NodeEntry,
    ResultStatus,
    Role,
    StatusQuery,
    StatusReply,
    SyncedJob,
    Timings,
    UcpMessage,
)

__all__ = [
    "MAX_DEPTH",
    "MESSAGE_KINDS",
    "decode_job_info",
    "decode_message",
    "decode_message_as",
    "encode_job_info",
    "encode_message",
]

_M = TypeVar("_M", bound=UcpMessage)
Wire = dict[str, Any]


# -- shared structures ---------------------------------------------------------------------------


def _source_to_wire(source: DataSource) -> bytes | str:
    return source.data if isinstance(source, InlineData) else source.name


def _source_from_wire(value: object, fields: Fields, key: str) -> DataSource:
    if type(value) is bytes:
        return InlineData(value)
    if type(value) is str:
        return DataRef(value)
    raise fields.fail(key, "bytes (inline) or text (a data name)", value)


def _requirements_to_wire(req: Requirements) -> Wire:
    wire: Wire = {}
    put(wire, "memory", req.memory, 0)
    put(wire, "disk", req.disk, 0)
    put(wire, "cpu-cores", req.cpu_cores, 0)
    put(wire, "cpu-freq", req.cpu_freq, 0.0)
    put(wire, "free-cpu", req.free_cpu, 0.0)
    put(wire, "max-cpu-load", req.max_cpu_load)
    put(wire, "min-power", req.min_power, 0.0)
    put(wire, "no-battery", req.no_battery, False)
    put(wire, "extra", dict(req.extra), {})
    return wire


def _requirements_from_wire(f: Fields) -> Requirements:
    return Requirements(
        memory=f.uint_or("memory", 0),
        disk=f.uint_or("disk", 0),
        cpu_cores=f.uint_or("cpu-cores", 0),
        cpu_freq=f.number_or("cpu-freq", 0.0),
        free_cpu=f.number_or("free-cpu", 0.0),
        max_cpu_load=f.opt_number("max-cpu-load"),
        min_power=f.number_or("min-power", 0.0),
        no_battery=f.boolean("no-battery", False),
        extra=f.mapping("extra"),
    )


def _capabilities_to_wire(caps: Capabilities) -> Wire:
    return {
        "memory": caps.memory,
        "disk": caps.disk,
        "cpu-load": caps.cpu_load,
        "cpu-cores": caps.cpu_cores,
        "cpu-freq": caps.cpu_freq,
        "battery": caps.has_battery,
        "power": caps.power,
        "extra": dict(caps.extra),
    }


def _capabilities_from_wire(f: Fields) -> Capabilities:
    return Capabilities(
        memory=f.uint("memory"),
        disk=f.uint("disk"),
        cpu_load=f.number("cpu-load"),
        cpu_cores=f.uint("cpu-cores"),
        cpu_freq=f.number_or("cpu-freq", 0.0),
        has_battery=f.boolean("battery", False),
        power=f.number_or("power", 100.0),
        extra=f.mapping("extra"),
    )


def _job_to_wire(job: JobInfo) -> Wire:
    wire: Wire = {"id": job.job_id.bytes, "wasm": _source_to_wire(job.wasm)}
    put(wire, "name", job.name, "")
    if job.stdin is not None:
        wire["stdin"] = _source_to_wire(job.stdin)
    put(wire, "files", {p: _source_to_wire(s) for p, s in job.job_data.items()}, {})
    put(wire, "inputs", dict(job.inputs), {})
    put(wire, "dirs", list(job.dirs), [])
    put(wire, "args", list(job.args), [])
    put(wire, "env", dict(job.env), {})
    put(wire, "results", list(job.zip_results), [])
    put(wire, "named-results", dict(job.named_results), {})
    put(wire, "requires", _requirements_to_wire(job.requirements), {})
    put(wire, "result-to", job.result_address)
    limits: Wire = {}
    put(limits, "fuel", job.limits.fuel)
    put(limits, "time", job.limits.time)
    put(limits, "memory", job.limits.memory)
    put(wire, "limits", limits, {})
    put(wire, "after", [dep.bytes for dep in job.after], [])
    put(wire, "stdout", job.stdout_path)
    put(wire, "stderr", job.stderr_path)
    return wire


def _job_from_wire(f: Fields) -> JobInfo:
    files = f.mapping("files")
    limits = f.sub("limits") if f.has("limits") else Fields({}, f.kind, "limits")
    requires = f.sub("requires") if f.has("requires") else None
    return JobInfo(
        job_id=f.job_uuid("id"),
        wasm=_source_from_wire(f.get("wasm"), f, "wasm"),
        name=f.text_or("name", ""),
        stdin=_source_from_wire(f.wire["stdin"], f, "stdin") if f.has("stdin") else None,
        job_data={p: _source_from_wire(s, f, f"files[{p!r}]") for p, s in files.items()},
        inputs=f.text_map("inputs"),
        dirs=f.texts("dirs"),
        args=f.texts("args"),
        env=f.text_map("env"),
        zip_results=f.texts("results"),
        named_results=f.text_map("named-results"),
        requirements=Requirements() if requires is None else _requirements_from_wire(requires),
        result_address=f.opt_text("result-to"),
        limits=Limits(
            fuel=limits.opt_uint("fuel"),
            time=limits.opt_number("time"),
            memory=limits.opt_uint("memory"),
        ),
        after=f.job_uuids("after"),
        stdout_path=f.opt_text("stdout"),
        stderr_path=f.opt_text("stderr"),
    )


def _status_entry_to_wire(entry: JobStatusEntry) -> Wire:
    wire: Wire = {"job-id": entry.job_id.bytes, "state": int(entry.state), "at": entry.updated_at}
    put(wire, "name", entry.name, "")
    put(wire, "detail", entry.detail, "")
    put(wire, "client", entry.client)
    put(wire, "executor", entry.executor)
    put(wire, "attempts", entry.attempts, 0)
    put(wire, "result-ref", entry.result_ref)
    return wire


def _status_entry_from_wire(f: Fields) -> JobStatusEntry:
    return JobStatusEntry(
        job_id=f.job_uuid("job-id"),
        state=f.code("state", JobStatus),
        updated_at=f.number("at"),
        name=f.text_or("name", ""),
        detail=f.text_or("detail", ""),
        client=f.opt_text("client"),
        executor=f.opt_text("executor"),
        attempts=f.uint_or("attempts", 0),
        result_ref=f.opt_text("result-ref"),
    )


def _data_entry_to_wire(entry: DataEntry) -> Wire:
    wire: Wire = {"name": entry.name, "size": entry.size, "at": entry.written_at}
    if entry.job_id is not None:
        wire["job-id"] = entry.job_id.bytes
    put(wire, "holder", entry.holder)
    return wire


def _data_entry_from_wire(f: Fields) -> DataEntry:
    return DataEntry(
        name=f.text("name"),
        size=f.uint("size"),
        written_at=f.number("at"),
        job_id=f.opt_job_uuid("job-id"),
        holder=f.opt_text("holder"),
    )


def _node_entry_to_wire(entry: NodeEntry) -> Wire:
    wire: Wire = {"node": entry.node, "roles": int(entry.roles), "last-seen": entry.last_seen}
    if entry.capabilities is not None:
        wire["capabilities"] = _capabilities_to_wire(entry.capabilities)
    put(wire, "running", entry.running_jobs, 0)
    put(wire, "max-jobs", entry.max_jobs, 0)
    return wire


def _node_entry_from_wire(f: Fields) -> NodeEntry:
    return NodeEntry(
        node=f.text("node"),
        roles=Role(f.uint("roles")),
        last_seen=f.number("last-seen"),
        capabilities=_capabilities_from_wire(f.sub("capabilities"))
        if f.has("capabilities")
        else None,
        running_jobs=f.uint_or("running", 0),
        max_jobs=f.uint_or("max-jobs", 0),
    )


def _request_head(request_id: int, reply_to: str | None) -> Wire:
    wire: Wire = {"request-id": request_id}
    put(wire, "reply-to", reply_to)
    return wire


# -- messages ------------------------------------------------------------------------------------


def _encode_body(message: UcpMessage) -> Wire:
    match message:
        case JobSubmission(job=job, inline_data=inline):
            wire: Wire = {"job": _job_to_wire(job)}
            put(wire, "inline-data", dict(inline), {})
            return wire
        case JobAccepted():
            return {
                "job-id": message.job_id.bytes,
                "broker": message.broker,
                "duplicate": message.duplicate,
            }
        case JobState():
            wire = {"job-id": message.job_id.bytes, "state": int(message.state), "at": message.at}
            put(wire, "detail", message.detail, "")
            put(wire, "executor", message.executor)
            put(wire, "attempt", message.attempt, 0)
            return wire
        case JobDispatch():
            wire = {
                "job": _job_to_wire(message.job),
                "broker": message.broker,
                "client": message.client,
                "attempt": message.attempt,
            }
            put(wire, "inline-data", dict(message.inline_data), {})
            return wire
        case JobResult():
            wire = {
                "job-id": message.job_id.bytes,
                "executor": message.executor,
                "status": int(message.status),
                "attempt": message.attempt,
                "started-at": message.started_at,
                "finished-at": message.finished_at,
            }
            put(wire, "exit-code", message.exit_code)
            put(wire, "message", message.message, "")
            put(wire, "stdout-tail", message.stdout_tail, b"")
            put(wire, "stderr-tail", message.stderr_tail, b"")
            put(wire, "archive", message.archive)
            put(wire, "archive-ref", message.archive_ref)
            put(wire, "published", list(message.published), [])
            timings = message.timings
            wire["timings"] = [timings.queued, timings.fetch, timings.run, timings.collect]
            put(wire, "fuel", message.fuel_consumed)
            return wire
        case Heartbeat():
            wire = {
                "node": message.node,
                "roles": int(message.roles),
                "sequence": message.sequence,
                "sent-at": message.sent_at,
                "interval": message.interval,
            }
            if message.capabilities is not None:
                wire["capabilities"] = _capabilities_to_wire(message.capabilities)
            put(wire, "running", [job.bytes for job in message.running_jobs], [])
            put(wire, "max-jobs", message.max_jobs, 0)
            put(wire, "broker", message.broker)
            put(wire, "store-free", message.store_free)
            put(wire, "store-used", message.store_used)
            return wire
        case DataPut():
            wire = _request_head(message.request_id, message.reply_to)
            wire |= {"name": message.name, "data": message.data, "at": message.written_at}
            if message.job_id is not None:
                wire["job-id"] = message.job_id.bytes
            return wire
        case DataReply():
            wire = {"request-id": message.request_id, "status": int(message.status)}
            put(wire, "detail", message.detail, "")
            put(wire, "count", message.count, 0)
            return wire
        case DataGet():
            wire = _request_head(message.request_id, message.reply_to)
            wire |= {"query": message.query, "max-bytes": message.max_bytes}
            put(wire, "cursor", message.cursor)
            return wire
        case DataGetReply():
            wire = {"request-id": message.request_id, "status": int(message.status)}
            items = []
            for item in message.items:
                entry: Wire = {"name": item.name, "data": item.data, "at": item.written_at}
                if item.job_id is not None:
                    entry["job-id"] = item.job_id.bytes
                items.append(entry)
            put(wire, "items", items, [])
            put(wire, "cursor", message.cursor)
            put(wire, "detail", message.detail, "")
            return wire
        case DataList():
            wire = _request_head(message.request_id, message.reply_to)
            wire["page-size"] = message.page_size
            put(wire, "prefix", message.prefix)
            if message.job_id is not None:
                wire["job-id"] = message.job_id.bytes
            put(wire, "cursor", message.cursor)
            return wire
        case DataListReply():
            wire = {"request-id": message.request_id, "status": int(message.status)}
            put(wire, "entries", [_data_entry_to_wire(e) for e in message.entries], [])
            put(wire, "cursor", message.cursor)
            put(wire, "detail", message.detail, "")
            return wire
        case DataDelete():
            wire = _request_head(message.request_id, message.reply_to)
            put(wire, "name", message.name)
            if message.job_id is not None:
                wire["job-id"] = message.job_id.bytes
            wire["keep-result"] = message.keep_result
            return wire
        case DataFreeSpace():
            return _request_head(message.request_id, message.reply_to)
        case DataFreeSpaceReply():
            wire = {
                "request-id": message.request_id,
                "node": message.node,
                "free": message.free,
                "used": message.used,
                "items": message.items,
            }
            put(wire, "quota", message.quota)
            return wire
        case StatusQuery():
            wire = _request_head(message.request_id, message.reply_to)
            put(wire, "job-ids", [job.bytes for job in message.job_ids], [])
            put(wire, "client", message.client)
            put(wire, "nodes", message.include_nodes, False)
            return wire
        case StatusReply():
            return {
                "request-id": message.request_id,
                "broker": message.broker,
                "jobs": [_status_entry_to_wire(entry) for entry in message.jobs],
                "nodes": [_node_entry_to_wire(entry) for entry in message.nodes],
            }
        case BrokerSync():
            jobs = []
            for synced in message.jobs:
                entry = {"status": _status_entry_to_wire(synced.status)}
                if synced.job is not None:
                    entry["job"] = _job_to_wire(synced.job)
                jobs.append(entry)
            return {
                "broker": message.broker,
                "sequence": message.sequence,
                "sent-at": message.sent_at,
                "full": message.full,
                "jobs": jobs,
                "data": [_data_entry_to_wire(entry) for entry in message.data],
            }
    raise TypeError(f"not a UCP message: {message!r}")


def _decode_timings(f: Fields) -> Timings:
    values = f.array("timings")
    numbers = []
    for index, value in enumerate(values[:4]):
        if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
            raise f.fail(f"timings[{index}]", "a finite number >= 0", value)
        numbers.append(float(value))
    return Timings(*numbers)


_DECODERS: dict[str, Callable[[Fields], Message]] = {
    JobSubmission.KIND: lambda f: JobSubmission(
        _job_from_wire(f.sub("job")), f.blob_map("inline-data")
    ),
    JobAccepted.KIND: lambda f: JobAccepted(
        f.job_uuid("job-id"), f.text("broker"), f.boolean("duplicate", False)
    ),
    JobState.KIND: lambda f: JobState(
        job_id=f.job_uuid("job-id"),
        state=f.code("state", JobStatus),
        at=f.number("at"),
        detail=f.text_or("detail", ""),
        executor=f.opt_text("executor"),
        attempt=f.uint_or("attempt", 0),
    ),
    JobDispatch.KIND: lambda f: JobDispatch(
        job=_job_from_wire(f.sub("job")),
        broker=f.text("broker"),
        client=f.text("client"),
        attempt=f.uint("attempt"),
        inline_data=f.blob_map("inline-data"),
    ),
    JobResult.KIND: lambda f: JobResult(
        job_id=f.job_uuid("job-id"),
        executor=f.text("executor"),
        status=f.code("status", ResultStatus),
        exit_code=f.opt_int("exit-code"),
        message=f.text_or("message", ""),
        stdout_tail=f.blob_or("stdout-tail", b""),
        stderr_tail=f.blob_or("stderr-tail", b""),
        archive=f.opt_blob("archive"),
        archive_ref=f.opt_text("archive-ref"),
        published=f.texts("published"),
        started_at=f.number("started-at"),
        finished_at=f.number("finished-at"),
        timings=_decode_timings(f),
        fuel_consumed=f.opt_uint("fuel"),
        attempt=f.uint("attempt"),
    ),
    Heartbeat.KIND: lambda f: Heartbeat(
        node=f.text("node"),
        roles=Role(f.uint("roles")),
        sequence=f.uint("sequence"),
        sent_at=f.number("sent-at"),
        interval=f.number("interval"),
        capabilities=_capabilities_from_wire(f.sub("capabilities"))
        if f.has("capabilities")
        else None,
        running_jobs=f.job_uuids("running"),
        max_jobs=f.uint_or("max-jobs", 0),
        broker=f.opt_text("broker"),
        store_free=f.opt_uint("store-free"),
        store_used=f.opt_uint("store-used"),
    ),
    DataPut.KIND: lambda f: DataPut(
        request_id=f.uint("request-id"),
        name=f.text("name"),
        data=f.blob("data"),
        written_at=f.number("at"),
        job_id=f.opt_job_uuid("job-id"),
        reply_to=f.opt_text("reply-to"),
    ),
    DataReply.KIND: lambda f: DataReply(
        request_id=f.uint("request-id"),
        status=f.code("status", DataStatus),
        detail=f.text_or("detail", ""),
        count=f.uint_or("count", 0),
    ),
    DataGet.KIND: lambda f: DataGet(
        request_id=f.uint("request-id"),
        query=f.text("query"),
        cursor=f.opt_text("cursor"),
        max_bytes=f.uint("max-bytes"),
        reply_to=f.opt_text("reply-to"),
    ),
    DataGetReply.KIND: lambda f: DataGetReply(
        request_id=f.uint("request-id"),
        status=f.code("status", DataStatus),
        items=tuple(
            DataItem(i.text("name"), i.blob("data"), i.number("at"), i.opt_job_uuid("job-id"))
            for i in f.subs("items")
        ),
        cursor=f.opt_text("cursor"),
        detail=f.text_or("detail", ""),
    ),
    DataList.KIND: lambda f: DataList(
        request_id=f.uint("request-id"),
        prefix=f.opt_text("prefix"),
        job_id=f.opt_job_uuid("job-id"),
        page_size=f.uint("page-size"),
        cursor=f.opt_text("cursor"),
        reply_to=f.opt_text("reply-to"),
    ),
    DataListReply.KIND: lambda f: DataListReply(
        request_id=f.uint("request-id"),
        status=f.code("status", DataStatus),
        entries=tuple(_data_entry_from_wire(e) for e in f.subs("entries")),
        cursor=f.opt_text("cursor"),
        detail=f.text_or("detail", ""),
    ),
    DataDelete.KIND: lambda f: DataDelete(
        request_id=f.uint("request-id"),
        name=f.opt_text("name"),
        job_id=f.opt_job_uuid("job-id"),
        keep_result=f.boolean("keep-result", True),
        reply_to=f.opt_text("reply-to"),
    ),
    DataFreeSpace.KIND: lambda f: DataFreeSpace(f.uint("request-id"), f.opt_text("reply-to")),
    DataFreeSpaceReply.KIND: lambda f: DataFreeSpaceReply(
        request_id=f.uint("request-id"),
        node=f.text("node"),
        free=f.uint("free"),
        used=f.uint("used"),
        items=f.uint_or("items", 0),
        quota=f.opt_uint("quota"),
    ),
    StatusQuery.KIND: lambda f: StatusQuery(
        request_id=f.uint("request-id"),
        job_ids=f.job_uuids("job-ids"),
        client=f.opt_text("client"),
        include_nodes=f.boolean("nodes", False),
        reply_to=f.opt_text("reply-to"),
    ),
    StatusReply.KIND: lambda f: StatusReply(
        request_id=f.uint("request-id"),
        broker=f.text("broker"),
        jobs=tuple(_status_entry_from_wire(e) for e in f.subs("jobs")),
        nodes=tuple(_node_entry_from_wire(e) for e in f.subs("nodes")),
    ),
    BrokerSync.KIND: lambda f: BrokerSync(
        broker=f.text("broker"),
        sequence=f.uint("sequence"),
        sent_at=f.number("sent-at"),
        full=f.boolean("full", False),
        jobs=tuple(
            SyncedJob(
                _status_entry_from_wire(j.sub("status")),
                _job_from_wire(j.sub("job")) if j.has("job") else None,
            )
            for j in f.subs("jobs")
        ),
        data=tuple(_data_entry_from_wire(e) for e in f.subs("data")),
    ),
}

MESSAGE_KINDS: Mapping[str, type[UcpMessage]] = {
    cls.KIND: cls
    for cls in (
        JobSubmission,
        JobAccepted,
        JobState,
        JobDispatch,
        JobResult,
        Heartbeat,
        DataPut,
        DataReply,
        DataGet,
        DataGetReply,
        DataList,
        DataListReply,
        DataDelete,
        DataFreeSpace,
        DataFreeSpaceReply,
        StatusQuery,
        StatusReply,
        BrokerSync,
    )
}
"""Every message class by its ``"t"`` value."""


# -- public API -------------------------------------------------------------------------------


def encode_message(message: UcpMessage) -> bytes:
    """The CBOR payload of ``message``."""
    wire = {"v": PROTOCOL_VERSION, "t": message.KIND} | _encode_body(message)
    return bytes(cbor2.dumps(wire))


def _load(data: bytes) -> object:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageDecodeError(f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    scan(data)
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2's semantic tag decoders raise assorted errors
        raise MessageDecodeError(f"undecodable CBOR: {exc}") from None


def decode_message(data: bytes) -> Message:
    """The message in payload ``data``; :class:`MessageDecodeError` for anything else."""
    wire = _load(data)
    if not isinstance(wire, dict):
        raise MessageDecodeError(f"a message is a CBOR map, got {type_name(wire)}")
    version = wire.get("v")
    if type(version) is not int:
        raise MessageDecodeError(
            f"field 'v' (version) must be an integer, got {type_name(version)}"
        )
    if version not in SUPPORTED_VERSIONS:
        raise MessageDecodeError(
            f"message version {version} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    kind = wire.get("t")
    if type(kind) is not str:
        raise MessageDecodeError(f"field 't' (kind) must be text, got {type_name(kind)}")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise MessageDecodeError(f"unknown message kind {kind!r}")
    try:
        return decoder(Fields(wire, kind))
    except UcpUsageError as exc:  # the message's own validation: names, paths, ranges
        raise MessageDecodeError(str(exc), kind=kind) from None


def decode_message_as(data: bytes, cls: type[_M]) -> _M:
    """Decode ``data``, which must hold a message of class ``cls``."""
    message = decode_message(data)
    if not isinstance(message, cls):
        raise MessageDecodeError(f"expected a {cls.KIND} message, got {message.KIND}")
    return message


def encode_job_info(job: JobInfo) -> bytes:
    """A JobInfo alone as CBOR (its wire map), e.g. for a broker's persistent job table."""
    return bytes(cbor2.dumps(_job_to_wire(job)))


def decode_job_info(data: bytes) -> JobInfo:
    """The JobInfo in ``data`` (from :func:`encode_job_info`); :class:`MessageDecodeError`
    otherwise."""
    try:
        return _job_from_wire(Fields(_load(data), "job-info"))
    except UcpUsageError as exc:
        raise MessageDecodeError(str(exc), kind="job-info") from None
