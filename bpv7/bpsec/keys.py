"""Keys for BPSec: symmetric keys by name and COSE keys (RFC 9052 §7, RFC 9053) by key id.

The RFC 9173 contexts name no key on the wire, so a :class:`KeyStore` finds their key by the
security source EID of the block (its URI text, e.g. ``"ipn:2.1"``): that key is the HMAC or AES
key itself, or the key-encryption key when the block carries a wrapped key. The COSE context
names keys by their COSE ``kid``; a COSE_Key (or a COSE_KeySet, a CBOR array of them) is read by
:func:`read_cose_keys`. Symmetric (kty 4), EC2 P-256/P-384/P-521 (kty 2) and OKP Ed25519 (kty 1)
keys are understood, private or public.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ..errors import DecodeError

if TYPE_CHECKING:
    from .x509 import TrustAnchors

__all__ = [
    "CoseKey",
    "CoseKeyType",
    "KeyFormatError",
    "KeyStore",
    "read_cose_keys",
]


class KeyFormatError(DecodeError):
    """COSE_Key bytes are malformed or of a kind this module does not use."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="cose-key", section="7", rfc=9052)


class CoseKeyType(IntEnum):
    """COSE key types (RFC 9053 §7; IANA "COSE Key Types")."""

    OKP = 1
    """RFC 9053 §7.2: octet key pair (Ed25519 here)."""
    EC2 = 2
    """RFC 9053 §7.1: elliptic curve key with x and y coordinates."""
    SYMMETRIC = 4
    """RFC 9053 §6.1: symmetric key."""


_CURVES: dict[int, ec.EllipticCurve] = {1: ec.SECP256R1(), 2: ec.SECP384R1(), 3: ec.SECP521R1()}
"""COSE EC2 curves (RFC 9053 §7.1): 1 P-256, 2 P-384, 3 P-521."""
_ED25519 = 6
"""COSE OKP curve 6: Ed25519 (RFC 9053 §7.2)."""


@dataclass(frozen=True, slots=True)
class CoseKey:
    """A COSE_Key (RFC 9052 §7): its type, key id, algorithm and material."""

    kty: int
    """Key type (:class:`CoseKeyType`)."""
    kid: bytes = b""
    """Key id (label 2), how a COSE message names the key."""
    alg: int | None = None
    """Algorithm the key is restricted to (label 3), if any."""
    k: bytes = field(default=b"", repr=False)
    """Symmetric key bytes (kty 4, label -1); not in the repr (nor is ``d``): keys stay out of
    logs."""
    crv: int | None = None
    """Curve (kty 1 and 2, label -1)."""
    x: bytes = b""
    """Public x coordinate / OKP public key (label -2)."""
    y: bytes = b""
    """EC2 public y coordinate (label -3)."""
    d: bytes = field(default=b"", repr=False)
    """Private key (label -4); empty for a public key."""
    base_iv: bytes = b""
    """Base IV (label 5), if given."""

    @classmethod
    def symmetric(cls, k: bytes, kid: bytes = b"", alg: int | None = None) -> CoseKey:
        """A symmetric key."""
        return cls(CoseKeyType.SYMMETRIC, kid, alg, k=bytes(k))

    @classmethod
    def from_private_key(
        cls,
        key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
        kid: bytes = b"",
        alg: int | None = None,
    ) -> CoseKey:
        """The COSE form of a ``cryptography`` EC (P-256/384/521) or Ed25519 private key."""
        if isinstance(key, ed25519.Ed25519PrivateKey):
            from cryptography.hazmat.primitives import serialization

            raw = serialization.Encoding.Raw
            public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
            private = key.private_bytes(
                raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            return cls(CoseKeyType.OKP, kid, alg, crv=_ED25519, x=public, d=private)
        numbers = key.private_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = next(c for c, curve in _CURVES.items() if curve.name == key.curve.name)
        return cls(
            CoseKeyType.EC2,
            kid,
            alg,
            crv=crv,
            x=numbers.public_numbers.x.to_bytes(size, "big"),
            y=numbers.public_numbers.y.to_bytes(size, "big"),
            d=numbers.private_value.to_bytes(size, "big"),
        )

    @property
    def is_private(self) -> bool:
        """Whether the key holds private (or symmetric) material."""
        return bool(self.d or self.k)

    def public(self) -> CoseKey:
        """The same key without its private part."""
        return CoseKey(self.kty, self.kid, self.alg, crv=self.crv, x=self.x, y=self.y)

    def ec_private_key(self) -> ec.EllipticCurvePrivateKey:
        """The ``cryptography`` private key of an EC2 key."""
        curve = self._curve()
        value = int.from_bytes(self.d, "big")
        return ec.derive_private_key(value, curve)

    def ec_public_key(self) -> ec.EllipticCurvePublicKey:
        """The ``cryptography`` public key of an EC2 key."""
        curve = self._curve()
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(self.x, "big"), int.from_bytes(self.y, "big"), curve
        )
        return numbers.public_key()

    def ed25519_private_key(self) -> ed25519.Ed25519PrivateKey:
        """The ``cryptography`` private key of an Ed25519 OKP key."""
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.d)

    def ed25519_public_key(self) -> ed25519.Ed25519PublicKey:
        """The ``cryptography`` public key of an Ed25519 OKP key."""
        if not self.x:
            return self.ed25519_private_key().public_key()
        return ed25519.Ed25519PublicKey.from_public_bytes(self.x)

    def _curve(self) -> ec.EllipticCurve:
        if self.kty != CoseKeyType.EC2 or self.crv not in _CURVES:
            raise ValueError(f"key {self.kid!r} is not an EC2 key on a known curve")
        return _CURVES[self.crv]

    def to_cbor(self) -> dict[int, Any]:
        """The COSE_Key as a CBOR map (for :func:`cbor2.dumps`)."""
        result: dict[int, Any] = {1: int(self.kty)}
        if self.kid:
            result[2] = self.kid
        if self.alg is not None:
            result[3] = self.alg
        if self.base_iv:
            result[5] = self.base_iv
        if self.kty == CoseKeyType.SYMMETRIC:
            result[-1] = self.k
        else:
            result[-1] = self.crv
            result[-2] = self.x
            if self.kty == CoseKeyType.EC2:
                result[-3] = self.y
            if self.d:
                result[-4] = self.d
        return result

    def encode(self) -> bytes:
        """The COSE_Key's CBOR bytes."""
        return bytes(cbor2.dumps(self.to_cbor(), canonical=True))


def _bytes_field(obj: dict[Any, Any], label: int, what: str) -> bytes:
    value = obj.get(label, b"")
    if not isinstance(value, bytes):
        raise KeyFormatError(f"COSE_Key {what} (label {label}) is not a byte string")
    return value


def _cose_key(obj: object) -> CoseKey:
    if not isinstance(obj, dict):
        raise KeyFormatError("a COSE_Key must be a CBOR map")
    kty = obj.get(1)
    kid = _bytes_field(obj, 2, "kid")
    alg = obj.get(3)
    if alg is not None and type(alg) is not int:
        alg = None  # a text algorithm name: not one of ours, leave the key unrestricted
    base_iv = _bytes_field(obj, 5, "Base IV")
    if kty == CoseKeyType.SYMMETRIC:
        k = _bytes_field(obj, -1, "k")
        if not k:
            raise KeyFormatError("symmetric COSE_Key without k (label -1)")
        return CoseKey(CoseKeyType.SYMMETRIC, kid, alg, k=k, base_iv=base_iv)
    if kty == CoseKeyType.EC2:
        crv = obj.get(-1)
        if crv not in _CURVES:
            raise KeyFormatError(f"EC2 COSE_Key on unsupported curve {crv!r}")
        key = CoseKey(
            CoseKeyType.EC2,
            kid,
            alg,
            crv=crv,
            x=_bytes_field(obj, -2, "x"),
            y=_bytes_field(obj, -3, "y"),
            d=_bytes_field(obj, -4, "d"),
            base_iv=base_iv,
        )
        if not key.d and not (key.x and key.y):
            raise KeyFormatError("EC2 COSE_Key has neither d nor x and y")
        return key
    if kty == CoseKeyType.OKP:
        if obj.get(-1) != _ED25519:
            raise KeyFormatError(f"OKP COSE_Key on unsupported curve {obj.get(-1)!r}")
        key = CoseKey(
            CoseKeyType.OKP,
            kid,
            alg,
            crv=_ED25519,
            x=_bytes_field(obj, -2, "x"),
            d=_bytes_field(obj, -4, "d"),
            base_iv=base_iv,
        )
        if not key.x and not key.d:
            raise KeyFormatError("OKP COSE_Key has neither x nor d")
        return key
    raise KeyFormatError(f"unsupported COSE key type {kty!r}")


def read_cose_keys(data: bytes) -> list[CoseKey]:
    """Read a COSE_Key (a CBOR map) or a COSE_KeySet (a CBOR array of them, RFC 9052 §7);
    raises :class:`KeyFormatError` (a :class:`~bpv7.errors.DecodeError`) with a one-line reason."""
    try:
        obj = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types
        raise KeyFormatError(f"not CBOR: {exc}") from None
    items = obj if isinstance(obj, list) else [obj]
    return [_cose_key(item) for item in items]


class KeyStore:
    """The keys a node may use for BPSec, found by name.

    Names are security source EIDs (URI text, for the RFC 9173 contexts) or COSE key ids
    (``bytes``). :meth:`add` with text also files the key under the UTF-8 bytes of that text, so
    ``--key ExampleA.1=HEX`` serves both a security source and a COSE ``kid``."""

    def __init__(
        self, keys: Iterable[CoseKey] = (), *, trust_anchors: TrustAnchors | None = None
    ) -> None:
        # Two maps: str and bytes keys in one dict would be compared with each other on hash
        # collisions (a BytesWarning under python -bb).
        self._by_text: dict[str, CoseKey] = {}
        self._by_kid: dict[bytes, CoseKey] = {}
        for key in keys:
            self.add_cose_key(key)
        self.trust_anchors = trust_anchors
        """CA certificates a COSE signature's x5chain (RFC 9360) must lead to; ``None``: an
        x5chain is not used (the signer's key must then be here by its kid)."""
        self.validation_time: datetime.datetime | None = None
        """When certificates must be valid; ``None``: now (the one clock this codec reads)."""

    def add(self, name: str | bytes, key: bytes | CoseKey) -> None:
        """File ``key`` (raw symmetric key bytes, or a COSE key) under ``name``."""
        cose = key if isinstance(key, CoseKey) else CoseKey.symmetric(key, kid=_as_bytes(name))
        if isinstance(name, str):
            self._by_text[name] = cose
            self._by_kid.setdefault(name.encode(), cose)
        else:
            self._by_kid[name] = cose

    def add_cose_key(self, key: CoseKey) -> None:
        """File a COSE key under its ``kid`` (a key without one cannot be found)."""
        self._by_kid[key.kid] = key

    def get(self, name: str | bytes) -> CoseKey | None:
        """The key filed under ``name``, or ``None``."""
        if isinstance(name, str):
            # A COSE_Key whose kid is the UTF-8 of the name serves too (e.g. kid "ipn:2.1").
            return self._by_text.get(name) or self._by_kid.get(name.encode())
        return self._by_kid.get(name)

    def symmetric(self, name: str | bytes) -> bytes | None:
        """The symmetric key bytes filed under ``name``, or ``None``."""
        key = self.get(name)
        return key.k if key is not None and key.kty == CoseKeyType.SYMMETRIC else None

    def __len__(self) -> int:
        return len(self._by_text) + len(self._by_kid)

    def names(self) -> list[str | bytes]:
        """Every name a key is filed under."""
        return [*self._by_text, *self._by_kid]


def _as_bytes(name: str | bytes) -> bytes:
    return name.encode() if isinstance(name, str) else name
