"""The agent's security policy (RFC 9172 §5): which BPSec operations a node adds, requires,
verifies and accepts, for which bundles, with which keys.

Theory of operation
-------------------
A :class:`SecurityPolicy` is a list of :class:`SecurityRule`\\ s and the named keys they use
(:class:`PolicyKey`; read from the daemon's ``[security]`` table by
:mod:`ucp_dtn.agent.security_config`). A rule matches bundles by source and destination EID
patterns (the routing grammar: ``*``, ``dtn://a/*``, ``ipn:5.*``, a node ID, an exact EID) and
gives this node one of RFC 9172's roles for them (§1.4, §5):

* **source** -- the node adds the rule's operations to bundles it originates or forwards: a
  BIB over the payload with the ``integrity`` key, then a BCB over the payload (and over that
  BIB, §3.9) with the ``confidentiality`` key (:meth:`SecurityPolicy.secure`). Applications can
  also ask for operations with a named key when they send.
* **verifier** -- the node checks the rule's operations on bundles it receives and leaves them
  in place (:meth:`SecurityPolicy.on_reception`).
* **acceptor** -- the node checks them and removes them: at a bundle's destination when it is
  delivered (:meth:`SecurityPolicy.on_delivery`: the application gets the plaintext and what
  was verified), elsewhere when it is received (a gateway that decrypts).

For each role the first rule in file order whose patterns match applies. A rule's keys are the
only keys its checks use, so an operation that verifies was made with that key; an integrity
key may be a CA's certificates, and then a COSE signature whose certificate chain (x5chain,
RFC 9360) leads to that CA verifies, and the signer is reported.

Outcomes (RFC 9172 §11.2 reason codes, in the status report when the bundle asked for one):
an operation that fails (a MAC or signature that does not match, ciphertext that does not
authenticate) discards the bundle for "Failed security operation" (15); a required operation
that is absent -- or cannot be checked here, e.g. a BIB still encrypted under a BCB this node
has no key for -- for "Missing security operation" (12); a required operation in a context this
agent does not know for "Unknown security operation" (13). Operations the policy says nothing
about are left untouched (a relay forwards security blocks as received), and so is every
operation of a fragment: it is checked once the destination has reassembled the bundle (RFC 9172
§5.2 and :mod:`bpv7.bpsec.fragments`).

Everything here is sans-IO: the time (for certificate validity) is passed in.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509

from bpv7 import BlockType, Bundle, CRCType, EncodeError, EndpointID
from bpv7.admin import StatusReportReason
from bpv7.bpsec import (
    AesGcm,
    AesVariant,
    CoseAlgorithm,
    CoseKey,
    CoseKeyType,
    CoseOperation,
    CoseSource,
    HmacSha2,
    KeyStore,
    OperationResult,
    Outcome,
    TrustAnchors,
    add_confidentiality,
    add_integrity,
    process_security,
)
from bpv7.security_blocks import read_targets

from .errors import SecurityError
from .routing import RoutePattern

__all__ = [
    "PolicyKey",
    "SecurityCheck",
    "SecurityContextChoice",
    "SecurityError",
    "SecurityPolicy",
    "SecurityRole",
    "SecurityRule",
    "SecurityVerdict",
    "Service",
]

logger = logging.getLogger(__name__)

_PAYLOAD = 1


class SecurityRole(StrEnum):
    """What a rule makes this node for the bundles it matches (RFC 9172 §1.4)."""

    SOURCE = "source"
    """Adds the rule's security operations."""
    VERIFIER = "verifier"
    """Checks them and leaves them in the bundle."""
    ACCEPTOR = "acceptor"
    """Checks them and removes them (decrypting what is encrypted)."""


class Service(StrEnum):
    """The two security services of BPSec (RFC 9172 §3)."""

    INTEGRITY = "integrity"
    """A Block Integrity Block (BIB) operation."""
    CONFIDENTIALITY = "confidentiality"
    """A Block Confidentiality Block (BCB) operation."""


class SecurityContextChoice(StrEnum):
    """The security contexts a source rule may use."""

    RFC9173 = "rfc9173"
    """BIB-HMAC-SHA2 and BCB-AES-GCM (RFC 9173): symmetric keys only."""
    COSE = "cose"
    """The COSE context (draft-ietf-dtn-bpsec-cose): MACs, signatures (with an x5chain when
    the key has certificates), AES-GCM."""


@dataclass(frozen=True, slots=True)
class PolicyKey:
    """A key of the policy, by name."""

    name: str
    """The name rules and applications use."""
    cose: CoseKey | None = None
    """The key itself: symmetric (HMAC and AES), private (signs) or public (verifies)."""
    chain: tuple[x509.Certificate, ...] = ()
    """With a private key: its certificate chain, leaf first, sent with its signatures."""
    anchors: TrustAnchors | None = None
    """Trust anchors: signatures whose certificate chain leads to them verify."""
    origin: str = ""
    """Where it was read from (for messages)."""

    @property
    def kid(self) -> bytes:
        """The COSE key id it goes by: its own, else its name."""
        return self.cose.kid if self.cose is not None and self.cose.kid else self.name.encode()

    @property
    def symmetric(self) -> bytes | None:
        """The symmetric key bytes, if it is one."""
        cose = self.cose
        return cose.k if cose is not None and cose.kty == CoseKeyType.SYMMETRIC else None

    @property
    def can_sign(self) -> bool:
        """Whether it can make integrity operations (a MAC key or a private key)."""
        return self.cose is not None and self.cose.is_private

    @property
    def can_verify(self) -> bool:
        """Whether it can check integrity operations."""
        return self.cose is not None or self.anchors is not None

    @property
    def can_encrypt(self) -> bool:
        """Whether it is an AES key (16, 24 or 32 bytes)."""
        key = self.symmetric
        return key is not None and len(key) in (16, 24, 32)

    def describe(self) -> str:
        """What kind of key it is, for messages."""
        if self.anchors is not None:
            return "trust anchors"
        if self.symmetric is not None:
            return f"a {len(self.symmetric) * 8}-bit symmetric key"
        if self.can_sign:
            return "a private key" + (" with certificates" if self.chain else "")
        return "a public key"


@dataclass(frozen=True, slots=True)
class SecurityRule:
    """One rule of the policy (see the module docstring)."""

    role: SecurityRole
    """What this node is for the bundles the rule matches."""
    source: RoutePattern
    """Pattern of the bundle source EIDs it matches."""
    destination: RoutePattern
    """Pattern of the bundle destination EIDs it matches."""
    integrity: PolicyKey | None = None
    """A BIB over the payload: added with this key (source), required and checked with it."""
    confidentiality: PolicyKey | None = None
    """A BCB over the payload: added with this key (source), required and decrypted with it."""
    context: SecurityContextChoice = SecurityContextChoice.RFC9173
    """For a source rule: the security context of what it adds."""
    number: int = 1
    """Its position in the policy, from 1 (for messages)."""

    def matches(self, bundle: Bundle) -> bool:
        """Whether the rule is about ``bundle``."""
        primary = bundle.primary
        source, destination = primary.source, primary.destination
        return self.source.matches(source, str(source)) and self.destination.matches(
            destination, str(destination)
        )

    def describe(self) -> str:
        """``rule 2 (acceptor, dtn://a/* -> dtn://c/*)``."""
        return f"rule {self.number} ({self.role}, {self.source.text} -> {self.destination.text})"


@dataclass(frozen=True, slots=True)
class SecurityCheck:
    """One security operation this node verified or decrypted, as told to the application."""

    service: Service
    """Integrity (a BIB) or confidentiality (a BCB)."""
    target: int
    """The block it protected (1: the payload)."""
    security_source: str
    """The node that added it (RFC 9172 §3.6 security source)."""
    context_id: int
    """Its security context (1 BIB-HMAC-SHA2, 2 BCB-AES-GCM, 3 COSE)."""
    outcome: str
    """``verified`` or ``decrypted``."""
    key: str | None = None
    """The name of the policy key that checked it."""
    signer: str | None = None
    """Who signed, when a certificate chain said so (its id-on-bundleEID or name)."""

    def describe(self) -> str:
        """One line, e.g. ``integrity of block 1 verified (key a-c-mac, source dtn://a/)``."""
        what = "the payload" if self.target == _PAYLOAD else f"block {self.target}"
        details = [f"source {self.security_source}", f"context {self.context_id}"]
        if self.key is not None:
            details.insert(0, f"key {self.key}")
        if self.signer is not None:
            details.insert(0, f"signed by {self.signer}")
        return f"{self.service} of {what} {self.outcome} ({', '.join(details)})"


@dataclass(frozen=True, slots=True)
class SecurityVerdict:
    """What the policy decided about one bundle."""

    bundle: Bundle
    """The bundle as it goes on: unchanged, or with accepted operations removed."""
    discard: StatusReportReason | None = None
    """The RFC 9172 reason to discard it for, or ``None`` to keep it."""
    reason: str = ""
    """Why, in one line (for the log)."""
    checks: tuple[SecurityCheck, ...] = ()
    """The operations verified or decrypted here."""
    rule: SecurityRule | None = None
    """The rule that applied, if any."""


@dataclass(frozen=True)
class SecurityPolicy:
    """Rules and keys (see the module docstring). Build it with
    :func:`ucp_dtn.agent.security_config.read_security_policy`, or directly."""

    rules: tuple[SecurityRule, ...] = ()
    """In the order they are tried."""
    keys: Mapping[str, PolicyKey] = field(default_factory=dict)
    """Every named key, for rules and for applications asking for operations."""

    def rule_for(self, bundle: Bundle, roles: Iterable[SecurityRole]) -> SecurityRule | None:
        """The first rule with one of ``roles`` that matches ``bundle``."""
        wanted = frozenset(roles)
        for rule in self.rules:
            if rule.role in wanted and rule.matches(bundle):
                return rule
        return None

    def key(self, name: str) -> PolicyKey:
        """The key called ``name``; :class:`SecurityError` if there is none."""
        key = self.keys.get(name)
        if key is None:
            known = ", ".join(sorted(self.keys)) or "none configured"
            raise SecurityError(f"no security key named {name!r} (known: {known})")
        return key

    # -- security source --------------------------------------------------------------------

    def secure(
        self,
        bundle: Bundle,
        node_id: EndpointID,
        *,
        integrity: str | None = None,
        confidentiality: str | None = None,
        originated: bool = True,
    ) -> Bundle:
        """``bundle`` with the operations this node adds as security source: those asked for
        by name (an application's send) and those of the first source rule that matches.
        Raises :class:`SecurityError` when an operation asked for by name cannot be added; an
        operation a rule asks for that the bundle already has is not added again (a forwarded
        bundle may carry it from its source)."""
        rule = self.rule_for(bundle, (SecurityRole.SOURCE,))
        context = rule.context if rule is not None else None
        mac = self.key(integrity) if integrity is not None else None
        aes = self.key(confidentiality) if confidentiality is not None else None
        if rule is not None:
            mac = mac or rule.integrity
            aes = aes or rule.confidentiality
        if mac is None and aes is None:
            return bundle
        if bundle.is_fragment:
            # RFC 9172 §5.2: "A BCB or BIB MUST NOT be added to a bundle if the 'Bundle is a
            # fragment' flag is set".
            if originated:
                raise SecurityError("security operations cannot be added to a fragment")
            logger.info("%s: not securing fragment %s", _describe(rule), bundle.bundle_id)
            return bundle
        asked = integrity is not None or confidentiality is not None
        try:
            if mac is not None and not _has_operation(bundle, BlockType.BIB):
                bundle = add_integrity(
                    bundle,
                    [_PAYLOAD],
                    _integrity_context(mac, context),
                    source=node_id,
                    crc_type=CRCType.CRC32C,
                )
            if aes is not None and not _has_operation(bundle, BlockType.BCB):
                bundle = add_confidentiality(
                    bundle,
                    _confidentiality_targets(bundle),
                    _confidentiality_context(aes, context),
                    source=node_id,
                    crc_type=CRCType.CRC32C,
                )
        except (EncodeError, ValueError) as exc:
            if asked or originated:
                raise SecurityError(f"cannot secure the bundle: {exc}") from None
            logger.warning("%s: cannot secure %s: %s", _describe(rule), bundle.bundle_id, exc)
        return bundle

    # -- verifier and acceptor --------------------------------------------------------------

    def on_reception(
        self, bundle: Bundle, node_id: EndpointID, *, local: bool, now: float
    ) -> SecurityVerdict:
        """Check a received bundle (not a fragment) against the verifier or acceptor rule that
        matches it. At its destination (``local``) an acceptor only checks here: the
        operations are removed when the bundle is delivered. Elsewhere an acceptor removes
        them now, and then a source rule may add this node's own."""
        rule = self.rule_for(bundle, (SecurityRole.ACCEPTOR, SecurityRole.VERIFIER))
        verdict = SecurityVerdict(bundle)
        if rule is not None:
            accept = rule.role == SecurityRole.ACCEPTOR and not local
            verdict = self._check(bundle, rule, accept=accept, now=now)
        if verdict.discard is None and not local:
            secured = self.secure(verdict.bundle, node_id, originated=False)
            if secured is not verdict.bundle:
                verdict = SecurityVerdict(secured, checks=verdict.checks, rule=verdict.rule)
        return verdict

    def on_delivery(self, bundle: Bundle, *, now: float) -> SecurityVerdict:
        """Accept a bundle for local delivery (whole or reassembled) under the acceptor rule
        that matches it: the application gets the result. A verifier rule checks without
        removing anything."""
        rule = self.rule_for(bundle, (SecurityRole.ACCEPTOR, SecurityRole.VERIFIER))
        if rule is None:
            return SecurityVerdict(bundle)
        return self._check(bundle, rule, accept=rule.role == SecurityRole.ACCEPTOR, now=now)

    def _check(
        self, bundle: Bundle, rule: SecurityRule, *, accept: bool, now: float
    ) -> SecurityVerdict:
        keys = _RuleKeys(rule, now)
        result = process_security(bundle, keys, accept=accept)
        operations = result.operations
        names = {
            BlockType.BIB: rule.integrity.name if rule.integrity else None,
            BlockType.BCB: rule.confidentiality.name if rule.confidentiality else None,
        }
        checks = tuple(
            SecurityCheck(
                Service.INTEGRITY if op.block_type == BlockType.BIB else Service.CONFIDENTIALITY,
                op.target,
                str(op.source),
                int(op.context_id),
                str(op.outcome),
                names[op.block_type],
                op.signer,
            )
            for op in operations
            if op.succeeded
        )
        # The rule is about the payload (and the BIBs over it a BCB encrypts): another
        # source's operation over another block, which the rule's key cannot check, is not
        # a failure of this rule.
        bibs = {block.number for block in bundle.blocks if block.type_code == BlockType.BIB}
        failed = [
            op
            for op in operations
            if op.outcome == Outcome.FAILED and (op.target == _PAYLOAD or op.target in bibs)
        ]
        if failed:
            # RFC 9172 §11.2: 15, "Failed security operation".
            return SecurityVerdict(
                bundle,
                StatusReportReason.FAILED_SECURITY_OPERATION,
                f"{rule.describe()}: {failed[0].describe()}",
                checks,
                rule,
            )
        for required, block_type in (
            (rule.integrity, BlockType.BIB),
            (rule.confidentiality, BlockType.BCB),
        ):
            if required is None:
                continue
            missing = _missing(operations, block_type, result.unreadable)
            if missing is not None:
                code, why = missing
                return SecurityVerdict(bundle, code, f"{rule.describe()}: {why}", checks, rule)
        return SecurityVerdict(result.bundle if accept else bundle, None, "", checks, rule)


def _describe(rule: SecurityRule | None) -> str:
    return rule.describe() if rule is not None else "security"


def _has_operation(bundle: Bundle, block_type: int) -> bool:
    """Whether a BIB (or BCB) of ``bundle`` already protects its payload."""
    return any(
        block.type_code == block_type and _PAYLOAD in (read_targets(block.data) or ())
        for block in bundle.blocks
    )


def _confidentiality_targets(bundle: Bundle) -> list[int]:
    """The payload and the BIBs over it: RFC 9172 §3.9, a BCB over a target that a BIB
    protects "MUST also" encrypt that BIB."""
    targets = [_PAYLOAD]
    for block in bundle.blocks:
        if block.type_code == BlockType.BIB and _PAYLOAD in (read_targets(block.data) or ()):
            targets.append(block.number)
    return targets


def _integrity_context(
    key: PolicyKey, context: SecurityContextChoice | None
) -> HmacSha2 | CoseSource:
    secret = key.symmetric
    if context != SecurityContextChoice.COSE and secret is not None:
        return HmacSha2(secret)
    cose = key.cose
    if cose is None or not cose.is_private:
        raise SecurityError(f"key {key.name!r} ({key.describe()}) cannot make integrity operations")
    if cose.kty == CoseKeyType.SYMMETRIC:
        return CoseSource(CoseOperation(CoseKey.symmetric(cose.k, kid=key.kid, alg=cose.alg)))
    signing = CoseKey(cose.kty, key.kid, cose.alg, crv=cose.crv, x=cose.x, y=cose.y, d=cose.d)
    return CoseSource(CoseOperation(signing, x5chain=key.chain))


_GCM_BY_LENGTH = {16: CoseAlgorithm.A128GCM, 24: CoseAlgorithm.A192GCM, 32: CoseAlgorithm.A256GCM}


def _confidentiality_context(
    key: PolicyKey, context: SecurityContextChoice | None
) -> AesGcm | CoseSource:
    secret = key.symmetric
    if secret is None or len(secret) not in _GCM_BY_LENGTH:
        raise SecurityError(f"key {key.name!r} ({key.describe()}) is not an AES key")
    if context == SecurityContextChoice.COSE or len(secret) == 24:
        cose = CoseKey.symmetric(secret, kid=key.kid, alg=_GCM_BY_LENGTH[len(secret)])
        return CoseSource(CoseOperation(cose))
    variant = AesVariant.A128GCM if len(secret) == 16 else AesVariant.A256GCM
    return AesGcm(secret, variant=variant)


class _RuleKeys(KeyStore):
    """The keys of one rule: under their names (COSE key ids), and for the RFC 9173 contexts,
    which name no key, whatever the security source: the integrity key for every BIB
    (``bib@<source>``), the confidentiality key for every BCB (``bcb@<source>``). An operation
    that verifies with it was therefore made with the rule's key."""

    def __init__(self, rule: SecurityRule, now: float) -> None:
        super().__init__()
        self.validation_time = datetime.datetime.fromtimestamp(now, datetime.UTC)
        self._by_service: dict[str, bytes] = {}
        for service, key in (("bib@", rule.integrity), ("bcb@", rule.confidentiality)):
            if key is None:
                continue
            if key.anchors is not None:
                self.trust_anchors = key.anchors
            cose = key.cose
            if cose is None:
                continue
            self.add(
                key.name.encode(), cose if cose.kty == CoseKeyType.SYMMETRIC else cose.public()
            )
            if key.symmetric is not None:
                self._by_service[service] = key.symmetric

    def symmetric(self, name: str | bytes) -> bytes | None:
        """The rule's key of a service for ``bib@...`` / ``bcb@...``, else by name."""
        if isinstance(name, str) and name[:4] in self._by_service:
            return self._by_service[name[:4]]
        return super().symmetric(name)


def _missing(
    operations: tuple[OperationResult, ...], block_type: int, unreadable: tuple[int, ...]
) -> tuple[StatusReportReason, str] | None:
    """Why the required operation of ``block_type`` over the payload did not succeed, or
    ``None`` when it did."""
    service = "integrity" if block_type == BlockType.BIB else "confidentiality"
    over_payload = [
        op for op in operations if op.block_type == block_type and op.target == _PAYLOAD
    ]
    if any(op.succeeded for op in over_payload):
        return None
    if any(op.outcome == Outcome.UNSUPPORTED for op in over_payload):
        # RFC 9172 §11.2: 13, "Unknown security operation".
        return (
            StatusReportReason.UNKNOWN_SECURITY_OPERATION,
            f"the required {service} operation over the payload is in an unknown security context",
        )
    if over_payload:
        why = over_payload[0].describe()
    elif block_type == BlockType.BIB and unreadable:
        why = f"BIB {unreadable[0]} is encrypted and cannot be read here"
    else:
        why = f"the bundle has no {service} operation over the payload"
    # RFC 9172 §11.2: 12, "Missing security operation".
    return (
        StatusReportReason.MISSING_SECURITY_OPERATION,
        f"required {service} with the rule's key not found: {why}",
    )
