"""Where a job's data is: the nodes that hold its named inputs, for placing it (sans-IO).

Theory of operation
-------------------
Moving a job's inputs costs more than choosing another executor: the classifier's 19 MB of
audio take a quarter of its run time to fetch on loopback, and far longer on a field link. So
the broker asks, for each queued job, which nodes have its named inputs at hand
(:meth:`InputPlacement.near`), and the registry ranks capable executors with room by those
bytes first (:meth:`~.registry.NodeRegistry.choose_executor`). A node has a datum at hand when

* its datastore holds it: the name cache (:class:`~.name_cache.NameCache`, from the puts this
  broker relayed and other brokers' syncs) and the replica holders; or
* its executor fetched it lately: this broker remembers, per data name, the executors of the
  last few jobs it dispatched that read the name (their input caches hold the value,
  :mod:`ucp_dtn.roles.executor.input_cache`, unless it changed or was evicted since).

Each datum counts with its size (the name cache's; 1 byte when the size is unknown). A job's
inputs are its module, stdin and job data when they are data names, and its named inputs
(a name with its subkeys, or a ``prefix*`` pattern) — except what the submission carries
inline. Everything here is a hint: a wrong guess costs a fetch, never a wrong result.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping

from bpv7 import BPv7Error

from ...ucp.job import DataRef, JobInfo
from ...ucp.names import DataName, name_matches
from ..endpoints import node_of
from .name_cache import NameCache

__all__ = ["InputPlacement", "job_input_queries"]

_EXECUTORS_PER_NAME = 4
"""Executors remembered per data name (the most recent)."""
_NAMES_REMEMBERED = 4096
"""Data names whose executors are remembered (the most recently dispatched)."""


def job_input_queries(job: JobInfo, inline_data: Mapping[DataName, bytes]) -> list[DataName]:
    """The names and patterns ``job`` reads from the datastores (sorted, each once)."""
    queries: set[DataName] = set()
    for source in (job.wasm, job.stdin, *job.job_data.values()):
        if isinstance(source, DataRef) and source.name not in inline_data:
            queries.add(source.name)
    for name in job.inputs.values():
        if name not in inline_data:
            queries.add(name)
    return sorted(queries)


class InputPlacement:
    """Which nodes have a job's inputs at hand (see the module docstring)."""

    def __init__(
        self,
        names: NameCache,
        replica_holders: Callable[[str], Mapping[str, list[str]]] | None = None,
    ) -> None:
        """``replica_holders``: data name query → name → node IDs holding a replica."""
        self._names = names
        self._replica_holders = replica_holders
        self._executors: collections.OrderedDict[DataName, list[str]] = collections.OrderedDict()

    def near(self, job: JobInfo, inline_data: Mapping[DataName, bytes]) -> dict[str, int]:
        """Node ID → bytes of ``job``'s inputs it has at hand (nodes with none left out)."""
        queries = job_input_queries(job, inline_data)
        if not queries:
            return {}
        sizes: dict[DataName, int] = {}
        where: dict[DataName, set[str]] = {}
        for query in queries:
            for entry in self._names.selected(query):
                sizes[entry.name] = max(1, entry.size)
                if entry.holder is not None:
                    where.setdefault(entry.name, set()).add(_node_text(entry.holder))
            if self._replica_holders is not None:
                for name, replica_nodes in self._replica_holders(query).items():
                    sizes.setdefault(name, 1)
                    where.setdefault(name, set()).update(replica_nodes)
            for name in self._remembered(query):
                sizes.setdefault(name, 1)
                where.setdefault(name, set()).update(self._executors[name])
        near: dict[str, int] = {}
        for name, holding in where.items():
            for node in holding:
                if node:
                    near[node] = near.get(node, 0) + sizes[name]
        return near

    def _remembered(self, query: DataName) -> Iterable[DataName]:
        """Remembered names ``query`` selects (the query itself too: a pattern or a name the
        name cache did not know when it was dispatched)."""
        for name in self._executors:
            if name == query or name_matches(query, name):
                yield name

    def note_dispatch(self, job: JobInfo, inline_data: Mapping[DataName, bytes], node: str) -> None:
        """``job`` went to the executor on ``node``: its input cache will hold the job's
        inputs (the names of the name cache the queries select, or the queries themselves)."""
        for query in job_input_queries(job, inline_data):
            names = [entry.name for entry in self._names.selected(query)] or [query]
            for name in names:
                nodes = self._executors.pop(name, [])
                if node in nodes:
                    nodes.remove(node)
                nodes.append(node)
                self._executors[name] = nodes[-_EXECUTORS_PER_NAME:]
        while len(self._executors) > _NAMES_REMEMBERED:
            self._executors.popitem(last=False)


def _node_text(endpoint: str) -> str:
    try:
        return str(node_of(endpoint))
    except BPv7Error:  # a bad holder from another broker's sync matches no node
        return ""
