"""Running one WASI job in this process, under limits, and saying exactly how it ended.

Theory of operation
-------------------
A :class:`JobSandbox` owns a wasmtime engine (epoch interruption as its :class:`SandboxConfig`
says), a linker with WASI preview 1, and a :class:`ModuleCache` — and, under the default
:attr:`FuelMetering.ON_DEMAND`, a second such engine that meters fuel, started on the first run
with a fuel budget. A run without a budget does not pay for metering (the classifier runs about
10% faster). A run:

1. picks the engine (with a fuel budget: the metering one), gets the module compiled for it
   (memory, cache directory, or compile) — failures are INVALID_MODULE;
2. prepares WASI: ``argv``, the given environment only, stdin from bytes or a host file, stdout
   and stderr into size-bounded files, and the job directory preopened as ``/`` and ``.``. The
   guest can name nothing else: wasmtime resolves every path beneath a preopened directory and
   refuses ``..`` above it, absolute paths and symlinks leading out (EPERM);
3. makes a fresh store with the limits of the spec: linear memory and table elements, one
   instance, one memory, a few tables; the fuel budget; an epoch deadline one tick away;
4. arms the epoch watchdog (a thread that bumps the engine's epoch when the wall-clock limit
   passes, which interrupts the guest at its next loop back-edge or function entry),
   instantiates, calls the entry function, disarms;
5. classifies the ending: return or ``proc_exit(0)`` → OK, ``proc_exit(n)`` → EXIT, the fuel trap
   → OUT_OF_FUEL, the epoch trap → TIMEOUT, a refused instantiation or a failure with linear
   memory at its limit → MEMORY_LIMIT, any other trap → TRAP.

What the epoch cannot do: interrupt a guest blocked inside a host call (``poll_oneoff`` sleeping).
That is why jobs run in worker processes that the pool kills at the deadline (``pool.py``) — and
since that kill alone enforces the limit, the executor's workers run without epoch interruption
(:attr:`SandboxConfig.epoch_interruption` off: steps 3 and 4 have no deadline and no watchdog),
which makes guests about 20% faster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

from ...private_files import FILE_MODE
from .cache import LoadedModule, ModuleCache, module_digest, summarize_wasmtime_error
from .errors import InvalidModuleError, RuntimeSetupError
from .spec import FuelMetering, ModuleSource, RunOutcome, RunSpec, RunStatus, SandboxConfig

__all__ = ["JobSandbox"]

logger = logging.getLogger(__name__)

# One instance (the job's module; WASI is host functions, not an instance), one linear memory
# (so RunSpec.memory_limit bounds all of the guest's memory: wasmtime's limit is per memory), and
# a few tables (RunSpec.table_elements_limit is per table too).
_MAX_INSTANCES = 1
_MAX_MEMORIES = 1
_MAX_TABLES = 4
_WASM_PAGE = 65536
_UNLIMITED_FUEL = 2**64 - 1
_DETAIL_LIMIT = 4096
_LIMIT_MESSAGES = ("exceeds memory limits", "exceeds table limits", "resource limit exceeded")


class _EpochWatchdog:
    """Bumps the engine's epoch when the armed deadline passes; one thread, reused for every run.

    The epoch only moves while a run is armed, and arming, disarming and bumping all happen under
    one lock, so a late bump can never interrupt the next run.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._waiting_until = float("inf")
        self._fired = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def arm(self, timeout: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="wasm-epoch-watchdog", daemon=True
                )
                self._thread.start()
            self._deadline = time.monotonic() + timeout
            self._fired = False
            # Wake the thread only if it sleeps past the new deadline (it usually sleeps until
            # an older, later deadline, then sees the new one and sleeps on).
            if self._deadline < self._waiting_until:
                self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True if the deadline passed and the epoch was bumped."""
        with self._cond:
            self._deadline = None
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._waiting_until = float("inf")
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._waiting_until = self._deadline
                    self._cond.wait(remaining)
                    continue
                self._engine.increment_epoch()
                self._fired = True
                self._deadline = None


class _BoundedOutput:
    """A guest output stream captured into a file, keeping at most ``limit`` bytes.

    Used as a wasmtime custom output callback: it never raises, and writes past the limit are
    dropped (the guest sees them succeed) and flagged. Unbuffered: what the guest wrote is in the
    file at once, where the executor follows it while the job runs (``job-output``).
    """

    def __init__(self, path: Path, limit: int) -> None:
        # Replace whatever is there (never write through a symlink or into a FIFO or device).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._file = open(os.open(path, flags, FILE_MODE), "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self.path = path
        self._limit = limit
        self.kept = 0
        self.truncated = False

    def write(self, data: bytes) -> None:
        room = self._limit - self.kept
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if not data:
            return
        try:
            view = memoryview(data)
            while view:
                written = self._file.write(view)
                if not written:
                    raise OSError("the file took no bytes")
                view = view[written:]
        except OSError as exc:
            logger.warning("cannot write %s: %s", self.path, exc)
            self.truncated = True
            self._limit = self.kept  # stop trying
        else:
            self.kept += len(data)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            logger.warning("cannot write %s: %s", self.path, exc)
            self.truncated = True


@dataclasses.dataclass(slots=True)
class _Ending:
    status: RunStatus
    exit_code: int | None = None
    message: str = ""
    detail: str = ""
    trap_code: str | None = None


class _Engine:
    """One wasmtime engine, its WASI linker, its compiled modules and its epoch watchdog."""

    def __init__(self, config: SandboxConfig, cache_dir: Path | None, *, metered: bool) -> None:
        self.metered = metered
        engine_config = wasmtime.Config()
        engine_config.consume_fuel = metered
        engine_config.epoch_interruption = config.epoch_interruption
        # No copy-on-write memory images: they live in memfds that wasmtime writes on a module's
        # first instantiation, which the workers' RLIMIT_FSIZE (RunSpec.file_size_limit) would
        # refuse for modules with large data segments. Copying the data segments instead costs
        # microseconds for the data sizes jobs have.
        engine_config.memory_init_cow = False
        if config.max_wasm_stack is not None:
            engine_config.max_wasm_stack = config.max_wasm_stack
        self.engine = wasmtime.Engine(engine_config)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.cache = ModuleCache(
            self.engine,
            self.linker,
            cache_dir,
            fingerprint=config.fingerprint(metered=metered),
            resident=config.resident_modules,
        )
        self.watchdog = _EpochWatchdog(self.engine) if config.epoch_interruption else None

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()


class JobSandbox:
    """Runs WASI modules in this process, one at a time, each in a fresh store with limits.

    Blocking: call it from a worker process (see :class:`~ucp_dtn.ucp.runtime.WorkerPool`) or a
    thread, never from the event loop.
    """

    def __init__(self, cache_dir: Path | None = None, config: SandboxConfig | None = None) -> None:
        """Create the engine for runs without a fuel budget; compiled modules are cached in
        ``cache_dir`` if given. The fuel-metering engine (:attr:`FuelMetering.ON_DEMAND`) is
        created on the first run that needs it."""
        self.config = config if config is not None else SandboxConfig()
        """The engine-wide settings (fuel, epoch interruption, stack...), fixed for the
        sandbox's life: its compiled modules depend on them."""
        self._cache_dir = cache_dir
        self._engines: dict[bool, _Engine] = {}
        self._default = self._engine(metered=self.config.fuel_metering is FuelMetering.ALWAYS)

    @property
    def cache(self) -> ModuleCache:
        """The compiled-module cache of the engine that runs jobs without a fuel budget (its
        counters feed statistics)."""
        return self._default.cache

    @property
    def metered_cache(self) -> ModuleCache | None:
        """The compiled-module cache of the fuel-metering engine (None while there is none)."""
        engine = self._engines.get(True)
        return engine.cache if engine is not None else None

    def _engine(self, *, metered: bool) -> _Engine:
        engine = self._engines.get(metered)
        if engine is None:
            began = time.perf_counter()
            engine = self._engines[metered] = _Engine(self.config, self._cache_dir, metered=metered)
            logger.debug(
                "wasmtime engine up (fuel metering %s) in %.1f ms",
                "on" if metered else "off",
                (time.perf_counter() - began) * 1e3,
            )
        return engine

    def close(self) -> None:
        """Stop the watchdog threads."""
        for engine in self._engines.values():
            engine.close()

    def check_spec(self, spec: RunSpec) -> None:
        """Raise ValueError if ``spec`` asks for something this sandbox cannot do."""
        self.config.meters(spec)

    def load(
        self,
        digest: bytes,
        wasm: bytes | None,
        *,
        fuel_budget: bool = False,
        on_compile: Callable[[], None] | None = None,
    ) -> tuple[LoadedModule, ModuleSource]:
        """The module for ``digest`` compiled for the engine of a run with (``fuel_budget``) or
        without a fuel budget (see :meth:`ModuleCache.get`). ValueError if a fuel budget cannot
        be metered here."""
        if fuel_budget and self.config.fuel_metering is FuelMetering.NEVER:
            raise ValueError("a fuel budget needs fuel metering (fuel_metering is 'never')")
        metered = fuel_budget or self.config.fuel_metering is FuelMetering.ALWAYS
        return self._engine(metered=metered).cache.get(digest, wasm, on_compile=on_compile)

    def run_job(self, spec: RunSpec) -> RunOutcome:
        """Compile or fetch ``spec.wasm``, run it, and report how it ended."""
        self.check_spec(spec)
        started = time.perf_counter()
        try:
            loaded, source = self.load(
                module_digest(spec.wasm), spec.wasm, fuel_budget=spec.fuel is not None
            )
        except InvalidModuleError as exc:
            return RunOutcome(
                status=RunStatus.INVALID_MODULE,
                exit_code=None,
                message=str(exc),
                load_time=time.perf_counter() - started,
            )
        load_time = time.perf_counter() - started
        return self.run_loaded(spec, loaded, source=source, load_time=load_time)

    def run_loaded(
        self,
        spec: RunSpec,
        loaded: LoadedModule,
        *,
        source: ModuleSource = ModuleSource.MEMORY,
        load_time: float = 0.0,
    ) -> RunOutcome:
        """Run an already loaded module as ``spec`` says (``spec.wasm`` is not looked at).

        ``loaded`` must come from :meth:`load` for this spec's fuel budget (ValueError if it was
        compiled for the other engine)."""
        engine = self._engine(metered=self.config.meters(spec))
        if loaded.engine is not engine.engine:
            raise ValueError(
                "the module was loaded for the engine of runs "
                + ("without" if engine.metered else "with")
                + " fuel metering"
            )
        job_dir = Path(os.path.abspath(spec.job_dir))
        outputs: list[_BoundedOutput] = []
        stdin_tmp: str | None = None
        fuel_consumed: int | None = None
        memory_bytes: int | None = None
        run_time = 0.0
        try:
            try:
                if not job_dir.is_dir():
                    raise RuntimeSetupError(f"job directory {job_dir} does not exist")
                stdout = _BoundedOutput(
                    Path(os.path.abspath(spec.resolved_stdout_path())), spec.stdout_limit
                )
                outputs.append(stdout)
                stderr = _BoundedOutput(
                    Path(os.path.abspath(spec.resolved_stderr_path())), spec.stderr_limit
                )
                outputs.append(stderr)
                wasi = wasmtime.WasiConfig()
                program = () if spec.program_name is None else (spec.program_name,)
                wasi.argv = [*program, *spec.args]
                wasi.env = [list(pair) for pair in spec.env]
                if spec.stdin_path is not None:
                    if not spec.stdin_path.is_file():
                        raise RuntimeSetupError(f"stdin file {spec.stdin_path} does not exist")
                    wasi.stdin_file = str(spec.stdin_path)
                elif spec.stdin:
                    stdin_tmp = _write_temporary(spec.stdin)
                    wasi.stdin_file = stdin_tmp
                    # wasmtime opened it just now: remove the name at once, so not even a worker
                    # killed mid-job leaves the file behind.
                    os.unlink(stdin_tmp)
                    stdin_tmp = None
                wasi.stdout_custom = stdout.write
                wasi.stderr_custom = stderr.write
                wasi.preopen_dir(str(job_dir), "/", spec.job_dir_writable)
                wasi.preopen_dir(str(job_dir), ".", spec.job_dir_writable)
            except (OSError, RuntimeSetupError, wasmtime.WasmtimeError) as exc:
                logger.info("job setup failed: %s", exc)
                ending = _Ending(RunStatus.SETUP_FAILED, message=f"setup failed: {exc}")
            else:
                store = wasmtime.Store(engine.engine)
                try:
                    ending, run_time, memory_bytes, fuel_left = self._execute(
                        spec, engine, loaded, store, wasi
                    )
                    # wasmtime does not write the fuel counter back when an epoch interrupt
                    # unwinds the guest: after a timeout the figure would read 0.
                    if fuel_left is not None and ending.status is not RunStatus.TIMEOUT:
                        fuel_consumed = _fuel_budget(spec) - fuel_left
                finally:
                    store.close()
        finally:
            for output in outputs:
                output.close()
            if stdin_tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(stdin_tmp)
        stdout_capture = outputs[0] if outputs else None
        stderr_capture = outputs[1] if len(outputs) > 1 else None
        return RunOutcome(
            status=ending.status,
            exit_code=ending.exit_code,
            message=ending.message,
            detail=ending.detail,
            trap_code=ending.trap_code,
            stdout_path=stdout_capture.path if stdout_capture else None,
            stderr_path=stderr_capture.path if stderr_capture else None,
            stdout_bytes=stdout_capture.kept if stdout_capture else 0,
            stderr_bytes=stderr_capture.kept if stderr_capture else 0,
            stdout_truncated=stdout_capture.truncated if stdout_capture else False,
            stderr_truncated=stderr_capture.truncated if stderr_capture else False,
            fuel_consumed=fuel_consumed,
            memory_bytes=memory_bytes,
            run_time=run_time,
            load_time=load_time,
            module_source=source,
        )

    def _execute(
        self,
        spec: RunSpec,
        engine: _Engine,
        loaded: LoadedModule,
        store: wasmtime.Store,
        wasi: wasmtime.WasiConfig,
    ) -> tuple[_Ending, float, int | None, int | None]:
        """Instantiate and call the entry; (ending, run time, memory size, fuel left)."""
        store.set_wasi(wasi)
        store.set_limits(
            memory_size=spec.memory_limit,
            table_elements=spec.table_elements_limit,
            instances=_MAX_INSTANCES,
            tables=_MAX_TABLES,
            memories=_MAX_MEMORIES,
        )
        if engine.metered:
            store.set_fuel(_fuel_budget(spec))
        if self.config.epoch_interruption:
            store.set_epoch_deadline(1)
        instance: wasmtime.Instance | None = None
        started = time.perf_counter()
        if engine.watchdog is not None:
            engine.watchdog.arm(spec.timeout)
        try:
            instance = loaded.pre.instantiate(store)
            entry = instance.exports(store).get(spec.entry)
            if not isinstance(entry, wasmtime.Func) or entry.type(store).params:
                ending = _Ending(
                    RunStatus.INVALID_MODULE,
                    message=f"the module exports no function {spec.entry!r} without parameters",
                )
            else:
                entry(store)
                ending = _Ending(RunStatus.OK, exit_code=0)
        except wasmtime.ExitTrap as exc:
            if exc.code == 0:
                ending = _Ending(RunStatus.OK, exit_code=0)
            else:
                ending = _Ending(
                    RunStatus.EXIT, exit_code=exc.code, message=f"exited with status {exc.code}"
                )
        except wasmtime.Trap as exc:
            ending = _classify_trap(spec, exc)
        except wasmtime.WasmtimeError as exc:
            text = str(exc)
            status = (
                RunStatus.MEMORY_LIMIT
                if any(marker in text for marker in _LIMIT_MESSAGES)
                else RunStatus.TRAP
            )
            ending = _Ending(
                status, message=summarize_wasmtime_error(text), detail=text[:_DETAIL_LIMIT]
            )
        finally:
            if engine.watchdog is not None:
                engine.watchdog.disarm()
            run_time = time.perf_counter() - started
        memory_bytes = _memory_size(store, instance)
        if (
            ending.status in (RunStatus.TRAP, RunStatus.EXIT)
            and memory_bytes is not None
            and memory_bytes + _WASM_PAGE > spec.memory_limit
        ):
            # wasmtime refuses memory.grow at the limit by returning -1, without a trap; a guest
            # that then fails (malloc returned NULL → abort) failed because of the limit.
            ending.status = RunStatus.MEMORY_LIMIT
            ending.message = (
                f"linear memory at its limit ({memory_bytes} of {spec.memory_limit} bytes)"
                f" when the job failed: {ending.message}"
            )
        fuel_left = store.get_fuel() if engine.metered else None
        return ending, run_time, memory_bytes, fuel_left


def _classify_trap(spec: RunSpec, exc: wasmtime.Trap) -> _Ending:
    text = str(exc)
    code = exc.trap_code
    name = code.name if code is not None else None
    detail = text[:_DETAIL_LIMIT]
    if code is wasmtime.TrapCode.OUT_OF_FUEL:
        return _Ending(
            RunStatus.OUT_OF_FUEL,
            message=f"fuel budget of {spec.fuel} exhausted",
            detail=detail,
            trap_code=name,
        )
    if code is wasmtime.TrapCode.INTERRUPT:
        return _Ending(
            RunStatus.TIMEOUT,
            message=f"wall-clock limit of {spec.timeout:g} s exceeded",
            detail=detail,
            trap_code=name,
        )
    return _Ending(
        RunStatus.TRAP, message=summarize_wasmtime_error(text), detail=detail, trap_code=name
    )


def _fuel_budget(spec: RunSpec) -> int:
    return spec.fuel if spec.fuel is not None else _UNLIMITED_FUEL


def _memory_size(store: wasmtime.Store, instance: wasmtime.Instance | None) -> int | None:
    if instance is None:
        return None
    for extern in instance.exports(store).by_index:
        if isinstance(extern, wasmtime.Memory):
            return extern.data_len(store)
    return None


def _write_temporary(data: bytes) -> str:
    fd, name = tempfile.mkstemp(prefix="ucp-stdin-")
    try:
        with open(fd, "wb") as file:
            file.write(data)
    except BaseException:
        os.unlink(name)
        raise
    return name
