"""Whose job a job ID is: a broker refuses another client's submission of a job ID it knows
(tests/ucp_dtn/roles/test_broker.py has the broker's test network)."""

from __future__ import annotations

import trio

from tests.ucp_dtn.agent_support import start_node, wait_until
from tests.ucp_dtn.roles.test_broker import make_job, open_net, start_actor
from ucp_dtn.roles import RoleName
from ucp_dtn.ucp import JobAccepted, JobState, JobStatus, JobSubmission


async def test_a_job_id_of_another_client_is_refused() -> None:
    """A job ID names one job of one client: another client submitting it (here claiming to
    have moved it, which would contest the real job between brokers) is refused and told so;
    the real job is untouched."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            net = await open_net(nursery)
            job = make_job(name="real")
            await net.submit(job)
            m = await start_node(nursery, "m")
            await m.node.connect(*net.b.address)
            m.node.add_route("*", "dtn://b/")
            await wait_until(lambda: len(net.b.node.peers()) == 4)
            mallory = await start_actor(nursery, m, RoleName.CLIENT)
            claim = JobSubmission(job, moved_from="dtn://z/ucp/broker")
            await mallory.send(net.to, claim, custody=True)
            refused = await mallory.expect(JobState, lambda state: state.job_id == job.job_id)
            assert refused.state == JobStatus.REJECTED
            assert "another client's job" in refused.detail
            assert not mallory.got(JobAccepted)
            [entry] = (await net.status(job_ids=(job.job_id,))).jobs
            assert entry.client == net.client.endpoint and entry.state == JobStatus.QUEUED
            # The job's own client submitting it again is still a duplicate, acknowledged.
            assert (await net.submit(job)).duplicate
            nursery.cancel_scope.cancel()
