"""Progress of large transfers on the terminal: :func:`show_transfers`.

While a client command runs, a task looks at the client node's transfers
(:class:`~ucp_dtn.client.progress.TransferWatch`) a few times a second; once a direction has
been moving for more than a moment it shows a bar with the octets done, the total when known,
the rate and the time left, on stderr. Nothing is shown when stderr is not a terminal or with
``--quiet``. ``rich`` (the bars) is imported only then, so ``ucp --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ucp_dtn.client import ClientSession
from ucp_dtn.client.progress import TransferFigures, TransferWatch

__all__ = ["show_transfers"]

_REFRESH_S = 0.25
_MOMENT_S = 1.0
"""A direction that has moved for less than this shows nothing (small requests stay quiet)."""
_MIN_OCTETS = 256 * 1024
"""Nor does one that moved fewer octets."""


@asynccontextmanager
async def show_transfers(session: ClientSession, *, enabled: bool = True) -> AsyncIterator[None]:
    """Show the session's uploads and downloads while the block runs (see the module
    docstring)."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        auto_refresh=False,
        transient=True,
    )
    watch = TransferWatch(session)
    watch.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_follow, watch, progress)
        try:
            yield
        finally:
            nursery.cancel_scope.cancel()
            progress.stop()


async def _follow(watch: TransferWatch, progress: Any) -> None:
    tasks: dict[str, Any] = {}
    progress.start()
    while True:
        await trio.sleep(_REFRESH_S)
        shown = (("uploading", await watch.upload()), ("receiving", watch.download()))
        for label, figures in shown:
            if not _worth_showing(figures) and label not in tasks:
                continue
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=figures.total)
            progress.update(tasks[label], completed=figures.done, total=figures.total)
        progress.refresh()


def _worth_showing(figures: TransferFigures) -> bool:
    moving = figures.done >= _MIN_OCTETS or (figures.left or 0) >= _MIN_OCTETS
    return moving and figures.seconds >= _MOMENT_S
