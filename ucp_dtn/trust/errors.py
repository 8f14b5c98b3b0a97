"""Errors of the trusted mesh."""

from __future__ import annotations

__all__ = ["TrustError"]


class TrustError(Exception):
    """A trust file, an authority or a revocation list is missing, unreadable or wrong, or an
    operation on them is not allowed. The message is one line, for users."""
