"""Large bundles over links that break (issue #9), with real ``ucp-bpnode`` daemons on loopback.

- goodput: daemon ``a`` dials daemon ``b`` through a lossy-link relay (``python -m
  convergence.lossy --bandwidth RATE --drop-every MEAN --seed S``); one bundle of ``--size``
  octets is sent from an application on ``a`` to one on ``b``; goodput is its size over the
  time from send to delivery, as a fraction of the link's rate. Each row runs with reactive
  fragmentation (the default) and with it off (``--no-reactive-fragmentation`` on both
  daemons), same seeds, side by side; a run that has not delivered within ``--limit`` counts
  as goodput 0. The first row is the link without cuts (the baseline: what the daemons and the
  relay reach at that rate).
- memory: 4 sessions each send 900 MiB of a transfer that never ends (raw TCPCLv4 peers in
  this process, no END segment) to one daemon; its resident memory (psutil RSS) before, at the
  peak while they send, and after they closed; meanwhile another daemon sends it small bundles
  and their delivery time is measured (the daemon serves other peers meanwhile).

Targets (issue #9; shared/design/anchors.md): goodput >= 60% of the link rate at 2 MB/s with a
cut every 4 s on average, >= 80% with a cut every 15 s; resident memory < 200 MB with 4 x 900
MiB arriving. Always exits 0; each line says its target and whether it was met.

Run: ``.venv/bin/python bench/lossy.py [--size 40MB] [--rate 2MB/s] [--seeds 3] [--limit 90s]
[--skip-memory] [--memory-mib 900]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import trio
from convergence.lossy.units import parse_duration, parse_rate, parse_size

from convergence.tcpcl import (
    ContactHeader,
    SegmentFlags,
    SessInit,
    encode_contact_header,
    encode_message,
    encode_segment_header,
)
from ucp_dtn.localnet import LocalNetwork

MIB = 1024 * 1024
TARGET_4S = 0.60
TARGET_15S = 0.80
TARGET_RSS = 200 * 1000 * 1000


@dataclass(frozen=True)
class Run:
    seconds: float | None
    """Send to delivery, or ``None`` if not delivered within the limit."""
    cuts: int
    """Times the session broke during the run (sessions opened minus one)."""


async def one_transfer(
    base: Path,
    size: int,
    rate: float,
    drop_every: float | None,
    seed: int,
    *,
    reactive: bool,
    limit: float,
) -> Run:
    network = LocalNetwork(base)
    flags = [] if reactive else ["--no-reactive-fragmentation"]
    flags += ["--reconnect-max", "1s", "--quota", "4GiB"]
    try:
        b = await network.start("b", *flags)
        relay_flags = ["--bandwidth", f"{rate:.0f}", "--seed", str(seed)]
        if drop_every is not None:
            relay_flags += ["--drop-every", f"{drop_every}s"]
        relay = await network.relay(b.address, *relay_flags)
        a = await network.start("a", "-s", f"tcp://{relay[0]}:{relay[1]}", *flags)
        payload = os.urandom(size)
        delivered = trio.Event()
        arrived_at: list[float] = []

        async def receive() -> None:
            async with b.client() as client:
                registration = await client.register("inbox")
                async for bundle in registration:
                    arrived_at.append(time.perf_counter())
                    assert bundle.payload == payload, "delivered bytes differ"
                    await bundle.confirm()
                    delivered.set()
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.sleep(0.2)
            start = time.perf_counter()
            async with a.client() as client:
                await client.send("dtn://b/inbox", payload, lifetime_s=3600)
            with trio.move_on_after(limit):
                await delivered.wait()
            nursery.cancel_scope.cancel()
        opened = (await a.info())["statistics"]["sessions_opened"]
        seconds = arrived_at[0] - start if arrived_at else None
        return Run(seconds, max(0, int(opened) - 1))
    finally:
        with trio.CancelScope(shield=True):
            await network.close(graceful=False)


def _goodput(run: Run, size: int, rate: float) -> float:
    return 0.0 if run.seconds is None else size / run.seconds / rate


async def goodput_rows(args: argparse.Namespace) -> None:
    size, rate = args.size, args.rate
    print(
        f"goodput: one {size / 1e6:.0f} MB bundle a -> relay -> b, link {rate / 1e6:g} MB/s, "
        f"seeds {','.join(map(str, args.seeds))}, limit {args.limit:g} s per run"
    )
    print(f"{'cuts':<22}{'reactive fragmentation':>26}{'off (start again)':>22}   target")
    print("-" * 90)
    rows: list[tuple[str, float | None, float]] = [
        ("none (baseline)", None, 0.0),
        ("every 4 s on average", 4.0, TARGET_4S),
        ("every 15 s on average", 15.0, TARGET_15S),
    ]
    for label, drop_every, target in rows:
        cells: list[str] = []
        figures: list[float] = []
        for reactive in (True, False):
            runs = []
            for seed in args.seeds:
                with tempfile.TemporaryDirectory(prefix="lossy-bench-") as base:
                    runs.append(
                        await one_transfer(
                            Path(base),
                            size,
                            rate,
                            drop_every,
                            seed,
                            reactive=reactive,
                            limit=args.limit,
                        )
                    )
            fractions = [_goodput(run, size, rate) for run in runs]
            mean = statistics.fmean(fractions)
            figures.append(mean)
            missed = sum(run.seconds is None for run in runs)
            cuts = sum(run.cuts for run in runs)
            note = f" ({missed} not in time)" if missed else ""
            cells.append(f"{mean * 100:5.1f}% {cuts:>3} cuts{note}")
            if drop_every is None:
                break  # without cuts both are the same
        if drop_every is None:
            print(f"{label:<22}{cells[0]:>26}{'(same)':>22}")
            continue
        verdict = "met" if figures[0] >= target else "NOT met"
        print(f"{label:<22}{cells[0]:>26}{cells[1]:>22}   >= {target * 100:.0f}%: {verdict}")


# -- memory: never-ending transfers -------------------------------------------------------------


async def raw_never_ending(
    address: tuple[str, int], octets: int, segment: int, sent: list[int]
) -> None:
    """A bare TCPCLv4 peer that starts one transfer and sends ``octets`` of it without ever
    sending its END segment; reads (and ignores) everything the node answers."""
    stream = await trio.open_tcp_stream(*address)
    async with stream, trio.open_nursery() as nursery:

        async def drain() -> None:
            while await stream.receive_some(65536):
                pass

        nursery.start_soon(drain)
        node_id = f"dtn://flood-{len(sent)}/"
        await stream.send_all(
            encode_contact_header(ContactHeader())
            + encode_message(SessInit(0, 1 << 20, 1 << 40, node_id))
        )
        data = os.urandom(segment)
        index = len(sent)
        sent.append(0)
        done = 0
        while done < octets:
            flags = SegmentFlags.START if done == 0 else SegmentFlags(0)
            await stream.send_all(encode_segment_header(flags, 0, len(data)) + data)
            done += len(data)
            sent[index] = done
        await trio.sleep_forever()


async def memory_row(args: argparse.Namespace) -> None:
    octets = args.memory_mib * MIB
    print()
    print(
        f"memory: 4 sessions each send {args.memory_mib} MiB of a transfer that never ends; "
        "another daemon sends small bundles meanwhile"
    )
    with tempfile.TemporaryDirectory(prefix="lossy-bench-memory-") as base:
        network = LocalNetwork(Path(base))
        try:
            b = await network.start("b", "--quota", f"{4 * args.memory_mib + 512}MiB")
            a = await network.start("a", "-s", b.url)
            process = psutil.Process(b.process.pid)
            await trio.sleep(1.0)
            before = process.memory_info().rss
            peak = before
            sent: list[int] = []
            latencies: list[float] = []
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(raw_never_ending, b.address, octets, 256 * 1024, sent)

                async def small_bundles() -> None:
                    async with a.client() as sender, b.client() as receiver:
                        registration = await receiver.register("small")
                        while True:
                            start = time.perf_counter()
                            await sender.send("dtn://b/small", b"x" * 1000, lifetime_s=600)
                            async for bundle in registration:
                                await bundle.confirm()
                                break
                            latencies.append(time.perf_counter() - start)
                            await trio.sleep(0.2)

                nursery.start_soon(small_bundles)
                started = time.perf_counter()
                while len(sent) < 4 or sum(sent) < 4 * octets:
                    peak = max(peak, process.memory_info().rss)
                    await trio.sleep(0.1)
                elapsed = time.perf_counter() - started
                await trio.sleep(1.0)
                peak = max(peak, process.memory_info().rss)
                spooled = (await b.info())["statistics"]["incoming_spooled_bytes"]
                nursery.cancel_scope.cancel()
            await trio.sleep(3.0)
            after = process.memory_info().rss
        finally:
            with trio.CancelScope(shield=True):
                await network.close(graceful=False)
    verdict = "met" if peak < TARGET_RSS else "NOT met"
    print(
        f"  daemon RSS before {before / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB while "
        f"{4 * octets / MIB:.0f} MiB arrived in {elapsed:.0f} s ({spooled / MIB:.0f} MiB in "
        f"spool files at the end), {after / 1e6:.0f} MB after they closed   "
        f"< {TARGET_RSS / 1e6:.0f} MB: {verdict}"
    )
    if latencies:
        print(
            f"  meanwhile {len(latencies)} small bundles from another daemon delivered: "
            f"median {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    else:
        print("  meanwhile no small bundle was delivered: NOT serving other peers")


async def main(args: argparse.Namespace) -> None:
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    if not args.skip_goodput:
        await goodput_rows(args)
    if not args.skip_memory:
        await memory_row(args)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=40_000_000, help="bundle size")
    parser.add_argument("--rate", type=parse_rate, default=2_000_000, help="link rate")
    parser.add_argument(
        "--seeds",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[3],
        help="relay seeds (comma-separated); each row is their mean",
    )
    parser.add_argument("--limit", type=parse_duration, default=90.0, help="longest run")
    parser.add_argument("--skip-goodput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-mib", type=int, default=900, help="MiB per never-ending transfer")
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, _parse(sys.argv[1:]))
