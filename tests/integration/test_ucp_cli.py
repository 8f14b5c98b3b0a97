"""The ``ucp`` command as a person uses it, against real daemons: several commands on one home
at once, Ctrl-C, cancel, logs, jobs, exit statuses, closed pipes, and an executor daemon killed
with its job's worker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import trio

from ucp_dtn.localnet import LocalNode

from .daemons import Network, run_ucp
from .ucp_support import HELLO_WAT, Client, explain, start_roles, write_wasm

TICKER_WAT = (
    Path(__file__).resolve().parents[1] / "ucp_dtn" / "runtime" / "wasm" / "ticker.wat"
).read_text()
"""Writes "tick" every 50 ms, forever."""


async def read_until(process: trio.Process, pattern: str, seen: list[bytes], timeout: float) -> str:
    """Read ``process``'s stdout until a line matches ``pattern``; the text so far."""
    assert process.stdout is not None
    with trio.fail_after(timeout):
        while not re.search(pattern, b"".join(seen).decode(errors="replace"), re.M):
            chunk = await process.stdout.receive_some(4096)
            assert chunk, f"stdout ended before {pattern!r}: {b''.join(seen)!r}"
            seen.append(chunk)
    return b"".join(seen).decode()


def ucp_command(client: Client, *args: str) -> list[str]:
    return [sys.executable, "-m", "ucp_dtn.cli", *args, *client.flags()]


async def test_commands_share_a_home_and_ctrl_c_loses_nothing(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore", "--max-jobs", "4")
    write_wasm(tmp_path, "ticker.wasm", TICKER_WAT)
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    (tmp_path / "tick.toml").write_text('[jobs.tick]\nwasm = "ticker.wasm"\nlimits.time = "10m"\n')
    for name in ("one", "two"):
        (tmp_path / f"{name}.toml").write_text(f'[jobs.{name}]\nwasm = "hello.wasm"\n')
    client = Client(tmp_path / "home", hub)

    run = await trio.lowlevel.open_process(
        ucp_command(client, "run", str(tmp_path / "tick.toml"), "-o", str(tmp_path / "out")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        seen: list[bytes] = []
        await read_until(run, r"^tick \([0-9a-f]{8}\): running on", seen, timeout=60)

        # While `run` waits: status, jobs and logs of the same home answer at once, and two
        # submissions go side by side.
        status = await client.status("tick")
        assert status["tick"]["state"] == "running"
        submitted: dict[str, dict[str, object]] = {}

        async def submit(name: str) -> None:
            out = await client.ok("submit", str(tmp_path / f"{name}.toml"), "--json")
            submitted[name] = json.loads(out)

        async with trio.open_nursery() as nursery:
            for name in ("one", "two"):
                nursery.start_soon(submit, name)
        assert {name: doc["outcome"] for name, doc in submitted.items()} == {
            "one": "accepted",
            "two": "accepted",
        }
        with trio.fail_after(30):
            while (await client.ok("logs", "tick")).count("tick\n") < 3:
                await trio.sleep(0.2)

        # Ctrl-C: one line, exit status 130, and the job goes on.
        run.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            assert await run.wait() == 130
        assert run.stderr is not None
        error = (await run.stderr.receive_some(65536)).decode()
        assert error.count("\n") == 1, error
        assert error.startswith("ucp run: interrupted: the jobs go on")
    finally:
        if run.returncode is None:
            run.kill()
        await _reap(run)
    running = json.loads(await client.ok("jobs", "--state", "running", "--json"))
    assert [job["name"] for job in running["jobs"]] == ["tick"]
    await client.wait_for_state("one", ["done"])
    await client.wait_for_state("two", ["done"])

    # Cancel stops it at the executor; its state is "cancelled" everywhere.
    cancelled = await client.ok("cancel", "tick", "--reason", "enough ticks")
    assert re.fullmatch(r"tick \([0-9a-f]{8}\): cancelled\n", cancelled)
    assert (await client.status("tick"))["tick"]["state"] == "cancelled"
    everything = json.loads(await client.ok("jobs", "--all", "--json"))
    at_broker = {job["name"]: job for job in everything["jobs"]}
    assert at_broker["tick"]["state"] == "cancelled"
    assert at_broker["tick"]["detail"] == "enough ticks"
    again = await client.ok("cancel", "tick")
    assert "not cancelled: already cancelled" in again
    collected = await client.ucp("collect", "tick", "-o", str(tmp_path / "out"))
    assert collected.returncode == 1 and "cancelled" in collected.stdout.decode()


async def test_exit_statuses_pipes_warnings_and_data(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "ticker.wasm", TICKER_WAT)
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    client = Client(tmp_path / "home", hub)

    # A result address no node serves: the broker's warning is shown at submission.
    plan = tmp_path / "far.toml"
    plan.write_text(
        '[jobs.far]\nwasm = "hello.wasm"\nresult_address = "dtn://nowhere/ucp/client"\n'
    )
    out = await client.ok("submit", str(plan))
    assert re.search(
        r"^warning: far \([0-9a-f]{8}\): no node dtn://nowhere/ is known here: the results "
        r"wait in the network until it appears \(up to 7 d\)$",
        out,
        re.M,
    ), out

    # Not found is an error; an unknown job name is a usage error.
    missing = await client.ucp("data", "rm", "nosuch")
    assert (missing.returncode, missing.stderr.decode()) == (
        1,
        "ucp data rm: error: no data named 'nosuch'\n",
    )
    unknown = await client.ucp("cancel", "nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.decode() == (
        "ucp cancel: error: no job called 'nosuch' was submitted from this client\n"
    )

    # A taken name is refused unless --replace; df shows the datastore.
    first = await client.ucp("data", "put", "notes/a", "-", stdin=b"one")
    assert first.returncode == 0, explain(first)
    taken = await client.ucp("data", "put", "notes/a", "-", stdin=b"two")
    assert taken.returncode == 1
    assert "name 'notes/a' already taken (--replace overwrites it)" in taken.stderr.decode()
    replaced = await client.ucp("data", "put", "notes/a", "-", "--replace", stdin=b"two")
    assert replaced.returncode == 0, explain(replaced)
    assert (await client.ucp("data", "get", "notes/a")).stdout == b"two"
    space = json.loads(await client.ok("data", "df", "--json"))
    [store] = space["datastores"]
    assert store["node"] == "dtn://hub/" and store["items"] >= 1 and store["free"] > 0

    # Library log lines only with -v (and then the agent's too).
    quiet = await client.ucp("status")
    assert quiet.returncode == 0 and quiet.stderr == b""
    verbose = await client.ucp("status", "-v")
    assert " INFO " in verbose.stderr.decode()

    # Output to a pipe closed early ends quietly (the reader has what it wanted).
    (tmp_path / "tick.toml").write_text('[jobs.tick]\nwasm = "ticker.wasm"\nlimits.time = "1m"\n')
    await client.ok("submit", str(tmp_path / "tick.toml"))
    follow = await trio.lowlevel.open_process(
        ucp_command(client, "logs", "tick", "-f"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await read_until(follow, r"^tick$", [], timeout=60)
        assert follow.stdout is not None
        await follow.stdout.aclose()
        with trio.fail_after(30):
            assert await follow.wait() == 141
        assert follow.stderr is not None
        assert await follow.stderr.receive_some(65536) == b""
    finally:
        if follow.returncode is None:
            follow.kill()
        await _reap(follow)
    await client.ok("cancel", "tick")


async def _reap(process: trio.Process) -> None:
    """Wait for ``process`` (killed if a test failed half-way) and close its pipes, so that
    nothing of it is left for a later test to trip over (ResourceWarning)."""
    with trio.CancelScope(shield=True):
        await process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                await pipe.aclose()


def _workers_of(daemon: LocalNode) -> list[int]:
    """Process IDs of the wasm workers the daemon started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == daemon.process.pid and b"runtime._worker" in command:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_workers_of_an_executor_killed_with_kill_9_stop_with_it(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,datastore")
    worker = await start_roles(network, "worker", "executor", "-s", hub.url, "--max-jobs", "1")
    write_wasm(tmp_path, "ticker.wasm", TICKER_WAT)
    (tmp_path / "tick.toml").write_text('[jobs.tick]\nwasm = "ticker.wasm"\nlimits.time = "10m"\n')
    client = Client(tmp_path / "home", hub)
    await client.ok("submit", str(tmp_path / "tick.toml"))
    await client.wait_for_state("tick", ["running"])
    workers = _workers_of(worker)
    assert workers, "the executor daemon runs no wasm worker"
    worker.kill()  # kill -9: no shutdown at all
    with trio.fail_after(10):
        while any(_alive(pid) for pid in workers):
            await trio.sleep(0.05)


async def test_start_up_of_a_command_needs_no_agent_for_help(tmp_path: Path) -> None:
    # --help, --version and a bad command line start no agent and touch no home.
    env = {**os.environ, "UCP_HOME": str(tmp_path / "home")}
    for argv in (["--help"], ["--version"], ["status", "--bad-flag"]):
        done = await run_ucp(*argv, env=env)
        assert done.returncode in (0, 2), explain(done)
    assert not (tmp_path / "home").exists()


async def test_ctrl_c_without_the_agent_loses_nothing(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    write_wasm(tmp_path, "ticker.wasm", TICKER_WAT)
    (tmp_path / "tick.toml").write_text('[jobs.tick]\nwasm = "ticker.wasm"\nlimits.time = "10m"\n')
    client = Client(tmp_path / "home", hub)
    run = await trio.lowlevel.open_process(
        ucp_command(client, "--no-agent", "run", str(tmp_path / "tick.toml"), "-o", "out"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        await read_until(run, r"^tick \([0-9a-f]{8}\): running on", [], timeout=60)
        run.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            assert await run.wait() == 130
        assert run.stderr is not None
        error = (await run.stderr.receive_some(65536)).decode()
        assert error == (
            "ucp run: interrupted: the jobs go on: ucp status, ucp logs and ucp collect pick "
            "them up\n"
        )
    finally:
        if run.returncode is None:
            run.kill()
        await _reap(run)
    running = await client.ok("--no-agent", "jobs", "--state", "running")
    assert re.search(r"^tick +[0-9a-f]{8} +tick\.toml +running", running, re.M), running
    assert "cancelled" in await client.ok("--no-agent", "cancel", "tick")
    assert not (tmp_path / "home" / "agent.sock").exists()
