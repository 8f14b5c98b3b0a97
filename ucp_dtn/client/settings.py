"""How a client command reaches the network (:class:`ClientSettings`) and where its home is
(:func:`default_home`).

Only the standard library is imported here: the ``ucp`` command builds these settings before it
knows whether it needs anything heavier (``ucp --help`` must start fast), and the client agent
gets them from the command as plain values (:meth:`ClientSettings.to_plain`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ClientUsageError

__all__ = [
    "DEFAULT_COLLECT_MAX_BYTES",
    "DEFAULT_COLLECT_MAX_FILES",
    "DEFAULT_RESUBMIT_AFTER_S",
    "HOME_ENV",
    "ClientSettings",
    "default_home",
]

HOME_ENV = "UCP_HOME"
"""Environment variable naming the client home."""
DEFAULT_COLLECT_MAX_BYTES = 256 * 1024**2
"""What one job's results may unpack to unless ``--collect-max-size`` says otherwise."""
DEFAULT_COLLECT_MAX_FILES = 10_000
"""How many files one job's results may unpack to unless ``--collect-max-files`` says
otherwise."""
DEFAULT_RESUBMIT_AFTER_S = 120.0
"""How long a job must have been with a broker that does not answer, and that no other broker
reached knows, before the client sends it to another broker (``--resubmit-after``)."""


def default_home() -> Path:
    """``$UCP_HOME``, else ``$XDG_DATA_HOME/ucp``, else ``~/.local/share/ucp``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    data = os.environ.get("XDG_DATA_HOME")
    base = Path(data).expanduser() if data else Path.home() / ".local" / "share"
    return base / "ucp"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How a client command reaches the network."""

    home: Path | None = None
    """The client home (``None``: ``$UCP_HOME`` or ``~/.local/share/ucp``)."""
    via: tuple[tuple[str, int], ...] = ()
    """Nodes to connect to (``--via tcp://HOST:PORT``); empty: the ones remembered from the
    last command that gave some, unless :attr:`discover` is on."""
    discover: bool = False
    """Find nodes with zeroconf (``--discover``)."""
    discovery_interfaces: tuple[str, ...] | None = None
    """IP addresses of the interfaces discovery runs on (``None``: all)."""
    discovery_service_type: str | None = None
    """DNS-SD service type (``None``: the agent's default)."""
    broker: str | None = None
    """The broker's node ID or endpoint (``--broker``); ``None``: the nearest one found."""
    wait_s: float = 10.0
    """How long to look for a reachable broker before giving up (or queueing)."""
    request_timeout_s: float = 10.0
    """How long to wait for the answer to a request."""
    lifetime_s: float = 7 * 24 * 3600.0
    """Lifetime of the bundles that submit jobs and upload data."""
    settle_s: float = 0.5
    """After a reply to a query several datastores may answer, how long to wait for more."""
    lock_timeout_s: float = 10.0
    """How long to wait for another program to release the client home."""
    resubmit_after_s: float = DEFAULT_RESUBMIT_AFTER_S
    """How long after a job was sent to a broker the client may send it to another one when
    the one it was sent to does not answer and the broker reached now does not know the job
    (a broker lost before it told any other about the job, :mod:`.stranded`); 0: never."""
    collect_max_bytes: int = DEFAULT_COLLECT_MAX_BYTES
    """The most a job's results archive may unpack to (``--collect-max-size``): archives come
    from the network, and a small one can hold gigabytes of zeros."""
    collect_max_files: int = DEFAULT_COLLECT_MAX_FILES
    """The most files a job's results archive may unpack to (``--collect-max-files``)."""
    trust: Path | None = None
    """The client's trust file in a trusted mesh (``--trust``); ``None``: the one ``ucp trust
    use`` put in the home (``<home>/trust.pem``), else open mode."""

    def __post_init__(self) -> None:
        for name in (
            "wait_s",
            "request_timeout_s",
            "lifetime_s",
            "settle_s",
            "lock_timeout_s",
            "resubmit_after_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0 or math.isnan(value):
                raise ClientUsageError(f"{name} must be a non-negative number, got {value!r}")
        for name in ("collect_max_bytes", "collect_max_files"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ClientUsageError(f"{name} must be a positive whole number, got {value!r}")
        if self.broker is not None:
            from bpv7 import BPv7Error, parse_eid  # only when a broker is named

            try:
                parse_eid(self.broker)
            except BPv7Error as exc:
                shown = self.broker if len(self.broker) <= 60 else self.broker[:60] + "..."
                raise ClientUsageError(f"--broker {shown!r}: {exc.message}") from None

    @property
    def home_path(self) -> Path:
        """The home directory these settings use (:attr:`home`, else :func:`default_home`),
        absolute."""
        home = default_home() if self.home is None else self.home.expanduser()
        return home.absolute()

    def to_plain(self) -> dict[str, Any]:
        """The settings as plain values (text, numbers, lists), for the client agent."""
        plain: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [list(item) if isinstance(item, tuple) else item for item in value]
            plain[field.name] = value
        return plain

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> ClientSettings:
        """The settings :meth:`to_plain` gave; :class:`ClientUsageError` if they are not."""
        known = {field.name for field in dataclasses.fields(cls)}
        try:
            values = {name: value for name, value in plain.items() if name in known}
            for name in ("home", "trust"):
                if values.get(name) is not None:
                    values[name] = Path(values[name])
            values["via"] = tuple((str(h), int(p)) for h, p in values.get("via", ()))
            if values.get("discovery_interfaces") is not None:
                values["discovery_interfaces"] = tuple(values["discovery_interfaces"])
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ClientUsageError(f"bad client settings: {exc}") from None
