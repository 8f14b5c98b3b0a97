"""Following a running job's output for its broker (``job-output``): :class:`OutputFollower`.

The worker writes the job's standard output and standard error to two files outside the job
directory (:class:`~.jobdir.JobDirectory`). While the job runs, the executor reads what was
added to them since the last look, every ``output_interval_s``, and sends it to the job's broker
as a ``job-output`` (no custody, a short lifetime: a lost one is a gap the next one's offsets
show, not something to retry). One message carries at most :data:`CHUNK_BYTES` of each stream;
a job that writes faster than that has its newest output sent and the rest skipped. After the
run one last look sends the end of both streams, before the result.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ...ucp.messages import JobOutput

__all__ = ["CHUNK_BYTES", "OutputFollower"]

CHUNK_BYTES = 16 * 1024
"""Bytes of each stream one ``job-output`` carries at most."""


def _read_from(path: Path, offset: int, limit: int) -> tuple[int, bytes]:
    """What ``path`` holds past ``offset``: its newest ``limit`` bytes at most, with the offset
    of the first. Nothing (at ``offset``) if the file is missing."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(offset, size - limit)
            if start >= size:
                return offset, b""
            file.seek(start)
            return start, file.read(size - start)
    except OSError:
        return offset, b""


class OutputFollower:
    """The offsets of one run's streams sent so far."""

    def __init__(
        self, job_id: uuid.UUID, executor: str, attempt: int, stdout: Path, stderr: Path
    ) -> None:
        self.job_id = job_id
        self.executor = executor
        self.attempt = attempt
        self._paths = (stdout, stderr)
        self._sent = [0, 0]

    @property
    def sent_any(self) -> bool:
        """Whether a message with output was made already."""
        return self._sent != [0, 0]

    def next_message(self) -> JobOutput | None:
        """The output added since the last message, or ``None`` if there is none. Blocking
        (reads the files): call through ``trio.to_thread``."""
        chunks = []
        for index, path in enumerate(self._paths):
            at, data = _read_from(path, self._sent[index], CHUNK_BYTES)
            chunks.append((at, data))
            self._sent[index] = at + len(data)
        (out_at, out), (err_at, err) = chunks
        if not out and not err:
            return None
        return JobOutput(
            job_id=self.job_id,
            executor=self.executor,
            attempt=self.attempt,
            stdout_at=out_at,
            stdout=out,
            stderr_at=err_at,
            stderr=err,
        )
