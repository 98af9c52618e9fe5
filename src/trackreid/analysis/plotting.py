"""Matplotlib figures without pyplot's global state (the Agg canvas), saved atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trackreid.errors import InputError
from trackreid.io.atomic import atomic_path


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas (no display needed, safe in threads)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError('plots need matplotlib: pip install "trackreid[analysis]"') from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: Path, dpi: int = 100) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, pil_kwargs={"optimize": True})
    return path


def category_colors(n: int) -> list[Any]:
    """``n`` distinguishable colours: tab10/tab20 when they suffice, else evenly spaced hues."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    from matplotlib.colors import hsv_to_rgb

    # golden-ratio hue steps: neighbouring groups get far-apart hues
    return [(*hsv_to_rgb(((i * 0.618034) % 1.0, 0.85, 0.95 - 0.3 * (i % 2))), 1.0) for i in range(n)]
