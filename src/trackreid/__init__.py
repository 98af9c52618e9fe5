"""trackreid: person re-identification features for tracked video.

The public API (each CLI subcommand is one of these calls)::

    from trackreid import build_embedder, extract, read_features, evaluate_model, nfc
"""

from __future__ import annotations

import sys as _sys
import types as _types

__version__ = "0.1.0"

# Importing trackreid changes nothing in os.environ: process-wide defaults (OMP_WAIT_POLICY) are
# set by trackreid.runtime.apply_env_defaults(), which the CLI entry point and the worker
# processes we start call before torch loads.

__all__ = [
    "ExtractConfig",
    "OnlineCollector",
    "OnlineConfig",
    "TrackReidError",
    "TrackFeatures",
    "Tracks",
    "build_embedder",
    "centralize",
    "create_model",
    "evaluate_features",
    "evaluate_model",
    "evaluate_ranking",
    "export_onnx",
    "extract",
    "k_reciprocal_rerank",
    "load_model",
    "nfc",
    "prepare_dataset",
    "read_features",
    "read_mot",
    "reduce_file",
    "track_centers",
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
        "evaluate_features": "trackreid.evaluate",
        "evaluate_model": "trackreid.evaluate",
        "k_reciprocal_rerank": "trackreid.rerank",
        "extract": "trackreid.extract",
        "ExtractConfig": "trackreid.extract",
        "OnlineCollector": "trackreid.online",
        "OnlineConfig": "trackreid.online",
        "read_mot": "trackreid.io.mot",
        "Tracks": "trackreid.io.mot",
        "centralize": "trackreid.centralize",
        "nfc": "trackreid.centralize",
        "track_centers": "trackreid.centralize",
        "prepare_dataset": "trackreid.prepare_data",
        "export_onnx": "trackreid.export",
        "reduce_file": "trackreid.reduce",
    }
    if name in lazy:
        import importlib

        value = getattr(importlib.import_module(lazy[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trackreid' has no attribute {name!r}")


class _Package(_types.ModuleType):
    """Keeps ``trackreid.extract`` / ``trackreid.centralize`` the functions of those names.

    Importing a submodule binds it to the package attribute of the same name; for the
    functions the public API exports under a submodule's name, that binding is skipped (the
    submodule stays importable as ``from trackreid.extract import ...``).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _FUNCTIONS_NAMED_LIKE_MODULES and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_FUNCTIONS_NAMED_LIKE_MODULES = frozenset({"extract", "centralize"})
_sys.modules[__name__].__class__ = _Package
