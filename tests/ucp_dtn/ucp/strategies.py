"""Hypothesis strategies for the UCP data model: names, paths, jobs, capabilities, messages."""

from __future__ import annotations

import uuid

from hypothesis import strategies as st

from ucp_dtn.ucp import (
    MAX_REPLICAS,
    BrokerSync,
    Capabilities,
    DataDelete,
    DataEntry,
    DataFreeSpace,
    DataFreeSpaceReply,
    DataGet,
    DataGetReply,
    DataHeld,
    DataItem,
    DataList,
    DataListReply,
    DataPut,
    DataRef,
    DataReplicate,
    DataReply,
    Heartbeat,
    InlineData,
    JobAccepted,
    JobCancel,
    JobCancelReply,
    JobDispatch,
    JobInfo,
    JobLogQuery,
    JobLogReply,
    JobOutput,
    JobResult,
    JobState,
    JobStatusEntry,
    JobSubmission,
    Limits,
    MessageBatch,
    NodeEntry,
    Requirements,
    Role,
    StatusQuery,
    StatusReply,
    SyncedJob,
    Timings,
    UcpMessage,
)

SEGMENT_ALPHABET = "abcxyz019-_.~+=@,:%"

segments = st.text(SEGMENT_ALPHABET, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
names = st.lists(segments, min_size=1, max_size=4).map("/".join)
paths = st.lists(
    st.text("abcXYZ09 -_.", min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
    min_size=1,
    max_size=4,
).map("/".join)
patterns = st.one_of(names, names.map(lambda n: n + "/*"), names.map(lambda n: n + "*"))
uuids = st.builds(uuid.UUID, int=st.integers(0, 2**128 - 1))
eids = st.sampled_from(["dtn://client/", "dtn://laptop-7/ucp/client", "ipn:5.3", "dtn:none"])
times = st.floats(0, 4e9, allow_nan=False)
small_floats = st.floats(0, 1e6, allow_nan=False)
texts = st.text(max_size=20)
blobs = st.binary(max_size=40)
uints = st.integers(0, 2**64 - 1)

factors = st.integers(1, MAX_REPLICAS)
digests = st.none() | st.binary(min_size=32, max_size=32)
sources = st.one_of(st.builds(InlineData, blobs), st.builds(DataRef, names))
extra = st.dictionaries(
    st.text("abcdef_", min_size=1, max_size=6),
    st.one_of(st.text(max_size=5), st.integers(-(2**63), 2**63), st.booleans(), small_floats),
    max_size=3,
)

capabilities = st.builds(
    Capabilities,
    memory=uints,
    disk=uints,
    cpu_load=st.floats(0, 8, allow_nan=False),
    cpu_cores=st.integers(1, 256),
    cpu_freq=small_floats,
    has_battery=st.booleans(),
    power=st.floats(0, 100, allow_nan=False),
    extra=extra,
)
requirements = st.builds(
    Requirements,
    memory=uints,
    disk=uints,
    cpu_cores=st.integers(0, 256),
    cpu_freq=small_floats,
    free_cpu=small_floats,
    max_cpu_load=st.none() | st.floats(0, 8, allow_nan=False),
    min_power=st.floats(0, 100, allow_nan=False),
    no_battery=st.booleans(),
    extra=extra,
)
limits = st.builds(
    Limits,
    fuel=st.none() | st.integers(1, 2**64 - 1),
    time=st.none() | st.floats(0.001, 1e6, allow_nan=False),
    memory=st.none() | st.integers(1, 2**40),
)


@st.composite
def job_infos(draw: st.DrawFn) -> JobInfo:
    """A valid JobInfo: distinct files and inputs, plain pairs only (wildcard normalisation is
    tested on its own)."""
    job_id = draw(uuids)
    file_paths = draw(st.lists(paths, max_size=3, unique=True))
    input_paths = draw(
        st.lists(paths, max_size=3, unique=True).map(
            lambda ps: [p for p in ps if p not in file_paths]
        )
    )
    dirs = draw(
        st.lists(paths, max_size=2, unique=True).map(
            lambda ds: [d for d in ds if d not in file_paths and d not in input_paths]
        )
    )
    return JobInfo(
        job_id=job_id,
        wasm=draw(sources),
        name=draw(st.text("abc-_ 0", max_size=10)),
        stdin=draw(st.none() | sources),
        job_data={p: draw(sources) for p in file_paths},
        inputs={p: draw(patterns.filter(lambda n: not n.endswith("*"))) for p in input_paths},
        dirs=tuple(dirs),
        args=draw(
            st.lists(st.text(max_size=6).filter(lambda t: "\0" not in t), max_size=3).map(tuple)
        ),
        env=draw(
            st.dictionaries(
                st.text("ABCXYZ_", min_size=1, max_size=5),
                st.text(max_size=6).filter(lambda t: "\0" not in t),
                max_size=3,
            )
        ),
        zip_results=draw(st.lists(paths, max_size=3, unique=True).map(tuple)),
        named_results=draw(
            st.dictionaries(
                paths.map(lambda p: p + "/*"), names.map(lambda n: n + "/*"), max_size=2
            )
        ),
        requirements=draw(requirements),
        result_address=draw(st.none() | eids),
        limits=draw(limits),
        after=draw(
            st.lists(uuids.filter(lambda u: u != job_id), max_size=2, unique=True).map(tuple)
        ),
        stdout_path=draw(st.none() | paths),
        stderr_path=draw(st.none() | paths),
        replicas=draw(st.none() | factors),
        bare_argv=draw(st.booleans()),
        replace_results=draw(st.booleans()),
    )


inline_data = st.dictionaries(names, blobs, max_size=2)
status_codes = st.integers(0, 2**64 - 1)
roles = st.integers(0, 2**64 - 1).map(Role)
status_entries = st.builds(
    JobStatusEntry,
    job_id=uuids,
    state=status_codes,
    updated_at=times,
    name=texts,
    detail=texts,
    client=st.none() | eids,
    executor=st.none() | eids,
    attempts=uints,
    result_ref=st.none() | names,
)
data_entries = st.builds(
    DataEntry,
    names,
    uints,
    times,
    st.none() | uuids,
    st.none() | eids,
    factors,
    st.none() | eids,
    digests,
)
request_ids = uints

message_strategies: tuple[st.SearchStrategy[UcpMessage], ...] = (
    st.builds(JobSubmission, job_infos(), inline_data, st.none() | eids),
    st.builds(JobAccepted, uuids, eids, st.booleans(), texts),
    st.builds(JobState, uuids, status_codes, times, texts, st.none() | eids, uints),
    st.builds(JobDispatch, job_infos(), eids, eids, uints, inline_data),
    st.builds(
        JobResult,
        job_id=uuids,
        executor=eids,
        status=status_codes,
        exit_code=st.none() | st.integers(-(2**63), 2**64 - 1),
        message=texts,
        stdout_tail=blobs,
        stderr_tail=blobs,
        archive=st.none() | blobs,
        archive_ref=st.none() | names,
        published=st.lists(names, max_size=3).map(tuple),
        started_at=times,
        finished_at=times,
        timings=st.builds(Timings, small_floats, small_floats, small_floats, small_floats),
        fuel_consumed=st.none() | uints,
        attempt=uints,
    ),
    st.builds(
        Heartbeat,
        node=eids,
        roles=roles,
        sequence=uints,
        sent_at=times,
        interval=small_floats,
        capabilities=st.none() | capabilities,
        running_jobs=st.lists(uuids, max_size=3).map(tuple),
        max_jobs=uints,
        broker=st.none() | eids,
        store_free=st.none() | uints,
        store_used=st.none() | uints,
    ),
    st.builds(
        DataPut,
        request_ids,
        names,
        blobs,
        times,
        st.none() | uuids,
        st.none() | eids,
        st.none() | factors,
        st.none() | eids,
        st.booleans(),
    ),
    st.builds(DataReply, request_ids, status_codes, texts, uints),
    st.builds(DataGet, request_ids, patterns, st.none() | texts, uints, st.none() | eids),
    st.builds(
        DataGetReply,
        request_ids,
        status_codes,
        st.lists(
            st.builds(DataItem, names, blobs, times, st.none() | uuids, st.none() | eids),
            max_size=3,
        ).map(tuple),
        st.none() | texts,
        texts,
    ),
    st.builds(
        DataList,
        request_ids,
        st.none() | patterns,
        st.none() | uuids,
        uints,
        st.none() | texts,
        st.none() | eids,
        st.booleans(),
    ),
    st.builds(
        DataListReply,
        request_ids,
        status_codes,
        st.lists(data_entries, max_size=3).map(tuple),
        st.none() | texts,
        texts,
    ),
    st.one_of(
        st.builds(
            DataDelete,
            request_ids,
            name=patterns,
            keep_result=st.booleans(),
            deleted_at=st.none() | times,
        ),
        st.builds(DataDelete, request_ids, job_id=uuids, keep_result=st.booleans()),
    ),
    st.builds(
        DataReplicate,
        request_ids,
        names,
        st.lists(eids, min_size=1, max_size=3).map(tuple),
        st.none() | eids,
    ),
    st.builds(DataHeld, eids, st.lists(data_entries, max_size=3).map(tuple)),
    st.builds(DataFreeSpace, request_ids, st.none() | eids),
    st.builds(DataFreeSpaceReply, request_ids, eids, uints, uints, uints, st.none() | uints),
    st.builds(
        StatusQuery,
        request_ids,
        st.lists(uuids, max_size=3).map(tuple),
        st.none() | eids,
        st.booleans(),
        st.none() | eids,
        st.lists(status_codes, max_size=3).map(tuple),
        uints,
    ),
    st.builds(
        StatusReply,
        request_ids,
        eids,
        st.lists(status_entries, max_size=2).map(tuple),
        st.lists(
            st.builds(NodeEntry, eids, roles, times, st.none() | capabilities, uints, uints),
            max_size=2,
        ).map(tuple),
        uints,
    ),
    st.builds(
        BrokerSync,
        eids,
        uints,
        times,
        st.booleans(),
        st.lists(
            st.builds(
                SyncedJob, status_entries, st.none() | job_infos(), inline_data, st.none() | eids
            ),
            max_size=2,
        ).map(tuple),
        st.lists(data_entries, max_size=2).map(tuple),
    ),
    st.builds(
        JobCancel, request_ids, st.lists(uuids, max_size=3).map(tuple), texts, st.none() | eids
    ),
    st.builds(
        JobCancelReply,
        request_ids,
        eids,
        st.lists(status_entries, max_size=2).map(tuple),
        st.lists(uuids, max_size=2).map(tuple),
    ),
    st.builds(JobOutput, uuids, eids, uints, uints, blobs, uints, blobs),
    st.builds(JobLogQuery, request_ids, uuids, uints, uints, st.none() | eids),
    st.builds(
        JobLogReply, request_ids, uuids, st.booleans(), status_codes, uints, blobs, uints, blobs
    ),
)
_single_messages: st.SearchStrategy[UcpMessage] = st.one_of(*message_strategies)
message_strategies += (
    st.builds(MessageBatch, st.lists(_single_messages, min_size=2, max_size=4).map(tuple)),
)
"""One strategy per message kind."""
messages: st.SearchStrategy[UcpMessage] = st.one_of(*message_strategies)
