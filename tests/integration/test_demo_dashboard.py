"""``ucp demo --dashboard``: the demo's nodes serve their dashboards, the demo prints the
addresses, runs the jobs, and keeps the network up (the hub's page and API show the jobs done)
until SIGINT, then shuts down cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import trio


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as reply:
        body: bytes = reply.read()
        return body


async def test_demo_dashboard_stays_up_and_shows_the_jobs(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "ucp_dtn", "demo", "--dashboard", "--workdir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(240):
            while b"press Ctrl-C" not in output:
                chunk = await process.stdout.receive_some(65536)
                assert chunk, output.decode(errors="replace")
                output += chunk
        text = output.decode()
        found = re.search(r"dashboard of the hub \(broker, job table\): (http://\S+/)", text)
        assert found, text
        hub = found.group(1)
        assert re.search(r"dashboard of the worker \(executor\): +http://127\.0\.0\.1:\d+/", text)
        assert "bridge: done, site-a: done, site-b: done" in text
        jobs = json.loads(await trio.to_thread.run_sync(_get, hub + "api/v1/jobs"))
        assert sorted((job["name"], job["state"]) for job in jobs["jobs"]) == [
            ("bridge", "done"),
            ("site-a", "done"),
            ("site-b", "done"),
        ]
        assert all(job["executor"] == "dtn://worker/" for job in jobs["jobs"])
        metrics = (await trio.to_thread.run_sync(_get, hub + "metrics")).decode()
        assert 'ucp_jobs{state="done"} 3.0' in metrics
        assert "ucp_job_run_seconds_count 3.0" in metrics
        process.send_signal(signal.SIGINT)
        with trio.fail_after(60):
            while chunk := await process.stdout.receive_some(65536):
                output += chunk
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    assert status == 0, text
    assert text.count("exited with status 0") == 2 and "success" in text
