"""The source side of the BPSec COSE context (draft-ietf-dtn-bpsec-cose): COSE_Mac0, COSE_Mac
with a key-wrapped recipient, COSE_Sign1, COSE_Encrypt0 and COSE_Encrypt results for a new BIB or
BCB (see :mod:`bpv7.bpsec.cose` for the message shapes and the external AAD)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from ..blocks import CanonicalBlock
from ..bundle import Bundle
from ..security_blocks import SecurityContextId, SecurityItems
from .context import ConfidentialitySource, IntegritySource, SourceBlock
from .cose import (
    EC_HASHES,
    GCM_KEY_LENGTHS,
    HEADER_ALG,
    HEADER_IV,
    HEADER_KID,
    KW_KEY_LENGTHS,
    MAC_ALGORITHMS,
    CoseAlgorithm,
    CoseParameter,
    CoseTag,
    external_aad,
    mac_tag,
    to_be_authenticated,
)
from .keys import CoseKey, CoseKeyType
from .x509 import HEADER_X5CHAIN, chain_to_header

__all__ = ["CoseOperation", "CoseSource"]


@dataclass(frozen=True)
class CoseOperation:
    """How to protect one target with COSE."""

    key: CoseKey
    """A symmetric MAC or content-encryption key (COSE_Mac0 / COSE_Encrypt0), a symmetric
    key-wrap key (``alg`` A128KW/A192KW/A256KW: COSE_Mac / COSE_Encrypt with one recipient), or
    an EC2/OKP private key (COSE_Sign1)."""
    alg: int | None = None
    """The MAC, signature or content-encryption algorithm; default: the key's ``alg`` (or, for a
    key-wrap key, HMAC 256/256 or A256GCM)."""
    content_key: bytes | None = None
    """With a key-wrap key: the content key to wrap (random when ``None``)."""
    iv: bytes | None = None
    """For encryption: the IV (12 random bytes when ``None``)."""
    x5chain: tuple[x509.Certificate, ...] = ()
    """For a signature: the signer's certificate chain, leaf first (its public key must be
    ``key``'s), sent in the protected header x5chain (RFC 9360) so that a verifier holding only
    a CA certificate can check it."""

    @property
    def wraps(self) -> bool:
        return self.key.kty == CoseKeyType.SYMMETRIC and self.key.alg in KW_KEY_LENGTHS


def _protected(alg: int, **headers: object) -> bytes:
    chain = headers.get("x5chain")
    protected: dict[int, object] = {HEADER_ALG: alg}
    if chain:
        protected[HEADER_X5CHAIN] = chain
    return bytes(cbor2.dumps(protected))


@dataclass(frozen=True)
class CoseSource(IntegritySource, ConfidentialitySource):
    """Add COSE context operations (BIB or BCB)."""

    operations: CoseOperation | Mapping[int, CoseOperation]
    """One operation for every target, or one per target block number."""
    aad_scope: Mapping[int, int] = field(default_factory=lambda: {0: 1, -1: 1})
    """The AAD scope parameter (dtn-demo-agent's default: primary block and target metadata)."""
    additional_protected: Mapping[int, Any] | None = None
    """Additional protected headers (parameter 3), if any."""
    additional_unprotected: Mapping[int, Any] | None = None
    """Additional unprotected headers (parameter 4), if any."""
    context_id: int = SecurityContextId.COSE

    def _operation(self, target: int) -> CoseOperation:
        if isinstance(self.operations, CoseOperation):
            return self.operations
        return self.operations[target]

    @property
    def parameters(self) -> SecurityItems:
        items: list[tuple[int, object]] = [(CoseParameter.AAD_SCOPE, dict(self.aad_scope))]
        if self.additional_protected:
            items.append((CoseParameter.ADDITIONAL_PROTECTED, self._additional()))
        if self.additional_unprotected:
            items.append(
                (
                    CoseParameter.ADDITIONAL_UNPROTECTED,
                    bytes(cbor2.dumps(dict(self.additional_unprotected))),
                )
            )
        return tuple((int(i), v) for i, v in items)

    def _additional(self) -> bytes:
        if not self.additional_protected:
            return b""
        return bytes(cbor2.dumps(dict(self.additional_protected)))

    def _aad(self, bundle: Bundle, header: SourceBlock, target: CanonicalBlock) -> bytes:
        blocks = {block.number: block for block in bundle.blocks}
        return external_aad(
            bundle.primary.encode(),
            blocks,
            header.source.cbor,
            self.aad_scope,
            target,
            header,
            self._additional(),
        )

    def _target(self, bundle: Bundle, target: int) -> CanonicalBlock:
        block = bundle.block_by_number(target) if target else None
        if block is None:
            raise ValueError(f"the COSE context cannot target block {target}")
        return block

    def sign(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> tuple[SecurityItems, list[SecurityItems]]:
        """One COSE_Mac0, COSE_Mac or COSE_Sign1 per target."""
        results: list[SecurityItems] = []
        for target in targets:
            block = self._target(bundle, target)
            op = self._operation(target)
            aad_bytes = self._aad(bundle, header, block)
            key = op.key
            kid = {HEADER_KID: key.kid} if key.kid else {}
            if op.wraps:
                alg = op.alg if op.alg is not None else CoseAlgorithm.HMAC_256
                secret = op.content_key or os.urandom(MAC_ALGORITHMS[alg][1] if alg != 4 else 32)
                protected = _protected(alg)
                tag = mac_tag(
                    alg, secret, to_be_authenticated("MAC", protected, aad_bytes, block.data)
                )
                recipient = [b"", {HEADER_ALG: key.alg, **kid}, aes_key_wrap(key.k, secret)]
                message: list[Any] = [protected, {}, None, tag, [recipient]]
                results.append(((CoseTag.MAC, _encode(message)),))
            elif key.kty == CoseKeyType.SYMMETRIC:
                alg = op.alg if op.alg is not None else (key.alg or CoseAlgorithm.HMAC_256)
                protected = _protected(alg)
                tag = mac_tag(
                    alg, key.k, to_be_authenticated("MAC0", protected, aad_bytes, block.data)
                )
                results.append(((CoseTag.MAC0, _encode([protected, kid, None, tag])),))
            else:
                alg = op.alg if op.alg is not None else (key.alg or _default_signature_alg(key))
                protected = _protected(
                    alg, x5chain=chain_to_header(op.x5chain) if op.x5chain else None
                )
                to_sign = to_be_authenticated("Signature1", protected, aad_bytes, block.data)
                signature = _sign(key, alg, to_sign)
                results.append(((CoseTag.SIGN1, _encode([protected, kid, None, signature])),))
        return self.parameters, results

    def encrypt(
        self, bundle: Bundle, header: SourceBlock, targets: Sequence[int]
    ) -> tuple[SecurityItems, list[SecurityItems], list[bytes]]:
        """One COSE_Encrypt0 or COSE_Encrypt per target; the ciphertext (tag appended, RFC 9052
        §6) replaces the target's data."""
        results: list[SecurityItems] = []
        ciphertexts: list[bytes] = []
        used_ivs: set[bytes] = set()
        for target in targets:
            block = self._target(bundle, target)
            op = self._operation(target)
            key = op.key
            iv = op.iv if op.iv is not None else os.urandom(12)
            if iv in used_ivs:
                raise ValueError("the same IV would encrypt two targets; give one IV per target")
            used_ivs.add(iv)
            aad_bytes = self._aad(bundle, header, block)
            kid = {HEADER_KID: key.kid} if key.kid else {}
            if op.wraps:
                alg = op.alg if op.alg is not None else CoseAlgorithm.A256GCM
                secret = op.content_key or os.urandom(GCM_KEY_LENGTHS[alg])
                protected = _protected(alg)
                structure = to_be_authenticated("Encrypt", protected, aad_bytes)
                recipient = [b"", {HEADER_ALG: key.alg, **kid}, aes_key_wrap(key.k, secret)]
                message: list[Any] = [protected, {HEADER_IV: iv}, None, [recipient]]
                tag = CoseTag.ENCRYPT
            else:
                alg = op.alg if op.alg is not None else (key.alg or CoseAlgorithm.A256GCM)
                secret = key.k
                protected = _protected(alg)
                structure = to_be_authenticated("Encrypt0", protected, aad_bytes)
                message = [protected, {**kid, HEADER_IV: iv}, None]
                tag = CoseTag.ENCRYPT0
            if alg not in GCM_KEY_LENGTHS or len(secret) != GCM_KEY_LENGTHS[alg]:
                raise ValueError(
                    f"algorithm {alg} needs a {GCM_KEY_LENGTHS.get(alg, '?')}-byte AES key"
                )
            ciphertexts.append(AESGCM(secret).encrypt(iv, block.data, structure))
            results.append(((tag, _encode(message)),))
        return self.parameters, results, ciphertexts


def _encode(message: list[Any]) -> bytes:
    return bytes(cbor2.dumps(message))


def _default_signature_alg(key: CoseKey) -> int:
    if key.kty == CoseKeyType.OKP:
        return CoseAlgorithm.EDDSA
    return {1: CoseAlgorithm.ES256, 2: CoseAlgorithm.ES384, 3: CoseAlgorithm.ES512}[key.crv or 1]


def _sign(key: CoseKey, alg: int, data: bytes) -> bytes:
    if alg == CoseAlgorithm.EDDSA and key.kty == CoseKeyType.OKP:
        return key.ed25519_private_key().sign(data)
    if alg in EC_HASHES and key.kty == CoseKeyType.EC2:
        hash_type, size = EC_HASHES[alg]
        r, s = decode_dss_signature(key.ec_private_key().sign(data, ec.ECDSA(hash_type())))
        # RFC 9053 §2.1: the signature is r and s, each left-padded to the curve size.
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise ValueError(f"cannot sign with algorithm {alg} and a key of type {key.kty}")
