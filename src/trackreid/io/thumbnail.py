"""Crop thumbnails embedded in self-contained HTML pages (report.html, search results)."""

from __future__ import annotations

import base64
from pathlib import Path


def jpeg_data_uri(path: str | Path, height: int, quality: int = 80) -> str | None:
    """A ``data:image/jpeg;base64,...`` URI of the image at ``path`` scaled to ``height`` pixels (None when the
    file is missing or unreadable)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None
    h, w = img.shape[:2]
    scale = height / h
    img = cv2.resize(img, (max(1, round(w * scale)), height), interpolation=cv2.INTER_AREA if scale < 1 else
                     cv2.INTER_LINEAR)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else None
