"""No input breaks it: a table of bad inputs for every command, run through the real CLI.

Each bad case asserts: a non-zero exit, exactly one ``trackreid <command>: error:`` line on
stderr that names the file (and line or frame where there is one), says what was expected
and the fix, no traceback, and the output location exactly as it was before the run.
Awkward but legitimate inputs (headers, blank lines, other delimiters, ids beyond 32 bits,
variable frame rate, rotation metadata, a video with another extension) must work, and are
checked as such.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import bad_files as bf
from tests.builders import Scene, make_index_scene, tiny_weights, track_colour
from trackreid.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Kit:
    """Inputs shared by every case (built once per session)."""

    root: Path
    scene: Scene
    weights: Path  # osnet_tiny, trackreid safetensors
    features: Path  # an extract output folder of the scene
    market: Path  # a tiny Market-1501-style dataset (query/, bounding_box_test/) of the scene's crops

    @property
    def mp4(self) -> Path:
        """The scene as lossless H.264 (yuv444p), made on first use: only video cases need ffmpeg."""
        path = self.root / "scene.mp4"
        if not path.is_file():
            bf.frames_video(self.scene.folder, path, "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p")
        return path


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("bad_inputs")
    scene = make_index_scene(root / "scene", frames=30)
    weights = tiny_weights(root / "tiny.safetensors")
    features = root / "features"
    rc = main(["extract", "--source", str(scene.folder), "--tracks", str(scene.tracks), "--reid-model", str(weights),
               "--output-dir", str(features), "--backend", "torch", "--device", "cpu", "--quiet", "--save-crops",
               "--max-crops-per-track", "5", "--sampling", "even"])
    assert rc == 0
    market = root / "market"
    for split, tracks in (("query", (1, 2, 3)), ("bounding_box_test", (1, 2, 3))):
        (market / split).mkdir(parents=True)
        for tid in tracks:
            crops = sorted((features / "crops" / f"track_{tid:04d}").iterdir())
            for j, crop in enumerate(crops[:2] if split == "query" else crops[2:]):
                shutil.copy(crop, market / split / f"{tid:04d}_c{1 if split == 'query' else 2}s1_{j:06d}_00.jpg")
    return Kit(root, scene, weights, features, market)


EVAL = ("--device", "cpu", "--backend", "torch")


def extract_args(kit: Kit, out: Path, *, source: Path | None = None, tracks: Path | None = None,
                 model: Path | str | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    return ["extract", "--source", str(source or kit.scene.folder), "--tracks", str(tracks or kit.scene.tracks),
            "--reid-model", str(model or kit.weights), "--output-dir", str(out),
            "--backend", "auto" if str(model).endswith(".onnx") else "torch",
            "--device", "cpu", "--quiet", *extra]


def snapshot(path: Path) -> dict[str, tuple[int, int]] | None:
    """Every file and folder under ``path`` (hidden ones too) with size and mtime; None if absent."""
    if not path.exists():
        return None
    if path.is_file():
        st = path.stat()
        return {".": (st.st_size, st.st_mtime_ns)}
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(path))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns if p.is_file() else 0)
    return out


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def check_error(rc: int, err: str, command: str, needles: tuple[str, ...]) -> str:
    """The one-line error contract; returns the message."""
    assert rc != 0, f"exit code 0; stderr: {err!r}"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(f"trackreid {command}: error: ")]
    assert len(errors) == 1 and len(lines) == 1, f"expected one error line, got: {lines}"
    msg = errors[0]
    for needle in needles:
        assert needle.lower() in msg.lower(), f"{needle!r} missing from: {msg}"
    return msg


# -- the table of bad inputs --------------------------------------------------------------------

@dataclass
class Bad:
    """``make(kit, tmp) -> argv``; the error line must contain every ``needle``; ``watch`` is left as it was."""

    name: str
    make: Callable[[Kit, Path], list[str]]
    needles: tuple[str, ...]
    watch: str = "out"


def _model_case(name: str, build: Callable[[Path], Path], needles: tuple[str, ...], command: str = "extract") -> Bad:
    def make(kit: Kit, tmp: Path) -> list[str]:
        model = build(tmp)
        if command == "extract":
            return extract_args(kit, tmp / "out", model=model)
        if command == "models":
            return ["models", "info", str(model)]
        if command == "export-onnx":
            return ["export-onnx", "--reid-model", str(model), "--output", str(tmp / "out" / "m.onnx")]
        return ["evaluate", "--reid-model", str(model), "--dataset", str(kit.market), *EVAL]
    return Bad(name, make, needles)


def _tracks_case(name: str, text: str | bytes, needles: tuple[str, ...], extra: tuple[str, ...] = ()) -> Bad:
    def make(kit: Kit, tmp: Path) -> list[str]:
        p = tmp / "tracks.txt"
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        return extract_args(kit, tmp / "out", tracks=p, extra=extra)
    return Bad(name, make, ("tracks.txt", *needles))


def _source_case(name: str, build: Callable[[Kit, Path], Path], needles: tuple[str, ...],
                 extra: tuple[str, ...] = ()) -> Bad:
    def make(kit: Kit, tmp: Path) -> list[str]:
        return extract_args(kit, tmp / "out", source=build(kit, tmp), extra=extra)
    return Bad(name, make, needles)


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        p = tmp / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p
    return build


def _onnx_renamed(tmp: Path) -> Path:
    return bf.text_file(tmp / "model.onnx", "not an onnx graph")


def _folder_with_corrupt_frame(kit: Kit, tmp: Path) -> Path:
    d = tmp / "img1"
    shutil.copytree(kit.scene.folder, d)
    (d / "000030.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # the last frame: always sampled
    return d


def _truncated_video(kit: Kit, tmp: Path) -> Path:
    return bf.truncated(kit.mp4, tmp / "cut.mp4", 0.4)


def _clip_text(text: str, tmp: Path) -> Path:
    return bf.text_file(tmp / "holiday.mp4", text)


def _reduce_args(kit: Kit, tmp: Path, *extra: str) -> list[str]:
    return ["reduce", "--features", str(kit.features), "--output", str(tmp / "out" / "reduced.pkl"), *extra]


def _features_file(name: str, content: bytes) -> Callable[[Kit, Path], Path]:
    def build(kit: Kit, tmp: Path) -> Path:
        p = tmp / name
        p.write_bytes(content)
        return p
    return build


def _npz_wrong_arrays(kit: Kit, tmp: Path) -> Path:
    p = tmp / "wrong.npz"
    np.savez(p, track_ids=np.arange(3), features=np.zeros((2, 8), np.float32))
    return p


def _centralize(build: Callable[[Kit, Path], Path]) -> Callable[[Kit, Path], list[str]]:
    def make(kit: Kit, tmp: Path) -> list[str]:
        return ["centralize", "--features", str(build(kit, tmp)), "--output-dir", str(tmp / "out")]
    return make


def _similarity(build: Callable[[Kit, Path], Path]) -> Callable[[Kit, Path], list[str]]:
    def make(kit: Kit, tmp: Path) -> list[str]:
        return ["similarity", "--features", str(build(kit, tmp)), "--output-dir", str(tmp / "out"), "--no-heatmap"]
    return make


def _config(text: str | bytes) -> Callable[[Kit, Path], list[str]]:
    def make(kit: Kit, tmp: Path) -> list[str]:
        p = tmp / "train.yml"
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        return ["train", "--config-file", str(p), "OUTPUT_DIR", str(tmp / "out")]
    return make


def _prepare(kind: str) -> Callable[[Kit, Path], list[str]]:
    def make(kit: Kit, tmp: Path) -> list[str]:
        crops = str(kit.features / "crops")
        base = ["prepare-data", "--output-dir", str(tmp / "out")]
        if kind == "missing":
            return [*base, "--crops-dir", str(tmp / "nowhere"), "--camera", "c1"]
        if kind == "manifest":
            (tmp / "manifest.yml").write_text("cameras:\n  - name: c1\n    crops_dir: [unclosed\n")
            return [*base, "--manifest", str(tmp / "manifest.yml")]
        if kind == "idmap_binary":
            (tmp / "ids.csv").write_bytes(b"\xff\xfe\x00camera\x00track")
        else:
            (tmp / "ids.csv").write_text("camera,track,person\nc1,1\n")
        return [*base, "--crops-dir", crops, "--camera", "c1", "--identity-map", str(tmp / "ids.csv")]
    return make


def _existing_outputs(kit: Kit, tmp: Path) -> list[str]:
    out = tmp / "out"
    shutil.copytree(kit.features, out)
    return extract_args(kit, out)


def _output_is_file(kit: Kit, tmp: Path) -> list[str]:
    (tmp / "out").write_text("I am a file")
    return extract_args(kit, tmp / "out")


def _output_under_file(kit: Kit, tmp: Path) -> list[str]:
    (tmp / "out").write_text("I am a file")
    return extract_args(kit, tmp / "out" / "sub")


def _visualize_labels(kit: Kit, tmp: Path, content: bytes = b"track,identity\n1,alice\ntwo,bob\n") -> list[str]:
    (tmp / "labels.csv").write_bytes(content)
    return ["visualize", "--features", str(kit.features), "--output", str(tmp / "out" / "plot.png"),
            "--method", "pca", "--labels", str(tmp / "labels.csv")]


def _evaluate_missing(kit: Kit, tmp: Path) -> list[str]:
    return ["evaluate", "--reid-model", str(kit.weights), "--dataset", str(tmp / "no_dataset"), *EVAL]


def _evaluate_corrupt_image(kit: Kit, tmp: Path) -> list[str]:
    shutil.copytree(kit.market, tmp / "market")
    (tmp / "market" / "query" / "0002_c1s1_000001_00.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return ["evaluate", "--reid-model", str(kit.weights), "--dataset", str(tmp / "market"), *EVAL]


def _export_into_file(kit: Kit, tmp: Path) -> list[str]:
    (tmp / "out").write_text("I am a file")
    return ["export-onnx", "--reid-model", str(kit.weights), "--output", str(tmp / "out" / "m.onnx")]


def _pca_garbage(kit: Kit, tmp: Path) -> list[str]:
    (tmp / "p.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return _reduce_args(kit, tmp, "--pca-model", str(tmp / "p.npz"))


GOOD_ROWS = "1,1,10,10,20,50,0.9,-1,-1,-1\n2,1,11,10,20,50,0.9,-1,-1,-1\n"

BAD: list[Bad] = [
    # --reid-model: anything that is not a model
    _model_case("model-text", lambda t: bf.text_file(t / "model.pth"),
                ("model.pth", "text file", "not model weights", ".pth")),
    _model_case("model-empty", lambda t: bf.empty_file(t / "model.pth"), ("model.pth", "empty")),
    _model_case("model-truncated-pth", lambda t: bf.truncated(bf.torch_state_dict(t / "full.pth"), t / "model.pth"),
                ("model.pth", "truncated", ".pth")),
    _model_case("model-jpeg", lambda t: bf.jpeg_image(t / "person.jpg"), ("person.jpg", "image", "weights")),
    _model_case("model-jpeg-as-pth", lambda t: bf.jpeg_image(t / "model.pth"), ("model.pth", "image")),
    _model_case("model-zip-of-text", lambda t: bf.zip_of_text(t / "model.pth"),
                ("model.pth", "zip archive", "readme.txt")),
    _model_case("model-tar-of-text", lambda t: bf.tar_of_text(t / "model.pth"), ("model.pth", "tar archive", "unpack")),
    _model_case("model-safetensors-wrong-tensors", lambda t: bf.safetensors_wrong(t / "model.safetensors"),
                ("model.safetensors", "not an OSNet checkpoint", "known")),
    _model_case("model-safetensors-named-pth", lambda t: bf.safetensors_wrong(t / "model.pth"),
                ("model.pth", "safetensors", "rename")),
    _model_case("model-safetensors-garbage", _write("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{junk}"),
                ("model.safetensors", "safetensors")),
    _model_case("model-onnx-not-image", lambda t: bf.onnx_wrong_input(t / "model.onnx"),
                ("model.onnx", "image input")),
    _model_case("model-onnx-one-channel", lambda t: bf.onnx_one_channel(t / "model.onnx"),
                ("model.onnx", "3 channels")),
    _model_case("model-onnx-feature-map", lambda t: bf.onnx_feature_map(t / "model.onnx"),
                ("model.onnx", "embedding")),
    _model_case("model-onnx-garbage", _onnx_renamed, ("model.onnx", "ONNX")),
    _model_case("model-onnx-fails-at-run", lambda t: bf.onnx_fixed_inside(t / "model.onnx"),
                ("model.onnx", "fails on", "256x128", "--reid-size")),
    _model_case("model-non-tensor-dict", lambda t: bf.torch_non_tensors(t / "model.pth"), ("model.pth", "tensors")),
    _model_case("model-unsafe-pickle", lambda t: bf.unsafe_pickle(t / "model.pth"),
                ("model.pth", "refused", "os.system")),
    _model_case("model-folder", lambda t: (t / "weights_dir").mkdir() or t / "weights_dir",
                ("weights_dir", "folder", "file")),
    _model_case("model-unknown-zoo-name", lambda t: Path("osnet_x9_msmt17"), ("osnet_x9_msmt17", "models list")),
    _model_case("models-info-text", lambda t: bf.text_file(t / "model.pth"), ("model.pth", "text file", "zoo name"),
                "models"),
    _model_case("models-info-tar", lambda t: bf.tar_of_text(t / "model.tar"), ("model.tar", "tar archive"), "models"),
    _model_case("export-onnx-jpeg", lambda t: bf.jpeg_image(t / "model.pth"), ("model.pth", "image"), "export-onnx"),
    _model_case("evaluate-zip", lambda t: bf.zip_of_text(t / "model.pt"), ("model.pt", "zip archive"), "evaluate"),
    # videos and frame folders
    _source_case("video-zero-frames", lambda k, t: bf.zero_frame_video(t / "empty.mp4"),
                 ("empty.mp4", "no frames")),
    _source_case("video-audio-only", lambda k, t: bf.audio_only(t / "voice.mp4"), ("voice.mp4", "no video stream")),
    _source_case("video-text-named-mp4", lambda k, t: _clip_text("not a video", t),
                 ("holiday.mp4", "cannot open as a video", "--source")),
    # a codec no FFmpeg build decodes (an AV1 clip is either decoded or refused: its own test below)
    _source_case("video-unsupported-codec", lambda k, t: bf.unknown_codec_video(k.scene.folder, t / "clip.avi"),
                 ("clip.avi", "no decoder", "re-encode")),
    _source_case("video-truncated", _truncated_video, ("cut.mp4", "frame", "truncated")),
    _source_case("folder-corrupt-frame", _folder_with_corrupt_frame, ("000030.png", "frame 30", "replace")),
    _source_case("folder-empty", lambda k, t: (t / "frames").mkdir() or t / "frames", ("frames", "no frames")),
    _source_case("source-missing", lambda k, t: t / "nowhere.mp4", ("nowhere.mp4", "no such")),
    # tracks files
    _tracks_case("tracks-zero-based", "0,1,10,10,20,50,1,-1,-1,-1\n1,1,11,10,20,50,1,-1,-1,-1\n",
                 (":1:", "--frame-offset 1")),
    _tracks_case("tracks-duplicate-frame-id", GOOD_ROWS + "2,1,30,10,20,50,0.8,-1,-1,-1\n",
                 (":3:", "line 2", "frame 2", "track 1")),
    _tracks_case("tracks-only-empty-boxes", "1,1,10,10,0,50,1,-1,-1,-1\n2,1,10,10,-5,50,1,-1,-1,-1\n",
                 ("no box", "width and height")),
    _tracks_case("tracks-id-beyond-53-bits", "1,18014398509481985,10,10,20,50,1,-1,-1,-1\n",
                 (":1:", "18014398509481985", "2^53", "renumber")),
    _tracks_case("tracks-words", GOOD_ROWS + "3,1,ten,10,20,50,1,-1,-1,-1\n", (":3:", "'ten'", "number")),
    _tracks_case("tracks-binary", bytes(range(256)) * 4, ("text",)),
    _tracks_case("tracks-too-few-columns", "1,1,10,10,20\n", (":1:", "6 to 10 values")),
    _tracks_case("tracks-ragged", GOOD_ROWS + "3,1,12,10,20,50\n", (":3:", "earlier rows")),
    _tracks_case("tracks-nan", GOOD_ROWS + "3,1,nan,10,20,50,1,-1,-1,-1\n", (":3:", "non-finite")),
    _tracks_case("tracks-fractional-frame", "1.5,1,10,10,20,50,1,-1,-1,-1\n", (":1:", "integer")),
    _tracks_case("tracks-empty", "", ("no rows",)),
    _tracks_case("tracks-past-end-of-video", "900,1,10,10,20,50,1,-1,-1,-1\n",
                 ("frame 900", "30 frames", "--tracks")),
    _tracks_case("tracks-boxes-outside-image", "1,1,900,900,20,50,1,-1,-1,-1\n", ("outside", "160x120")),
    Bad("tracks-missing", lambda k, t: extract_args(k, t / "out", tracks=t / "tracks.txt"), ("tracks.txt", "no such")),
    # output folders
    Bad("output-is-a-file", _output_is_file, ("out", "is a file", "--output-dir")),
    Bad("output-under-a-file", _output_under_file, ("out", "is a file, not a folder", "--output-dir")),
    Bad("output-exists", _existing_outputs, ("out", "--overwrite")),
    Bad("export-output-under-file", _export_into_file, ("out", "is a file, not a folder")),
    # the other commands
    Bad("evaluate-missing-dataset", _evaluate_missing, ("no_dataset", "no such")),
    Bad("evaluate-corrupt-image", _evaluate_corrupt_image, ("0002_c1s1_000001_00.jpg", "image")),
    Bad("centralize-text-features", _centralize(_features_file("f.npz", b"hello")), ("f.npz", "features")),
    Bad("centralize-npz-wrong-arrays", _centralize(_npz_wrong_arrays), ("wrong.npz", "all_features")),
    Bad("centralize-unsafe-pkl", _centralize(_features_file("f.pkl", b"cos\nsystem\n(S'echo x'\ntR.")),
        ("f.pkl", "refused", "os.system")),
    Bad("centralize-random-pkl", _centralize(_features_file("f.pkl", bytes(range(40, 240)))), ("f.pkl", "pickle")),
    Bad("similarity-missing", _similarity(lambda k, t: t / "nothing.npz"), ("nothing.npz", "no such")),
    Bad("reduce-dim-too-big", lambda k, t: _reduce_args(k, t, "--dim", "4096"), ("--dim 4096", "expected")),
    Bad("reduce-pca-garbage", _pca_garbage, ("p.npz", "PCA")),
    Bad("visualize-bad-labels", _visualize_labels, ("labels.csv", "line 3", "two")),
    Bad("visualize-binary-labels", lambda k, t: _visualize_labels(k, t, bytes(range(128, 256))),
        ("labels.csv", "not a text file", "track,identity")),
    Bad("prepare-missing-crops", _prepare("missing"), ("nowhere", "no such")),
    Bad("prepare-bad-manifest", _prepare("manifest"), ("manifest.yml", "line 4", "YAML")),
    Bad("prepare-short-idmap-row", _prepare("idmap_short"), ("ids.csv:2", "3 values")),
    Bad("prepare-binary-idmap", _prepare("idmap_binary"), ("ids.csv", "text")),
    Bad("train-missing-config", lambda k, t: ["train", "--config-file", str(t / "none.yml")], ("none.yml", "no such")),
    Bad("train-yaml-syntax", _config("MODEL:\n  BACKBONE:\n    NAME: [osnet\nSOLVER: {"),
        ("train.yml", "line 4", "YAML")),
    Bad("train-unknown-key", _config("SOLVER:\n  BASE_LRR: 0.1\n"), ("train.yml:2", "BASE_LR")),
    Bad("train-wrong-type", _config("SOLVER:\n  MAX_EPOCH: many\n"), ("train.yml:2", "MAX_EPOCH")),
    Bad("train-binary-config", _config(bytes(range(256))), ("train.yml", "config")),
    Bad("models-download-unknown", lambda k, t: ["models", "download", "osnet_x9"], ("osnet_x9", "models list")),
    # association, site runs, adaptation
    Bad("associate-missing-features", lambda k, t: ["associate", "--features", str(t / "nowhere"), "--output-dir",
                                                    str(t / "out")], ("nowhere", "no such")),
    Bad("associate-camera-named-twice", lambda k, t: ["associate", "--features", str(k.features), "--camera", "a",
                                                      "--features", str(k.features), "--camera", "a",
                                                      "--output-dir", str(t / "out")], ("'a'", "twice")),
    Bad("associate-text-features", lambda k, t: ["associate", "--features", str(_features_file("f.npz", b"hi")(k, t)),
                                                 "--output-dir", str(t / "out")], ("f.npz", "features")),
    Bad("index-missing-features", lambda k, t: ["index", "build", "--features", str(t / "nowhere"), "--output",
                                                str(t / "idx")], ("nowhere", "no such")),
    Bad("search-missing-index", lambda k, t: ["search", "--index", str(t / "noidx"), "--track", "cam1:1"],
        ("noidx", "no such index", "trackreid index build")),
    Bad("evaluate-mtmc-missing-gt", lambda k, t: ["evaluate-mtmc", "--gt", str(t / "nogt"), "--pred", str(t)],
        ("nogt", "no such", "--gt")),
    Bad("run-missing-site", lambda k, t: ["run", "--site", str(t / "missing.yml"), "--output-dir", str(t / "out")],
        ("missing.yml", "no such", "--site")),
    Bad("run-unknown-site-key", lambda k, t: ["run", "--site", str(_write("site.yml", (
        "cameras:\n  - {name: a, video: a.mp4, tracks: a.txt}\nreid_modle: w.pth\n"))(t)), "--output-dir",
        str(t / "out")], ("site.yml", "reid_modle", "reid_model")),
    Bad("adapt-missing-features", lambda k, t: ["adapt", "--features", str(t / "nowhere"), "--reid-model",
                                                str(k.weights), "--output-dir", str(t / "out")],
        ("nowhere", "no such", "--save-crops")),
    Bad("adapt-metadata-not-extract", lambda k, t: ["adapt", "--features", str(_write("track_metadata.json", "{}")(t)
                                                                              .parent), "--reid-model", str(k.weights),
                                                    "--output-dir", str(t / "out")],
        ("track_metadata.json", "tracks")),
    Bad("live-missing-site", lambda k, t: ["live", "--site", str(t / "missing.yml"), "--output-dir", str(t / "out")],
        ("missing.yml", "no such", "--site")),
    Bad("live-bad-speed", lambda k, t: ["live", "--site", str(t / "missing.yml"), "--output-dir", str(t / "out"),
                                        "--speed", "fast"], ("--speed 'fast'", "max")),
]


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_input_gives_one_clear_line(case: Bad, kit: Kit, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.make(kit, tmp_path)
    watched = tmp_path / case.watch
    before = snapshot(watched)
    rc, _, err = run_cli(argv, capsys)
    check_error(rc, err, argv[0], case.needles)
    assert snapshot(watched) == before, "the output location changed"
    assert not list(tmp_path.glob("**/.*.tmp")) and not list(tmp_path.glob("**/.trackreid-*"))


def test_the_battery_covers_every_command() -> None:
    from trackreid.cli.main import SUBCOMMANDS

    assert len(BAD) >= 40
    prefixes = {c.name.split("-")[0] for c in BAD}
    covered = {{"prepare": "prepare_data", "export": "export_onnx"}.get(p, p) for p in prefixes}
    covered |= {"evaluate_mtmc"} if any(c.name.startswith("evaluate-mtmc-") for c in BAD) else set()
    if prefixes & {"model", "video", "folder", "source", "tracks", "output"}:
        covered.add("extract")
    assert set(SUBCOMMANDS) - {"demo"} <= covered, set(SUBCOMMANDS) - covered


# -- awkward inputs that are good inputs ----------------------------------------------------------

CLEAN = "1,1,10,10,20,50,0.9,-1,-1,-1\n2,1,11,10,20,50,0.8,-1,-1,-1\n2,7,40,12,22,48,0.7,-1,-1,-1\n"

GOOD_TRACKS = {
    "header": "frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z\n" + CLEAN,
    "blank-lines-and-comments": "# made by a tracker\n\n" + CLEAN.replace("\n", "\n\n", 1) + "\n\n",
    "semicolons": CLEAN.replace(",", ";"),
    "tabs": CLEAN.replace(",", "\t"),
    "spaces": CLEAN.replace(",", " "),
    "comma-and-space": CLEAN.replace(",", ", "),
    "crlf": CLEAN.replace("\n", "\r\n"),
    "utf8-bom": "\ufeff" + CLEAN,
    "no-final-newline": CLEAN.rstrip("\n"),
    "six-columns": "\n".join(",".join(r.split(",")[:6]) for r in CLEAN.splitlines()),
    "header-and-semicolons": "frame;id;left;top;width;height;conf;x;y;z\n" + CLEAN.replace(",", ";"),
}


@pytest.mark.parametrize("name", sorted(GOOD_TRACKS))
def test_awkward_tracks_files_read_like_the_clean_one(name: str, tmp_path: Path) -> None:
    from trackreid.io.mot import read_mot

    (tmp_path / "clean.txt").write_text(CLEAN)
    (tmp_path / "t.txt").write_bytes(GOOD_TRACKS[name].encode("utf-8"))
    want, got = read_mot(tmp_path / "clean.txt"), read_mot(tmp_path / "t.txt")
    assert got.frame.tolist() == want.frame.tolist() == [1, 2, 2]
    assert got.track_id.tolist() == want.track_id.tolist() == [1, 1, 7]
    np.testing.assert_array_equal(got.xywh, want.xywh)
    if name != "six-columns":
        np.testing.assert_array_equal(got.conf, want.conf)


def test_zero_based_frames_work_with_frame_offset(tmp_path: Path) -> None:
    from trackreid.io.mot import read_mot

    (tmp_path / "t.txt").write_text("0,1,10,10,20,50\n1,1,11,10,20,50\n")
    assert read_mot(tmp_path / "t.txt", frame_offset=1).frame.tolist() == [1, 2]


def test_empty_boxes_are_skipped_counted_and_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from trackreid.io.mot import read_mot

    (tmp_path / "t.txt").write_text(CLEAN + "3,1,10,10,0,50,1,-1,-1,-1\n3,7,10,10,20,-4,1,-1,-1,-1\n")
    with caplog.at_level("WARNING"):
        t = read_mot(tmp_path / "t.txt")
    assert len(t) == 3 and t.stats["dropped_empty_box"] == 2
    assert "t.txt: 2 rows have a box of zero or negative width or height" in caplog.text
    assert "line 4" in caplog.text


def test_ids_beyond_32_bits_survive_extract_exactly(kit: Kit, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from trackreid.io.features import read_features, safe_pickle_load

    big = {1: 2**32 + 5, 2: 2**40 + 1, 3: 2**53 - 1}
    rows = []
    for line in kit.scene.tracks.read_text().splitlines():
        f = line.split(",")
        f[1] = str(big[int(f[1])])
        rows.append(",".join(f))
    (tmp_path / "big.txt").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    rc, _, err = run_cli(extract_args(kit, out, tracks=tmp_path / "big.txt", extra=("--save-crops",)), capsys)
    assert rc == 0, err
    assert sorted(read_features(out).track_ids.tolist()) == sorted(big.values())
    assert sorted(safe_pickle_load(out / "track_features.pkl")) == sorted(big.values())
    assert sorted(p.name for p in (out / "crops").iterdir()) == sorted(f"track_{v:04d}" for v in big.values())
    meta = json.loads((out / "track_metadata.json").read_text())
    assert sorted(int(k) for k in meta["tracks"]) == sorted(big.values())


def _crop_colours_ok(out: Path, boxes: dict[tuple[int, int], tuple[int, int, int, int]], tol: int = 3) -> int:
    """Every saved crop has the size of its box and the colour that encodes its (track, frame)."""
    meta = json.loads((out / "track_metadata.json").read_text())
    seen = 0
    for tid, entry in meta["tracks"].items():
        for crop, frame in zip(entry["crops"], entry["frame_indices"], strict=True):
            img = cv2.imread(str(out / crop))
            x0, y0, x1, y1 = boxes[(int(tid), int(frame))]
            assert img.shape[:2] == (y1 - y0, x1 - x0), (crop, img.shape)
            centre = img[img.shape[0] // 2, img.shape[1] // 2].astype(int)
            assert np.abs(centre - track_colour(int(tid), int(frame))).max() <= tol, (crop, centre)
            seen += 1
    return seen


@pytest.mark.parametrize("seek", [True, False], ids=["seek", "no-seek"])
def test_variable_frame_rate_video_numbers_frames_by_decode_order(kit: Kit, tmp_path: Path, seek: bool,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Frame k is the k-th decoded frame whatever the timestamps; lossless FFV1 gives the very
    pixels of the frame folder, so features and frame numbers equal the folder's exactly."""
    from trackreid.io.features import read_features

    video = bf.vfr_video(kit.scene.folder, tmp_path / "vfr.mkv")
    gaps = np.diff(bf.frame_times(video))
    assert len(gaps) == 29 and len(np.unique(np.round(gaps, 3))) > 20  # really variable
    out = tmp_path / "out"
    extra = ("--max-crops-per-track", "5", "--sampling", "even") + (() if seek else ("--no-seek",))
    rc, _, err = run_cli(extract_args(kit, out, source=video, extra=extra), capsys)  # as the kit's folder run
    assert rc == 0, err
    got, want = read_features(out), read_features(kit.features)
    assert got.track_ids.tolist() == want.track_ids.tolist()
    assert got.frame_indices.tolist() == want.frame_indices.tolist()
    np.testing.assert_allclose(got.all_features, want.all_features, atol=1e-5)


def test_a_video_with_another_extension_is_read_by_its_content(kit: Kit, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    renamed = tmp_path / "scene.dat"
    shutil.copy(kit.mp4, renamed)
    out = tmp_path / "out"
    rc, _, err = run_cli(extract_args(kit, out, source=renamed, extra=("--save-crops", "--sampling", "even")), capsys)
    assert rc == 0, err
    assert _crop_colours_ok(out, kit.scene.boxes) == 3 * 10


def test_av1_is_decoded_correctly_or_refused_in_one_line(kit: Kit, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Whether AV1 decodes depends on the FFmpeg inside the installed OpenCV and PyAV wheels
    (builds with libdav1d do). Either outcome is right; a wrong picture or a traceback is not."""
    video = bf.frames_video(kit.scene.folder, tmp_path / "clip.mkv", "-c:v", "libaom-av1", "-crf", "20",
                            "-cpu-used", "8", "-pix_fmt", "yuv444p")
    out = tmp_path / "out"
    rc, _, err = run_cli(extract_args(kit, out, source=video, extra=("--save-crops", "--sampling", "even")), capsys)
    if rc == 0:
        assert _crop_colours_ok(out, kit.scene.boxes, tol=8) == 3 * 10
    else:
        check_error(rc, err, "extract", ("clip.mkv", "AV01", "re-encode"))
        assert not out.exists()


@pytest.mark.parametrize("seek", [True, False], ids=["seek", "no-seek"])
def test_rotation_metadata_frames_are_read_upright_with_a_warning(kit: Kit, tmp_path: Path, seek: bool,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Phones store rotation as metadata; players, ffmpeg and OpenCV-based trackers show the frames
    upright, so the tracker's boxes are in that orientation: trackreid reads frames upright too."""
    video = bf.rotated_video(kit.mp4, tmp_path / "phone.mp4", 90)
    bf.ffmpeg("-i", str(video), "-frames:v", "1", str(tmp_path / "shown.png"))  # ffmpeg rotates on decode
    shown = cv2.imread(str(tmp_path / "shown.png"))
    first = cv2.imread(str(kit.scene.folder / "000001.png"))
    k = next(k for k in range(4) if np.rot90(first, k).shape == shown.shape and
             np.abs(np.rot90(first, k).astype(int) - shown).max() <= 3)
    assert k in (1, 3)
    w = first.shape[1]
    h = first.shape[0]
    boxes = {}
    rows = []
    for (tid, frame), (x0, y0, x1, y1) in sorted(kit.scene.boxes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        # np.rot90 by k=1 (counter-clockwise) sends pixel (x, y) to (y, w - 1 - x); k=3 to (h - 1 - y, x)
        box = (y0, w - x1, y1, w - x0) if k == 1 else (h - y1, x0, h - y0, x1)
        boxes[(tid, frame)] = box
        rows.append(f"{frame},{tid},{box[0] + 1},{box[1] + 1},{box[2] - box[0]},{box[3] - box[1]},1,-1,-1,-1")
    (tmp_path / "upright.txt").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    extra = ("--save-crops", "--max-crops-per-track", "4", "--sampling", "even") + (() if seek else ("--no-seek",))
    with caplog.at_level("WARNING"):
        rc, _, err = run_cli(extract_args(kit, out, source=video, tracks=tmp_path / "upright.txt", extra=extra), capsys)
    assert rc == 0, err
    assert "rotation metadata" in caplog.text
    assert _crop_colours_ok(out, boxes) == 12
    video_meta = json.loads((out / "track_metadata.json").read_text())["video"]
    assert (video_meta["width"], video_meta["height"]) == (h, w) and video_meta["rotation"] in (90, 270)


# -- output locations: read-only, full disk; interrupted runs ---------------------------------------

def _userns_tmpfs_ok() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        if os.environ.get("CI"):
            pytest.fail("unshare (util-linux) is required under CI")
        return False
    probe = subprocess.run([unshare, "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def _in_tmpfs(mount_opts: str, mountpoint: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``trackreid argv`` in a private mount namespace where ``mountpoint`` is a small tmpfs."""
    script = (f"mount -t tmpfs -o {mount_opts} tmpfs {mountpoint} && "
              f"exec {sys.executable} -m trackreid " + " ".join(f"'{a}'" for a in argv))
    env = {**os.environ, "OPENCV_FFMPEG_LOGLEVEL": "-8"}
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


@pytest.mark.parametrize("where", ["read-only", "full-disk"])
def test_read_only_and_full_output_file_systems(kit: Kit, tmp_path: Path, where: str) -> None:
    """A real tmpfs (read-only, or 256 KiB that crops overflow) in a user namespace."""
    if not _userns_tmpfs_ok():  # a kernel or container policy, not a missing tool
        pytest.skip("unshare missing, or user namespaces with tmpfs mounts are not permitted here "
                    "(the in-process full-disk test still runs)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = "ro,size=256k" if where == "read-only" else "size=256k"
    argv = extract_args(kit, mnt / "out", extra=("--save-crops", "--max-crops-per-track", "30"))
    big = tmp_path / "big.txt"  # many crops: about 40 KiB each as JPEG at this size
    big.write_text("".join(f"{k},{t},1,1,160,120,1,-1,-1,-1\n" for k in range(1, 31) for t in (1, 2, 3)))
    argv[argv.index("--tracks") + 1] = str(big)
    res = _in_tmpfs(opts, mnt, argv)
    msg = check_error(res.returncode, res.stderr, "extract",
                      ("out", "read-only" if where == "read-only" else "disk is full", "--output-dir"))
    assert str(mnt / "out") in msg
    assert not list(mnt.iterdir())  # the namespace's tmpfs is gone; nothing leaked into the real folder


def test_full_disk_in_process_leaves_nothing(kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the 5th crop written (the file system's answer, simulated at the write call)."""
    out = tmp_path / "out"
    shutil.copytree(kit.features, out)
    before = snapshot(out)
    real = Path.write_bytes
    calls = {"n": 0}

    def write_bytes(self: Path, data: bytes) -> int:  # type: ignore[override]
        calls["n"] += 1
        if calls["n"] >= 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    rc, _, err = run_cli(extract_args(kit, out, extra=("--save-crops", "--overwrite")), capsys)
    monkeypatch.undo()
    msg = check_error(rc, err, "extract", ("disk is full", "--output-dir"))
    assert ".trackreid-extract" not in msg  # the message names the output folder, not a staging name
    assert snapshot(out) == before


def test_keyboard_interrupt_mid_extract_leaves_the_folder_as_it_was(kit: Kit, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from trackreid.embed.backend import Embedder

    out = tmp_path / "out"
    shutil.copytree(kit.features, out)
    before = snapshot(out)
    real = Embedder.run_prepared
    calls = {"n": 0}

    def run_prepared(self: Embedder, batch: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C arrives while the second batch is embedded
        return real(self, batch)

    monkeypatch.setattr(Embedder, "run_prepared", run_prepared)
    rc, _, err = run_cli(extract_args(kit, out, extra=("--save-crops", "--overwrite", "--batch-size", "4")), capsys)
    assert calls["n"] == 2
    assert rc == 130 and err.strip() == "trackreid extract: interrupted"
    assert snapshot(out) == before


def test_sigint_mid_extract_in_a_real_process(kit: Kit, tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT) once crops are being written: exit 130, one line, the old outputs intact."""
    scene = make_index_scene(tmp_path / "long", frames=240)
    out = tmp_path / "out"
    shutil.copytree(kit.features, out)
    before = snapshot(out)
    argv = extract_args(kit, out, source=scene.folder, tracks=scene.tracks,
                        extra=("--save-crops", "--overwrite", "--batch-size", "1", "--max-crops-per-track", "240"))
    # Ctrl-C as at a terminal: a suite started as a background job of a non-interactive shell inherits
    # SIGINT ignored, and so would the child, which would then just finish. A signal caught here is reset
    # to its default in the child at exec (no preexec_fn, which is unsafe with threads).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "trackreid", *argv], stderr=subprocess.PIPE, text=True,
                                cwd=ROOT)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.suffix == ".jpg" for p in out.glob(".trackreid-extract-*/crops/*/*")):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "extract ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "trackreid extract: interrupted"
    assert snapshot(out) == before


SUBPROCESS_CASES = ["model-text", "video-zero-frames", "train-yaml-syntax"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process_prints_no_traceback(name: str, kit: Kit, tmp_path: Path) -> None:
    case = next(c for c in BAD if c.name == name)
    argv = case.make(kit, tmp_path)
    before = snapshot(tmp_path / case.watch)
    res = subprocess.run([sys.executable, "-m", "trackreid", *argv], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert res.returncode == 2
    check_error(res.returncode, res.stderr, argv[0], case.needles)
    assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1, res.stderr
    assert res.stdout == ""
    assert snapshot(tmp_path / case.watch) == before
