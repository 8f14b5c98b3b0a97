"""Run a node's UCP roles (``ucp-bpnode --roles broker,executor,datastore``).

:func:`run_roles` starts one role object per configured role on a running :class:`BundleNode`,
each in its own task, and returns (after cleaning up) when cancelled. The role modules are
imported only for the roles asked for, so a node without the executor role never imports
wasmtime.

A node without the broker role and with ``promote_probability`` above 0 also watches for the
loss of every broker (:class:`~.promotion.PromotionWatch`, one check per heartbeat interval):
when it promotes itself it starts a :class:`~.broker.BrokerRole` in the same nursery and adds
``broker`` to the node's roles (:meth:`BundleNode.set_roles`), so that its neighbours learn of
the new broker with the next route advertisement.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

import trio

from ..agent import BundleNode
from .endpoints import RoleName
from .promotion import PromotionWatch
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
        if RoleName.BROKER not in settings.roles and settings.promote_probability > 0:
            nursery.start_soon(_watch_for_brokers, node, settings, clock, services, nursery)
        task_status.started(services)


async def _watch_for_brokers(
    node: BundleNode,
    settings: RoleSettings,
    clock: Callable[[], float],
    services: list[RoleService],
    nursery: trio.Nursery,
) -> None:
    """Promote the node to broker once :class:`PromotionWatch` says so (then return)."""
    watch = PromotionWatch(
        settings.broker_timeout_s,
        settings.promote_probability,
        random.Random(settings.promotion_seed),
    )
    while True:
        await trio.sleep(settings.heartbeat_interval_s)
        reachable = bool(node.nodes_with_role(RoleName.BROKER))
        if watch.check(clock(), broker_reachable=reachable):
            break
    logger.warning(
        "%s: no broker reachable for %.0f s: promoting this node to broker",
        node.node_id,
        settings.broker_timeout_s,
    )
    promoted = dataclasses.replace(settings, roles=(*settings.roles, RoleName.BROKER))
    broker = create_role(RoleName.BROKER, node, promoted, clock=clock)
    await nursery.start(broker.run)
    services.append(broker)
    node.set_roles(sorted({*node.config.roles, RoleName.BROKER.value}))
    logger.info("%s: broker role serving (promoted)", node.node_id)
