"""The lossy-link simulator: links that cut, stall, delay, throttle and partition on a seed.

* :mod:`.model` and :mod:`.partition` are pure: a seeded :class:`LinkModel` built from a
  :class:`LinkProfile` says when a link cuts, stalls or is down and when each chunk arrives;
  a :class:`PartitionSchedule` says which groups of nodes are cut off from each other when.
* :class:`LossyLink` runs a model on trio's clock; :class:`LossyStream` wraps any trio stream
  so its bytes cross such a link (:func:`open_lossy_stream_pair` for in-memory tests);
  :class:`LossyRelay` does the same for real TCP connections between processes;
  :class:`PartitionController` switches many links down and up per a partition schedule.
* ``python -m convergence.lossy`` runs a relay from the command line (docs/lossy-link.md).
* Its durations (``1h15s``), sizes (``64KiB``), rates (``1MB/s``) and windows (``30s-40s``) are
  read by :mod:`convergence.quantities`, the grammar the whole stack shares.
"""

from .controller import PartitionController, Switchable
from .link import LinkStatistics, LossyLink
from .model import (
    ConnectionModel,
    Direction,
    Fault,
    FaultKind,
    LinkModel,
    LinkProfile,
    Transmission,
    Window,
)
from .partition import Partition, PartitionSchedule, ScheduledPartition, link_nodes
from .relay import LossyRelay, RelayStatistics
from .stream import LossyStream, open_lossy_stream, open_lossy_stream_pair

__all__ = [
    "ConnectionModel",
    "Direction",
    "Fault",
    "FaultKind",
    "LinkModel",
    "LinkProfile",
    "LinkStatistics",
    "LossyLink",
    "LossyRelay",
    "LossyStream",
    "Partition",
    "PartitionController",
    "PartitionSchedule",
    "RelayStatistics",
    "ScheduledPartition",
    "Switchable",
    "Transmission",
    "Window",
    "link_nodes",
    "open_lossy_stream",
    "open_lossy_stream_pair",
]
