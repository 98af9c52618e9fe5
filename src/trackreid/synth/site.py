"""Multi-camera sites with exact ground truth, composed from person images.

People walk through a chain of cameras (cam1 - cam2 - cam3 ...): a person seen by several
cameras crosses each one in a few seconds and reaches the next adjacent camera after a transit
time. Others are seen by one camera only. Several people cross a camera at the same time, so
same-camera tracks overlap in time (and occlude each other by depth). Each camera has its own
background and colour cast (a camera bias), and sees each person from its own view.

Written per camera: the video, ``gt.txt`` (MOT ground truth, 9 columns, ids are global person
ids, exact boxes with visibility) and ``tracks.txt`` (what a tracker would give: per-camera
track ids, jittered boxes, boxes that are mostly hidden or outside the frame missing, a few
tracks broken in two). ``truth.json`` maps every camera's track ids to person ids (labels:
for scoring only) and ``site.yml`` lists the cameras in the form ``trackreid run`` reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from trackreid.errors import InputError, OutputError
from trackreid.io.atomic import atomic_path
from trackreid.sample import draw_background
from trackreid.synth.people import PeopleSource

CODECS = {"mp4v": ".mp4", "h264": ".mp4", "mjpg": ".avi"}


@dataclass(frozen=True)
class SiteSpec:
    cameras: int = 2
    identities: int = 24
    shared_fraction: float = 0.6  # identities seen by two or more (adjacent) cameras
    seconds: float = 40.0  # length of every camera's video
    fps: float = 10.0
    width: int = 640
    height: int = 360
    codec: str = "mp4v"  # mp4v (OpenCV), h264 (ffmpeg libx264), mjpg (OpenCV, .avi)
    dwell: tuple[float, float] = (3.0, 6.0)  # seconds a person takes to cross a camera
    transit: tuple[float, float] = (2.0, 6.0)  # seconds between adjacent cameras
    jitter: float = 0.04  # tracker box noise, as a fraction of the box size
    fragment_fraction: float = 0.1  # visits the tracker breaks into two tracks
    time_offsets: tuple[float, ...] | None = None  # when each camera starts recording (site clock)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cameras < 1 or self.identities < 1:
            raise InputError(f"SiteSpec: cameras ({self.cameras}) and identities ({self.identities}) must be >= 1")
        if self.codec not in CODECS:
            raise InputError(f"SiteSpec: codec {self.codec!r}; expected one of {', '.join(CODECS)}")
        if self.time_offsets is not None and len(self.time_offsets) != self.cameras:
            raise InputError(f"SiteSpec: {len(self.time_offsets)} time offsets for {self.cameras} cameras")
        need = self.dwell[1] * 2 + self.transit[1]
        if self.cameras > 1 and self.seconds < need:
            raise InputError(f"SiteSpec: {self.seconds} s is too short for a person to cross two cameras "
                             f"(needs at least {need} s)")


@dataclass(frozen=True)
class SiteCamera:
    name: str
    video: Path
    tracks: Path
    gt: Path
    fps: float
    time_offset: float


@dataclass
class Site:
    out_dir: Path
    cameras: list[SiteCamera]
    truth: dict[str, dict[int, int]]  # camera -> track id -> global person id (scoring only)
    transit: dict[tuple[str, str], tuple[float, float]]  # adjacent camera pairs -> transit seconds
    site_yml: Path
    truth_json: Path
    spec: SiteSpec
    people: dict[int, dict[str, object]] = field(default_factory=dict)  # person id -> source id, cameras


@dataclass
class _Visit:
    person: int  # global person id (1-based)
    source: int  # identity in the people source
    camera: int
    start: float  # site clock, seconds
    end: float
    left_to_right: bool
    bottom: float  # fraction of the frame height where the feet are
    fragment_at: float | None  # fraction of the visit where the tracker breaks the track


def _itineraries(spec: SiteSpec, people: PeopleSource, rng: np.random.Generator) -> list[_Visit]:
    if spec.identities > len(people.ids):
        raise InputError(f"the people source has {len(people.ids)} identities; the site asks for {spec.identities}")
    chosen = rng.choice(len(people.ids), size=spec.identities, replace=False)
    offsets = spec.time_offsets or (0.0,) * spec.cameras
    t_lo, t_hi = min(offsets), max(offsets) + spec.seconds
    n_shared = round(spec.identities * spec.shared_fraction) if spec.cameras > 1 else 0
    visits = []
    for i, idx in enumerate(chosen):
        person, source = i + 1, people.ids[int(idx)]
        if i < n_shared:
            length = int(rng.integers(2, spec.cameras + 1))
            first = int(rng.integers(0, spec.cameras - length + 1))
            path = list(range(first, first + length))
            if rng.random() < 0.5:
                path.reverse()
        else:
            path = [int(rng.integers(0, spec.cameras))]
        dwell = rng.uniform(*spec.dwell, size=len(path))
        transit = rng.uniform(*spec.transit, size=len(path) - 1)
        total = float(dwell.sum() + transit.sum())
        t = float(rng.uniform(t_lo, max(t_lo, t_hi - total)))
        for j, cam in enumerate(path):
            frag = float(rng.uniform(0.35, 0.65)) if rng.random() < spec.fragment_fraction else None
            visits.append(_Visit(person, source, cam, t, t + float(dwell[j]), bool(rng.random() < 0.5),
                                 float(rng.uniform(0.62, 0.97)), frag))
            t += float(dwell[j]) + (float(transit[j]) if j < len(transit) else 0.0)
    return visits


def _camera_look(cam: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(colour gain per channel, brightness offset) of one camera: camera 0 is neutral."""
    if cam == 0:
        return np.ones(3, np.float32), np.zeros(3, np.float32)
    return rng.uniform(0.82, 1.12, 3).astype(np.float32), rng.uniform(-12, 12, 3).astype(np.float32)


_Row = tuple[_Visit, tuple[float, ...], float]  # a visit's exact 1-based MOT box and its visibility


def _frames(spec: SiteSpec, cam: int, visits: list[_Visit], people: PeopleSource,
            rng: np.random.Generator) -> Iterator[tuple[int, np.ndarray, list[_Row]]]:
    """Yield (frame number, BGR frame, [(visit, exact 1-based MOT box, visibility)]) for one camera."""
    W, H = spec.width, spec.height
    wall = tuple(int(c) for c in rng.integers(120, 220, 3))
    floor = tuple(int(c) for c in rng.integers(70, 150, 3))
    bg = draw_background(W, H, rng, wall, floor)  # type: ignore[arg-type]
    gain, offset = _camera_look(cam, rng)
    t0 = (spec.time_offsets or (0.0,) * spec.cameras)[cam]
    n_frames = int(round(spec.seconds * spec.fps))
    switch = max(1, int(round(spec.fps / 2)))  # a new image of the person twice a second
    label = np.empty((H, W), np.int32)
    for k in range(1, n_frames + 1):
        t = t0 + (k - 1) / spec.fps
        img = bg.copy()
        label.fill(-1)
        active = []
        for v in visits:
            if v.start <= t <= v.end:
                imgs = people.images(v.source, cam)
                src = imgs[((k // switch) + v.person) % len(imgs)]
                h = H * (0.28 + 0.5 * (v.bottom - 0.62) / 0.35)
                w = h * src.shape[1] / src.shape[0]
                u = (t - v.start) / max(v.end - v.start, 1e-9)
                x = -0.5 * w + u * W if v.left_to_right else W - 0.5 * w - u * W
                active.append((v.bottom, v, src, (x, v.bottom * H - h, w, h)))
        active.sort(key=lambda a: a[0])  # far first; nearer people are pasted over them
        for j, (_, _v, src, (x, y, w, h)) in enumerate(active):
            x0, y0 = int(round(x)), int(round(y))
            x1, y1 = x0 + max(1, int(round(w))), y0 + max(1, int(round(h)))
            patch = cv2.resize(src, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            if cx1 > cx0 and cy1 > cy0:
                img[cy0:cy1, cx0:cx1] = patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
                label[cy0:cy1, cx0:cx1] = j
        img = np.clip(img.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        rows: list[_Row] = []
        for j, (_, v, _src, (x, y, w, h)) in enumerate(active):
            x0, y0 = int(round(x)), int(round(y))
            x1, y1 = x0 + max(1, int(round(w))), y0 + max(1, int(round(h)))
            area = (x1 - x0) * (y1 - y0)
            seen = int((label[max(y0, 0):max(min(y1, H), 0), max(x0, 0):max(min(x1, W), 0)] == j).sum())
            if seen > 0:
                rows.append((v, (float(x0 + 1), float(y0 + 1), float(x1 - x0), float(y1 - y0)), seen / area))
        yield k, img, rows


class _VideoWriter:
    def __init__(self, path: Path, spec: SiteSpec) -> None:
        self.path, self.spec = path, spec
        size = (spec.width, spec.height)
        if spec.codec == "h264":
            ffmpeg = shutil.which("ffmpeg")
            if ffmpeg is None:
                raise OutputError(f"{path}: H.264 needs ffmpeg on PATH (apt-get install ffmpeg), or use codec mp4v")
            cmd = [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                   "-s", f"{size[0]}x{size[1]}", "-r", str(spec.fps), "-i", "-", "-c:v", "libx264",
                   "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-f", "mp4", str(path)]
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(cmd, stdin=subprocess.PIPE)  # noqa: S603
            self.cv: cv2.VideoWriter | None = None
        else:
            self.proc = None
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if spec.codec == "mp4v" else "MJPG"))  # type: ignore[attr-defined]
            self.cv = cv2.VideoWriter(str(path), fourcc, spec.fps, size)
            if not self.cv.isOpened():
                raise OutputError(f"{path}: OpenCV cannot encode {spec.codec} here")

    def write(self, img: np.ndarray) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(img.tobytes())
        else:
            assert self.cv is not None
            self.cv.write(img)

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            if self.proc.wait() != 0:
                raise OutputError(f"{self.path}: ffmpeg failed to encode the video")
        elif self.cv is not None:
            self.cv.release()


def _tracker_rows(spec: SiteSpec, cam_rows: list[tuple[int, _Visit, tuple[float, ...], float]],
                  rng: np.random.Generator) -> tuple[list[str], dict[int, int]]:
    """Tracker-like MOT rows (per-camera ids, jitter, misses, broken tracks) and track id -> person."""
    ids: dict[tuple[int, int, int], int] = {}  # (person, visit start ms, part) -> track id
    truth: dict[int, int] = {}
    out = []
    W = spec.width
    for k, v, (x, y, w, h), vis in cam_rows:
        inside = (min(x - 1 + w, W) - max(x - 1, 0)) / w
        if vis < 0.3 or inside < 0.5:
            continue  # a detector misses mostly hidden or mostly outside people
        u = ((k - 1) / spec.fps + (spec.time_offsets or (0.0,) * spec.cameras)[v.camera] - v.start) / max(
            v.end - v.start, 1e-9)
        part = 0
        if v.fragment_at is not None:
            if abs(u - v.fragment_at) < 0.08:
                continue  # the gap where the tracker lost the person
            part = int(u > v.fragment_at)
        key = (v.person, int(v.start * 1000), part)
        if key not in ids:
            ids[key] = len(ids) + 1
            truth[ids[key]] = v.person
        j = spec.jitter
        jw, jh = w * (1 + rng.normal(0, j)), h * (1 + rng.normal(0, j))
        jx, jy = x + rng.normal(0, j) * w + (w - jw) / 2, y + rng.normal(0, j) * h + (h - jh) / 2
        conf = float(rng.uniform(0.5, 1.0))
        out.append(f"{k},{ids[key]},{jx:.2f},{jy:.2f},{jw:.2f},{jh:.2f},{conf:.3f},-1,-1,-1")
    return out, truth


def make_site(out_dir: str | Path, spec: SiteSpec, people: PeopleSource) -> Site:
    """Compose and write a site; return where everything is and the ground truth."""
    out = Path(out_dir)
    rng = np.random.default_rng(spec.seed)
    visits = _itineraries(spec, people, rng)
    names = [f"cam{c + 1}" for c in range(spec.cameras)]
    offsets = spec.time_offsets or (0.0,) * spec.cameras
    cameras: list[SiteCamera] = []
    truth: dict[str, dict[int, int]] = {}
    for c, name in enumerate(names):
        cam_dir = out / name
        cam_dir.mkdir(parents=True, exist_ok=True)
        video = cam_dir / f"video{CODECS[spec.codec]}"
        cam_visits = [v for v in visits if v.camera == c]
        cam_rng = np.random.default_rng([spec.seed, c])
        gt_rows: list[str] = []
        rows: list[tuple[int, _Visit, tuple[float, ...], float]] = []
        with atomic_path(video) as tmp:
            tmp_video = tmp.with_suffix(CODECS[spec.codec])
            writer = _VideoWriter(tmp_video, spec)
            try:
                for k, img, frame_rows in _frames(spec, c, cam_visits, people, cam_rng):
                    writer.write(img)
                    for v, (x, y, w, h), vis in frame_rows:
                        gt_rows.append(f"{k},{v.person},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,{vis:.3f}")
                        rows.append((k, v, (x, y, w, h), vis))
            finally:
                writer.close()
            tmp_video.replace(tmp)
        trk_rows, truth[name] = _tracker_rows(spec, rows, cam_rng)
        gt, tracks = cam_dir / "gt.txt", cam_dir / "tracks.txt"
        for path, lines in ((gt, gt_rows), (tracks, trk_rows)):
            with atomic_path(path) as tmp:
                tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cameras.append(SiteCamera(name, video, tracks, gt, spec.fps, float(offsets[c])))

    transit = {(names[c], names[c + 1]): (spec.transit[0], spec.transit[1]) for c in range(spec.cameras - 1)}
    persons: dict[int, dict[str, object]] = {}
    for v in visits:
        p = persons.setdefault(v.person, {"source_id": v.source, "cameras": []})
        cams = p["cameras"]
        assert isinstance(cams, list)
        if names[v.camera] not in cams:
            cams.append(names[v.camera])
    site_yml, truth_json = out / "site.yml", out / "truth.json"
    site_doc = {"cameras": [{"name": c.name, "video": str(c.video.relative_to(out)),
                             "tracks": str(c.tracks.relative_to(out)), "fps": c.fps,
                             "time_offset": c.time_offset} for c in cameras]}
    with atomic_path(site_yml) as tmp:
        tmp.write_text(yaml.safe_dump(site_doc, sort_keys=False), encoding="utf-8")
    truth_doc = {"spec": asdict(spec),
                 "tracks": {cam: {str(t): p for t, p in m.items()} for cam, m in truth.items()},
                 "people": {str(p): d for p, d in sorted(persons.items())},
                 "transit": [{"cameras": list(k), "min": lo, "max": hi} for k, (lo, hi) in transit.items()]}
    with atomic_path(truth_json) as tmp:
        tmp.write_text(json.dumps(truth_doc, indent=1), encoding="utf-8")
    return Site(out, cameras, truth, transit, site_yml, truth_json, spec, persons)
