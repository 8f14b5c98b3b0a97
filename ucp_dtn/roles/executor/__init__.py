"""The executor role: runs the WebAssembly jobs brokers dispatch to it.

:class:`ExecutorRole` is the role (heartbeats, dispatches, cancels, the jobs' slots); the
modules below it are its parts — :mod:`.journal` (the durable record of jobs, for deduplication
and restarts), :mod:`.execution` (running one job: fetch, build, run, collect),
:mod:`.inputs` (fetching named data), :mod:`.input_cache` (data kept from earlier jobs),
:mod:`.jobdir` (the job directory, read without following symlinks), :mod:`.output` (a running
job's output for its broker), :mod:`.results` (the results archive and the named results),
:mod:`.outcome` (from a run to its sealed ``job-result``) and :mod:`.publish` (putting named
results with custody).
"""

from .inputs import (
    DataFetcher,
    FetchError,
    InvalidModuleText,
    ResolvedInputs,
    module_binary,
    queries_for,
    resolve_inputs,
)
from .jobdir import JobDirectory, JobDirectoryError
from .journal import JobJournal, JournalEntry, JournalState
from .publish import DataPublisher
from .results import (
    NamedResults,
    archive_entries,
    collect_named_results,
    write_archive,
    zip_directory,
)
from .role import KEEP_FAILED_DIRS, TAIL_BYTES, ExecutorRole, ExecutorStatistics

__all__ = [
    "KEEP_FAILED_DIRS",
    "TAIL_BYTES",
    "DataFetcher",
    "DataPublisher",
    "ExecutorRole",
    "ExecutorStatistics",
    "FetchError",
    "InvalidModuleText",
    "JobDirectory",
    "JobDirectoryError",
    "JobJournal",
    "JournalEntry",
    "JournalState",
    "NamedResults",
    "ResolvedInputs",
    "archive_entries",
    "collect_named_results",
    "module_binary",
    "queries_for",
    "resolve_inputs",
    "write_archive",
    "zip_directory",
]
