"""The dashboard of real ``ucp-bpnode`` daemons (``--http``): the page in headless Chromium
shows the nodes and the job rows turn done without a reload; ``/metrics`` parsed with
``prometheus_client``'s parser agrees with ``ucp nodes`` after a known number of bundles."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from .daemons import Daemon, Inbox, Network, wait_until
from .ucp_support import HELLO_WAT, Client, start_roles, write_wasm

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
#: Chromium on this kind of machine: no sandbox (root), no GPU, nothing fetched from outside.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1800",
)
JOBS = ("alpha", "bravo", "charlie")


def _browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _page_state(driver: Any) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(
        """return {
            marker: window.__testMarker || null,
            nodes: Array.from(document.querySelectorAll('#mesh g[data-node]'))
                .map((g) => g.dataset.node),
            jobs: Object.fromEntries(Array.from(document.querySelectorAll('tr.job'))
                .map((tr) => [tr.cells[0].firstChild.textContent, tr.dataset.state])),
            live: document.getElementById('live-text').textContent,
        };"""
    )
    return state


async def _wait_for_page(
    driver: Any, predicate: Any, *, what: str, timeout: float = 60.0
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    with trio.move_on_after(timeout):
        while True:
            state = await trio.to_thread.run_sync(_page_state, driver)
            if predicate(state):
                return state
            await trio.sleep(0.3)
    raise AssertionError(f"the page never showed {what}: {state}")


@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromium-driver are not installed (make tools installs them as root)",
)
async def test_page_shows_the_nodes_and_jobs_turn_done_without_a_reload(
    network: Network, tmp_path: Path
) -> None:
    hub = await start_roles(network, "hub", "broker,datastore", "--http", "127.0.0.1:0")
    assert hub.dashboard_url is not None
    plan = tmp_path / "plan"
    plan.mkdir()
    write_wasm(plan, "hello.wasm", HELLO_WAT)
    (plan / "plan.toml").write_text(
        "".join(f'[jobs.{name}]\nwasm = "hello.wasm"\n\n' for name in JOBS)
    )
    client = Client(tmp_path / "client", hub)
    # No executor yet: the broker accepts the jobs and keeps them queued.
    await client.ok("submit", str(plan / "plan.toml"), "--wait", "30s")

    driver = await trio.to_thread.run_sync(_browser, Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        await trio.to_thread.run_sync(driver.get, hub.dashboard_url)
        state = await _wait_for_page(
            driver,
            lambda s: s["live"] == "live" and sorted(s["jobs"]) == sorted(JOBS),
            what="the three queued jobs",
        )
        assert set(state["jobs"].values()) == {"queued"}
        # The client's agent stays connected after the submission (it forwards what is left
        # to send): the map shows its node beside the hub.
        me = (client.home / "identity").read_text().strip()
        assert state["nodes"][0] == "dtn://hub/"
        assert sorted(state["nodes"]) == sorted(["dtn://hub/", me])
        # A mark in the page's window: a reload would wipe it.
        await trio.to_thread.run_sync(driver.execute_script, "window.__testMarker = 'kept'")

        await start_roles(network, "worker", "executor", "-s", hub.url)
        state = await _wait_for_page(
            driver,
            lambda s: set(s["jobs"].values()) == {"done"} and "dtn://worker/" in s["nodes"],
            what="every job done and the worker on the map",
        )
        assert state["marker"] == "kept"  # updated live, not reloaded
        assert state["nodes"][0] == "dtn://hub/"
        assert sorted(state["nodes"]) == sorted(["dtn://hub/", me, "dtn://worker/"])
        shot = tmp_path / "dashboard.png"
        await trio.to_thread.run_sync(driver.save_screenshot, str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")
    finally:
        await trio.to_thread.run_sync(driver.quit)


def _scrape(address: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=20) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _ucp_nodes(daemon: Daemon) -> dict[str, Any]:
    """The statistics ``ucp nodes --json`` prints."""
    done = await daemon.ucp("nodes", "--json")
    assert done.returncode == 0, done.stderr.decode()
    statistics: dict[str, Any] = json.loads(done.stdout)["statistics"]
    return statistics


#: ``ucp nodes`` statistics → the metric that carries the same count.
SAME_COUNTS = {
    "received": "ucp_bundles_received_total",
    "created": "ucp_bundles_created_total",
    "forwarded": "ucp_bundles_forwarded_total",
    "delivered": "ucp_bundles_delivered_total",
    "duplicates": "ucp_bundles_duplicate_total",
    "refused_transfers": "ucp_transfers_refused_total",
    "custody_retransmitted": "ucp_custody_retransmissions_total",
    "fragments_created": "ucp_fragments_created_total",
    "sessions_opened": "ucp_sessions_opened_total",
    "stored_bundles": "ucp_store_bundles",
    "stored_bytes": "ucp_store_bytes",
    "store_quota_bytes": "ucp_store_quota_bytes",
    "sessions": "ucp_sessions",
}


async def test_metrics_agree_with_ucp_nodes_after_a_known_number_of_bundles(
    network: Network,
) -> None:
    count = 25
    b = await network.start("b", "--http", "127.0.0.1:0")
    a = await network.start("a", "--http", "127.0.0.1:0", "-s", b.url)
    assert a.ready.http is not None and b.ready.http is not None
    inbox = Inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbox.run, b, "dtn://b/inbox")
        async with a.client() as api:
            for n in range(count):
                await api.send("dtn://b/inbox", b"bundle %d" % n)
        with trio.fail_after(60):
            await inbox.reached(count).wait()

        async def settled() -> bool:
            info = await a.info()
            return bool(info["statistics"]["forwarded"] == count)

        await wait_until(settled, timeout=30, what="a's forwarded count")
        nursery.cancel_scope.cancel()

    for daemon, expected in (
        (a, {"created": count, "forwarded": count}),
        (b, {"received": count, "delivered": count}),
    ):
        assert daemon.ready.http is not None
        before = await _ucp_nodes(daemon)
        samples = await trio.to_thread.run_sync(_scrape, daemon.ready.http)
        after = await _ucp_nodes(daemon)
        for name, value in expected.items():
            assert before[name] == after[name] == value, (daemon.name, name, before, after)
        for name, metric in SAME_COUNTS.items():
            scraped = samples[(metric, ())]
            assert before[name] <= scraped <= after[name], (daemon.name, name, scraped, before)
        for reason, deleted in after["deleted"].items():
            assert samples[("ucp_bundles_deleted_total", (("reason", reason),))] == deleted
    # The session counters name the neighbour: what a forwarded, b received.
    a_samples = await trio.to_thread.run_sync(_scrape, a.ready.http)
    assert a_samples[("ucp_session_bundles_sent_total", (("peer", "dtn://b/"),))] >= count
    assert a_samples[("ucp_session_rtt_seconds", (("peer", "dtn://b/"),))] > 0
