"""Sealing data to one member of the mesh: COSE_Encrypt with an ECDH-ES + HKDF-256 recipient.

Job results travel to their owner through relays and wait in datastores; sealed, those hold
only ciphertext. The sender needs nothing of the recipient but its certificate (which names its
P-256 public key), so an executor seals a job's result to the certificate its client put in
the job (:attr:`JobInfo.result_key <ucp_dtn.ucp.JobInfo.result_key>`).

The format is standard COSE (RFC 9052 §5.1, tag 96)::

    COSE_Encrypt = [
      protected: bstr .cbor {1: 3},               ; alg A256GCM (RFC 9053 §4.1)
      unprotected: {5: IV},                       ; 12 random bytes
      ciphertext: bstr,                           ; AES-256-GCM, AAD = Enc_structure
      recipients: [[
        protected: bstr .cbor {1: -25},           ; ECDH-ES + HKDF-256 (RFC 9053 §6.3.1)
        unprotected: {-1: ephemeral COSE_Key,     ; a fresh P-256 key per message
                      4: kid},                    ; the recipient certificate's fingerprint
        ciphertext: h'']]]                        ; direct key agreement: no wrapped key

The content key is HKDF-SHA-256 (RFC 5869; no salt) of the ECDH shared secret with the
COSE_KDF_Context ``[3, [nil, nil, nil], [nil, nil, nil], [256, recipient protected]]``
(RFC 9053 §5.2) as ``info``; the AAD is ``["Encrypt", protected, h'']`` (RFC 9052 §5.3).
"""

from __future__ import annotations

import dataclasses
import os

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ucp_dtn.ucp import JobResult

from .errors import TrustError
from .profile import fingerprint

__all__ = [
    "SEALED_PREFIX",
    "is_sealed",
    "open_result",
    "open_sealed",
    "seal",
    "seal_result",
]

_TAG_ENCRYPT = 96
_ALG = 1
_IV = 5
_KID = 4
_EPHEMERAL = -1
_A256GCM = 3
_ECDH_ES_HKDF_256 = -25
_EC2, _P256 = 2, 1
SEALED_PREFIX = b"\xd8\x60"
"""How a sealed value starts (CBOR tag 96)."""


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` looks like a value :func:`seal` made."""
    return data[:2] == SEALED_PREFIX


def _content_key(shared: bytes, recipient_protected: bytes) -> bytes:
    context = [_A256GCM, [None, None, None], [None, None, None], [256, recipient_protected]]
    return HKDF(hashes.SHA256(), 32, salt=None, info=cbor2.dumps(context)).derive(shared)


def _aad(protected: bytes) -> bytes:
    return cbor2.dumps(["Encrypt", protected, b""])


def seal(plaintext: bytes, recipient: x509.Certificate) -> bytes:
    """``plaintext`` sealed to the holder of ``recipient``'s private key (a P-256 key)."""
    public = recipient.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise TrustError("results can be sealed only to a P-256 key")
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    shared = ephemeral.exchange(ec.ECDH(), public)
    recipient_protected = cbor2.dumps({_ALG: _ECDH_ES_HKDF_256})
    key = _content_key(shared, recipient_protected)
    numbers = ephemeral.public_key().public_numbers()
    ephemeral_key = {
        1: _EC2,
        -1: _P256,
        -2: numbers.x.to_bytes(32, "big"),
        -3: numbers.y.to_bytes(32, "big"),
    }
    protected = cbor2.dumps({_ALG: _A256GCM})
    iv = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(iv, plaintext, _aad(protected))
    kid = bytes.fromhex(fingerprint(recipient))
    message = [
        protected,
        {_IV: iv},
        ciphertext,
        [[recipient_protected, {_EPHEMERAL: ephemeral_key, _KID: kid}, b""]],
    ]
    return cbor2.dumps(cbor2.CBORTag(_TAG_ENCRYPT, message))


def open_sealed(data: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The plaintext of a value :func:`seal` made for ``key``'s certificate; :class:`TrustError`
    if it is malformed, for another key, or altered."""
    try:
        tagged = cbor2.loads(data)
        if not isinstance(tagged, cbor2.CBORTag) or tagged.tag != _TAG_ENCRYPT:
            raise TrustError("not a sealed value (COSE_Encrypt)")
        protected, unprotected, ciphertext, recipients = tagged.value
        recipient_protected, recipient_header, _ = recipients[0]
        if cbor2.loads(protected) != {_ALG: _A256GCM} or cbor2.loads(recipient_protected) != {
            _ALG: _ECDH_ES_HKDF_256
        }:
            raise TrustError("sealed with algorithms other than ECDH-ES + HKDF-256, A256GCM")
        ephemeral = recipient_header[_EPHEMERAL]
        point = b"\x04" + ephemeral[-2] + ephemeral[-3]
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        iv = unprotected[_IV]
    except TrustError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, cbor2.CBORDecodeError) as exc:
        raise TrustError(f"a malformed sealed value: {exc}") from None
    shared = key.exchange(ec.ECDH(), sender)
    content_key = _content_key(shared, recipient_protected)
    try:
        return AESGCM(content_key).decrypt(iv, ciphertext, _aad(protected))
    except (InvalidTag, ValueError):
        raise TrustError(
            "the sealed value does not open with this key (sealed to another, or altered)"
        ) from None


def certificate_der(certificate: x509.Certificate) -> bytes:
    """A certificate's DER (what a job carries as its result key)."""
    return certificate.public_bytes(serialization.Encoding.DER)


def seal_result(result: JobResult, owner: x509.Certificate) -> JobResult:
    """``result`` with its output, message and inline archive sealed to ``owner``
    (:attr:`JobResult.sealed <ucp_dtn.ucp.JobResult.sealed>`); the rest stays readable (the
    broker needs the status to follow the job)."""
    private = {
        "message": result.message,
        "stdout": result.stdout_tail,
        "stderr": result.stderr_tail,
        "archive": result.archive,
    }
    return dataclasses.replace(
        result,
        message="",
        stdout_tail=b"",
        stderr_tail=b"",
        archive=None,
        sealed=seal(cbor2.dumps(private), owner),
    )


def open_result(result: JobResult, key: ec.EllipticCurvePrivateKey) -> JobResult:
    """``result`` as it was before :func:`seal_result` (unchanged if it is not sealed);
    :class:`TrustError` if it cannot be opened with ``key``."""
    if result.sealed is None:
        return result
    try:
        private = cbor2.loads(open_sealed(result.sealed, key))
        message, stdout, stderr = private["message"], private["stdout"], private["stderr"]
        archive = private["archive"]
    except (KeyError, TypeError, cbor2.CBORDecodeError) as exc:
        raise TrustError(f"a malformed sealed result: {exc}") from None
    if not (
        isinstance(message, str)
        and isinstance(stdout, bytes)
        and isinstance(stderr, bytes)
        and (archive is None or isinstance(archive, bytes))
    ):
        raise TrustError("a malformed sealed result")
    return dataclasses.replace(
        result,
        message=message,
        stdout_tail=stdout,
        stderr_tail=stderr,
        archive=archive,
        sealed=None,
    )
