"""The UCP client: submit plans, follow jobs, collect their results and manage named data —
from any machine, without a daemon (the ``ucp`` command's ``submit``, ``status``, ``jobs``,
``cancel``, ``logs``, ``collect``, ``run`` and ``data`` subcommands; ``docs/client.md``).

A client has a home directory (:class:`ClientHome`: its node ID, bundle store and
:class:`ClientJournal`) and, while it works, its own node on the network (:class:`ClientNode`),
which one process holds at a time: the client agent every ``ucp`` command of the home talks to
(:mod:`ucp_dtn.client.agent`), or a program using the library. A :class:`ClientSession` is one
command's view of that node (its ``--via``, broker and timeouts). Typical use::

    settings = ClientSettings(via=(("broker.local", 4556),))
    async with ClientSession.open(settings) as session:
        report = await submit_plan(session, load_plan("plan.toml"))
        entries = await wait_for_jobs(session, [job.job_id for job in report.jobs])
        await collect_results(session, entries, Path("results"))

The package imports its parts when first used: ``ucp`` imports :mod:`.settings` and
:mod:`.errors` alone, without the node and its dependencies, to start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .collect import (
        Collected,
        CollectState,
        collect_results,
        folder_name,
        result_summary,
        unpack_archive,
    )
    from .data import (
        DataPage,
        PutOutcome,
        ReplicaEntry,
        decode_page_token,
        delete_data,
        encode_page_token,
        free_space,
        get_data,
        list_data,
        put_data,
        replica_listing,
    )
    from .errors import BrokerUnreachable, ClientError, ClientUsageError, HomeError, NoReply
    from .home import ClientHome
    from .jobs import (
        CancelOutcome,
        SubmitOutcome,
        SubmitReport,
        SubmittedJob,
        cancel_jobs,
        fetch_archive,
        fetch_result,
        job_output,
        refresh,
        submit_plan,
        wait_for_jobs,
    )
    from .journal import ClientJournal, JobEntry, OutboxItem
    from .node import ClientNode, JobEvent
    from .session import ClientSession
    from .settings import HOME_ENV, ClientSettings, default_home
    from .stranded import MovedJob, move_stranded

_WHERE = {
    "Collected": "collect",
    "CollectState": "collect",
    "collect_results": "collect",
    "folder_name": "collect",
    "result_summary": "collect",
    "unpack_archive": "collect",
    "DataPage": "data",
    "PutOutcome": "data",
    "ReplicaEntry": "data",
    "decode_page_token": "data",
    "delete_data": "data",
    "encode_page_token": "data",
    "free_space": "data",
    "get_data": "data",
    "list_data": "data",
    "put_data": "data",
    "replica_listing": "data",
    "BrokerUnreachable": "errors",
    "ClientError": "errors",
    "ClientUsageError": "errors",
    "HomeError": "errors",
    "NoReply": "errors",
    "ClientHome": "home",
    "CancelOutcome": "jobs",
    "SubmitOutcome": "jobs",
    "SubmitReport": "jobs",
    "SubmittedJob": "jobs",
    "cancel_jobs": "jobs",
    "fetch_archive": "jobs",
    "fetch_result": "jobs",
    "job_output": "jobs",
    "refresh": "jobs",
    "submit_plan": "jobs",
    "wait_for_jobs": "jobs",
    "ClientJournal": "journal",
    "JobEntry": "journal",
    "OutboxItem": "journal",
    "ClientNode": "node",
    "JobEvent": "node",
    "ClientSession": "session",
    "HOME_ENV": "settings",
    "ClientSettings": "settings",
    "default_home": "settings",
    "MovedJob": "stranded",
    "move_stranded": "stranded",
}

__all__ = [
    "HOME_ENV",
    "BrokerUnreachable",
    "CancelOutcome",
    "ClientError",
    "ClientHome",
    "ClientJournal",
    "ClientNode",
    "ClientSession",
    "ClientSettings",
    "ClientUsageError",
    "CollectState",
    "Collected",
    "DataPage",
    "HomeError",
    "JobEntry",
    "JobEvent",
    "MovedJob",
    "NoReply",
    "OutboxItem",
    "PutOutcome",
    "ReplicaEntry",
    "SubmitOutcome",
    "SubmitReport",
    "SubmittedJob",
    "cancel_jobs",
    "collect_results",
    "decode_page_token",
    "default_home",
    "delete_data",
    "encode_page_token",
    "fetch_archive",
    "fetch_result",
    "folder_name",
    "free_space",
    "get_data",
    "job_output",
    "list_data",
    "move_stranded",
    "put_data",
    "replica_listing",
    "refresh",
    "result_summary",
    "submit_plan",
    "unpack_archive",
    "wait_for_jobs",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
