"""``ucp data put/get/ls/rm`` through a broker with two datastores."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import trio

from .daemons import Network
from .ucp_support import Client, explain, start_roles


async def test_listing_pagination_get_and_delete_over_two_datastores(
    network: Network, tmp_path: Path
) -> None:
    broker = await start_roles(network, "b", "broker")
    for name in ("d1", "d2"):
        await start_roles(network, name, "datastore", "-s", broker.url, "--broker", "dtn://b/")
    client = Client(tmp_path / "home", broker)
    with trio.fail_after(20):
        while True:
            nodes = json.loads(await client.ok("status", "--nodes", "--json"))["nodes"]
            if sum("datastore" in node["roles"] for node in nodes) == 2:
                break
            await trio.sleep(0.5)

    job = uuid.uuid4()
    for index in range(4):
        done = await client.ucp("data", "put", f"set/item{index}", "-", stdin=b"x" * index)
        assert done.returncode == 0, explain(done)
        assert done.stdout.decode().strip() == f"stored set/item{index} ({index} bytes)"
    source = tmp_path / "blob.bin"
    source.write_bytes(bytes(range(256)))
    stored = await client.ok("data", "put", "other/blob", str(source), "--job", str(job))
    assert "stored other/blob (256 bytes)" in stored

    everything = json.loads(await client.ok("data", "ls", "--all", "--json"))
    assert [e["name"] for e in everything["entries"]] == [
        "other/blob",
        *(f"set/item{i}" for i in range(4)),
    ]
    assert everything["next_page"] is None and everything["datastores"] == 2
    holders = {e["holder"] for e in everything["entries"]}
    assert holders <= {"dtn://d1/ucp/datastore", "dtn://d2/ucp/datastore"}

    # Pages of at most one entry per datastore, followed to the end.
    seen: list[str] = []
    page: list[str] = []
    for _ in range(10):
        listing = json.loads(
            await client.ok("data", "ls", "set", "--page-size", "1", "--json", *page)
        )
        assert 1 <= len(listing["entries"]) <= 2
        seen += [e["name"] for e in listing["entries"]]
        if listing["next_page"] is None:
            break
        page = ["--page", listing["next_page"]]
    assert sorted(seen) == [f"set/item{i}" for i in range(4)]
    table = await client.ucp("data", "ls", "--page-size", "1")
    assert table.returncode == 0 and "more: --page " in table.stderr.decode()

    single = await client.ucp("data", "get", "set/item3")
    assert single.returncode == 0 and single.stdout == b"xxx"
    fetched = tmp_path / "fetched"
    written = await client.ok("data", "get", "set", "-o", str(fetched))
    assert len(written.splitlines()) == 4
    assert (fetched / "set" / "item3").read_bytes() == b"xxx"
    several = await client.ucp("data", "get", "set")
    assert several.returncode == 2 and "give -o DIR" in several.stderr.decode()

    assert (await client.ok("data", "rm", "set/item0")).strip() == "deleted 1 datum"
    assert (await client.ok("data", "rm", "set/item*")).strip() == "deleted 3 data"
    assert (await client.ok("data", "rm", "--job", str(job))).strip() == "deleted 1 datum"
    left = json.loads(await client.ok("data", "ls", "--json"))
    assert left["entries"] == []
    missing = await client.ucp("data", "get", "set/item1")
    assert missing.returncode == 1
    assert missing.stderr.decode().strip() == "ucp data get: error: no data named 'set/item1'"
