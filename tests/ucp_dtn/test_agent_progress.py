"""``wait_while_arriving``: a wait that gives up only after a quiet period."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from ucp_dtn.agent.progress import wait_while_arriving


async def test_gives_up_after_a_quiet_period(autojump_clock: trio.testing.MockClock) -> None:
    counter = [0]
    start = trio.current_time()
    assert await wait_while_arriving(trio.sleep_forever, 10.0, lambda: counter[0]) is None
    assert trio.current_time() - start == pytest.approx(10.0, abs=0.6)


async def test_keeps_waiting_while_octets_arrive(autojump_clock: trio.testing.MockClock) -> None:
    counter = [0]
    answer = trio.Event()

    async def arriving() -> None:
        for _ in range(60):  # 30 s of arrivals, far beyond the quiet period
            await trio.sleep(0.5)
            counter[0] += 1000
        answer.set()

    async def wait() -> str:
        await answer.wait()
        return "reply"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(arriving)
        start = trio.current_time()
        assert await wait_while_arriving(wait, 5.0, lambda: counter[0]) == "reply"
        assert trio.current_time() - start == pytest.approx(30.0, abs=0.6)


async def test_errors_come_out_as_themselves(autojump_clock: trio.testing.MockClock) -> None:
    async def fail() -> None:
        await trio.sleep(1)
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        await wait_while_arriving(fail, 5.0, lambda: 0)
    # Without an activity counter: a plain timeout.
    assert await wait_while_arriving(trio.sleep_forever, 2.0, None) is None
