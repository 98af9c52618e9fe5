"""Per-epoch training metrics: ``metrics.csv``, ``metrics.json`` and ``curves.png``."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackreid.io.atomic import atomic_path

log = logging.getLogger(__name__)

COLUMNS = ("epoch", "iteration", "lr", "loss", "loss_ce", "loss_triplet", "train_acc", "epoch_seconds",
           "mAP", "rank1", "rank5", "mINP")


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` as CSV with ``columns`` (missing or None values empty), written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def write_metrics(output_dir: Path, history: list[dict[str, Any]], best: dict[str, Any] | None) -> None:
    write_csv(output_dir / "metrics.csv", history, COLUMNS)
    with atomic_path(output_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps({"history": history, "best": best}, indent=2), encoding="utf-8")


def plot_curves(output_dir: Path, history: list[dict[str, Any]]) -> Path | None:
    """Loss and accuracy curves; skipped (with a log line) without matplotlib."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no curves.png (pip install 'trackreid[analysis]')")
        return None
    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "total"), ("loss_ce", "cross-entropy"), ("loss_triplet", "triplet")):
        ys = [r.get(key) for r in history]
        if any(y is not None for y in ys):
            ax1.plot(epochs, [float("nan") if y is None else y for y in ys], marker=".", label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    evald = [r for r in history if r.get("mAP") is not None]
    if evald:
        ax2.plot([r["epoch"] for r in evald], [r["mAP"] for r in evald], marker="o", label="mAP")
        ax2.plot([r["epoch"] for r in evald], [r["rank1"] for r in evald], marker="s", label="rank-1")
    ax2.plot(epochs, [100 * r["train_acc"] for r in history], linestyle="--", label="train accuracy")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("%")
    ax2.legend()
    ax2.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    path = output_dir / "curves.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
