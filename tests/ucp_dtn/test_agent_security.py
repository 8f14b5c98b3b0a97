"""BPSec in running nodes (in one process, real TCPCL on 127.0.0.1): a security source's bundles
leave it encrypted and signed, a relay without a rule forwards them as they are, the acceptor
delivers the plaintext and says what it verified, and a bundle that fails or lacks an operation
is discarded with the RFC 9172 reason in a status report -- also when it arrives in fragments."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bpv7 import Bundle, BundleFlags, CanonicalBlock, parse_eid
from bpv7.admin import BundleStatusReport, admin_record_from_bundle
from bpv7.fragment import fragment_at
from ucp_dtn.agent import SecurityError, SecurityPolicy

from .agent_support import bare_peer, make_bundle, start_node, wait_until
from .security_support import ACCEPTOR_RULE, SOURCE_RULE, policy, write_keys

TIMEOUT = 20
MARKER = b"plaintext marker 4f1c: the survey results"


@pytest.fixture
def policies(tmp_path: Path) -> tuple[SecurityPolicy, SecurityPolicy]:
    write_keys(tmp_path)
    return policy(tmp_path, SOURCE_RULE), policy(tmp_path, ACCEPTOR_RULE)


def flipped(bundle: Bundle) -> Bundle:
    """``bundle`` with one byte of its (encrypted) payload flipped, CRC made good again."""
    payload = bundle.payload_block
    data = bytearray(payload.data)
    data[0] ^= 0x80
    block = CanonicalBlock.opaque(1, 1, payload.flags, payload.crc_type, bytes(data))
    return Bundle(bundle.primary, (*bundle.blocks[:-1], block))


async def test_the_source_sends_ciphertext_and_the_acceptor_delivers_plaintext(
    policies: tuple[SecurityPolicy, SecurityPolicy],
) -> None:
    at_a, at_c = policies
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c", security=at_c)
            b = await start_node(nursery, "b", static_peers=(c.address,))
            a = await start_node(
                nursery,
                "a",
                security=at_a,
                static_peers=(b.address,),
                static_routes=(("dtn://c/*", "dtn://b/"),),
            )
            inbox = c.node.register("dtn://c/inbox")
            # What a sends: ciphertext only (the bundle is captured by a bare peer as "c").
            async with bare_peer(a, "c") as spy:
                await wait_until(lambda: a.node.statistics().sessions == 2)
                await a.node.send("dtn://c/inbox", MARKER, lifetime_s=60)
                sent = await spy.receive()
            assert MARKER not in sent.encode()
            assert [int(block.type_code) for block in sent.blocks][:2] == [11, 12]
            # Through b (no rule: it forwards the security blocks untouched) to c.
            await wait_until(lambda: a.node.statistics().sessions == 1)
            await a.node.send("dtn://c/inbox", MARKER, lifetime_s=60)
            delivery = await inbox.receive()
            assert delivery.payload == MARKER
            assert not delivery.bundle.has_security_blocks
            assert sorted(check.describe() for check in delivery.security) == [
                "confidentiality of block 3 decrypted (key a-c-aes, source dtn://a/, context 2)",
                "confidentiality of the payload decrypted (key a-c-aes, source dtn://a/, "
                "context 2)",
                "integrity of the payload verified (key a-c-mac, source dtn://a/, context 1)",
            ]
            await delivery.done()
            await wait_until(lambda: b.node.statistics().forwarded >= 1)
            nursery.cancel_scope.cancel()


async def test_a_tampered_or_unsecured_bundle_is_discarded_with_the_rfc9172_reason(
    policies: tuple[SecurityPolicy, SecurityPolicy],
) -> None:
    """A crafted peer sends c a bundle "from a" with a flipped ciphertext byte (reason 15),
    then one without any security operation (reason 12); c reports each deletion to the
    report-to endpoint, the peer."""
    at_a, at_c = policies
    original = make_bundle(
        "dtn://c/inbox",
        MARKER,
        source="dtn://a/",
        report_to="dtn://t/",
        flags=BundleFlags.REPORT_DELETION,
    )
    secured = at_a.secure(original, original.primary.source)
    unsecured = make_bundle(
        "dtn://c/inbox",
        MARKER,
        source="dtn://a/",
        sequence=1,
        report_to="dtn://t/",
        flags=BundleFlags.REPORT_DELETION,
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c", security=at_c)
            inbox = c.node.register("dtn://c/inbox")
            async with bare_peer(c, "t") as peer:
                reasons = []
                for bad in (flipped(secured), unsecured):
                    await peer.link.send(bad.encode())
                    report = admin_record_from_bundle(await peer.receive())
                    assert isinstance(report, BundleStatusReport)
                    assert report.deleted.asserted
                    assert (report.source, report.creation) == (
                        bad.primary.source,
                        bad.primary.creation,
                    )
                    reasons.append(int(report.reason))
            assert reasons == [15, 12]
            assert inbox.waiting == 0
            deleted = c.node.statistics().deleted
            assert deleted["failed_security_operation"] == 1
            assert deleted["missing_security_operation"] == 1
            nursery.cancel_scope.cancel()


async def test_fragments_are_checked_once_reassembled(
    policies: tuple[SecurityPolicy, SecurityPolicy],
) -> None:
    """Relays keep fragments as they are; the acceptor accepts the reassembled bundle (RFC 9172
    §5.2), and discards it at delivery when a fragment was altered."""
    at_a, at_c = policies
    good, bad = (
        at_a.secure(
            make_bundle(
                "dtn://c/inbox",
                MARKER * 20,
                source="dtn://a/",
                sequence=sequence,
                report_to="dtn://t/",
                flags=BundleFlags.REPORT_DELETION,
            ),
            parse_eid("dtn://a/"),
        )
        for sequence in (0, 1)
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            c = await start_node(nursery, "c", security=at_c)
            inbox = c.node.register("dtn://c/inbox")
            async with bare_peer(c, "t") as peer:
                for piece in fragment_at(good, [300, 600]):
                    await peer.link.send(piece.encode())
                delivery = await inbox.receive()
                assert delivery.payload == MARKER * 20
                assert {check.outcome for check in delivery.security} == {"verified", "decrypted"}
                await delivery.done()
                pieces = fragment_at(bad, [300, 600])
                pieces[1] = flipped(pieces[1])
                for piece in pieces:
                    await peer.link.send(piece.encode())
                # Reassembled, then discarded when the application asks for it (it gets
                # nothing): the report says why.
                nursery.start_soon(inbox.receive)
                report = admin_record_from_bundle(await peer.receive())
                assert isinstance(report, BundleStatusReport)
                assert int(report.reason) == 15 and report.deleted.asserted
            assert c.node.statistics().deleted["failed_security_operation"] == 1
            nursery.cancel_scope.cancel()


async def test_applications_name_keys_when_they_send(tmp_path: Path) -> None:
    write_keys(tmp_path)
    keys_only = policy(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, "a", security=keys_only)
            plain = await start_node(nursery, "p")
            async with bare_peer(a, "t") as peer:
                await wait_until(lambda: a.node.statistics().sessions == 1)
                await a.node.send("dtn://t/in", MARKER, integrity="a-c-mac")
                signed = await peer.receive()
            assert [int(block.type_code) for block in signed.blocks] == [11, 10, 1]
            assert signed.payload == MARKER
            with pytest.raises(SecurityError, match="no security key named 'x'"):
                await a.node.send("dtn://t/in", MARKER, confidentiality="x")
            with pytest.raises(SecurityError, match="no security keys"):
                await plain.node.send("dtn://t/in", MARKER, integrity="a-c-mac")
            nursery.cancel_scope.cancel()
