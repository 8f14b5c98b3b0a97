"""Key files and policies for the security tests: a symmetric MAC key and an AES key shared by
``dtn://a/`` and ``dtn://c/``, written into a directory as the daemon reads them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ucp_dtn.agent import SecurityPolicy, read_security_policy

MAC_KEY = bytes(range(1, 33))
AES_KEY = bytes(range(101, 133))

KEYS_TOML = """
[security.keys]
a-c-mac = { file = "a-c.mac" }
a-c-aes = { file = "a-c.aes" }
"""

SOURCE_RULE = """
[[security.rule]]
role = "source"
source = "dtn://a/*"
destination = "dtn://c/*"
integrity = "a-c-mac"
confidentiality = "a-c-aes"
"""

ACCEPTOR_RULE = """
[[security.rule]]
role = "acceptor"
source = "dtn://a/*"
destination = "dtn://c/*"
integrity = "a-c-mac"
confidentiality = "a-c-aes"
"""


def write_keys(directory: Path) -> None:
    """The two key files of :data:`KEYS_TOML`, in hex, readable by their owner only."""
    for name, key in (("a-c.mac", MAC_KEY), ("a-c.aes", AES_KEY)):
        path = directory / name
        path.write_text(key.hex() + "\n")
        path.chmod(0o600)


def policy(directory: Path, *rules: str, keys: str = KEYS_TOML) -> SecurityPolicy:
    """The policy of ``keys`` and ``rules`` (TOML text), key files read from ``directory``."""
    document = tomllib.loads(keys + "".join(rules))
    return read_security_policy(document["security"], directory)
