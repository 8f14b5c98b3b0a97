"""The values the pinned wire cases share (test_wire_pinned.py and pinned_*_messages.py): ids,
EIDs, jobs, entries."""

from __future__ import annotations

import uuid

from ucp_dtn.ucp import (
    Capabilities,
    DataRef,
    InlineData,
    JobInfo,
    JobStatus,
    JobStatusEntry,
    Limits,
    Requirements,
)

JOB_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
OTHER_ID = uuid.UUID("87654321-4321-8765-4321-876543218765")
BROKER = "dtn://shelter-3/ucp/broker"
EXECUTOR = "dtn://exec-1/ucp/executor"
CLIENT = "dtn://laptop-7/ucp/client"
DATASTORE = "dtn://store-2/ucp/datastore"
AT = 1_700_000_000.5
DIGEST = bytes(range(32))  # a SHA-256 digest's size

MINIMAL_JOB = JobInfo(job_id=JOB_ID, wasm=InlineData(b"\0asm\1\0\0\0"))
FULL_JOB = JobInfo(
    job_id=JOB_ID,
    wasm=DataRef("modules/echo"),
    name="resample 1",
    stdin=InlineData(b"hello"),
    job_data={"cfg/params.json": InlineData(b"{}"), "model.bin": DataRef("models/tiny")},
    inputs={"audio.wav": "survey/2026-11-26/audio.wav"},
    dirs=("out",),
    args=("-v", "--rate=8000"),
    env={"LANG": "C"},
    zip_results=("out",),
    named_results={"out/summary.txt": "runs/7/summary.txt"},
    requirements=Requirements(
        memory=2**30,
        disk=10**6,
        cpu_cores=2,
        cpu_freq=1000.0,
        free_cpu=0.5,
        max_cpu_load=0.75,
        min_power=20.0,
        no_battery=True,
        extra={"gpu": True, "arch": "x86_64", "sensors": 3},
    ),
    result_address=CLIENT,
    limits=Limits(fuel=10**9, time=30.0, memory=64 * 2**20),
    after=(OTHER_ID,),
    stdout_path="out/stdout.txt",
    stderr_path="out/stderr.txt",
)
CAPABILITIES = Capabilities(
    memory=8 * 2**30,
    disk=100 * 10**9,
    cpu_load=0.25,
    cpu_cores=4,
    cpu_freq=2400.0,
    has_battery=True,
    power=80.5,
    extra={"gpu": False, "sensors": 2},
)
REC_JOB = JobInfo(job_id=JOB_ID, wasm=DataRef("wasm-module"), args=("a", "b", "c"), bare_argv=True)
CANCELLED_ENTRY = JobStatusEntry(
    job_id=JOB_ID,
    state=JobStatus.CANCELLED,
    updated_at=AT,
    name="resample 1",
    detail="cancelled",
    client=CLIENT,
    executor=EXECUTOR,
    attempts=1,
)
STATUS_ENTRY = JobStatusEntry(
    job_id=JOB_ID,
    state=JobStatus.FAILED,
    updated_at=AT,
    name="resample 1",
    detail="trapped",
    client=CLIENT,
    executor=EXECUTOR,
    attempts=2,
    result_ref=f"{JOB_ID}/result",
)
