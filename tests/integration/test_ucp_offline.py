"""The client and the network apart: submitting while no broker is reachable, and results
reached through a datastore when the result bundle waits where the client no longer goes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import trio

from .daemons import Network
from .ucp_support import HELLO_WAT, Client, explain, start_roles, write_wasm


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_jobs_submitted_while_no_broker_is_reachable_leave_with_a_later_command(
    network: Network, tmp_path: Path
) -> None:
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.early]\nwasm = "hello.wasm"\n')
    port = free_port()
    home = tmp_path / "home"
    via = ["--home", str(home), "--via", f"tcp://127.0.0.1:{port}"]
    client = Client(home, None)

    # Never reached a broker: the submission waits in the journal's outbox.
    queued = await client.ucp("submit", str(plan), "--wait", "1s", *via[2:])
    assert queued.returncode == 0, explain(queued)
    assert "no broker reachable: 1 job queued in" in queued.stdout.decode()
    offline = await client.ucp("status", "--wait", "1s")
    assert offline.returncode == 1
    assert "early" in offline.stdout.decode() and "outbox" in offline.stdout.decode()
    assert "no broker reachable within 1 s" in offline.stderr.decode()

    hub = await start_roles(network, "hub", "broker,executor,datastore", listen=f"127.0.0.1:{port}")
    client.via = hub
    await client.wait_for_state("early", ["done"])

    # The broker is known now but down: the next submission waits as bundles in the client's
    # store, addressed to it, and leaves when it is back.
    assert await hub.stop() == 0
    plan.write_text('[jobs.late]\nwasm = "hello.wasm"\n')
    again = await client.ucp("submit", str(plan), "--wait", "1s")
    assert again.returncode == 0 and "queued" in again.stdout.decode(), explain(again)
    hub = await network.restart(hub)
    out = tmp_path / "out"
    with trio.fail_after(40):
        while not (out / "late" / "stdout").exists():
            collected = await client.ucp("collect", "-o", str(out))
            assert collected.returncode == 0, explain(collected)
            await trio.sleep(0.5)
    assert (out / "early" / "stdout").read_text() == "hello\n"
    assert (out / "late" / "stdout").read_text() == "hello\n"


async def test_a_result_the_client_was_away_for_is_collected_through_another_broker(
    network: Network, tmp_path: Path
) -> None:
    first = await start_roles(network, "b1", "broker")
    second = await start_roles(network, "b2", "broker")
    await start_roles(
        network, "d", "datastore", "-s", first.url, "-s", second.url,
        "--broker", "dtn://b1/", "--broker", "dtn://b2/",
    )  # fmt: skip
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.away]\nwasm = "hello.wasm"\nresults = ["note.txt"]\n'
                    'files = { "note.txt" = { text = "kept\\n" } }\n')  # fmt: skip
    client = Client(tmp_path / "home", first)
    report = json.loads(await client.ok("submit", str(plan), "--json"))
    job_id = report["jobs"][0]["job_id"]
    assert report["outcome"] == "accepted"
    # The client goes away (its agent with it); the job runs only now.
    assert "stopped" in await client.ok("agent", "stop")
    await start_roles(network, "e", "executor", "-s", first.url, "--broker", "dtn://b1/")

    # The client does not come back while b1 holds the result bundle for it (were it
    # connected anywhere, the network would find the way): another client watches the datastore
    # until the result is stored there, then b1 goes away with the bundle.
    observer = Client(tmp_path / "observer", second)
    with trio.fail_after(30):
        while True:
            listing = json.loads(await observer.ok("data", "ls", f"{job_id}/result", "--json"))
            if listing["entries"]:
                break
            await trio.sleep(0.5)
    assert await first.stop() == 0

    out = tmp_path / "out"
    collected = await client.ucp("collect", "-o", str(out), "--json", via=second)
    assert collected.returncode == 0, explain(collected)
    (job,) = json.loads(collected.stdout)
    assert job["collect"] == "done" and job["result"]["from"] == "datastore"
    assert (out / "away" / "note.txt").read_text() == "kept\n"
    assert (out / "away" / "stdout").read_text() == "hello\n"
