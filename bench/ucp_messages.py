"""UCP message codec speed: ``encode_message`` / ``decode_message`` beside bare cbor2.

Two typical messages: a job submission as ``ucp submit`` sends it (named wasm module, inputs,
named results, requirements, limits, 1 KiB of inline data) and an executor's heartbeat (with
capabilities and two running jobs). The baseline, measured in the same run, is cbor2 alone
turning the same wire map into the same bytes and back (``cbor2.dumps`` / ``cbor2.loads``): what
our codec adds on top of it is the mapping to and from the dataclasses, the well-formedness scan
and the field checks (names, paths, EIDs) of a strict decode.

Each figure is the best of several timed batches of about 0.2 s, ours and the baseline taking
turns (the machine is shared: the best batch is the least disturbed one). Always exits 0.

Run: ``.venv/bin/python bench/ucp_messages.py [--seconds 2]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import cbor2

from ucp_dtn.ucp import (
    Capabilities,
    DataRef,
    Heartbeat,
    JobInfo,
    JobSubmission,
    Limits,
    Requirements,
    Role,
    UcpMessage,
    decode_message,
    encode_message,
)

JOB_ID = uuid.UUID("0b7c9f52-5d1e-4f0a-9a77-3f1c2b6d8e41")


def typical_submission() -> JobSubmission:
    job = JobInfo(
        job_id=JOB_ID,
        wasm=DataRef("modules/classifier.wasm"),
        name="classify 2026-11-26",
        inputs={"audio.wav": "survey/2026-11-26/audio.wav", "model.bin": "models/birds-v3"},
        dirs=("out",),
        args=("--window", "2.5", "audio.wav"),
        env={"RUST_LOG": "info"},
        zip_results=("out",),
        named_results={"out/labels.csv": f"{JOB_ID}/labels.csv"},
        requirements=Requirements(memory=512 * 2**20, cpu_cores=1),
        result_address="dtn://laptop-7/ucp/client",
        limits=Limits(time=600.0, memory=256 * 2**20),
    )
    return JobSubmission(job, {f"{JOB_ID}/params.json": bytes(1024)})


def typical_heartbeat() -> Heartbeat:
    return Heartbeat(
        node="dtn://exec-1/",
        roles=Role.EXECUTOR,
        sequence=1234,
        sent_at=1_700_000_000.25,
        interval=5.0,
        capabilities=Capabilities(
            memory=6 * 2**30,
            disk=80 * 10**9,
            cpu_load=0.42,
            cpu_cores=4,
            cpu_freq=2400.0,
            extra={"arch": "x86_64"},
        ),
        running_jobs=(JOB_ID, uuid.UUID(int=7)),
        max_jobs=4,
        broker="dtn://shelter-3/ucp/broker",
    )


def best_rate(work: Callable[[], Any], seconds: float, batch: int) -> float:
    """Calls per second: the best of batches of ``batch`` calls within ``seconds``."""
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        for _ in range(batch):
            work()
        elapsed = time.perf_counter() - start
        best = max(best, batch / elapsed)
        if time.perf_counter() >= deadline:
            return best


def calibrate(work: Callable[[], Any]) -> int:
    """A batch size of about 0.2 s."""
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            work()
        if time.perf_counter() - start >= 0.05:
            return max(1, count * 4)
        count *= 2


def measure(name: str, message: UcpMessage, seconds: float) -> list[str]:
    data = encode_message(message)
    wire = cbor2.loads(data)
    assert decode_message(data) == message
    assert cbor2.dumps(wire) == data
    rows = []
    for what, ours, bare in (
        ("encode", lambda: encode_message(message), lambda: cbor2.dumps(wire)),
        ("decode", lambda: decode_message(data), lambda: cbor2.loads(data)),
    ):
        ours_batch, bare_batch = calibrate(ours), calibrate(bare)
        ours_rate = bare_rate = 0.0
        for _ in range(3):  # taking turns, so a disturbance hits both sides alike
            ours_rate = max(ours_rate, best_rate(ours, seconds / 6, ours_batch))
            bare_rate = max(bare_rate, best_rate(bare, seconds / 6, bare_batch))
        rows.append(
            f"| {name} ({len(data)} B) | {what} | {ours_rate:,.0f}/s = {1e6 / ours_rate:.1f} µs "
            f"| {bare_rate:,.0f}/s = {1e6 / bare_rate:.1f} µs | {bare_rate / ours_rate:.1f}x |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per message and direction")
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"cbor2 {importlib.metadata.version('cbor2')}"
    )
    print("| message | direction | ucp codec | bare cbor2 (same map) | codec cost |")
    print("|---|---|---|---|---|")
    for name, message in (
        ("JobSubmission", typical_submission()),
        ("Heartbeat", typical_heartbeat()),
    ):
        for row in measure(name, message, args.seconds):
            print(row)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
