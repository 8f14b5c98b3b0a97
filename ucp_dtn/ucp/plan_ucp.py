"""Our execution plan format (``docs/plans.md`` has the full description and examples).

A plan is a TOML document with up to four top-level keys::

    version = 1                      # optional
    [defaults]                       # optional: result_address, env, limits, requires,
                                     # replicas, replace_results
    [data]                           # optional: named data to upload, name = source
    [jobs.<name>]                    # one table per job

A data source is a file name (relative to the plan) or a table with exactly one of ``file``,
``text`` (inline UTF-8 text) or ``dir`` (every file below a directory; the name must then be a
``prefix*`` pattern), and optionally ``replicas``. Job keys: ``wasm`` (required), ``stdin``,
``files``, ``inputs``, ``dirs``, ``args``, ``env``, ``results``, ``named_results``,
``requires``, ``limits``, ``after``, ``result_address``, ``stdout``, ``stderr``, ``replicas``
(the replication factor of what the job uploads and stores), ``replace_results`` (its named
results replace what other writes published under their names instead of failing the job).
``[defaults] replicas`` applies to every job and every ``[data]`` entry without its own.
"""

from __future__ import annotations

import re
from typing import Any

from bpv7 import BPv7Error, parse_eid

from ._plan_reader import PlanReader, type_name
from .capabilities import Requirements
from .errors import CapabilityError, JobValidationError
from .job import DataRef, DataSource, JobInfo, Limits
from .names import (
    is_wildcard,
    job_name,
    validate_name,
    validate_path,
    validate_path_pattern,
    validate_pattern,
    wildcard_prefix,
)
from .plan import DraftJob, Upload
from .quantities import parse_count, parse_duration, parse_frequency, parse_size

__all__ = ["JOB_KEYS", "TOP_LEVEL_KEYS", "parse_ucp_plan"]

TOP_LEVEL_KEYS = ("version", "defaults", "data", "jobs")
"""Keys allowed at the top of one of our plans."""
JOB_KEYS = (
    "wasm",
    "stdin",
    "files",
    "inputs",
    "dirs",
    "args",
    "env",
    "results",
    "named_results",
    "requires",
    "limits",
    "after",
    "result_address",
    "stdout",
    "stderr",
    "replicas",
    "replace_results",
)
"""Keys allowed in a job table."""
_DEFAULT_KEYS = ("result_address", "env", "limits", "requires", "replicas", "replace_results")
_LIMIT_KEYS = ("fuel", "time", "memory")
_REQUIRE_KEYS = (
    "memory",
    "disk",
    "cpu_cores",
    "cpu_freq",
    "free_cpu",
    "max_cpu_load",
    "min_power",
    "no_battery",
    "extra",
)
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# JobInfo attribute -> key of our job tables, for errors JobInfo itself raises.
_PLAN_KEY = {
    "job_data": "files",
    "zip_results": "results",
    "requirements": "requires",
    "stdout_path": "stdout",
    "stderr_path": "stderr",
}


def _merge(defaults: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in job.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _upload_data(reader: PlanReader, document: dict[str, Any], default: int | None) -> None:
    data = reader.table(document.get("data", {}), job=None, field="data")
    for name, source in data.items():
        field = f"data[{name!r}]"
        with reader.at(job=None, field=field):
            validate_pattern(name, field)
        if isinstance(source, str):
            source = {"file": source}
        table = dict(reader.table(source, job=None, field=field))
        reader.check_keys(table, ("file", "text", "dir", "replicas"), job=None, prefix=field + ".")
        replicas = default
        if "replicas" in table:
            replicas = reader.replicas(table.pop("replicas"), job=None, field=f"{field}.replicas")
        if len(table) != 1:
            raise reader.error("needs exactly one of file, text or dir", field=field)
        ((kind, value),) = table.items()
        text = reader.text(value, job=None, field=f"{field}.{kind}")
        if (kind == "dir") != is_wildcard(name):
            raise reader.error(
                "a directory uploads to a 'prefix*' name, and only a directory does",
                field=field,
            )
        if kind == "text":
            encoded = text.encode()
            upload = Upload(name, len(encoded), data=encoded, replicas=replicas)
            reader.add_upload(upload, field=field)
        elif kind == "file":
            path = reader.resolve_file(text, job=None, field=f"{field}.file")
            upload = Upload(name, path.stat().st_size, file=path, replicas=replicas)
            reader.add_upload(upload, field=field)
        else:
            root = reader.resolve_dir(text, job=None, field=f"{field}.dir")
            prefix = wildcard_prefix(name)
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                target = prefix + path.relative_to(root).as_posix()
                with reader.at(job=None, field=field):
                    validate_name(target, field)
                upload = Upload(target, path.stat().st_size, file=path, replicas=replicas)
                reader.add_upload(upload, field=field)


def _source(
    reader: PlanReader,
    value: object,
    upload_name: str,
    *,
    job: str,
    field: str,
    replicas: int | None,
) -> DataSource:
    if isinstance(value, str):
        value = {"file": value}
    table = reader.table(value, job=job, field=field)
    reader.check_keys(table, ("file", "text", "name"), job=job, prefix=field + ".")
    if len(table) != 1:
        raise reader.error("needs exactly one of file, text or name", job=job, field=field)
    ((kind, item),) = table.items()
    text = reader.text(item, job=job, field=f"{field}.{kind}")
    if kind == "name":
        with reader.at(job=job, field=f"{field}.name"):
            return DataRef(validate_name(text))
    if kind == "text":
        return reader.bytes_source(
            text.encode(), upload_name, job=job, field=field, replicas=replicas
        )
    path = reader.resolve_file(text, job=job, field=f"{field}.file")
    return reader.file_source(path, upload_name, job=job, field=field, replicas=replicas)


def _limits(reader: PlanReader, value: object, *, job: str) -> Limits:
    table = reader.table(value, job=job, field="limits")
    reader.check_keys(table, _LIMIT_KEYS, job=job, prefix="limits.")
    parsers = {"fuel": parse_count, "time": parse_duration, "memory": parse_size}
    values: dict[str, Any] = {}
    for key, item in table.items():
        with reader.at(job=job, field=f"limits.{key}"):
            values[key] = parsers[key](item)
    try:
        return Limits(**values)
    except JobValidationError as exc:  # pragma: no cover - the parsers already check the range
        raise reader.error(exc.reason, job=job, field=exc.field) from None


def _requirements(reader: PlanReader, value: object, *, job: str) -> Requirements:
    table = reader.table(value, job=job, field="requires")
    reader.check_keys(table, _REQUIRE_KEYS, job=job, prefix="requires.")
    values: dict[str, Any] = {}
    for key, item in table.items():
        field = f"requires.{key}"
        with reader.at(job=job, field=field):
            if key in ("memory", "disk"):
                values[key] = parse_size(item)
            elif key == "cpu_cores":
                values[key] = 0 if item == 0 and type(item) is int else parse_count(item)
            elif key == "cpu_freq":
                values[key] = parse_frequency(item)
            elif key == "no_battery":
                values[key] = reader.boolean(item, job=job, field=field)
            elif key == "extra":
                extra = reader.table(item, job=job, field=field)
                for name, fact in extra.items():
                    if not isinstance(fact, str | int | float):
                        raise reader.error(
                            f"must be a string, number or boolean, got {type_name(fact)}",
                            job=job,
                            field=f"{field}[{name!r}]",
                        )
                values[key] = extra
            else:
                values[key] = reader.number(item, job=job, field=field)
    try:
        return Requirements(**values)
    except CapabilityError as exc:
        raise reader.error(exc.reason, job=job, field=f"requires.{exc.field}") from None


def _pairs(reader: PlanReader, value: object, *, job: str, field: str) -> dict[str, str]:
    table = reader.text_table(value, job=job, field=field)
    for path, name in table.items():
        where = f"{field}[{path!r}]"
        with reader.at(job=job, field=where):
            validate_path_pattern(path, where)
            validate_pattern(name, where)
    return table


def _job(reader: PlanReader, name: str, value: object, defaults: dict[str, Any]) -> DraftJob:
    if not _JOB_NAME.fullmatch(name):
        raise reader.error(
            "job names are 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or "
            "digit",
            job=name,
        )
    table = _merge(defaults, reader.table(value, job=name, field=f"jobs.{name}"))
    reader.check_keys(table, JOB_KEYS, job=name, prefix="")
    if "wasm" not in table:
        raise reader.error("is missing (the WebAssembly module to run)", job=name, field="wasm")
    job_id = reader.new_id()
    fields: dict[str, Any] = {"job_id": job_id, "name": name}
    replicas = None
    if "replicas" in table:
        replicas = reader.replicas(table["replicas"], job=name, field="replicas")
        fields["replicas"] = replicas
    fields["wasm"] = _source(
        reader,
        table["wasm"],
        job_name(job_id, "wasm"),
        job=name,
        field="wasm",
        replicas=replicas,
    )
    if "stdin" in table:
        fields["stdin"] = _source(
            reader,
            table["stdin"],
            job_name(job_id, "stdin"),
            job=name,
            field="stdin",
            replicas=replicas,
        )
    files: dict[str, DataSource] = {}
    file_table = reader.table(table.get("files", {}), job=name, field="files")
    for index, (path, source) in enumerate(file_table.items()):
        where = f"files[{path!r}]"
        with reader.at(job=name, field=where):
            validate_path(path, where)
        files[path] = _source(
            reader,
            source,
            job_name(job_id, "files", str(index)),
            job=name,
            field=where,
            replicas=replicas,
        )
    fields["job_data"] = files
    fields["inputs"] = _pairs(reader, table.get("inputs", {}), job=name, field="inputs")
    fields["named_results"] = _pairs(
        reader, table.get("named_results", {}), job=name, field="named_results"
    )
    for key, attribute in (("dirs", "dirs"), ("results", "zip_results"), ("args", "args")):
        fields[attribute] = reader.text_list(table.get(key, []), job=name, field=key)
    fields["env"] = reader.text_table(table.get("env", {}), job=name, field="env")
    if "limits" in table:
        fields["limits"] = _limits(reader, table["limits"], job=name)
    if "requires" in table:
        fields["requirements"] = _requirements(reader, table["requires"], job=name)
    if "result_address" in table:
        address = reader.text(table["result_address"], job=name, field="result_address")
        try:
            parse_eid(address)
        except BPv7Error as exc:
            raise reader.error(exc.message, job=name, field="result_address") from None
        fields["result_address"] = address
    for key in ("stdout", "stderr"):
        if key in table:
            fields[f"{key}_path"] = reader.text(table[key], job=name, field=key)
    if "replace_results" in table:
        fields["replace_results"] = reader.boolean(
            table["replace_results"], job=name, field="replace_results"
        )
    after = reader.text_list(table.get("after", []), job=name, field="after")
    try:
        info = JobInfo(**fields)
    except JobValidationError as exc:
        head, sep, rest = exc.field.partition("[") if "[" in exc.field else exc.field.partition(".")
        field = _PLAN_KEY.get(head, head) + sep + rest
        raise reader.error(exc.reason, job=name, field=field) from None
    return DraftJob(name, info, tuple(after))


def parse_ucp_plan(reader: PlanReader, document: dict[str, Any]) -> list[DraftJob]:
    """The jobs of one of our plans (uploads go to ``reader.uploads``); :class:`PlanError` for
    anything wrong."""
    reader.check_keys(document, TOP_LEVEL_KEYS, job=None, prefix="")
    version = document.get("version", 1)
    if isinstance(version, bool) or version != 1:
        raise reader.error(
            f"unsupported plan version {version!r} (this reads version 1)", field="version"
        )
    defaults = reader.table(document.get("defaults", {}), job=None, field="defaults")
    reader.check_keys(defaults, _DEFAULT_KEYS, job=None, prefix="defaults.")
    default_replicas = None
    if "replicas" in defaults:
        default_replicas = reader.replicas(
            defaults["replicas"], job=None, field="defaults.replicas"
        )
    _upload_data(reader, document, default_replicas)
    jobs = reader.table(document.get("jobs", {}), job=None, field="jobs")
    if not jobs:
        raise reader.error("the plan has no jobs ([jobs.<name>] tables)", field="jobs")
    return [_job(reader, name, value, defaults) for name, value in jobs.items()]
