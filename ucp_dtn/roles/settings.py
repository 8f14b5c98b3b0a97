"""Settings shared by the UCP roles of one node (``ucp-bpnode --roles ...``)."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..ucp import Capabilities, read_local_capabilities
from ..ucp.errors import CapabilityError, UcpUsageError
from ..ucp.job import check_replicas
from ..ucp.names import name_matches, validate_pattern
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
    epoch_interruption: bool = False
    """Executors: compile jobs with wasmtime's epoch interruption, so that a worker interrupts
    its own guest at the job's time limit. Off (the default), the worker pool's kill at the
    limit enforces it (the job is reported the same way) and guests run about 20% faster
    without the epoch checks (the audio classifier, ``bench/jobs.py``)."""
    input_cache_bytes: int = 1024**3
    """Executors: bytes of fetched named data kept by content (SHA-256) so that later jobs on
    the same data fetch nothing (``<workdir>/executor/inputs``); 0: none kept."""
    dispatch_ahead: int = 1
    """Brokers: jobs an executor may be sent beyond its free slots (they wait there for a
    slot), so that it starts the next job as soon as one ends instead of after a round trip;
    only when no capable executor has a free slot; 0: never."""
    dispatch_ahead_time_s: float = 0.25
    """Brokers: an executor whose jobs are short may be sent more than
    :attr:`dispatch_ahead`: as many as its slots get through in this time by how long its
    recent jobs ran, at most 64; never while one of its jobs has been out longer than this;
    0: :attr:`dispatch_ahead` only."""
    output_interval_s: float = 1.0
    """How often an executor sends a running job's new output to its broker (``job-output``,
    for ``ucp logs``); 0: none while the job runs (its result still carries the end of both
    streams)."""
    datastore_quota_bytes: int = 4 * 1024**3
    """Space a datastore may use for named data."""
    result_lifetime_s: float = 7 * 24 * 3600.0
    """Bundle lifetime of results and job messages: how long the network keeps trying."""
    request_timeout_s: float = 30.0
    """How long a role waits for the answer to one of its requests before retrying."""
    capability_overrides: Mapping[str, int | float | bool | str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Capabilities to announce instead of what psutil measures (``--capability memory=2GiB``):
    keys of :class:`~ucp_dtn.ucp.Capabilities` (memory, disk, cpu_cores, ...) replace the
    measured value, any other key is an extra capability."""
    inline_limit_bytes: int = 256 * 1024
    """Results archives up to this size travel inside the result message; larger ones are
    stored as named data (``<job-uuid>/archive``) and referenced."""
    broker_timeout_s: float = 30.0
    """A node without the broker role that has known no reachable broker for this long may
    promote itself to broker (see :attr:`promote_probability` and docs/disruption.md)."""
    promote_probability: float = 0.0
    """Chance, at each check (every heartbeat interval) after :attr:`broker_timeout_s` without
    a broker, that the node promotes itself to broker; 0 never promotes, 1 promotes at the
    first check (the UCP paper's self-promotion)."""
    promotion_seed: int | None = None
    """Seed of the promotion draws (tests); ``None``: seeded from the system."""
    replica_defaults: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Datastores: the replication factor of a put that names none, by name: a data name
    (with its subkeys) or ``prefix*`` pattern → factor; the longest key that selects the name
    wins, ``*`` selects every name; a name no key selects gets 1 (:meth:`replicas_for`)."""
    replica_timeout_s: float = 300.0
    """Brokers: a datastore gone this long no longer counts as holding its replicas; the
    missing copies are made elsewhere (docs/disruption.md)."""
    replication_rate: int = 1024 * 1024
    """Datastores: bytes per second of replica copies sent over one link at most (0: no
    limit); copies also wait while anything else waits for that link."""
    tombstone_lifetime_s: float = 7 * 24 * 3600.0
    """Datastores: how long a delete's tombstone is kept (a put older than the delete that
    arrives within this time is ignored); at least as long as put bundles live."""
    allowed_clients: tuple[str, ...] = ()
    """Brokers in a trusted mesh: the node IDs of the clients whose jobs they accept; empty:
    every enrolled client's."""

    def __post_init__(self) -> None:
        for name in (
            "heartbeat_interval_s",
            "executor_timeout_s",
            "result_lifetime_s",
            "broker_timeout_s",
            "replica_timeout_s",
            "tombstone_lifetime_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0.0 <= self.promote_probability <= 1.0:
            raise ValueError("promote_probability must be between 0 and 1")
        if not 0 <= self.dispatch_ahead_time_s <= 3600:
            raise ValueError("dispatch_ahead_time_s must be from 0 to 3600 seconds")
        if not self.output_interval_s >= 0:
            raise ValueError("output_interval_s must not be negative")
        if type(self.input_cache_bytes) is not int or self.input_cache_bytes < 0:
            raise ValueError("input_cache_bytes must be a whole number of bytes >= 0")
        if type(self.dispatch_ahead) is not int or self.dispatch_ahead < 0:
            raise ValueError("dispatch_ahead must be a whole number >= 0")
        if self.max_jobs is not None and self.max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        if type(self.replication_rate) is not int or self.replication_rate < 0:
            raise ValueError("replication_rate must be a whole number of bytes per second >= 0")
        defaults: dict[str, int] = {}
        for key, factor in dict(self.replica_defaults).items():
            try:
                validate_pattern(key, "replicas")
                defaults[key] = check_replicas(factor, f"replicas[{key!r}]")
            except UcpUsageError as exc:
                raise ValueError(str(exc)) from None
        object.__setattr__(self, "replica_defaults", MappingProxyType(defaults))
        object.__setattr__(self, "roles", tuple(RoleName(r) for r in self.roles))
        object.__setattr__(
            self, "capability_overrides", MappingProxyType(dict(self.capability_overrides))
        )
        # Check the overrides now, on a neutral measurement: a bad one (``cpu_cores=2.5``) is
        # a configuration error at start-up, not a warning in every heartbeat.
        neutral = Capabilities(memory=0, disk=0, cpu_load=0.0, cpu_cores=1)
        try:
            _with_overrides(neutral, self.capability_overrides)
        except CapabilityError as exc:
            raise ValueError(f"capability {exc}") from None

    def replicas_for(self, name: str) -> int:
        """The replication factor of a put of ``name`` that names none (see
        :attr:`replica_defaults`)."""
        best, factor = -1, 1
        for key, value in self.replica_defaults.items():
            selects = key == "*" or name_matches(key, name)
            if selects and len(key) > best:
                best, factor = len(key), value
        return factor

    def local_capabilities(self) -> Capabilities:
        """This node's capabilities as its roles announce them: measured with psutil, then
        :attr:`capability_overrides` applied."""
        measured = read_local_capabilities(self.workdir or Path(tempfile.gettempdir()))
        return _with_overrides(measured, self.capability_overrides)


def _with_overrides(
    measured: Capabilities, overrides: Mapping[str, int | float | bool | str]
) -> Capabilities:
    """``measured`` with the fields ``overrides`` names replaced and its other keys added to
    ``extra``; :class:`CapabilityError` if a replaced field breaks its rule."""
    known = {f.name for f in dataclasses.fields(Capabilities)} - {"extra"}
    replaced: dict[str, Any] = {k: v for k, v in overrides.items() if k in known}
    extra = {k: v for k, v in overrides.items() if k not in known}
    replaced["extra"] = {**dict(measured.extra), **extra}
    return dataclasses.replace(measured, **replaced)
