"""Read an execution plan file: :func:`load_plan` (and :func:`parse_plan` for text in hand).

The format is recognised from the document: REC plans have ``[[jobs]]`` as an array of tables
(and perhaps ``[named_data]``); ours have ``[jobs.<name>]`` tables. Either way the whole plan is
checked before it is returned — files found, names and paths valid, dependencies known and
acyclic — and anything wrong raises one :class:`~ucp_dtn.ucp.errors.PlanError` naming the file,
the job and the field.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings.toml_file import TomlError, parse_toml
from ._plan_reader import PlanReader
from .errors import PlanError
from .plan import ExecutionPlan, PlanFormat, assemble_plan
from .plan_rec import parse_rec_plan
from .plan_ucp import parse_ucp_plan

__all__ = ["INLINE_LIMIT", "detect_format", "load_plan", "parse_plan"]

_log = logging.getLogger(__name__)

INLINE_LIMIT = 64 * 1024
"""Files of a job up to this many bytes travel inside its submission bundle; larger ones are
uploaded as named data under ``<job-uuid>/`` first."""


def detect_format(document: dict[str, Any]) -> PlanFormat:
    """``"rec"`` for a REC plan (``[[jobs]]`` array or ``[named_data]``), else ``"ucp"``."""
    if isinstance(document.get("jobs"), list) or "named_data" in document:
        return "rec"
    return "ucp"


def parse_plan(
    text: str,
    *,
    source: Path,
    file: str | None = None,
    inline_limit: int = INLINE_LIMIT,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    format: PlanFormat | None = None,
) -> ExecutionPlan:
    """Parse plan ``text`` as if read from ``source`` (relative file names start in its
    directory). ``file`` is how errors name the plan (default: ``source``); ``new_id`` makes
    job UUIDs (tests pass a seeded one); ``format`` skips detection."""
    shown = str(source) if file is None else file
    try:
        document = parse_toml(text)
    except TomlError as exc:
        raise PlanError(shown, str(exc)) from None
    reader = PlanReader(shown, source.absolute().parent, inline_limit=inline_limit, new_id=new_id)
    kind = detect_format(document) if format is None else format
    parse = parse_rec_plan if kind == "rec" else parse_ucp_plan
    drafts = parse(reader, document)
    plan = assemble_plan(shown, source, kind, list(reader.uploads.values()), drafts)
    _log.debug(
        "plan %s (%s): %d uploads, %d jobs in %d waves",
        shown,
        kind,
        len(plan.uploads),
        len(plan.jobs),
        len(plan.waves()),
    )
    return plan


def load_plan(
    path: str | os.PathLike[str],
    *,
    inline_limit: int = INLINE_LIMIT,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    format: PlanFormat | None = None,
) -> ExecutionPlan:
    """Read and check the plan file ``path`` (ours or REC's); :class:`PlanError` if it cannot
    be used — nothing of a rejected plan may be sent."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(str(path), f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise PlanError(str(path), f"cannot read it: {exc.strerror or exc}") from None
    return parse_plan(
        text, source=source, file=str(path), inline_limit=inline_limit, new_id=new_id, format=format
    )
