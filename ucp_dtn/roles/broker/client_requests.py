"""What clients ask of the broker besides submitting: job status, job logs, cancelling, and
the trusted-mesh checks on their requests.

:class:`ClientRequests` answers a ``status`` query (jobs this broker owns or knows from syncs,
filtered and paged by :mod:`.client_view`, and the nodes it knows from heartbeats), a
``job-log`` query (the kept output of :mod:`.outputs`) and a ``job-cancel`` (a client's own jobs
only: a cancelled job is final at once, its executor gets a ``job-cancel`` with custody, and
the queued jobs that run after it are rejected). Answers go to the request's ``reply_to``, else
to its source.

In a trusted mesh (docs/security.md) a client sees its own jobs only, asks about its own jobs'
logs and data only, and — with a list of allowed clients (``--trust-client``) — only a client
on it may submit; a refused request is answered with a refusal where its kind has one.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from bpv7 import parse_eid

from ...trust import MeshRole
from ...ucp.messages import (
    JobCancel,
    JobCancelReply,
    JobLogQuery,
    JobStatus,
    JobSubmission,
    NodeEntry,
    Role,
    StatusQuery,
    StatusReply,
    UcpMessage,
)
from ..authorization import job_of_request, job_refusal, refusal_reply
from ..endpoints import RoleName, node_of, role_endpoint
from ..mailbox import Incoming
from .client_view import job_list, log_reply
from .handler_parts import HandlerParts, PartsHandler

__all__ = ["REPLY_LIFETIME_S", "ClientRequests"]

logger = logging.getLogger(__name__)

REPLY_LIFETIME_S = 600.0
"""Lifetime of answers (job accepted, status replies)."""


class ClientRequests(PartsHandler):
    """Clients' status, log and cancel requests and the trusted-mesh checks, for one broker
    run (see the module docstring). The broker calls it with its lock held; it acts through
    ``parts`` (:class:`~.handler_parts.HandlerParts`)."""

    def __init__(self, parts: HandlerParts, own: str, own_node: str) -> None:
        self.own = own
        """This broker's endpoint (text)."""
        self.own_node = own_node
        """This broker's node ID (text)."""
        super().__init__(parts)

    async def refused_job_data(self, incoming: Incoming, message: UcpMessage) -> bool:
        """In a trusted mesh, refuse (and answer) a client's data request about another
        client's job (docs/security.md)."""
        job_id = job_of_request(message) if incoming.trusted else None
        why = None if job_id is None else job_refusal(incoming.sender, self._job_client(job_id))
        if why is None:
            return False
        self._ignore(incoming, why)
        reply = refusal_reply(message, why, now=self._clock())
        destination = getattr(message, "reply_to", None) or incoming.source
        if reply is not None:
            await self._send(destination, reply, lifetime_s=REPLY_LIFETIME_S)
        return True

    async def refused_submitter(self, incoming: Incoming, message: JobSubmission) -> bool:
        """Reject (and answer) a submission whose job ID this broker knows as another client's
        job (its own or from another broker's sync: a job ID names one job of one client, and
        a second client using it could otherwise contest the real job between brokers), and,
        in a trusted mesh with a list of allowed clients (``--trust-client``), one from a
        client not on it."""
        job_id = message.job.job_id
        owner = self._job_client(job_id)
        if owner is not None and owner != str(incoming.source):
            why = f"job {job_id} is another client's job"
        else:
            allowed = self.settings.allowed_clients
            sender = incoming.sender
            if not allowed or sender is None or sender.node_id in allowed:
                return False
            why = f"{sender.node_id} is not among the clients this broker takes jobs from"
        self._ignore(incoming, why)
        reply = refusal_reply(message, why, now=self._clock())
        if reply is not None:
            await self._send(incoming.source, reply, lifetime_s=REPLY_LIFETIME_S)
        return True

    def _job_client(self, job_id: uuid.UUID) -> str | None:
        """The client that submitted ``job_id``, if this broker knows the job."""
        record = self._jobs.get(job_id)
        if record is not None:
            return record.client
        foreign = self._jobs.foreign(job_id)
        return foreign.status.client if foreign is not None else None

    async def on_status_query(self, incoming: Incoming, message: StatusQuery) -> None:
        """Answer with the jobs asked about (a client's own only, in a trusted mesh) and, if
        asked, the nodes known from heartbeats."""
        destination = parse_eid(message.reply_to) if message.reply_to else incoming.source
        now = self._clock()
        nodes: tuple[NodeEntry, ...] = ()
        if message.include_nodes:
            nodes = self._node_entries(now)
        client = message.client
        sender = incoming.sender
        if sender is not None and sender.role is MeshRole.CLIENT:
            # A trusted mesh: a client sees its own jobs only.
            client = str(role_endpoint(sender.node_id, RoleName.CLIENT))
        jobs, more = job_list(
            self._jobs.entries(message.job_ids, client=client),
            message.states,
            message.limit,
        )
        reply = StatusReply(
            request_id=message.request_id,
            broker=self.own,
            jobs=jobs,
            nodes=nodes,
            more=more,
        )
        self._counts["status_queries"] += 1
        await self._send(destination, reply, lifetime_s=REPLY_LIFETIME_S)

    def _node_entries(self, now: float) -> tuple[NodeEntry, ...]:
        entries = list(self._registry.node_entries(now))
        own = self.own_node
        for index, entry in enumerate(entries):
            if entry.node == own:
                entries[index] = dataclasses.replace(entry, roles=entry.roles | Role.BROKER)
                break
        else:
            entries.append(NodeEntry(node=own, roles=Role.BROKER, last_seen=now))
        return tuple(entries)

    async def on_cancel(self, incoming: Incoming, message: JobCancel) -> None:
        """Cancel the requester's own jobs (see the module docstring) and answer with how
        each stands now."""
        requester = incoming.source.node_id
        reason = message.reason or "cancelled by its client"
        now = self._clock()
        entries = []
        unknown = []
        for job_id in dict.fromkeys(message.job_ids):
            record = self._jobs.get(job_id)
            if record is None or node_of(record.client) != requester:
                unknown.append(job_id)
                continue
            if not record.final:
                busy = record.state in (JobStatus.DISPATCHED, JobStatus.RUNNING)
                executor = record.executor if busy else None
                record = dataclasses.replace(
                    record,
                    state=JobStatus.CANCELLED,
                    updated_at=now,
                    finished_at=now,
                    detail=reason,
                )
                await self._save(record)
                self._counts["cancelled"] += 1
                logger.info("job %s cancelled by %s", job_id, incoming.source)
                await self._announce(record)
                if executor is not None:
                    self._registry.note_finished(str(node_of(executor)), job_id)
                    stop = JobCancel(
                        request_id=self._next_request_id(),
                        job_ids=(job_id,),
                        reason=reason,
                    )
                    await self._send(
                        executor, stop, custody=True, lifetime_s=self.settings.result_lifetime_s
                    )
                await self._scheduler.reject_dependents([job_id])
            entries.append(record.status_entry())
        destination = parse_eid(message.reply_to) if message.reply_to else incoming.source
        reply = JobCancelReply(
            request_id=message.request_id,
            broker=self.own,
            jobs=tuple(entries),
            unknown=tuple(unknown),
        )
        await self._send(destination, reply, lifetime_s=REPLY_LIFETIME_S)
        await self._scheduler.schedule()

    async def on_log_query(self, incoming: Incoming, message: JobLogQuery) -> None:
        """Answer with the kept output of a job (its client's own, in a trusted mesh)."""
        destination = parse_eid(message.reply_to) if message.reply_to else incoming.source
        why = job_refusal(incoming.sender, self._job_client(message.job_id))
        if why is not None:
            self._ignore(incoming, why)
            return
        record = self._jobs.get(message.job_id)
        foreign = self._jobs.foreign(message.job_id)
        state = record.state if record else foreign.status.state if foreign else None
        reply = log_reply(message, state, self._outputs)
        await self._send(destination, reply, lifetime_s=REPLY_LIFETIME_S)
