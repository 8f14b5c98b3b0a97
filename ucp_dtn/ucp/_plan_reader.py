"""Shared machinery of the plan format parsers: typed access to TOML values with errors that
name the file, job and field; files next to the plan; uploads and the inline/upload choice."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FieldError, PlanError
from .job import DataRef, DataSource, InlineData, check_replicas
from .plan import Upload

__all__ = ["PlanReader"]


def type_name(value: object) -> str:
    """TOML's name for the type of ``value``."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # pragma: no cover - tomllib also gives dates and times


class PlanReader:
    """Reads one plan file; collects its uploads."""

    def __init__(
        self,
        file: str,
        base_dir: Path,
        *,
        inline_limit: int,
        new_id: Callable[[], uuid.UUID],
    ) -> None:
        self.file = file
        """The plan file as the user named it (for messages)."""
        self.base_dir = base_dir
        """Where relative file names in the plan start."""
        self.inline_limit = inline_limit
        """Files up to this size travel inside the job submission; larger ones are uploaded."""
        self.new_id = new_id
        """Source of job UUIDs."""
        self.uploads: dict[str, Upload] = {}
        """Uploads by data name, in declaration order."""

    # -- errors ------------------------------------------------------------------------------

    def error(self, reason: str, *, job: str | None = None, field: str | None = None) -> PlanError:
        """A :class:`PlanError` for this file."""
        return PlanError(self.file, reason, job=job, field=field)

    @contextmanager
    def at(self, *, job: str | None, field: str) -> Iterator[None]:
        """Turn :class:`FieldError` and :class:`ValueError` raised inside into a
        :class:`PlanError` naming ``job`` and ``field``."""
        try:
            yield
        except PlanError:
            raise
        except FieldError as exc:
            raise self.error(exc.reason, job=job, field=field) from None
        except ValueError as exc:
            raise self.error(str(exc), job=job, field=field) from None

    # -- typed values ------------------------------------------------------------------------

    def table(self, value: object, *, job: str | None, field: str) -> dict[str, Any]:
        """``value`` if it is a TOML table."""
        if not isinstance(value, dict):
            raise self.error(f"must be a table, got {type_name(value)}", job=job, field=field)
        return value

    def check_keys(
        self, table: dict[str, Any], allowed: Iterable[str], *, job: str | None, prefix: str
    ) -> None:
        """:class:`PlanError` for the first key of ``table`` not in ``allowed``."""
        known = set(allowed)
        for key in table:
            if key not in known:
                raise self.error(
                    f"unknown key (known: {', '.join(sorted(known))})",
                    job=job,
                    field=prefix + key,
                )

    def text(self, value: object, *, job: str | None, field: str) -> str:
        """``value`` if it is a string."""
        if not isinstance(value, str):
            raise self.error(f"must be a string, got {type_name(value)}", job=job, field=field)
        return value

    def boolean(self, value: object, *, job: str | None, field: str) -> bool:
        """``value`` if it is a boolean."""
        if not isinstance(value, bool):
            raise self.error(f"must be a boolean, got {type_name(value)}", job=job, field=field)
        return value

    def number(self, value: object, *, job: str | None, field: str) -> float:
        """``value`` if it is an integer or float."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"must be a number, got {type_name(value)}", job=job, field=field)
        return float(value)

    def replicas(self, value: object, *, job: str | None, field: str) -> int:
        """``value`` if it is a replication factor (a whole number from 1 to 16)."""
        with self.at(job=job, field=field):
            return check_replicas(value, field)

    def text_list(self, value: object, *, job: str | None, field: str) -> list[str]:
        """``value`` if it is an array of strings."""
        if not isinstance(value, list):
            raise self.error(f"must be an array, got {type_name(value)}", job=job, field=field)
        for index, item in enumerate(value):
            self.text(item, job=job, field=f"{field}[{index}]")
        return value

    def text_table(self, value: object, *, job: str | None, field: str) -> dict[str, str]:
        """``value`` if it is a table of strings."""
        table = self.table(value, job=job, field=field)
        for key, item in table.items():
            self.text(item, job=job, field=f"{field}[{key!r}]")
        return table

    # -- files and uploads ---------------------------------------------------------------------

    def resolve_file(self, text: str, *, job: str | None, field: str) -> Path:
        """The regular file ``text`` names (relative to the plan, or absolute), absolute."""
        if not text:
            raise self.error("file name is empty", job=job, field=field)
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        path = path.absolute()
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise self.error(f"file {text!r} {what} (looked at {path})", job=job, field=field)
        return path

    def resolve_dir(self, text: str, *, job: str | None, field: str) -> Path:
        """The directory ``text`` names (relative to the plan, or absolute), absolute."""
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        path = path.absolute()
        if not path.is_dir():
            raise self.error(
                f"{text!r} is not a directory (looked at {path})", job=job, field=field
            )
        return path

    def add_upload(self, upload: Upload, *, field: str) -> None:
        """Record ``upload``; the same name twice is fine only for the same content source."""
        known = self.uploads.get(upload.name)
        if known is None:
            self.uploads[upload.name] = upload
            return
        if known.file == upload.file and known.data == upload.data:
            if known.replicas == upload.replicas:
                return
            raise self.error(
                f"data {upload.name!r} is declared twice with different replication factors",
                job=upload.job,
                field=field,
            )
        raise self.error(
            f"data {upload.name!r} is declared twice with different content",
            job=upload.job,
            field=field,
        )

    def file_source(
        self,
        path: Path,
        upload_name: str,
        *,
        job: str,
        field: str,
        replicas: int | None = None,
    ) -> DataSource:
        """The content of ``path``: inline if it is small, else an upload under
        ``upload_name`` (with replication factor ``replicas``)."""
        size = path.stat().st_size
        if size <= self.inline_limit:
            return InlineData(path.read_bytes())
        upload = Upload(upload_name, size, file=path, job=job, replicas=replicas)
        self.add_upload(upload, field=field)
        return DataRef(upload_name)

    def bytes_source(
        self,
        data: bytes,
        upload_name: str,
        *,
        job: str,
        field: str,
        replicas: int | None = None,
    ) -> DataSource:
        """``data`` inline if it is small, else an upload under ``upload_name`` (with
        replication factor ``replicas``)."""
        if len(data) <= self.inline_limit:
            return InlineData(data)
        upload = Upload(upload_name, len(data), data=data, job=job, replicas=replicas)
        self.add_upload(upload, field=field)
        return DataRef(upload_name)
