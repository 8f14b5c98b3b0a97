"""Who may send what to a role in a trusted mesh (ucp_dtn.roles.authorization)."""

from __future__ import annotations

import datetime
import uuid

import pytest

from ucp_dtn.roles import RoleName
from ucp_dtn.roles.authorization import admission, refusal_reply
from ucp_dtn.trust import CertificateFacts, MeshRole
from ucp_dtn.ucp import (
    DataGet,
    DataPut,
    DataStatus,
    Heartbeat,
    InlineData,
    JobDispatch,
    JobInfo,
    JobState,
    JobStatus,
    JobSubmission,
    Role,
)
from ucp_dtn.ucp.messages import DataGetReply, DataReply

_UNTIL = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
NODE = CertificateFacts("dtn://hub/", MeshRole.NODE, 1, _UNTIL)
CLIENT = CertificateFacts("dtn://alice/", MeshRole.CLIENT, 2, _UNTIL)
ADMIN = CertificateFacts("dtn://boss/", MeshRole.ADMIN, 3, _UNTIL)
JOB = JobInfo(job_id=uuid.UUID(int=1), wasm=InlineData(b"\0asm"))
SUBMIT = JobSubmission(JOB)
DISPATCH = JobDispatch(JOB, broker="dtn://hub/ucp/broker", client="dtn://alice/ucp/client")
PUT = DataPut(1, "a", b"x", 1.0)
GET = DataGet(2, "a")


@pytest.mark.parametrize(
    ("role", "message", "sender", "allowed"),
    [
        (RoleName.BROKER, SUBMIT, CLIENT, True),
        (RoleName.BROKER, SUBMIT, ADMIN, True),
        (RoleName.BROKER, SUBMIT, NODE, False),
        (RoleName.BROKER, PUT, CLIENT, True),
        (RoleName.BROKER, PUT, NODE, True),
        (RoleName.EXECUTOR, DISPATCH, NODE, True),
        (RoleName.EXECUTOR, DISPATCH, CLIENT, False),
        (RoleName.EXECUTOR, DISPATCH, ADMIN, False),
        (RoleName.DATASTORE, PUT, CLIENT, True),
        (RoleName.DATASTORE, GET, NODE, True),
        (RoleName.CLIENT, JobState(JOB.job_id, JobStatus.DONE, 1.0), NODE, True),
        (RoleName.CLIENT, JobState(JOB.job_id, JobStatus.DONE, 1.0), CLIENT, False),
        (RoleName.BROKER, Heartbeat("dtn://hub/", Role.EXECUTOR, 1, 1.0, 5.0), CLIENT, False),
        (RoleName.BROKER, SUBMIT, None, False),
        (RoleName.EXECUTOR, DISPATCH, None, False),
    ],
)
def test_admission(
    role: RoleName, message: object, sender: CertificateFacts | None, allowed: bool
) -> None:
    why = admission(role, message, sender)  # type: ignore[arg-type]
    assert (why is None) == allowed, why


def test_a_refused_client_request_is_answered() -> None:
    why = admission(RoleName.BROKER, SUBMIT, NODE)
    assert why == "dtn://hub/ is a node: only clients submit jobs"
    rejected = refusal_reply(SUBMIT, why, now=5.0)
    assert isinstance(rejected, JobState) and rejected.state is JobStatus.REJECTED
    assert rejected.detail.startswith("not allowed: ")
    denied = refusal_reply(PUT, "x", now=5.0)
    assert isinstance(denied, DataReply) and denied.status is DataStatus.DENIED
    assert isinstance(refusal_reply(GET, "x", now=5.0), DataGetReply)
    assert refusal_reply(DISPATCH, "x", now=5.0) is None
