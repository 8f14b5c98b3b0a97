"""Large blocks are not copied: a decoded payload stays a view of the input, a large payload is
encrypted straight into the encoded bundle, and both give the same bytes and results as the
copying paths (which small blocks still take)."""

from __future__ import annotations

import os

import pytest

from bpv7 import Bundle, BundleFlags, CreationTimestamp, HopCountBlock, decode_bundle
from bpv7.blocks import VIEW_THRESHOLD
from bpv7.bpsec import (
    AesGcm,
    CoseKey,
    CoseOperation,
    CoseSource,
    HmacSha2,
    KeyStore,
    add_confidentiality,
    add_integrity,
    process_security,
)

SOURCE = "ipn:2.1"
AES_KEY = bytes(range(32))
HMAC_KEY = bytes(range(100, 148))


def bundle_of(size: int, flags: int = 0) -> Bundle:
    return Bundle.build(
        source=SOURCE,
        destination="ipn:3.1",
        payload=os.urandom(size),
        creation=CreationTimestamp(800_000_000_000, 1),
        lifetime_ms=3_600_000,
        flags=flags,
        extra_blocks=[HopCountBlock(30, 1)],
    )


def keys() -> KeyStore:
    store = KeyStore()
    store.add(f"bib@{SOURCE}", HMAC_KEY)
    store.add(f"bcb@{SOURCE}", AES_KEY)
    return store


def test_a_large_decoded_block_is_a_view_until_its_data_is_read() -> None:
    bundle = bundle_of(VIEW_THRESHOLD)
    raw = bundle.encode()
    decoded = decode_bundle(raw)
    view = decoded.payload_block.data_view
    assert isinstance(view, memoryview) and view.obj is raw and view.readonly
    assert decoded == bundle  # equality compares the content
    assert decoded.encode() == raw
    data = decoded.payload
    assert type(data) is bytes and data == bundle.payload
    assert decoded.payload_block.data_view is data  # copied once, then kept


def test_small_blocks_and_mutable_inputs_are_copied() -> None:
    small = decode_bundle(bundle_of(VIEW_THRESHOLD - 1).encode())
    assert type(small.payload_block.data_view) is bytes
    large = bundle_of(VIEW_THRESHOLD).encode()
    from_bytearray = decode_bundle(bytearray(large))
    # (decode_bundle copies a mutable input into bytes first: the view is of that copy)
    view = from_bytearray.payload_block.data_view
    assert not isinstance(view, memoryview) or type(view.obj) is bytes


@pytest.mark.parametrize("size", [1000, VIEW_THRESHOLD, 300_000])
@pytest.mark.parametrize("with_bib", [False, True])
@pytest.mark.parametrize("chosen", [False, True], ids=["defaults", "chosen"])
def test_in_place_encryption_gives_the_same_bundle(size: int, with_bib: bool, chosen: bool) -> None:
    """A large payload is encrypted into the encoded bundle (RFC 9173 BCB-AES-GCM), its tag
    patched into the BCB afterwards; the bytes are those the copying path makes (same IV), and
    they decrypt and verify. ``chosen``: the payload is not the last target, the BCB has a CRC
    and a block number the caller chose (the finished bundle is then checked again)."""
    plain = bundle_of(size, flags=BundleFlags.REPORT_DELETION)
    targets = [1]
    if with_bib:
        plain = add_integrity(plain, [1], HmacSha2(HMAC_KEY), source=SOURCE)
        bib = plain.find_block(11)
        assert bib is not None
        targets = [1, bib.number] if not chosen else [bib.number, 1]
    options: dict[str, int] = {"crc_type": 2, "block_number": 9} if chosen else {}
    context = AesGcm(AES_KEY, iv=bytes(range(12)))
    secured = add_confidentiality(plain, targets, context, source=SOURCE, **options)
    raw = secured.encode()
    # A large payload's bundle bytes were made with the bundle: encode() does not copy them.
    assert (secured.encode() is raw) == (size >= VIEW_THRESHOLD)
    # The copying path: a context without in-place support gives the same bytes.
    copying = add_confidentiality(
        plain, targets, _Copying(AES_KEY, iv=bytes(range(12))), source=SOURCE, **options
    )
    assert copying.encode() == raw
    assert decode_bundle(raw) == secured
    result = process_security(decode_bundle(raw), keys(), accept=True)
    assert [op.outcome for op in result.operations] == ["decrypted"] * len(targets) + (
        ["verified"] if with_bib else []
    )
    assert result.bundle.payload == plain.payload
    assert not result.bundle.has_security_blocks


@pytest.mark.parametrize("size", [VIEW_THRESHOLD - 1, VIEW_THRESHOLD, 300_000])
def test_a_large_plaintext_is_the_bytes_it_was_decrypted_into(size: int) -> None:
    """BCB-AES-GCM decrypts a large target straight into the ``bytes`` it returns; a changed
    byte of ciphertext (or of the tag) still fails the operation and changes nothing."""
    plain = bundle_of(size)
    raw = add_confidentiality(plain, [1], AesGcm(AES_KEY), source=SOURCE).encode()
    result = process_security(decode_bundle(raw), keys(), accept=True)
    data = result.bundle.payload_block.data_view
    assert type(data) is bytes and data == plain.payload
    bcb = decode_bundle(raw).blocks[0].data  # its last 16 bytes: the tag (RFC 9173 §4.4.1)
    tag_at = raw.index(bcb) + len(bcb) - 16
    for position in (len(raw) - 2, len(raw) - size // 2, tag_at):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        bundle = decode_bundle(bytes(altered))
        result = process_security(bundle, keys(), accept=True)
        assert [op.outcome for op in result.operations] == ["failed"]
        assert result.bundle is bundle and result.plaintext == {}


def test_cose_encryption_of_a_large_payload_round_trips() -> None:
    """The COSE context has no in-place path: the copying one still works for large data."""
    key = CoseKey.symmetric(AES_KEY, kid=b"k1", alg=3)
    plain = bundle_of(VIEW_THRESHOLD * 2)
    secured = add_confidentiality(plain, [1], CoseSource(CoseOperation(key)), source=SOURCE)
    store = KeyStore([key])
    result = process_security(decode_bundle(secured.encode()), store, accept=True)
    assert result.operations[0].outcome == "decrypted"
    assert result.bundle.payload == plain.payload


class _Copying(AesGcm):
    """BCB-AES-GCM without the in-place path (the ciphertext made apart, then encoded)."""

    def in_place(self, bundle, header, targets):  # type: ignore[no-untyped-def]
        return None
