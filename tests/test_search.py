"""``trackreid index`` / ``trackreid search`` on a real drawn site (real OSNet, FAISS, SQLite, files)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.browser import browser
from trackreid.associate.tracks import CameraInput
from trackreid.cli.main import main
from trackreid.errors import InputError, ModelError
from trackreid.io.features import read_features
from trackreid.search import Index, read_run
from trackreid.search import vectors as vec
from trackreid.search.index import CURRENT, DB_NAME, VECTORS_NAME
from trackreid.search.sources import RunSource


@pytest.fixture(scope="session")
def site_run(tmp_path_factory: pytest.TempPathFactory, msmt_pth: Path) -> Path:
    """A two-camera drawn site run end to end (extract with crops, then associate): the demo, smaller."""
    from trackreid.run import read_site, run_site
    from trackreid.synth import SiteSpec, drawn_people, make_site

    root = tmp_path_factory.mktemp("search_site")
    synth = make_site(root / "site", SiteSpec(cameras=2, identities=6, shared_fraction=0.6, seconds=18.0, fps=10,
                                              width=320, height=240, seed=1), drawn_people(6))
    site = read_site(synth.site_yml, reid_model=str(msmt_pth), save_crops=True)
    result = run_site(site, root / "run", workers=2)
    assert not result.failures
    return root / "run"


@pytest.fixture(scope="session")
def site_index(site_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search_index") / "index"
    Index.build(read_run(site_run), out)
    return out


def _global_ids(run: Path) -> dict[str, dict[int, int]]:
    raw = json.loads((run / "associate" / "global_ids.json").read_text())
    return {c: {int(t): int(g) for t, g in m.items()} for c, m in raw.items()}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"trackreid {command}: error: "), err
    return lines[0]


# ---- the index itself

def test_index_of_a_run_holds_every_track_with_its_identity_model_and_span(site_run: Path, site_index: Path) -> None:
    ids = _global_ids(site_run)
    index = Index.open(site_index)
    info = index.info()
    feats = {c: read_features(site_run / "cameras" / c) for c in ids}
    assert info["tracks"] == sum(len(f) for f in feats.values()) == index.vectors.ntotal
    meta = json.loads((site_run / "cameras" / "cam1" / "track_metadata.json").read_text())
    assert info["model"]["sha256"] == meta["model"]["weights_sha256"]
    assert info["preprocess"] == meta["model"]["preprocess"]
    assert info["vectors"]["kind"] == "flat"
    assert sorted(p.name for p in (site_index / index.version).iterdir()) == [DB_NAME, VECTORS_NAME]  # no pickle
    for cam, f in feats.items():
        table = json.loads((site_run / "cameras" / cam / "track_metadata.json").read_text())["tracks"]
        for i, tid in enumerate(f.track_ids.tolist()):
            row = index.store.track(cam, tid)
            assert row is not None and row.identity == ids[cam][tid]
            assert (row.first_frame, row.last_frame) == (table[str(tid)]["first_frame"], table[str(tid)]["last_frame"])
            assert row.start_s == pytest.approx((row.first_frame - 1) / 10.0)  # fps 10, offset 0
            assert row.crops and all(Path(p).is_file() for p in row.crops)
            stored = vec.vector(index.vectors, row.row)
            want = f.features[i] / np.linalg.norm(f.features[i])
            assert np.allclose(stored, want, atol=1e-6)
    index.close()


def test_a_track_finds_itself_first_and_results_group_by_identity(site_run: Path, site_index: Path) -> None:
    ids = _global_ids(site_run)
    index = Index.open(site_index)
    for cam, tracks in ids.items():
        for tid in list(tracks)[:3]:
            r = index.search(track=(cam, tid), top_k=50)
            assert (r.hits[0].track.camera, r.hits[0].track.track_id) == (cam, tid)
            assert r.hits[0].similarity == pytest.approx(1.0, abs=1e-4)
            sims = [h.similarity for h in r.hits]
            assert sims == sorted(sims, reverse=True)
            groups = r.groups()
            assert sum(len(g["tracks"]) for g in groups) == len(r.hits)
            for g in groups:
                assert {ids[t["camera"]][t["track_id"]] for t in g["tracks"]} == {g["identity"]}
            best = [g["best_similarity"] for g in groups]
            assert best == sorted(best, reverse=True)


def test_an_identity_query_ranks_its_own_tracks_first(site_run: Path, site_index: Path) -> None:
    ids = _global_ids(site_run)
    members: dict[int, list[tuple[str, int]]] = {}
    for cam, m in ids.items():
        for t, g in m.items():
            members.setdefault(g, []).append((cam, t))
    multi = [g for g, ts in members.items() if len({c for c, _ in ts}) > 1]
    assert multi
    index = Index.open(site_index)
    for g in multi:
        r = index.search(identity=g, top_k=len(members[g]))
        assert r.groups()[0]["identity"] == g
        assert r.groups()[0]["cameras"] == ["cam1", "cam2"]


def test_images_are_embedded_with_the_index_model_and_pooled(site_index: Path) -> None:
    index = Index.open(site_index)
    row = index.store.rows([0])[0]
    crops = row.crops[:3]
    r = index.search(images=crops, top_k=3)
    assert (r.hits[0].track.camera, r.hits[0].track.track_id) == (row.camera, row.track_id)
    emb = index.embedder()
    single = emb.embed([cv2.imread(p) for p in crops])
    single /= np.linalg.norm(single, axis=1, keepdims=True)
    pooled = single.mean(axis=0)
    pooled /= np.linalg.norm(pooled)
    assert np.allclose(index.embed_images(crops), pooled, atol=1e-5)
    assert r.hits[0].similarity == pytest.approx(float(pooled @ vec.vector(index.vectors, row.row)), abs=1e-4)


def test_camera_and_time_filters_are_exact(site_index: Path) -> None:
    index = Index.open(site_index)
    everything = index.store.rows(list(range(index.store.count())))
    r = index.search(track=("cam1", everything[0].track_id if everything[0].camera == "cam1" else
                            next(t.track_id for t in everything.values() if t.camera == "cam1")),
                     cameras=["cam2"], after=3.0, before=6.0, top_k=1000)
    want = {t.row for t in everything.values() if t.camera == "cam2" and t.end_s >= 3.0 and t.start_s <= 6.0}
    assert want and {h.track.row for h in r.hits} == want


def test_add_cameras_then_the_same_again_adds_nothing(site_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "index"
    src = read_run(site_run)
    first = Index.build(RunSource(src.folder, src.cameras[:1], src.global_ids), out)
    assert first.version == "v000001" and first.cameras == ["cam1"]
    index = Index.open(out)
    second = index.add(src)
    assert (second.added, second.skipped) == (second.total - first.total, first.total)
    assert second.version == "v000002" and not (out / "v000001").exists()
    third = Index.open(out).add(src)
    assert (third.added, third.skipped, third.total) == (0, second.total, second.total)
    again = Index.open(out)
    assert again.store.count() == again.vectors.ntotal == second.total
    assert again.store.camera_names() == ["cam1", "cam2"]


def test_an_interrupted_write_leaves_the_previous_index(site_run: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "index"
    src = read_run(site_run)
    Index.build(RunSource(src.folder, src.cameras[:1], src.global_ids), out)
    before = Index.open(out).info()

    def killed(index: Any, path: Path) -> None:
        path.write_bytes(b"half")  # a part of the file, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(vec, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        Index.open(out).add(src)
    monkeypatch.undo()
    assert Index.open(out).info() == before and not list(out.glob(".v*"))
    # a SIGKILLed writer cannot clean up: its temporary version is ignored, then removed by the next write
    stale = out / ".v000002.abc.tmp"
    stale.mkdir()
    (stale / DB_NAME).write_bytes(b"half a database")
    assert Index.open(out).info() == before
    report = Index.open(out).add(src)
    assert report.total > before["tracks"] and not stale.exists()


def test_auto_switches_to_ivfpq_from_the_measured_size(cuhk03_features: Any, msmt_pth: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert vec.choose_kind("auto", vec.APPROX_FROM - 1) == "flat"
    assert vec.choose_kind("auto", vec.APPROX_FROM) == "ivfpq"
    with pytest.raises(InputError, match="needs at least"):
        vec.build(np.zeros((vec.MIN_TRAIN - 1, 512), np.float32), "ivfpq")
    # the same rule at a size a unit test can train (k-means on 2 shared cores takes minutes at the real one)
    _, _, fq, fg = cuhk03_features(msmt_pth)
    base = np.concatenate([fq, fg])
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    x = base[rng.integers(0, len(base), 3000)] + rng.normal(0, 0.6 / np.sqrt(512), (3000, 512))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    monkeypatch.setattr(vec, "APPROX_FROM", 2500)
    monkeypatch.setattr(vec, "MIN_TRAIN", 2000)
    exact, settings = vec.build(x[:2000], vec.choose_kind("auto", 2000))
    assert settings["kind"] == "flat"
    approx, settings = vec.build(x, vec.choose_kind("auto", len(x)))
    assert settings["kind"] == "ivfpq" and settings["factory"] == "IVF54,PQ64,Refine(SQ8)" and approx.ntotal == len(x)
    exact.add(x[2000:])
    _, truth = vec.search(exact, x[:100], 10)
    _, got = vec.search(approx, x[:100], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    assert recall > 0.9, recall  # PQ codes alone: 0.84 at 100k tracks; re-ranked with 8-bit vectors: 0.995
    assert np.array_equal(got[:, 0], np.arange(100))  # every vector still finds itself first
    _, got = vec.search(approx, x[:100], 10, allowed=np.arange(0, len(x), 2))  # a filter: even ids only
    assert np.all(got[::2, 0] == np.arange(0, 100, 2)) and np.all(got[got >= 0] % 2 == 0)
    path = tmp_path / "v.faiss"
    vec.write(approx, path)
    again = vec.read(path)
    vec.apply_settings(again, settings)
    assert np.array_equal(vec.search(again, x[:100], 10)[1], vec.search(approx, x[:100], 10)[1])
    # a --track query and an index add read the stored vectors back: the 8-bit copy, close to the original
    assert np.abs(vec.vector(again, 5) - x[5]).max() < 0.02
    assert np.abs(vec.all_vectors(again) - x).max() < 0.02
    hnsw, settings = vec.build(x[:2000], "hnsw")
    assert settings["kind"] == "hnsw"
    _, got = vec.search(hnsw, x[:100], 10, allowed=np.arange(0, 2000, 2))  # a filter: even ids only
    assert np.all(got[::2, 0] == np.arange(0, 100, 2)) and np.all(got % 2 == 0)


def test_missing_faiss_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(InputError, match=re.escape("pip install trackreid[search]")):
        vec.require_faiss()


# ---- the CLI

def test_cli_build_info_search_json_and_html_in_a_browser(site_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "index"
    code, text, _ = _cli(["index", "build", "--run", str(site_run), "--output", str(out)], capsys)
    assert code == 0 and "tracks added from cam1, cam2" in text
    code, text, _ = _cli(["index", "info", "--index", str(out), "--json"], capsys)
    info = json.loads(text)
    assert code == 0 and [c["name"] for c in info["cameras"]] == ["cam1", "cam2"]
    ids = _global_ids(site_run)
    gid = next(g for g in set(ids["cam1"].values()) if g in set(ids["cam2"].values()))
    tid = next(t for t, g in ids["cam1"].items() if g == gid)
    page = tmp_path / "results.html"
    code, text, _ = _cli(["search", "--index", str(out), "--track", f"cam1:{tid}", "--json", "--html", str(page)],
                         capsys)
    res = json.loads(text)
    assert code == 0 and res["results"][0]["camera"] == "cam1" and res["results"][0]["track_id"] == tid
    assert res["identities"][0]["identity"] == gid
    code, text, _ = _cli(["search", "--index", str(out), "--track", f"cam1:{tid}", "--top-k", "3"], capsys)
    assert code == 0 and text.splitlines()[1].startswith(f"identity {gid}: best 1.000")

    dom = browser(["--dump-dom", page.as_uri()], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    sections = re.findall(r'<section class="identity"><h2>\d+\. identity (\d+):', html)
    assert [int(s) for s in sections] == [g["identity"] for g in res["identities"]]
    rows = re.findall(r"<tr class=\"track\"><td>(\w+)</td><td>(\d+)</td>", html)
    assert len(rows) == len(res["results"])
    thumbs = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    img = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(thumbs[0]), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] <= 96
    assert html.count('class="bar"') == len(res["results"])
    assert "http://" not in html and "https://" not in html  # self-contained


def _extract_copy(site_run: Path, cam: str, dst: Path, **model: Any) -> Path:
    folder = dst / cam
    shutil.copytree(site_run / "cameras" / cam, folder)
    meta = json.loads((folder / "track_metadata.json").read_text())
    meta["model"].update(model)
    (folder / "track_metadata.json").write_text(json.dumps(meta))
    return folder


def test_bad_inputs_give_one_clear_line(site_run: Path, site_index: Path, tmp_path: Path, market_pth: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    idx = str(site_index)
    # an unreadable image
    bad = tmp_path / "q.jpg"
    bad.write_bytes(b"not a jpeg")
    code, _, err = _cli(["search", "--index", idx, "--image", str(bad)], capsys)
    assert code != 0 and str(bad) in _one_error_line(err, "search") and "cannot read this image" in err
    # --track naming an unknown camera / an unknown track
    code, _, err = _cli(["search", "--index", idx, "--track", "cam3:1"], capsys)
    assert code != 0 and "no camera 'cam3'" in _one_error_line(err, "search")
    code, _, err = _cli(["search", "--index", idx, "--track", "cam1:9999"], capsys)
    assert code != 0 and "has no track 9999" in _one_error_line(err, "search")
    # query images embedded by another model are refused
    crop = Index.open(site_index).store.rows([0])[0].crops[0]
    code, _, err = _cli(["search", "--index", idx, "--image", crop, "--reid-model", str(market_pth)], capsys)
    assert code != 0 and "sha256" in _one_error_line(err, "search")
    with pytest.raises(ModelError, match="sha256"):
        Index.open(site_index).embedder(market_pth)
    # features of another model are refused by add
    site = site_run.parent / "site" / "cam1"
    other = tmp_path / "other"
    assert main(["extract", "--source", str(site / "video.mp4"), "--tracks", str(site / "tracks.txt"), "--reid-model",
                 str(market_pth), "--output-dir", str(other), "--max-crops-per-track", "2", "-q"]) == 0
    capsys.readouterr()
    copy = tmp_path / "copy"
    shutil.copytree(site_index, copy)
    code, _, err = _cli(["index", "add", "--index", str(copy), "--features", str(other), "--camera", "camX"], capsys)
    line = _one_error_line(err, "index")
    assert code != 0 and "another model" in line and str(other) in line and "osnet_x0_25_market1501.pth" in line
    assert Index.open(copy).info()["tracks"] == Index.open(site_index).info()["tracks"]
    # another preprocessing (another --reid-size) is refused too
    pre = json.loads((site_run / "cameras" / "cam1" / "track_metadata.json").read_text())["model"]["preprocess"]
    other2 = _extract_copy(site_run, "cam1", tmp_path / "other2", preprocess={**pre, "height": 128})
    code, _, err = _cli(["index", "add", "--index", str(copy), "--features", str(other2), "--camera", "camY"], capsys)
    assert code != 0 and "preprocessing" in _one_error_line(err, "index")
    # an index whose recorded normalisation the model does not do (another input size it would follow):
    # queries are refused, as they could not be embedded the same way
    db = sqlite3.connect(copy / (copy / CURRENT).read_text().strip() / DB_NAME)
    db.execute("UPDATE settings SET value = ? WHERE key = 'preprocess'",
               (json.dumps({**pre, "mean": [0.5, 0.5, 0.5]}),))
    db.commit()
    db.close()
    code, _, err = _cli(["search", "--index", str(copy), "--image", crop], capsys)
    assert code != 0 and "preprocess" in _one_error_line(err, "search")
    # a corrupt SQLite file
    version = (copy / CURRENT).read_text().strip()
    (copy / version / DB_NAME).write_bytes(b"SQLite format 3\x00" + b"\x07" * 500)
    code, _, err = _cli(["search", "--index", str(copy), "--track", "cam1:1"], capsys)
    assert code != 0 and DB_NAME in _one_error_line(err, "search")
    # a half-written index: no CURRENT (a first build killed), or CURRENT naming a version that is not there
    half = tmp_path / "half"
    (half / ".v000001.x.tmp").mkdir(parents=True)
    code, _, err = _cli(["search", "--index", str(half), "--track", "cam1:1"], capsys)
    assert code != 0 and "no CURRENT" in _one_error_line(err, "search")
    (half / CURRENT).write_text("v000007\n")
    code, _, err = _cli(["index", "info", "--index", str(half)], capsys)
    assert code != 0 and "v000007" in _one_error_line(err, "index")
    # a vectors file cut short
    cut = tmp_path / "cut"
    shutil.copytree(site_index, cut)
    vf = cut / (cut / CURRENT).read_text().strip() / VECTORS_NAME
    vf.write_bytes(vf.read_bytes()[:100])
    code, _, err = _cli(["index", "info", "--index", str(cut)], capsys)
    assert code != 0 and VECTORS_NAME in _one_error_line(err, "index")
    # no index there at all; two kinds of query at once; an existing index without --overwrite
    code, _, err = _cli(["search", "--index", str(tmp_path / "nope"), "--identity", "1"], capsys)
    assert code != 0 and "no such index" in _one_error_line(err, "search")
    code, _, err = _cli(["search", "--index", idx, "--identity", "1", "--track", "cam1:1"], capsys)
    assert code != 0 and "exactly one query" in _one_error_line(err, "search")
    code, _, err = _cli(["index", "build", "--run", str(site_run), "--output", idx], capsys)
    assert code != 0 and "--overwrite" in _one_error_line(err, "index")


def test_an_empty_index_says_so(site_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trackreid.io.features import TrackFeatures, write_features

    folder = _extract_copy(site_run, "cam1", tmp_path / "empty")
    write_features(TrackFeatures.from_tracks([], dim=512), folder)
    meta = json.loads((folder / "track_metadata.json").read_text())
    meta["tracks"] = {}
    (folder / "track_metadata.json").write_text(json.dumps(meta))
    out = tmp_path / "index"
    code, text, _ = _cli(["index", "build", "--features", str(folder), "--camera", "cam1", "--output", str(out)],
                         capsys)
    assert code == 0 and "0 tracks in all" in text
    code, _, err = _cli(["search", "--index", str(out), "--identity", "1"], capsys)
    assert code != 0 and "empty" in _one_error_line(err, "search")


def _gallery_camera(folder: Path, paths: list[Path], feats: np.ndarray, model: dict[str, Any]) -> Path:
    """An extract output folder with one track per gallery image (track i + 1 = image i, its crop linked)."""
    from trackreid.io.features import TrackFeatures, write_features

    folder.mkdir(parents=True)
    items = [(i + 1, feats[i], feats[i][None], np.array([i + 1])) for i in range(len(paths))]
    write_features(TrackFeatures.from_tracks(items, meta={"model": model}), folder, pkl=False)
    (folder / "crops").mkdir()
    table = {}
    for i, p in enumerate(paths):
        (folder / "crops" / p.name).symlink_to(p)
        table[str(i + 1)] = {"first_frame": i + 1, "last_frame": i + 1, "crops": [f"crops/{p.name}"]}
    (folder / "track_metadata.json").write_text(json.dumps({"model": model, "video": {"fps": 1.0}, "tracks": table}))
    return folder


def test_exact_index_gives_evaluate_map_and_rank1_on_cuhk03(cuhk03_split: Any, msmt_pth: Path,
                                                           tmp_path: Path) -> None:
    """Camera-A crops as image queries, camera-B crops as the indexed tracks: the ranking the index returns
    scores as `trackreid evaluate` scores the same model (Market protocol, its own code), to 0.1."""
    from trackreid.embed.factory import build_embedder
    from trackreid.evaluate import evaluate_model, evaluate_ranking

    q, g, _, gi = cuhk03_split
    emb = build_embedder(msmt_pth, device="cpu", batch_size=64)  # what extract and the index use: backend auto
    cam = _gallery_camera(tmp_path / "camB", list(g.paths), emb.embed(gi), emb.describe()["model"])
    Index.build([CameraInput("camB", cam)],
                tmp_path / "index")
    index = Index.open(tmp_path / "index")
    assert index.settings["vectors"]["kind"] == "flat"
    dist = np.full((len(q), len(g)), 2.0)
    for i, p in enumerate(q.paths):
        r = index.search(images=[p], top_k=len(g))
        assert len(r.hits) == len(g)
        for h in r.hits:
            dist[i, h.track.track_id - 1] = 1.0 - h.similarity
    got = evaluate_ranking(dist, q.pids, g.pids, q.camids, g.camids)
    ref = evaluate_model(msmt_pth, q, g, device="cpu").metrics
    assert abs(got.mAP - ref.mAP) <= 0.1 and abs(got.rank1 - ref.rank1) <= 0.1, (got, ref)
    assert abs(ref.mAP - 41.0) < 1.0  # the shared data's reference number for these weights


def test_track_frames_are_in_the_tracks_files_own_numbering(tmp_path: Path) -> None:
    """A 0-based tracks file extracted with --frame-offset 1: the index shows the file's frames, as global_tracks/."""
    from trackreid.associate.tracks import LoadedCamera, TrackSet
    from trackreid.io.extract_meta import frame_seconds
    from trackreid.io.mot import TracksReading
    from trackreid.search.index import _track_rows

    tracks = TrackSet(["cam"], np.zeros(1), np.array([3]), frame_seconds(np.array([11.0]), 10.0, 2.0),
                      frame_seconds(np.array([40.0]), 10.0, 2.0), np.ones((1, 4), np.float32))
    for offset, first, last in ((1, 10, 39), (0, 11, 40)):
        cam = LoadedCamera("cam", "x", 10.0, "metadata", 2.0, TracksReading(tmp_path / "t.txt", frame_offset=offset),
                           {}, {}, 1)
        row = _track_rows(tracks, [cam], {"cam": 1}, None)[0]
        assert row[4:6] == (first, last)
    recorded = {"tracks_file": str(tmp_path / "t.txt"), "tracks_reading": {"frame_offset": 1}}
    cam = LoadedCamera("cam", "x", 10.0, "metadata", 2.0, None, {}, recorded, 1)  # the file itself is gone
    assert _track_rows(tracks, [cam], {"cam": 1}, None)[0][4:6] == (10, 39)
