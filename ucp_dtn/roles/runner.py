"""Run a node's UCP roles (``ucp-bpnode --roles broker,executor,datastore``).

:func:`run_roles` starts one role object per configured role on a running :class:`BundleNode`,
each in its own task, and returns (after cleaning up) when cancelled. The role modules are
imported only for the roles asked for, so a node without the executor role never imports
wasmtime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import trio

from ..agent import BundleNode
from .endpoints import RoleName
from .settings import RoleSettings

__all__ = ["RoleService", "run_roles", "create_role"]

logger = logging.getLogger(__name__)


class RoleService(Protocol):
    """What every role object offers."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started()`` once serving."""

    def statistics(self) -> object:
        """The role's counters (a frozen dataclass)."""


def create_role(
    role: RoleName, node: BundleNode, settings: RoleSettings, *, clock: Callable[[], float]
) -> RoleService:
    """The role object of ``role`` on ``node``."""
    if role is RoleName.BROKER:
        from .broker import BrokerRole

        return BrokerRole(node, settings, clock=clock)
    if role is RoleName.EXECUTOR:
        from .executor import ExecutorRole

        return ExecutorRole(node, settings, clock=clock)
    if role is RoleName.DATASTORE:
        from .datastore import DatastoreRole

        return DatastoreRole(node, settings, clock=clock)
    raise ValueError(f"{role.value!r} is not a role a node runs")


async def run_roles(
    node: BundleNode,
    settings: RoleSettings,
    *,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[list[RoleService]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Start every role of ``settings.roles`` on ``node`` (which must be running); report the
    role objects through ``task_status`` once all serve; run until cancelled."""
    services = [create_role(role, node, settings, clock=clock) for role in settings.roles]
    async with trio.open_nursery() as nursery:
        for role, service in zip(settings.roles, services, strict=True):
            await nursery.start(service.run)
            logger.info("%s: %s role serving", node.node_id, role.value)
        task_status.started(services)
