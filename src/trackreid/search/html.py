"""``search --html``: one self-contained page (images inlined as data URIs, no script, no network).

The query first (its images, or the track or identity it names), then one section per identity:
a timeline with a row per camera and a bar per track over the site clock, and the tracks'
crop thumbnails.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from trackreid.io.atomic import atomic_path
from trackreid.io.thumbnail import jpeg_data_uri
from trackreid.search.index import SearchResult

THUMB_HEIGHT = 96
_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
.thumbs img{height:96px;margin:2px;border:1px solid #ccc}.tl{position:relative;background:#f4f4f4;margin:2px 0;
height:22px}.tl .bar{position:absolute;top:3px;height:16px;background:#3b7dd8}.tl .cam{position:absolute;left:4px;
top:3px;font-size:12px;color:#000;z-index:1}table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;
border-bottom:1px solid #ddd;text-align:left}"""


def _img(path: str | Path, title: str) -> str:
    uri = jpeg_data_uri(path, THUMB_HEIGHT)
    t = html.escape(title, quote=True)
    return f'<img src="{uri}" title="{t}" alt="{t}">' if uri else f"<span>({t}: unreadable)</span>"


def _timeline(group: dict[str, Any], t0: float, t1: float) -> str:
    span = max(t1 - t0, 1e-9)
    rows = []
    for cam in group["cameras"]:
        bars = "".join(
            f'<div class="bar" title="{html.escape(cam)}:{t["track_id"]} {t["start_s"]:.2f}-{t["end_s"]:.2f} s" '
            f'style="left:{100 * (t["start_s"] - t0) / span:.2f}%;'
            f'width:{max(0.5, 100 * (t["end_s"] - t["start_s"]) / span):.2f}%"></div>'
            for t in group["tracks"] if t["camera"] == cam)
        rows.append(f'<div class="tl"><span class="cam">{html.escape(cam)}</span>{bars}</div>')
    return "".join(rows)


def render(result: SearchResult) -> str:
    q = result.query
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>trackreid search</title>",
             f"<style>{_CSS}</style></head><body><h1>trackreid search</h1><h2>Query</h2>"]
    if q["kind"] == "images":
        parts.append('<div class="thumbs" id="query">' + "".join(_img(p, str(p)) for p in q["images"]) + "</div>")
    elif q["kind"] == "track":
        t = q["track"]
        parts.append(f'<div class="thumbs" id="query"><p>track {html.escape(t["camera"])}:{t["track_id"]}, '
                     f'{t["start_s"]:.2f}-{t["end_s"]:.2f} s</p>'
                     + "".join(_img(p, f"{t['camera']}:{t['track_id']}") for p in t["crops"][:4]) + "</div>")
    else:
        parts.append(f'<div id="query"><p>identity {q["identity"]} ({q["tracks"]} tracks)</p></div>')
    f = result.filters
    if f.get("cameras") or f.get("after") is not None or f.get("before") is not None:
        parts.append(f"<p>filters: cameras {html.escape(', '.join(f.get('cameras') or []) or 'all')}, "
                     f"after {f.get('after')}, before {f.get('before')}</p>")
    groups = result.groups()
    if not groups:
        parts.append("<p>No matching tracks.</p>")
    times = [t["start_s"] for g in groups for t in g["tracks"]] + [t["end_s"] for g in groups for t in g["tracks"]]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    for n, g in enumerate(groups, 1):
        name = f"identity {g['identity']}" if g["identity"] is not None else "track without identity"
        parts.append(f'<section class="identity"><h2>{n}. {html.escape(name)}: best similarity '
                     f'{g["best_similarity"]:.3f}, cameras {html.escape(", ".join(g["cameras"]))}</h2>')
        parts.append(f'<p>timeline {t0:.2f}-{t1:.2f} s</p>' + _timeline(g, t0, t1))
        parts.append("<table><tr><th>camera</th><th>track</th><th>seconds</th><th>frames</th><th>similarity</th>"
                     "<th>crops</th></tr>")
        for t in g["tracks"]:
            thumbs = "".join(_img(p, f"{t['camera']}:{t['track_id']}") for p in t["crops"][:4])
            parts.append(f"<tr class='track'><td>{html.escape(t['camera'])}</td><td>{t['track_id']}</td>"
                         f"<td>{t['start_s']:.2f}-{t['end_s']:.2f}</td><td>{t['first_frame']}-{t['last_frame']}</td>"
                         f"<td>{t['similarity']:.3f}</td><td class='thumbs'>{thumbs}</td></tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    return "".join(parts)


def write_html(result: SearchResult, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(render(result), encoding="utf-8")
    return path
