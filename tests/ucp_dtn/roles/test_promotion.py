"""When an orphaned node promotes itself to broker: :class:`PromotionWatch` (sans-IO) and the
role runner acting on it."""

from __future__ import annotations

import random

import pytest
import trio

from tests.ucp_dtn.agent_support import start_node, wait_until
from ucp_dtn.roles import RoleName
from ucp_dtn.roles.broker import BrokerRole
from ucp_dtn.roles.promotion import PromotionWatch
from ucp_dtn.roles.runner import run_roles
from ucp_dtn.roles.settings import RoleSettings


def test_no_promotion_while_a_broker_is_reachable() -> None:
    watch = PromotionWatch(10.0, 1.0, random.Random(1))
    assert not any(watch.check(float(t), broker_reachable=True) for t in range(100))
    assert watch.missing_since is None and watch.checks == 0


def test_promotion_after_the_timeout_with_probability_one() -> None:
    watch = PromotionWatch(10.0, 1.0, random.Random(1))
    assert not watch.check(100.0, broker_reachable=False)
    assert watch.missing_since == 100.0
    assert not watch.check(109.9, broker_reachable=False)
    assert watch.check(110.0, broker_reachable=False)
    assert watch.promoted
    # Once only.
    assert not watch.check(111.0, broker_reachable=False)


def test_a_broker_seen_again_restarts_the_wait() -> None:
    watch = PromotionWatch(10.0, 1.0, random.Random(1))
    watch.check(100.0, broker_reachable=False)
    watch.check(108.0, broker_reachable=True)
    assert watch.missing_since is None
    assert not watch.check(112.0, broker_reachable=False)
    assert not watch.check(121.0, broker_reachable=False)
    assert watch.check(122.0, broker_reachable=False)


def test_probability_zero_never_promotes() -> None:
    watch = PromotionWatch(1.0, 0.0, random.Random(1))
    assert not any(watch.check(float(t), broker_reachable=False) for t in range(1000))
    assert watch.checks == 999


@pytest.mark.parametrize("seed", range(20))
def test_the_draws_follow_the_seeded_generator(seed: int) -> None:
    # The check that promotes is the first whose draw falls under the probability.
    draws = random.Random(seed)
    expected = next(n for n in range(1, 1000) if draws.random() < 0.25)
    watch = PromotionWatch(5.0, 0.25, random.Random(seed))
    watch.check(0.0, broker_reachable=False)
    promoted_at = next(t for t in range(5, 2000) if watch.check(float(t), broker_reachable=False))
    assert watch.checks == expected == promoted_at - 4


@pytest.mark.parametrize(
    ("timeout", "probability", "message"),
    [
        (0.0, 0.5, "timeout_s must be positive"),
        (1.0, 1.5, "probability must be between 0 and 1"),
        (1.0, -0.1, "probability must be between 0 and 1"),
    ],
)
def test_bad_parameters(timeout: float, probability: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PromotionWatch(timeout, probability, random.Random(0))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"promote_probability": 1.01}, "promote_probability must be between 0 and 1"),
        ({"broker_timeout_s": 0.0}, "broker_timeout_s must be positive"),
    ],
)
def test_role_settings_check_the_promotion_fields(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoleSettings(**fields)  # type: ignore[arg-type]


async def test_a_datastore_node_without_brokers_promotes_itself_and_announces_it() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            running = await start_node(nursery, "orphan", listen=(), roles=("datastore",))
            settings = RoleSettings(
                roles=(RoleName.DATASTORE,),
                heartbeat_interval_s=0.05,
                broker_timeout_s=0.2,
                promote_probability=1.0,
            )
            services = await nursery.start(run_roles, running.node, settings)
            assert len(services) == 1
            assert running.node.nodes_with_role(RoleName.BROKER) == []
            await wait_until(lambda: len(services) == 2)
            broker = services[1]
            assert isinstance(broker, BrokerRole)
            assert running.node.config.roles == ("broker", "datastore")
            assert running.node.nodes_with_role(RoleName.BROKER) == [(running.node.node_id, 0)]
            # The node's own datastore heartbeats to the new broker.
            await wait_until(lambda: broker.statistics().datastores == 1)
            nursery.cancel_scope.cancel()


async def test_no_promotion_with_probability_zero() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            running = await start_node(nursery, "orphan", listen=(), roles=("datastore",))
            settings = RoleSettings(
                roles=(RoleName.DATASTORE,), heartbeat_interval_s=0.05, broker_timeout_s=0.1
            )
            services = await nursery.start(run_roles, running.node, settings)
            await trio.sleep(0.5)
            assert len(services) == 1 and running.node.config.roles == ("datastore",)
            nursery.cancel_scope.cancel()
