"""The README's main command: ``make demo`` runs ``python -m ucp_dtn demo`` end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_delivers_the_message_across_two_hops(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ucp_dtn", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        timeout=180,
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "waits in b's store (1 bundle(s) stored)" in out
    assert "intact: yes" in out
    assert out.count("exited with status 0") == 3
