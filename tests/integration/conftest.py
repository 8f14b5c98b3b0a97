"""Fixtures of the multi-process integration tests (see daemons.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from .daemons import Network
from .ucp_support import stop_agents


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    """Daemons of one test, and the client agents its ucp commands started; the daemons' logs
    are shown when the test fails."""
    network = Network(tmp_path)
    try:
        yield network
    finally:
        await stop_agents(tmp_path)
        await network.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    network = getattr(item, "funcargs", {}).get("network")
    # pytest-trio hands async fixtures over in a wrapper that holds the value.
    network = getattr(network, "fixture_value", network)
    if report.when == "call" and report.failed and isinstance(network, Network):
        report.sections.append(("daemon logs", network.logs()))
        for log in sorted(network.base.rglob("agent.log")):
            text = log.read_text(errors="replace")[-20000:]
            report.sections.append((f"client agent log {log.parent.name}", text))
    return report
