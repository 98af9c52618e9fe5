"""What extract records in track_metadata.json, and every later step reading it back the same way.

* How the tracks file was read (frame offset, minimum visibility, format) is recorded, and
  associate (motion gate, global_tracks/, mtmc.txt) reads the file exactly so: a tracks file
  counting frames from 0 is associated like one counting from 1.
* ``extract --overwrite`` leaves no crops of an earlier run behind.
* Crop paths in the metadata are relative and stay inside their folder: an absolute path or
  ``..`` is refused by associate's report and by adapt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.builders import Scene, make_index_scene, tiny_weights
from tests.test_bad_inputs import check_error, run_cli
from trackreid.cli.main import main
from trackreid.errors import InputError


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    root = tmp_path_factory.mktemp("meta")
    return make_index_scene(root / "scene", frames=20, tracks={1: (1, 20), 2: (3, 12), 3: (14, 20)}), \
        tiny_weights(root / "tiny.safetensors")


def _extract(scene: Scene, weights: Path, out: Path, tracks: Path | None = None, *extra: str) -> None:
    assert main(["extract", "--source", str(scene.video), "--tracks", str(tracks or scene.tracks), "--reid-model",
                 str(weights), "--output-dir", str(out), "--backend", "torch", "--device", "cpu", "--quiet",
                 *extra]) == 0


def test_the_reading_is_recorded_and_associate_reads_the_file_the_same_way(scene: tuple[Scene, Path],
                                                                           tmp_path: Path) -> None:
    sc, weights = scene
    zero = tmp_path / "zero.txt"
    zero.write_text("".join(f"{int(r.split(',', 1)[0]) - 1},{r.split(',', 1)[1]}\n"
                            for r in sc.tracks.read_text().splitlines()))
    one_out, zero_out = tmp_path / "one", tmp_path / "zero"
    _extract(sc, weights, one_out)
    _extract(sc, weights, zero_out, zero, "--frame-offset", "1")
    meta = json.loads((zero_out / "track_metadata.json").read_text())
    assert meta["tracks_file"] == str(zero.absolute())
    assert meta["tracks_reading"] == {"frame_offset": 1, "min_visibility": 0.0, "format": "auto"}
    for name, features in (("one", one_out), ("zero", zero_out)):
        assert main(["associate", "--features", str(features), "--camera", "cam", "--output-dir",
                     str(tmp_path / f"assoc-{name}"), "--fps", "25", "-q"]) == 0
    ids = [json.loads((tmp_path / f"assoc-{n}" / "global_ids.json").read_text()) for n in ("one", "zero")]
    assert ids[0] == ids[1]
    ours = (tmp_path / "assoc-zero" / "global_tracks" / "cam.txt").read_text().splitlines()
    theirs = (tmp_path / "assoc-one" / "global_tracks" / "cam.txt").read_text().splitlines()
    assert [int(r.split(",")[0]) + 1 for r in ours] == [int(r.split(",")[0]) for r in theirs]  # the file's numbering


def test_metadata_without_a_recorded_reading_falls_back_to_the_extract_command(scene: tuple[Scene, Path],
                                                                               tmp_path: Path) -> None:
    from trackreid.io.extract_meta import read_metadata, tracks_reading

    sc, weights = scene
    out = tmp_path / "old"
    _extract(sc, weights, out, None, "--frame-offset", "0", "--min-visibility", "0.25")
    meta = read_metadata(out)
    del meta["tracks_reading"]  # as written before the reading was recorded
    reading = tracks_reading(meta, out)
    assert reading is not None and (reading.frame_offset, reading.min_visibility) == (0, 0.25)
    meta["tracks_reading"] = {"frame_offset": "one"}
    with pytest.raises(InputError, match="tracks_reading"):
        tracks_reading(meta, out)


def test_overwrite_without_crops_removes_the_earlier_crops(scene: tuple[Scene, Path], tmp_path: Path) -> None:
    sc, weights = scene
    out = tmp_path / "out"
    _extract(sc, weights, out, None, "--save-crops")
    assert (out / "crops").is_dir()
    _extract(sc, weights, out, None, "--overwrite")
    assert not (out / "crops").exists()


@pytest.mark.parametrize("bad", ["/etc/hostname", "crops/../../secret.jpg", "../x.jpg"])
def test_crop_paths_that_leave_the_folder_are_refused(scene: tuple[Scene, Path], tmp_path: Path, bad: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    sc, weights = scene
    out = tmp_path / "features"
    _extract(sc, weights, out, None, "--save-crops")
    meta_path = out / "track_metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["tracks"]["1"]["crops"][0] = bad
    meta_path.write_text(json.dumps(meta))
    rc, _, err = run_cli(["associate", "--features", str(out), "--output-dir", str(tmp_path / "a"), "--fps", "25"],
                         capsys)
    check_error(rc, err, "associate", ("track_metadata.json", bad, "leaves the extract folder"))
    rc, _, err = run_cli(["adapt", "--features", str(out), "--features", str(out), "--reid-model", str(weights),
                          "--output-dir", str(tmp_path / "adapt")], capsys)
    check_error(rc, err, "adapt", ("track_metadata.json", bad, "leaves the extract folder"))
    shutil.rmtree(tmp_path / "adapt", ignore_errors=True)


def test_an_unknown_frame_rate_names_the_constraint_that_needs_it(scene: tuple[Scene, Path], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    sc, weights = scene
    out = tmp_path / "frames"  # a frame folder without seqinfo.ini: no frame rate
    assert main(["extract", "--source", str(sc.folder), "--tracks", str(sc.tracks), "--reid-model", str(weights),
                 "--output-dir", str(out), "--backend", "torch", "--device", "cpu", "--quiet"]) == 0
    rc, _, err = run_cli(["associate", "--features", str(out), "--output-dir", str(tmp_path / "a")], capsys)
    msg = check_error(rc, err, "associate", ("frame rate", "revisit gap", "--revisit-gap none", "--fps"))
    assert "--max-gap" not in msg and "--topology" not in msg


def test_seconds_frame_inverts_frame_seconds() -> None:
    from trackreid.io.extract_meta import frame_seconds, seconds_frame

    for frame, fps, offset in ((1, 25.0, 0.0), (250, 29.97, 12.5), (7, None, 3.0), (1000, 10.0, -4.0)):
        assert seconds_frame(float(frame_seconds(frame, fps, offset)), fps, offset) == frame
