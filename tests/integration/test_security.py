"""BPSec end to end through real daemons (RFC 9172): a -> b -> c with the policy "bundles from a
to c carry a BIB and a BCB". a is their security source, c their acceptor, b a relay without
keys: b's store holds only ciphertext, c delivers the plaintext and says what it verified, and
a copy altered on the way is discarded at c with a status report to a giving the reason,
"Failed security operation"."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
from pathlib import Path

import trio

from bpv7 import Bundle, CanonicalBlock, decode_bundle
from convergence.tcpcl.link import LinkConfig, TcpclLink, TransferOutcome
from convergence.tcpcl.listener import open_link
from tests.ucp_dtn.security_support import KEYS_TOML, write_keys
from ucp_dtn.appapi import format_bundle_id

from .daemons import Network, wait_until

WAIT = 40
MARKERS = (b"plaintext marker 7d3e: first survey", b"plaintext marker 7d3e: second survey")

SOURCE_RULE = """
[[security.rule]]
role = "source"
source = "dtn://a/*"
destination = "dtn://c/*"
integrity = "a-c-mac"
confidentiality = "a-c-aes"
"""
ACCEPTOR_RULE = SOURCE_RULE.replace('role = "source"', 'role = "acceptor"')


def config(directory: Path, name: str, rule: str) -> str:
    path = directory / f"{name}.toml"
    path.write_text(KEYS_TOML + rule)
    return str(path)


def stored_bundles(workdir: Path) -> list[Bundle]:
    """The bundles in a daemon's store, read from its database (read-only, beside it)."""
    database = workdir / "store" / "bundles.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT raw FROM payloads").fetchall()
    return [decode_bundle(bytes(raw)) for (raw,) in rows]


def flip_one_ciphertext_bit(bundle: Bundle) -> Bundle:
    payload = bundle.payload_block
    data = bytearray(payload.data)
    data[len(data) // 2] ^= 0x04
    altered = CanonicalBlock.opaque(1, 1, payload.flags, payload.crc_type, bytes(data))
    return Bundle(bundle.primary, (*bundle.blocks[:-1], altered))


async def _drain(link: TcpclLink) -> None:
    async for transfer in link:
        await transfer.accept()


async def test_bundles_from_a_to_c_are_signed_encrypted_and_checked(
    network: Network, tmp_path: Path
) -> None:
    write_keys(tmp_path)
    c_config = config(tmp_path, "c", ACCEPTOR_RULE)
    async with trio.open_nursery() as starting:
        starting.start_soon(network.start, "c", "-c", c_config, "-r", "dtn://a/*=dtn://b/")
        # b knows the way to c but has no session with it yet: what a sends waits in b.
        starting.start_soon(network.start, "b", "-r", "dtn://c/*=dtn://c/")
    b, c = network.nodes["b"], network.nodes["c"]
    a = await network.start(
        "a", "-c", config(tmp_path, "a", SOURCE_RULE), "-s", b.url, "-r", "dtn://c/*=dtn://b/"
    )
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            reports: list[dict[str, object]] = []

            async def receive_report() -> None:
                got = await a.ucp(
                    "recv", "-e", "dtn://a/", "--count", "1", "--json", "--timeout", "35s"
                )
                assert got.returncode == 0, got.stderr
                reports.append(json.loads(got.stdout))

            nursery.start_soon(receive_report)
            ids = []
            for marker in MARKERS:
                sent = await a.ucp(
                    "send", "-d", "dtn://c/inbox", "--report", "deleted", stdin=marker
                )
                assert sent.returncode == 0, sent.stderr
                ids.append(sent.stdout.decode().strip())

            async def both_at_b() -> bool:
                return bool((await b.info())["statistics"]["pending_forward"] == 2)

            await wait_until(both_at_b, timeout=WAIT, what="b to hold both bundles")
            # b's store holds them as a made them: encrypted and signed, the plaintext nowhere.
            held = stored_bundles(network.workdir("b"))
            assert len(held) == 2
            for bundle in held:
                assert bundle.encrypted_blocks.keys() >= {1}
                assert {int(block.type_code) for block in bundle.blocks} >= {11, 12}
                assert str(bundle.primary.source) == "dtn://a/"
            for path in network.workdir("b").rglob("*"):
                if path.is_file():
                    content = path.read_bytes()
                    assert not any(marker in content for marker in MARKERS), path

            # A crafted peer sends c the second bundle with one ciphertext bit flipped.
            (second,) = [b for b in held if format_bundle_id(b.bundle_id) == ids[1]]
            altered = flip_one_ciphertext_bit(second)
            crafted = LinkConfig(node_id="dtn://mallory/", keepalive_s=0)
            async with open_link(*c.address, crafted) as link:
                nursery.start_soon(_drain, link)  # (c sends its neighbours route adverts)
                result = await link.send(altered.encode())
                assert result.outcome is TransferOutcome.ACKED

            # Now b reaches c: the first bundle is delivered, the genuine second one arrives
            # after its altered copy was discarded (a duplicate then).
            async with b.client() as client:
                await client.connect_peer(*c.address)
            got = await c.ucp("recv", "-e", "inbox", "--count", "1", "--json", "--timeout", "30s")
            assert got.returncode == 0, got.stderr
            delivered = json.loads(got.stdout)
            assert delivered["bundle_id"] == ids[0]
            assert base64.b64decode(delivered["payload"]) == MARKERS[0]
            assert sorted(
                (item["service"], item["target"], item["outcome"], item["key"])
                for item in delivered["security"]
            ) == [
                ("confidentiality", 1, "decrypted", "a-c-aes"),
                ("confidentiality", 3, "decrypted", "a-c-aes"),
                ("integrity", 1, "verified", "a-c-mac"),
            ]
    # c's deletion report reached a, naming the altered bundle and RFC 9172's reason.
    (report,) = reports
    status = report["status_report"]
    assert isinstance(status, dict)
    assert status["subject"] == ids[1]
    assert (status["reason_code"], status["reason"]) == (15, "failed_security_operation")
    assert "deleted" in status["asserted"]
    c_stats = (await c.info())["statistics"]
    assert c_stats["deleted"] == {"failed_security_operation": 1}
    assert c_stats["delivered"] == 1


async def test_a_bad_policy_stops_the_daemon_with_one_line_and_status_2(tmp_path: Path) -> None:
    write_keys(tmp_path)
    bad = config(tmp_path, "bad", SOURCE_RULE.replace('"a-c-aes"', '"a-c-typo"'))
    with trio.fail_after(WAIT):
        result = await trio.run_process(
            [sys.executable, "-m", "ucp_dtn.daemon", "--in-memory", "-c", bad],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.decode() == (
        f"ucp-bpnode: error: {bad}: security.rule[1].confidentiality: no key 'a-c-typo' "
        "(known: a-c-aes, a-c-mac)\n"
    )
