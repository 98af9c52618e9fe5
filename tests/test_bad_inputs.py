"""No input breaks it: a table of bad inputs for every command, run through the real CLI.

Each bad case asserts: a non-zero exit, exactly one ``trackreid <command>: error:`` line on
stderr that names the file (and line or frame where there is one), says what was expected
and the fix, no traceback, and the output location exactly as it was before the run.
Awkward but legitimate inputs (headers, blank lines, other delimiters, ids beyond 32 bits,
variable frame rate, rotation metadata, a video with another extension) must work, and are
checked as such.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests import bad_files as bf
from tests.builders import Scene, make_index_scene, tiny_weights
from trackreid.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Kit:
    """Inputs shared by every case (built once per session)."""

    root: Path
    scene: Scene
    weights: Path  # osnet_tiny, trackreid safetensors
    pth: Path  # osnet_tiny, plain torch state dict
    features: Path  # an extract output folder of the scene
    mp4: Path  # the scene as H.264 (lossless)
    market: Path  # a tiny Market-1501-style dataset (query/, bounding_box_test/) of the scene's crops


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("bad_inputs")
    scene = make_index_scene(root / "scene", frames=30)
    weights = tiny_weights(root / "tiny.safetensors")
    pth = bf.torch_state_dict(root / "tiny.pth")
    features = root / "features"
    rc = main(["extract", "--source", str(scene.folder), "--tracks", str(scene.tracks), "--reid-model", str(weights),
               "--output-dir", str(features), "--backend", "torch", "--device", "cpu", "--quiet", "--save-crops",
               "--max-crops-per-track", "5", "--sampling", "even"])
    assert rc == 0
    mp4 = bf.frames_video(scene.folder, root / "scene.mp4", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p")
    market = root / "market"
    for split, tracks in (("query", (1, 2, 3)), ("bounding_box_test", (1, 2, 3))):
        (market / split).mkdir(parents=True)
        for tid in tracks:
            crops = sorted((features / "crops" / f"track_{tid:04d}").iterdir())
            for j, crop in enumerate(crops[:2] if split == "query" else crops[2:]):
                shutil.copy(crop, market / split / f"{tid:04d}_c{1 if split == 'query' else 2}s1_{j:06d}_00.jpg")
    return Kit(root, scene, weights, pth, features, mp4, market)


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
    assert len(errors) == 1, f"expected one error line, got: {lines}"
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
        return ["evaluate", "--reid-model", str(model), "--dataset", str(kit.market), "--device", "cpu"]
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


def _visualize_labels(kit: Kit, tmp: Path) -> list[str]:
    (tmp / "labels.csv").write_text("track,identity\n1,alice\ntwo,bob\n")
    return ["visualize", "--features", str(kit.features), "--output", str(tmp / "out" / "plot.png"),
            "--method", "pca", "--labels", str(tmp / "labels.csv")]


def _evaluate_missing(kit: Kit, tmp: Path) -> list[str]:
    return ["evaluate", "--reid-model", str(kit.weights), "--dataset", str(tmp / "no_dataset"), "--device", "cpu"]


def _evaluate_corrupt_image(kit: Kit, tmp: Path) -> list[str]:
    shutil.copytree(kit.market, tmp / "market")
    (tmp / "market" / "query" / "0002_c1s1_000001_00.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return ["evaluate", "--reid-model", str(kit.weights), "--dataset", str(tmp / "market"), "--device", "cpu"]


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
    _model_case("model-zip-of-text", lambda t: bf.zip_of_text(t / "model.pth"), ("model.pth", "zip", "checkpoint")),
    _model_case("model-tar-of-text", lambda t: bf.tar_of_text(t / "model.pth"), ("model.pth", "checkpoint")),
    _model_case("model-safetensors-wrong-tensors", lambda t: bf.safetensors_wrong(t / "model.safetensors"),
                ("model.safetensors", "not an OSNet checkpoint", "known")),
    _model_case("model-safetensors-garbage", _write("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{junk}"),
                ("model.safetensors", "safetensors")),
    _model_case("model-onnx-not-image", lambda t: bf.onnx_wrong_input(t / "model.onnx"),
                ("model.onnx", "image input")),
    _model_case("model-onnx-one-channel", lambda t: bf.onnx_one_channel(t / "model.onnx"),
                ("model.onnx", "3 channels")),
    _model_case("model-onnx-feature-map", lambda t: bf.onnx_feature_map(t / "model.onnx"),
                ("model.onnx", "embedding")),
    _model_case("model-onnx-garbage", _onnx_renamed, ("model.onnx", "ONNX")),
    _model_case("model-non-tensor-dict", lambda t: bf.torch_non_tensors(t / "model.pth"), ("model.pth", "tensors")),
    _model_case("model-unsafe-pickle", lambda t: bf.unsafe_pickle(t / "model.pth"),
                ("model.pth", "refused", "os.system")),
    _model_case("model-folder", lambda t: (t / "weights_dir").mkdir() or t / "weights_dir",
                ("weights_dir", "folder", "file")),
    _model_case("model-unknown-zoo-name", lambda t: Path("osnet_x9_msmt17"), ("osnet_x9_msmt17", "models list")),
    _model_case("models-info-text", lambda t: bf.text_file(t / "model.pth"), ("model.pth", "text file", "zoo name"), "models"),
    _model_case("models-info-tar", lambda t: bf.tar_of_text(t / "model.tar"), ("model.tar", "checkpoint"), "models"),
    _model_case("export-onnx-jpeg", lambda t: bf.jpeg_image(t / "model.pth"), ("model.pth", "image"), "export-onnx"),
    _model_case("evaluate-zip", lambda t: bf.zip_of_text(t / "model.pt"), ("model.pt", "checkpoint"), "evaluate"),
    # videos and frame folders
    _source_case("video-zero-frames", lambda k, t: bf.zero_frame_video(t / "empty.mp4"),
                 ("empty.mp4", "no frames")),
    _source_case("video-audio-only", lambda k, t: bf.audio_only(t / "voice.mp4"), ("voice.mp4", "no video stream")),
    _source_case("video-text-named-mp4", lambda k, t: _clip_text("not a video", t),
                 ("holiday.mp4", "cannot open as a video", "--source")),
    _source_case("video-unsupported-codec",
                 lambda k, t: bf.frames_video(k.scene.folder, t / "clip.mkv", "-c:v", "libaom-av1", "-cpu-used", "8"),
                 ("clip.mkv", "frame 1", "AV01", "re-encode")),
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
    commands = {c.make.__name__ for c in BAD}  # noqa: F841 - names differ; check the argv instead
    from trackreid.cli.main import SUBCOMMANDS

    assert len(BAD) >= 40
    names = " ".join(c.name for c in BAD)
    for cmd in SUBCOMMANDS:
        if cmd == "demo":
            continue
        key = {"export_onnx": "export", "prepare_data": "prepare"}.get(cmd, cmd)
        assert key in names or cmd in ("extract",), f"no bad-input case for {cmd}"
