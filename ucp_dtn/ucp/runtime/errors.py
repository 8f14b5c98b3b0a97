"""Errors of the job runtime.

A job that fails is not an error: it is a :class:`~ucp_dtn.ucp.runtime.RunOutcome` with a failure
status. These exceptions are for the host side: the caller misused the API, the pool is not
running, a worker could not be started.
"""

from __future__ import annotations

__all__ = [
    "InvalidModuleError",
    "ModuleNotCachedError",
    "PoolClosedError",
    "RuntimeSetupError",
    "WasmRuntimeError",
    "WorkerStartError",
]


class WasmRuntimeError(Exception):
    """Base class of the job runtime's errors."""


class InvalidModuleError(WasmRuntimeError):
    """The wasm bytes do not compile or link (bad binary, non-WASI imports, no entry)."""


class ModuleNotCachedError(WasmRuntimeError):
    """A module was asked for by digest alone, and neither memory nor the cache holds it."""


class RuntimeSetupError(WasmRuntimeError):
    """The host could not prepare a run (job directory, stdin or output files)."""


class PoolClosedError(WasmRuntimeError):
    """The worker pool is not running (not started yet, or shut down)."""


class WorkerStartError(WasmRuntimeError):
    """A worker process did not start or did not report ready."""
