"""The BPSec COSE context (draft-ietf-dtn-bpsec-cose; context id 3).

Each security result is one COSE message (RFC 9052) with a detached payload: its result id is
the message's CBOR tag (16 COSE_Encrypt0, 17 COSE_Mac0, 18 COSE_Sign1, 96 COSE_Encrypt, 97
COSE_Mac, 98 COSE_Sign) and its value the untagged message encoded in a byte string. For a BIB
the payload is the target's block-type-specific data; for a BCB the ciphertext (tag included)
replaces it. The external AAD binds the security source, the AAD scope (parameter 5, a map from
block number -- 0 the primary block, -1 the target, -2 the security block -- to flags: 1 the
block's metadata, 2 its block-type-specific data) and the additional protected headers
(parameter 3).

This module builds the COSE structures (MAC_structure, Sig_structure, Enc_structure; RFC 9052
§4.4, §5.3, §6.3) on cbor2 and takes every primitive from ``cryptography``. (pycose would bring a
second key model and untyped messages, and dtn-demo-agent needs a patched fork of it; the few
structures the context needs are short and typed here.)
"""

from __future__ import annotations

import datetime
import hmac as _hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from .._cbor import encode_bytes, encode_uint
from ..blocks import CanonicalBlock
from ..security_blocks import SecurityContextId
from .context import (
    AcceptorContext,
    OperationFailure,
    OperationView,
    Outcome,
    SourceBlock,
)
from .keys import CoseKey, CoseKeyType, KeyStore
from .x509 import (
    HEADER_X5CHAIN,
    certificate_identity,
    chain_from_header,
    cose_key_of_certificate,
)

__all__ = [
    "CoseAlgorithm",
    "CoseContext",
    "CoseParameter",
    "CoseTag",
    "external_aad",
]


class CoseParameter(IntEnum):
    """COSE context parameter ids (draft-ietf-dtn-bpsec-cose §2.2)."""

    ADDITIONAL_PROTECTED = 3
    """Additional protected headers: a byte string holding an encoded header map, bound into
    the external AAD and used as defaults for every message's headers."""
    ADDITIONAL_UNPROTECTED = 4
    """Additional unprotected headers: like 3, not authenticated."""
    AAD_SCOPE = 5
    """AAD scope: a map from block number (0 primary, -1 target, -2 security block) to flags
    (1 metadata, 2 block-type-specific data); default ``{0: 1, -1: 1, -2: 1}``."""


class CoseTag(IntEnum):
    """COSE message CBOR tags (RFC 9052 §2): the result ids of the COSE context."""

    ENCRYPT0 = 16
    MAC0 = 17
    SIGN1 = 18
    ENCRYPT = 96
    MAC = 97
    SIGN = 98


class CoseAlgorithm(IntEnum):
    """COSE algorithm ids (RFC 9053) this context implements."""

    A128GCM = 1
    A192GCM = 2
    A256GCM = 3
    HMAC_256_64 = 4
    HMAC_256 = 5
    HMAC_384 = 6
    HMAC_512 = 7
    A128KW = -3
    A192KW = -4
    A256KW = -5
    ES256 = -7
    EDDSA = -8
    ES384 = -35
    ES512 = -36


HEADER_ALG = 1
HEADER_CRIT = 2
HEADER_KID = 4
HEADER_IV = 5
HEADER_PARTIAL_IV = 6
_UNDERSTOOD_HEADERS = frozenset(
    {HEADER_ALG, HEADER_CRIT, 3, HEADER_KID, HEADER_IV, HEADER_PARTIAL_IV, HEADER_X5CHAIN}
)
"""Header labels this module acts on or may safely ignore (RFC 9052 §3.1: alg, crit, content
type, kid, IV, Partial IV; RFC 9360: x5chain); a "crit" list naming any other label fails (RFC
9052 §3.1)."""
MAC_ALGORITHMS = {
    4: (hashes.SHA256, 8),
    5: (hashes.SHA256, 32),
    6: (hashes.SHA384, 48),
    7: (hashes.SHA512, 64),
}
GCM_KEY_LENGTHS = {1: 16, 2: 24, 3: 32}
KW_KEY_LENGTHS = {-3: 16, -4: 24, -5: 32}
EC_HASHES: dict[int, tuple[type[hashes.HashAlgorithm], int]] = {
    -7: (hashes.SHA256, 32),
    -35: (hashes.SHA384, 48),
    -36: (hashes.SHA512, 66),
}
_DEFAULT_SCOPE = {0: 1, -1: 1, -2: 1}
_METADATA = 1
_BTSD = 2


# ---------------------------------------------------------------------------------------------
# External AAD (draft-ietf-dtn-bpsec-cose §2.5)


def _canonical_scope(scope: Mapping[int, int]) -> tuple[bytes, list[tuple[int, int]]]:
    """The AAD scope's deterministic encoding and its items in that encoding's key order."""
    encoded = bytes(cbor2.dumps(dict(scope), canonical=True))
    order = sorted(
        scope.items(), key=lambda item: (len(cbor2.dumps(item[0])), cbor2.dumps(item[0]))
    )
    return encoded, order


def external_aad(
    bundle_primary: bytes,
    blocks: Mapping[int, CanonicalBlock],
    source_cbor: bytes,
    scope: Mapping[int, int],
    target: CanonicalBlock,
    security: SourceBlock | CanonicalBlock,
    additional_protected: bytes,
) -> bytes:
    """The external AAD of one operation: the security source, the AAD scope, the scoped parts
    of the blocks it names, then the additional protected headers (as a byte string)."""
    encoded, order = _canonical_scope(scope)
    parts = [source_cbor, encoded]
    for number, flags in order:
        if type(flags) is not int or type(number) is not int:
            raise OperationFailure("the AAD scope must map integers to integers")
        if number == 0:
            if flags & _BTSD:
                raise OperationFailure("the AAD scope asks for the primary block's data")
            if flags & _METADATA:
                parts.append(bundle_primary)
            continue
        if number == -2:
            if flags & _BTSD:
                raise OperationFailure("the AAD scope asks for the security block's data")
            if flags & _METADATA:
                parts.append(
                    _metadata(int(security.type_code), security.number, int(security.flags))
                )
            continue
        block = target if number == -1 else blocks.get(number)
        if block is None:
            raise OperationFailure(f"the AAD scope names block {number}, which is missing")
        if flags & _METADATA:
            parts.append(_metadata(int(block.type_code), block.number, int(block.flags)))
        if flags & _BTSD:
            parts.append(encode_bytes(block.data))
    parts.append(encode_bytes(additional_protected))
    return b"".join(parts)


def _metadata(type_code: int, number: int, flags: int) -> bytes:
    return encode_uint(type_code) + encode_uint(number) + encode_uint(flags)


# ---------------------------------------------------------------------------------------------
# Headers and keys


def _decode_map(data: bytes, what: str) -> dict[Any, Any]:
    if not data:
        return {}
    try:
        value = cbor2.loads(data)
    except Exception as exc:
        raise OperationFailure(f"{what} is not CBOR: {exc}") from None
    if not isinstance(value, dict):
        raise OperationFailure(f"{what} is not a header map")
    return value


@dataclass(frozen=True, slots=True)
class _Headers:
    """The headers of one COSE layer: protected (raw and decoded), unprotected, defaults."""

    protected_raw: bytes
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    defaults: dict[Any, Any]

    @classmethod
    def read(cls, protected_raw: object, unprotected: object, defaults: dict[Any, Any]) -> _Headers:
        if not isinstance(protected_raw, bytes) or not isinstance(unprotected, dict):
            raise OperationFailure("malformed COSE headers")
        protected = _decode_map(protected_raw, "the protected header")
        crit = protected.get(HEADER_CRIT)
        if crit is not None:
            # RFC 9052 §3.1 crit: "the recipient MUST fail processing" when it does not
            # understand a header label listed here.
            if not isinstance(crit, list) or not crit:
                raise OperationFailure("malformed crit header")
            unknown = [label for label in crit if label not in _UNDERSTOOD_HEADERS]
            if unknown:
                raise OperationFailure(f"unknown critical header {unknown[0]!r}")
        overlap = set(protected) & set(unprotected)
        if overlap:
            # RFC 9052 §3: "Labels MUST be unique" across the two buckets.
            raise OperationFailure(f"header {sorted(overlap)[0]!r} is both protected and not")
        return cls(protected_raw, protected, unprotected, defaults)

    def get(self, label: int) -> Any:
        if label in self.protected:
            return self.protected[label]
        if label in self.unprotected:
            return self.unprotected[label]
        return self.defaults.get(label)


def _find_key(headers: _Headers, keys: KeyStore) -> CoseKey:
    kid = headers.get(HEADER_KID)
    if not isinstance(kid, bytes):
        raise OperationFailure("the COSE message names no key (kid)", Outcome.NO_KEY)
    key = keys.get(kid)
    if key is None:
        raise OperationFailure(f"no key with kid {_show_kid(kid)}", Outcome.NO_KEY)
    return key


def _show_kid(kid: bytes) -> str:
    try:
        text = kid.decode("ascii")
    except UnicodeDecodeError:
        return kid.hex()
    return text if text.isprintable() else kid.hex()


def _alg(headers: _Headers, key: CoseKey | None = None) -> int:
    alg = headers.get(HEADER_ALG)
    if alg is None and key is not None:
        alg = key.alg
    if type(alg) is not int:
        raise OperationFailure("the COSE message has no integer algorithm")
    if key is not None and key.alg is not None and key.alg != alg:
        # RFC 9052 §7.1: a key's alg "restricts the key to be used with this algorithm".
        raise OperationFailure(f"key {_show_kid(key.kid)} is for algorithm {key.alg}, not {alg}")
    return alg


def _iv(headers: _Headers, key: CoseKey | None) -> bytes:
    iv = headers.get(HEADER_IV)
    partial = headers.get(HEADER_PARTIAL_IV)
    if isinstance(iv, bytes):
        return iv
    if isinstance(partial, bytes) and key is not None and key.base_iv:
        # RFC 9052 §3.1: the Partial IV is left-padded to the Base IV's length and XORed.
        padded = partial.rjust(len(key.base_iv), b"\x00")
        return bytes(a ^ b for a, b in zip(key.base_iv, padded, strict=True))
    raise OperationFailure("the COSE message has no IV")


def _symmetric(key: CoseKey) -> bytes:
    if key.kty != CoseKeyType.SYMMETRIC:
        raise OperationFailure(f"key {_show_kid(key.kid)} is not a symmetric key")
    return key.k


def mac_tag(alg: int, key: bytes, data: bytes) -> bytes:
    hash_type, length = MAC_ALGORITHMS[alg]
    mac = crypto_hmac.HMAC(key, hash_type())
    mac.update(data)
    return mac.finalize()[:length]


def _unwrap(recipients: object, keys: KeyStore, defaults: dict[Any, Any]) -> bytes:
    """The content key from the first recipient whose key-wrap key is known (RFC 9052 §5.1)."""
    if not isinstance(recipients, list) or not recipients:
        raise OperationFailure("the COSE message has no recipients")
    reasons = []
    for recipient in recipients:
        if not isinstance(recipient, list) or len(recipient) < 3:
            raise OperationFailure("malformed COSE recipient")
        headers = _Headers.read(recipient[0], recipient[1], defaults)
        try:
            key = _find_key(headers, keys)
            alg = _alg(headers, key)
            if alg not in KW_KEY_LENGTHS:
                raise OperationFailure(f"unsupported recipient algorithm {alg}")
            wrapped = recipient[2]
            if not isinstance(wrapped, bytes):
                raise OperationFailure("the recipient has no wrapped key")
            try:
                return aes_key_unwrap(_symmetric(key), wrapped)
            except (InvalidUnwrap, ValueError) as exc:
                raise OperationFailure(f"cannot unwrap the content key: {exc}") from None
        except OperationFailure as failure:
            reasons.append(failure)
    no_key = all(failure.outcome == Outcome.NO_KEY for failure in reasons)
    raise OperationFailure(reasons[0].reason, Outcome.NO_KEY if no_key else Outcome.FAILED)


def to_be_authenticated(context: str, *items: bytes) -> bytes:
    """A COSE "to be authenticated" structure: ``[context, item...]`` with byte string items
    (RFC 9052 §4.4 Sig_structure, §5.3 Enc_structure, §6.3 MAC_structure)."""
    head = bytes((0x80 + 1 + len(items),)) + bytes(cbor2.dumps(context))
    return head + b"".join(encode_bytes(item) for item in items)


def _ecdsa_verify(key: CoseKey, alg: int, signature: bytes, data: bytes) -> bool:
    hash_type, size = EC_HASHES[alg]
    if len(signature) != 2 * size:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )
    try:
        public = key.ec_public_key() if key.x else key.ec_private_key().public_key()
        public.verify(der, data, ec.ECDSA(hash_type()))
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The acceptor side


class CoseContext(AcceptorContext):
    """Verify and decrypt COSE context operations."""

    context_id = SecurityContextId.COSE

    def _common(self, view: OperationView) -> tuple[dict[Any, Any], Mapping[int, int], bytes]:
        asb = view.asb
        additional = asb.parameter(CoseParameter.ADDITIONAL_PROTECTED, b"")
        unprotected = asb.parameter(CoseParameter.ADDITIONAL_UNPROTECTED, b"")
        if not isinstance(additional, bytes) or not isinstance(unprotected, bytes):
            raise OperationFailure("additional headers must be byte strings")
        defaults = _decode_map(additional, "additional protected headers")
        extra = _decode_map(unprotected, "additional unprotected headers")
        if set(defaults) & set(extra):
            raise OperationFailure("a header is in both additional header parameters")
        defaults.update(extra)
        scope = asb.parameter(CoseParameter.AAD_SCOPE, _DEFAULT_SCOPE)
        if not isinstance(scope, dict):
            raise OperationFailure("the AAD scope is not a map")
        return defaults, scope, additional

    def _message(self, view: OperationView, tags: Sequence[int]) -> tuple[int, list[Any]]:
        results = view.results
        if len(results) != 1:
            raise OperationFailure(f"{len(results)} results for one target, not 1")
        tag, value = results[0]
        if tag not in tags:
            raise OperationFailure(f"result {tag} is not a COSE message this block can carry")
        if not isinstance(value, bytes):
            raise OperationFailure("the COSE message is not in a byte string")
        try:
            message = cbor2.loads(value)
        except Exception as exc:
            raise OperationFailure(f"the COSE message is not CBOR: {exc}") from None
        if isinstance(message, cbor2.CBORTag):
            message = message.value
        if not isinstance(message, list) or len(message) < 3 or message[2] is not None:
            raise OperationFailure("malformed COSE message (the payload must be detached)")
        return tag, message

    def _aad(self, view: OperationView, scope: Mapping[int, int], additional: bytes) -> bytes:
        target = view.target_block
        if target is None:
            raise OperationFailure("the COSE context does not target the primary block")
        blocks = {block.number: block for block in view.blocks}
        blocks[view.security_block.number] = view.security_block
        return external_aad(
            view.primary.encode(),
            blocks,
            view.asb.source.cbor,
            scope,
            target,
            view.security_block,
            additional,
        )

    def verify(self, view: OperationView, keys: KeyStore) -> str | None:
        """Check a COSE_Mac0, COSE_Mac, COSE_Sign1 or COSE_Sign result; for a signature whose
        signer's certificate chain (x5chain, RFC 9360) leads to ``keys.trust_anchors``, return
        who the certificate names."""
        defaults, scope, additional = self._common(view)
        tag, message = self._message(view, (CoseTag.MAC0, CoseTag.MAC, CoseTag.SIGN1, CoseTag.SIGN))
        aad_bytes = self._aad(view, scope, additional)
        target = view.target_block
        assert target is not None
        payload = target.data
        headers = _Headers.read(message[0], message[1], defaults)
        if tag in (CoseTag.MAC0, CoseTag.MAC):
            if len(message) != (4 if tag == CoseTag.MAC0 else 5) or not isinstance(
                message[3], bytes
            ):
                raise OperationFailure("malformed COSE_Mac message")
            if tag == CoseTag.MAC0:
                key = _find_key(headers, keys)
                alg = _alg(headers, key)
                secret = _symmetric(key)
            else:
                alg = _alg(headers)
                secret = _unwrap(message[4], keys, defaults)
            if alg not in MAC_ALGORITHMS:
                raise OperationFailure(f"unsupported MAC algorithm {alg}")
            context = "MAC0" if tag == CoseTag.MAC0 else "MAC"
            to_mac = to_be_authenticated(context, headers.protected_raw, aad_bytes, payload)
            if not _hmac.compare_digest(mac_tag(alg, secret, to_mac), message[3]):
                raise OperationFailure("the MAC does not match")
            return None
        if tag == CoseTag.SIGN1:
            if len(message) != 4 or not isinstance(message[3], bytes):
                raise OperationFailure("malformed COSE_Sign1 message")
            signers = [(headers, message[3], b"", "Signature1")]
        else:
            if len(message) != 4 or not isinstance(message[3], list) or not message[3]:
                raise OperationFailure("malformed COSE_Sign message")
            signers = []
            for signer in message[3]:
                if not isinstance(signer, list) or len(signer) != 3:
                    raise OperationFailure("malformed COSE_Signature")
                signer_headers = _Headers.read(signer[0], signer[1], defaults)
                signers.append(
                    (signer_headers, signer[2], signer_headers.protected_raw, "Signature")
                )
        failures = []
        for signer_headers, signature, sign_protected, context in signers:
            try:
                return self._check_signature(
                    signer_headers,
                    keys,
                    signature,
                    context,
                    headers.protected_raw,
                    sign_protected,
                    aad_bytes,
                    payload,
                )
            except OperationFailure as failure:
                failures.append(failure)
        raise failures[0]

    def _check_signature(
        self,
        headers: _Headers,
        keys: KeyStore,
        signature: object,
        context: str,
        body_protected: bytes,
        sign_protected: bytes,
        aad_bytes: bytes,
        payload: bytes,
    ) -> str | None:
        if not isinstance(signature, bytes):
            raise OperationFailure("the signature is not a byte string")
        signer = None
        chain = headers.get(HEADER_X5CHAIN)
        if chain is not None and keys.trust_anchors is not None:
            # RFC 9360 §2: the leaf of x5chain "MUST" hold the key that made the signature; the
            # chain must lead to a certificate this node trusts.
            certificates = chain_from_header(chain)
            at = keys.validation_time or datetime.datetime.now(datetime.UTC)
            leaf = keys.trust_anchors.verify(certificates, at)
            key = cose_key_of_certificate(leaf)
            alg = _alg(headers)
            signer = certificate_identity(leaf)
        else:
            key = _find_key(headers, keys)
            alg = _alg(headers, key)
        if context == "Signature1":
            to_sign = to_be_authenticated(context, body_protected, aad_bytes, payload)
        else:
            to_sign = to_be_authenticated(
                context, body_protected, sign_protected, aad_bytes, payload
            )
        if alg in EC_HASHES and key.kty == CoseKeyType.EC2:
            if not _ecdsa_verify(key, alg, signature, to_sign):
                raise OperationFailure("the signature does not verify")
            return signer
        if alg == CoseAlgorithm.EDDSA and key.kty == CoseKeyType.OKP:
            try:
                key.ed25519_public_key().verify(signature, to_sign)
            except InvalidSignature:
                raise OperationFailure("the signature does not verify") from None
            return signer
        raise OperationFailure(f"unsupported signature algorithm {alg} for this key")

    def decrypt(self, view: OperationView, keys: KeyStore) -> bytes:
        """Decrypt a COSE_Encrypt0 or COSE_Encrypt result's target."""
        defaults, scope, additional = self._common(view)
        tag, message = self._message(view, (CoseTag.ENCRYPT0, CoseTag.ENCRYPT))
        aad_bytes = self._aad(view, scope, additional)
        target = view.target_block
        assert target is not None
        headers = _Headers.read(message[0], message[1], defaults)
        if tag == CoseTag.ENCRYPT0:
            if len(message) != 3:
                raise OperationFailure("malformed COSE_Encrypt0 message")
            key = _find_key(headers, keys)
            alg = _alg(headers, key)
            secret = _symmetric(key)
        else:
            if len(message) != 4:
                raise OperationFailure("malformed COSE_Encrypt message")
            key = None
            alg = _alg(headers)
            secret = _unwrap(message[3], keys, defaults)
        if alg not in GCM_KEY_LENGTHS:
            raise OperationFailure(f"unsupported content encryption algorithm {alg}")
        if len(secret) != GCM_KEY_LENGTHS[alg]:
            raise OperationFailure(
                f"the key has {len(secret)} bytes, algorithm {alg} needs {GCM_KEY_LENGTHS[alg]}"
            )
        context = "Encrypt0" if tag == CoseTag.ENCRYPT0 else "Encrypt"
        enc_structure = to_be_authenticated(context, headers.protected_raw, aad_bytes)
        try:
            return AESGCM(secret).decrypt(_iv(headers, key), target.data_view, enc_structure)
        except InvalidTag:
            raise OperationFailure("the ciphertext does not authenticate") from None
        except ValueError as exc:
            raise OperationFailure(f"cannot decrypt: {exc}") from None
