"""What running jobs wrote, as their executors report it (sans-IO): :class:`JobOutputs`.

While a job runs, its executor sends ``job-output`` messages with what the job wrote to
standard output and standard error since the previous one, each chunk with its offset in the
stream. The broker keeps the newest :data:`KEEP_BYTES` of each stream per job, for ``ucp logs``
(``job-log``), and the output of the :data:`KEEP_JOBS` most recently heard-of jobs; older jobs'
output is forgotten (their results carry the end of both streams, and their archives the whole
of them).

Chunks may come out of order or twice (bundles overtake each other, and are retried): a chunk
is placed at its offset, so a repeated one changes nothing and an older one that arrives after
a newer one is dropped. A gap (a lost chunk) is kept as a gap: the stream continues at the
newer offset, and a reader asking for bytes from before it gets the bytes after it and sees
from their offset that some are missing.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["KEEP_BYTES", "KEEP_JOBS", "JobOutputs", "StreamTail"]

KEEP_BYTES = 64 * 1024
"""Bytes kept of each stream of a job."""
KEEP_JOBS = 256
"""Jobs whose output is kept."""


@dataclass(slots=True)
class StreamTail:
    """The newest bytes of one stream."""

    start: int = 0
    """Offset in the stream of ``data[0]``."""
    data: bytes = b""
    """What is kept, up to :data:`KEEP_BYTES`."""

    @property
    def end(self) -> int:
        """Offset just after the newest byte heard of."""
        return self.start + len(self.data)

    def add(self, at: int, chunk: bytes, keep: int) -> None:
        """Place ``chunk`` (starting at offset ``at``) and keep the newest ``keep`` bytes."""
        if not chunk or at + len(chunk) <= self.end:
            return  # nothing new (a repeat, or older than what is held)
        if at > self.end:
            self.start, self.data = at, chunk  # a gap: the stream goes on from here
        else:
            self.data += chunk[self.end - at :]
        if len(self.data) > keep:
            cut = len(self.data) - keep
            self.start += cut
            self.data = self.data[cut:]

    def since(self, offset: int) -> tuple[int, bytes]:
        """The bytes from ``offset`` on (from the oldest held, if ``offset`` is older), with
        the offset of the first one returned."""
        begin = max(offset, self.start)
        if begin >= self.end:
            return self.end, b""
        return begin, self.data[begin - self.start :]


@dataclass(slots=True)
class _Output:
    attempt: int
    stdout: StreamTail
    stderr: StreamTail


class JobOutputs:
    """The tails of the jobs' output streams (see the module docstring)."""

    def __init__(self, *, keep_bytes: int = KEEP_BYTES, keep_jobs: int = KEEP_JOBS) -> None:
        self._keep_bytes = keep_bytes
        self._keep_jobs = keep_jobs
        self._jobs: OrderedDict[uuid.UUID, _Output] = OrderedDict()

    def add(
        self,
        job_id: uuid.UUID,
        attempt: int,
        *,
        stdout_at: int,
        stdout: bytes,
        stderr_at: int,
        stderr: bytes,
    ) -> None:
        """Take in a ``job-output`` of ``attempt``; a newer attempt starts afresh, an older
        one is ignored."""
        held = self._jobs.get(job_id)
        if held is None or attempt > held.attempt:
            held = _Output(attempt, StreamTail(), StreamTail())
            self._jobs[job_id] = held
        elif attempt < held.attempt:
            return
        self._jobs.move_to_end(job_id)
        held.stdout.add(stdout_at, stdout, self._keep_bytes)
        held.stderr.add(stderr_at, stderr, self._keep_bytes)
        while len(self._jobs) > self._keep_jobs:
            self._jobs.popitem(last=False)

    def since(
        self, job_id: uuid.UUID, stdout_from: int, stderr_from: int
    ) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        """Each stream of ``job_id`` from the offsets given (see :meth:`StreamTail.since`);
        empty streams at offset 0 for a job without output here."""
        held = self._jobs.get(job_id)
        if held is None:
            return (0, b""), (0, b"")
        return held.stdout.since(stdout_from), held.stderr.since(stderr_from)

    def knows(self, job_id: uuid.UUID) -> bool:
        """Whether any output of ``job_id`` is held."""
        return job_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)
