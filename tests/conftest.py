"""Shared pytest configuration for ucp-dtn's tests.

Hypothesis runs derandomized by default, so every run of the suite (CI included) explores the same
examples: the suite is deterministic. Set ``HYPOTHESIS_PROFILE=explore`` to search with fresh random
seeds (and more examples) when hunting for bugs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "deterministic",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    derandomize=False,
    deadline=None,
    max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

# Client agents started by the tests' ucp commands (one per client home) stop by themselves soon
# after their last command, should a test not stop them (it fails half-way).
os.environ.setdefault("UCP_AGENT_IDLE", "30s")
os.environ.setdefault("UCP_AGENT_LINGER", "30s")
