"""``ucp agent status|stop``: the client agent of the home (see ``docs/client.md``).

* ``status`` shows whether one runs, since when, its node, peers and the bundles waiting to be
  forwarded (exit status 1 if none runs);
* ``stop`` asks it to stop (after giving waiting bundles a few seconds to leave; those left
  wait in the home's store for the next command).

Neither starts an agent.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from .client_options import settings_from
from .command import CommandError, Subcommand

__all__ = ["AGENT"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("status", "stop"), help="status or stop")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _ask(home: Any, op: str) -> dict[str, Any] | None:
    from ucp_dtn.client.agent_protocol import PROTOCOL_VERSION, build_id

    from .agent_link import _exchange, connect

    sock = connect(home)
    if sock is None:
        return None
    with sock:
        request = {"v": PROTOCOL_VERSION, "build": build_id(), "op": op}
        done, answer = _exchange(sock, request, lambda event: None)
    if not done:
        if answer.get("stale"):
            return {"stopping": True, "stale": True}
        raise CommandError(str(answer.get("error")), int(answer.get("status", 1)))
    return answer


def _wait_stopped(home: Any) -> None:
    from .agent_link import START_TIMEOUT_S, connect

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = connect(home)
        if sock is None:
            return
        sock.close()
        time.sleep(0.05)
    raise CommandError("the client agent did not stop")


def _run(args: argparse.Namespace) -> int:
    home = settings_from(args).home_path
    if args.action == "stop":
        answer = _ask(home, "agent-stop")
        if answer is None:
            print(f"no client agent runs for {home}")
            return 0
        _wait_stopped(home)
        print(f"client agent of {home} stopped")
        return 0
    status = _ask(home, "agent-status")
    if status is None:
        raise CommandError(f"no client agent runs for {home}")
    if args.json:
        print(json.dumps(status, sort_keys=True))
        return 0
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["started_at"]))
    print(f"client agent of {status['home']}: pid {status['pid']}, since {since}")
    print(f"  node {status['node'] or '(not started yet)'}, broker {status['broker'] or '-'}")
    for peer in status["peers"]:
        print(f"  peer {peer['node_id']} at {peer['address']}")
    print(
        f"  {status['waiting_bundles']} bundles waiting to be forwarded; "
        f"{status['requests']} requests served; stops after {status['idle_s']:g} s idle"
    )
    return 0


AGENT = Subcommand(
    name="agent",
    help="show or stop the home's client agent",
    add_arguments=_add_arguments,
    run=_run,
)
"""The ``ucp agent`` subcommand."""
