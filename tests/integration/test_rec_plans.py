"""REC's three example plans, unchanged, through ``ucp run`` against real daemons, with our WAT
equivalent of REC's ``wasi-smoke`` module — checked against what REC's own tests assert:

* ``tests/test_executor.py::test_run_job`` (the job of ``execution_plan_once.toml``): the results
  zip holds exactly ``out.txt`` (``hello-from-wasi``), ``output/stdout.log`` (``ARGS=a,b,c``,
  ``ENV_FOO=bar``, ``STDIN=line1\\nline2``, ``DATA_READ=hello-from-host``) and
  ``output/stderr.log`` (``TO_STDERR``); the named result ``wasm_output_file`` is
  ``hello-from-wasi`` and ``output_archive`` a zip of exactly ``output/stdout.log`` and
  ``output/stderr.log``;
* ``tests/test_integration.py``: one job result per job reaches the client (``dtn://client/``);
  ``execution_plan_twice_named.toml`` publishes its four named data and runs both jobs;
* REC's storage refuses a second write of a name ("already taken"): running a plan again
  without deleting what its first run published is refused the same way.

argv is exactly the plan's (``ARGS=a,b,c``, no program name), env only the plan's, stdin the
named datum's bytes.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import wasmtime

from .daemons import Network
from .ucp_support import Client, explain, start_roles

REC = Path(__file__).parent / "rec"
SMOKE_WAT = Path(__file__).parent / "wasi_smoke.wat"
PUBLISHED = ("wasm_output_file", "output_archive", "wasm_output_file_2", "output_archive_2")


def lines(text: str) -> list[str]:
    return text.splitlines()


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def run_plan(client: Client, plan: Path, out: Path) -> tuple[int, dict[str, Any]]:
    done = await client.ucp("run", str(plan), "-o", str(out), "--timeout", "60s", "--json")
    document: dict[str, Any] = json.loads(done.stdout) if done.stdout else {}
    return done.returncode, document if done.returncode in (0, 1) else {"error": explain(done)}


def job_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    [job] = [job for job in document["jobs"] if job["name"] == name]
    return job


async def test_rec_plans_give_rec_results(network: Network, tmp_path: Path) -> None:
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    plans = tmp_path / "execution_plans"
    shutil.copytree(REC / "execution_plans", plans)
    (tmp_path / "wasi-smoke.wasm").write_bytes(wasmtime.wat2wasm(SMOKE_WAT.read_text()))
    # The plans send results to dtn://client/: this client is that node.
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "identity").write_text("dtn://client/\n")
    client = Client(home, hub)

    # execution_plan_once: REC's test_run_job, through the whole platform.
    status, document = await run_plan(client, plans / "execution_plan_once.toml", tmp_path / "a")
    assert status == 0, document
    assert document["submit"]["uploads"] == 4  # REC's [jobs.data] as named data
    job = job_named(document, "job-0")
    assert job["result"]["from"] == "delivered"  # to dtn://client/, as REC's test expects
    assert not job["warning"]
    assert sorted(job["files"]) == ["out.txt", "output/stderr.log", "output/stdout.log"]
    folder = tmp_path / "a" / "job-0"
    assert (folder / "out.txt").read_bytes() == b"hello-from-wasi"
    assert lines((folder / "output" / "stdout.log").read_text()) == [
        "ARGS=a,b,c",
        "ENV_FOO=bar",
        "STDIN=line1\\nline2\\n",  # the plan's stdin file ends with a newline
        "DATA_READ=hello-from-host",
    ]
    assert (folder / "output" / "stderr.log").read_text() == "TO_STDERR\n"
    assert job["result"]["published"] == ["output_archive", "wasm_output_file"]
    assert (await client.ucp("data", "get", "wasm_output_file")).stdout == b"hello-from-wasi"
    archive = unzip((await client.ucp("data", "get", "output_archive")).stdout)
    assert sorted(archive) == ["output/stderr.log", "output/stdout.log"]
    assert b"ARGS=a,b,c\n" in archive["output/stdout.log"]
    assert archive["output/stderr.log"] == b"TO_STDERR\n"

    # Again without deleting what it published: refused, as REC's storage refuses it.
    status, document = await run_plan(client, plans / "execution_plan_twice.toml", tmp_path / "b")
    assert status == 1, document
    first = job_named(document, "job-0")
    assert first["state"] == "failed"
    assert "name 'output_archive' already taken" in first["result"]["message"]
    assert "name 'wasm_output_file' already taken" in first["result"]["message"]
    second = job_named(document, "job-1")
    assert second["state"] == "rejected"
    assert second["detail"] == f"job 'job-0 ({first['short_id']})' it runs after failed"
    assert (await client.ucp("data", "get", "wasm_output_file")).stdout == b"hello-from-wasi"

    # execution_plan_twice and execution_plan_twice_named, each after deleting what the run
    # before published: the second job reads the first one's wasm_output_file as its stdin.
    for name, out in (("execution_plan_twice", "c"), ("execution_plan_twice_named", "d")):
        for published in PUBLISHED:
            await client.ucp("data", "rm", published)
        status, document = await run_plan(client, plans / f"{name}.toml", tmp_path / out)
        assert status == 0, document
        if name == "execution_plan_twice_named":
            assert document["submit"]["uploads"] == 4  # REC: "Successfully published": 4
        assert [job["result"]["from"] for job in document["jobs"]] == ["delivered"] * 2
        first_out = (tmp_path / out / "job-0" / "output" / "stdout.log").read_text()
        assert lines(first_out)[:2] == ["ARGS=a,b,c", "ENV_FOO=bar"]
        second = tmp_path / out / "job-1"
        assert sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file()) == [
            "out.txt",
            "output/stderr.log",
            "output/stdout.log",
        ]
        assert lines((second / "output" / "stdout.log").read_text()) == [
            "ARGS=x,y,z",
            "ENV_FOO=",  # the second job's env is BAR=baz only
            "STDIN=hello-from-wasi",  # the first job's out.txt, published as wasm_output_file
            "DATA_READ=hello-from-host",
        ]
        named = unzip((await client.ucp("data", "get", "output_archive_2")).stdout)
        assert sorted(named) == ["output/stderr.log", "output/stdout.log"]
        assert (await client.ucp("data", "get", "wasm_output_file_2")).stdout == (
            b"hello-from-wasi"
        )
