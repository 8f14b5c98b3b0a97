"""Counters and gauges of a broker (:meth:`BrokerRole.statistics`)."""

from __future__ import annotations

from dataclasses import dataclass

from .replica_keeper import ReplicationStatistics

__all__ = ["BrokerStatistics"]


@dataclass(frozen=True, slots=True)
class BrokerStatistics:
    """What a broker holds and has done since it started."""

    jobs: int
    """Jobs it owns (every state)."""
    queued: int
    """Own jobs waiting (for ``after`` jobs or a capable executor)."""
    dispatched: int
    """Own jobs sent to an executor, not yet reported running."""
    running: int
    """Own jobs their executor reported running."""
    done: int
    """Own jobs finished successfully."""
    failed: int
    """Own jobs finished unsuccessfully."""
    rejected: int
    """Own jobs that will never run."""
    cancelled: int
    """Own jobs their client cancelled."""
    foreign_jobs: int
    """Jobs known from other brokers' syncs."""
    executors: int
    """Live executors."""
    datastores: int
    """Live datastores."""
    peer_brokers: int
    """Other brokers it syncs with."""
    submissions: int
    """Jobs accepted."""
    duplicates: int
    """Submissions of jobs it already had."""
    dispatches: int
    """Job dispatches sent."""
    results: int
    """Results accepted (the first per job)."""
    late_results: int
    """Further results for a job that already had one (dropped)."""
    data_relayed: int
    """Data requests relayed to datastores."""
    data_queued: int
    """Data requests waiting for a datastore now."""
    names_cached: int
    """Entries of the name → datastore cache."""
    status_queries: int
    """Status queries answered."""
    syncs_sent: int
    """Broker syncs sent."""
    syncs_received: int
    """Broker syncs taken in."""
    ignored: int
    """Messages ignored: of a kind a broker does not take, stale, or not making sense."""
    redeployments: int = 0
    """Jobs taken back from a lost executor (queued again for another one)."""
    takeovers: int = 0
    """Jobs of another broker made its own (a result or report for them came here)."""
    orphan_results: int = 0
    """Results for jobs it never knew, stored as ``<job-uuid>/result`` for the client."""
    messages_received: int = 0
    """UCP messages its mailbox decoded."""
    bundles_received: int = 0
    """Bundles that carried them (fewer when messages came in batches)."""
    messages_sent: int = 0
    """UCP messages it sent."""
    bundles_sent: int = 0
    """Bundles that carried them (fewer when messages went in batches)."""
    rounds: int = 0
    """Rounds of messages handled together with one journal commit per level
    (:mod:`.handling_round`)."""
    scheduling_passes: int = 0
    """Passes over the whole queue looking for jobs to dispatch (one per round at most,
    however many results and submissions it held)."""
    replication: ReplicationStatistics | None = None
    """Replicated data it knows and the copies it asked for (``None`` while not running)."""
