"""The result of an association (:class:`Association`), read by its outputs and its report.

Its own module, so that :mod:`.api` (which makes it), :mod:`.outputs` and :mod:`.report`
(which write it) import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trackreid.associate.config import AssociateConfig
from trackreid.associate.constraints import Constraints
from trackreid.associate.graph import Graph
from trackreid.associate.tracks import LoadedCamera, TrackSet


@dataclass
class Association:
    """The result of :func:`associate`. Global ids are 1..G (``labels + 1``)."""

    tracks: TrackSet
    labels: np.ndarray  # (N,) int64 cluster 0..G-1 per TrackSet row
    global_ids: dict[str, dict[int, int]]  # camera -> track id -> global id (every input track)
    threshold: float
    threshold_info: dict[str, Any]
    summary: dict[str, Any]
    cameras: list[LoadedCamera]
    merges: list[tuple[int, int, float]] = field(default_factory=list)  # (row a, row b, cluster similarity)
    graph: Graph | None = None
    config: AssociateConfig = field(default_factory=AssociateConfig)
    constraints: Constraints | None = None  # what the final clustering obeyed (with a learned topology)

    def camera_id(self, name: str) -> int:
        """The integer camera id used in mtmc.txt (1-based position in the inputs)."""
        return self.tracks.cameras.index(name) + 1
