"""Execution plans: our format, REC's format, dependencies and cycles, one-line errors."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucp_dtn.ucp import (
    DataRef,
    ExecutionPlan,
    InlineData,
    Limits,
    PlanError,
    Requirements,
    detect_format,
    load_plan,
    parse_count,
    parse_duration,
    parse_frequency,
    parse_size,
)
from ucp_dtn.ucp.plan_loader import parse_plan

PLANS = Path(__file__).parent / "plans"
MIB = 2**20


def counter_ids() -> Callable[[], uuid.UUID]:
    numbers = itertools.count(1)
    return lambda: uuid.UUID(int=next(numbers))


def load_text(tmp_path: Path, text: str, **options: object) -> ExecutionPlan:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return load_plan(path, new_id=counter_ids(), **options)  # type: ignore[arg-type]


# -- our format ---------------------------------------------------------------------------------


def test_our_example_plan() -> None:
    plan = load_plan(PLANS / "ucp" / "audio.toml", new_id=counter_ids())
    assert plan.format == "ucp"
    assert plan.waves() == (("resample-a", "resample-b"), ("classify",), ("report",))
    assert [job.name for job in plan.jobs] == ["resample-a", "resample-b", "classify", "report"]
    assert [(d.job, d.on, d.reason) for d in plan.dependencies] == [
        ("classify", "resample-a", "reads 'resampled/*'"),
        ("classify", "resample-b", "reads 'resampled/*'"),
        ("report", "resample-a", "after"),
        ("report", "classify", "reads 'labels/site-ab.csv'"),
    ]
    assert [(u.name, u.size, u.job) for u in plan.uploads] == [
        ("survey/site-a.wav", 3000, None),
        ("survey/site-b.wav", 5, None),
        ("config/threshold", 5, None),
        ("models/labels.txt", 18, None),
        ("models/v3.bin", 10, None),
    ]
    assert plan.uploads[2].read() == b"0.72\n"
    assert plan.uploads[1].read() == b"RIFFb"
    assert plan.total_upload_size() == 3038

    resample = plan.job("resample-a").info
    assert resample.job_id == uuid.UUID(int=1)
    assert resample.wasm == InlineData(b"\0asm\1\0\0\0")
    assert resample.inputs == {"in.wav": "survey/site-a.wav"}
    assert resample.named_results == {"out/*": "resampled/*"}
    assert resample.result_address == "dtn://field-laptop/ucp/client"
    assert resample.limits == Limits(time=300.0, memory=256 * MIB)
    assert resample.requirements == Requirements(memory=128 * MIB)

    classify = plan.job("classify")
    assert classify.after == {"resample-a", "resample-b"}
    assert classify.info.after == (uuid.UUID(int=1), uuid.UUID(int=2))
    assert classify.info.wasm == DataRef("modules/classify")
    assert classify.info.job_data == {"params.json": InlineData(b'{"window": 1024}')}
    assert classify.info.inputs == {
        "audio/*": "resampled/*",
        "model/*": "models/*",
        "threshold": "config/threshold",
    }
    assert classify.info.env == {"THRESHOLD_FILE": "threshold"}
    assert classify.info.stdout_path == "classify.log"
    # Job values override defaults key by key.
    assert classify.info.limits == Limits(fuel=5_000_000_000, time=120.0, memory=256 * MIB)
    assert classify.info.requirements == Requirements(
        memory=512 * MIB, cpu_cores=2, extra={"simd": True}
    )

    report = plan.job("report").info
    assert report.stdin == InlineData(b"site-a and site-b\n")
    assert report.after == (uuid.UUID(int=1), uuid.UUID(int=3))
    assert plan.job_by_id(uuid.UUID(int=4)).name == "report"
    with pytest.raises(KeyError):
        plan.job("missing")
    with pytest.raises(KeyError):
        plan.job_by_id(uuid.UUID(int=99))


def test_large_job_files_become_uploads_under_the_job(tmp_path: Path) -> None:
    (tmp_path / "big.wasm").write_bytes(b"w" * 100)
    (tmp_path / "big.bin").write_bytes(b"b" * 100)
    (tmp_path / "small.bin").write_bytes(b"s")
    plan = load_text(
        tmp_path,
        """
        [jobs.one]
        wasm = "big.wasm"
        stdin = { text = "a long stdin text, longer than the limit of this test" }
        files = { "data/big.bin" = "big.bin", "small.bin" = { file = "small.bin" } }
        """,
        inline_limit=50,
    )
    job = plan.job("one")
    job_id = job.info.job_id
    assert job.info.wasm == DataRef(f"{job_id}/wasm")
    assert job.info.stdin == DataRef(f"{job_id}/stdin")
    assert job.info.job_data == {
        "data/big.bin": DataRef(f"{job_id}/files/0"),
        "small.bin": InlineData(b"s"),
    }
    assert [(u.name, u.size, u.job) for u in plan.uploads] == [
        (f"{job_id}/wasm", 100, "one"),
        (f"{job_id}/stdin", 53, "one"),
        (f"{job_id}/files/0", 100, "one"),
    ]
    assert plan.uploads[0].file == tmp_path / "big.wasm"


def test_replication_factors_of_data_jobs_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"a")
    (tmp_path / "big.wasm").write_bytes(b"w" * 100)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.bin").write_bytes(b"m")
    plan = load_text(
        tmp_path,
        """
        [defaults]
        replicas = 2

        [data]
        "survey/a.wav" = { file = "a.wav", replicas = 3 }
        "config/t" = { text = "0.7" }
        "models/*" = { dir = "models", replicas = 1 }

        [jobs.kept]
        wasm = "big.wasm"
        replicas = 3

        [jobs.plain]
        wasm = { name = "modules/x" }
        """,
        inline_limit=50,
    )
    factors = {u.name: u.replicas for u in plan.uploads}
    kept = plan.job("kept").info
    assert factors == {
        "survey/a.wav": 3,
        "config/t": 2,
        "models/m.bin": 1,
        f"{kept.job_id}/wasm": 3,  # a large file of the job: the job's factor
    }
    assert kept.replicas == 3 and plan.job("plain").info.replicas == 2
    without = load_text(tmp_path, '[data]\nx = "a.wav"\n[jobs.j]\nwasm = { name = "m" }\n')
    assert without.uploads[0].replicas is None and without.jobs[0].info.replicas is None


def test_jobs_without_dependencies_run_in_one_wave(tmp_path: Path) -> None:
    plan = load_text(
        tmp_path,
        "\n".join(f'[jobs.j{i}]\nwasm = {{ name = "m" }}\n' for i in range(5)),
    )
    assert plan.waves() == (("j0", "j1", "j2", "j3", "j4"),)
    assert plan.dependencies == ()


def test_uuids_are_fresh_by_default(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[jobs.a]\nwasm = { name = "m" }\n')
    first, second = load_plan(path), load_plan(path)
    assert first.jobs[0].info.job_id != second.jobs[0].info.job_id
    assert first.jobs[0].info.job_id.version == 4


# -- REC's format ---------------------------------------------------------------------------------


def test_rec_single_job_plan() -> None:
    plan = load_plan(PLANS / "rec" / "plans" / "single.toml", new_id=counter_ids())
    assert plan.format == "rec"
    (job,) = plan.jobs
    info = job.info
    assert job.name == info.name == "job-0"
    assert info.wasm == DataRef("echo-module")
    assert info.stdin == DataRef("echo-stdin")
    # REC clients receive on their node ID: ours on its client endpoint.
    assert info.result_address == "dtn://field-laptop/ucp/client"
    # REC's argv is the whole argv: no program name goes in front.
    assert info.args == ("--upper", "--count") and info.bare_argv
    assert info.env == {"MODE": "fast", "LEVEL": "3"}
    # REC's sandbox-root paths become job paths.
    assert info.dirs == ("results", "scratch")
    assert info.stdout_path == "results/stdout.log"
    assert info.stderr_path == "results/stderr.log"
    assert info.zip_results == ("summary.txt", "results")
    assert info.inputs == {"words.txt": "echo-words", "table.bin": "echo-table"}
    assert info.named_results == {"summary.txt": "echo-summary", "results": "echo-results"}
    assert info.requirements == Requirements(
        memory=268435456, disk=1048576, cpu_cores=2, free_cpu=1.5
    )
    # [jobs.data] is uploaded as named data and, being small, also sent along with the job.
    assert [(u.name, u.job) for u in plan.uploads] == [
        ("echo-module", "job-0"),
        ("echo-stdin", "job-0"),
        ("echo-words", "job-0"),
        ("echo-table", "job-0"),
    ]
    assert job.inline_data == {
        "echo-module": b"\0asm\1\0\0\0",
        "echo-stdin": b"first line\nsecond line\n",
        "echo-words": b"alpha\nbeta\ngamma\n",
        "echo-table": b"\x01\x02\x03\x04",
    }


def test_rec_pipeline_plan() -> None:
    plan = load_plan(PLANS / "rec" / "plans" / "pipeline.toml", new_id=counter_ids())
    assert plan.format == "rec"
    assert [u.name for u in plan.uploads] == ["echo-module", "echo-stdin", "echo-words"]
    assert all(u.job is None for u in plan.uploads)
    assert plan.waves() == (("job-0",), ("job-1",))
    second = plan.job("job-1")
    assert second.info.stdin == DataRef("pass-one-output")
    assert second.info.after == (plan.job("job-0").info.job_id,)
    assert second.inline_data == {}
    assert [(d.job, d.on, d.reason) for d in plan.dependencies] == [
        ("job-1", "job-0", "reads 'pass-one-output'")
    ]


def test_rec_large_job_data_is_not_inlined() -> None:
    plan = load_plan(PLANS / "rec" / "plans" / "single.toml", inline_limit=10)
    assert set(plan.jobs[0].inline_data) == {"echo-module", "echo-table"}


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        ({"jobs": []}, "rec"),
        ({"named_data": {}}, "rec"),
        ({"jobs": {}}, "ucp"),
        ({}, "ucp"),
    ],
)
def test_detect_format(document: dict[str, object], kind: str) -> None:
    assert detect_format(document) == kind


def test_format_can_be_forced(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="must be an array of tables"):
        parse_plan('[jobs.a]\nwasm = { name = "m" }\n', source=tmp_path / "p.toml", format="rec")


# -- errors ---------------------------------------------------------------------------------------

UCP_ERRORS = [
    ("jobs = [", r"^plan\.toml: not valid TOML: "),
    ("a = 1\nb = = 2", r"^plan\.toml: not valid TOML: .*line 2"),
    ("extra = 1\n[jobs.a]\nwasm = 'w.wasm'", "^plan.toml: field 'extra': unknown key"),
    ("version = 2\n", "field 'version': unsupported plan version 2"),
    ("[defaults]\n", "field 'jobs': the plan has no jobs"),
    ("[defaults]\nfuel = 1\n", "field 'defaults.fuel': unknown key"),
    ("[jobs.'a b']\nwasm = 'w.wasm'", "job 'a b': job names are 1 to 128 letters"),
    ("[jobs.a]\nargs = []", "job 'a': field 'wasm': is missing"),
    ("[jobs.a]\nwasm = 'w.wasm'\ncommand = 'x'", "job 'a': field 'command': unknown key"),
    (
        "[jobs.a]\nwasm = 'missing.wasm'",
        r"job 'a': field 'wasm.file': file 'missing.wasm' does not",
    ),
    ("[jobs.a]\nwasm = '.'", r"field 'wasm.file': file '.' is not a regular file"),
    ("[jobs.a]\nwasm = { name = 'm', text = 'x' }", "field 'wasm': needs exactly one of"),
    ("[jobs.a]\nwasm = { url = 'x' }", r"field 'wasm.url': unknown key"),
    ("[jobs.a]\nwasm = { name = 'm*' }", r"field 'wasm.name': name 'm\*' has '\*'"),
    ("[jobs.a]\nwasm = 5", "field 'wasm': must be a table, got an integer"),
    ("[jobs.a]\nwasm = 'w.wasm'\nargs = 'x'", "field 'args': must be an array, got a string"),
    ("[jobs.a]\nwasm = 'w.wasm'\nargs = [1]", r"field 'args\[0\]': must be a string"),
    ("[jobs.a]\nwasm = 'w.wasm'\nenv = { A = 1 }", r"field 'env\['A'\]': must be a string"),
    ("[jobs.a]\nwasm = 'w.wasm'\ndirs = ['/tmp']", r"field 'dirs\[0\]': path '/tmp' must be rel"),
    ("[jobs.a]\nwasm = 'w.wasm'\nresults = ['../x']", r"field 'results\[0\]': path '../x' has"),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nfiles = { '/etc/x' = 'w.wasm' }",
        r"field 'files\['/etc/x'\]': path '/etc/x' must be relative",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\ninputs = { x = 'a b' }",
        r"field 'inputs\['x'\]': name 'a b' has the character",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nnamed_results = { 'o/*' = 'r/*', o = 'q/*' }",
        r"field 'named_results\['o'\]': path appears twice",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nfiles = { x = { text = '' } }\ninputs = { x = 'n' }",
        r"field 'inputs\['x'\]': path is also job_data\['x'\]",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nlimits = { time = 'soon' }",
        r"field 'limits.time': must be a dur",
    ),
    ("[jobs.a]\nwasm = 'w.wasm'\nlimits = { time = 0 }", r"field 'limits.time': must be a dur"),
    ("[jobs.a]\nwasm = 'w.wasm'\nlimits = { fuel = 1.5 }", r"field 'limits.fuel': must be a whole"),
    ("[jobs.a]\nwasm = 'w.wasm'\nlimits = { memory = '1 parsec' }", r"'limits.memory': must be a"),
    ("[jobs.a]\nwasm = 'w.wasm'\nlimits = { cpu = 1 }", r"field 'limits.cpu': unknown key"),
    ("[jobs.a]\nwasm = 'w.wasm'\nrequires = { gpu = true }", r"field 'requires.gpu': unknown key"),
    ("[jobs.a]\nwasm = 'w.wasm'\nrequires = { cpu_cores = 1.5 }", r"'requires.cpu_cores': must be"),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nrequires = { cpu_freq = 'fast' }",
        r"'requires.cpu_freq': must be",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nrequires = { min_power = 200 }",
        r"'requires.min_power': must be a p",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nrequires = { no_battery = 1 }",
        r"'requires.no_battery': must be a b",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nrequires = { max_cpu_load = 'x' }",
        r"'requires.max_cpu_load': must",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nrequires = { extra = { gpu = [1] } }",
        r"field 'requires.extra\['gpu'\]': must be a string, number or boolean, got an array",
    ),
    ("[jobs.a]\nwasm = 'w.wasm'\nresult_address = 'me'", r"field 'result_address': 'me' is not a"),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nafter = ['b']",
        r"job 'a': field 'after\[0\]': no job is called 'b'",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nafter = ['a']",
        r"field 'after\[0\]': a job cannot run after itself",
    ),
    ("[jobs.a]\nwasm = 'w.wasm'\nstdout = '/dev/tty'", r"field 'stdout': path '/dev/tty' must be"),
    ("[data]\n'a b' = 'w.wasm'\n[jobs.a]\nwasm = 'w.wasm'", r"field 'data\['a b'\]': name 'a b'"),
    ("[data]\nx = 'nope'\n[jobs.a]\nwasm = 'w.wasm'", r"field 'data\['x'\].file': file 'nope'"),
    ("[data]\nx = { dir = '.' }\n[jobs.a]\nwasm = 'w.wasm'", r"field 'data\['x'\]': a directory"),
    ("[data]\n'x/*' = { file = 'w.wasm' }\n[jobs.a]\nwasm = 'w.wasm'", r"'data\['x/\*'\]': a dir"),
    ("[data]\n'x/*' = { dir = 'nope' }\n[jobs.a]\nwasm = 'w.wasm'", r"'nope' is not a directory"),
    ("[data]\nx = {}\n[jobs.a]\nwasm = 'w.wasm'", r"field 'data\['x'\]': needs exactly one of"),
    (
        "[data]\nx = { file = 'w.wasm', replicas = 0 }\n[jobs.a]\nwasm = 'w.wasm'",
        r"field 'data\['x'\].replicas': must be a whole number from 1 to 16, got 0",
    ),
    ("[jobs.a]\nwasm = 'w.wasm'\nreplicas = '2'", r"job 'a': field 'replicas': must be a whole"),
    ("[defaults]\nreplicas = 17\n[jobs.a]\nwasm = 'w.wasm'", r"field 'defaults.replicas': must"),
    (
        "[data]\nx = 'w.wasm'\n[jobs.a]\nwasm = 'w.wasm'\nnamed_results = { o = 'x' }",
        r"job 'a': field 'named_results': publishes 'x', which the plan also uploads as 'x'",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nnamed_results = { o = 'x' }\n"
        "[jobs.b]\nwasm = 'w.wasm'\nnamed_results = { p = 'x' }",
        r"job 'b': field 'named_results': publishes 'x', which job 'a' publishes too",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\nafter = ['b']\n[jobs.b]\nwasm = 'w.wasm'\nafter = ['a']",
        r"^plan.toml: dependency cycle: 'a' runs after 'b', 'b' runs after 'a'$",
    ),
    (
        "[jobs.a]\nwasm = 'w.wasm'\ninputs = { i = 'from-b' }\n"
        "named_results = { o = 'from-a' }\n"
        "[jobs.b]\nwasm = 'w.wasm'\ninputs = { 'i/*' = 'from-*' }\n"
        "named_results = { o = 'from-b' }",
        r"dependency cycle: 'a' reads 'from-b' published by 'b', "
        r"'b' reads 'from-\*' published by 'a'",
    ),
]


@pytest.mark.parametrize(("text", "message"), UCP_ERRORS)
def test_our_plan_errors_are_one_line_naming_file_job_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "w.wasm").write_bytes(b"\0asm\1\0\0\0")
    with pytest.raises(PlanError, match=message) as info:
        parse_plan(text, source=tmp_path / "plan.toml", file="plan.toml", new_id=counter_ids())
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("plan.toml: ")


def test_plan_error_attributes(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(
            "[jobs.a]\nwasm = { name = 'm' }\nlimits = { time = 'x' }",
            source=tmp_path / "p.toml",
            file="p.toml",
        )
    error = info.value
    assert (error.file, error.job, error.field) == ("p.toml", "a", "limits.time")
    assert error.reason.startswith("must be a duration")


REC_ERRORS = [
    ("[[jobs]]\n", r"job 'job-0': field 'metadata': is missing"),
    ("[[jobs]]\n[jobs.metadata]\nargv = []", r"field 'metadata.wasm_module': is missing"),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\nstdout = 'x'",
        r"field 'metadata.stdout': unknown key",
    ),
    ("[[jobs]]\nextra = 1\n[jobs.metadata]\nwasm_module = 'm'", r"field 'extra': unknown key"),
    ("named_data = {}\njobs = [1]", r"field 'jobs': must be an array of tables"),
    ("[named_data]\n", r"field 'jobs': the plan has no jobs"),
    ("[named_data]\nx = 'nope'\n[[jobs]]\n", r"field 'named_data\['x'\]': file 'nope' does not"),
    ("[[jobs]]\n[jobs.metadata]\nwasm_module = 'a b'", r"'metadata.wasm_module': name 'a b' has"),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\ndirs = ['/']",
        r"'metadata.dirs\[0\]': the sand",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\ndirs = ['/a/../../etc']",
        r"field 'metadata.dirs\[0\]': path '/a/../../etc' has a '..' segment",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\n[jobs.metadata.data]\n'/x' = 'a b'",
        r"field 'metadata.data\['/x'\]': name 'a b' has the character",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\nresults_receiver = 'client'",
        r"field 'metadata.results_receiver': 'client' is not a URI",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\n"
        "[jobs.metadata.capabilities]\ncpu_cores = -1",
        r"field 'metadata.capabilities.cpu_cores': must be an integer >= 0, got -1",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\n[jobs.metadata.capabilities]\ngpu = 1",
        r"field 'metadata.capabilities.gpu': unknown key",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\n[jobs.data]\nm = 'w.wasm'\n"
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\n[jobs.data]\nm = 'other.wasm'",
        r"job 'job-1': field 'data\['m'\]': data 'm' is declared twice with different content",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\nstdin_file = 'x'\n"
        "[jobs.metadata.named_results]\n'/o' = 'y'\n"
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\nstdin_file = 'y'\n"
        "[jobs.metadata.named_results]\n'/o' = 'x'\n",
        r"dependency cycle: 'job-0' reads 'x' published by 'job-1'",
    ),
    (
        "[[jobs]]\n[jobs.metadata]\nwasm_module = 'm'\ndirs = ['/a']\n"
        "[jobs.metadata.data]\n'/a' = 'x'\n",
        r"field 'metadata.dirs\[0\]': 'a' is also inputs\['a'\]",
    ),
]


@pytest.mark.parametrize(("text", "message"), REC_ERRORS)
def test_rec_plan_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "w.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "other.wasm").write_bytes(b"\0asm\1\0\0\0\0")
    with pytest.raises(PlanError, match=message) as info:
        parse_plan(text, source=tmp_path / "rec.toml", file="rec.toml")
    assert "\n" not in str(info.value)


def test_unreadable_plans(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"missing.toml: cannot read it: No such file"):
        load_plan(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\n")
    with pytest.raises(PlanError, match=r"latin1\.toml: not UTF-8 text"):
        load_plan(tmp_path / "latin1.toml")


# -- the dependency graph ------------------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]], set[tuple[int, int]]]:
    """A number of jobs, explicit edges and data edges (job, on)."""
    count = draw(st.integers(1, 7))
    pairs = [(a, b) for a in range(count) for b in range(count) if a != b]
    explicit = draw(st.sets(st.sampled_from(pairs), max_size=8)) if pairs else set()
    data = draw(st.sets(st.sampled_from(pairs), max_size=8)) if pairs else set()
    return count, explicit, data


def plan_text(count: int, explicit: set[tuple[int, int]], data: set[tuple[int, int]]) -> str:
    lines = []
    for job in range(count):
        lines.append(f"[jobs.j{job}]\nwasm = {{ name = 'm' }}")
        after = sorted(f"'j{on}'" for j, on in explicit if j == job)
        lines.append(f"after = [{', '.join(after)}]")
        reads = {f"'in{on}'": f"'out/{on}'" for j, on in data if j == job}
        lines.append("inputs = {" + ", ".join(f"{k} = {v}" for k, v in reads.items()) + "}")
        lines.append(f"named_results = {{ o = 'out/{job}' }}")
    return "\n".join(lines) + "\n"


def has_cycle(count: int, edges: set[tuple[int, int]]) -> bool:
    remaining = set(range(count))
    while True:
        ready = {j for j in remaining if not any(a == j and b in remaining for a, b in edges)}
        if not ready:
            return bool(remaining)
        remaining -= ready


@settings(max_examples=200)
@given(graphs())
def test_dependency_graph_orders_jobs_or_reports_the_cycle(
    graph: tuple[int, set[tuple[int, int]], set[tuple[int, int]]],
) -> None:
    count, explicit, data = graph
    edges = explicit | data
    text = plan_text(count, explicit, data)
    source = Path("/nonexistent/plan.toml")
    if has_cycle(count, edges):
        with pytest.raises(PlanError, match=r"^p: dependency cycle: "):
            parse_plan(text, source=source, file="p")
        return
    plan = parse_plan(text, source=source, file="p")
    position = {job.name: index for index, job in enumerate(plan.jobs)}
    ids = {job.name: job.info.job_id for job in plan.jobs}
    for job, on in edges:
        assert position[f"j{on}"] < position[f"j{job}"]
    for planned in plan.jobs:
        expected = {f"j{on}" for j, on in edges if f"j{j}" == planned.name}
        assert planned.after == expected
        assert set(planned.info.after) == {ids[name] for name in expected}
    waves = plan.waves()
    assert sorted(itertools.chain.from_iterable(waves)) == sorted(position)
    level = {name: index for index, wave in enumerate(waves) for name in wave}
    for job, on in edges:
        assert level[f"j{on}"] < level[f"j{job}"]


# -- quantities ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1024, 1024),
        (2.0, 2),
        ("512MiB", 512 * MIB),
        ("1.5GB", 1_500_000_000),
        ("64k", 64_000),
        ("1 KiB", 1024),
        ("3tib", 3 * 2**40),
        ("12", 12),
        ("99999999999999999999", 99999999999999999999),
    ],
)
def test_parse_size(value: object, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [-1, 1.5, True, "1.5", "1 parsec", "", "MiB", None, float("nan")])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        parse_size(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10, 10.0),
        (0.5, 0.5),
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h15s", 3615.0),
        ("250ms", 0.25),
        ("10", 10.0),  # a bare number is seconds, as on the command line (convergence.quantities)
    ],
)
def test_parse_duration(value: object, expected: float) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", [0, -1, "0s", "-10", "1x", "s", "", True, float("inf"), [1]])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "expected"), [(1500, 1500.0), ("2.4GHz", 2400.0), ("800 MHz", 800.0)]
)
def test_parse_frequency(value: object, expected: float) -> None:
    assert parse_frequency(value) == expected


@pytest.mark.parametrize("value", [-5, "fast", "2 THz", None])
def test_parse_frequency_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="must be a frequency"):
        parse_frequency(value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (5e9, 5_000_000_000)])
def test_parse_count(value: object, expected: int) -> None:
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "1", float("inf")])
def test_parse_count_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="must be a whole number > 0"):
        parse_count(value)


def test_named_results_replace_only_when_asked(tmp_path: Path) -> None:
    text = (
        "[defaults]\nreplace_results = true\n"
        '[jobs.a]\nwasm = { name = "m" }\nnamed_results = { "o" = "out/a" }\n'
        '[jobs.b]\nwasm = { name = "m" }\nnamed_results = { "o" = "out/b" }\n'
        "replace_results = false\n"
    )
    plan = parse_plan(text, source=tmp_path / "p.toml")
    assert plan.job("a").info.replace_results and not plan.job("b").info.replace_results
    with pytest.raises(PlanError, match=r"job 'a': field 'replace_results': must be a boolean"):
        parse_plan(
            '[jobs.a]\nwasm = { name = "m" }\nreplace_results = 1\n', source=tmp_path / "p.toml"
        )
