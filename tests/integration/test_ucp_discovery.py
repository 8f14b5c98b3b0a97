"""A client without any address: it finds a broker's node with zeroconf (``--discover``)."""

from __future__ import annotations

import secrets
from pathlib import Path

from .daemons import Network, run_ucp
from .ucp_support import HELLO_WAT, explain, start_roles, write_wasm


async def test_run_finds_the_broker_by_zeroconf(network: Network, tmp_path: Path) -> None:
    # A service type of this run only, on loopback: parallel runs never see each other.
    suffix = secrets.token_hex(3)
    discovery = [
        "--discovery-interface",
        "127.0.0.1",
        "--discovery-service-type",
        f"_c{suffix}._tcp",
    ]
    await start_roles(
        network, f"zc-{suffix}", "broker,executor,datastore", "--discovery", *discovery
    )
    write_wasm(tmp_path, "hello.wasm", HELLO_WAT)
    plan = tmp_path / "plan.toml"
    plan.write_text('[jobs.found]\nwasm = "hello.wasm"\n')
    out = tmp_path / "out"
    done = await run_ucp(
        "run", str(plan), "-o", str(out), "--home", str(tmp_path / "home"), "--discover",
        *discovery, "--wait", "30s", "--timeout", "40s", timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, explain(done)
    assert f"1 job accepted by dtn://zc-{suffix}/ucp/broker" in done.stdout.decode()
    assert (out / "found" / "stdout").read_text() == "hello\n"
