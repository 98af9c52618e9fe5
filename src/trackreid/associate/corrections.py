"""A reviewer's corrections (``corrections.json``, downloaded from report.html): read, check, apply, report.

The file::

    {"must_link":   [["camA:12", "camB:7"], ...],     # the same person
     "cannot_link": [["camA:46", "camA:3"], ...],     # not the same person
     "confirmed":   [["camA:5", "camB:2", ...], ...], # identities checked as one person each
     "model_sha256": "..."}                           # the features the decisions were made on

A track is ``camera:track id`` (the camera's name as associated; the last ``:`` separates the id).
``trackreid associate --corrections FILE`` (or site.yml's ``associate: {corrections: FILE}``)
makes them exact constraints of the clustering, on whole clusters like the others
(:mod:`.constraints`): the tracks of a must-link (or of a confirmed identity) start in one
cluster, and no cluster ever holds both tracks of a cannot-link. A decision no longer applies
when one of its tracks is not in this association, or the features come from another model than
the file names; a must-link also does not apply when it would put two tracks of one camera that
share a moment, or the two tracks of a cannot-link, in one identity. Each such decision is
reported in one line and left out; :func:`describe_changes` says what each applied one changed
against the association without corrections.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.associate.tracks import TrackSet, split_key
from trackreid.errors import InputError
from trackreid.suggest import check_keys

KINDS = ("must_link", "cannot_link", "confirmed")
KEYS = (*KINDS, "model_sha256")
EXAMPLE = '{"must_link": [["camA:12", "camB:7"]], "cannot_link": [["camA:46", "camA:3"]], "confirmed": []}'


@dataclass(frozen=True)
class Corrections:
    """The decisions of one corrections file (track keys ``camera:id``), as read and checked."""

    must_link: tuple[tuple[str, str], ...] = ()
    cannot_link: tuple[tuple[str, str], ...] = ()
    confirmed: tuple[tuple[str, ...], ...] = ()
    model_sha256: str | None = None
    source: str = "corrections"

    def to_json(self) -> dict[str, Any]:
        """The file's content (what the page downloads)."""
        return {"must_link": [list(p) for p in self.must_link], "cannot_link": [list(p) for p in self.cannot_link],
                "confirmed": [list(g) for g in self.confirmed], "model_sha256": self.model_sha256}

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """For summary.json's config and the run's resume key: where from, what content (its hash), how many."""
        return {"file": self.source, "sha256": self.sha256(), **{k: len(getattr(self, k)) for k in KINDS}}


def _keys(value: Any, where: str, least: int, most: int | None) -> tuple[str, ...]:
    size = f"{least}" if most == least else f"at least {least}"
    if not isinstance(value, list) or len(value) < least or (most is not None and len(value) > most):
        raise InputError(f"{where}: expected a list of {size} tracks such as [\"camA:12\", \"camB:7\"], "
                         f"found {json.dumps(value)}")
    for v in value:
        if not isinstance(v, str) or split_key(v) is None:
            raise InputError(f"{where}: {v!r} is not a track; expected \"camera:track id\" such as \"camA:12\"")
    if len(set(value)) != len(value):
        raise InputError(f"{where}: names a track twice ({value!r}); expected {size} different tracks")
    return tuple(value)


def parse_corrections(data: Any, source: str) -> Corrections:
    """Check a parsed corrections file; one :class:`InputError` naming the file, the entry and the expected form."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a JSON object like {EXAMPLE}, found {type(data).__name__}")
    check_keys(source, data, KEYS)
    out: dict[str, Any] = {}
    for kind in KINDS:
        items = data.get(kind, [])
        if not isinstance(items, list):
            raise InputError(f"{source}: {kind!r} must be a list of lists of tracks, e.g. {EXAMPLE}")
        pair = kind != "confirmed"
        out[kind] = tuple(_keys(v, f"{source}: {kind}[{n}]", 2 if pair else 1, 2 if pair else None)
                          for n, v in enumerate(items, 1))
    sha = data.get("model_sha256")
    if sha is not None and not (isinstance(sha, str) and sha and all(c in "0123456789abcdef" for c in sha.lower())):
        raise InputError(f"{source}: model_sha256 {sha!r}: expected the hex digits of the features' model "
                         "(summary.json's model_sha256), or null")
    return Corrections(out["must_link"], out["cannot_link"], out["confirmed"], sha.lower() if sha else None, source)


def load_corrections(path: str | Path, where: str | None = None) -> Corrections:
    """Read and check a corrections file; ``where`` names the option that gave the path (for messages)."""
    p = Path(path)
    label = f"{where}: {p}" if where else str(p)
    if not p.is_file():
        raise InputError(f"{label}: no such corrections file (the corrections.json report.html downloads); "
                         "paths are relative to the file that names them")
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))  # a BOM (some editors write one) is not an error
    except UnicodeDecodeError:
        raise InputError(f"{label}: not a text file; expected JSON like {EXAMPLE}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{label}:{e.lineno}: malformed JSON ({e.msg}); expected JSON like {EXAMPLE}") from None
    return parse_corrections(data, str(p))


@dataclass
class Decision:
    """One decision of the file, resolved against an association's tracks."""

    kind: str  # one of KINDS
    tracks: tuple[str, ...]
    rows: tuple[int, ...] = ()  # TrackSet rows (empty when it does not apply)
    why_not: str | None = None  # why it does not apply (None: applied)
    changed: str = ""  # what it changed (describe_changes)

    def line(self) -> str:
        return f"{self.kind.replace('_', '-')} {' '.join(self.tracks)}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "tracks": list(self.tracks),
                             "applied": self.why_not is None}
        if self.why_not is not None:
            d["why_not"] = self.why_not
        else:
            d["changed"] = self.changed
        return d


@dataclass
class Resolved:
    """The decisions that apply, as row pairs for :class:`~.constraints.Constraints`."""

    decisions: list[Decision] = field(default_factory=list)
    # (row, row, index of its decision): a confirmed identity gives a chain of pairs
    must: list[tuple[int, int, int]] = field(default_factory=list)
    cannot: list[tuple[int, int]] = field(default_factory=list)

    def refuse(self, index: int, why: str) -> None:
        """A must-link the clustering could not honour (:func:`~.cluster.cluster_graph` calls it)."""
        if self.decisions[index].why_not is None:
            self.decisions[index].why_not = why


def resolve(corrections: Corrections, tracks: TrackSet) -> Resolved:
    """The decisions against ``tracks``: those that name a missing track or come from another model are left out."""
    rows = {(tracks.cameras[c], t): r for r, (c, t) in
            enumerate(zip(tracks.camera.tolist(), tracks.track_id.tolist(), strict=True))}
    model = tracks.meta.get("model_sha256")
    out = Resolved()
    other_model = (corrections.model_sha256 is not None and model is not None
                   and str(model).lower() != corrections.model_sha256)
    for kind in KINDS:
        for keys in getattr(corrections, kind):
            d = Decision(kind, keys)
            out.decisions.append(d)
            if other_model:
                d.why_not = (f"made on features of model {str(corrections.model_sha256)[:12]}, these are of model "
                             f"{str(model)[:12]}")
                continue
            missing = [k for k in keys if (split_key(k) or ("", 0)) not in rows]
            if missing:
                d.why_not = f"{', '.join(missing)} not among the associated tracks"
                continue
            d.rows = tuple(rows[split_key(k) or ("", 0)] for k in keys)
            index = len(out.decisions) - 1
            if kind == "cannot_link":
                out.cannot.append((d.rows[0], d.rows[1]))
            else:
                out.must += [(a, b, index) for a, b in zip(d.rows[:-1], d.rows[1:], strict=True)]
    return out


def describe_changes(resolved: Resolved, before: np.ndarray, after: np.ndarray) -> None:
    """Fill each applied decision's ``changed``: its tracks' identities in the association without
    corrections (``before``, labels 0..) and with them (``after``); global id = label + 1."""
    size_before = np.bincount(before) if len(before) else np.zeros(0, np.int64)
    for d in resolved.decisions:
        if d.why_not is not None:
            continue
        was = sorted({int(before[r]) + 1 for r in d.rows})
        now = sorted({int(after[r]) + 1 for r in d.rows})
        if d.kind == "cannot_link":
            d.changed = (f"split identity {was[0]} (uncorrected) into global ids {now[0]} and {now[1]}"
                         if len(was) == 1 else "none: already two identities")
        elif len(was) > 1:
            parts = " + ".join(f"{g} ({int(size_before[g - 1])} tracks)" for g in was)
            d.changed = f"joined identities {parts} (uncorrected) into global id {now[0]}"
        else:
            d.changed = "none: already one identity"


def summary(corrections: Corrections, resolved: Resolved) -> dict[str, Any]:
    """summary.json's ``corrections``: the file, and what became of each decision."""
    applied = sum(d.why_not is None for d in resolved.decisions)
    return {**corrections.describe(), "model_sha256": corrections.model_sha256, "applied": applied,
            "not_applied": len(resolved.decisions) - applied,
            "decisions": [d.to_dict() for d in resolved.decisions]}


def report_lines(fixes: Mapping[str, Any]) -> list[str]:
    """What the commands print (from summary.json's ``corrections``): the counts, then one line per
    decision that does not apply."""
    decisions: Sequence[dict[str, Any]] = fixes["decisions"]
    return [f"corrections {fixes['file']}: {fixes['applied']} applied, {fixes['not_applied']} not applied",
            *(f"correction not applied: {d['kind'].replace('_', '-')} {' '.join(d['tracks'])}: {d['why_not']}"
              for d in decisions if not d["applied"])]
