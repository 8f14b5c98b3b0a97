"""What a job leaves behind: the results archive and the named results.

* :func:`archive_entries` picks the files of ``zip_results`` (files, directories with everything
  below them, ``prefix*`` patterns) and :func:`write_archive` packs them, with the captured
  stdout and stderr, into a zip that depends only on the files' names and contents (sorted
  entries, fixed timestamps and permissions), so two runs producing the same files produce the
  same bytes.
* :func:`collect_named_results` maps ``named_results`` onto data: a plain path is one datum (a
  directory becomes one zip archive of its files, each under the directory's own name —
  ``output/stdout.log`` for ``output``, as REC lays such archives out), ``"out/*" =
  "runs/7/*"`` publishes every file below ``out`` as ``runs/7/<rest>``
  (:func:`~ucp_dtn.ucp.names.map_wildcard`).

Blocking (file I/O): called through ``trio.to_thread``.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...private_files import open_private
from ...ucp.errors import DataNameError
from ...ucp.names import DataName, JobPath, is_wildcard, map_wildcard, name_matches
from .jobdir import JobDirectory

__all__ = [
    "NamedResults",
    "archive_entries",
    "collect_named_results",
    "write_archive",
    "zip_directory",
]

# Every entry gets the same timestamp (the earliest a zip can hold) and permissions, so the
# archive's bytes depend only on the entries' names and contents.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16
_UNIX = 3
_COMPRESSION = zipfile.ZIP_DEFLATED
_LEVEL = 6
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class NamedResults:
    """The named results of a run, ready to publish."""

    data: tuple[tuple[DataName, bytes], ...]
    """``(name, content)`` pairs, sorted by name."""
    problems: tuple[str, ...]
    """One line per result that could not be collected (a path the job did not produce, a file
    whose path is not a valid data name)."""


def archive_entries(tree: JobDirectory, zip_results: Iterable[JobPath]) -> list[JobPath]:
    """The regular files ``zip_results`` selects, sorted: a file, every file below a
    directory, every file a ``prefix*`` pattern matches. Paths that select nothing are
    skipped."""
    files = tree.regular_files()
    chosen: set[JobPath] = set()
    for entry in zip_results:
        # A plain path selects itself (a file) or everything below it (a directory), by path
        # segment; a pattern selects what starts with its prefix.
        chosen.update(path for path in files if name_matches(entry, path))
    return sorted(chosen)


def _zip_info(arcname: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    info.compress_type = _COMPRESSION
    info.external_attr = _FILE_MODE
    info.create_system = _UNIX
    info.file_size = size
    return info


def write_archive(
    tree: JobDirectory,
    entries: Iterable[JobPath],
    target: Path,
    *,
    streams: Mapping[str, Path] | None = None,
) -> int:
    """Write the zip of ``entries`` (job paths) to ``target`` and return its size.

    ``streams`` adds host files (the captured ``stdout`` and ``stderr``) under their archive
    names, unless the job's own files already use that name (the job's file wins; the
    stream's end still travels in the result's tails). Files that vanished are skipped.
    """
    names = sorted(set(entries))
    extra = {name: path for name, path in (streams or {}).items() if name not in names}
    with (
        os.fdopen(open_private(target, os.O_WRONLY | os.O_TRUNC), "wb") as raw,
        zipfile.ZipFile(raw, "w", _COMPRESSION, compresslevel=_LEVEL) as archive,
    ):
        for arcname in sorted({*names, *extra}):
            if arcname in extra:
                try:
                    source = open(extra[arcname], "rb")  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    continue
                with source:
                    size = source.seek(0, io.SEEK_END)
                    source.seek(0)
                    with archive.open(_zip_info(arcname, size), "w") as sink:
                        shutil.copyfileobj(source, sink, _COPY_CHUNK)
                continue
            try:
                with (
                    tree.open_file(arcname) as (file, size),
                    archive.open(_zip_info(arcname, size), "w") as sink,
                ):
                    shutil.copyfileobj(file, sink, _COPY_CHUNK)
            except FileNotFoundError:
                continue
    return target.stat().st_size


def zip_directory(tree: JobDirectory, directory: JobPath) -> bytes:
    """A deterministic zip of every regular file below ``directory``, with archive names
    relative to the directory's parent: ``a/out`` packs ``a/out/x`` as ``out/x`` (REC's layout
    of a directory published as a named result)."""
    prefix = directory + "/"
    parent = directory.rpartition("/")[0]
    strip = len(parent) + 1 if parent else 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", _COMPRESSION, compresslevel=_LEVEL) as archive:
        for path in tree.regular_files():
            if not path.startswith(prefix):
                continue
            try:
                data = tree.read(path)
            except FileNotFoundError:
                continue
            archive.writestr(_zip_info(path[strip:], len(data)), data)
    return buffer.getvalue()


def collect_named_results(
    tree: JobDirectory, named_results: Mapping[JobPath, DataName]
) -> NamedResults:
    """Read the job's named results out of its directory (see the module docstring)."""
    data: dict[DataName, bytes] = {}
    problems: list[str] = []
    files: list[JobPath] | None = None
    for path, name in sorted(named_results.items()):
        if is_wildcard(path):
            if files is None:
                files = tree.regular_files()
            for candidate in files:
                if not name_matches(path, candidate):
                    continue
                try:
                    [produced] = map_wildcard(
                        path, name, [candidate], field=f"named_results[{path!r}]"
                    ).values()
                except DataNameError as exc:
                    problems.append(f"{candidate!r} cannot be published: {exc.reason}")
                    continue
                try:
                    data[produced] = tree.read(candidate)
                except FileNotFoundError:
                    problems.append(f"{candidate!r} vanished before it could be published")
            continue
        kind = tree.kind(path)
        if kind == "file":
            try:
                data[name] = tree.read(path)
            except FileNotFoundError:
                problems.append(f"{path!r} vanished before it could be published")
        elif kind == "dir":
            data[name] = zip_directory(tree, path)
        else:
            problems.append(f"the job did not produce {path!r} (for {name!r})")
    return NamedResults(tuple(sorted(data.items())), tuple(problems))
