"""What a trusted mesh costs per UCP message: signing and checking a job submission bundle
beside the same bundle unsigned, measured in the same run.

The message is a real ``job-submit`` (a 2 KiB inline module) from a client to a broker, built
into a bundle as the node does (CRC-32C, Hop Count Block). Rows:

- unsigned: ``Bundle.build`` and ``encode`` (sender) and ``decode_bundle`` (receiver): open
  mode's work;
- sign: the same with the mesh's source rule (``SecurityPolicy.secure``: a COSE_Sign1, ES256
  with P-256, over the payload, the client's certificate in x5chain) before ``encode``;
- check, cached: ``decode_bundle`` and the mesh's acceptor rule (``SecurityPolicy.on_delivery``:
  the signature checked, the BIB removed) with the certificate's chain validation cached, as
  on every message after a sender's first;
- check, first: the same with the cache emptied each time (a full path validation against the
  mesh authority, as for a sender's first message).

A job costs about four signed messages end to end (submission, dispatch, state, result), each
signed once and checked once. Rates are the best of ~0.2 s batches taking turns (see
bench/codec.py). Always exits 0.

Run: ``.venv/bin/python bench/trust.py [--seconds 2]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from codec import best_rates, cpu_name

from bpv7 import Bundle, CRCType, CreationTimestamp, HopCountBlock, decode_bundle
from ucp_dtn.trust import MeshAuthority, MeshRole, MeshTrust
from ucp_dtn.ucp import InlineData, JobInfo, JobSubmission, encode_message

MESSAGES_PER_JOB = 4


def repeat(operation: Callable[[], object]) -> Callable[[int], None]:
    def run_batch(n: int) -> None:
        for _ in range(n):
            operation()

    return run_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per row (default 2)")
    args = parser.parse_args(argv)
    print("Trusted mesh: signing and checking one UCP message (job-submit, 2 KiB module)")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        authority = MeshAuthority.create(base / "authority", "bench mesh")
        for name, role in (("alice", MeshRole.CLIENT), ("hub", MeshRole.NODE)):
            authority.issue(f"dtn://{name}/", role).write(base / f"{name}.pem")
        alice = MeshTrust.load(base / "alice.pem").security_policy()
        hub_trust = MeshTrust.load(base / "hub.pem")
        hub = hub_trust.security_policy()
    job = JobInfo(job_id=uuid.UUID(int=1), wasm=InlineData(os.urandom(2048)), name="bench")
    payload = encode_message(JobSubmission(job))
    creation = CreationTimestamp(int(time.time() * 1000) - 946_684_800_000, 1)

    def build() -> Bundle:
        return Bundle.build(
            source="dtn://alice/ucp/client",
            destination="dtn://hub/ucp/broker",
            payload=payload,
            creation=creation,
            lifetime_ms=3_600_000,
            crc_type=CRCType.CRC32C,
            extra_blocks=[HopCountBlock(30, 0)],
        )

    bundle = build()
    plain = bundle.encode()
    client_id = bundle.primary.source.node_id
    signed = alice.secure(bundle, client_id).encode()
    now = time.time()
    anchors = hub_trust.anchors

    def check() -> object:
        verdict = hub.on_delivery(decode_bundle(signed), now=now)
        assert verdict.discard is None, verdict.reason
        return verdict

    def check_first() -> object:
        anchors.forget_validations()
        return check()

    checked = check()
    assert checked.checks[0].signer == "dtn://alice/"  # type: ignore[attr-defined]
    rows = [
        ("unsigned: build + encode", lambda: build().encode()),
        ("unsigned: decode", lambda: decode_bundle(plain)),
        ("build + sign + encode", lambda: alice.secure(build(), client_id).encode()),
        ("decode + check, cached", check),
        ("decode + check, first", check_first),
    ]
    rates = best_rates([repeat(operation) for _, operation in rows], args.seconds * len(rows))
    print(f"bundle: {len(plain):,} bytes unsigned, {len(signed):,} signed")
    print(f"{'operation':<26}{'per second':>12}{'µs each':>10}")
    for (name, _), rate in zip(rows, rates, strict=True):
        print(f"{name:<26}{rate:>12,.0f}{1e6 / rate:>10.0f}")
    unsigned = 1 / rates[0] + 1 / rates[1]
    trusted = 1 / rates[2] + 1 / rates[3]
    extra_ms = MESSAGES_PER_JOB * (trusted - unsigned) * 1000
    print(
        f"per job ({MESSAGES_PER_JOB} messages, each signed once and checked once, "
        f"certificates cached): +{extra_ms:.2f} ms of CPU over open mode "
        f"({MESSAGES_PER_JOB * unsigned * 1000:.2f} ms -> {MESSAGES_PER_JOB * trusted * 1000:.2f})"
    )
    print(
        f"chain validations {anchors.validations:,}, cache hits {anchors.cache_hits:,} "
        f"(at {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
