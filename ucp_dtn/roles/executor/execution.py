"""Running one job: fetch its data, build its job directory, run it, collect what it left.

:class:`JobRunner` does a job's work before publishing (:class:`~.role.ExecutorRole` gives it
the job's slot to hold around the run itself and reports ``running``; :mod:`.outcome` publishes
and makes the ``job-result`` afterwards):

* fetches the job's named data through its broker (:class:`~.inputs.DataFetcher`; a value the
  input cache holds is not sent again, and standard input held there — or fetched and kept
  there just now — is linked into the job directory instead of copied). A job whose only named
  datum is its standard input, held in the cache, does not wait for that round trip: it runs
  on the held value while the datastores confirm it, and counts only if they do
  (:meth:`JobRunner._run_on_guess`),
* builds the job directory (:class:`~.jobdir.JobDirectory`) and runs the module in the
  :class:`~ucp_dtn.ucp.runtime.WorkerPool` under the job's limits (defaults: 60 s, 256 MiB, no
  fuel budget),
* meanwhile sends what the job writes to stdout and stderr to its broker every
  :attr:`JobRunner.output_interval_s` (``job-output``, :mod:`.output`), and the end of both
  streams once the run ends,
* packs the results archive and collects the named results (:mod:`.results`), and keeps the
  last :data:`TAIL_BYTES` of each stream for the result.

What came of it is a :class:`JobRun`; a missing input, an invalid module or a directory that
cannot be built end there as its status, not as an exception.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ...private_files import write_private
from ...ucp.job import DataRef
from ...ucp.messages import RESULT_TAIL_BYTES, DataItem, JobDispatch, ResultStatus
from ...ucp.names import DataName
from ...ucp.runtime import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT, RunSpec, WorkerPool
from ..heartbeats import SendMessage
from .input_cache import InputCache
from .inputs import (
    DataFetcher,
    Fetched,
    FetchError,
    InvalidModuleText,
    module_binary,
    queries_for,
    resolve_inputs,
)
from .jobdir import JobDirectory, JobDirectoryError
from .output import OutputFollower
from .results import NamedResults, archive_entries, collect_named_results, write_archive

__all__ = ["TAIL_BYTES", "JobRun", "JobRunner", "SlotHolder"]

logger = logging.getLogger(__name__)

TAIL_BYTES = RESULT_TAIL_BYTES
"""Bytes of the end of stdout and of stderr that travel in the ``job-result``."""

SlotHolder = Callable[[], AbstractAsyncContextManager[None]]
"""Makes the context a job's run in the worker pool holds (the executor's slot)."""


@asynccontextmanager
async def _no_slot() -> AsyncIterator[None]:
    yield


@dataclass(slots=True)
class JobRun:
    """What executing a job produced, before publishing (:mod:`.outcome` makes its
    ``job-result``)."""

    status: ResultStatus | int
    message: str = ""
    exit_code: int | None = None
    stdout_tail: bytes = b""
    stderr_tail: bytes = b""
    archive_size: int | None = None
    named: NamedResults | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    fuel_consumed: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


class JobRunner:
    """Runs the jobs of one executor, one :meth:`execute` per job (see the module docstring)."""

    def __init__(
        self,
        fetcher: DataFetcher,
        *,
        executor: str,
        report_to: Callable[[str], str],
        send: SendMessage,
        lifetime_s: float,
        output_interval_s: float,
        clock: Callable[[], float],
        pool: WorkerPool | None = None,
        cache: InputCache | None = None,
    ) -> None:
        """``executor``: the executor's endpoint (the sender of ``job-output``);
        ``report_to``: the broker a job reports to, given the one that dispatched it;
        ``send``: hands ``job-output`` to the mailbox, with lifetime ``lifetime_s``."""
        self._fetcher = fetcher
        self._executor = executor
        self._report_to = report_to
        self._send = send
        self._lifetime_s = lifetime_s
        self._clock = clock
        self.output_interval_s = output_interval_s
        """How often a running job's new output goes to its broker (0: never while it runs)."""
        self.pool = pool
        """The worker pool jobs run in (set once the executor runs)."""
        self.cache = cache if cache is not None else InputCache(Path("inputs"), 0)
        """The input cache (the real one once the executor runs)."""
        self.input_failures = 0
        """Jobs failed because named data was missing or could not be fetched."""

    async def execute(
        self, dispatch: JobDispatch, tree: JobDirectory, hold_slot: SlotHolder | None = None
    ) -> JobRun:
        """Fetch the job's data, build its directory in ``tree``, run it in :attr:`pool` and
        collect what it left; what came of it, before publishing.

        ``hold_slot``: entered around the run in the worker pool alone (the executor's slot,
        :class:`~.role.ExecutorRole`), so that the next jobs fetch their data and build their
        directories, and the last ones pack their results, while the slots run others; the
        run's ``queued`` timing is the wait to enter it. ``None``: no slot (the pool's own
        wait for an idle worker)."""
        slot = hold_slot if hold_slot is not None else _no_slot
        job = dispatch.job
        began = trio.current_time()
        queries = queries_for(job, dispatch.inline_data)
        # Standard input is outside the job's view, read only: a value the input cache holds
        # is linked there, not read and written again (19 MB of audio: ~30 ms).
        stdin_name = job.stdin.name if isinstance(job.stdin, DataRef) else None
        elsewhere = {s.name for s in (job.wasm, *job.job_data.values()) if isinstance(s, DataRef)}
        if stdin_name in elsewhere or stdin_name in job.inputs.values():
            stdin_name = None  # its bytes are needed as a file too
        linkable = frozenset(q for q in queries if q == stdin_name)
        guess = self.cache.noted(stdin_name) if stdin_name and queries == [stdin_name] else None
        if stdin_name is not None and guess is not None:
            run = await self._run_on_guess(dispatch, tree, stdin_name, guess, began, slot)
            if run is not None:
                return run
        try:
            fetched = await self._fetcher.fetch_all(
                self._report_to(dispatch.broker), queries, keep_cached=linkable
            )
        except FetchError as exc:
            self.input_failures += 1
            return JobRun(ResultStatus.INPUT_MISSING, message=str(exc))
        return await self._build_and_run(dispatch, tree, fetched, stdin_name, began, slot)

    async def _run_on_guess(
        self,
        dispatch: JobDispatch,
        tree: JobDirectory,
        stdin_name: DataName,
        guess: bytes,
        began: float,
        slot: SlotHolder,
    ) -> JobRun | None:
        """Run a job whose only named datum is its standard input on the value the input cache
        holds for that name (``guess``) while the datastores confirm that it is still the
        newest — the round trip of the ``data-get`` overlaps the run instead of preceding it.

        The run counts only once confirmed: until then nothing of it leaves the executor (no
        ``job-output``; the result waits). An answer with another value, or none, cancels it;
        then None: the caller fetches and runs again (the new value went into the cache, so
        that costs one more round trip, no bytes). A fetch that fails ends the job as
        INPUT_MISSING, as without the guess.
        """
        broker = self._report_to(dispatch.broker)
        confirmed = trio.Event()
        failure: list[FetchError] = []

        async def confirm(running: trio.CancelScope) -> None:
            try:
                fetched = await self._fetcher.fetch_all(
                    broker, [stdin_name], keep_cached=frozenset((stdin_name,))
                )
            except FetchError as exc:
                failure.append(exc)
                running.cancel()
                return
            item = fetched.get(stdin_name, {}).get(stdin_name)
            if item is not None and item.digest == guess:
                confirmed.set()
            else:
                logger.info("job %s: %r changed; running it again", dispatch.job.job_id, stdin_name)
                running.cancel()

        held = DataItem(stdin_name, b"", written_at=0.0, digest=guess, cached=True)
        run: JobRun | None = None
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as running:
                nursery.start_soon(confirm, running)
                run = await self._build_and_run(
                    dispatch,
                    tree,
                    {stdin_name: {stdin_name: held}},
                    stdin_name,
                    began,
                    slot,
                    confirmed,
                )
            ran = trio.current_time()
        if failure:
            self.input_failures += 1
            return JobRun(ResultStatus.INPUT_MISSING, message=str(failure[0]))
        if run is None or not confirmed.is_set():
            return None
        run.timings["fetch"] += trio.current_time() - ran  # waiting for the answer after the run
        return run

    async def _build_and_run(
        self,
        dispatch: JobDispatch,
        tree: JobDirectory,
        fetched: Fetched,
        stdin_name: DataName | None,
        began: float,
        slot: SlotHolder,
        confirmed: trio.Event | None = None,
    ) -> JobRun:
        """Build the job directory from what was fetched, run the job and collect what it
        left. ``confirmed``: the inputs are a guess (:meth:`_run_on_guess`); no output is sent
        before it is set."""
        job = dispatch.job
        stdin_item = fetched.get(stdin_name, {}).get(stdin_name) if stdin_name else None
        cache = self.cache
        # Linked from the input cache: a value it held (no bytes came), and one fetched just
        # now that it keeps too (not written a second time: the first run on 19 MB of audio).
        cached_stdin = stdin_item.digest if stdin_item is not None and stdin_item.cached else None
        fresh_stdin = (
            stdin_item.digest
            if stdin_item is not None
            and not stdin_item.cached
            and stdin_item.digest is not None
            and cache.holds(stdin_item.digest)
            else None
        )
        inputs = resolve_inputs(job, dispatch.inline_data, fetched)
        if inputs.missing:
            self.input_failures += 1
            names = ", ".join(repr(name) for name in inputs.missing)
            return JobRun(ResultStatus.INPUT_MISSING, message=f"missing input data: {names}")
        if inputs.problems or inputs.wasm is None:
            return JobRun(ResultStatus.SETUP_FAILED, message="; ".join(inputs.problems))
        try:
            wasm = await trio.to_thread.run_sync(module_binary, inputs.wasm)
        except InvalidModuleText as exc:
            return JobRun(ResultStatus.INVALID_MODULE, message=str(exc))

        def build() -> bool:
            link = cached_stdin if cached_stdin is not None else fresh_stdin
            tree.create(dirs=job.dirs, files=inputs.files, stdin=None if link else inputs.stdin)
            if link is None or cache.link(link, tree.stdin_path, hit=link == cached_stdin):
                return True
            if fresh_stdin is not None and inputs.stdin is not None:
                write_private(tree.stdin_path, inputs.stdin)  # evicted: the bytes are here
                return True
            return False

        try:
            if not await trio.to_thread.run_sync(build):
                # Evicted between the reply and now (the cache no longer offers it): fetch it.
                assert stdin_name is not None
                again = await self._fetcher.fetch(self._report_to(dispatch.broker), stdin_name)
                item = again.get(stdin_name)
                if item is None or item.cached:
                    raise JobDirectoryError("standard input: it is gone from the datastores")
                await trio.to_thread.run_sync(tree.stdin_path.write_bytes, item.data)
        except FetchError as exc:
            self.input_failures += 1
            return JobRun(ResultStatus.INPUT_MISSING, message=str(exc))
        except JobDirectoryError as exc:
            return JobRun(ResultStatus.SETUP_FAILED, message=f"job directory: {exc}")
        except OSError as exc:
            return JobRun(
                ResultStatus.SETUP_FAILED, message=f"cannot build the job directory: {exc}"
            )
        fetch_time = trio.current_time() - began

        spec = RunSpec(
            wasm=wasm,
            job_dir=tree.job_dir,
            args=job.args,
            program_name=None if job.bare_argv else "job.wasm",
            env=tuple(job.env.items()),
            stdin_path=tree.stdin_path if inputs.stdin is not None else None,
            fuel=job.limits.fuel,
            timeout=job.limits.time if job.limits.time is not None else DEFAULT_TIMEOUT,
            memory_limit=(
                job.limits.memory if job.limits.memory is not None else DEFAULT_MEMORY_LIMIT
            ),
            stdout_path=tree.stdout_path,
            stderr_path=tree.stderr_path,
        )
        assert self.pool is not None
        broker = self._report_to(dispatch.broker)
        follower = OutputFollower(
            job.job_id, self._executor, dispatch.attempt, tree.stdout_path, tree.stderr_path
        )
        waited = trio.current_time()
        async with slot():
            queued = trio.current_time() - waited
            started_at = self._clock()
            began = trio.current_time()
            async with trio.open_nursery() as watching:
                # A result sealed to its client is not shown on the way (ucp logs): its output
                # would travel in the clear.
                if self.output_interval_s > 0 and job.result_key is None:
                    watching.start_soon(self._follow_output, broker, follower, confirmed)
                outcome = await self.pool.execute(spec)
                watching.cancel_scope.cancel()
        run_time = trio.current_time() - began
        finished_at = self._clock()
        # The end of both streams, before the result -- unless the result is sealed to its
        # owner (no live output), or nothing was sent while it ran and the result's tails hold
        # all of it (most short jobs): the broker takes its log from those, one bundle less.
        if job.result_key is None and (
            follower.sent_any
            or not await trio.to_thread.run_sync(
                lambda: _fits_tails(tree.stdout_path, tree.stderr_path)
            )
        ):
            if confirmed is not None:
                await confirmed.wait()
            await self._send_output(broker, follower)

        began = trio.current_time()
        # The captured streams go into the archive as "stdout" and "stderr", except a stream
        # the job writes to a file of its own (REC's stdout_file): that file is its place.
        streams = {
            name: path
            for name, path, own in (
                ("stdout", tree.stdout_path, job.stdout_path),
                ("stderr", tree.stderr_path, job.stderr_path),
            )
            if own is None
        }

        def collect() -> tuple[int, NamedResults | None, bytes, bytes]:
            if job.stdout_path is not None:
                tree.copy_in(tree.stdout_path, job.stdout_path)
            if job.stderr_path is not None:
                tree.copy_in(tree.stderr_path, job.stderr_path)
            entries = archive_entries(tree, job.zip_results)
            size = write_archive(tree, entries, tree.archive_path, streams=streams)
            named = collect_named_results(tree, job.named_results) if outcome.ok else None
            return size, named, _tail(tree.stdout_path), _tail(tree.stderr_path)

        archive_size, named, stdout_tail, stderr_tail = await trio.to_thread.run_sync(collect)
        return JobRun(
            status=ResultStatus[outcome.status.name],
            message=outcome.message,
            exit_code=outcome.exit_code,
            stdout_tail=stdout_tail,
            stderr_tail=stderr_tail,
            archive_size=archive_size,
            named=named,
            started_at=started_at,
            finished_at=finished_at,
            fuel_consumed=outcome.fuel_consumed,
            timings={
                "fetch": fetch_time,
                "queued": queued,
                "run": run_time,
                "collect": trio.current_time() - began,
            },
        )

    async def _follow_output(
        self, broker: str, follower: OutputFollower, confirmed: trio.Event | None
    ) -> None:
        if confirmed is not None:
            await confirmed.wait()  # the output of a run on a guess waits for its confirmation
        while True:
            await trio.sleep(self.output_interval_s)
            await self._send_output(broker, follower)

    async def _send_output(self, broker: str, follower: OutputFollower) -> None:
        message = await trio.to_thread.run_sync(follower.next_message)
        if message is not None:
            await self._send(broker, message, lifetime_s=self._lifetime_s)


def _fits_tails(*paths: Path) -> bool:
    """Whether each file (missing: empty) is shorter than a result's tail."""
    for path in paths:
        try:
            if path.stat().st_size >= TAIL_BYTES:
                return False
        except FileNotFoundError:
            continue
    return True


def _tail(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - TAIL_BYTES))
            return file.read(TAIL_BYTES)
    except OSError:
        return b""
