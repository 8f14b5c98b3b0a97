"""The broker role: it keeps the job queue, matches jobs to executors by capability and load,
relays data requests to datastores, hands results on to clients and datastores, keeps other
brokers informed (and takes over a lost broker's jobs), and plans replica copies.

``BrokerRole(node, settings)`` runs on a :class:`~ucp_dtn.agent.BundleNode` at
``…/ucp/broker``; its state lives in ``settings.workdir / "broker"`` (sqlite, WAL) or in memory.
"""

from .job_records import ForeignJob, JobRecord
from .jobs import JobBook, Readiness, Verdict
from .journal import AsyncJournal, BrokerJournal, JournalContents, PendingRequest
from .name_cache import NameCache
from .registry import ExecutorChoice, KnownNode, MemberInfo, NodeRegistry
from .replica_keeper import ReplicaKeeper, ReplicationStatistics
from .replicas import Candidate, CopyOrder, ReplicaPlanner
from .role import BrokerRole
from .statistics import BrokerStatistics
from .succession import Succession
from .sync import SYNC_HEARTBEATS

__all__ = [
    "SYNC_HEARTBEATS",
    "AsyncJournal",
    "BrokerJournal",
    "BrokerRole",
    "BrokerStatistics",
    "Candidate",
    "CopyOrder",
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
    "ReplicaKeeper",
    "ReplicaPlanner",
    "ReplicationStatistics",
    "Succession",
    "Verdict",
]
