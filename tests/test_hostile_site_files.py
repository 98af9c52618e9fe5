"""Hostile site files: every bad site.yml, cameras.yml or topology file is refused before any work.

Each case runs the real CLI and asserts the bad-input contract (one ``trackreid <command>:
error:`` line naming the file and the key, a non-zero exit, no traceback) and that nothing was
started: the run's library entry point is replaced by one that fails the test, so the error
must come from reading the site file, and the output folder is never created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builders import make_index_scene, tiny_weights
from tests.test_bad_inputs import check_error, run_cli
from trackreid.cli.main import main


@dataclass
class Kit:
    root: Path
    weights: Path
    features: dict[str, Path]  # camera -> extract output folder


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("hostile")
    weights = tiny_weights(root / "tiny.safetensors")
    features = {}
    for cam in ("camA", "camB"):
        scene = make_index_scene(root / cam, frames=12, tracks={1: (1, 12), 2: (3, 10)})
        features[cam] = root / f"{cam}-features"
        assert main(["extract", "--source", str(scene.video), "--tracks", str(scene.tracks), "--reid-model",
                     str(weights), "--output-dir", str(features[cam]), "--backend", "torch", "--device", "cpu",
                     "--quiet"]) == 0
    return Kit(root, weights, features)


def _site(kit: Kit, body: str = "", cameras: str | None = None, model: bool = True) -> str:
    cams = cameras if cameras is not None else (
        "cameras:\n"
        f"  - {{name: camA, video: {kit.root}/camA/scene.mkv, tracks: {kit.root}/camA/tracks.txt}}\n"
        f"  - {{name: camB, video: {kit.root}/camB/scene.mkv, tracks: {kit.root}/camB/tracks.txt}}\n")
    return (f"reid_model: {kit.weights}\n" if model else "") + cams + body


TOPO = "links:\n  - {cameras: [camA, camB], transit: [2, 30]}\n"


@dataclass
class Case:
    name: str
    site: Callable[[Kit], str | bytes]  # the site.yml text
    needles: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()  # other files beside site.yml (name, text)


def _cam(kit: Kit, **entry: str) -> str:
    video = entry.pop("video", f"{kit.root}/camA/scene.mkv")
    tracks = entry.pop("tracks", f"{kit.root}/camA/tracks.txt")
    extra = "".join(f", {k}: {v}" for k, v in entry.items())
    return f"cameras:\n  - {{name: camA, video: {video}, tracks: {tracks}{extra}}}\n"


SITE_CASES = [
    Case("key-typo", lambda k: _site(k, "max_crop_per_track: 5\n"), ("site.yml", "max_crop_per_track",
                                                                     "max_crops_per_track")),
    Case("associate-key-typo", lambda k: _site(k, "associate: {treshold: 0.5}\n"),
         ("site.yml", "associate", "treshold", "did you mean 'threshold'")),
    Case("associate-gap-word", lambda k: _site(k, "associate: {revisit_gap: soon}\n"),
         ("site.yml", "revisit_gap", "'soon'", "none")),
    Case("associate-threshold-word", lambda k: _site(k, "associate: {threshold: high}\n"),
         ("site.yml", "threshold", "'high'", "auto")),
    Case("associate-k-huge", lambda k: _site(k, "associate: {k: 100000000}\n"), ("site.yml", "k", "10000")),
    Case("associate-k-fraction", lambda k: _site(k, "associate: {k: 2.5}\n"), ("site.yml", "k", "whole number")),
    Case("associate-linkage", lambda k: _site(k, "associate: {linkage: avg}\n"), ("site.yml", "linkage", "average")),
    Case("associate-motion-gate-word", lambda k: _site(k, "associate: {motion_gate: maybe}\n"),
         ("site.yml", "motion_gate", "true or false")),
    Case("associate-not-a-mapping", lambda k: _site(k, "associate: [1, 2]\n"), ("site.yml", "associate", "mapping")),
    Case("topology-missing", lambda k: _site(k, "associate: {topology: nowhere.yml}\n"),
         ("nowhere.yml", "no such topology file", "relative")),
    Case("topology-unknown-camera", lambda k: _site(k, "associate: {topology: topo.yml}\n"),
         ("topo.yml", "camC", "camA"), (("topo.yml", TOPO.replace("camB", "camC")),)),
    Case("topology-malformed-yaml", lambda k: _site(k, "associate: {topology: topo.yml}\n"),
         ("topo.yml", "YAML"), (("topo.yml", "links: [ {cameras: [camA, camB\n"),)),
    Case("topology-reversed-transit", lambda k: _site(k, "associate: {topology: topo.yml}\n"),
         ("topo.yml", "larger"), (("topo.yml", TOPO.replace("[2, 30]", "[30, 2]")),)),
    Case("topology-no-links", lambda k: _site(k, "associate: {topology: topo.yml}\n"),
         ("topo.yml", "links"), (("topo.yml", "cameras: [camA]\n"),)),
    Case("corrections-missing", lambda k: _site(k, "associate: {corrections: nowhere.json}\n"),
         ("site.yml", "corrections", "nowhere.json", "no such corrections file", "relative")),
    Case("corrections-malformed-json", lambda k: _site(k, "associate: {corrections: fixes.json}\n"),
         ("fixes.json", "malformed JSON", "must_link"), (("fixes.json", '{"must_link": [["camA:1", '),)),
    Case("corrections-not-a-pair", lambda k: _site(k, "associate: {corrections: fixes.json}\n"),
         ("fixes.json", "cannot_link[1]", "2 tracks"), (("fixes.json", '{"cannot_link": [["camA:1"]]}'),)),
    Case("corrections-not-a-path", lambda k: _site(k, "associate: {corrections: 5}\n"),
         ("site.yml", "corrections", "expected a corrections file")),
    Case("video-missing", lambda k: _site(k, cameras=_cam(k, video="nowhere.mkv")),
         ("site.yml", "camera 1", "video", "no such video")),
    Case("tracks-missing", lambda k: _site(k, cameras=_cam(k, tracks="nowhere.txt")),
         ("site.yml", "camera 1", "tracks", "no such tracks")),
    Case("camera-named-twice", lambda k: _site(k, cameras=_cam(k) + _cam(k)[len("cameras:\n"):]),
         ("site.yml", "camA", "unique")),
    Case("camera-name-escapes", lambda k: _site(k, cameras=_cam(k).replace("name: camA", "name: ../x")),
         ("site.yml", "'../x'", "output folder")),
    Case("camera-name-slash", lambda k: _site(k, cameras=_cam(k).replace("name: camA", "name: a/b")),
         ("site.yml", "'a/b'", "letters")),
    Case("camera-without-name", lambda k: _site(k, cameras=_cam(k).replace("name: camA, ", "")),
         ("site.yml", "camera 1", "'name'")),
    Case("camera-key-typo", lambda k: _site(k, cameras=_cam(k).replace("video:", "vidoe:")),
         ("site.yml", "vidoe", "'video'")),
    Case("cameras-empty", lambda k: _site(k, cameras="cameras: []\n"), ("site.yml", "no cameras")),
    Case("cameras-not-a-list", lambda k: _site(k, cameras="cameras: camA\n"), ("site.yml", "'cameras' list")),
    Case("crops-huge", lambda k: _site(k, "max_crops_per_track: 1000000000000\n"),
         ("site.yml", "max_crops_per_track", "out of range")),
    Case("crops-fraction", lambda k: _site(k, "max_crops_per_track: 2.5\n"),
         ("site.yml", "max_crops_per_track", "whole number")),
    Case("batch-zero", lambda k: _site(k, "batch_size: 0\n"), ("site.yml", "batch_size", "out of range")),
    Case("fps-negative", lambda k: _site(k, cameras=_cam(k, fps="-5")), ("site.yml", "fps", "out of range")),
    Case("fps-nan", lambda k: _site(k, cameras=_cam(k, fps=".nan")), ("site.yml", "fps", "number")),
    Case("time-offset-word", lambda k: _site(k, cameras=_cam(k, time_offset="soon")),
         ("site.yml", "time_offset", "number")),
    Case("save-crops-word", lambda k: _site(k, "save_crops: yes please\n"),
         ("site.yml", "save_crops", "true or false")),
    Case("sampling-unknown", lambda k: _site(k, "sampling: random\n"), ("site.yml", "sampling", "quality")),
    Case("backend-unknown", lambda k: _site(k, "backend: tensorrt\n"), ("site.yml", "backend", "onnx")),
    Case("device-unknown", lambda k: _site(k, "device: gpu\n"), ("site.yml", "device", "cuda")),
    Case("visibility-above-one", lambda k: _site(k, "min_visibility: 2\n"), ("site.yml", "min_visibility", "1")),
    Case("tracks-format-unknown", lambda k: _site(k, "tracks_format: xml\n"), ("site.yml", "tracks_format", "mot")),
    Case("model-missing", lambda k: _site(k, model=False) + "reid_model: nowhere.pth\n",
         ("site.yml", "reid_model", "no such weights")),
    Case("model-absent", lambda k: _site(k, model=False), ("site.yml", "no reid_model")),
    Case("yaml-syntax", lambda k: _site(k, "sampling: [even\n"), ("site.yml", "YAML")),
    Case("binary", lambda k: bytes(range(128, 256)) * 4, ("site.yml", "not a text file")),
]


@pytest.mark.parametrize("case", SITE_CASES, ids=[c.name for c in SITE_CASES])
def test_a_bad_site_file_is_refused_before_any_work(case: Case, kit: Kit, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import trackreid.run

    def no_work(*a: object, **kw: object) -> None:
        pytest.fail("the run started before the site file was checked")

    monkeypatch.setattr(trackreid.run, "run_site", no_work)
    site = tmp_path / "site.yml"
    text = case.site(kit)
    site.write_bytes(text if isinstance(text, bytes) else text.encode())
    for name, content in case.files:
        (tmp_path / name).write_text(content)
    out = tmp_path / "out"
    rc, _, err = run_cli(["run", "--site", str(site), "--output-dir", str(out)], capsys)
    check_error(rc, err, "run", case.needles)
    assert not out.exists()


def test_good_spellings_of_off_and_relative_topology_are_read(kit: Kit, tmp_path: Path) -> None:
    from trackreid.run import read_site

    (tmp_path / "topo.yml").write_text(TOPO)
    site = tmp_path / "site.yml"
    site.write_text(_site(kit, "associate: {revisit_gap: none, max_gap: null, topology: topo.yml}\n"))
    config = read_site(site).options.associate
    assert config.revisit_gap is None and config.max_gap is None
    assert isinstance(config.topology, dict) and config.topology["_source"] == str(tmp_path / "topo.yml")


def test_corrections_path_is_relative_to_the_site_file_and_its_content_keys_the_association(
        kit: Kit, tmp_path: Path) -> None:
    from trackreid.run import read_site

    (tmp_path / "fixes.json").write_text('{"must_link": [["camA:1", "camB:2"]]}')
    site = tmp_path / "site.yml"
    site.write_text(_site(kit, "associate: {corrections: fixes.json}\n"))
    first = read_site(site).options.associate
    assert first.corrections is not None and first.to_dict()["corrections"]["file"] == str(tmp_path / "fixes.json")
    assert first.to_dict()["corrections"]["must_link"] == 1
    (tmp_path / "fixes.json").write_text('{"must_link": [["camA:1", "camB:1"]]}')
    second = read_site(site).options.associate
    assert second.to_dict()["corrections"]["sha256"] != first.to_dict()["corrections"]["sha256"]


CAMERAS_CASES = [
    Case("cameras-file-key-typo",
         lambda k: f"cameras:\n  - {{name: camA, features: {k.features['camA']}}}\nlinkz: []\n",
         ("cameras.yml", "linkz", "links")),
    Case("cameras-file-camera-twice", lambda k: "cameras:\n" + "".join(
        f"  - {{name: camA, features: {k.features[c]}}}\n" for c in ("camA", "camB")), ("camA", "twice")),
    Case("cameras-file-features-missing", lambda k: "cameras:\n  - {name: camA, features: nowhere}\n",
         ("nowhere", "no such")),
    Case("cameras-file-fps-word",
         lambda k: f"cameras:\n  - {{name: camA, features: {k.features['camA']}, fps: many}}\n",
         ("cameras.yml", "fps", "number")),
    Case("cameras-file-time-offset-inf", lambda k: (
        f"cameras:\n  - {{name: camA, features: {k.features['camA']}, time_offset: .inf}}\n"),
         ("cameras.yml", "time_offset", "number")),
    Case("cameras-file-links-and-topology-auto", lambda k: "cameras:\n" + "".join(
        f"  - {{name: {c}, features: {k.features[c]}}}\n" for c in ("camA", "camB")) + TOPO,
         ("cameras.yml", "--topology auto", "once")),
]


@pytest.mark.parametrize("case", CAMERAS_CASES, ids=[c.name for c in CAMERAS_CASES])
def test_a_bad_cameras_file_is_refused(case: Case, kit: Kit, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    cameras = tmp_path / "cameras.yml"
    text = case.site(kit)
    cameras.write_text(text if isinstance(text, str) else text.decode())
    out = tmp_path / "out"
    extra = ["--topology", "auto"] if "topology-auto" in case.name else []
    rc, _, err = run_cli(["associate", "--cameras", str(cameras), "--output-dir", str(out), *extra], capsys)
    check_error(rc, err, "associate", case.needles)
    assert not out.exists()


def test_the_battery_is_large() -> None:
    assert len(SITE_CASES) + len(CAMERAS_CASES) >= 25
