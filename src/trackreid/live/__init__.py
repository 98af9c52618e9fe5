"""Live association for a whole site: cameras send each finished track, one associator answers.

* :class:`~trackreid.live.camera.LiveCamera`: one camera's side, inside the user's own tracking
  loop (an :class:`~trackreid.online.OnlineCollector` plus the ends of each track's boxes):
  ``update(frame_index, frame, rows)`` returns the tracks that just ended, as
  :class:`~trackreid.associate.live.LiveTrack`.
* :class:`~trackreid.associate.live.LiveAssociator`: the site's side: ``add(camera, track)``
  gives the identity now, revisions follow as events.
* :func:`~trackreid.live.replay.run_live`: ``trackreid live``: a site's videos replayed as if live
  (one process per camera), events as JSON lines, then the files of ``associate``.

See docs/live.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackreid.associate.live import LiveAssociator, LiveTrack
    from trackreid.live.camera import LiveCamera

__all__ = ["LiveAssociator", "LiveCamera", "LiveTrack"]


def __getattr__(name: str) -> Any:
    if name in ("LiveAssociator", "LiveTrack"):
        from trackreid.associate import live

        return getattr(live, name)
    if name == "LiveCamera":
        from trackreid.live import camera

        return camera.LiveCamera
    raise AttributeError(name)
