"""Waiting for something that arrives over a slow link: :func:`wait_while_arriving`.

A request whose answer is a large bundle can take far longer than any fixed timeout on a slow
or flapping link, and giving up then (and asking again) starts the transfer over. The patient
way is to give up only after ``quiet_s`` seconds in which nothing arrived at the node at all:
as long as octets keep arriving (:meth:`~ucp_dtn.agent.BundleNode.received_octets`), the answer
may be among them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import outcome
import trio

__all__ = ["wait_while_arriving"]

T = TypeVar("T")

_CHECK_S = 0.5
"""How often the activity counter is looked at."""


async def wait_while_arriving(
    wait: Callable[[], Awaitable[T]], quiet_s: float, activity: Callable[[], int] | None
) -> T | None:
    """``await wait()``; ``None`` once ``quiet_s`` seconds passed without it returning and
    without ``activity()`` (a counter of octets received) growing. Without ``activity``, a
    plain timeout of ``quiet_s``."""
    if activity is None:
        with trio.move_on_after(quiet_s):
            return await wait()
        return None
    result: list[outcome.Outcome[T]] = []
    async with trio.open_nursery() as nursery:

        async def waiter() -> None:
            try:
                value = await wait()
            except Exception as exc:  # re-raised outside the nursery, as itself
                result.append(outcome.Error(exc))
            else:
                result.append(outcome.Value(value))
            nursery.cancel_scope.cancel()

        nursery.start_soon(waiter)
        seen = activity()
        deadline = trio.current_time() + quiet_s
        while trio.current_time() < deadline:
            await trio.sleep(min(_CHECK_S, max(0.0, deadline - trio.current_time())))
            now_seen = activity()
            if now_seen != seen:
                seen = now_seen
                deadline = trio.current_time() + quiet_s
        nursery.cancel_scope.cancel()
    return result[0].unwrap() if result else None
