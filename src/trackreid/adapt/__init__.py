"""Label-free adaptation of a ReID model to the user's cameras, from their own tracks.

``adapt(features_dirs, reid_model, output_dir, AdaptSettings(...))`` -> :class:`AdaptResult`.
"""

from trackreid.adapt.loop import AdaptResult, AdaptSettings, adapt

__all__ = ["AdaptResult", "AdaptSettings", "adapt"]
