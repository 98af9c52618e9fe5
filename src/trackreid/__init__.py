"""trackreid: person re-identification features for tracked video.

The public API (each CLI subcommand is one of these calls)::

    from trackreid import create_model, load_model, build_embedder, read_features
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# OpenMP worker threads that spin while they wait (libgomp's default) made eager PyTorch 30x
# slower on a 2-core machine whose cores other processes were also using (0.16 s -> 4.9 s per
# batch of 16 for osnet_x0_25): the spinning thread holds the core the working one needs.
# PASSIVE lets them sleep. It only takes effect if set before torch is imported; a value the
# user set wins. See docs/benchmarks.md (Backends).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = [
    "TrackReidError",
    "TrackFeatures",
    "build_embedder",
    "create_model",
    "evaluate_ranking",
    "export_onnx",
    "load_model",
    "read_features",
    "reduce_file",
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
        "export_onnx": "trackreid.export",
        "reduce_file": "trackreid.reduce",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'trackreid' has no attribute {name!r}")
