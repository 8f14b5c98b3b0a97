"""What the dashboard reads: one running node and the role objects running on it.

:class:`NodeSources` holds the :class:`~ucp_dtn.agent.BundleNode` and the live list of role
services that :func:`~ucp_dtn.roles.runner.run_roles` reported (the list grows when the node
promotes itself to broker). Everything the dashboard shows comes from their ``statistics()`` and
public read-only accessors; nothing reaches into their internals.

The role classes are found without importing their modules: a role object of a class exists only
if its module was imported already, so a node without the executor role never imports wasmtime
because of the dashboard.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from ucp_dtn.agent import BundleNode

if TYPE_CHECKING:
    from ucp_dtn.roles.broker import BrokerRole
    from ucp_dtn.roles.datastore import DatastoreRole
    from ucp_dtn.roles.executor import ExecutorRole

__all__ = ["NodeSources"]


def _find(services: Sequence[object], module: str, name: str) -> object | None:
    """The first service that is an instance of class ``name`` of ``module``, or ``None`` —
    without importing ``module``."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    if not isinstance(cls, type):
        return None
    return next((service for service in services if isinstance(service, cls)), None)


@dataclass(slots=True)
class NodeSources:
    """The node and role objects one dashboard shows."""

    node: BundleNode
    """The running bundle node."""
    services: Sequence[object] = ()
    """The role objects running on it (the list :func:`run_roles` reported; read live)."""
    software: str = "ucp-bpnode"
    """Name and version of the program, shown on the page."""
    started_at: float = field(default_factory=time.time)
    """When the daemon started (unix seconds)."""

    def broker(self) -> BrokerRole | None:
        """The node's broker role, if it runs one (also after promoting itself)."""
        found = _find(self.services, "ucp_dtn.roles.broker.role", "BrokerRole")
        return cast("BrokerRole | None", found)

    def executor(self) -> ExecutorRole | None:
        """The node's executor role, if it runs one."""
        found = _find(self.services, "ucp_dtn.roles.executor.role", "ExecutorRole")
        return cast("ExecutorRole | None", found)

    def datastore(self) -> DatastoreRole | None:
        """The node's datastore role, if it runs one."""
        found = _find(self.services, "ucp_dtn.roles.datastore.role", "DatastoreRole")
        return cast("DatastoreRole | None", found)
