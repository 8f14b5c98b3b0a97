"""What a job run asks for (:class:`RunSpec`) and what came of it (:class:`RunOutcome`).

Both are plain frozen values: the executor builds a :class:`RunSpec` from a JobInfo and the job
directory it prepared, hands it to ``WorkerPool.execute`` (or ``JobSandbox.run_job``), and gets a
:class:`RunOutcome` back. Every way a run can end has its own :class:`RunStatus`; only
:attr:`RunStatus.OK` is success.

:class:`SandboxConfig` holds the engine-wide choices (fuel metering, epoch interruption) that a
compiled module depends on, so it is fixed per pool rather than per job. Fuel metering is paid for
only by jobs that ask for a fuel budget (:class:`FuelMetering`): a sandbox keeps a second engine,
started on the first such job, that meters fuel.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

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
    "ModuleSource",
    "RunOutcome",
    "RunSpec",
    "RunStatus",
    "SandboxConfig",
]

#: Wall-clock limit of a job, in seconds, unless its spec says otherwise.
DEFAULT_TIMEOUT = 60.0
#: Linear memory limit, in bytes. Without a limit a wasm32 guest may take 4 GiB.
DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024
#: Table elements limit (each element takes 8 bytes of host memory).
DEFAULT_TABLE_ELEMENTS_LIMIT = 100_000
#: Bytes of stdout kept; the rest is discarded and the outcome says it was truncated.
DEFAULT_STDOUT_LIMIT = 16 * 1024 * 1024
#: Bytes of stderr kept.
DEFAULT_STDERR_LIMIT = 1024 * 1024
#: Largest file a job may write, in bytes (enforced in pool workers).
DEFAULT_FILE_SIZE_LIMIT = 1024 * 1024 * 1024
#: File name of the captured stdout inside the job directory, unless the spec names a path.
STDOUT_NAME = "stdout"
#: File name of the captured stderr inside the job directory, unless the spec names a path.
STDERR_NAME = "stderr"


class RunStatus(enum.StrEnum):
    """How a run ended. Only :attr:`OK` is success; every limit hit has its own member."""

    #: The entry function returned, or the guest called ``proc_exit(0)``.
    OK = "ok"
    #: The guest called ``proc_exit(n)`` with ``n != 0`` (see :attr:`RunOutcome.exit_code`).
    EXIT = "exit"
    #: The guest trapped (unreachable, division by zero, out-of-bounds access, stack overflow, an
    #: invalid ``proc_exit`` status, a failing host call...).
    TRAP = "trap"
    #: The fuel budget (:attr:`RunSpec.fuel`) ran out.
    OUT_OF_FUEL = "out-of-fuel"
    #: The wall-clock limit (:attr:`RunSpec.timeout`) passed: the epoch deadline interrupted the
    #: guest, or the pool killed the worker that ran it.
    TIMEOUT = "timeout"
    #: The guest needed more linear memory or table space than allowed: instantiation was refused,
    #: or the guest failed while its memory was at the limit (a refused ``memory.grow``).
    MEMORY_LIMIT = "memory-limit"
    #: The bytes are not a WebAssembly module this runtime accepts (does not parse, does not
    #: validate, imports something other than WASI preview 1, has no entry function).
    INVALID_MODULE = "invalid-module"
    #: The worker process running the job died (crashed or was killed from outside).
    WORKER_CRASHED = "worker-crashed"
    #: The host could not set the run up (missing job directory, unwritable stdout file,
    #: unreadable stdin file). Nothing of the guest ran.
    SETUP_FAILED = "setup-failed"


class ModuleSource(enum.StrEnum):
    """Where the compiled module of a run came from."""

    #: The worker still held it in memory from an earlier run.
    MEMORY = "memory"
    #: Deserialised from the compiled-module cache directory.
    DISK = "disk"
    #: Compiled from the wasm bytes for this run (and then cached).
    COMPILED = "compiled"
    #: No module was loaded (invalid module, setup failure, crash before loading).
    NONE = "none"


class FuelMetering(enum.StrEnum):
    """Which runs pay for fuel metering.

    Metering instruments every loop and call of the compiled code: measured on the audio
    classifier (``bench/wasm_runtime.py``, section 3) it makes the guest about 1.2x slower alone
    and adds 10-14% on top of epoch interruption. A module compiled for one engine cannot run
    on the other, so a sandbox that meters some runs and not others keeps two engines (and two
    compiled copies of each module it ran both ways, cached under different names).
    """

    #: Runs with a fuel budget (:attr:`RunSpec.fuel`) run on a fuel-metering engine, started on
    #: the first such run; the others run unmetered (their :attr:`RunOutcome.fuel_consumed` is
    #: None).
    ON_DEMAND = "on-demand"
    #: Every run is metered: :attr:`RunOutcome.fuel_consumed` is reported for all of them (one
    #: engine; the behaviour before fuel on demand).
    ALWAYS = "always"
    #: No run is metered; a run with a fuel budget is refused (ValueError).
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Engine-wide settings. Compiled modules depend on them, so they are fixed per pool."""

    fuel_metering: FuelMetering = FuelMetering.ON_DEMAND
    """Which runs are metered with fuel, so that :attr:`RunSpec.fuel` can bound their CPU work
    deterministically (see :class:`FuelMetering` for the cost). A plain string
    (``"on-demand"``) is accepted."""
    epoch_interruption: bool = True
    """Interrupt a guest at its wall-clock deadline from inside the worker: a loop or call
    checks the engine's epoch (measured on the audio classifier: about 1.2x slower than
    without). Without it a :class:`~ucp_dtn.ucp.runtime.WorkerPool` enforces
    :attr:`RunSpec.timeout` by killing the worker at the limit (and replacing it), which is how
    the executor runs jobs by default; :meth:`JobSandbox.run_job
    <ucp_dtn.ucp.runtime.JobSandbox.run_job>` in-process has no worker to kill, so there it is
    the only way to stop a guest: on by default, and off means no wall-clock limit at all."""
    resident_modules: int = 32
    """Compiled modules each worker keeps in memory per engine (least recently used ones are
    dropped)."""
    max_wasm_stack: int | None = None
    """Maximum wasm stack in bytes (None: wasmtime's default, 512 KiB); deeper recursion traps."""

    def __post_init__(self) -> None:
        # From JSON (the worker's command line) the metering arrives as its string value.
        object.__setattr__(self, "fuel_metering", FuelMetering(self.fuel_metering))
        if self.resident_modules < 1:
            raise ValueError(f"resident_modules must be >= 1, not {self.resident_modules}")
        if self.max_wasm_stack is not None and self.max_wasm_stack < 4096:
            raise ValueError(f"max_wasm_stack must be >= 4096 bytes, not {self.max_wasm_stack}")

    def meters(self, spec: RunSpec) -> bool:
        """Whether ``spec`` runs on the fuel-metering engine (ValueError if it asks for a fuel
        budget and this configuration meters nothing)."""
        if spec.fuel is not None:
            if self.fuel_metering is FuelMetering.NEVER:
                raise ValueError("a fuel budget needs fuel metering (fuel_metering is 'never')")
            return True
        return self.fuel_metering is FuelMetering.ALWAYS

    def fingerprint(self, *, metered: bool) -> str:
        """A short string naming the settings a compiled module depends on, for the engine
        that meters fuel (``metered``) or the one that does not."""
        stack = "d" if self.max_wasm_stack is None else str(self.max_wasm_stack)
        return f"f{int(metered)}e{int(self.epoch_interruption)}s{stack}"


def _check_text(what: str, value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{what} must not contain NUL: {value!r}")


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of a WASI (preview 1) command module inside a job directory.

    The guest sees the job directory as ``/`` (and as ``.``) and nothing else of the host.
    """

    wasm: bytes
    """The WebAssembly binary (``\\0asm`` magic; WAT text is not accepted). A bytearray or
    memoryview is copied to bytes."""
    job_dir: Path
    """Host directory preopened as the guest's ``/`` and ``.``; must exist."""
    args: tuple[str, ...] = ()
    """Arguments after ``argv[0]``."""
    env: tuple[tuple[str, str], ...] = ()
    """Environment variables as ``(name, value)`` pairs, in order. Nothing of the host's
    environment is passed through."""
    stdin: bytes = b""
    """Bytes the guest reads on stdin (empty: stdin is at end of file)."""
    stdin_path: Path | None = None
    """A host file to use as stdin instead of :attr:`stdin` (the guest cannot see its path)."""
    program_name: str | None = "job.wasm"
    """``argv[0]``; ``None``: no program name, the guest's argv is exactly :attr:`args` (as
    REC passes it: a plan that wants an ``argv[0]`` writes one)."""
    entry: str = "_start"
    """Exported function to call after instantiation."""
    fuel: int | None = None
    """Fuel budget (roughly one unit per wasm instruction); None: unlimited, and the run is not
    metered unless :attr:`SandboxConfig.fuel_metering` is ``ALWAYS``. Refused (ValueError) when
    it is ``NEVER``."""
    timeout: float = DEFAULT_TIMEOUT
    """Wall-clock limit in seconds for instantiation plus the entry call."""
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    """Maximum linear memory in bytes (the guest gets one memory)."""
    table_elements_limit: int = DEFAULT_TABLE_ELEMENTS_LIMIT
    """Maximum elements per table."""
    stdout_limit: int = DEFAULT_STDOUT_LIMIT
    """Bytes of stdout kept in :attr:`stdout_path`; later bytes are discarded (the guest still
    sees its writes succeed) and :attr:`RunOutcome.stdout_truncated` is set."""
    stderr_limit: int = DEFAULT_STDERR_LIMIT
    """Bytes of stderr kept in :attr:`stderr_path`."""
    stdout_path: Path | None = None
    """Where stdout goes; None: ``<job_dir>/stdout``. Never follows a symlink."""
    stderr_path: Path | None = None
    """Where stderr goes; None: ``<job_dir>/stderr``. Never follows a symlink."""
    job_dir_writable: bool = True
    """False preopens the job directory read-only."""
    file_size_limit: int | None = DEFAULT_FILE_SIZE_LIMIT
    """Largest file the job may write, in bytes (a write beyond fails with EFBIG); None: no
    limit. Enforced by the pool's workers (a process-wide ``RLIMIT_FSIZE`` while the guest runs);
    :class:`~ucp_dtn.ucp.runtime.JobSandbox` used in-process does not enforce it."""

    def __post_init__(self) -> None:
        # Accept str paths and lists where paths and tuples are meant: normalise once here.
        object.__setattr__(self, "job_dir", Path(self.job_dir))
        for name in ("stdin_path", "stdout_path", "stderr_path"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "env", tuple(tuple(pair) for pair in self.env))
        for name in ("wasm", "stdin"):
            if isinstance(getattr(self, name), bytearray | memoryview):
                object.__setattr__(self, name, bytes(getattr(self, name)))
        for name in ("wasm", "stdin"):
            if not isinstance(getattr(self, name), bytes):
                raise TypeError(f"{name} must be bytes, not {type(getattr(self, name)).__name__}")
        for arg in self.args:
            _check_text("argument", arg)
        if self.program_name is not None:
            _check_text("program name", self.program_name)
        for pair in self.env:
            if len(pair) != 2:
                raise ValueError(f"environment entries are (name, value) pairs, not {pair!r}")
            name, value = pair
            _check_text("environment variable name", name)
            _check_text("environment variable value", value)
            if not name or "=" in name:
                raise ValueError(f"invalid environment variable name {name!r}")
        if self.stdin and self.stdin_path is not None:
            raise ValueError("give stdin bytes or stdin_path, not both")
        if self.fuel is not None and self.fuel <= 0:
            raise ValueError(f"fuel must be positive or None, not {self.fuel}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        for name in ("memory_limit", "table_elements_limit", "stdout_limit", "stderr_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.file_size_limit is not None and self.file_size_limit < 0:
            raise ValueError("file_size_limit must not be negative")
        if not self.entry:
            raise ValueError("entry must name an exported function")
        if self.resolved_stdout_path() == self.resolved_stderr_path():
            raise ValueError("stdout and stderr must go to different files")

    def resolved_stdout_path(self) -> Path:
        """The file stdout is captured in."""
        return self.stdout_path if self.stdout_path is not None else self.job_dir / STDOUT_NAME

    def resolved_stderr_path(self) -> Path:
        """The file stderr is captured in."""
        return self.stderr_path if self.stderr_path is not None else self.job_dir / STDERR_NAME


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one run ended. Check :attr:`ok` (or :attr:`status`) before using the results."""

    status: RunStatus
    """Why the run ended; only :attr:`RunStatus.OK` is success."""
    exit_code: int | None
    """0 for OK, the ``proc_exit`` status for EXIT (and for a MEMORY_LIMIT detected at a non-zero
    exit), otherwise None."""
    message: str
    """One line for people: the trap or error text, the limit that was hit; empty for OK."""
    detail: str = ""
    """Longer diagnostic text (wasmtime's full error with the wasm backtrace), bounded."""
    trap_code: str | None = None
    """wasmtime's trap code name (``UNREACHABLE``, ``OUT_OF_FUEL``, ``INTERRUPT``...) if a trap
    ended the run."""
    stdout_path: Path | None = None
    """File holding the captured stdout (None if it was never created)."""
    stderr_path: Path | None = None
    """File holding the captured stderr (None if it was never created)."""
    stdout_bytes: int = 0
    """Bytes kept in :attr:`stdout_path`."""
    stderr_bytes: int = 0
    """Bytes kept in :attr:`stderr_path`."""
    stdout_truncated: bool = False
    """The guest wrote more than :attr:`RunSpec.stdout_limit`; the excess was dropped."""
    stderr_truncated: bool = False
    """The guest wrote more than :attr:`RunSpec.stderr_limit`; the excess was dropped."""
    fuel_consumed: int | None = None
    """Fuel the guest used. None when the run was not metered (no fuel budget, under the
    default :attr:`FuelMetering.ON_DEMAND`), if nothing ran, or after a timeout."""
    memory_bytes: int | None = None
    """Size of the guest's exported linear memory when it stopped (None if unknown)."""
    run_time: float = 0.0
    """Seconds spent instantiating and running the guest."""
    load_time: float = 0.0
    """Seconds spent getting the compiled module (compile, cache load or memory hit)."""
    module_source: ModuleSource = ModuleSource.NONE
    """Where the compiled module came from."""

    @property
    def ok(self) -> bool:
        """True only if the guest ran to completion with exit status 0."""
        return self.status is RunStatus.OK
