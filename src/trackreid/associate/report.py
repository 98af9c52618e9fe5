"""``report.html``: one self-contained page a person uses to check an association.

* The numbers: cameras, tracks, identities, the threshold and why it was chosen, the merges the
  constraints refused.
* The similarity histogram (certain negatives, likely positives, cross-camera and all graph edges) with the
  threshold marked, drawn as inline SVG.
* One row per global identity seen by several cameras: per camera its tracks (id, time span)
  and crop thumbnails (when extract saved crops), and the similarity of every cross-camera
  pair of its tracks (in red when the pair alone is below the threshold).
* The closest cross-camera pairs left apart (just under the threshold): where a missed link
  would be.

* Review mode: the likely errors first (:mod:`.review`), each a "same person" / "not the same
  person" question; per identity "split off" a track and "confirmed". Decisions are kept in the
  browser (localStorage) and download as ``corrections.json`` for ``associate --corrections``
  (:mod:`.corrections`). The script is ``review.js`` beside this module, inlined.
* With ``--corrections``: what each correction changed, or why it did not apply.

Thumbnails are embedded as JPEG data URIs, so the page is one file that can be mailed or
archived; the CSS and the script are inline and nothing is fetched. Large sites are cut to ``max_rows``
identities (the most cameras first), said on the page.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trackreid.associate.review import page_data, review_queue
from trackreid.associate.transit import describe_windows
from trackreid.io.thumbnail import jpeg_data_uri

if TYPE_CHECKING:
    from trackreid.associate.result import Association

log = logging.getLogger(__name__)

REPORT = "report.html"
THUMB_HEIGHT = 96
THUMBS_PER_TRACK = 3
THUMBS_PER_CAMERA = 6
PAIRS_PER_IDENTITY = 12
NEAR_MISSES = 20
QUESTIONS = 100  # review questions on the page

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#6e6e73}.facts{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.fact{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px 12px}
.fact b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #ddd;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#f0f0f2}
.gid{font-weight:600;font-size:16px;white-space:nowrap}
.cam{min-width:140px}.camname{font-weight:600}.track{font-size:12px;color:#444;margin:2px 0}
.thumbs{display:flex;flex-wrap:wrap;gap:3px;margin-top:4px}
.thumbs img{height:THUMBpx;border-radius:3px;border:1px solid #ccc}
.nocrop{font-size:12px;color:#999;font-style:italic}
.pairs{font-size:12px;font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
.below{color:#c62828;font-weight:600}.why{max-width:900px}
button{font:12px system-ui,sans-serif;margin:2px;cursor:pointer}
.question{margin:6px 0;padding:6px;background:#fff;border:1px solid #ddd;border-radius:6px}
.question.answered{background:#eef6ee}.answer{font-weight:600;color:#2e7d32}
.question .thumbs{display:inline-flex;vertical-align:middle}.decision{font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#333}
""".replace("THUMB", str(THUMB_HEIGHT))

_COLOURS = {"edges": "#9e9e9e", "null": "#1f77b4", "negatives": "#d62728", "positives": "#2ca02c"}
_SERIES = ("edges", "null", "negatives", "positives")
_LEGEND = {"edges": "all graph edges",
           "null": "cross-camera graph edges (mostly two people)",
           "negatives": "certain negatives (one camera, same time)",
           "positives": "likely positives (cross-camera mutual nearest neighbours)"}


def _legend(info: dict[str, Any], key: str) -> str:
    if key == "null" and info.get("null_from"):
        return f"null: {info['null_from']}"
    return _LEGEND[key]


def write_report(result: Association, path: Path, max_rows: int = 300) -> Path:
    """Write the page to ``path`` (the caller makes it atomic: :func:`write_association`)."""
    Path(path).write_text(render_report(result, max_rows), encoding="utf-8")
    return Path(path)


def render_report(result: Association, max_rows: int = 300) -> str:
    """The whole page as a string."""
    tracks = result.tracks
    labels = result.labels
    thr = float(result.threshold)
    s = result.summary
    crops = {c.name: c.crops for c in result.cameras}
    ncam = len(tracks.cameras)
    members: dict[int, list[int]] = {}
    for row, lab in enumerate(labels.tolist()):
        members.setdefault(int(lab), []).append(row)
    multi = [(lab, rows) for lab, rows in members.items() if len({int(tracks.camera[r]) for r in rows}) > 1]
    multi.sort(key=lambda x: (-len({int(tracks.camera[r]) for r in x[1]}), -len(x[1]), x[0]))
    shown = multi[:max_rows]
    info = result.threshold_info
    esc = html.escape

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>trackreid associate: {len(multi)} identities across cameras</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Cross-camera association</h1>",
        f"<div class='muted'>{len(tracks)} tracks of {ncam} cameras "
        f"({esc(', '.join(tracks.cameras))}); model sha256 {esc(str(s.get('model_sha256') or 'unknown'))[:16]}</div>",
        "<div class='facts'>",
        _fact("identities", s.get("identities", len(members))),
        _fact("seen by several cameras", len(multi)),
        _fact("cross-camera links", s.get("cross_camera_links", "")),
        _fact("threshold", f"{thr:.3f}"),
        _fact("chosen", f"{info.get('chosen', '')} ({info.get('method', '')})"),
        "</div>",
        f"<p class='why'><b>Why this threshold:</b> {esc(str(info.get('why', '')))}</p>",
    ]
    rejected = {k: v for k, v in (s.get("constraints", {}).get("rejected_merges") or {}).items() if v}
    if rejected:
        parts.append("<p>Merges refused by the constraints: "
                     + esc(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rejected.items())) + "</p>")
    learned = (s.get("constraints", {}).get("topology_learned") or {}).get("pairs")
    if learned:
        parts.append(f"<p id='transit'>Transit windows learned (--topology auto): {esc(describe_windows(learned))}</p>")
    parts.append(_corrections_section(s.get("corrections")))
    parts.append(_review_section(result, crops))
    parts.append("<h2>Similarity distributions</h2>")
    parts.append(_histogram_svg(info, thr))

    parts.append(f"<h2>Identities seen by several cameras ({len(multi)})</h2>")
    if len(multi) > len(shown):
        parts.append(f"<p class='muted'>The {len(shown)} spanning the most cameras are shown; "
                     f"{len(multi) - len(shown)} more are in global_ids.json.</p>")
    if not multi:
        parts.append("<p>No identity spans several cameras at this threshold.</p>")
    else:
        parts.append("<table id='identities'><thead><tr><th>global id</th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in tracks.cameras)
                     + "<th>cross-camera similarities</th></tr></thead><tbody>")
        for lab, rows in shown:
            parts.append(_identity_row(result, lab, rows, crops, thr))
        parts.append("</tbody></table>")

    near = _near_misses(result, thr)
    parts.append(f"<h2>Closest cross-camera pairs left apart ({len(near)})</h2>")
    if near:
        parts.append("<p class='muted'>The most similar pairs of tracks of different cameras that ended in "
                     "different identities: where a missed link would be.</p>")
        parts.append("<table id='near-misses'><thead><tr><th>similarity</th><th>track</th><th>track</th>"
                     "</tr></thead><tbody>")
        for a, b, sim in near:
            parts.append(f"<tr class='near'><td class='pairs'>{sim:.3f}</td>"
                         + "".join(_track_cell(result, r, crops, 1) for r in (a, b)) + "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>None.</p>")
    parts.append("<p class='muted'>Written by trackreid associate. Similarities are in the association graph's "
                 "scale (after the chosen options), the scale of the threshold.</p>")
    parts.append(_review_script(result))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _review_section(result: Association, crops: dict[str, dict[int, list[Path]]]) -> str:
    """The questions, likely errors first, with their buttons; the decisions and the download button."""
    esc = html.escape
    t = result.tracks
    questions = review_queue(t, result.labels, result.merges, result.graph, result.threshold, QUESTIONS)
    items = []
    for q in questions:
        a, b = q["rows"]
        what = "joined in one identity" if q["kind"] == "link" else "left apart"
        side = "over" if q["margin"] >= 0 else "under"
        tracks_html = " and ".join(
            f"<span class='qtrack'>{esc(t.label(r))} (id {int(result.labels[r]) + 1}) <span class='thumbs'>"
            + "".join(_thumbs(crops.get(t.cameras[int(t.camera[r])], {}).get(int(t.track_id[r]), []), 1,
                              t.label(r))) + "</span></span>"
            for r in (a, b))
        items.append(f"<li class='question' data-kind='{q['kind']}' data-a='{esc(q['a'])}' data-b='{esc(q['b'])}'>"
                     f"{tracks_html}: {what}, similarity {q['similarity']:.3f} ({abs(q['margin']):.3f} {side} the "
                     "threshold) <button data-act='same'>same person</button>"
                     "<button data-act='different'>not the same person</button> <span class='answer'></span></li>")
    return ("<h2 id='review'>Review: likely errors first</h2><p class='muted'>Each question is two tracks; "
            "first those where the similarity argues most against what the association did (pairs kept apart "
            "although similar, weak links, close misses), larger identities first. Answers, and the "
            "&quot;split off&quot; and &quot;confirmed&quot; buttons of the identities below, are kept in this "
            "browser and download as corrections.json; then <code>trackreid associate ... --corrections "
            "corrections.json</code> makes them exact constraints.</p>"
            "<p><button id='download' data-act='download'>Download corrections.json</button> "
            "<span id='review-count'>0</span> decisions <button id='clear' data-act='clear'>clear this page's decisions"
            "</button></p>"
            "<ul id='decisions'></ul>"
            + (f"<ol id='questions'>{''.join(items)}</ol>" if items else "<p>No questions.</p>"))


def _review_script(result: Association) -> str:
    """The page data (JSON, ``</`` escaped) and the review script, inline."""
    import hashlib
    import json
    from importlib.resources import files

    data = page_data(result)
    data["key"] = hashlib.sha256(json.dumps(data["identities"], sort_keys=True).encode()).hexdigest()[:16]
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    script = files("trackreid.associate").joinpath("review.js").read_text(encoding="utf-8")
    return (f"<script id='review-data' type='application/json'>{blob}</script>"
            f"<script>{script}</script>")


def _corrections_section(fixes: dict[str, Any] | None) -> str:
    """What each of a reviewer's corrections changed (``--corrections``), or why it did not apply."""
    if not fixes:
        return ""
    esc = html.escape
    rows = "".join(
        f"<tr class='correction {'applied' if d['applied'] else 'not-applied'}'><td>{esc(d['kind'])}</td>"
        f"<td>{esc(' '.join(d['tracks']))}</td>"
        f"<td>{esc(d['changed'] if d['applied'] else 'not applied: ' + d['why_not'])}</td></tr>"
        for d in fixes["decisions"])
    return (f"<h2>Corrections ({fixes['applied']} applied, {fixes['not_applied']} not applied)</h2>"
            f"<p class='muted'>From {esc(str(fixes['file']))}; what each changed against the association without "
            f"them.</p><table id='corrections'><thead><tr><th>decision</th><th>tracks</th><th>changed</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _fact(name: str, value: Any) -> str:
    return f"<div class='fact'><b>{html.escape(str(value))}</b>{html.escape(name)}</div>"


def _span(result: Association, row: int) -> str:
    t = result.tracks
    return f"{t.start[row]:.1f}-{t.end[row]:.1f} s"


def _identity_row(result: Association, lab: int, rows: list[int], crops: dict[str, dict[int, list[Path]]],
                  thr: float) -> str:
    t = result.tracks
    gid = result.global_ids[t.cameras[int(t.camera[rows[0]])]][int(t.track_id[rows[0]])]
    cams = sorted({int(t.camera[r]) for r in rows})
    cells = []
    for c in range(len(t.cameras)):
        mine = sorted((r for r in rows if int(t.camera[r]) == c), key=lambda r: t.start[r])
        if not mine:
            cells.append("<td class='cam empty'></td>")
            continue
        split = len(rows) > 1
        spans = "".join(
            f"<div class='track'>track {int(t.track_id[r])}, {_span(result, r)}"
            + (f" <button data-act='split' data-track='{html.escape(t.label(r))}' data-gid='{gid}'>split off"
               "</button>" if split else "") + "</div>" for r in mine)
        thumbs: list[str] = []
        for r in mine:
            if len(thumbs) >= THUMBS_PER_CAMERA:
                break
            paths = crops.get(t.cameras[c], {}).get(int(t.track_id[r]), [])
            thumbs += _thumbs(paths, min(THUMBS_PER_TRACK, THUMBS_PER_CAMERA - len(thumbs)),
                              f"{t.cameras[c]} track {int(t.track_id[r])}")
        pics = (f"<div class='thumbs'>{''.join(thumbs)}</div>" if thumbs
                else "<div class='nocrop'>no crops (extract --save-crops)</div>")
        cells.append(f"<td class='cam' data-camera='{html.escape(t.cameras[c])}'>"
                     f"<div class='camname'>{html.escape(t.cameras[c])}</div>{spans}{pics}</td>")
    pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:] if t.camera[a] != t.camera[b]]
    pairs_html = ""
    if pairs and result.graph is not None:
        sims = result.graph.similarity(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))
        order = np.argsort(-sims)[:PAIRS_PER_IDENTITY]
        lines = []
        for k in order.tolist():
            a, b = pairs[k]
            cls = " class='below'" if sims[k] < thr else ""
            lines.append(f"<div{cls}>{html.escape(t.label(a))} - {html.escape(t.label(b))}: {sims[k]:.3f}</div>")
        if len(pairs) > len(order):
            lines.append(f"<div class='muted'>... {len(pairs) - len(order)} more pairs</div>")
        pairs_html = "".join(lines)
    return (f"<tr class='identity' data-gid='{gid}' data-cameras='{len(cams)}'><td class='gid'>{gid}"
            f"<div class='muted'>{len(cams)} cameras, {len(rows)} tracks</div>"
            f"<button data-act='confirm' data-gid='{gid}'>confirmed</button></td>{''.join(cells)}"
            f"<td class='pairs'>{pairs_html}</td></tr>")


def _track_cell(result: Association, row: int, crops: dict[str, dict[int, list[Path]]], n: int) -> str:
    t = result.tracks
    cam, tid = t.cameras[int(t.camera[row])], int(t.track_id[row])
    gid = result.global_ids[cam][tid]
    thumbs = _thumbs(crops.get(cam, {}).get(tid, []), n, f"{cam} track {tid}")
    return (f"<td><div class='camname'>{html.escape(cam)} track {tid}</div><div class='track'>global id {gid}, "
            f"{_span(result, row)}</div><div class='thumbs'>{''.join(thumbs)}</div></td>")


def _near_misses(result: Association, thr: float) -> list[tuple[int, int, float]]:
    g = result.graph
    if g is None or not len(g.i):
        return []
    t = result.tracks
    apart = (t.camera[g.i] != t.camera[g.j]) & (result.labels[g.i] != result.labels[g.j])
    idx = np.flatnonzero(apart)
    idx = idx[np.argsort(-g.sim[idx])][:NEAR_MISSES]
    return [(int(g.i[e]), int(g.j[e]), float(g.sim[e])) for e in idx]


def _thumbs(paths: Sequence[Path], n: int, alt: str) -> list[str]:
    """Up to ``n`` evenly spaced crops of a track as ``<img>`` tags with embedded JPEG thumbnails."""
    if n <= 0 or not paths:
        return []
    take = np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int)
    out = []
    for k in sorted(set(take.tolist())):
        uri = jpeg_data_uri(paths[k], THUMB_HEIGHT)
        if uri is None:
            log.debug("report: crop %s is missing or unreadable; left out", paths[k])
            continue
        out.append(f"<img class='thumb' alt='{html.escape(alt)}' src='{uri}'>")
    return out


def _histogram_svg(info: dict[str, Any], thr: float) -> str:
    """The histograms of ``info['histogram']`` (fractions per bin) as an inline SVG, threshold dashed."""
    h = info.get("histogram")
    if not h:
        return "<p class='muted'>No histogram (no similarity pairs).</p>"
    bins = np.asarray(h["bins"], float)
    W, H, L, B, T, R = 760, 260, 48, 36, 12, 12
    lo, hi = float(bins[0]), float(bins[-1])
    span = hi - lo if hi > lo else 1.0

    def x(v: float) -> float:
        return L + (v - lo) / span * (W - L - R)

    series = {k: np.asarray(h.get(k, []), float) for k in _SERIES}
    fracs = {k: v / v.sum() for k, v in series.items() if len(v) and v.sum() > 0}
    top = max((float(v.max()) for v in fracs.values()), default=1.0) or 1.0

    def y(v: float) -> float:
        return H - B - v / top * (H - B - T)

    out = [f"<svg id='histogram' xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H + 76}' "
           f"viewBox='0 0 {W} {H + 76}' role='img' aria-label='similarity histogram'>",
           f"<rect x='0' y='0' width='{W}' height='{H + 76}' fill='#fff'/>",
           f"<line x1='{L}' y1='{H - B}' x2='{W - R}' y2='{H - B}' stroke='#333'/>",
           f"<line x1='{L}' y1='{T}' x2='{L}' y2='{H - B}' stroke='#333'/>"]
    for k, frac in fracs.items():
        for i, v in enumerate(frac.tolist()):
            if v <= 0:
                continue
            x0, x1 = x(bins[i]), x(bins[i + 1])
            out.append(f"<rect class='bar-{k}' x='{x0:.1f}' y='{y(v):.1f}' width='{max(x1 - x0 - 0.5, 0.5):.1f}' "
                       f"height='{H - B - y(v):.1f}' fill='{_COLOURS[k]}' fill-opacity='0.5'/>")
    for v in np.linspace(lo, hi, 6):
        out.append(f"<text x='{x(v):.1f}' y='{H - B + 14}' text-anchor='middle'>{v:.2f}</text>")
    out.append(f"<text x='{(L + W - R) / 2:.0f}' y='{H - 6}' text-anchor='middle'>similarity</text>")
    out.append(f"<text x='12' y='{(H - B + T) / 2:.0f}' transform='rotate(-90 12 {(H - B + T) / 2:.0f})' "
               "text-anchor='middle'>fraction of pairs</text>")
    out.append(f"<line id='threshold' x1='{x(thr):.1f}' y1='{T}' x2='{x(thr):.1f}' y2='{H - B}' stroke='#000' "
               "stroke-width='2' stroke-dasharray='6 4'/>")
    out.append(f"<text x='{x(thr) + 4:.1f}' y='{T + 10}'>threshold {thr:.3f}</text>")
    ly = H + 8
    for k in _SERIES:
        if k in fracs:
            label = html.escape(_legend(info, k))
            out.append(f"<rect x='{L}' y='{ly}' width='12' height='12' fill='{_COLOURS[k]}' fill-opacity='0.5'/>"
                       f"<text x='{L + 18}' y='{ly + 10}'>{label} ({int(series[k].sum())})</text>")
            ly += 16
    out.append("</svg>")
    return "".join(out)
