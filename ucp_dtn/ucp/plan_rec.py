"""Execution plans in REC's format (github umr-ds/resilient-edge-computing), read unchanged.

A REC plan looks like this::

    [named_data]                     # optional: data name = file (relative to the plan)
    wasm-module = "../wasi-smoke.wasm"

    [[jobs]]
    [jobs.metadata]                  # REC's JobInfo
    wasm_module = "wasm-module"      # data name of the module (required)
    results_receiver = "dtn://client/"
    argv = ["a", "b"]
    stdin_file = "stdin"             # data name
    dirs = ["/output"]
    stdout_file = "/output/stdout.log"
    results = ["/out.txt", "/output"]
    [jobs.metadata.capabilities]     # cpu_cores, free_cpu_capacity, free_memory, free_disk_space
    [jobs.metadata.env]
    [jobs.metadata.data]             # "/path/in/job" = "data name"
    [jobs.metadata.named_results]    # "/path/in/job" = "data name"
    [jobs.data]                      # data name = file, sent along with this job

How it maps onto our model:

* REC writes job paths from the root of the sandbox (``/out.txt``); the job directory is that
  root, so the leading ``/`` is dropped (``out.txt``).
* ``[named_data]`` and ``[jobs.data]`` both become uploads. REC shipped ``[jobs.data]`` only
  inside that job's submission and cached it at the executor, so a later job could use it only
  on the same executor; uploading it as named data makes such plans work anywhere, and small
  entries also travel inline with their job (:attr:`PlannedJob.inline_data`).
* ``capabilities`` become :class:`~ucp_dtn.ucp.capabilities.Requirements`: ``free_memory`` →
  memory, ``free_disk_space`` → disk, ``cpu_cores`` → cpu_cores, ``free_cpu_capacity`` (0 to
  cores x 100) → ``free_cpu`` in cores.
* ``submitter`` and ``job_id`` are accepted and ignored (the client sets both); jobs get new
  UUIDs and the names ``job-0``, ``job-1``... (``job-N`` is the plan's ``jobs[N]``: a name a
  shell takes as it is, also as a folder name); a job whose inputs are another job's
  ``named_results`` waits for it, as in our format.
* The module's argv is ``argv`` exactly, without a program name in front, as REC runs it
  (:attr:`~ucp_dtn.ucp.job.JobInfo.bare_argv`).
* ``results_receiver`` names a node (REC's clients receive on their node ID): the results go to
  that node's UCP client endpoint (``dtn://client/`` → ``dtn://client/ucp/client``), where a
  ``ucp`` client with that node ID receives them. An endpoint with a path is used as it is.
"""

from __future__ import annotations

from typing import Any

from bpv7 import BPv7Error, DtnEID, EndpointID, IpnEID, parse_eid

from ._plan_reader import PlanReader
from .capabilities import Requirements
from .errors import CapabilityError, FieldError, JobValidationError
from .job import DataRef, JobInfo
from .names import validate_name, validate_path, validate_pattern
from .plan import DraftJob, Upload

__all__ = ["METADATA_KEYS", "job_name", "parse_rec_plan"]

METADATA_KEYS = (
    "job_id",
    "wasm_module",
    "capabilities",
    "submitter",
    "results_receiver",
    "argv",
    "env",
    "stdin_file",
    "dirs",
    "data",
    "stdout_file",
    "stderr_file",
    "results",
    "named_results",
)
"""Keys of REC's ``JobInfo`` (``[jobs.metadata]``)."""
# JobInfo attribute -> REC metadata key, for errors JobInfo itself raises.
_REC_KEY = {
    "inputs": "data",
    "zip_results": "results",
    "stdout_path": "stdout_file",
    "stderr_path": "stderr_file",
    "args": "argv",
    "result_address": "results_receiver",
}
_CAPABILITY_KEYS = ("cpu_cores", "free_cpu_capacity", "free_memory", "free_disk_space")
# The client endpoint of a node (ucp_dtn.roles.endpoints.role_endpoint(node, "client"), which
# this package cannot import: the roles sit on top of it).
_CLIENT_DEMUX = "ucp/client"
_CLIENT_IPN_SERVICE = 4704


def job_name(index: int) -> str:
    """The name of the plan's ``jobs[index]``."""
    return f"job-{index}"


def _client_endpoint(eid: EndpointID) -> EndpointID:
    """A node ID's UCP client endpoint; any other endpoint as it is."""
    if not eid.is_node_id:
        return eid
    if isinstance(eid, DtnEID):
        return DtnEID(eid.node_name, _CLIENT_DEMUX)
    if isinstance(eid, IpnEID):
        return IpnEID(eid.allocator, eid.node, _CLIENT_IPN_SERVICE, three_element=eid.three_element)
    return eid  # pragma: no cover - dtn and ipn are the only schemes with node IDs


def _path(reader: PlanReader, text: object, *, job: str, field: str) -> str:
    """A REC sandbox path (``/out.txt``) as a job path (``out.txt``)."""
    value = reader.text(text, job=job, field=field)
    relative = value[1:] if value.startswith("/") else value
    if not relative:
        raise reader.error("the sandbox root itself cannot be used here", job=job, field=field)
    try:
        return validate_path(relative, field)
    except FieldError as exc:
        raise reader.error(
            exc.reason.replace(repr(relative), repr(value)), job=job, field=field
        ) from None


def _name(reader: PlanReader, text: object, *, job: str | None, field: str) -> str:
    value = reader.text(text, job=job, field=field)
    with reader.at(job=job, field=field):
        return validate_pattern(value, field)


def _requirements(reader: PlanReader, value: object, *, job: str) -> Requirements:
    field = "metadata.capabilities"
    table = reader.table(value, job=job, field=field)
    reader.check_keys(table, _CAPABILITY_KEYS, job=job, prefix=field + ".")
    numbers: dict[str, int] = {}
    for key, item in table.items():
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise reader.error(
                f"must be an integer >= 0, got {item!r}", job=job, field=f"{field}.{key}"
            )
        numbers[key] = item
    try:
        return Requirements(
            memory=numbers.get("free_memory", 0),
            disk=numbers.get("free_disk_space", 0),
            cpu_cores=numbers.get("cpu_cores", 1),
            free_cpu=numbers.get("free_cpu_capacity", 0) / 100.0,
        )
    except CapabilityError as exc:  # pragma: no cover - the checks above cover every range
        raise reader.error(exc.reason, job=job, field=field) from None


def _uploads(reader: PlanReader, value: object, *, job: str | None, field: str) -> list[str]:
    names = []
    for name, file in reader.text_table(value, job=job, field=field).items():
        where = f"{field}[{name!r}]"
        with reader.at(job=job, field=where):
            validate_name(name, where)
        path = reader.resolve_file(file, job=job, field=where)
        reader.add_upload(Upload(name, path.stat().st_size, file=path, job=job), field=where)
        names.append(name)
    return names


def _job(reader: PlanReader, index: int, value: object) -> DraftJob:
    name = job_name(index)
    table = reader.table(value, job=name, field=f"jobs[{index}]")
    reader.check_keys(table, ("metadata", "data"), job=name, prefix="")
    if "metadata" not in table:
        raise reader.error("is missing ([jobs.metadata] table)", job=name, field="metadata")
    meta = reader.table(table["metadata"], job=name, field="metadata")
    reader.check_keys(meta, METADATA_KEYS, job=name, prefix="metadata.")
    if "wasm_module" not in meta:
        raise reader.error("is missing", job=name, field="metadata.wasm_module")

    def field(key: str) -> str:
        return f"metadata.{key}"

    fields: dict[str, Any] = {"job_id": reader.new_id(), "name": name}
    wasm = reader.text(meta["wasm_module"], job=name, field=field("wasm_module"))
    with reader.at(job=name, field=field("wasm_module")):
        fields["wasm"] = DataRef(validate_name(wasm))
    if "stdin_file" in meta:
        stdin = reader.text(meta["stdin_file"], job=name, field=field("stdin_file"))
        with reader.at(job=name, field=field("stdin_file")):
            fields["stdin"] = DataRef(validate_name(stdin))
    for key in ("submitter", "job_id"):
        if key in meta:
            reader.text(meta[key], job=name, field=field(key))
    if "results_receiver" in meta:
        address = reader.text(meta["results_receiver"], job=name, field=field("results_receiver"))
        try:
            receiver = parse_eid(address)
        except BPv7Error as exc:
            raise reader.error(exc.message, job=name, field=field("results_receiver")) from None
        fields["result_address"] = str(_client_endpoint(receiver))
    fields["args"] = reader.text_list(meta.get("argv", []), job=name, field=field("argv"))
    fields["bare_argv"] = True
    fields["env"] = reader.text_table(meta.get("env", {}), job=name, field=field("env"))
    for key, attribute in (("dirs", "dirs"), ("results", "zip_results")):
        items = reader.text_list(meta.get(key, []), job=name, field=field(key))
        fields[attribute] = [
            _path(reader, item, job=name, field=f"{field(key)}[{i}]")
            for i, item in enumerate(items)
        ]
    for key, attribute in (("stdout_file", "stdout_path"), ("stderr_file", "stderr_path")):
        if key in meta:
            fields[attribute] = _path(reader, meta[key], job=name, field=field(key))
    for key, attribute in (("data", "inputs"), ("named_results", "named_results")):
        pairs: dict[str, str] = {}
        for path, data_name in reader.text_table(
            meta.get(key, {}), job=name, field=field(key)
        ).items():
            where = f"{field(key)}[{path!r}]"
            pairs[_path(reader, path, job=name, field=where)] = _name(
                reader, data_name, job=name, field=where
            )
        fields[attribute] = pairs
    if "capabilities" in meta:
        fields["requirements"] = _requirements(reader, meta["capabilities"], job=name)

    own = _uploads(reader, table.get("data", {}), job=name, field="data")
    inline = {
        upload_name: upload.read()
        for upload_name in own
        if (upload := reader.uploads[upload_name]).size <= reader.inline_limit
    }
    try:
        info = JobInfo(**fields)
    except JobValidationError as exc:  # a rule across fields, e.g. one path used twice
        head, sep, rest = exc.field.partition("[")
        field_name = f"metadata.{_REC_KEY.get(head, head)}{sep}{rest}"
        raise reader.error(exc.reason, job=name, field=field_name) from None
    return DraftJob(name, info, (), inline)


def parse_rec_plan(reader: PlanReader, document: dict[str, Any]) -> list[DraftJob]:
    """The jobs of a REC plan (uploads go to ``reader.uploads``); :class:`PlanError` for
    anything wrong."""
    reader.check_keys(document, ("named_data", "jobs"), job=None, prefix="")
    _uploads(reader, document.get("named_data", {}), job=None, field="named_data")
    jobs = document.get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
        raise reader.error("must be an array of tables ([[jobs]])", field="jobs")
    if not jobs:
        raise reader.error("the plan has no jobs ([[jobs]] tables)", field="jobs")
    return [_job(reader, index, job) for index, job in enumerate(jobs)]
