"""Who may send what to a role, in a trusted mesh (docs/security.md, "What each member may do").

Theory of operation
-------------------
In a trusted mesh (``--trust``) every bundle for a UCP endpoint carries a signature by its
sender's certificate, checked by the node's security policy before delivery
(:mod:`ucp_dtn.trust.mesh`). A :class:`~ucp_dtn.roles.Mailbox` then asks :func:`admission`
whether the *signer* -- a mesh **node** (a daemon), a **client**, or an **admin** client -- may
send this kind of message to this role:

============  ==================================================  ============================
role          from nodes (brokers, executors, datastores)         from clients (and admins)
============  ==================================================  ============================
broker        everything a broker takes except job submissions    job submissions, data
              (heartbeats, job states and results, syncs,         requests, status queries,
              replica notes, data requests and replies)           cancels, log queries
executor      job dispatches, cancels, data replies (brokers')    nothing
datastore     everything a datastore takes                        data requests (put, get,
                                                                  list, delete, free space)
client        everything (results, states, replies)               nothing
============  ==================================================  ============================

A message refused here is confirmed (dropped) and logged; a client's request also gets a
reply saying why (``job-state`` *rejected* for a submission, ``data-reply`` *denied* for a put
or delete, an empty *denied* page for a get or list). Who owns what -- which client may read,
overwrite or delete a datum, see a job or collect its result -- is decided by the role itself
from :attr:`Incoming.sender <ucp_dtn.roles.Incoming.sender>`. In open mode nothing is checked.
"""

from __future__ import annotations

from ..trust import CertificateFacts, MeshRole
from ..ucp.messages import (
    DataDelete,
    DataFreeSpace,
    DataGet,
    DataGetReply,
    DataList,
    DataListReply,
    DataPut,
    DataReply,
    DataStatus,
    JobCancel,
    JobLogQuery,
    JobState,
    JobStatus,
    JobSubmission,
    StatusQuery,
    UcpMessage,
)
from .endpoints import RoleName

__all__ = ["CLIENT_REQUESTS", "admission", "refusal_reply"]

CLIENT_REQUESTS: tuple[type[UcpMessage], ...] = (
    JobSubmission,
    DataPut,
    DataGet,
    DataList,
    DataDelete,
    DataFreeSpace,
    StatusQuery,
    JobCancel,
    JobLogQuery,
)
"""What a client may send (to a broker; data requests also to a datastore)."""

_DATA_REQUESTS = (DataPut, DataGet, DataList, DataDelete, DataFreeSpace)


def admission(
    role: RoleName | None, message: UcpMessage, sender: CertificateFacts | None
) -> str | None:
    """``None`` if ``sender`` may send ``message`` to ``role`` in a trusted mesh; else why
    not, in one line."""
    if sender is None or sender.role is None:
        return "not signed by its sender's mesh certificate"
    if sender.role is MeshRole.NODE:
        if role is RoleName.BROKER and isinstance(message, JobSubmission):
            return f"{sender.node_id} is a node: only clients submit jobs"
        return None
    # A client (admin or not).
    if role is RoleName.BROKER and isinstance(message, CLIENT_REQUESTS):
        return None
    if role is RoleName.DATASTORE and isinstance(message, _DATA_REQUESTS):
        return None
    what = "jobs" if role is RoleName.EXECUTOR else f"{message.KIND} messages"
    return f"{sender.node_id} is a client: only mesh nodes send {what} to {role or 'node'}s"


def refusal_reply(message: UcpMessage, why: str, *, now: float) -> UcpMessage | None:
    """The reply telling a client its request was refused, or ``None`` if it needs none."""
    detail = f"not allowed: {why}"
    if isinstance(message, JobSubmission):
        return JobState(message.job.job_id, JobStatus.REJECTED, now, detail=detail)
    if isinstance(message, DataPut | DataDelete):
        return DataReply(message.request_id, DataStatus.DENIED, detail=detail)
    if isinstance(message, DataGet):
        return DataGetReply(message.request_id, DataStatus.DENIED, detail=detail)
    if isinstance(message, DataList):
        return DataListReply(message.request_id, DataStatus.DENIED, detail=detail)
    return None
