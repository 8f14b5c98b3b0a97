"""The WebAssembly job runtime of the executor: WASI modules under limits, in worker processes.

* :class:`WorkerPool` — trio-facing: a warm pool of worker processes;
  ``await pool.execute(spec)`` runs a job without blocking the event loop. A worker that overstays
  a job's wall-clock limit is killed and replaced; a crashed one is replaced.
* :class:`JobSandbox` — the blocking core each worker uses (usable in-process for tools and tests):
  ``sandbox.run_job(spec)``.
* :class:`RunSpec` in, :class:`RunOutcome` out; :class:`RunStatus` says how a run ended, and only
  ``RunStatus.OK`` is success (limits hit: OUT_OF_FUEL, TIMEOUT, MEMORY_LIMIT).
* :class:`SandboxConfig` — engine settings; :class:`FuelMetering` says which runs pay for fuel
  metering (by default only those with a fuel budget).
* :class:`ModuleCache` — compiled modules by SHA-256 of the wasm bytes, in memory and in a cache
  directory shared by the workers, integrity-checked before loading.

The job sees its job directory as ``/`` and ``.`` and nothing else of the host; stdout and stderr
are captured into size-bounded files (by default ``stdout`` and ``stderr`` in the job directory).
"""

from .cache import LoadedModule, ModuleCache, module_digest
from .errors import (
    InvalidModuleError,
    ModuleNotCachedError,
    PoolClosedError,
    RuntimeSetupError,
    WasmRuntimeError,
    WorkerStartError,
)
from .pool import PoolStatistics, WorkerPool
from .sandbox import JobSandbox
from .spec import (
    DEFAULT_FILE_SIZE_LIMIT,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_STDERR_LIMIT,
    DEFAULT_STDOUT_LIMIT,
    DEFAULT_TABLE_ELEMENTS_LIMIT,
    DEFAULT_TIMEOUT,
    STDERR_NAME,
    STDOUT_NAME,
    FuelMetering,
    ModuleSource,
    RunOutcome,
    RunSpec,
    RunStatus,
    SandboxConfig,
)

__all__ = [
    "DEFAULT_FILE_SIZE_LIMIT",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_STDERR_LIMIT",
    "DEFAULT_STDOUT_LIMIT",
    "DEFAULT_TABLE_ELEMENTS_LIMIT",
    "DEFAULT_TIMEOUT",
    "STDERR_NAME",
    "STDOUT_NAME",
    "FuelMetering",
    "InvalidModuleError",
    "JobSandbox",
    "LoadedModule",
    "ModuleCache",
    "ModuleNotCachedError",
    "ModuleSource",
    "PoolClosedError",
    "PoolStatistics",
    "RunOutcome",
    "RunSpec",
    "RunStatus",
    "RuntimeSetupError",
    "SandboxConfig",
    "WasmRuntimeError",
    "WorkerPool",
    "WorkerStartError",
    "module_digest",
]
