"""Cross-camera association: one global identity per person (step 4).

::

    from trackreid.associate import associate, AssociateConfig, CameraInput, write_association

    result = associate([CameraInput("camA", "runs/camA"), CameraInput("camB", "runs/camB")])
    write_association(result, "runs/step4")

Modules: :mod:`.tracks` (inputs, the TrackSet), :mod:`.constraints` (time overlap,
topology, max gap), :mod:`.graph` (sparse k-NN similarity), :mod:`.threshold` (label-free
cut), :mod:`.cluster` (constrained merging), :mod:`.outputs` (files), :mod:`.api`.
"""

from __future__ import annotations

from trackreid.associate.api import AssociateConfig, Association, associate
from trackreid.associate.cluster import cluster
from trackreid.associate.constraints import Constraints
from trackreid.associate.outputs import register_writer, write_association
from trackreid.associate.threshold import auto_threshold
from trackreid.associate.tracks import CameraInput, TrackSet, load_cameras

__all__ = [
    "AssociateConfig",
    "Association",
    "CameraInput",
    "Constraints",
    "TrackSet",
    "associate",
    "auto_threshold",
    "cluster",
    "load_cameras",
    "register_writer",
    "write_association",
]
