"""UCP messages: one frozen dataclass per kind; a bundle payload holds one message, or a batch.

The classes live by family in :mod:`.job_messages`, :mod:`.data_messages` and
:mod:`.node_messages` (their base, :class:`UcpMessage`, in :mod:`.message_base`); this module
re-exports them, defines the batch and the :data:`Message` union that registers every kind.

Wire format (version 1)
-----------------------
Every payload is one CBOR map with ``"v"`` (the message format version, ``1``), ``"t"`` (the
kind, text) and the kind's fields under hyphenated text keys. Job UUIDs travel as 16-byte byte
strings, times as seconds since the Unix epoch (float, the sender's clock), sizes as unsigned
integers. Optional fields are left out when empty. A decoder ignores fields it does not know
(newer senders may add some) and rejects an unknown version or kind; everything else wrong is
a :class:`~ucp_dtn.ucp.errors.MessageDecodeError`. :mod:`ucp_dtn.ucp.codec` encodes and
decodes; each message also has ``to_cbor()`` and ``from_cbor()``.

The message dataclasses are the schema: their fields' type hints, and ``Wire(...)`` where the
hints do not say it all (a key that is not the field's name, a default that is still written or
required), give the wire form of each kind (:mod:`ucp_dtn.wire_schema` has the rules). To add a
message, write its frozen dataclass deriving from :class:`UcpMessage` with a new ``KIND`` in the
module of its family, import it here and add it to the :data:`Message` union at the end of this
module, which registers the kind for decoding; then add it to the catalogue below and pin its
bytes in the family's ``tests/ucp_dtn/ucp/test_wire_pinned*.py``.

Requests carry a ``request-id`` (an unsigned integer of the requester's choice) and an optional
``reply-to`` EID; the reply carries the same id and goes to ``reply-to`` or else to the request
bundle's source. A broker may relay a data request to a datastore with ``reply-to`` set to the
client, so the answer need not travel back through it.

Catalogue (→ direction; ``?`` optional)::

    kind              class               direction                  fields
    job-submit        JobSubmission       client → broker            job, inline-data
    job-accepted      JobAccepted         broker → client            job-id, broker, duplicate,
                                                                     ?warning
    job-state         JobState            broker → client            job-id, state, detail, at,
                                                                     ?executor, attempt
    job-dispatch      JobDispatch         broker → executor          job, inline-data, broker,
                                                                     client, attempt
    job-result        JobResult           executor → client/broker   job-id, executor, status,
                                                                     ?exit-code, message, tails,
                                                                     ?archive | ?archive-ref,
                                                                     published, timings...
    heartbeat         Heartbeat           executor/datastore →       node, roles, sequence, sent-at,
                                          broker; broker → broker    interval, ?capabilities,
                                                                     running, max-jobs, ...
    data-put          DataPut             any → broker/datastore     request-id, name, data,
                                                                     written-at, ?job-id,
                                                                     ?replicas, ?writer,
                                                                     ?exclusive
    data-reply        DataReply           datastore → requester      request-id, status, detail,
                                                                     count (puts and deletes)
    data-get          DataGet             any → broker/datastore     request-id, query, ?cursor,
                                                                     max-bytes, ?have
    data-get-reply    DataGetReply        datastore → requester      request-id, status, items
                                                                     (?digest, ?cached), ?cursor
    data-list         DataList            any → broker/datastore     request-id, ?prefix, ?job-id,
                                                                     page-size, ?cursor,
                                                                     ?replicated
    data-list-reply   DataListReply       datastore → requester      request-id, status, entries,
                                                                     ?cursor
    data-delete       DataDelete          client → broker/datastore  request-id, name | job-id,
                                                                     keep-result, ?at
    data-replicate    DataReplicate       broker → datastore         request-id, name, targets
    data-held         DataHeld            datastore → broker         node, entries
    data-free-space   DataFreeSpace       any → datastore            request-id
    data-free-space-reply DataFreeSpaceReply  datastore → requester  request-id, node, free, used,
                                                                     ?quota, items
    status-query      StatusQuery         client → broker            request-id, job-ids, ?client,
                                                                     nodes, ?states, ?limit
    status-reply      StatusReply         broker → client            request-id, broker, jobs,
                                                                     nodes, ?more
    broker-sync       BrokerSync          broker → broker            broker, sequence, sent-at,
                                                                     full, jobs, data
    job-cancel        JobCancel           client → broker;           request-id, job-ids, reason
                                          broker → executor
    job-cancel-reply  JobCancelReply      broker → client            request-id, broker, jobs,
                                                                     unknown
    job-output        JobOutput           executor → broker          job-id, executor, attempt,
                                                                     stdout-at, stdout, stderr-at,
                                                                     stderr
    job-log           JobLogQuery         client → broker            request-id, job-id,
                                                                     stdout-from, stderr-from
    job-log-reply     JobLogReply         broker → client            request-id, job-id, found,
                                                                     state, stdout-at, stdout,
                                                                     stderr-at, stderr
    batch             MessageBatch        any → any                  messages (2..256 whole
                                                                     messages, no batch)

Several messages in one bundle (``batch``): a sender may put messages that go to the same
endpoint at the same moment into one bundle, ``{"v": 1, "t": "batch", "messages": [m1, m2,
...]}``, each ``m`` a whole message map with its own ``"v"`` and ``"t"`` (never another
batch). The receiver takes them one by one, in order, exactly as if each had come in a bundle of
its own from the same source, and confirms the bundle to its agent only when it has acted on
every one (:mod:`ucp_dtn.roles.mailbox`). A receiver drops a bad message inside a batch alone
and handles the others (:func:`~ucp_dtn.ucp.codec.decode_messages`); the strict
:class:`MessageBatch` decoding rejects the whole batch. A node of a version before the batch
reads ``batch`` as an unknown kind and drops the bundle as malformed, so all nodes of a
network must run a version that reads it (all do since issue #16).

A job's life as the client sees it: ``job-submit`` → ``job-accepted`` (duplicates are
acknowledged again with ``duplicate``) → ``job-state`` updates (queued, dispatched, running) →
``job-result`` (from the executor, to the job's result address; also kept in the datastores at
``<job-uuid>/result``) and a final ``job-state`` (done or failed). ``job-cancel`` ends a job
early: the broker marks it cancelled at once (a queued job is never dispatched; a dispatched
one's executor gets the ``job-cancel`` too and stops it) and drops a result that comes later.
While a job runs its executor sends ``job-output`` with what the job wrote since the last one;
the broker keeps the end of each stream, which ``job-log`` asks for. A query by name matches the
name and its subkeys by path segment, or a ``prefix*`` pattern (:mod:`ucp_dtn.ucp.names`);
a listing or a get is paged by an opaque ``cursor`` the datastore hands out.

Replication (docs/disruption.md): a put may ask for ``replicas`` copies on distinct datastores.
The datastore that stores a replicated datum tells the brokers (``data-held``); one broker plans
where the missing copies go and asks a holder to make them (``data-replicate``), and the holder
sends each copy as a ``data-put`` that keeps the original ``written-at`` and ``writer``, so every
replica orders writes the same way (:mod:`ucp_dtn.ucp.versions`). A copy is never ``exclusive``
and never refused as taken: the write it carries was already accepted.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, ClassVar

from ucp_dtn.wire_schema import Wire, WireCodec, WireError, to_wire

from ._wire import decode_envelope
from .data_messages import (
    DataDelete,
    DataFreeSpace,
    DataFreeSpaceReply,
    DataGet,
    DataGetReply,
    DataHeld,
    DataList,
    DataListReply,
    DataPut,
    DataReplicate,
    DataReply,
)
from .errors import FieldError, MessageDecodeError, UcpUsageError
from .job_messages import (
    JobAccepted,
    JobCancel,
    JobCancelReply,
    JobDispatch,
    JobLogQuery,
    JobLogReply,
    JobOutput,
    JobResult,
    JobState,
    JobSubmission,
)
from .message_base import (
    DIGEST_SIZE,
    MAX_HAVE,
    PROTOCOL_VERSION,
    RESULT_TAIL_BYTES,
    SUPPORTED_VERSIONS,
    DataEntry,
    DataItem,
    DataStatus,
    JobStatus,
    JobStatusEntry,
    NodeEntry,
    ResultStatus,
    Role,
    SyncedJob,
    Timings,
    UcpMessage,
)
from .node_messages import BrokerSync, Heartbeat, StatusQuery, StatusReply

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "BrokerSync",
    "DataDelete",
    "DataEntry",
    "DataFreeSpace",
    "DataFreeSpaceReply",
    "DataGet",
    "DataGetReply",
    "DataHeld",
    "DataItem",
    "DataList",
    "DataListReply",
    "DataPut",
    "DataReplicate",
    "DataReply",
    "DIGEST_SIZE",
    "MAX_BATCH_MESSAGES",
    "MessageBatch",
    "DataStatus",
    "Heartbeat",
    "JobAccepted",
    "JobCancel",
    "JobCancelReply",
    "JobDispatch",
    "JobLogQuery",
    "JobLogReply",
    "JobOutput",
    "JobResult",
    "JobState",
    "JobStatus",
    "JobStatusEntry",
    "JobSubmission",
    "MAX_HAVE",
    "MESSAGE_KINDS",
    "RESULT_TAIL_BYTES",
    "Message",
    "NodeEntry",
    "ResultStatus",
    "Role",
    "StatusQuery",
    "StatusReply",
    "SyncedJob",
    "Timings",
    "UcpMessage",
]


MAX_BATCH_MESSAGES = 256
"""Most messages in one :class:`MessageBatch` (a sender also bounds its bytes)."""


def _encode_batched(message: UcpMessage) -> object:
    if not isinstance(message, UcpMessage) or isinstance(message, MessageBatch):
        raise UcpUsageError(f"a batch holds UCP messages other than batches, not {message!r}")
    return to_wire(message, {"v": PROTOCOL_VERSION, "t": message.KIND})


def _decode_batched(wire: object) -> UcpMessage:
    try:
        message: UcpMessage = decode_envelope(wire, _BATCHABLE_KINDS, SUPPORTED_VERSIONS)
    except MessageDecodeError as exc:
        if isinstance(wire, dict) and wire.get("t") == MessageBatch.KIND:
            raise WireError("is a batch inside a batch") from None
        raise WireError(str(exc)) from None
    return message


@dataclass(frozen=True, slots=True)
class MessageBatch(UcpMessage):
    """Several messages for one endpoint in one bundle (``batch``): the receiver handles them
    in order as if each had come alone, and confirms the bundle once it acted on all."""

    KIND: ClassVar[str] = "batch"
    messages: Annotated[
        tuple[UcpMessage, ...],
        Wire(
            required=True,
            codec=WireCodec("a message map (not a batch)", _decode_batched, _encode_batched),
        ),
    ] = ()
    """The messages, 2 to :data:`MAX_BATCH_MESSAGES` of them, none a batch."""

    def __post_init__(self) -> None:
        UcpMessage.__post_init__(self)
        if not isinstance(self.messages, tuple):
            raise FieldError("messages", "must be a tuple of messages")
        if not 2 <= len(self.messages) <= MAX_BATCH_MESSAGES:
            raise FieldError(
                "messages",
                f"a batch holds 2 to {MAX_BATCH_MESSAGES} messages, not {len(self.messages)}",
            )
        for index, message in enumerate(self.messages):
            if not isinstance(message, UcpMessage) or isinstance(message, MessageBatch):
                raise FieldError(f"messages[{index}]", "must be a UCP message other than a batch")


# Every message kind: MESSAGE_KINDS below is built from this union.
Message = (
    JobSubmission
    | JobAccepted
    | JobState
    | JobDispatch
    | JobResult
    | Heartbeat
    | DataPut
    | DataReply
    | DataGet
    | DataGetReply
    | DataList
    | DataListReply
    | DataDelete
    | DataReplicate
    | DataHeld
    | DataFreeSpace
    | DataFreeSpaceReply
    | StatusQuery
    | StatusReply
    | BrokerSync
    | JobCancel
    | JobCancelReply
    | JobOutput
    | JobLogQuery
    | JobLogReply
    | MessageBatch
)
"""Any UCP message."""

MESSAGE_KINDS: Mapping[str, type[UcpMessage]] = MappingProxyType(
    {cls.KIND: cls for cls in typing.get_args(Message)}
)
"""Every message class by its ``"t"`` value: the kinds a decoder reads."""

_BATCHABLE_KINDS: Mapping[str, type[UcpMessage]] = MappingProxyType(
    {kind: cls for kind, cls in MESSAGE_KINDS.items() if cls is not MessageBatch}
)
"""The kinds a batch may hold: every kind but the batch itself."""
