"""Reading a security policy (:class:`~ucp_dtn.agent.security.SecurityPolicy`) from the
``[security]`` table of the daemon's TOML file, with its keys from their own files.

::

    [security.keys]
    a-to-c-mac = { file = "keys/a-to-c.mac" }      # a symmetric key, in hex, in its own file
    a-to-c-aes = { file = "keys/a-to-c.aes" }      # 16 or 32 bytes: an AES key
    laptop = { cose = "keys/laptop.cose" }         # a COSE_Key (or a COSE_KeySet with kid = "...")
    me = { certificate = "me.pem", private_key = "me.key" }   # signs, with its certificate chain
    mesh = { trust = "mesh-ca.pem" }               # CA certificates: signers chaining to them

    [[security.rule]]
    role = "source"                  # source | verifier | acceptor
    source = "dtn://a/*"             # bundle source pattern (default "*")
    destination = "dtn://c/*"        # bundle destination pattern (default "*")
    integrity = "a-to-c-mac"         # a BIB over the payload with this key
    confidentiality = "a-to-c-aes"   # a BCB over the payload (and that BIB) with this key
    context = "rfc9173"              # source rules: rfc9173 (default for symmetric keys) or cose

Everything is checked here, before the node starts: unknown or missing fields, files that
cannot be read or hold no usable key, rules naming keys that do not exist or cannot do what
the rule asks (an AES key must have 16, 24 or 32 bytes; RFC 9173 has no signatures and no
192-bit AES; trust anchors verify but cannot sign). Every problem is a
:class:`~ucp_dtn.agent.ConfigError` with a one-line message naming the key or the rule.
Relative file names are relative to ``base`` (the TOML file's directory).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from pathlib import Path

from bpv7 import DecodeError
from bpv7.bpsec import (
    CoseKey,
    CoseKeyType,
    TrustAnchors,
    read_certificates,
    read_cose_keys,
    read_private_key,
)

from .errors import ConfigError
from .routing import RoutePattern
from .security import (
    PolicyKey,
    SecurityContextChoice,
    SecurityPolicy,
    SecurityRole,
    SecurityRule,
)

__all__ = ["read_security_policy"]

_KEY_FIELDS = ("file", "cose", "kid", "certificate", "private_key", "trust")
_RULE_FIELDS = ("role", "source", "destination", "integrity", "confidentiality", "context")
_MAX_KEY_FILE = 1024 * 1024
"""Largest key or certificate file read (a key file is a few hundred bytes)."""


def read_security_policy(table: object, base: Path, *, where: str = "security") -> SecurityPolicy:
    """The policy written in ``table`` (the parsed ``[security]`` TOML table); key files are
    read relative to ``base``. Raises :class:`ConfigError` with a one-line message."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table with 'keys' and 'rule'")
    _only(table, ("keys", "rule"), where)
    key_tables = table.get("keys", {})
    if not isinstance(key_tables, Mapping):
        raise ConfigError(f"{where}.keys: must be a table of named keys")
    keys: dict[str, PolicyKey] = {}
    for name, spec in key_tables.items():
        keys[name] = _read_key(name, spec, base, f"{where}.keys.{name}")
    rule_tables = table.get("rule", [])
    if not isinstance(rule_tables, list):
        raise ConfigError(f"{where}.rule: must be an array of tables ([[{where}.rule]])")
    rules = tuple(
        _read_rule(number, spec, keys, f"{where}.rule[{number}]")
        for number, spec in enumerate(rule_tables, start=1)
    )
    return SecurityPolicy(rules, keys)


def _only(table: Mapping[str, object], known: tuple[str, ...], where: str) -> None:
    for name in table:
        if name not in known:
            raise ConfigError(f"{where}: unknown field {name!r} (known: {', '.join(known)})")


def _text(table: Mapping[str, object], name: str, where: str) -> str | None:
    value = table.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}.{name}: must be a non-empty string")
    return value


def _read_file(base: Path, name: str, where: str) -> bytes:
    path = base / Path(name).expanduser()
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError(f"{where}: {path} is too large for a key file")
    return data


def _read_key(name: object, spec: object, base: Path, where: str) -> PolicyKey:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: a key needs a non-empty name")
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{where}: must be a table: {{ file = ... }}, {{ cose = ... }}, "
            "{ certificate = ..., private_key = ... } or { trust = ... }"
        )
    _only(spec, _KEY_FIELDS, where)
    fields = {field: _text(spec, field, where) for field in _KEY_FIELDS}
    kinds = [kind for kind in ("file", "cose", "certificate", "trust") if fields[kind]]
    if len(kinds) != 1:
        raise ConfigError(
            f"{where}: give exactly one of file (a hex key), cose (a COSE_Key file), "
            "certificate (with private_key) or trust (CA certificates)"
        )
    kind = kinds[0]
    if fields["kid"] is not None and kind != "cose":
        raise ConfigError(f"{where}.kid: only for a cose key file")
    if fields["private_key"] is not None and kind != "certificate":
        raise ConfigError(f"{where}.private_key: only with certificate")
    path = fields[kind]
    assert path is not None
    data = _read_file(base, path, where)
    try:
        if kind == "file":
            return PolicyKey(name, CoseKey.symmetric(_hex_key(data, where)), origin=path)
        if kind == "cose":
            return PolicyKey(name, _cose_key(data, fields["kid"], where), origin=path)
        if kind == "trust":
            return PolicyKey(name, anchors=TrustAnchors(read_certificates(data)), origin=path)
        return _signer(name, data, fields["private_key"], base, where)
    except DecodeError as exc:
        raise ConfigError(f"{where}: {path}: {exc.message}") from None


def _hex_key(data: bytes, where: str) -> bytes:
    text = b"".join(data.split())
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: the key file must hold the key in hex") from None
    if not 16 <= len(key) <= 64:
        raise ConfigError(f"{where}: a key of {len(key)} bytes (16 to 64 wanted)")
    return key


def _cose_key(data: bytes, kid: str | None, where: str) -> CoseKey:
    keys = read_cose_keys(data)
    if kid is not None:
        chosen = [key for key in keys if key.kid == kid.encode()]
        if not chosen:
            raise ConfigError(f"{where}: no key with kid {kid!r} in the file")
        return chosen[0]
    if len(keys) != 1:
        raise ConfigError(f"{where}: the file holds {len(keys)} keys: say which with kid = ...")
    return keys[0]


def _signer(
    name: str, certificates: bytes, private_key: str | None, base: Path, where: str
) -> PolicyKey:
    if private_key is None:
        raise ConfigError(f"{where}: a certificate needs its private_key")
    chain = tuple(read_certificates(certificates))
    key = read_private_key(_read_file(base, private_key, where))
    public = chain[0].public_key()
    if key.kty == CoseKeyType.OKP:
        matches = key.ed25519_private_key().public_key() == public
    else:
        matches = key.ec_private_key().public_key() == public
    if not matches:
        raise ConfigError(f"{where}: the private key is not the first certificate's")
    return PolicyKey(name, key, chain=chain, origin=private_key)


def _read_rule(
    number: int, spec: object, keys: Mapping[str, PolicyKey], where: str
) -> SecurityRule:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a table")
    _only(spec, _RULE_FIELDS, where)
    role_text = _text(spec, "role", where)
    roles = ", ".join(role.value for role in SecurityRole)
    if role_text is None:
        raise ConfigError(f"{where}: needs a role ({roles})")
    try:
        role = SecurityRole(role_text)
    except ValueError:
        raise ConfigError(f"{where}.role: {role_text!r} is none of {roles}") from None
    patterns = []
    for field in ("source", "destination"):
        text = _text(spec, field, where) or "*"
        try:
            patterns.append(RoutePattern.parse(text))
        except ConfigError as exc:
            raise ConfigError(f"{where}.{field}: {exc}") from None
    named = {}
    for field in ("integrity", "confidentiality"):
        key_name = _text(spec, field, where)
        if key_name is not None:
            if key_name not in keys:
                known = ", ".join(sorted(keys)) or "none"
                raise ConfigError(f"{where}.{field}: no key {key_name!r} (known: {known})")
            named[field] = keys[key_name]
    if not named:
        raise ConfigError(f"{where}: name an integrity key, a confidentiality key or both")
    integrity = named.get("integrity")
    confidentiality = named.get("confidentiality")
    context = _context(spec, role, integrity, where)
    _check_keys(role, context, integrity, confidentiality, where)
    return SecurityRule(role, patterns[0], patterns[1], integrity, confidentiality, context, number)


def _context(
    spec: Mapping[str, object], role: SecurityRole, integrity: PolicyKey | None, where: str
) -> SecurityContextChoice:
    text = _text(spec, "context", where)
    if text is None:
        signs = integrity is not None and integrity.symmetric is None
        return SecurityContextChoice.COSE if signs else SecurityContextChoice.RFC9173
    if role != SecurityRole.SOURCE:
        raise ConfigError(
            f"{where}.context: only source rules choose a context (checks take any context)"
        )
    try:
        return SecurityContextChoice(text)
    except ValueError:
        choices = ", ".join(choice.value for choice in SecurityContextChoice)
        raise ConfigError(f"{where}.context: {text!r} is none of {choices}") from None


def _check_keys(
    role: SecurityRole,
    context: SecurityContextChoice,
    integrity: PolicyKey | None,
    confidentiality: PolicyKey | None,
    where: str,
) -> None:
    def refuse(key: PolicyKey, what: str) -> ConfigError:
        return ConfigError(f"{where}: key {key.name!r} ({key.describe()}) {what}")

    if integrity is not None:
        if role == SecurityRole.SOURCE:
            if not integrity.can_sign:
                raise refuse(integrity, "cannot make integrity operations")
            if context == SecurityContextChoice.RFC9173 and integrity.symmetric is None:
                raise refuse(integrity, "cannot sign in RFC 9173's context: use context = 'cose'")
        elif not integrity.can_verify:
            raise refuse(integrity, "cannot check integrity operations")
    if confidentiality is not None:
        if not confidentiality.can_encrypt:
            raise refuse(confidentiality, "is not an AES key (16, 24 or 32 bytes)")
        secret = confidentiality.symmetric
        if (
            role == SecurityRole.SOURCE
            and context == SecurityContextChoice.RFC9173
            and secret is not None
            and len(secret) == 24
        ):
            raise refuse(confidentiality, "is 192-bit: RFC 9173 has A128GCM and A256GCM only")
