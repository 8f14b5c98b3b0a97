"""Collecting results: :func:`collect_results` and :func:`unpack_archive`.

A job's result reaches the client in one of two ways: the ``job-result`` bundle the broker
sends to the client endpoint (it waits in the network while the client is away, and whichever
``ucp`` command runs next writes it to the journal), or — when that bundle expired or waits on
a node the client no longer meets — the copy every broker stores in a datastore as
``<job-uuid>/result``, which any broker can fetch.

Collecting a job unpacks its results archive (inline in the result, or stored as named data
``<job-uuid>/archive`` when large) into ``DIR/<folder>/`` and notes that in the journal; the
folder is the job's name made safe for shells (:func:`folder_name`: ``jobs[0]`` would be a glob
pattern, ``-x`` an option).
Collecting again unpacks again (same files, same content): it is harmless.

Archives come from the network, so unpacking trusts nothing: every member must be a valid job
path (relative, no ``..``, no backslash...), links and special files are skipped, and nothing
is written outside the target directory.
"""

from __future__ import annotations

import enum
import io
import logging
import os
import re
import stat
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ..ucp import JobStatus, ResultStatus
from ..ucp.errors import DataNameError
from ..ucp.names import validate_path
from .errors import ClientError, NoReply
from .jobs import fetch_archive, fetch_result
from .journal import JobEntry
from .session import ClientSession

__all__ = [
    "Collected",
    "CollectState",
    "collect_results",
    "folder_name",
    "result_summary",
    "unpack_archive",
]

logger = logging.getLogger(__name__)

_RESULT_WAIT_S = 2.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def folder_name(job_name: str) -> str:
    """The folder a job's results go to: its name with everything but letters, digits and
    ``. _ - +`` replaced by ``_``, and a ``_`` in front of a leading ``-`` or ``.``, so a shell
    takes it as it is (no glob pattern, no option, no hidden or parent directory)."""
    name = _UNSAFE.sub("_", job_name) or "_"
    return "_" + name if name[0] in "-." else name


class CollectState(enum.Enum):
    """Where a job stands for ``ucp collect``."""

    DONE = "done"
    """It succeeded; its results are unpacked."""
    FAILED = "failed"
    """It ran and failed; what it left is unpacked."""
    REJECTED = "rejected"
    """It will never run (the broker said why)."""
    CANCELLED = "cancelled"
    """Its client cancelled it."""
    PENDING = "pending"
    """No result yet (queued, running, or the result is not reachable now)."""


@dataclass(frozen=True, slots=True)
class Collected:
    """One job as ``ucp collect`` found it."""

    entry: JobEntry
    """The job (with its result, if any)."""
    state: CollectState
    """Done (results unpacked), failed, rejected, or still pending."""
    directory: Path | None = None
    """Where its results were unpacked."""
    files: tuple[str, ...] = ()
    """The files unpacked (relative to :attr:`directory`)."""
    skipped: tuple[str, ...] = ()
    """Archive members not unpacked (links, bad paths), with why."""


def unpack_archive(archive: bytes, target: Path) -> tuple[list[str], list[str]]:
    """Unpack zip ``archive`` into ``target`` (created); returns the files written and the
    members skipped (with why). :class:`ClientError` if it is not a zip archive. Blocking."""
    written: list[str] = []
    skipped: list[str] = []
    try:
        bundle = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as exc:
        raise ClientError(f"the results archive is not a zip archive: {exc}") from None
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with bundle:
        for member in bundle.infolist():
            name = member.filename
            if member.is_dir():
                continue
            kind = stat.S_IFMT(member.external_attr >> 16)
            if kind not in (0, stat.S_IFREG):  # no type bits: a plain file (Windows, writestr)
                skipped.append(f"{name} (not a regular file)")
                continue
            try:
                validate_path(name, "archive member")
            except DataNameError as exc:
                skipped.append(f"{name} ({exc.reason})")
                continue
            path = root / name
            if not path.resolve().is_relative_to(root):
                skipped.append(f"{name} (outside the directory)")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".ucp-part")
            try:
                with bundle.open(member) as source, temporary.open("wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                os.replace(temporary, path)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                temporary.unlink(missing_ok=True)
                if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
                    raise ClientError(f"cannot write {path}: {exc.strerror or exc}") from None
                skipped.append(f"{name} (damaged: {exc})")
                continue
            written.append(name)
    return written, skipped


def result_summary(entry: JobEntry) -> str:
    """One line: how the job ended (or where it stands)."""
    result = entry.result
    if result is None:
        if entry.state is None:
            return "not heard of at the broker yet"
        state = entry.state.name.lower() if isinstance(entry.state, JobStatus) else entry.state
        return f"{state}: {entry.detail}" if entry.detail else str(state)
    if result.ok:
        return "done, exit code 0"
    status = (
        result.status.name.lower().replace("_", " ")
        if isinstance(result.status, ResultStatus)
        else f"status {result.status}"
    )
    parts = [f"failed ({status})"]
    if result.exit_code is not None:
        parts.append(f"exit code {result.exit_code}")
    if result.message:
        parts.append(result.message)
    return ", ".join(parts)


def _state_of(entry: JobEntry) -> CollectState:
    if entry.result is not None:
        return CollectState.DONE if entry.result.ok else CollectState.FAILED
    if entry.state == JobStatus.REJECTED:
        return CollectState.REJECTED
    if entry.state == JobStatus.CANCELLED:
        return CollectState.CANCELLED
    return CollectState.PENDING


async def _settled(session: ClientSession, job_ids: Sequence[uuid.UUID]) -> bool:
    for job_id in job_ids:
        entry = await session.journal.get(job_id)
        if entry is not None and not entry.settled:
            return False
    return True


async def _reach_results(session: ClientSession, entries: list[JobEntry]) -> list[JobEntry]:
    """Get what a reachable broker and the datastores know about jobs without a result."""
    unsettled = [entry.job_id for entry in entries if not entry.settled]
    if not unsettled or await session.find_broker() is None:
        return entries
    reported: dict[uuid.UUID, JobStatus | int] = {}
    try:
        reply = await session.status(tuple(unsettled))
        reported = {job.job_id: job.state for job in reply.jobs}
    except NoReply as exc:
        logger.warning("%s", exc)
    # A result may exist for jobs the broker reports finished, and for jobs it does not know
    # (another broker took them). One waiting in the network comes as soon as the session is
    # up: give it a moment, then ask the datastores.
    candidates = [
        job_id
        for job_id in unsettled
        if reported.get(job_id) in (None, JobStatus.DONE, JobStatus.FAILED)
    ]
    with trio.move_on_after(_RESULT_WAIT_S):
        while True:
            change = session.next_change()
            if await _settled(session, candidates):
                break
            await change.wait()
    # Every unsettled job may have its result in a datastore, whatever the answering broker
    # said: its state may be a stale copy from a broker that is gone (broker sync), while the
    # result was stored before that broker went.
    for job_id in unsettled:
        if reported.get(job_id) in (JobStatus.REJECTED, JobStatus.CANCELLED):
            continue
        entry = await session.journal.get(job_id)
        if entry is not None and not entry.settled:
            try:
                await fetch_result(session, job_id)
            except NoReply as exc:
                logger.warning("result of %s: %s", job_id, exc)
    return [await session.journal.get(entry.job_id) or entry for entry in entries]


async def collect_results(
    session: ClientSession,
    entries: Sequence[JobEntry],
    directory: Path,
    *,
    reach_broker: bool = True,
) -> list[Collected]:
    """Collect ``entries`` into ``directory/<job-name>/`` (see the module docstring). With
    ``reach_broker``, ask a reachable broker about jobs without a result and fetch results
    from the datastores; otherwise use only what the journal holds."""
    entries = list(entries)
    if reach_broker:
        entries = await _reach_results(session, entries)
    collected = []
    for entry in entries:
        state = _state_of(entry)
        result = entry.result
        if result is None:
            if state in (CollectState.REJECTED, CollectState.CANCELLED):
                await session.journal.mark_collected(entry.job_id, None)
            collected.append(Collected(entry, state))
            continue
        archive = await fetch_archive(session, result)
        target = directory / folder_name(entry.name)
        files: list[str] = []
        skipped: list[str] = []
        if archive is not None:
            files, skipped = await trio.to_thread.run_sync(unpack_archive, archive, target)
        else:
            await trio.to_thread.run_sync(os.makedirs, target, 0o777, True)
        await session.journal.mark_collected(entry.job_id, str(target))
        collected.append(Collected(entry, state, target, tuple(files), tuple(skipped)))
    return collected
