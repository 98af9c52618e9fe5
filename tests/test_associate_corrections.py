"""A reviewer's corrections (corrections.json): read with one clear error per malformed file, resolved
against the tracks (a missing track or another model: not applied, said why), and exact constraints of the
clustering: every must-link and cannot-link holds after re-association, on random inputs (property test);
``trackreid associate --corrections`` end to end on real features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.associate_sites import build_two_cameras
from tests.test_associate_constraints import violations
from trackreid.associate.cluster import cluster_graph
from trackreid.associate.constraints import Constraints
from trackreid.associate.corrections import Corrections, load_corrections, parse_corrections, resolve
from trackreid.associate.graph import build_graph
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.tracks import TrackSet
from trackreid.cli.main import main
from trackreid.errors import InputError


def _key(ts: TrackSet, row: int) -> str:
    return f"{ts.cameras[int(ts.camera[row])]}:{int(ts.track_id[row])}"


def _cluster(ts: TrackSet, corr: Corrections, threshold: float, revisit_gap: float | None):  # type: ignore[no-untyped-def]
    resolved = resolve(corr, ts)
    cons = Constraints(ts, revisit_gap=revisit_gap, cannot=resolved.cannot, must=resolved.must)
    result = cluster_graph(ts, build_graph(ts, 10), threshold, cons)
    return resolved, result


@st.composite
def corrected_sites(draw, consistent: bool):  # type: ignore[no-untyped-def]
    n = draw(st.integers(6, 60))
    cams = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    ts, ident = synthetic_tracks(n, cams, tracks_per_identity=draw(st.sampled_from([2.0, 4.0, 8.0])), seed=seed)
    rng = np.random.default_rng(seed)
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, n, (draw(st.integers(0, 12)), 2)) if a != b]
    if consistent:  # as a reviewer answering from the truth would: one person -> must, two -> cannot
        must = [(a, b) for a, b in pairs if ident[a] == ident[b]]
        cannot = [(a, b) for a, b in pairs if ident[a] != ident[b]]
        groups = [tuple(np.flatnonzero(ident == ident[a]).tolist()) for a in rng.integers(0, n, 2)]
    else:  # anything: decisions may contradict each other and the constraints
        split = len(pairs) // 2
        must, cannot = pairs[:split], pairs[split:]
        groups = [tuple(sorted({int(x) for x in rng.integers(0, n, 3)}))]
    corr = Corrections(tuple((_key(ts, a), _key(ts, b)) for a, b in must),
                       tuple((_key(ts, a), _key(ts, b)) for a, b in cannot),
                       tuple(tuple(_key(ts, r) for r in g) for g in groups))
    threshold = draw(st.sampled_from([0.0, 0.2, 0.4, 0.9]))
    revisit = draw(st.sampled_from([None, 5.0]))
    return ts, corr, threshold, revisit


def _holds(ts: TrackSet, labels: np.ndarray, resolved, must_all: bool) -> None:  # type: ignore[no-untyped-def]
    for d in resolved.decisions:
        assert d.rows, d  # every track exists and no model is named: every decision is resolved
        same = {int(labels[r]) for r in d.rows}
        if d.kind == "cannot_link":
            assert len(same) == 2, d
        elif d.why_not is None:
            assert len(same) == 1, d
        else:
            assert not must_all, d
            assert d.why_not.startswith("would put in one identity"), d
    assert not [v for v in violations(ts, labels, None, None) if v.startswith("overlap")]


@given(corrected_sites(consistent=True))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truthful_decisions_all_hold(case) -> None:  # type: ignore[no-untyped-def]
    ts, corr, threshold, revisit = case
    resolved, result = _cluster(ts, corr, threshold, revisit)
    assert result.refused == {}  # a person's tracks never share a moment; a cannot-link never joins one person
    for index, reason in result.refused.items():
        resolved.refuse(index, reason)
    _holds(ts, result.labels, resolved, must_all=True)


@given(corrected_sites(consistent=False))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_decisions_cannot_links_always_hold_must_links_unless_refused(case) -> None:  # type: ignore[no-untyped-def]
    ts, corr, threshold, revisit = case
    resolved, result = _cluster(ts, corr, threshold, revisit)
    for index, reason in result.refused.items():
        assert reason in ("same_camera_overlap", "cannot_link")
        resolved.refuse(index, f"would put in one identity two tracks that ({reason})")
    _holds(ts, result.labels, resolved, must_all=False)


def test_a_must_link_joins_what_the_threshold_keeps_apart_and_a_cannot_link_splits() -> None:
    ts, ident = synthetic_tracks(40, 4, tracks_per_identity=4, seed=3)
    graph = build_graph(ts, 10)
    plain = cluster_graph(ts, graph, 0.3, Constraints(ts)).labels
    together = [r for r in range(len(ts)) if (plain == plain[r]).sum() > 1][:1]
    a = together[0]
    b = int(next(r for r in range(len(ts)) if r != a and plain[r] == plain[a]))
    far = int(next(r for r in range(len(ts)) if plain[r] != plain[a] and ts.camera[r] != ts.camera[a]))
    corr = Corrections(must_link=((_key(ts, a), _key(ts, far)),), cannot_link=((_key(ts, a), _key(ts, b)),))
    resolved = resolve(corr, ts)
    fixed = cluster_graph(ts, graph, 0.3, Constraints(ts, cannot=resolved.cannot, must=resolved.must)).labels
    assert fixed[a] == fixed[far] and fixed[a] != fixed[b]
    # everything no decision touches stays as it was: clusters of tracks away from a, b and far are unchanged
    touched = {int(plain[x]) for x in (a, b, far)} | {int(fixed[x]) for x in (a, b, far)}
    for r in range(len(ts)):
        if int(plain[r]) not in touched and int(fixed[r]) not in touched:
            assert set(np.flatnonzero(plain == plain[r])) == set(np.flatnonzero(fixed == fixed[r]))


def test_decisions_that_no_longer_apply_say_why() -> None:
    ts, _ = synthetic_tracks(12, 2, seed=0)
    ts.meta["model_sha256"] = "ab" * 32
    k0, k1 = _key(ts, 0), _key(ts, 1)
    gone = Corrections(must_link=((k0, "cam1:999"),), cannot_link=((k0, k1),), model_sha256="ab" * 32)
    r = resolve(gone, ts)
    assert [d.why_not for d in r.decisions] == ["cam1:999 not among the associated tracks", None]
    assert r.must == [] and r.cannot == [(0, 1)]
    other = resolve(Corrections(cannot_link=((k0, k1),), model_sha256="cd" * 32), ts)
    assert other.cannot == [] and "made on features of model cdcdcdcdcdcd" in str(other.decisions[0].why_not)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"must_links": []}', "unknown key 'must_links' (did you mean 'must_link'?)"),
    ('{"must_link": [["camA:1"]]}', "must_link[1]: expected a list of 2 tracks"),
    ('{"cannot_link": [["camA:1", "camB"]]}', "'camB' is not a track; expected \"camera:track id\""),
    ('{"cannot_link": [["camA:1", "camA:1"]]}', "names a track twice"),
    ('{"confirmed": "camA:1"}', "'confirmed' must be a list"),
    ('{"model_sha256": 12}', "model_sha256 12: expected the hex digits"),
])
def test_malformed_file_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "corrections.json"
    p.write_text(content)
    with pytest.raises(InputError) as e:
        load_corrections(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_round_trip_of_the_file() -> None:
    data = {"must_link": [["a:b:1", "c:2"]], "cannot_link": [], "confirmed": [["c:3"]], "model_sha256": "00ff"}
    corr = parse_corrections(data, "x.json")
    assert corr.to_json() == data
    assert corr.must_link == (("a:b:1", "c:2"),)  # a camera name may hold ':'; the last one splits


# ------------------------------------------------------------------ the command, on real features

@pytest.fixture(scope="module")
def site(tmp_path_factory, cuhk03_features, msmt_pth):  # type: ignore[no-untyped-def]
    q, g, qf, gf = cuhk03_features(msmt_pth)
    root = tmp_path_factory.mktemp("corrections_site")
    folders, truth = build_two_cameras(root, q, g, qf, gf, seed=1)
    return folders, truth


def _associate(capsys, folders: list[Path], out: Path, *extra: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    rc = main(["associate", "--quiet", "--features", str(folders[0]), "--camera", "camA", "--features",
               str(folders[1]), "--camera", "camB", "--output-dir", str(out), *extra])
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_cli_corrections_hold_and_are_reported(site, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folders, _ = site
    rc, _, err = _associate(capsys, folders, tmp_path / "plain")
    assert rc == 0, err
    ids = json.loads((tmp_path / "plain" / "global_ids.json").read_text())
    model = json.loads((tmp_path / "plain" / "summary.json").read_text())["model_sha256"]
    linked = next(g for g in ids["camA"].values() if g in ids["camB"].values())
    split_a = next(f"camA:{t}" for t, g in ids["camA"].items() if g == linked)
    split_b = next(f"camB:{t}" for t, g in ids["camB"].items() if g == linked)
    alone_a = next(f"camA:{t}" for t, g in ids["camA"].items() if g not in ids["camB"].values())
    alone_b = next(f"camB:{t}" for t, g in ids["camB"].items() if g not in ids["camA"].values())
    fixes = tmp_path / "corrections.json"
    fixes.write_text(json.dumps({"must_link": [[alone_a, alone_b], ["camA:9999", alone_b]],
                                 "cannot_link": [[split_a, split_b]], "confirmed": [], "model_sha256": model}))
    rc, stdout, err = _associate(capsys, folders, tmp_path / "fixed", "--corrections", str(fixes))
    assert rc == 0, err
    new = json.loads((tmp_path / "fixed" / "global_ids.json").read_text())

    def gid(key: str) -> int:
        cam, tid = key.split(":")
        return int(new[cam][tid])

    assert gid(alone_a) == gid(alone_b) and gid(split_a) != gid(split_b)
    assert f"corrections {fixes}: 2 applied, 1 not applied" in stdout
    assert f"correction not applied: must-link camA:9999 {alone_b}: camA:9999 not among the associated tracks" \
        in stdout
    s = json.loads((tmp_path / "fixed" / "summary.json").read_text())
    decisions = s["corrections"]["decisions"]
    assert [d["applied"] for d in decisions] == [True, False, True]
    assert decisions[0]["changed"].startswith("joined identities ")
    assert decisions[2]["changed"].startswith(f"split identity {linked} (uncorrected)")
    assert s["config"]["corrections"]["must_link"] == 2 and len(s["config"]["corrections"]["sha256"]) == 64
    page = (tmp_path / "fixed" / "report.html").read_text()
    assert "split identity" in page and "camA:9999 not among the associated tracks" in page


def test_cli_malformed_corrections_one_line_nothing_written(site, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folders, _ = site
    bad = tmp_path / "corrections.json"
    bad.write_text('{"must_link": [["camA:1", "camB:2", "camB:3"]]}')
    rc, stdout, err = _associate(capsys, folders, tmp_path / "out", "--corrections", str(bad))
    assert rc != 0
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "must_link[1]: expected a list of 2 tracks" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_must_linked_cluster_that_breaks_the_revisit_gap_inside_still_grows() -> None:
    """A merge checks only the steps it adds: the reviewer's must-link A1-A2 (8 s apart in one camera, over
    the 3 s revisit gap) does not stop A3 (1 s after A2) nor B1 from joining them."""
    rng = np.random.default_rng(0)
    person = rng.standard_normal(64)
    others = rng.standard_normal((8, 64))
    feats = np.vstack([person + 0.1 * rng.standard_normal((4, 64)), others])
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    camera = [0, 0, 0, 1] + [0, 1] * 4
    start = [0.0, 10.0, 13.0, 20.0] + [30.0 + 5 * k for k in range(8)]
    ts = TrackSet(["camA", "camB"], np.array(camera), np.arange(1, 13), np.array(start), np.array(start) + 2.0,
                  feats.astype(np.float32))
    graph = build_graph(ts, 11)
    plain = cluster_graph(ts, graph, 0.5, Constraints(ts, revisit_gap=3.0)).labels
    assert plain[0] != plain[1]  # the revisit gap keeps A1 and A2 apart
    fixed = cluster_graph(ts, graph, 0.5, Constraints(ts, revisit_gap=3.0, must=[(0, 1, 0)])).labels
    assert fixed[0] == fixed[1] == fixed[2] == fixed[3]
    assert len(set(fixed[4:].tolist()) & {int(fixed[0])}) == 0
