"""The executor role on a real bundle node, with a fake broker-and-datastore on another node
(plain Mailbox) and real wasm worker processes.

Worker processes start slowly (about half a second each), so each test runs many jobs at once.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from pathlib import Path

import trio

from tests.ucp_dtn.agent_support import StoreClosingAtConfirm, wait_until
from ucp_dtn.ucp.job import DataRef, InlineData, JobInfo, Limits
from ucp_dtn.ucp.messages import DataItem, JobResult, JobStatus, ResultStatus, Role
from ucp_dtn.ucp.runtime import WorkerPool

from ..runtime.wat import WASM_DIR as WAT_DIR
from ..runtime.wat import wasm, wat
from .executor_support import (
    LIMIT,
    copy_wasm,
    executor_settings,
    network,
    start_executor,
    unzip,
)

COPY = InlineData(copy_wasm())


def job(**fields: object) -> JobInfo:
    fields.setdefault("wasm", COPY)
    return JobInfo(job_id=uuid.uuid4(), **fields)  # type: ignore[arg-type]


async def test_jobs_read_stdin_and_named_data_and_publish_results() -> None:
    blob = random.Random(7).randbytes(8192)
    async with network() as net, trio.open_nursery() as nursery:
        store = net.broker.store
        store("modules/copy", copy_wasm())
        store("greeting", b"hello from the datastore\n")
        # Two datastores answer: the executor merges their replies, newest write first.
        other = net.broker.datastore.store
        store("survey/a.txt", b"old A", written_at=1.0)
        other("survey/a.txt", b"A", written_at=2.0)
        other("survey/sub/b.txt", b"B")
        other("config/x", b"X")
        store("config2/y", b"not mine")
        store("blob", blob)
        executor = await start_executor(
            nursery,
            net.node,
            executor_settings(inline_limit_bytes=4096, capability_overrides={"site": "lab"}),
        )
        role = executor.role

        main = job(
            name="main",
            wasm=DataRef("modules/copy"),
            stdin=InlineData(b"standard input\n"),
            inputs={"in.txt": "greeting"},
            dirs=("out",),
            args=("-", "out/stdin-copy", "in.txt", "report.txt", "in.txt", "-"),
            zip_results=("out", "logs"),
            named_results={"report.txt": "reports/r1"},
            stdout_path="logs/out.log",
        )
        wild = job(
            name="wildcards",
            inputs={"frames/*": "survey/*", "cfg": "config"},
            dirs=("out",),
            args=("frames/a.txt", "out/a.txt", "frames/sub/b.txt", "out/b.txt", "cfg/x", "out/x"),
            zip_results=("cfg", "frames*"),
            named_results={"out/*": "results/w/*"},
        )
        big = job(
            name="big",
            inputs={"blob": "blob"},
            args=("blob", "copy.bin"),
            zip_results=("copy.bin",),
        )
        inline = job(
            name="inline",
            job_data={"data.txt": DataRef("sent/along")},
            args=("data.txt", "-"),
        )
        text = job(name="text", wasm=InlineData((WAT_DIR / "hello.wat").read_bytes()))
        for each in (main, wild, big, text):
            await net.broker.dispatch(net.executor_endpoint, each)
        await net.broker.dispatch(
            net.executor_endpoint, inline, inline_data={"sent/along": b"carried inline"}
        )

        with trio.fail_after(LIMIT):
            result = await net.broker.result(main.job_id)
            assert result.ok, result
            assert (result.status, result.exit_code, result.message) == (ResultStatus.OK, 0, "")
            greeting = b"hello from the datastore\n"
            assert result.stdout_tail == greeting
            assert result.archive is not None and result.archive_ref is None
            # Stdout has a file of its own in the job (logs/out.log): it is not packed again as
            # "stdout"; stderr has none and is.
            assert unzip(result.archive) == {
                "logs/out.log": greeting,
                "out/stdin-copy": b"standard input\n",
                "stderr": b"",
            }
            assert result.published == ("reports/r1",)
            assert net.broker.data["reports/r1"].data == greeting
            assert net.broker.data["reports/r1"].job_id == main.job_id
            assert result.executor == net.executor_endpoint
            assert result.timings.run > 0 and result.finished_at >= result.started_at > 0
            # A short job sends no "running" (its result follows at once; the heartbeats list
            # what started): a slow one does, below and in the next test.
            assert [s for s in net.broker.states if s.job_id == main.job_id] == []

            result = await net.broker.result(wild.job_id)
            assert result.ok, result
            assert result.published == ("results/w/a.txt", "results/w/b.txt", "results/w/x")
            assert [net.broker.data[name].data for name in result.published] == [b"A", b"B", b"X"]
            assert result.archive is not None
            # "config" selects config/x by path segment, never config2/y.
            assert sorted(unzip(result.archive)) == [
                "cfg/x",
                "frames/a.txt",
                "frames/sub/b.txt",
                "stderr",
                "stdout",
            ]
            # Two matches at the second datastore, one per page: the second page was asked
            # of it directly, with its cursor.
            assert any(g.query == "survey/*" and g.cursor == "1" for g in net.broker.datastore.gets)

            result = await net.broker.result(big.job_id)
            assert result.ok, result
            assert result.archive is None
            assert result.archive_ref == f"{big.job_id}/archive"
            assert result.published == ()
            assert unzip(net.broker.data[result.archive_ref].data)["copy.bin"] == blob

            result = await net.broker.result(text.job_id)
            assert result.ok and result.stdout_tail == b"hello, world\n", result

            result = await net.broker.result(inline.job_id)
            assert result.ok and result.stdout_tail == b"carried inline", result
            assert not any(g.query == "sent/along" for g in net.broker.gets)

            # A duplicate dispatch is answered with the recorded result, not run again.
            first = net.broker.results_of(main.job_id)[0]
            await net.broker.dispatch(net.executor_endpoint, main, attempt=2)
            await net.broker.result(main.job_id, count=2)
            assert net.broker.results_of(main.job_id)[1] == first
            stats = role.statistics()
            assert (stats.received, stats.duplicates, stats.finished) == (5, 1, 5)
            assert (stats.succeeded, stats.failed, stats.active) == (5, 0, 0)

            # Heartbeats carry the node's capabilities (with its overrides) and slots.
            beat = net.broker.heartbeats[-1]
            assert beat.node == "dtn://e/" and beat.roles == Role.EXECUTOR
            assert beat.capabilities is not None and beat.capabilities.cpu_cores >= 1
            assert beat.capabilities.extra == {"site": "lab"}
            assert beat.max_jobs == 2 and beat.interval == 0.2
            assert beat.broker == net.broker.endpoint
            sequences = [h.sequence for h in net.broker.heartbeats]
            assert sequences == sorted(set(sequences))
        nursery.cancel_scope.cancel()


async def test_failures_are_reported_with_their_reason() -> None:
    async with network() as net, trio.open_nursery() as nursery:
        net.broker.refuse_puts = True
        executor = await start_executor(nursery, net.node, executor_settings())
        role = executor.role
        slow = [
            job(name=f"slow{i}", wasm=InlineData(wasm("loop")), limits=Limits(time=2.0))
            for i in range(2)
        ]
        jobs = {
            "missing": job(
                stdin=DataRef("no-stdin"),
                inputs={"a": "nothing/here", "b/*": "absent/*"},
            ),
            "fuel": job(wasm=InlineData(wasm("loop")), limits=Limits(fuel=100_000)),
            "memory": job(wasm=InlineData(wasm("grow")), limits=Limits(memory=2 * 2**20)),
            "escape": job(stdin=InlineData(b"secret"), args=("../stdin", "-")),
            "absolute": job(args=("/etc/hostname", "-")),
            "exit": job(wasm=InlineData(wasm("exit", EXIT_CODE="3"))),
            "trap": job(wasm=InlineData(wasm("trap"))),
            "invalid": job(wasm=InlineData(b"\0asm not really")),
            "bad text": job(wasm=InlineData(b"(module (func $f (oops)))")),
            "unproduced": job(named_results={"never.txt": "n/never"}),
            "refused": job(
                stdin=InlineData(b"x"), args=("-", "r.txt"), named_results={"r.txt": "n/r"}
            ),
        }
        for each in slow:
            await net.broker.dispatch(net.executor_endpoint, each)
        with trio.fail_after(LIMIT):
            # Several jobs run at once, and the heartbeats say which.
            await wait_until(lambda: role.statistics().running == 2, timeout=LIMIT)
            slow_ids = {each.job_id for each in slow}
            await wait_until(
                lambda: any(
                    set(h.running_jobs) == set(h.started) == slow_ids for h in net.broker.heartbeats
                ),
                timeout=LIMIT,
            )
            # Still running after the report delay: each says so once.
            await wait_until(
                lambda: {s.job_id for s in net.broker.states} >= slow_ids, timeout=LIMIT
            )
            for state in net.broker.states:
                assert state.state == JobStatus.RUNNING, state
                assert state.executor == net.executor_endpoint, state
            for each in jobs.values():
                await net.broker.dispatch(net.executor_endpoint, each)
            results = {name: await net.broker.result(each.job_id) for name, each in jobs.items()}
            for each in slow:
                result = await net.broker.result(each.job_id)
                # Reported as the epoch trap reported it, though the pool's kill ended them.
                assert result.status == ResultStatus.TIMEOUT, result
                assert result.message == "wall-clock limit of 2 s exceeded", result
        pool = role.pool
        assert pool is not None and not pool.config.epoch_interruption
        assert pool.statistics().workers_killed == 2  # the kill at the limit enforced it

        assert results["missing"].status == ResultStatus.INPUT_MISSING
        assert results["missing"].message == (
            "missing input data: 'absent/*', 'no-stdin', 'nothing/here'"
        )
        assert results["fuel"].status == ResultStatus.OUT_OF_FUEL
        assert results["memory"].status == ResultStatus.MEMORY_LIMIT
        for name in ("escape", "absolute"):
            # The module sees only its job directory: opening anything else fails.
            assert results[name].status == ResultStatus.EXIT, results[name]
            assert results[name].exit_code not in (None, 0)
            assert results[name].stdout_tail == b""
        assert (results["exit"].status, results["exit"].exit_code) == (ResultStatus.EXIT, 3)
        assert results["trap"].status == ResultStatus.TRAP
        assert results["invalid"].status == ResultStatus.INVALID_MODULE
        assert results["bad text"].status == ResultStatus.INVALID_MODULE
        assert results["bad text"].message.startswith("not a WebAssembly binary, nor valid text")
        assert results["unproduced"].status == ResultStatus.EXECUTOR_ERROR
        assert "did not produce 'never.txt'" in results["unproduced"].message
        assert results["refused"].status == ResultStatus.EXECUTOR_ERROR
        assert results["refused"].message == "publishing failed: 'n/r': no space"
        assert results["refused"].published == ()
        for result in results.values():
            assert not result.ok and result.message
        stats = role.statistics()
        assert (stats.finished, stats.succeeded, stats.input_failures) == (13, 0, 1)
        assert stats.publish_failures == 1
        nursery.cancel_scope.cancel()


async def test_restart_resumes_unfinished_jobs_and_remembers_finished_ones(tmp_path: Path) -> None:
    async with network() as net, trio.open_nursery() as nursery:
        pool = WorkerPool(2, tmp_path / "modules")
        with trio.fail_after(LIMIT):
            await nursery.start(pool.run)
        settings = executor_settings(tmp_path)
        first = await start_executor(nursery, net.node, settings, pool=pool)
        quick = job(stdin=InlineData(b"quick"), args=("-", "-"))
        slow = job(wasm=InlineData(wasm("loop")), limits=Limits(time=1.5))
        with trio.fail_after(LIMIT):
            await net.broker.dispatch(net.executor_endpoint, quick)
            answer = await net.broker.result(quick.job_id)
            assert answer.ok and answer.stdout_tail == b"quick"
            await net.broker.dispatch(net.executor_endpoint, slow)
            await wait_until(lambda: first.role.statistics().running == 1, timeout=LIMIT)
            await first.stop()
        assert not net.broker.results_of(slow.job_id)

        second = await start_executor(nursery, net.node, settings, pool=pool)
        assert second.role.statistics().resumed == 1
        with trio.fail_after(LIMIT):
            result = await net.broker.result(slow.job_id)
            assert result.status == ResultStatus.TIMEOUT
            # The journal survived the restart: the finished job is not run again.
            await net.broker.dispatch(net.executor_endpoint, quick, attempt=2)
            await net.broker.result(quick.job_id, count=2)
        assert net.broker.results_of(quick.job_id)[1] == answer
        stats = second.role.statistics()
        assert (stats.resumed, stats.duplicates, stats.finished) == (1, 1, 1)
        # The successful job's directory is gone; the failed one's is kept for a look.
        jobs_dir = tmp_path / "executor" / "jobs"
        assert not (jobs_dir / str(quick.job_id)).exists()
        assert (jobs_dir / str(slow.job_id) / "dir").is_dir()
        nursery.cancel_scope.cancel()


async def test_a_running_job_reports_its_output_and_stops_when_cancelled() -> None:
    async with network() as net, trio.open_nursery() as nursery:
        executor = await start_executor(nursery, net.node, executor_settings())
        executor.role.output_interval_s = 0.05
        ticker = job(name="ticker", wasm=InlineData(wasm("ticker")), limits=Limits(time=600))
        early = job(name="early")
        # A cancel that overtakes its dispatch: the dispatch is answered, not run.
        await net.broker.cancel(net.executor_endpoint, early.job_id, reason="changed my mind")
        await wait_until(lambda: executor.role.statistics().received == 0, timeout=LIMIT)
        await net.broker.dispatch(net.executor_endpoint, ticker)
        with trio.fail_after(LIMIT):
            # The broker hears the output while the job runs.
            await wait_until(lambda: net.broker.output_of(ticker.job_id).count(b"tick\n") >= 3)
            assert set(net.broker.output_of(ticker.job_id).split(b"\n")) == {b"tick", b""}
            assert executor.role.statistics().running == 1
            await net.broker.cancel(net.executor_endpoint, ticker.job_id, reason="enough")
            result = await net.broker.result(ticker.job_id)
            assert (result.status, result.message) == (ResultStatus.CANCELLED, "enough")
            await wait_until(lambda: executor.role.statistics().running == 0)
            await net.broker.dispatch(net.executor_endpoint, early)
            answered = await net.broker.result(early.job_id)
            assert (answered.status, answered.message) == (
                ResultStatus.CANCELLED,
                "changed my mind",
            )
        stats = executor.role.statistics()
        assert (stats.cancelled, stats.received, stats.duplicates) == (1, 1, 1)
        nursery.cancel_scope.cancel()


async def test_bare_argv_has_no_program_name() -> None:
    async with network() as net, trio.open_nursery() as nursery:
        await start_executor(nursery, net.node, executor_settings())
        echo = InlineData(wasm("echo"))
        plain = job(wasm=echo, args=("a", "b"))
        bare = job(wasm=echo, args=("a", "b"), bare_argv=True)
        for each in (plain, bare):
            await net.broker.dispatch(net.executor_endpoint, each)
        with trio.fail_after(LIMIT):
            assert (await net.broker.result(plain.job_id)).stdout_tail == b"job.wasm\0a\0b\0||"
            assert (await net.broker.result(bare.job_id)).stdout_tail == b"a\0b\0||"
        nursery.cancel_scope.cancel()


async def test_a_named_result_whose_name_is_taken_fails_the_job() -> None:
    async with network() as net, trio.open_nursery() as nursery:
        await start_executor(nursery, net.node, executor_settings())
        net.broker.taken.add("wasm_output_file")
        publisher = job(
            args=("-", "out.txt"),
            stdin=InlineData(b"hello-from-wasi"),
            named_results={"out.txt": "wasm_output_file"},
            zip_results=("out.txt",),
        )
        replacer = job(
            args=("-", "out.txt"),
            stdin=InlineData(b"again"),
            named_results={"out.txt": "wasm_output_file"},
            replace_results=True,
        )
        await net.broker.dispatch(net.executor_endpoint, publisher)
        await net.broker.dispatch(net.executor_endpoint, replacer)
        with trio.fail_after(LIMIT):
            assert (await net.broker.result(replacer.job_id)).ok
            result = await net.broker.result(publisher.job_id)
        assert result.status == ResultStatus.EXECUTOR_ERROR
        assert result.message == (
            "publishing failed: 'wasm_output_file': name 'wasm_output_file' already taken"
        )
        assert result.published == ()
        puts = {p.job_id: p for p in net.broker.puts if p.name == "wasm_output_file"}
        assert puts[publisher.job_id].exclusive
        assert not puts[replacer.job_id].exclusive  # replace_results: the newest write wins
        nursery.cancel_scope.cancel()


async def test_standard_input_fetched_once_is_linked_from_the_input_cache(tmp_path: Path) -> None:
    """The value of a first fetch goes into the input cache and the job directory links it
    from there (one write of the bytes, not two), without counting a cache hit."""
    audio = random.Random(16).randbytes(200_000)
    digest = hashlib.sha256(audio).digest()
    async with network() as net, trio.open_nursery() as nursery:
        net.broker.data["audio"] = DataItem("audio", audio, written_at=1.0, digest=digest)
        executor = await start_executor(nursery, net.node, executor_settings(tmp_path))
        # A failing job keeps its directory: its stdin file is there to look at.
        failing = job(wasm=InlineData(wasm("exit", EXIT_CODE="3")), stdin=DataRef("audio"))
        await net.broker.dispatch(net.executor_endpoint, failing)
        with trio.fail_after(LIMIT):
            result = await net.broker.result(failing.job_id)
        assert (result.status, result.exit_code) == (ResultStatus.EXIT, 3), result
        stdin = tmp_path / "executor" / "jobs" / str(failing.job_id) / "stdin"
        cached = tmp_path / "executor" / "inputs" / digest.hex()
        assert stdin.read_bytes() == audio
        assert os.stat(stdin).st_ino == os.stat(cached).st_ino
        stats = executor.role.statistics()
        assert (stats.bytes_fetched, stats.input_cache_hits) == (len(audio), 0)
        nursery.cancel_scope.cancel()


async def test_a_job_on_cached_standard_input_runs_while_its_datastore_confirms_it(
    tmp_path: Path,
) -> None:
    """A job whose only named datum is its standard input starts on the value the input cache
    holds while the data request is on its way; its result waits for the answer, and a new
    value in the answer makes it run again on that."""
    versions = [b"first version\n", b"second version\n"]

    def put(version: int) -> None:
        value = versions[version]
        net.broker.data["s"] = DataItem(
            "s", value, written_at=1.0 + version, digest=hashlib.sha256(value).digest()
        )

    async with network() as net, trio.open_nursery() as nursery:
        put(0)
        executor = await start_executor(nursery, net.node, executor_settings(tmp_path))
        pool = executor.role.pool
        assert pool is not None

        async def run_copy(*, held: bool, runs: int) -> JobResult:
            """Run a job copying "s" to stdout, which ran ``runs`` times; with the data
            requests held until it has run once (on the value the executor holds)."""
            each = job(stdin=DataRef("s"), args=("-", "-"))
            before = pool.statistics().jobs
            net.broker.hold_gets = trio.Event() if held else None
            await net.broker.dispatch(net.executor_endpoint, each)
            with trio.fail_after(LIMIT):
                if net.broker.hold_gets is not None:
                    await wait_until(lambda: pool.statistics().jobs == before + 1, timeout=LIMIT)
                    assert net.broker.results_of(each.job_id) == []  # waits for the answer
                    net.broker.hold_gets.set()
                result = await net.broker.result(each.job_id)
            assert pool.statistics().jobs == before + runs
            return result

        # Nothing noted for "s" yet: fetched first, then run.
        assert (await run_copy(held=False, runs=1)).stdout_tail == versions[0]
        # Noted and held: it runs before the answer comes, which confirms it.
        assert (await run_copy(held=True, runs=1)).stdout_tail == versions[0]
        # A new value: the run on the old one is dropped, the job runs again on the new one.
        put(1)
        assert (await run_copy(held=True, runs=2)).stdout_tail == versions[1]
        assert executor.role.statistics().input_failures == 0
        # Gone from the datastores: the run on the old value does not count.
        del net.broker.data["s"]
        gone = await run_copy(held=True, runs=1)
        assert (gone.status, gone.message) == (
            ResultStatus.INPUT_MISSING,
            "missing input data: 's'",
        )
        assert executor.role.statistics().input_failures == 1
        nursery.cancel_scope.cancel()


#: Copies the first 1 KiB of stdin to stdout, then spins forever if it began with "s".
SPIN_ON_S = """
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 1024))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 115))
      (then (loop $forever (br $forever))))))
"""


async def test_a_run_on_an_outdated_standard_input_is_stopped_at_the_answer(
    tmp_path: Path,
) -> None:
    """The run on the held value is still going when the answer brings a new one: it is
    stopped there (its worker killed), and the job runs on the new value."""
    spinner = InlineData(wat(SPIN_ON_S))

    def put(value: bytes, written_at: float) -> None:
        net.broker.data["s"] = DataItem(
            "s", value, written_at=written_at, digest=hashlib.sha256(value).digest()
        )

    async with network() as net, trio.open_nursery() as nursery:
        put(b"spin\n", 1.0)
        executor = await start_executor(nursery, net.node, executor_settings(tmp_path))
        pool = executor.role.pool
        assert pool is not None
        first = job(wasm=spinner, stdin=DataRef("s"), limits=Limits(time=0.5))
        await net.broker.dispatch(net.executor_endpoint, first)
        with trio.fail_after(LIMIT):
            assert (await net.broker.result(first.job_id)).status == ResultStatus.TIMEOUT
        killed = pool.statistics().workers_killed
        put(b"halt\n", 2.0)
        net.broker.hold_gets = trio.Event()
        second = job(wasm=spinner, stdin=DataRef("s"), limits=Limits(time=10 * LIMIT))
        await net.broker.dispatch(net.executor_endpoint, second)
        with trio.fail_after(LIMIT):
            await wait_until(lambda: pool.statistics().running == 1, timeout=LIMIT)  # spinning
            net.broker.hold_gets.set()
            result = await net.broker.result(second.job_id)
        assert (result.status, result.stdout_tail) == (ResultStatus.OK, b"halt\n"), result
        assert pool.statistics().workers_killed == killed + 1
        nursery.cancel_scope.cancel()


async def test_jobs_waiting_for_a_slot_fetch_and_build_meanwhile(tmp_path: Path) -> None:
    """A slot is held by a job's run alone: while the only slot runs a long job, the next one
    has fetched its data and built its directory, and runs as soon as the slot is free."""
    async with network() as net, trio.open_nursery() as nursery:
        net.broker.data["s"] = DataItem(
            "s", b"waiting\n", written_at=1.0, digest=hashlib.sha256(b"waiting\n").digest()
        )
        executor = await start_executor(nursery, net.node, executor_settings(tmp_path, max_jobs=1))
        executor.role.output_interval_s = 0.05
        ticker = job(name="ticker", wasm=InlineData(wasm("ticker")), limits=Limits(time=600))
        follower = job(name="follower", stdin=DataRef("s"), args=("-", "-"))
        await net.broker.dispatch(net.executor_endpoint, ticker)
        with trio.fail_after(LIMIT):
            await wait_until(lambda: b"tick\n" in net.broker.output_of(ticker.job_id))
            await net.broker.dispatch(net.executor_endpoint, follower)
            directory = tmp_path / "executor" / "jobs" / str(follower.job_id)
            # Fetched and built while the ticker still holds the slot.
            await wait_until(lambda: any(get.query == "s" for get in net.broker.gets))
            await wait_until(lambda: (directory / "stdin").exists())
            stats = executor.role.statistics()
            assert stats.running == 1 and net.broker.results_of(ticker.job_id) == []
            await net.broker.cancel(net.executor_endpoint, ticker.job_id, reason="enough")
            assert (await net.broker.result(ticker.job_id)).status == ResultStatus.CANCELLED
            result = await net.broker.result(follower.job_id)
        assert (result.status, result.stdout_tail) == (ResultStatus.OK, b"waiting\n")
        nursery.cancel_scope.cancel()


async def test_an_executor_whose_node_store_closes_under_it_stops_quietly() -> None:
    """A message confirmed while the node's store was being closed (node and roles cancelled
    at once) raised StoreClosedError out of the role; it now ends as on its node's stop."""
    store = StoreClosingAtConfirm()
    async with network(executor_store=store) as net, trio.open_nursery() as nursery:
        executor = await start_executor(nursery, net.node, executor_settings())
        store.closing = True
        # A cancel for a job the executor never had: answered, then confirmed.
        await net.broker.cancel(net.executor_endpoint, uuid.uuid4(), reason="never mind")
        with trio.fail_after(LIMIT):
            await executor.stopped.wait()
        nursery.cancel_scope.cancel()
