"""Training checkpoints: safe to load (tensors and plain Python only), complete enough to resume exactly.

A checkpoint is a dict saved with ``torch.save`` and read back with ``weights_only=True``::

    {"model": state_dict, "trackreid": {"format": "trackreid", "arch": ..., "preprocess": ..., ...},
     "optimizer": ..., "scheduler": {...}, "epoch": ..., "iteration": ..., "sampler": {...},
     "rng": {"torch": ByteTensor, "augment": ByteTensor, "cuda": [...]}, ...}

``trackreid.models.weights.load_model`` reads ``model`` and the ``trackreid`` header, so
``model_final.pth`` / ``model_best.pth`` work directly in extract, evaluate and export-onnx.
``last_checkpoint`` (a text file, as in FastReID) names the newest checkpoint for ``--resume``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trackreid.errors import InputError
from trackreid.io.atomic import atomic_path

LAST = "last_checkpoint"


def save(state: dict[str, Any], path: Path, mark_last: bool = True) -> Path:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    if mark_last:
        with atomic_path(path.parent / LAST) as tmp:
            tmp.write_text(path.name + "\n", encoding="utf-8")
    return path


def last_checkpoint(output_dir: Path) -> Path:
    marker = output_dir / LAST
    if not marker.is_file():
        raise InputError(f"{output_dir}: nothing to resume (no {LAST} file); start without --resume")
    name = marker.read_text(encoding="utf-8").strip()
    path = output_dir / name
    if not path.is_file():
        raise InputError(f"{marker} names {name}, which does not exist; remove {marker} or start without --resume")
    return path


def load(path: Path) -> dict[str, Any]:
    from trackreid.models.weights import safe_torch_load

    ck = safe_torch_load(path)
    if not isinstance(ck, dict) or "model" not in ck or "optimizer" not in ck:
        raise InputError(f"{path}: not a trackreid training checkpoint (no model/optimizer state to resume)")
    return ck


def rng_state(augment: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "augment": augment.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], augment: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    augment.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
