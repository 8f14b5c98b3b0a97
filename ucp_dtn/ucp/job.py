"""The description of one job: :class:`JobInfo`, with the fields of the UCP paper.

A job is a WebAssembly module run by an executor in a directory of its own — the only one the
module sees. Before the run the executor creates ``dirs``, writes ``job_data`` (files uploaded
with the job) and fetches ``inputs`` (named data) into it, and feeds ``stdin``; after the run it
zips ``zip_results`` into the results archive for ``result_address`` and publishes
``named_results`` as named data, where later jobs can read them (pipelines).

Data travels two ways (:data:`DataSource`): small data inline in the job-submission bundle
(:class:`InlineData`), large data as named data uploaded beforehand (:class:`DataRef`), usually
under ``<job-uuid>/...``.

A :class:`JobInfo` is valid by construction: ``__post_init__`` checks every field and raises
:class:`~ucp_dtn.ucp.errors.JobValidationError` naming it (``inputs['/abs']: path '/abs' must
be relative to the job directory``). Sequences become tuples and mappings read-only copies, so
a JobInfo compares by value; it is not hashable (key it by ``job_id``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any

from bpv7 import BPv7Error, parse_eid
from ucp_dtn.wire_schema import Wire, WireCodec, WireError, type_name

from .capabilities import Requirements
from .errors import FieldError, JobValidationError
from .names import (
    DataName,
    JobPath,
    is_wildcard,
    job_result_name,
    normalize_wildcard_pair,
    validate_name,
    validate_path,
    validate_path_pattern,
    validate_pattern,
)

__all__ = [
    "MAX_FUEL",
    "MAX_JOB_NAME_LENGTH",
    "MAX_MEMORY_LIMIT",
    "MAX_REPLICAS",
    "MAX_RUN_TIME_S",
    "DataRef",
    "DataSource",
    "InlineData",
    "JobInfo",
    "Limits",
    "check_replicas",
]

MAX_JOB_NAME_LENGTH = 200
"""Longest human-readable job name."""
MAX_REPLICAS = 16
"""Largest replication factor of a datum (copies kept on distinct datastores)."""
MAX_FUEL = 2**64 - 1
"""Most wasm fuel a job may ask for: wasmtime counts fuel in an unsigned 64-bit integer (a
plan's ``fuel = 1e300`` is refused, not passed on to fail in the executor)."""
MAX_RUN_TIME_S = 366 * 24 * 3600.0
"""Longest wall-clock limit of one run (a year)."""
MAX_MEMORY_LIMIT = 2**40
"""Largest memory limit of one run, 1 TiB (a 32-bit wasm module can use 4 GiB at most)."""


def _shown(value: object) -> str:
    """``repr(value)``, numbers of more than 24 digits as ``1e+300``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**24:
        return f"{float(value):.3g}" if abs(value) < 2**1023 else "a number too large to show"
    return repr(value)


def check_replicas(value: object, where: str) -> int:
    """``value`` if it is a replication factor (1 to :data:`MAX_REPLICAS`), else
    :class:`~ucp_dtn.ucp.errors.FieldError` naming ``where``."""
    if type(value) is not int or not 1 <= value <= MAX_REPLICAS:
        raise FieldError(where, f"must be a whole number from 1 to {MAX_REPLICAS}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class InlineData:
    """Bytes carried inside the job-submission bundle."""

    data: bytes
    """The bytes themselves; plans inline files up to
    :data:`~ucp_dtn.ucp.plan_loader.INLINE_LIMIT` and upload larger ones as named data."""


@dataclass(frozen=True, slots=True)
class DataRef:
    """Named data the executor fetches (through the broker, from the datastores)."""

    name: DataName
    """The data name (no wildcard)."""


DataSource = InlineData | DataRef
"""Where a wasm module, stdin or uploaded job file comes from."""


def _source_to_wire(source: DataSource) -> bytes | str:
    return source.data if isinstance(source, InlineData) else source.name


def _source_from_wire(value: object) -> DataSource:
    if type(value) is bytes:
        return InlineData(value)
    if type(value) is str:
        return DataRef(value)
    raise WireError(f"must be {_SOURCE_WIRE.expected}, got {type_name(value)}")


_SOURCE_WIRE = WireCodec(
    "bytes (inline) or text (a data name)", decode=_source_from_wire, encode=_source_to_wire
)
"""A :data:`DataSource` on the wire: the bytes themselves, or the data name as text."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one run; ``None`` means the executor's default."""

    fuel: int | None = None
    """Wasm fuel (roughly, instructions) before the run traps."""
    time: float | None = None
    """Wall-clock seconds before the run is interrupted."""
    memory: int | None = None
    """Largest linear memory of the module, in bytes."""

    def __post_init__(self) -> None:
        from convergence.quantities import format_duration, format_size

        for name, largest, shown in (
            ("fuel", MAX_FUEL, "2**64-1"),
            ("memory", MAX_MEMORY_LIMIT, format_size(MAX_MEMORY_LIMIT)),
        ):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= largest
            ):
                raise JobValidationError(
                    f"limits.{name}",
                    f"must be a whole number from 1 to {shown}, got {_shown(value)}",
                )
        time = self.time
        if time is not None and (
            isinstance(time, bool)
            or not isinstance(time, int | float)
            or not math.isfinite(time)
            or not 0 < time <= MAX_RUN_TIME_S
        ):
            raise JobValidationError(
                "limits.time",
                f"must be a number of seconds above 0 and at most {format_duration(MAX_RUN_TIME_S)}"
                f", got {_shown(time)}",
            )


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class JobInfo:
    """Everything an executor needs to run one job, and where its results go."""

    job_id: Annotated[uuid.UUID, Wire(key="id")]
    """The job's UUID, assigned by the client; the broker deduplicates by it."""
    wasm: Annotated[DataSource, Wire(codec=_SOURCE_WIRE)]
    """The WebAssembly module (binary, or text format)."""
    name: str = ""
    """Human-readable name (the job's name in its plan); for logs and ``ucp status``."""
    stdin: Annotated[DataSource | None, Wire(codec=_SOURCE_WIRE)] = None
    """What the module reads on standard input; ``None``: nothing (end of file)."""
    job_data: Annotated[Mapping[JobPath, DataSource], Wire(key="files", codec=_SOURCE_WIRE)] = (
        field(default_factory=dict)
    )
    """Files uploaded with the job: path in the job directory → content."""
    inputs: Mapping[JobPath, DataName] = field(default_factory=dict)
    """Named data inputs: path in the job directory ← data name. ``"audio/*" = "survey/*"``
    fetches every name under ``survey`` into ``audio`` (see :mod:`ucp_dtn.ucp.names`)."""
    dirs: tuple[JobPath, ...] = ()
    """Directories to create before the run."""
    args: tuple[str, ...] = ()
    """Command-line arguments (after the program name ``job.wasm``, unless
    :attr:`bare_argv`)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables the module sees (WASI ``environ``); nothing of the executor's
    own environment is passed through."""
    zip_results: Annotated[tuple[JobPath, ...], Wire(key="results")] = ()
    """Files and directories (or ``prefix*`` patterns) packed into the results archive."""
    named_results: Mapping[JobPath, DataName] = field(default_factory=dict)
    """Published results: path in the job directory → data name; ``"out/*" = "runs/7/*"``
    publishes many. A directory is published as one zip archive. A name another write holds
    (of no job, or another job) is not replaced — the job fails, as REC refuses a second
    publish of a name — unless :attr:`replace_results`."""
    requirements: Annotated[Requirements, Wire(key="requires")] = field(
        default_factory=Requirements
    )
    """What the executor must offer."""
    result_address: Annotated[str | None, Wire(key="result-to")] = None
    """EID the result goes to (the client's); ``None``: the submission's source."""
    result_key: Annotated[bytes | None, Wire(key="result-key")] = None
    """In a trusted mesh, the submitting client's certificate (DER): the executor seals the
    job's result (output, message, archive) to its key, so that relays and datastores hold
    only ciphertext (:mod:`ucp_dtn.trust.sealing`); ``None``: results travel as they are."""
    limits: Limits = field(default_factory=Limits)
    """Fuel, time and memory limits of the run."""
    after: tuple[uuid.UUID, ...] = ()
    """Jobs (of the same plan) that must be done before this one is dispatched."""
    stdout_path: Annotated[JobPath | None, Wire(key="stdout")] = None
    """Also write standard output to this file of the job directory (REC ``stdout_file``)."""
    stderr_path: Annotated[JobPath | None, Wire(key="stderr")] = None
    """Also write standard error to this file of the job directory (REC ``stderr_file``)."""
    replicas: Annotated[int | None, Wire(min=1, max=MAX_REPLICAS)] = None
    """Replication factor of what the job stores: its named results, its results archive and
    ``<job-uuid>/result`` (``None``: the datastores' default for each name)."""
    replace_results: bool = False
    """The named results replace what other writes published under their names (the newest
    write wins) instead of failing the job."""
    bare_argv: bool = False
    """The module's argv is :attr:`args` alone, without a program name in front: REC passes
    a plan's ``argv`` this way (a module that wants an ``argv[0]`` gets it from the plan)."""

    def __post_init__(self) -> None:
        try:
            self._validate()
        except JobValidationError:
            raise
        except FieldError as exc:
            raise JobValidationError(exc.field, exc.reason) from None

    def _validate(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.job_id, uuid.UUID):
            raise JobValidationError("job_id", f"must be a UUID, got {self.job_id!r}")
        if not isinstance(self.name, str) or len(self.name) > MAX_JOB_NAME_LENGTH:
            raise JobValidationError(
                "name", f"must be text of at most {MAX_JOB_NAME_LENGTH} characters"
            )
        if not self.name.isprintable():
            raise JobValidationError("name", f"must be printable, got {self.name!r}")
        _check_source(self.wasm, "wasm", optional=False)
        _check_source(self.stdin, "stdin", optional=True)

        job_data = _mapping(self.job_data, "job_data")
        for path, source in job_data.items():
            validate_path(path, f"job_data[{path!r}]")
            _check_source(source, f"job_data[{path!r}]", optional=False)
        set_(self, "job_data", _frozen(job_data))

        inputs: dict[str, str] = {}
        for path, name in _mapping(self.inputs, "inputs").items():
            where = f"inputs[{path!r}]"
            validate_path_pattern(path, where)
            validate_pattern(name, where)
            path, name = normalize_wildcard_pair(path, name)
            validate_path_pattern(path, where)
            validate_pattern(name, where)
            if path in inputs:
                raise JobValidationError(where, "path appears twice")
            inputs[path] = name
        set_(self, "inputs", _frozen(inputs))

        set_(self, "dirs", _paths(self.dirs, "dirs", patterns=False))
        set_(self, "zip_results", _paths(self.zip_results, "zip_results", patterns=True))
        set_(self, "args", _texts(self.args, "args"))
        for flag in ("bare_argv", "replace_results"):
            if not isinstance(getattr(self, flag), bool):
                raise JobValidationError(
                    flag, f"must be true or false, got {getattr(self, flag)!r}"
                )

        env = _mapping(self.env, "env")
        for key, value in env.items():
            where = f"env[{key!r}]"
            if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                raise JobValidationError(
                    where, "variable names must be non-empty, without '=' or NUL"
                )
            if not isinstance(value, str) or "\0" in value:
                raise JobValidationError(where, "value must be text without NUL")
        set_(self, "env", _frozen(env))

        own_result = job_result_name(self.job_id)
        named_results: dict[str, str] = {}
        for path, name in _mapping(self.named_results, "named_results").items():
            where = f"named_results[{path!r}]"
            validate_path_pattern(path, where)
            validate_pattern(name, where)
            path, name = normalize_wildcard_pair(path, name)
            validate_path_pattern(path, where)
            validate_pattern(name, where)
            if name == own_result:
                raise JobValidationError(
                    where, f"{name!r} would overwrite the job's result archive {own_result!r}"
                )
            if path in named_results:
                raise JobValidationError(where, "path appears twice")
            named_results[path] = name
        set_(self, "named_results", _frozen(named_results))

        if not isinstance(self.requirements, Requirements):
            raise JobValidationError(
                "requirements", f"must be Requirements, got {self.requirements!r}"
            )
        if not isinstance(self.limits, Limits):
            raise JobValidationError("limits", f"must be Limits, got {self.limits!r}")
        if self.result_address is not None:
            if not isinstance(self.result_address, str):
                raise JobValidationError(
                    "result_address", f"must be EID text, got {self.result_address!r}"
                )
            try:
                parse_eid(self.result_address)
            except BPv7Error as exc:
                raise JobValidationError("result_address", exc.message) from None

        after = tuple(_sequence(self.after, "after"))
        for index, dependency in enumerate(after):
            if not isinstance(dependency, uuid.UUID):
                raise JobValidationError(
                    f"after[{index}]", f"must be a job UUID, got {dependency!r}"
                )
            if dependency == self.job_id:
                raise JobValidationError(f"after[{index}]", "a job cannot wait for itself")
        if len(set(after)) != len(after):
            raise JobValidationError("after", "lists a job twice")
        set_(self, "after", after)

        for attribute in ("stdout_path", "stderr_path"):
            value = getattr(self, attribute)
            if value is not None:
                validate_path(value, attribute)
        if self.replicas is not None:
            check_replicas(self.replicas, "replicas")

        # Two sources for one file would make the job directory depend on the order of writes.
        files: dict[str, str] = {}
        for path in job_data:
            files[path] = f"job_data[{path!r}]"
        for path in inputs:
            if not is_wildcard(path):
                if path in files:
                    raise JobValidationError(f"inputs[{path!r}]", f"path is also {files[path]}")
                files[path] = f"inputs[{path!r}]"
        for index, directory in enumerate(self.dirs):
            if directory in files:
                raise JobValidationError(
                    f"dirs[{index}]", f"{directory!r} is also {files[directory]}"
                )

    # -- derived views -------------------------------------------------------------------------

    def referenced_names(self) -> frozenset[DataName]:
        """Every data name or pattern the job reads: the wasm module and stdin if named, named
        job data, and every input."""
        names = {source.name for source in self._sources() if isinstance(source, DataRef)}
        names.update(self.inputs.values())
        return frozenset(names)

    def published_names(self) -> frozenset[DataName]:
        """Every data name or pattern the job publishes (its named results)."""
        return frozenset(self.named_results.values())

    def inline_size(self) -> int:
        """Bytes carried inline (wasm, stdin and job data)."""
        return sum(len(s.data) for s in self._sources() if isinstance(s, InlineData))

    def _sources(self) -> list[DataSource]:
        sources: list[DataSource] = [self.wasm, *self.job_data.values()]
        if self.stdin is not None:
            sources.append(self.stdin)
        return sources


def _check_source(source: object, where: str, *, optional: bool) -> None:
    if source is None and optional:
        return
    if isinstance(source, InlineData):
        if not isinstance(source.data, bytes):
            raise JobValidationError(
                where, f"inline data must be bytes, got {type(source.data).__name__}"
            )
    elif isinstance(source, DataRef):
        validate_name(source.name, where)
    else:
        raise JobValidationError(where, f"must be InlineData or DataRef, got {source!r}")


def _mapping(value: object, where: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise JobValidationError(where, f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise JobValidationError(where, f"keys must be text, got {key!r}")
    return value


def _sequence(value: object, where: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise JobValidationError(where, f"must be a sequence, got {type(value).__name__}")
    return value


def _paths(value: object, where: str, *, patterns: bool) -> tuple[str, ...]:
    paths = tuple(_sequence(value, where))
    check = validate_path_pattern if patterns else validate_path
    for index, path in enumerate(paths):
        check(path, f"{where}[{index}]")
    if len(set(paths)) != len(paths):
        raise JobValidationError(where, "lists a path twice")
    return paths


def _texts(value: object, where: str) -> tuple[str, ...]:
    texts = tuple(_sequence(value, where))
    for index, text in enumerate(texts):
        if not isinstance(text, str) or "\0" in text:
            raise JobValidationError(f"{where}[{index}]", "must be text without NUL")
    return texts
