"""Settings shared by the UCP roles of one node (``ucp-bpnode --roles ...``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .endpoints import RoleName

__all__ = ["RoleSettings"]


@dataclass(frozen=True, slots=True)
class RoleSettings:
    """What the roles of one node are configured with. Defaults suit a small local mesh."""

    roles: tuple[RoleName, ...] = ()
    """The roles this node runs."""
    workdir: Path | None = None
    """Where the roles keep their state (``<workdir>/broker``, ``<workdir>/datastore``,
    ``<workdir>/executor``); ``None`` keeps everything in memory (throwaway nodes, tests)."""
    brokers: tuple[str, ...] = ()
    """Node IDs of brokers to use, nearest first; empty: find brokers through the agent's role
    directory (route advertisements and discovery)."""
    heartbeat_interval_s: float = 5.0
    """How often executors and datastores tell their brokers they are alive."""
    executor_timeout_s: float = 15.0
    """A broker drops an executor or datastore it has not heard from for this long."""
    max_jobs: int | None = None
    """Jobs an executor runs at once; ``None``: its CPU core count."""
    datastore_quota_bytes: int = 4 * 1024**3
    """Space a datastore may use for named data."""
    result_lifetime_s: float = 7 * 24 * 3600.0
    """Bundle lifetime of results and job messages: how long the network keeps trying."""
    request_timeout_s: float = 30.0
    """How long a role waits for the answer to one of its requests before retrying."""
    inline_limit_bytes: int = 256 * 1024
    """Results archives up to this size travel inside the result message; larger ones are
    stored as named data (``<job-uuid>/archive``) and referenced."""

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval_s", "executor_timeout_s", "result_lifetime_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.max_jobs is not None and self.max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        object.__setattr__(self, "roles", tuple(RoleName(r) for r in self.roles))
