"""Publishing a job's named results: ``data-put`` with custody, and the datastores' answers.

A put changes state, so it travels with custody (through the broker, which relays it to a
datastore that answers the executor directly). :meth:`DataPublisher.put_all` sends a job's puts
and waits a while for the answers, so that a later job of a pipeline, released when the broker
sees this job's result, finds the data stored. An answer that does not come in time is no
refusal: the put is in custody and arrives eventually. The answers reach the publisher through
:meth:`DataPublisher.deliver`, which the role's inbox loop calls for every ``data-reply``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Collection

import trio

from ...agent import AgentError
from ...store import StoreError
from ...ucp.messages import DataPut, DataReply, DataStatus
from ...ucp.names import DataName
from ..mailbox import Mailbox

__all__ = ["DataPublisher"]

logger = logging.getLogger(__name__)


class DataPublisher:
    """Sends ``data-put`` requests with custody and collects their ``data-reply``."""

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        timeout_s: float,
        lifetime_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.mailbox = mailbox
        self.timeout_s = timeout_s
        """How long :meth:`put_all` waits for the answers."""
        self.lifetime_s = lifetime_s
        """Bundle lifetime of the puts."""
        self._clock = clock
        self._waiting: dict[int, trio.MemorySendChannel[DataReply]] = {}
        self.published = 0
        """Puts handed to the agent."""
        self.refused = 0
        """Puts a datastore refused."""

    def deliver(self, reply: DataReply) -> bool:
        """Hand a ``data-reply`` to the publication waiting for it; False if none waits."""
        waiter = self._waiting.pop(reply.request_id, None)
        if waiter is None:
            return False
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            waiter.send_nowait(reply)
        return True

    async def put_all(
        self,
        broker: str,
        job_id: uuid.UUID,
        puts: list[tuple[DataName, bytes]],
        *,
        replicas: int | None = None,
        exclusive: Collection[DataName] = (),
    ) -> dict[DataName, str]:
        """Put each ``(name, data)`` of job ``job_id`` through ``broker`` (with replication
        factor ``replicas``: the job's, ``None`` for the datastores' default) and wait up to
        ``timeout_s`` for the answers; returns the puts refused, each with why. The names in
        ``exclusive`` are stored only if no other write holds them (``DataPut.exclusive``:
        named results, which REC refuses to publish twice)."""
        if not puts:
            return {}
        written_at = self._clock()
        send, receive = trio.open_memory_channel[DataReply](len(puts))
        pending: dict[int, DataName] = {}
        refused: dict[DataName, str] = {}
        try:
            for name, data in puts:
                request_id = self.mailbox.next_request_id()
                put = DataPut(
                    request_id=request_id,
                    name=name,
                    data=data,
                    written_at=written_at,
                    job_id=job_id,
                    replicas=replicas,
                    exclusive=name in exclusive,
                )
                self._waiting[request_id] = send
                try:
                    await self.mailbox.send(broker, put, custody=True, lifetime_s=self.lifetime_s)
                except (AgentError, StoreError, ValueError) as exc:
                    del self._waiting[request_id]
                    logger.warning("job %s: cannot put %r: %s", job_id, name, exc)
                    refused[name] = f"not sent: {exc}"
                    continue
                pending[request_id] = name
                self.published += 1
            with trio.move_on_after(self.timeout_s):
                while pending:
                    reply = await receive.receive()
                    name = pending.pop(reply.request_id, "")
                    if name and reply.status not in (DataStatus.OK, DataStatus.STALE):
                        self.refused += 1
                        refused[name] = _status_text(reply)
            if pending:
                logger.info(
                    "job %s: %d data-put(s) not answered yet; they travel in custody",
                    job_id,
                    len(pending),
                )
        finally:
            for request_id in pending:
                self._waiting.pop(request_id, None)
            send.close()
        return refused


def _status_text(reply: DataReply) -> str:
    if reply.status == DataStatus.TAKEN and reply.detail:
        return reply.detail  # "name 'x' already taken"
    try:
        text = DataStatus(reply.status).name.lower().replace("_", " ")
    except ValueError:
        text = f"status {reply.status}"
    return f"{text}: {reply.detail}" if reply.detail else text
