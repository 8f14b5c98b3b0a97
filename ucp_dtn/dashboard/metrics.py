"""``/metrics``: the node's counters in Prometheus' text exposition format.

:class:`NodeCollector` is a ``prometheus_client`` custom collector: at each scrape it reads the
node's and its roles' ``statistics()`` (counts the components keep anyway) and yields metric
families; nothing is counted twice and nothing on the forwarding path changes. Counters carry
the same values as ``ucp nodes`` (``ucp_bundles_received_total`` is its ``received``, and so
on). Job run times come from the shared :class:`~.jobs.JobTable` as histograms.
:func:`metrics_registry` puts the collector and the process collector (CPU, resident memory,
open files) into a registry of the node's own, and :func:`render_metrics` renders it.

docs/dashboard.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..ucp.messages import Role
from .jobs import JOB_STATES, Histogram, JobTable
from .sources import NodeSources

if TYPE_CHECKING:
    from ..roles.broker import MemberInfo

__all__ = ["CONTENT_TYPE", "NodeCollector", "metrics_registry", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The content type of Prometheus' text format."""

#: NodeStatistics field → (metric name without ``ucp_`` and ``_total``, help).
_NODE_COUNTERS = (
    ("received", "bundles_received", "Bundles received from neighbours and accepted."),
    ("created", "bundles_created", "Bundles created on this node."),
    ("forwarded", "bundles_forwarded", "Bundles a neighbour acknowledged."),
    ("delivered", "bundles_delivered", "Bundles delivered to local applications."),
    ("duplicates", "bundles_duplicate", "Received bundles dropped as duplicates."),
    ("invalid", "bundles_invalid", "Received transfers that were not valid bundles."),
    ("refused_transfers", "transfers_refused", "Incoming transfers refused."),
    ("send_failures", "send_failures", "Transfers that did not complete and were retried."),
    ("fragments_created", "fragments_created", "Fragments made to fit a neighbour's MRU."),
    ("reassembled", "bundles_reassembled", "ADUs reassembled from fragments."),
    ("custody_accepted", "custody_accepted", "Bundles this node took custody of."),
    ("custody_refusals_sent", "custody_refusals_sent", "Custody transfers refused."),
    ("custody_signals_sent", "custody_signals_sent", "Custody signal bundles sent."),
    ("custody_released", "custody_released", "Custodial copies released by a signal."),
    ("custody_refused", "custody_refused", "Custodial transmissions the next node refused."),
    (
        "custody_retransmitted",
        "custody_retransmissions",
        "Custodial transmissions repeated for want of a signal.",
    ),
    ("reports_sent", "status_reports_sent", "Status reports created."),
    ("reports_received", "status_reports_received", "Status reports received."),
    ("adverts_sent", "route_adverts_sent", "Route advertisements sent."),
    ("adverts_received", "route_adverts_received", "Route advertisements received."),
    ("sessions_opened", "sessions_opened", "TCPCL sessions established."),
)

_BROKER_COUNTERS = (
    ("submissions", "broker_jobs_submitted", "Jobs the broker accepted."),
    ("duplicates", "broker_duplicate_submissions", "Submissions of jobs it already had."),
    ("dispatches", "broker_dispatches", "Job dispatches sent to executors."),
    ("results", "broker_results", "Results accepted (the first per job)."),
    ("late_results", "broker_late_results", "Further results for a job (dropped)."),
    ("redeployments", "broker_redeployments", "Jobs taken back from a lost executor."),
    ("takeovers", "broker_takeovers", "Jobs of another broker made its own."),
    ("data_relayed", "broker_data_relayed", "Data requests relayed to datastores."),
    ("messages_received", "broker_messages_received", "UCP messages the broker received."),
    ("bundles_received", "broker_bundles_received", "Bundles that carried them (batches)."),
    ("messages_sent", "broker_messages_sent", "UCP messages the broker sent."),
    ("bundles_sent", "broker_bundles_sent", "Bundles that carried them (batches)."),
)

_EXECUTOR_COUNTERS = (
    ("received", "executor_jobs_received", "Dispatches of new jobs."),
    ("succeeded", "executor_jobs_succeeded", "Jobs finished with an OK result."),
    ("failed", "executor_jobs_failed", "Jobs finished with a result that is not OK."),
    ("input_failures", "executor_input_failures", "Jobs failed for missing named data."),
    ("bytes_fetched", "executor_fetched_bytes", "Content bytes of fetched named data."),
    ("input_cache_hits", "executor_input_cache_hits", "Inputs served from the input cache."),
    (
        "input_cache_bytes_saved",
        "executor_input_cache_saved_bytes",
        "Content bytes the input cache spared fetching.",
    ),
    ("data_published", "executor_data_published", "Named results handed to the network."),
)

#: DatastoreStatistics field → the ``kind`` label of its requests.
_DATASTORE_REQUESTS = {
    "puts": "put",
    "gets": "get",
    "lists": "list",
    "deletes": "delete",
    "free_space_queries": "free_space",
}


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"ucp_{name}", documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"ucp_{name}", documentation, value=value)


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        f"ucp_{name}",
        documentation,
        buckets=histogram.cumulative(),
        sum_value=histogram.sum,
    )


class NodeCollector(Collector):
    """Reads one node's statistics at each scrape (see the module docstring)."""

    def __init__(self, sources: NodeSources, jobs: JobTable) -> None:
        self.sources = sources
        self.jobs = jobs

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        yield from self._node()
        yield from self._sessions()
        yield from self._broker()
        yield from self._executor()
        yield from self._datastore()

    def _node(self) -> Iterator[Metric]:
        sources = self.sources
        node = sources.node
        stats = node.statistics()
        info = InfoMetricFamily("ucp_node", "This node's ID, roles and software.")
        roles = ",".join(sorted(node.known_roles().get(str(node.node_id), ())))
        info.add_metric(
            [], {"node_id": str(node.node_id), "roles": roles, "software": sources.software}
        )
        yield info
        yield _gauge(
            "start_time_seconds", "When the daemon started (unix time).", sources.started_at
        )
        for field, name, documentation in _NODE_COUNTERS:
            yield _counter(name, documentation, getattr(stats, field))
        deleted = CounterMetricFamily(
            "ucp_bundles_deleted", "Bundles deleted, by reason.", labels=["reason"]
        )
        for reason, count in sorted(stats.deleted.items()):
            deleted.add_metric([reason], count)
        yield deleted
        yield _gauge("store_bundles", "Bundles in the store.", stats.stored_bundles)
        yield _gauge("store_bytes", "Bytes of the bundles in the store.", stats.stored_bytes)
        yield _gauge("store_quota_bytes", "The store's byte quota.", stats.store_quota_bytes)
        by_state = GaugeMetricFamily(
            "ucp_store_bundles_by_state", "Stored bundles by what they wait for.", labels=["state"]
        )
        by_state.add_metric(["pending_forward"], stats.pending_forward)
        by_state.add_metric(["pending_delivery"], stats.pending_delivery)
        by_state.add_metric(["custody_wait"], stats.custody_wait)
        yield by_state
        waiting, unrouted = node.waiting_by_hop()
        per_hop = GaugeMetricFamily(
            "ucp_bundles_waiting",
            "Bundles queued per next hop ('' for those without a usable route).",
            labels=["next_hop"],
        )
        for hop, count in sorted(waiting.items()):
            per_hop.add_metric([hop], count)
        per_hop.add_metric([""], unrouted)
        yield per_hop
        yield _gauge("sessions", "TCPCL sessions up now.", stats.sessions)
        yield _gauge("registrations", "Open application registrations.", stats.registrations)

    def _sessions(self) -> Iterator[Metric]:
        labels = ["peer"]
        sent = CounterMetricFamily(
            "ucp_session_sent_bytes", "Octets written to a neighbour's sessions.", labels=labels
        )
        received = CounterMetricFamily(
            "ucp_session_received_bytes", "Octets read from a neighbour's sessions.", labels=labels
        )
        bundles_sent = CounterMetricFamily(
            "ucp_session_bundles_sent", "Bundles a neighbour acknowledged.", labels=labels
        )
        bundles_received = CounterMetricFamily(
            "ucp_session_bundles_received", "Bundles received from a neighbour.", labels=labels
        )
        in_flight = GaugeMetricFamily(
            "ucp_session_in_flight", "Our transfers not yet acknowledged.", labels=labels
        )
        rtt = GaugeMetricFamily(
            "ucp_session_rtt_seconds", "The kernel's smoothed TCP round-trip time.", labels=labels
        )
        # Several sessions with one neighbour are summed (a label set must be unique); a
        # session that ends takes its counts along: a counter reset, which rate() handles.
        totals: dict[str, list[float]] = {}
        rtts: dict[str, float] = {}
        for peer in self.sources.node.peers():
            link = peer.stats
            row = totals.setdefault(peer.node_id, [0, 0, 0, 0, 0])
            row[0] += getattr(link, "bytes_sent", 0)
            row[1] += getattr(link, "bytes_received", 0)
            row[2] += peer.bundles_sent
            row[3] += peer.bundles_received
            row[4] += peer.in_flight
            value = getattr(link, "rtt_s", None)
            if value is not None:
                rtts[peer.node_id] = min(value, rtts.get(peer.node_id, value))
        for peer_id, row in sorted(totals.items()):
            sent.add_metric([peer_id], row[0])
            received.add_metric([peer_id], row[1])
            bundles_sent.add_metric([peer_id], row[2])
            bundles_received.add_metric([peer_id], row[3])
            in_flight.add_metric([peer_id], row[4])
        for peer_id, value in sorted(rtts.items()):
            rtt.add_metric([peer_id], value)
        yield from (sent, received, bundles_sent, bundles_received, in_flight, rtt)

    def _broker(self) -> Iterator[Metric]:
        broker = self.sources.broker()
        jobs = self.jobs
        jobs.refresh(broker)
        if broker is not None:
            stats = broker.statistics()
            by_state = GaugeMetricFamily(
                "ucp_jobs", "The broker's own jobs, by state.", labels=["state"]
            )
            for state in JOB_STATES:
                by_state.add_metric([state], getattr(stats, state))
            yield by_state
            for field, name, documentation in _BROKER_COUNTERS:
                yield _counter(name, documentation, getattr(stats, field))
            yield _gauge("broker_executors", "Live executors known.", stats.executors)
            yield _gauge("broker_datastores", "Live datastores known.", stats.datastores)
            yield _gauge("broker_data_queued", "Data requests waiting.", stats.data_queued)
            yield from self._members(broker.members())
        yield _histogram(
            "job_run_seconds",
            "Run time of finished jobs, start (or dispatch) to result.",
            jobs.run_time,
        )
        yield _histogram(
            "job_wait_seconds", "Submission to start of finished jobs.", jobs.wait_time
        )

    def _members(self, members: Iterable[MemberInfo]) -> Iterator[Metric]:
        load = GaugeMetricFamily(
            "ucp_executor_load", "Jobs an executor runs or was just sent.", labels=["executor"]
        )
        slots = GaugeMetricFamily(
            "ucp_executor_slots", "Jobs an executor runs at once.", labels=["executor"]
        )
        free = GaugeMetricFamily(
            "ucp_datastore_free_bytes", "A datastore's estimated free bytes.", labels=["datastore"]
        )
        used = GaugeMetricFamily(
            "ucp_datastore_used_bytes", "Bytes a datastore holds.", labels=["datastore"]
        )
        for member in members:
            if member.role == Role.EXECUTOR:
                load.add_metric([member.node], member.load)
                slots.add_metric([member.node], member.max_jobs)
            elif member.role == Role.DATASTORE:
                if member.store_free is not None:
                    free.add_metric([member.node], member.store_free)
                if member.store_used is not None:
                    used.add_metric([member.node], member.store_used)
        yield from (load, slots, free, used)

    def _executor(self) -> Iterator[Metric]:
        executor = self.sources.executor()
        if executor is None:
            return
        stats = executor.statistics()
        yield _gauge(
            "local_executor_slots", "Jobs this node's executor runs at once.", stats.max_jobs
        )
        yield _gauge("local_executor_running", "Jobs holding a slot now.", stats.running)
        yield _gauge("local_executor_active", "Jobs accepted and not finished.", stats.active)
        for field, name, documentation in _EXECUTOR_COUNTERS:
            yield _counter(name, documentation, getattr(stats, field))

    def _datastore(self) -> Iterator[Metric]:
        datastore = self.sources.datastore()
        if datastore is None:
            return
        stats = datastore.statistics()
        requests = CounterMetricFamily(
            "ucp_datastore_requests", "Requests this node's datastore handled.", labels=["kind"]
        )
        for field, kind in _DATASTORE_REQUESTS.items():
            requests.add_metric([kind], getattr(stats, field))
        yield requests
        yield _counter(
            "datastore_refused_no_space", "Puts refused for lack of space.", stats.no_space
        )
        store = stats.store
        if store is not None:
            yield _gauge(
                "local_datastore_bytes", "Content bytes this node's datastore holds.", store.used
            )
            yield _gauge("local_datastore_quota_bytes", "Its quota.", store.quota)
            yield _gauge("local_datastore_items", "Data it holds.", store.items)


def metrics_registry(sources: NodeSources, jobs: JobTable) -> CollectorRegistry:
    """A registry of the node's own with :class:`NodeCollector` and the process collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(sources, jobs))
    ProcessCollector(namespace="ucp", registry=registry)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """One scrape in the text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry)
