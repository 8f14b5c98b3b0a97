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

import uuid

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

__all__ = [
    "CLIENT_REQUESTS",
    "admission",
    "job_of_request",
    "job_refusal",
    "may_change",
    "refusal_reply",
]

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
    # A client (admin or not) speaks for itself only: replies go to its own node, and it
    # names no other writer (that is for replica copies between datastores).
    reply_to = getattr(message, "reply_to", None)
    if isinstance(reply_to, str) and _node_text(reply_to) != sender.node_id:
        return f"a client's replies go to its own node, not to {reply_to}"
    if getattr(message, "writer", None) is not None:
        return "a client cannot write in another writer's name"
    if role is RoleName.BROKER and isinstance(message, CLIENT_REQUESTS):
        return None
    if role is RoleName.DATASTORE and isinstance(message, _DATA_REQUESTS):
        return None
    what = "jobs" if role is RoleName.EXECUTOR else f"{message.KIND} messages"
    return f"{sender.node_id} is a client: only mesh nodes send {what} to {role or 'node'}s"


def _node_text(eid: str) -> str:
    """The node ID of a ``dtn://NODE/...`` endpoint (other schemes: the text itself)."""
    if eid.startswith("dtn://"):
        return "dtn://" + eid[len("dtn://") :].split("/", 1)[0] + "/"
    return eid


def may_change(requester: str, owner: str | None, *, admin: bool) -> bool:
    """Whether ``requester`` (a node ID) may overwrite or delete what ``owner`` (an endpoint
    or node ID; ``None``: nobody) wrote: its owner and admins may."""
    return admin or owner is None or _node_text(owner) == _node_text(requester)


def job_of_request(message: UcpMessage) -> uuid.UUID | None:
    """The job a data request is about: its ``job_id``, or the job whose data its name or
    pattern lies under (``<job-uuid>/...``)."""
    job_id = getattr(message, "job_id", None)
    if isinstance(job_id, uuid.UUID):
        return job_id
    for field in ("query", "prefix", "name"):
        value = getattr(message, field, None)
        if isinstance(value, str) and value:
            head = value.split("/", 1)[0].rstrip("*")
            try:
                return uuid.UUID(head) if len(head) == 36 else None
            except ValueError:
                return None
    return None


def job_refusal(sender: CertificateFacts | None, job_client: str | None) -> str | None:
    """``None`` if ``sender`` may see and touch a job submitted by ``job_client`` (an EID;
    ``None``: unknown job): its client, admins and mesh nodes may; else why not."""
    if sender is None or job_client is None or sender.role in (MeshRole.NODE, MeshRole.ADMIN):
        return None
    if _node_text(job_client) == sender.node_id:
        return None
    return f"the job belongs to {_node_text(job_client)}: only its owner sees its data and results"


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
