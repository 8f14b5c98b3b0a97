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
is written outside the target directory (not even through a link already there). An archive
that would unpack to more than the client's limits (``--collect-max-size``,
``--collect-max-files``: a small archive can hold gigabytes of zeros) is refused before a byte
is written, with :class:`ArchiveLimitError`; the job is not marked collected, so it is
collected later with a higher limit. The files are written to a staging directory beside the
target and moved in once all are there; what is written is for its owner only.
"""

from __future__ import annotations

import enum
import io
import logging
import os
import re
import shutil
import stat
import tempfile
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ..private_files import FILE_MODE, make_private_directory
from ..ucp import JobStatus, ResultStatus
from ..ucp.errors import DataNameError
from ..ucp.names import validate_path
from .errors import ClientError, NoReply
from .jobs import fetch_archive, fetch_result
from .journal import JobEntry
from .session import ClientSession
from .settings import DEFAULT_COLLECT_MAX_BYTES, DEFAULT_COLLECT_MAX_FILES
from .stranded import move_stranded

__all__ = [
    "ArchiveLimitError",
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


class ArchiveLimitError(ClientError):
    """A results archive unpacks to more bytes or files than the client's limits allow; nothing
    of it was written, and it stays collectable with a higher limit."""


@dataclass(frozen=True, slots=True)
class _Member:
    """An archive member that passed the checks and will be written."""

    info: zipfile.ZipInfo
    name: str


def _members(bundle: zipfile.ZipFile, skipped: list[str]) -> list[_Member]:
    """The members to write: regular files with a valid job path; the others go to
    ``skipped`` with why."""
    members = []
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
        members.append(_Member(member, name))
    return members


def _size(octets: int) -> str:
    from convergence.quantities import format_size

    text = format_size(octets)
    return f"{text} bytes" if text.isdigit() else text


def _too_large(what: str, limit: str, setting: str) -> ArchiveLimitError:
    return ArchiveLimitError(
        f"the results archive unpacks to {what}, over the limit of {limit} "
        f"(--{setting.replace('_', '-')}): nothing was unpacked; collect again with a higher limit"
    )


def _copy_member(
    bundle: zipfile.ZipFile, member: _Member, path: Path, budget: int, max_bytes: int
) -> int:
    """Write ``member`` to ``path`` (owner-only), at most ``budget`` bytes; the bytes written."""
    written = 0
    make_private_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with bundle.open(member.info) as source, os.fdopen(descriptor, "wb") as sink:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if written > budget:  # (zipfile stops at the declared size: a lying archive)
                raise _too_large(
                    f"more than {_size(max_bytes)}",
                    _size(max_bytes),
                    "collect_max_size",
                )
            sink.write(chunk)
    return written


def unpack_archive(
    archive: bytes,
    target: Path,
    *,
    max_bytes: int = DEFAULT_COLLECT_MAX_BYTES,
    max_files: int = DEFAULT_COLLECT_MAX_FILES,
) -> tuple[list[str], list[str]]:
    """Unpack zip ``archive`` into ``target`` (created, owner-only); returns the files written
    and the members skipped (with why). :class:`ClientError` if it is not a zip archive;
    :class:`ArchiveLimitError` if it holds more than ``max_files`` files or unpacks to more than
    ``max_bytes``. All or nothing: the files are written to a staging directory beside
    ``target`` and moved in only when every one was written. Blocking."""
    skipped: list[str] = []
    try:
        bundle = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as exc:
        raise ClientError(f"the results archive is not a zip archive: {exc}") from None
    with bundle:
        members = _members(bundle, skipped)
        # The sizes the archive declares bound what zipfile will give (it stops there), so a
        # bomb is refused before a byte is written.
        if len(members) > max_files:
            raise _too_large(f"{len(members)} files", f"{max_files} files", "collect_max_files")
        declared = sum(member.info.file_size for member in members)
        if declared > max_bytes:
            raise _too_large(_size(declared), _size(max_bytes), "collect_max_size")
        try:
            if not target.parent.exists():
                make_private_directory(target.parent)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError as exc:
            raise ClientError(f"cannot unpack into {target}: {exc.strerror or exc}") from None
        written: list[str] = []
        try:
            budget = max_bytes
            for member in members:
                staged = staging / member.name
                if member.name in written:  # the same name twice: the later one wins
                    staged.unlink()
                    written.remove(member.name)
                try:
                    budget -= _copy_member(bundle, member, staged, budget, max_bytes)
                except (zipfile.BadZipFile, EOFError) as exc:
                    staged.unlink(missing_ok=True)
                    skipped.append(f"{member.name} (damaged: {exc})")
                    continue
                except (NotADirectoryError, IsADirectoryError, FileExistsError):
                    skipped.append(f"{member.name} (a file and a folder of the same name)")
                    continue
                written.append(member.name)
            if _rename_into_place(staging, target):
                return written, skipped
            moved = _move_into(staging, target, written, skipped)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ClientError(f"cannot unpack into {target}: {exc.strerror or exc}") from None
        shutil.rmtree(staging, ignore_errors=True)
    return moved, skipped


def _rename_into_place(staging: Path, target: Path) -> bool:
    """The common case, a target that does not exist yet: the staging directory (owner-only,
    holding only checked names and no links) becomes it by one rename. No file-by-file move,
    and no removal of the emptied staging directory, which on some file systems costs more
    than the whole unpacking (~3 ms per ``rmdir``). False if the target exists (collected
    before): the files are moved in one by one."""
    if os.path.lexists(target):
        return False
    try:
        os.rename(staging, target)
    except OSError:
        return False  # created meanwhile (or not renameable): move the files one by one
    return True


def _move_into(staging: Path, target: Path, written: list[str], skipped: list[str]) -> list[str]:
    """Move the staged files into ``target``; the names moved. A name whose place in ``target``
    leads elsewhere (through a link already there) is skipped."""
    make_private_directory(target)
    root = target.resolve()
    moved = []
    for name in written:
        path = root / name
        if not path.parent.resolve().is_relative_to(root) or path.is_symlink():
            skipped.append(f"{name} (outside the directory)")
            continue
        try:
            make_private_directory(path.parent)
            os.replace(staging / name, path)
        except (NotADirectoryError, IsADirectoryError):
            skipped.append(f"{name} (a file and a folder of the same name)")
            continue
        moved.append(name)
    return moved


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
        # A job no broker knows may be stranded with a lost one: send it again here.
        await move_stranded(session, unsettled, reply)
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


_COLLECT_GROUP = 64
"""Results unpacked in one worker-thread call and marked collected in one journal transaction
(a plan of hundreds of small jobs: one thread call and one durable commit per job was most of
the time from the last result to the collected outputs)."""


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
    collected: list[Collected] = []
    group: list[_Unpack] = []
    marks: list[tuple[uuid.UUID, str | None]] = []
    try:
        for entry in entries:
            state = _state_of(entry)
            result = entry.result
            if result is None:
                if state in (CollectState.REJECTED, CollectState.CANCELLED):
                    marks.append((entry.job_id, None))
                collected.append(Collected(entry, state))
                continue
            archive = await fetch_archive(session, result)
            group.append(_Unpack(entry, state, directory / folder_name(entry.name), archive))
            if len(group) >= _COLLECT_GROUP:
                collected += await _unpack_group(session, group, marks)
                group = []
        collected += await _unpack_group(session, group, marks)
    finally:
        # What was unpacked is marked even when a later archive failed (collecting it again
        # would be harmless: same files, same content).
        if marks:
            await session.journal.mark_collected_many(marks)
    return collected


@dataclass(frozen=True, slots=True)
class _Unpack:
    """One result to unpack (or, without an archive, a directory to create)."""

    entry: JobEntry
    state: CollectState
    target: Path
    archive: bytes | None


async def _unpack_group(
    session: ClientSession, group: list[_Unpack], marks: list[tuple[uuid.UUID, str | None]]
) -> list[Collected]:
    """Unpack ``group`` in one worker-thread call, in order; each one unpacked is added to
    ``marks``. The first failure stops the group and is raised (after those before it)."""
    if not group:
        return []
    max_bytes = session.settings.collect_max_bytes
    max_files = session.settings.collect_max_files

    def unpack_all() -> tuple[list[tuple[list[str], list[str]]], Exception | None]:
        done: list[tuple[list[str], list[str]]] = []
        for item in group:
            try:
                if item.archive is not None:
                    done.append(
                        unpack_archive(
                            item.archive, item.target, max_bytes=max_bytes, max_files=max_files
                        )
                    )
                else:
                    make_private_directory(item.target)
                    done.append(([], []))
            except (ClientError, OSError) as exc:
                return done, exc
        return done, None

    done, error = await trio.to_thread.run_sync(unpack_all)
    collected = []
    for item, (files, skipped) in zip(group, done, strict=False):
        marks.append((item.entry.job_id, str(item.target)))
        collected.append(
            Collected(item.entry, item.state, item.target, tuple(files), tuple(skipped))
        )
    if error is not None:
        failed = group[len(done)]
        if isinstance(error, ArchiveLimitError):  # (not marked collected: a higher limit will do)
            raise ArchiveLimitError(f"{failed.entry.label}: {error}") from None
        if isinstance(error, OSError):
            raise ClientError(f"cannot create {failed.target}: {error.strerror or error}") from None
        raise error
    return collected
