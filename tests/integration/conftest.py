"""Fixtures of the multi-process integration tests (see daemons.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .daemons import Network


@pytest.fixture
async def network(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Network]:
    # Unix socket paths are limited to 107 bytes: keep the base directory short.
    network = Network(tmp_path)
    try:
        yield network
    finally:
        await network.close()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(network.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
