"""A role's node stopping under it: the one way every role takes it.

When a node and its roles are cancelled at once (a shutdown, a test's nursery), the node may
close its store and stop first; a role still serving then meets :class:`NodeNotRunningError`
or :class:`StoreClosedError` when it sends or confirms a message. Nothing more can be sent or
confirmed, and what was not confirmed comes again next time, so a role that had started
serving takes that as its node's stop: one log line, and it ends. Before it serves, the same
errors mean it could not start, and they go on up.
"""

from __future__ import annotations

import logging
from types import TracebackType

from ..agent import NodeNotRunningError
from ..store import StoreClosedError

__all__ = ["NodeStopGuard"]

logger = logging.getLogger(__name__)

_STOPPED = (NodeNotRunningError, StoreClosedError)


class NodeStopGuard:
    """``with NodeStopGuard("broker dtn://b/ucp/broker") as guard:`` around a role's serving
    nursery; set ``guard.serving = True`` once it serves."""

    def __init__(self, what: str) -> None:
        self.what = what
        """Who stops (for the log line)."""
        self.serving = False
        """Whether the role had started serving."""

    def __enter__(self) -> NodeStopGuard:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if error is None or not self.serving:
            return False
        if isinstance(error, BaseExceptionGroup):
            stopped, rest = error.split(_STOPPED)
            if stopped is None:
                return False
            logger.info("%s: its node stopped: %s", self.what, stopped.exceptions[0])
            if rest is not None:
                raise rest
            return True
        if isinstance(error, _STOPPED):
            logger.info("%s: its node stopped: %s", self.what, error)
            return True
        return False
