"""The README's main command: ``make demo`` runs ``python -m ucp_dtn demo`` end to end — real
daemons with the broker, datastore and executor roles, a client that submits, goes offline,
comes back and collects the results of real WebAssembly jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_real_jobs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ucp_dtn", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "3 jobs accepted by dtn://hub/ucp/broker" in out
    assert "bridge: done, site-a: done, site-b: done" in out
    # The classifier's labels were checked against the generated audio, the gauge's figures
    # against the readings.
    assert out.count("[as expected]") == 3
    assert out.count("exited with status 0") == 2
    # The results were unpacked where the user asked.
    assert (tmp_path / "results" / "bridge" / "stdout").read_text().startswith("readings=2000 ")
    assert "# windows 239" in (tmp_path / "results" / "site-a" / "stdout").read_text()
