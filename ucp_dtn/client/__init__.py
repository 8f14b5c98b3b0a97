"""The UCP client: submit plans, follow jobs, collect results and manage named data — from any
machine, without a daemon (the ``ucp`` command's ``submit``, ``status``, ``collect``, ``run``
and ``data`` subcommands; ``docs/client.md``).

A client has a home directory (:class:`ClientHome`: its node ID, bundle store and
:class:`ClientJournal`) and, for the duration of a command, a :class:`ClientSession` — its own
bundle node connected to a broker's node (``--via`` or zeroconf). Typical use::

    settings = ClientSettings(via=(("broker.local", 4556),))
    async with ClientSession.open(settings) as session:
        report = await submit_plan(session, load_plan("plan.toml"))
        entries = await wait_for_jobs(session, [job.job_id for job in report.jobs])
        await collect_results(session, entries, Path("results"))
"""

from .collect import Collected, CollectState, collect_results, result_summary, unpack_archive
from .data import (
    DataPage,
    PutOutcome,
    ReplicaEntry,
    decode_page_token,
    delete_data,
    encode_page_token,
    get_data,
    list_data,
    put_data,
    replica_listing,
)
from .errors import BrokerUnreachable, ClientError, ClientUsageError, HomeError, NoReply
from .home import HOME_ENV, ClientHome, default_home
from .jobs import (
    SubmitOutcome,
    SubmitReport,
    SubmittedJob,
    fetch_archive,
    fetch_result,
    refresh,
    submit_plan,
    wait_for_jobs,
)
from .journal import ClientJournal, JobEntry, OutboxItem
from .session import ClientSession, ClientSettings, JobEvent

__all__ = [
    "HOME_ENV",
    "BrokerUnreachable",
    "ClientError",
    "ClientHome",
    "ClientJournal",
    "ClientSession",
    "ClientSettings",
    "ClientUsageError",
    "CollectState",
    "Collected",
    "DataPage",
    "HomeError",
    "JobEntry",
    "JobEvent",
    "NoReply",
    "OutboxItem",
    "PutOutcome",
    "ReplicaEntry",
    "SubmitOutcome",
    "SubmitReport",
    "SubmittedJob",
    "collect_results",
    "decode_page_token",
    "default_home",
    "delete_data",
    "encode_page_token",
    "fetch_archive",
    "fetch_result",
    "get_data",
    "list_data",
    "put_data",
    "replica_listing",
    "refresh",
    "result_summary",
    "submit_plan",
    "unpack_archive",
    "wait_for_jobs",
]
