"""Exceptions of the UCP data model.

Two families, as everywhere in ucp-dtn:

* the local caller (or the user's plan file) asked for something the model forbids:
  :class:`DataNameError`, :class:`CapabilityError`, :class:`JobValidationError` (all
  :class:`FieldError`, which names the offending field) and :class:`PlanError`, all
  :class:`UcpUsageError` (a :class:`ValueError`);
* bytes received from another node do not form a valid UCP message:
  :class:`MessageDecodeError`. A decoder raises nothing else — never a cbor2 error, ``KeyError``
  or ``TypeError`` — so a role can ``except MessageDecodeError`` around every payload it reads.

Every message is one line and names the offending field, so it can be shown to a user as is.
"""

from __future__ import annotations

__all__ = [
    "CapabilityError",
    "DataNameError",
    "FieldError",
    "JobValidationError",
    "MessageDecodeError",
    "PlanError",
    "UcpError",
    "UcpUsageError",
]


class UcpError(Exception):
    """Base class of every exception of :mod:`ucp_dtn.ucp`."""


class UcpUsageError(UcpError, ValueError):
    """The local caller asked for something the UCP data model does not allow."""


class FieldError(UcpUsageError):
    """A value breaks a rule of the data model; ``field`` says which value, the way a plan
    would spell it (``"named_results['out/*']"``, ``"requires.memory"``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        """The offending field, e.g. ``"dirs[2]"`` or ``"env['A=B']"``; ``""`` if unknown."""
        self.reason = reason
        """What is wrong with it, without the field."""


class DataNameError(FieldError):
    """A data name, wildcard pattern or job path is malformed, or a wildcard mapping produced
    one that is."""


class CapabilityError(FieldError):
    """A :class:`~ucp_dtn.ucp.capabilities.Capabilities` or
    :class:`~ucp_dtn.ucp.capabilities.Requirements` field is out of range or of the wrong
    type."""


class JobValidationError(FieldError):
    """A :class:`~ucp_dtn.ucp.job.JobInfo` field breaks a rule."""


class PlanError(UcpUsageError):
    """An execution plan cannot be used; nothing of it may be sent.

    ``str()`` is one line: ``plan.toml: job 'resample': field 'limits.time': must be a
    duration like '10s' or a number of seconds, got 'soon'``.
    """

    def __init__(self, file: str, reason: str, *, job: str | None = None, field: str | None = None):
        parts = [file]
        if job is not None:
            parts.append(f"job '{job}'")
        if field is not None:
            parts.append(f"field '{field}'")
        parts.append(reason)
        super().__init__(": ".join(parts))
        self.file = file
        """The plan file (as given to :func:`~ucp_dtn.ucp.plan.load_plan`)."""
        self.job = job
        """The job's name in the plan (``jobs[1]`` for REC plans, whose jobs have no name), or
        ``None`` when the problem is not in a job."""
        self.field = field
        """The offending field (dotted, with ``[...]`` for keys and indices), or ``None``."""
        self.reason = reason
        """What is wrong."""


class MessageDecodeError(UcpError, ValueError):
    """Received bytes are not a valid UCP message (the remote side is at fault)."""

    def __init__(self, reason: str, *, kind: str | None = None) -> None:
        super().__init__(f"{kind} message: {reason}" if kind else reason)
        self.kind = kind
        """The message kind (``"job-submit"``...) when it was readable, else ``None``."""
        self.reason = reason
        """What is wrong, without the kind."""
