"""Compiled modules by content hash: a small LRU in memory, then a directory of serialised modules.

Compiling a module with Cranelift takes milliseconds to seconds; loading a serialised one takes
well under a millisecond. The key is the SHA-256 of the wasm bytes, so the same module sent by two
jobs (or two clients) is compiled once per node. Several worker processes share one cache
directory: files are written under a temporary name and renamed into place, so a reader sees a
whole file or none.

A serialised module is native code that wasmtime trusts: a file damaged on disk must never reach
:meth:`wasmtime.Module.deserialize_file`. Beside each module file ``<key>.cwasm`` (exactly
:meth:`wasmtime.Module.serialize`'s output, so wasmtime can map it straight from the file) lies
``<key>.check``: a magic number, the module file's length and its CRC-32C. A load reads the module
file, checks length and CRC, and only then deserialises it. A module file that fails the check, has
no check file, or that wasmtime refuses (written by another wasmtime version, say) is deleted and
the module compiled again. (A CRC catches damage, not an attacker: whoever can write the cache
directory can write the check file too, so the directory must be the node's own.)

``<key>`` is ``<sha256 of the wasm, hex>-w<wasmtime version>-<SandboxConfig fingerprint>``, so
engines with other settings never read each other's files: a sandbox's fuel-metering engine
(``f1...``) and its engine without metering (``f0...``) keep their own copy of a module.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from crc32c import crc32c

from ...private_files import make_private_directory
from .errors import InvalidModuleError, ModuleNotCachedError
from .spec import ModuleSource

__all__ = ["LoadedModule", "ModuleCache", "module_digest", "summarize_wasmtime_error"]

logger = logging.getLogger(__name__)

_CHECK_MAGIC = b"UCPCWCK1"
# magic, length of the module file, CRC-32C of the module file
_CHECK = struct.Struct(">8sQI")
_WASM_MAGIC = b"\0asm"


def module_digest(wasm: bytes) -> bytes:
    """The cache key of a module: SHA-256 of its wasm bytes."""
    return hashlib.sha256(wasm).digest()


def summarize_wasmtime_error(text: str) -> str:
    """wasmtime's multi-line error text as one line: context, then each cause, joined by ': '.

    A trap's "error while executing at wasm backtrace:" header and its frames are dropped; the
    cause (e.g. ``wasm trap: integer divide by zero``) is what a person needs.
    """
    head, _, causes = text.partition("\n\nCaused by:\n")
    parts = [] if head.startswith("error while executing at wasm backtrace") else [head]
    parts.extend(causes.splitlines())
    lines = [" ".join(part.split()) for part in parts]
    summary = ": ".join(line for line in lines if line)
    return summary or "unknown wasmtime error"


@dataclass(frozen=True, slots=True)
class LoadedModule:
    """A compiled module, linked against WASI and ready to instantiate."""

    digest: bytes
    """SHA-256 of the wasm bytes."""
    module: wasmtime.Module
    """The compiled module."""
    pre: wasmtime.InstancePre
    """The module with its WASI imports resolved: instantiating it is cheap."""
    engine: wasmtime.Engine
    """The engine it was compiled for (only a store of that engine can instantiate it)."""


class ModuleCache:
    """Compiled modules for one engine: in-memory LRU, backed by an optional cache directory."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        linker: wasmtime.Linker,
        cache_dir: Path | None,
        *,
        fingerprint: str,
        resident: int,
    ) -> None:
        """Cache modules of ``engine`` linked with ``linker``.

        ``fingerprint`` names the engine settings (it becomes part of file names, so engines with
        different settings never read each other's files); ``resident`` bounds the in-memory LRU.
        """
        self._engine = engine
        self._linker = linker
        self._dir = cache_dir
        self.version = _wasmtime_version()
        """The wasmtime version compiling the modules."""
        self._suffix = f"-w{self.version}-{fingerprint}.cwasm"
        self._resident = resident
        self._memory: OrderedDict[bytes, LoadedModule] = OrderedDict()
        self.memory_hits = 0
        """Modules found in memory."""
        self.disk_hits = 0
        """Modules loaded from the cache directory."""
        self.compiles = 0
        """Modules compiled."""
        self.rejected_files = 0
        """Cache files that failed the integrity check or that wasmtime refused."""
        if cache_dir is not None:
            make_private_directory(cache_dir)

    def path_for(self, digest: bytes) -> Path | None:
        """The cache file of a module (None without a cache directory)."""
        if self._dir is None:
            return None
        return self._dir / (digest.hex() + self._suffix)

    def get(
        self,
        digest: bytes,
        wasm: bytes | None,
        *,
        on_compile: Callable[[], None] | None = None,
    ) -> tuple[LoadedModule, ModuleSource]:
        """The module with this digest, from memory, disk, or compiled from ``wasm``.

        ``on_compile`` is called just before a (slow) compilation starts. Raises
        :class:`ModuleNotCachedError` if only the digest was given and no cache holds it,
        :class:`InvalidModuleError` if ``wasm`` does not compile or link. ``wasm`` is trusted to
        hash to ``digest``.
        """
        loaded = self._memory.get(digest)
        if loaded is not None:
            self._memory.move_to_end(digest)
            self.memory_hits += 1
            return loaded, ModuleSource.MEMORY
        module = self._load_file(digest)
        if module is not None:
            self.disk_hits += 1
            return self._remember(digest, module), ModuleSource.DISK
        if wasm is None:
            raise ModuleNotCachedError(f"module {digest.hex()} is not cached")
        if on_compile is not None:
            on_compile()
        module = self._compile(wasm)
        self.compiles += 1
        loaded = self._remember(digest, module)  # links first: never cache what cannot link
        self._store_file(digest, module)
        return loaded, ModuleSource.COMPILED

    def _remember(self, digest: bytes, module: wasmtime.Module) -> LoadedModule:
        try:
            pre = self._linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModuleError(summarize_wasmtime_error(str(exc))) from None
        loaded = LoadedModule(digest=digest, module=module, pre=pre, engine=self._engine)
        self._memory[digest] = loaded
        while len(self._memory) > self._resident:
            self._memory.popitem(last=False)
        return loaded

    def _compile(self, wasm: bytes) -> wasmtime.Module:
        # wasmtime.Module() would silently treat non-binary input as WAT text; jobs are binaries.
        if not wasm.startswith(_WASM_MAGIC):
            raise InvalidModuleError("not a WebAssembly binary: the \\0asm magic number is missing")
        try:
            return wasmtime.Module(self._engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModuleError(summarize_wasmtime_error(str(exc))) from None

    def _load_file(self, digest: bytes) -> wasmtime.Module | None:
        path = self.path_for(digest)
        if path is None:
            return None
        check_path = path.with_suffix(".check")
        try:
            check = check_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read %s: %s", check_path, exc)
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            logger.warning("cannot read compiled module %s: %s", path, exc)
            return None
        if len(check) != _CHECK.size or _CHECK.unpack(check) != (
            _CHECK_MAGIC,
            len(data),
            crc32c(data),
        ):
            self._reject(path, "integrity check failed")
            return None
        try:
            # What was checked is what is mapped: only our own workers write the directory, and
            # they replace a file (by rename) only with another compilation of the same module.
            return wasmtime.Module.deserialize_file(self._engine, str(path))
        except wasmtime.WasmtimeError as exc:
            self._reject(path, summarize_wasmtime_error(str(exc)))
            return None

    def _reject(self, path: Path, why: str) -> None:
        self.rejected_files += 1
        logger.warning("discarding compiled module %s: %s", path, why)
        for stale in (path.with_suffix(".check"), path):
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("cannot delete %s: %s", stale, exc)

    def _store_file(self, digest: bytes, module: wasmtime.Module) -> None:
        path = self.path_for(digest)
        if path is None:
            return
        started = time.perf_counter()
        try:
            payload = module.serialize()
            # The module first, then its check: a reader never trusts a module without one.
            _write_atomically(path, payload)
            _write_atomically(
                path.with_suffix(".check"), _CHECK.pack(_CHECK_MAGIC, len(payload), crc32c(payload))
            )
        except (OSError, wasmtime.WasmtimeError) as exc:
            logger.warning("cannot cache compiled module %s: %s", path, exc)
            return
        logger.debug(
            "cached compiled module %s (%d bytes, %.1f ms)",
            path.name,
            len(payload),
            (time.perf_counter() - started) * 1e3,
        )


def _write_atomically(path: Path, data: bytes | bytearray) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with open(fd, "wb") as tmp:
            tmp.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        os.unlink(tmp_name)
        raise


def _wasmtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:  # pragma: no cover - wasmtime imported but not installed?
        return "unknown"
