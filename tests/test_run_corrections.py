"""`trackreid run` with ``associate: {corrections: FILE}`` in site.yml: the file is read relative to site.yml,
its decisions hold, a decision that no longer applies is printed in one line, and the association is redone
when (and only when) the file's content changes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sites import make_site
from trackreid.cli.main import main


def _run(capsys, site: Path, out: Path) -> tuple[str, dict[str, dict[str, int]]]:  # type: ignore[no-untyped-def]
    assert main(["run", "--site", str(site), "--output-dir", str(out), "--quiet", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    return printed, json.loads((out / "associate" / "global_ids.json").read_text())


def test_site_corrections_hold_and_key_the_association(tmp_path: Path, msmt_pth: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    site = make_site(tmp_path / "site", msmt_pth, cameras=2, seconds=2.0)
    out = tmp_path / "out"
    _, ids = _run(capsys, site, out)
    (a, ga), (b, gb) = next(((f"cam1:{t}", g), (f"cam2:{u}", h)) for t, g in ids["cam1"].items()
                            for u, h in ids["cam2"].items() if g != h)
    fixes = site.parent / "review" / "corrections.json"
    fixes.parent.mkdir()
    fixes.write_text(json.dumps({"must_link": [[a, b], ["cam1:999", b]]}))
    text = site.read_text() + "associate: {corrections: review/corrections.json}\n"
    site.write_text(text)
    printed, ids = _run(capsys, site, out)
    assert ids["cam1"][a.split(":")[1]] == ids["cam2"][b.split(":")[1]]
    assert "ASSOCIATION: done" in printed
    assert f"corrections {fixes}: 1 applied, 1 not applied" in printed
    assert f"correction not applied: must-link cam1:999 {b}: cam1:999 not among the associated tracks" in printed
    printed, _ = _run(capsys, site, out)
    assert "ASSOCIATION: skipped (unchanged)" in printed
    fixes.write_text(json.dumps({"cannot_link": [[a, b]]}))
    printed, ids = _run(capsys, site, out)
    assert "ASSOCIATION: done" in printed and ids["cam1"][a.split(":")[1]] != ids["cam2"][b.split(":")[1]]
    summary = json.loads((out / "associate" / "summary.json").read_text())
    assert summary["corrections"]["decisions"][0]["kind"] == "cannot_link"
