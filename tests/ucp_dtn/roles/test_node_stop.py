"""NodeStopGuard: how a role takes its node stopping under it."""

from __future__ import annotations

import pytest

from ucp_dtn.agent import NodeNotRunningError
from ucp_dtn.roles.node_stop import NodeStopGuard
from ucp_dtn.store import StoreClosedError


def test_a_serving_role_ends_quietly_when_its_node_stops() -> None:
    with NodeStopGuard("datastore") as guard:
        guard.serving = True
        raise ExceptionGroup("nursery", [StoreClosedError("the bundle store is closed")])
    with NodeStopGuard("executor") as guard:
        guard.serving = True
        raise NodeNotRunningError("node dtn://e/ is not running")


def test_before_serving_the_stop_means_it_could_not_start() -> None:
    with pytest.raises(ExceptionGroup), NodeStopGuard("broker"):
        raise ExceptionGroup("nursery", [NodeNotRunningError("node dtn://b/ is not running")])


def test_other_errors_go_on_up_beside_the_stop() -> None:
    with pytest.raises(ExceptionGroup) as raised, NodeStopGuard("broker") as guard:
        guard.serving = True
        raise ExceptionGroup("nursery", [StoreClosedError("closed"), ValueError("a bug of ours")])
    assert [type(e) for e in raised.value.exceptions] == [ValueError]
    with pytest.raises(KeyError), NodeStopGuard("broker") as guard:
        guard.serving = True
        raise KeyError("not a stop")
