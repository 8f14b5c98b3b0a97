"""``python -m ucp_dtn demo``: a local delay-tolerant network at work, end to end.

It starts real ``ucp-bpnode`` daemons on 127.0.0.1, each with its own persistent store, and
shows store-and-forward across two TCPCLv4 hops while the destination is offline:

1. a bundle is built, encoded and inspected with the BPv7 codec (what ``python -m bpv7 decode``
   prints);
2. nodes ``a`` and ``b`` come up (``a`` routes ``dtn://c/*`` through ``b``); ``ucp send`` hands a
   message for ``dtn://c/inbox`` to ``a``; it crosses to ``b`` and waits there, because ``c`` is
   not up yet;
3. node ``c`` comes up and connects to ``b``; the bundle flows on; ``ucp recv`` on ``c`` gets it;
4. every daemon is shut down cleanly (SIGTERM).

Every step prints the command a user would type; the exit status is 0 only if the message
arrived intact.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import trio

from bpv7 import Bundle, CreationTimestamp, encode_bundle, parse_eid
from bpv7.json_view import bundle_to_json

from .localnet import LocalNetwork, LocalNode

__all__ = ["main", "run_demo"]

MESSAGE = b"Water level at the bridge: 2.3 m and rising. Sent from node a."


def _say(text: str) -> None:
    print(text, flush=True)


def _show_command(node: LocalNode | None, argv: list[str]) -> None:
    where = f" (on {node.name})" if node else ""
    _say(f"  $ {shlex.join(argv)}{where}")


async def _stored_at(node: LocalNode) -> int:
    result = await node.ucp("nodes", "--json")
    if result.returncode != 0:
        return -1
    info = json.loads(result.stdout)
    return int(info["statistics"]["stored_bundles"])


async def run_demo(base: Path) -> bool:
    """Run the demo with work directories under ``base``; True when the message arrived."""
    started = time.monotonic()
    _say("== 1. A bundle, built and inspected with the BPv7 codec (RFC 9171)")
    bundle = Bundle.build(
        source=parse_eid("dtn://a/"),
        destination=parse_eid("dtn://c/inbox"),
        payload=MESSAGE,
        creation=CreationTimestamp.from_unix(time.time()),
        lifetime_ms=3_600_000,
    )
    wire = encode_bundle(bundle)
    _say(f"  {len(wire)} bytes on the wire: {wire[:24].hex()}...")
    view = bundle_to_json(bundle)
    _say("  " + json.dumps(view["primary"], indent=None)[:300])
    _say(f"  (see it all with: python -m bpv7 decode {wire.hex()[:16]}...)")

    network = LocalNetwork(base)
    try:
        _say("\n== 2. Nodes a and b come up; c is still offline")
        b = await network.start("b")
        _say(f"  node b: {b.node_id} listening on {b.url}")
        a = await network.start("a", "-s", b.url, "-r", "dtn://c/*=dtn://b/")
        _say(f"  node a: {a.node_id} listening on {a.url}, static peer b, route dtn://c/* via b")

        argv = ["ucp", "send", "-d", "dtn://c/inbox", "-"]
        _show_command(a, argv)
        sent = await a.ucp("send", "-d", "dtn://c/inbox", "-", stdin=MESSAGE)
        if sent.returncode != 0:
            _say("  send failed: " + sent.stderr.decode(errors="replace").strip())
            return False
        _say(f"  bundle ID: {sent.stdout.decode().strip()}")

        held = await _wait_for_count(b, 1, timeout=30)
        _say(f"  the bundle crossed a -> b and waits in b's store ({held} bundle(s) stored)")

        _say("\n== 3. Node c comes up and connects to b: the bundle flows on")
        c = await network.start("c", "-s", b.url)
        _say(f"  node c: {c.node_id} listening on {c.url}")
        argv = ["ucp", "recv", "-e", "dtn://c/inbox", "--count", "1"]
        _show_command(c, argv)
        received = await c.ucp("recv", "-e", "dtn://c/inbox", "--count", "1", "--timeout", "60s")
        if received.returncode != 0:
            _say("  recv failed: " + received.stderr.decode(errors="replace").strip())
            return False
        _say(f"  received: {received.stdout.decode(errors='replace')!r}")
        ok = received.stdout == MESSAGE
        _say("  intact: " + ("yes" if ok else "NO"))

        _say("\n== 4. Shutting the network down (SIGTERM: SESS_TERM to peers, stores closed)")
        for node in (c, a, b):
            status = await node.stop()
            _say(f"  {node.name} exited with status {status}")
        _say(f"\nDone in {time.monotonic() - started:.1f} s: {'success' if ok else 'FAILURE'}.")
        return ok
    finally:
        await network.close()


async def _wait_for_count(node: LocalNode, count: int, *, timeout: float) -> int:
    stored = -1
    with trio.move_on_after(timeout):
        while True:
            stored = await _stored_at(node)
            if stored >= count:
                return stored
            await trio.sleep(0.1)
    return stored


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m ucp_dtn demo``."""
    parser = argparse.ArgumentParser(prog="ucp demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, help="keep the nodes' work directories and logs here"
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        return 0 if trio.run(run_demo, args.workdir) else 1
    with tempfile.TemporaryDirectory(prefix="ucp-demo-") as tmp:
        ok = trio.run(run_demo, Path(tmp))
        if not ok:
            logs = LocalNetwork(Path(tmp)).logs()
            sys.stderr.write(logs[-4000:] + "\n")
        return 0 if ok else 1
