"""trackreid: person re-identification features for tracked video.

The public API (each CLI subcommand is one of these calls)::

    from trackreid import create_model, load_model, build_embedder, read_features
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "TrackReidError",
    "TrackFeatures",
    "build_embedder",
    "create_model",
    "evaluate_ranking",
    "load_model",
    "read_features",
    "write_features",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Lazy re-exports: `import trackreid` and `trackreid --help` stay fast (no torch import).
    lazy = {
        "TrackReidError": "trackreid.errors",
        "TrackFeatures": "trackreid.io.features",
        "read_features": "trackreid.io.features",
        "write_features": "trackreid.io.features",
        "build_embedder": "trackreid.embed.factory",
        "create_model": "trackreid.models.registry",
        "load_model": "trackreid.models.weights",
        "evaluate_ranking": "trackreid.evaluate",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'trackreid' has no attribute {name!r}")
