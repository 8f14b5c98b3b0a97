"""The default security contexts of RFC 9173: BIB-HMAC-SHA2 (id 1) and BCB-AES-GCM (id 2).

Both bind more than the target's data when their scope flags say so (RFC 9173 §3.3.3, §4.3.4):
bit 0 the primary block, bit 1 the target block's header (type code, number, flags), bit 2 the
security block's header. Both may carry a key wrapped with AES key wrap (RFC 3394) under the key
the receiver holds; otherwise the receiver's key is the HMAC or AES key itself. Keys are found by
the security source EID (its URI text) in a :class:`~bpv7.bpsec.keys.KeyStore`: first under
``bib@SOURCE`` or ``bcb@SOURCE`` (a key for that service only), then under ``SOURCE``.

Cryptography comes from ``cryptography`` (HMAC, AES-GCM, AES key wrap); nothing here is a
primitive of our own.
"""

from __future__ import annotations

import hmac as _hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import (
    AEADEncryptionContext,
    Cipher,
    algorithms,
    modes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from .._cbor import encode_head, encode_uint
from ..blocks import CanonicalBlock
from ..bundle import Bundle
from ..codes import BlockType
from ..primary import PrimaryBlock
from ..security_blocks import SecurityContextId, SecurityItems
from .context import (
    AcceptorContext,
    ConfidentialitySource,
    InPlaceEncryption,
    IntegritySource,
    OperationFailure,
    OperationView,
    Outcome,
    SourceBlock,
)
from .keys import KeyStore

__all__ = [
    "AesGcm",
    "AesVariant",
    "BcbAesGcmParameter",
    "BibHmacSha2Parameter",
    "HmacSha2",
    "Rfc9173Context",
    "ScopeFlags",
    "ShaVariant",
]


class BibHmacSha2Parameter(IntEnum):
    """BIB-HMAC-SHA2 security context parameter ids (RFC 9173 §3.3)."""

    SHA_VARIANT = 1
    """RFC 9173 §3.3.1: SHA variant (5, 6 or 7; default 6)."""
    WRAPPED_KEY = 2
    """RFC 9173 §3.3.2: wrapped key (AES key wrap of the HMAC key)."""
    INTEGRITY_SCOPE_FLAGS = 3
    """RFC 9173 §3.3.3: integrity scope flags (default 7)."""


class BcbAesGcmParameter(IntEnum):
    """BCB-AES-GCM security context parameter ids (RFC 9173 §4.3)."""

    IV = 1
    """RFC 9173 §4.3.1: initialization vector."""
    AES_VARIANT = 2
    """RFC 9173 §4.3.2: AES variant (1 A128GCM, 3 A256GCM; default 3)."""
    WRAPPED_KEY = 3
    """RFC 9173 §4.3.3: wrapped key (AES key wrap of the content-encryption key)."""
    AAD_SCOPE_FLAGS = 4
    """RFC 9173 §4.3.4: AAD scope flags (default 7)."""


class ShaVariant(IntEnum):
    """RFC 9173 §3.3.1 SHA variants (the COSE algorithm ids of the HMAC)."""

    HMAC_256 = 5
    """HMAC 256/256."""
    HMAC_384 = 6
    """HMAC 384/384 (the default)."""
    HMAC_512 = 7
    """HMAC 512/512."""


class AesVariant(IntEnum):
    """RFC 9173 §4.3.2 AES variants (the COSE algorithm ids)."""

    A128GCM = 1
    """AES-GCM with a 128-bit key."""
    A256GCM = 3
    """AES-GCM with a 256-bit key (the default)."""


class ScopeFlags(IntFlag):
    """Integrity scope flags (RFC 9173 §3.3.3) and AAD scope flags (§4.3.4): the same bits."""

    PRIMARY_BLOCK = 0x1
    """Bit 0: include the primary block."""
    TARGET_HEADER = 0x2
    """Bit 1: include the target block's type code, block number and flags."""
    SECURITY_HEADER = 0x4
    """Bit 2: include the security block's type code, block number and flags."""


ALL_SCOPE = ScopeFlags(7)
_PRIMARY_BLOCK = int(ScopeFlags.PRIMARY_BLOCK)
_TARGET_HEADER = int(ScopeFlags.TARGET_HEADER)
_SECURITY_HEADER = int(ScopeFlags.SECURITY_HEADER)
_HASHES: dict[int, Callable[[], hashes.HashAlgorithm]] = {
    5: hashes.SHA256,
    6: hashes.SHA384,
    7: hashes.SHA512,
}
_DIGEST_SIZES = {5: 32, 6: 48, 7: 64}
_AES_KEY_LENGTHS = {1: 16, 3: 32}
_KNOWN_BLOCK_FLAGS = 0x17
"""Bits 0, 1, 2 and 4: RFC 9172 §4: "Reserved and unassigned flags in the block processing control
flags field MUST be set to 0 in a canonical form"."""
_RESULT_EXPECTED_HMAC = 1
"""RFC 9173 §3.4: result id 1, "Expected HMAC"."""
_RESULT_AUTH_TAG = 1
"""RFC 9173 §4.4.1: result id 1, "Authentication Tag"."""
_IV = int(BcbAesGcmParameter.IV)
_AES_VARIANT = int(BcbAesGcmParameter.AES_VARIANT)
_WRAPPED_KEY = int(BcbAesGcmParameter.WRAPPED_KEY)
_AAD_SCOPE_FLAGS = int(BcbAesGcmParameter.AAD_SCOPE_FLAGS)


def _header(type_code: int, number: int, flags: int) -> bytes:
    """A block's type code, number and flags as the IPPT and AAD bind them (RFC 9173 §3.7,
    §4.7.2), memoised: the same few headers recur in bundle after bundle."""
    key = (int(type_code), number, int(flags) & _KNOWN_BLOCK_FLAGS)
    header = _HEADERS.get(key)
    if header is None:
        header = encode_uint(key[0]) + encode_uint(number) + encode_uint(key[2])
        if len(_HEADERS) >= _HEADER_CACHE:
            _HEADERS.clear()
        _HEADERS[key] = header
    return header


_HEADERS: dict[tuple[int, int, int], bytes] = {}
_HEADER_CACHE = 256


def _scope_prefix(
    scope: int,
    primary: PrimaryBlock,
    target: CanonicalBlock | None,
    security: tuple[int, int, int],
) -> bytes:
    """The scope-dependent part shared by the IPPT (RFC 9173 §3.7) and the AAD (§4.7.2): the
    scope flags with unassigned bits zeroed, then the primary block, the target header and the
    security header as the flags select. For the primary block as target (BIB only) the primary
    block and target header steps are skipped: the target's canonical form follows anyway."""
    scope = int(scope) & 7
    parts = [encode_uint(scope)]
    if target is not None:
        if scope & _PRIMARY_BLOCK:
            parts.append(primary.encode())
        if scope & _TARGET_HEADER:
            parts.append(_header(target.type_code, target.number, target.flags))
    if scope & _SECURITY_HEADER:
        parts.append(_header(*security))
    return b"".join(parts)


def ippt(
    scope: int,
    primary: PrimaryBlock,
    target: CanonicalBlock | None,
    security: tuple[int, int, int],
) -> bytes:
    """The Integrity-Protected Plaintext of RFC 9173 §3.7 for ``target`` (``None``: the primary
    block); ``security`` is the BIB's ``(type code, number, flags)``."""
    return b"".join(ippt_parts(scope, primary, target, security))


def ippt_parts(
    scope: int,
    primary: PrimaryBlock,
    target: CanonicalBlock | None,
    security: tuple[int, int, int],
) -> tuple[bytes, bytes, bytes | memoryview]:
    """:func:`ippt` in three pieces, to be hashed without copying the target's data."""
    # RFC 9173 §3.7: the canonical form of the target ends the IPPT: the block-type-specific
    # data as a CBOR byte string (its head included), or the primary block's bytes likewise.
    body = primary.encode() if target is None else target.data_view
    return _scope_prefix(scope, primary, target, security), encode_head(2, len(body)), body


def aad(
    scope: int, primary: PrimaryBlock, target: CanonicalBlock, security: tuple[int, int, int]
) -> bytes:
    """The additional authenticated data of RFC 9173 §4.7.2 for ``target``."""
    return _scope_prefix(scope, primary, target, security)


def _key_for(view: OperationView, keys: KeyStore, wrapped: object) -> bytes:
    """The HMAC or AES key of an operation: the key filed under the security source, or the key
    it unwraps (RFC 9173 §3.3.2, §4.3.3)."""
    source = str(view.asb.source)
    service = "bib" if view.security_block.type_code == BlockType.BIB else "bcb"
    # A key filed as "bib@ipn:2.1" or "bcb@ipn:2.1" serves only that service of the source (RFC
    # 9173 Appendix A.4 has one source with an HMAC key and a different AES key).
    key = keys.symmetric(f"{service}@{source}")
    if key is None:
        key = keys.symmetric(source)
    if key is None:
        raise OperationFailure(f"no key for security source {source}", Outcome.NO_KEY)
    if wrapped is None:
        return key
    if not isinstance(wrapped, bytes):
        raise OperationFailure("the wrapped key parameter is not a byte string")
    try:
        return aes_key_unwrap(key, wrapped)
    except (InvalidUnwrap, ValueError) as exc:
        raise OperationFailure(f"cannot unwrap the key with the key of {source}: {exc}") from None


def _uint_parameter(view: OperationView, parameter: int, default: int, what: str) -> int:
    value = view.asb.parameter(parameter, default)
    if type(value) is not int:
        raise OperationFailure(f"the {what} parameter is not an unsigned integer")
    return value


def _security_header(block: CanonicalBlock) -> tuple[int, int, int]:
    return int(block.type_code), block.number, int(block.flags)


class Rfc9173Context(AcceptorContext):
    """The acceptor side of BIB-HMAC-SHA2 and BCB-AES-GCM."""

    def __init__(self, context_id: int) -> None:
        self.context_id = context_id
        self._ciphers: dict[bytes, algorithms.AES] = {}
        """AES objects of the keys found in a key store (not of unwrapped content keys, new for
        each block): made and checked once (cryptography's checks of a new one are ~1.5% of
        decrypting a 1 MiB payload, cache-cold)."""

    def _aes(self, key: bytes, unwrapped: bool) -> algorithms.AES:
        if unwrapped:
            return algorithms.AES(key)
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= _CIPHER_CACHE:
                self._ciphers.clear()
            cipher = self._ciphers[key] = algorithms.AES(key)
        return cipher

    def verify(self, view: OperationView, keys: KeyStore) -> None:
        """Check one BIB-HMAC-SHA2 operation (RFC 9173 §3); a shared key names no signer."""
        if self.context_id != SecurityContextId.BIB_HMAC_SHA2:
            raise OperationFailure(f"context {self.context_id} is not an integrity context")
        variant = _uint_parameter(view, BibHmacSha2Parameter.SHA_VARIANT, 6, "SHA variant")
        hash_type = _HASHES.get(variant)
        if hash_type is None:
            # RFC 9173 §3.3.1: "the following values (and no others) are valid": 5, 6, 7.
            raise OperationFailure(f"unknown SHA variant {variant}")
        scope = _uint_parameter(
            view, BibHmacSha2Parameter.INTEGRITY_SCOPE_FLAGS, 7, "integrity scope flags"
        )
        expected = view.result(_RESULT_EXPECTED_HMAC)
        if not isinstance(expected, bytes):
            raise OperationFailure("no expected HMAC (result 1) for this target")
        key = _key_for(view, keys, view.asb.parameter(BibHmacSha2Parameter.WRAPPED_KEY))
        mac = crypto_hmac.HMAC(key, hash_type())
        for part in ippt_parts(
            scope, view.primary, view.target_block, _security_header(view.security_block)
        ):
            mac.update(part)
        # RFC 9173 §3.6: the security acceptor compares the expected HMAC with the one it
        # computes; compare_digest does so in constant time.
        if not _hmac.compare_digest(mac.finalize(), expected):
            raise OperationFailure("the HMAC does not match")

    def decrypt(self, view: OperationView, keys: KeyStore) -> bytes:
        """Decrypt and authenticate one BCB-AES-GCM operation's target (RFC 9173 §4.8.2)."""
        if self.context_id != SecurityContextId.BCB_AES_GCM:
            raise OperationFailure(f"context {self.context_id} is not a confidentiality context")
        target = view.target_block
        if target is None:
            raise OperationFailure("a BCB cannot target the primary block")
        asb = view.asb
        iv: object = None
        variant: object = 3
        scope: object = 7
        wrapped: object = None
        for item_id, value in asb.parameters:  # (ids are unique: the ASB was checked)
            if item_id == _IV:
                iv = value
            elif item_id == _AES_VARIANT:
                variant = value
            elif item_id == _AAD_SCOPE_FLAGS:
                scope = value
            elif item_id == _WRAPPED_KEY:
                wrapped = value
        if not isinstance(iv, bytes) or not iv:
            # RFC 9173 §4.3.1: the IV "MUST be present" for AES-GCM.
            raise OperationFailure("no initialization vector (parameter 1)")
        if type(variant) is not int:
            raise OperationFailure("the AES variant parameter is not an unsigned integer")
        key_length = _AES_KEY_LENGTHS.get(variant)
        if key_length is None:
            raise OperationFailure(f"unknown AES variant {variant}")
        if type(scope) is not int:
            raise OperationFailure("the AAD scope flags parameter is not an unsigned integer")
        tag = None
        for item_id, value in asb.results[asb.targets.index(view.target)]:
            if item_id == _RESULT_AUTH_TAG:
                tag = value
                break
        if not isinstance(tag, bytes) or len(tag) != 16:
            # RFC 9173 §4.4.1: the authentication tag is 128 bits.
            raise OperationFailure("no 128-bit authentication tag (result 1) for this target")
        key = _key_for(view, keys, wrapped)
        if len(key) != key_length:
            raise OperationFailure(
                f"the key has {len(key)} bytes but the AES variant needs {key_length}"
            )
        data = aad(scope, view.primary, target, _security_header(view.security_block))
        ciphertext = target.data_view
        try:
            # The tag is a separate result here, so the GCM mode takes it as is: no copy of the
            # ciphertext with the tag appended (which AESGCM.decrypt would need).
            decryptor = Cipher(self._aes(key, wrapped is not None), modes.GCM(iv, tag)).decryptor()
            decryptor.authenticate_additional_data(data)
            # update() writes straight into the bytes it returns (cryptography 51: as fast as
            # update_into a buffer of our own, measured).
            plaintext = decryptor.update(ciphertext)
            decryptor.finalize()
        except InvalidTag:
            raise OperationFailure("the ciphertext does not authenticate") from None
        except ValueError as exc:  # e.g. an IV of a length AES-GCM refuses
            raise OperationFailure(f"cannot decrypt: {exc}") from None
        return plaintext


def _wrap_or_use(key: bytes, wrap: bool, content_key: bytes | None, length: int) -> bytes:
    """The content key and, when wrapping, its wrapped form (``b""`` when not wrapping)."""
    if not wrap:
        return key
    return content_key if content_key is not None else os.urandom(length)


@dataclass(frozen=True)
class HmacSha2(IntegritySource):
    """Add BIB-HMAC-SHA2 operations (RFC 9173 §3)."""

    key: bytes
    """The key the receiver holds: the HMAC key, or with ``wrap`` the key-encryption key."""
    variant: int = ShaVariant.HMAC_384
    """SHA variant (:class:`ShaVariant`)."""
    scope: int = ALL_SCOPE
    """Integrity scope flags (:class:`ScopeFlags`)."""
    wrap: bool = False
    """Wrap a content key under ``key`` (RFC 9173 §3.3.2) instead of using ``key`` itself."""
    content_key: bytes | None = None
    """With ``wrap``: the HMAC key to wrap (random when ``None``)."""
    context_id: int = SecurityContextId.BIB_HMAC_SHA2
    removes_target_crc: ClassVar[bool] = True
    """RFC 9173 §3.8.1: "Prior to the generation of the IPPT, if a Cyclic Redundancy Check
    (CRC) value is present for the target block of the BIB, then that CRC value MUST be
    removed from the target block"."""

    def __post_init__(self) -> None:
        if self.variant not in _HASHES:
            raise ValueError(f"SHA variant must be 5, 6 or 7, not {self.variant}")

    def sign(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> tuple[SecurityItems, list[SecurityItems]]:
        """Parameters (SHA variant, wrapped key if any, scope flags) and one expected HMAC per
        target."""
        length = _DIGEST_SIZES[self.variant]
        mac_key = _wrap_or_use(self.key, self.wrap, self.content_key, length)
        parameters: list[tuple[int, object]] = [(BibHmacSha2Parameter.SHA_VARIANT, self.variant)]
        if self.wrap:
            parameters.append((BibHmacSha2Parameter.WRAPPED_KEY, aes_key_wrap(self.key, mac_key)))
        parameters.append((BibHmacSha2Parameter.INTEGRITY_SCOPE_FLAGS, int(self.scope)))
        security = (int(header.type_code), header.number, header.flags)
        results: list[SecurityItems] = []
        for target in targets:
            target_block = None if target == 0 else bundle.block_by_number(target)
            mac = crypto_hmac.HMAC(mac_key, _HASHES[self.variant]())
            for part in ippt_parts(self.scope, bundle.primary, target_block, security):
                mac.update(part)
            results.append(((_RESULT_EXPECTED_HMAC, mac.finalize()),))
        return _int_ids(parameters), results


@dataclass(frozen=True)
class AesGcm(ConfidentialitySource):
    """Add BCB-AES-GCM operations (RFC 9173 §4)."""

    key: bytes
    """The key the receiver holds: the AES key, or with ``wrap`` the key-encryption key."""
    variant: int = AesVariant.A256GCM
    """AES variant (:class:`AesVariant`)."""
    scope: int = ALL_SCOPE
    """AAD scope flags (:class:`ScopeFlags`)."""
    iv: bytes | None = None
    """The initialization vector (12 random bytes when ``None``, RFC 9173 §4.3.1 recommends
    12)."""
    wrap: bool = False
    """Wrap a content-encryption key under ``key`` (RFC 9173 §4.3.3)."""
    content_key: bytes | None = None
    """With ``wrap``: the content-encryption key to wrap (random when ``None``)."""
    context_id: int = SecurityContextId.BCB_AES_GCM
    removes_target_crc: ClassVar[bool] = True
    """RFC 9173 §4.8.1: "Prior to encryption, if a CRC value is present for the target block,
    then that CRC value MUST be removed"."""

    def __post_init__(self) -> None:
        if self.variant not in _AES_KEY_LENGTHS:
            raise ValueError(f"AES variant must be 1 (A128GCM) or 3 (A256GCM), not {self.variant}")

    def _start(self) -> tuple[bytes, bytes, SecurityItems]:
        """The content key, the IV and the parameters of one new BCB."""
        length = _AES_KEY_LENGTHS[self.variant]
        content_key = _wrap_or_use(self.key, self.wrap, self.content_key, length)
        if len(content_key) != length:
            raise ValueError(f"the AES key must have {length} bytes, not {len(content_key)}")
        iv = self.iv if self.iv is not None else os.urandom(12)
        # (plain int ids: what _int_ids makes of the enum members, without the calls)
        if self.wrap:
            wrapped = aes_key_wrap(self.key, content_key)
            parameters: SecurityItems = (
                (_IV, iv),
                (_AES_VARIANT, self.variant),
                (_WRAPPED_KEY, wrapped),
                (_AAD_SCOPE_FLAGS, int(self.scope)),
            )
        else:
            parameters = (
                (_IV, iv),
                (_AES_VARIANT, self.variant),
                (_AAD_SCOPE_FLAGS, int(self.scope)),
            )
        return content_key, iv, parameters

    def _aead(self, content_key: bytes) -> AESGCM:
        """The one-shot AEAD for ``content_key``: made once for a context that uses its own key
        (the AES key schedule and OpenSSL's cipher lookup: ~3% of a 1 MiB encryption), afresh
        for a wrapped content key (new for each block)."""
        if self.wrap:
            return AESGCM(content_key)
        aead: AESGCM | None = self.__dict__.get("_aead_cache")
        if aead is None:
            aead = AESGCM(content_key)
            object.__setattr__(self, "_aead_cache", aead)  # (frozen: not a field)
        return aead

    def _encryptor(
        self,
        content_key: bytes,
        iv: bytes,
        bundle: Bundle,
        block: CanonicalBlock,
        header: SourceBlock,
    ) -> AEADEncryptionContext:
        security = (int(header.type_code), header.number, header.flags)
        encryptor = Cipher(algorithms.AES(content_key), modes.GCM(iv)).encryptor()
        encryptor.authenticate_additional_data(aad(self.scope, bundle.primary, block, security))
        return encryptor

    def encrypt(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> tuple[SecurityItems, list[SecurityItems], list[bytes]]:
        """Parameters (IV, AES variant, wrapped key if any, scope flags), one authentication tag
        per target and the ciphertexts that replace the targets' data (RFC 9173 §4.8.1)."""
        content_key, iv, parameters = self._start()
        results: list[SecurityItems] = []
        ciphertexts: list[bytes] = []
        for target in targets:
            block = bundle.block_by_number(target)
            if block is None:
                raise ValueError(f"the bundle has no block {target}")
            encryptor = self._encryptor(content_key, iv, bundle, block, header)
            ciphertexts.append(encryptor.update(block.data_view))
            encryptor.finalize()
            results.append(((_RESULT_AUTH_TAG, encryptor.tag),))
        return parameters, results, ciphertexts

    def in_place(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> InPlaceEncryption:
        """The same operations written into buffers the caller gives (GCM's ciphertext has the
        plaintext's length; the 16-byte tag is the result)."""
        content_key, iv, parameters = self._start()
        cipher = self._aead(content_key)
        security = (int(header.type_code), header.number, header.flags)

        def encrypt_into(block: CanonicalBlock, output: memoryview) -> SecurityItems:
            # The one-shot AEAD writes the ciphertext and, right after it, the tag: the tag is
            # read back from there (it is the result) and the caller overwrites that room.
            length = len(block.data_view)
            cipher.encrypt_into(
                iv,
                block.data_view,
                aad(self.scope, bundle.primary, block, security),
                output[: length + _TAG_LENGTH],
            )
            return ((_RESULT_AUTH_TAG, bytes(output[length : length + _TAG_LENGTH])),)

        placeholder: SecurityItems = ((_RESULT_AUTH_TAG, bytes(_TAG_LENGTH)),)
        return InPlaceEncryption(
            parameters, [placeholder] * len(targets), encrypt_into, spare=_TAG_LENGTH
        )


_TAG_LENGTH = 16
"""RFC 9173 §4.4.1: the authentication tag is 128 bits."""
_CIPHER_CACHE = 64


def _int_ids(items: list[tuple[int, object]]) -> SecurityItems:
    return tuple((int(item_id), value) for item_id, value in items)
