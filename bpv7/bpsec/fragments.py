"""How BPSec constrains fragmentation (RFC 9171 §5.8, RFC 9172 §3.8 and §5.2).

Two rules meet here. RFC 9172 §5.2: "A BCB or BIB MUST NOT be added to a bundle if the 'Bundle is
a fragment' flag is set" -- security is applied to whole bundles (:func:`check_securable`,
which :func:`~bpv7.bpsec.add_integrity` and :func:`~bpv7.bpsec.add_confidentiality` call). And
RFC 9172 §3.8: a BCB that encrypts the payload "MUST have the 'Block must be replicated in every
fragment' flag set", so every fragment carries it; since a security block's targets must be in
the bundle (§3.6), a fragment that carries a BCB must also carry the other blocks it encrypts.
:func:`~bpv7.security_blocks.fragment_security_blocks` names the blocks a fragmenter must
therefore put in every fragment (it lives in :mod:`bpv7.security_blocks`, so that
:mod:`bpv7.fragment` can call it without importing the cryptography), beyond those whose
own flag asks for it (the decoder tolerates a replicated security block whose other targets are
missing, in fragments only). A fragment's primary block differs
from the original's and its payload is partial, so :func:`~bpv7.bpsec.process_security` skips
every operation of a fragment: they are processed on the reassembled bundle.
"""

from __future__ import annotations

from ..bundle import Bundle
from ..errors import EncodeError
from ..security_blocks import fragment_security_blocks

__all__ = ["check_securable", "fragment_security_blocks"]


def check_securable(bundle: Bundle) -> None:
    """Raise :class:`~bpv7.errors.EncodeError` if security blocks may not be added to
    ``bundle`` because it is a fragment (RFC 9172 §5.2)."""
    if bundle.is_fragment:
        # RFC 9172 §5.2: "A BCB or BIB MUST NOT be added to a bundle if the 'Bundle is a
        # fragment' flag is set in the bundle processing control flags field."
        raise EncodeError(
            "security blocks cannot be added to a fragment",
            rule="security-on-fragment",
            section="5.2",
            rfc=9172,
        )
