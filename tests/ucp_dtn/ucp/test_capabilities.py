"""Capabilities, requirements and the executor score."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.ucp import (
    Capabilities,
    CapabilityError,
    Requirements,
    executor_score,
    read_local_capabilities,
)

from .strategies import capabilities

GIB = 2**30
NODE = Capabilities(
    memory=8 * GIB,
    disk=100 * GIB,
    cpu_load=0.25,
    cpu_cores=4,
    cpu_freq=2400.0,
    extra={"gpu": True, "arch": "x86_64", "sensors": 3},
)


def test_read_local_capabilities(tmp_path: Path) -> None:
    caps = read_local_capabilities(tmp_path, extra={"site": "shelter-3"})
    assert caps.cpu_cores >= 1
    assert caps.memory > 0
    assert caps.disk > 0
    assert caps.cpu_load >= 0
    assert 0 <= caps.power <= 100
    assert caps.extra == {"site": "shelter-3"}
    assert 0 <= caps.free_cores <= caps.cpu_cores


def test_read_local_capabilities_needs_an_existing_workdir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_local_capabilities(tmp_path / "missing")


def test_free_cores() -> None:
    assert NODE.free_cores == 3.0
    assert dataclasses.replace(NODE, cpu_load=1.5).free_cores == 0.0


@pytest.mark.parametrize(
    ("requirements", "reason"),
    [
        (Requirements(), None),
        (Requirements(memory=8 * GIB, disk=GIB, cpu_cores=4, cpu_freq=2400), None),
        (Requirements(memory=9 * GIB), "needs 9663676416 bytes of memory, node has 8589934592"),
        (Requirements(disk=101 * GIB), "needs 108447924224 bytes of disk, node has 107374182400"),
        (Requirements(cpu_cores=8), "needs 8 CPU cores, node has 4"),
        (Requirements(cpu_freq=3000), "needs 3000 MHz, node has 2400 MHz"),
        (Requirements(free_cpu=3.5), "needs 3.5 idle cores, node has 3.00"),
        (Requirements(max_cpu_load=0.2), "needs CPU load <= 0.2, node has 0.25"),
        (Requirements(extra={"gpu": True, "sensors": 2}), None),
        (Requirements(extra={"sensors": 4}), "needs sensors >= 4, node has 3"),
        (Requirements(extra={"arch": "aarch64"}), "needs arch = 'aarch64', node has 'x86_64'"),
        (Requirements(extra={"camera": True}), "needs 'camera', node does not have it"),
        (Requirements(extra={"gpu": 1}), "needs gpu = 1, node has True"),
    ],
)
def test_requirements(requirements: Requirements, reason: str | None) -> None:
    assert requirements.unsatisfied_reason(NODE) == reason
    assert requirements.satisfied_by(NODE) is (reason is None)


def test_battery_requirements() -> None:
    phone = dataclasses.replace(NODE, has_battery=True, power=30.0)
    assert Requirements(min_power=20).satisfied_by(phone)
    assert Requirements(min_power=40).unsatisfied_reason(phone) == "needs 40% battery, node has 30%"
    assert Requirements(no_battery=True).unsatisfied_reason(phone) == (
        "needs a mains-powered node, node runs on battery"
    )
    assert Requirements(no_battery=True, min_power=100).satisfied_by(NODE)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"memory": -1}, "memory"),
        ({"memory": 1.5}, "memory"),
        ({"cpu_cores": True}, "cpu_cores"),
        ({"cpu_load": math.nan}, "cpu_load"),
        ({"power": 101.0}, "power"),
        ({"has_battery": 1}, "has_battery"),
        ({"extra": {"": 1}}, "extra"),
        ({"extra": {"x": [1]}}, r"extra\['x'\]"),
        ({"extra": {"x": math.inf}}, r"extra\['x'\]"),
        ({"extra": [("x", 1)]}, "extra"),
    ],
)
def test_capabilities_are_validated(changes: dict[str, object], field: str) -> None:
    with pytest.raises(CapabilityError, match=f"^{field}: ") as info:
        dataclasses.replace(NODE, **changes)  # type: ignore[arg-type]
    assert info.value.field.startswith(field.split("\\")[0])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"memory": -1}, "memory"),
        ({"cpu_cores": 1.0}, "cpu_cores"),
        ({"free_cpu": -0.5}, "free_cpu"),
        ({"max_cpu_load": -1.0}, "max_cpu_load"),
        ({"min_power": 150}, "min_power"),
        ({"no_battery": "yes"}, "no_battery"),
    ],
)
def test_requirements_are_validated(changes: dict[str, object], field: str) -> None:
    with pytest.raises(CapabilityError, match=f"^{field}: "):
        Requirements(**changes)  # type: ignore[arg-type]


def test_extra_is_read_only_and_compared_by_value() -> None:
    with pytest.raises(TypeError):
        NODE.extra["gpu"] = False  # type: ignore[index]
    assert dataclasses.replace(NODE) == NODE


def test_score_prefers_idle_fast_mains_nodes() -> None:
    idle = dataclasses.replace(NODE, cpu_load=0.0)
    busy = dataclasses.replace(NODE, cpu_load=0.9)
    assert executor_score(idle) > executor_score(NODE) > executor_score(busy)
    assert executor_score(NODE, running_jobs=2) < executor_score(NODE)
    slow = dataclasses.replace(NODE, cpu_freq=1000.0)
    assert executor_score(slow) < executor_score(NODE)
    unknown_freq = dataclasses.replace(NODE, cpu_freq=0.0)
    assert executor_score(unknown_freq) == executor_score(slow)
    on_battery = dataclasses.replace(NODE, has_battery=True, power=10.0)
    assert executor_score(on_battery) < executor_score(NODE)


@settings(max_examples=200)
@given(capabilities, st.integers(0, 64), st.floats(0, 2, allow_nan=False))
def test_score_is_positive_and_monotonic_in_load(
    caps: Capabilities, running: int, extra_load: float
) -> None:
    score = executor_score(caps, running_jobs=running)
    assert score > 0 and math.isfinite(score)
    more_loaded = dataclasses.replace(caps, cpu_load=caps.cpu_load + extra_load)
    assert executor_score(more_loaded, running_jobs=running) <= score
    assert executor_score(caps, running_jobs=running + 1) <= score


@settings(max_examples=200)
@given(capabilities)
def test_capabilities_satisfy_empty_and_their_own_requirements(caps: Capabilities) -> None:
    assert Requirements().satisfied_by(caps)
    own = Requirements(
        memory=caps.memory,
        disk=caps.disk,
        cpu_cores=caps.cpu_cores,
        cpu_freq=caps.cpu_freq,
        free_cpu=caps.free_cores,
        max_cpu_load=caps.cpu_load,
        min_power=caps.power,
        extra=caps.extra,
    )
    assert own.unsatisfied_reason(caps) is None
