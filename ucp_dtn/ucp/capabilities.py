"""What a node can offer (:class:`Capabilities`) and what a job needs (:class:`Requirements`).

Executors read their capabilities with :func:`read_local_capabilities` and put them in every
heartbeat; the broker keeps the latest per executor, drops executors that fail a job's
:class:`Requirements` (:meth:`Requirements.unsatisfied_reason` says why, for the job's state
detail) and prefers the one with the highest :func:`executor_score` — a load-aware figure, so
jobs spread over idle machines instead of piling onto the first one (REC picked at random).

``extra`` on both sides is an open set of facts (``gpu = true``, ``arch = "aarch64"``,
``sensors = 3``): a requirement on a text or boolean fact wants an equal value; on a number, a
value at least as large.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

import psutil  # type: ignore[import-untyped]  # no stubs installed; results are converted

from ucp_dtn.wire_schema import Wire

from .errors import CapabilityError

__all__ = [
    "Capabilities",
    "ExtraValue",
    "Requirements",
    "executor_score",
    "read_local_capabilities",
]

_log = logging.getLogger(__name__)

ExtraValue = str | int | float | bool
"""The value of an ``extra`` fact."""


def _frozen_extra(owner: object, extra: Mapping[str, ExtraValue]) -> None:
    """Replace ``owner.extra`` with a read-only copy after checking its keys and values."""
    if not isinstance(extra, Mapping):
        raise CapabilityError("extra", f"must be a mapping, got {type(extra).__name__}")
    for key, value in extra.items():
        if not isinstance(key, str) or not key:
            raise CapabilityError("extra", f"keys must be non-empty text, got {key!r}")
        if not isinstance(value, str | int | float | bool):
            raise CapabilityError(
                f"extra[{key!r}]", f"must be text, a number or a bool, got {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise CapabilityError(f"extra[{key!r}]", f"must be a finite number, got {value!r}")
    object.__setattr__(owner, "extra", MappingProxyType(dict(sorted(extra.items()))))


_LARGEST_REQUIREMENT = 2**64 - 1
"""Largest number a capability or requirement may be: more than any node has (16 EiB of
memory), and the largest unsigned integer of the wire form."""


def _check_non_negative(
    owner: object, names: tuple[str, ...], largest: float | None = None
) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CapabilityError(name, f"must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise CapabilityError(name, f"must be a finite number >= 0, got {value!r}")
        if largest is not None and value > largest:
            shown = f"{float(value):.3g}" if value < 2**1023 else "more"
            raise CapabilityError(name, f"must be at most {largest:.3g}, got {shown}")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A node's resources at one moment (sent in heartbeats). ``extra`` is read-only; the
    object is compared by value but is not hashable."""

    memory: int
    """Memory available to new processes, in bytes."""
    disk: int
    """Free space on the file system of the node's work directory, in bytes."""
    cpu_load: float
    """One-minute load average divided by the number of cores: 0 idle, 1 every core busy (it
    may exceed 1 on an overloaded machine)."""
    cpu_cores: int
    """Logical CPU cores."""
    # A heartbeat carries every capability, defaults too (the wire form of version 1).
    cpu_freq: Annotated[float, Wire(always=True)] = 0.0
    """Nominal (maximum) CPU frequency in MHz; 0 when the system does not tell."""
    has_battery: Annotated[bool, Wire(key="battery", always=True)] = False
    """Whether the node runs on a battery (it may still be plugged in)."""
    power: Annotated[float, Wire(always=True)] = 100.0
    """Remaining battery charge in percent (0 to 100); 100 for a node without battery."""
    extra: Annotated[Mapping[str, ExtraValue], Wire(always=True)] = field(default_factory=dict)
    """Further facts about the node (``gpu``, ``arch``, attached sensors...)."""

    def __post_init__(self) -> None:
        if isinstance(self.cpu_cores, bool) or not isinstance(self.cpu_cores, int):
            raise CapabilityError("cpu_cores", f"must be an integer, got {self.cpu_cores!r}")
        for name in ("memory", "disk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CapabilityError(name, f"must be an integer number of bytes, got {value!r}")
        _check_non_negative(
            self, ("memory", "disk", "cpu_load", "cpu_cores", "cpu_freq"), _LARGEST_REQUIREMENT
        )
        if not isinstance(self.has_battery, bool):
            raise CapabilityError("has_battery", f"must be a bool, got {self.has_battery!r}")
        _check_non_negative(self, ("power",))
        if self.power > 100:
            raise CapabilityError("power", f"must be a percentage 0..100, got {self.power!r}")
        _frozen_extra(self, self.extra)

    @property
    def free_cores(self) -> float:
        """Idle CPU capacity in cores: ``cpu_cores * (1 - cpu_load)``, at least 0."""
        return max(0.0, self.cpu_cores * (1.0 - self.cpu_load))


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a job needs of its executor; every field's default asks for nothing."""

    memory: int = 0
    """Minimum available memory, in bytes."""
    disk: int = 0
    """Minimum free disk space in the executor's work directory, in bytes."""
    cpu_cores: int = 0
    """Minimum number of logical cores."""
    cpu_freq: float = 0.0
    """Minimum nominal CPU frequency, in MHz."""
    free_cpu: float = 0.0
    """Minimum idle CPU capacity, in cores (:attr:`Capabilities.free_cores`); REC's
    ``free_cpu_capacity`` is this times 100."""
    max_cpu_load: float | None = None
    """Highest acceptable :attr:`Capabilities.cpu_load`; ``None``: any."""
    min_power: float = 0.0
    """Minimum battery charge in percent (nodes without battery count as 100)."""
    no_battery: bool = False
    """Only nodes without a battery (mains-powered) will do."""
    extra: Mapping[str, ExtraValue] = field(default_factory=dict)
    """Facts the node must have: text and bools equal, numbers at least as large."""

    def __post_init__(self) -> None:
        for name in ("memory", "disk", "cpu_cores"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CapabilityError(name, f"must be an integer, got {value!r}")
        _check_non_negative(
            self,
            ("memory", "disk", "cpu_cores", "cpu_freq", "free_cpu", "max_cpu_load"),
            _LARGEST_REQUIREMENT,
        )
        _check_non_negative(self, ("min_power",))
        if self.min_power > 100:
            raise CapabilityError(
                "min_power", f"must be a percentage 0..100, got {self.min_power!r}"
            )
        if not isinstance(self.no_battery, bool):
            raise CapabilityError("no_battery", f"must be a bool, got {self.no_battery!r}")
        _frozen_extra(self, self.extra)

    def unsatisfied_reason(self, capabilities: Capabilities) -> str | None:
        """Why ``capabilities`` do not meet these requirements (one line, the first unmet
        one), or ``None`` if they do."""
        caps = capabilities
        if caps.memory < self.memory:
            return f"needs {self.memory} bytes of memory, node has {caps.memory}"
        if caps.disk < self.disk:
            return f"needs {self.disk} bytes of disk, node has {caps.disk}"
        if caps.cpu_cores < self.cpu_cores:
            return f"needs {self.cpu_cores} CPU cores, node has {caps.cpu_cores}"
        if caps.cpu_freq < self.cpu_freq:
            return f"needs {self.cpu_freq:g} MHz, node has {caps.cpu_freq:g} MHz"
        if caps.free_cores < self.free_cpu:
            return f"needs {self.free_cpu:g} idle cores, node has {caps.free_cores:.2f}"
        if self.max_cpu_load is not None and caps.cpu_load > self.max_cpu_load:
            return f"needs CPU load <= {self.max_cpu_load:g}, node has {caps.cpu_load:.2f}"
        if self.no_battery and caps.has_battery:
            return "needs a mains-powered node, node runs on battery"
        if caps.power < self.min_power:
            return f"needs {self.min_power:g}% battery, node has {caps.power:g}%"
        for key, wanted in self.extra.items():
            if key not in caps.extra:
                return f"needs {key!r}, node does not have it"
            have = caps.extra[key]
            if (
                isinstance(wanted, int | float)
                and isinstance(have, int | float)
                and not isinstance(wanted, bool)
                and not isinstance(have, bool)
            ):
                if have < wanted:
                    return f"needs {key} >= {wanted!r}, node has {have!r}"
            elif type(have) is not type(wanted) or have != wanted:
                return f"needs {key} = {wanted!r}, node has {have!r}"
        return None

    def satisfied_by(self, capabilities: Capabilities) -> bool:
        """Whether ``capabilities`` meet every requirement."""
        return self.unsatisfied_reason(capabilities) is None


def executor_score(capabilities: Capabilities, *, running_jobs: int = 0) -> float:
    """How attractive an executor is for the next job; higher is better, never negative.

    The score is the idle CPU capacity left after the jobs the broker already knows to run
    there (``free_cores - running_jobs``, at least 0.05 so a busy but capable node still ranks
    above nothing), scaled by the CPU frequency in GHz (1 when unknown), with a small bonus
    for memory (``0.1 * log2(1 + GiB)``) and, for battery nodes, a penalty down to half the
    score at an empty battery. Ties are the broker's to break (e.g. by node ID).
    """
    idle = max(0.05, capabilities.free_cores - max(0, running_jobs))
    speed = capabilities.cpu_freq / 1000.0 if capabilities.cpu_freq > 0 else 1.0
    score = idle * speed + 0.1 * math.log2(1.0 + capabilities.memory / 2**30)
    if capabilities.has_battery:
        score *= 0.5 + 0.5 * capabilities.power / 100.0
    return score


def read_local_capabilities(
    workdir: str | os.PathLike[str], *, extra: Mapping[str, ExtraValue] | None = None
) -> Capabilities:
    """This machine's capabilities now, read with psutil (quick: no sampling interval).

    ``disk`` is the free space of the file system holding ``workdir`` (which must exist);
    ``extra`` is passed through (e.g. facts from the node's configuration). Facts the system
    does not expose get neutral values (``cpu_freq`` 0, no battery).
    """
    cores = psutil.cpu_count(logical=True) or 1
    try:
        load1 = os.getloadavg()[0]
    except OSError:  # pragma: no cover - every POSIX system we run on has a load average
        load1 = psutil.cpu_percent(interval=None) / 100.0 * cores
    freq = 0.0
    try:
        reading = psutil.cpu_freq()
    except (OSError, NotImplementedError, RuntimeError):  # pragma: no cover - platform quirks
        reading = None
    if reading is not None:
        freq = float(reading.max or reading.current or 0.0)
    has_battery, power = False, 100.0
    try:
        battery = psutil.sensors_battery()
    except (OSError, NotImplementedError, RuntimeError):  # pragma: no cover - platform quirks
        battery = None
    if battery is not None:
        has_battery = True
        power = min(100.0, max(0.0, float(battery.percent)))
    capabilities = Capabilities(
        memory=int(psutil.virtual_memory().available),
        disk=int(shutil.disk_usage(Path(workdir)).free),
        cpu_load=max(0.0, float(load1) / cores),
        cpu_cores=int(cores),
        cpu_freq=max(0.0, freq) if math.isfinite(freq) else 0.0,
        has_battery=has_battery,
        power=power,
        extra=dict(extra or {}),
    )
    _log.debug("local capabilities: %s", capabilities)
    return capabilities
