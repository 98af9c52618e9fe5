"""One camera's side of live association, inside the user's tracking loop.

::

    camera = LiveCamera("cam1", OnlineCollector(embedder, "runs/cam1", source=url, fps=25.0), fps=25.0)
    for frame_index, frame in enumerate(frames, start=1):
        rows = tracker.update(...)                     # track id, x0, y0, x1, y1 (0-based pixels)
        for track in camera.update(frame_index, frame, rows):
            identity = associator.add("cam1", track)   # or send it to the associator's process
    for track in camera.close_stream():
        associator.add("cam1", track)
    camera.finish()                                    # the extract files of the whole stream

A track ends when the tracker has not reported it for ``idle_frames`` frames
(:class:`~trackreid.online.OnlineConfig`); its crops are then embedded and it comes back as a
:class:`~trackreid.associate.live.LiveTrack`: span in seconds on the site clock, track feature,
and the motion at both ends of its boxes (the motion gate of :mod:`trackreid.associate.motion`).
Only the first and last second of each open track's boxes are kept.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from trackreid.associate.live import LiveTrack
from trackreid.associate.motion import WINDOW
from trackreid.errors import InputError
from trackreid.extract import ExtractResult
from trackreid.io.mot import Tracks
from trackreid.io.video import Picture
from trackreid.online import OnlineCollector
from trackreid.sampling import mot_to_xyxy


class _Boxes:
    """The first and the last ``span`` boxes of one open track (frame, MOT xywh)."""

    def __init__(self, span: int) -> None:
        self.head: list[tuple[int, np.ndarray]] = []
        self.tail: deque[tuple[int, np.ndarray]] = deque(maxlen=span)
        self.span = span

    def add(self, frame: int, xywh: np.ndarray) -> None:
        if len(self.head) < self.span:
            self.head.append((frame, xywh))
        else:
            self.tail.append((frame, xywh))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        items = self.head + list(self.tail)
        return np.array([f for f, _ in items], np.int64), np.array([b for _, b in items], np.float64).reshape(-1, 4)


class LiveCamera:
    """An :class:`OnlineCollector` whose ended tracks come back as :class:`LiveTrack` (module docstring)."""

    def __init__(self, name: str, collector: OnlineCollector, fps: float, time_offset: float = 0.0) -> None:
        if not (np.isfinite(fps) and fps > 0):
            raise InputError(f"camera {name!r}: fps {fps!r}: expected a positive number of frames per second "
                             "(track times are seconds on the site clock)")
        self.name, self.collector, self.fps, self.time_offset = name, collector, float(fps), float(time_offset)
        self.span = max(2, int(round(WINDOW * self.fps)))
        self.boxes: dict[int, _Boxes] = {}
        self.sent: set[int] = set()
        self.reappeared = 0
        collector.ended()  # from now on the collector records the tracks that end

    def update(self, frame_index: int, frame: np.ndarray | Picture, rows: Any) -> list[LiveTrack]:
        """One frame and its tracks (``track id, x0, y0, x1, y1``, 0-based pixels, as
        :meth:`OnlineCollector.update`); the tracks that ended with it."""
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5) if len(rows) else np.zeros((0, 5))
        self.collector.update(frame_index, frame, arr)
        keep = (arr[:, 0] >= 0) & (arr[:, 3] > arr[:, 1]) & (arr[:, 4] > arr[:, 2])
        for tid, x0, y0, x1, y1 in arr[keep].tolist():
            b = self.boxes.get(int(tid))
            if b is None:
                b = self.boxes[int(tid)] = _Boxes(self.span)
            b.add(int(frame_index), np.array([x0 + 1, y0 + 1, x1 - x0, y1 - y0]))  # MOT: 1-based left, top, w, h
        return self._ended(False)

    def update_mot(self, frame_index: int, frame: np.ndarray | Picture, tracks: Tracks) -> list[LiveTrack]:
        """:meth:`update` with the rows of a MOT tracks file on this frame."""
        m = tracks.frame == frame_index
        return self.update(frame_index, frame, np.column_stack([tracks.track_id[m], mot_to_xyxy(tracks.xywh[m])]))

    def close_stream(self) -> list[LiveTrack]:
        """The stream is over: every open track ends."""
        return self._ended(True)

    def finish(self) -> ExtractResult:
        """The collector's files (as ``trackreid extract`` writes them) for the whole stream."""
        return self.collector.finish()

    def _ended(self, final: bool) -> list[LiveTrack]:
        out = []
        for tid, _first, _last, feature in self.collector.ended(final):
            if tid in self.sent:  # the tracker reported it again after it had ended: its identity stands
                self.reappeared += 1
                self.boxes.pop(tid, None)
                continue
            frames, xywh = self.boxes.pop(tid).arrays()
            self.sent.add(tid)
            out.append(LiveTrack.from_boxes(tid, frames, xywh, feature, self.fps, self.time_offset))
        return out
