"""The broker role: it keeps the job queue, matches jobs to executors by capability and load,
relays data requests to datastores, hands results on to clients and datastores, and keeps
other brokers informed.

``BrokerRole(node, settings)`` runs on a :class:`~ucp_dtn.agent.BundleNode` at
``…/ucp/broker``; its state lives in ``settings.workdir / "broker"`` (sqlite, WAL) or in memory.
"""

from .job_records import ForeignJob, JobRecord
from .jobs import JobBook, Readiness, Verdict
from .journal import AsyncJournal, BrokerJournal, JournalContents, PendingRequest
from .name_cache import NameCache
from .registry import ExecutorChoice, KnownNode, MemberInfo, NodeRegistry
from .role import BrokerRole
from .statistics import BrokerStatistics
from .sync import SYNC_HEARTBEATS

__all__ = [
    "SYNC_HEARTBEATS",
    "AsyncJournal",
    "BrokerJournal",
    "BrokerRole",
    "BrokerStatistics",
    "ExecutorChoice",
    "ForeignJob",
    "JobBook",
    "JobRecord",
    "JournalContents",
    "KnownNode",
    "MemberInfo",
    "NameCache",
    "NodeRegistry",
    "PendingRequest",
    "Readiness",
    "Verdict",
]
