"""Progress of large transfers on the terminal: :class:`TransferBars`.

A client operation sends ``transfer`` events for the large uploads and downloads of the client's
node while it runs (:mod:`ucp_dtn.client.progress`), when the command asks for them — only when
stderr is a terminal and ``--quiet`` was not given. Each direction gets a bar on stderr with the
octets done, the total when known, the rate and the time left; the bars go away when the command
ends. ``rich`` (the bars) is imported at the first event only, so ``ucp --help`` and commands
that move nothing large stay fast.

An ``unsent`` event says that a large part of an upload had not left when the operation ended:
:func:`unsent_line` is what the command says about it.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from .formatting import size_text

__all__ = ["TransferBars", "unsent_line"]

_LABELS = {"upload": "uploading", "download": "downloading"}


class TransferBars:
    """The bars of one command (a context manager: they go away on leaving it)."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        """Whether bars are shown (stderr is a terminal and not ``--quiet``): the command asks
        for ``transfer`` events only then."""
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def show(self, event: dict[str, Any]) -> None:
        """Take one ``transfer`` event."""
        if not self.enabled:
            return
        direction = str(event.get("direction"))
        done = int(event.get("done") or 0)
        total = event.get("total")
        total = int(total) if isinstance(total, int) else None
        progress = self._start()
        if direction not in self._tasks:
            label = _LABELS.get(direction, direction)
            self._tasks[direction] = progress.add_task(label, total=total)
        progress.update(self._tasks[direction], completed=done, total=total)
        progress.refresh()

    def _start(self) -> Any:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=False),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                auto_refresh=False,
                transient=True,
                # Lines the command prints meanwhile go above the bars; stdout only when it is
                # the terminal too (rich writes them to the bars' stream).
                redirect_stdout=sys.stdout.isatty(),
                redirect_stderr=True,
            )
            self._progress.start()
        return self._progress

    def close(self) -> None:
        """Take the bars away."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def __enter__(self) -> TransferBars:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def unsent_line(octets: int, *, agent: bool) -> str:
    """What the command says when ``octets`` of an upload had not left as it ended."""
    if agent:
        return (
            f"{size_text(octets)} still to send: the client agent goes on sending it "
            "(ucp agent status)"
        )
    return (
        f"{size_text(octets)} still to send: it waits in the client's store; the next command "
        "sends it from where it stopped"
    )
