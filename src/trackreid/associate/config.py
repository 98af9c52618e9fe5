"""How to associate: :class:`AssociateConfig`, its defaults and its checks (one home for each).

The command line (``trackreid associate``), ``site.yml``'s ``associate:`` mapping and the
library all build the same object; :meth:`AssociateConfig.from_mapping` reads a mapping with
one clear error per bad key or value, naming the file and the key. This module imports nothing
heavy, so ``trackreid associate --help`` shows the defaults without loading numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackreid.errors import InputError
from trackreid.suggest import did_you_mean

if TYPE_CHECKING:
    from trackreid.associate.corrections import Corrections

#: Default seconds between a person's tracks in one camera (docs/associate.md, "Revisit gap").
REVISIT_GAP: float | None = 3.0
#: Default ``same_camera_margin`` (docs/associate.md, "Same-camera margin").
SAME_CAMERA_MARGIN = 0.0
#: How ``threshold="auto"`` cuts (:mod:`.threshold`).
METHODS = ("two-sided", "chance", "bayes", "mixture")
#: Cluster similarity from the edges between two clusters (:mod:`.cluster`).
LINKAGES = ("average", "single", "complete")
MAX_K = 10_000

#: The command-line flag of each field, for messages about values given there.
FLAGS = {"threshold": "--threshold", "threshold_method": "--threshold-method", "topology": "--topology",
         "max_gap": "--max-gap", "revisit_gap": "--revisit-gap", "fps": "--fps", "k": "--k",
         "linkage": "--linkage", "debias": "--no-debias", "rerank": "--rerank", "set_similarity": "--set-similarity",
         "centralize": "--nfc", "motion_gate": "--no-motion-gate", "hub_k": "--hub-k",
         "same_camera_margin": "--same-camera-margin", "corrections": "--corrections", "window": "--window"}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(values: Mapping[str, Any], name: Callable[[str], str]) -> None:
    """Every value in range; ``name(field)`` labels a field in the message (a flag or file: key)."""
    t = values["threshold"]
    if not (t == "auto" if isinstance(t, str) else _is_number(t)):
        raise InputError(f"{name('threshold')} {t!r}: expected 'auto' or a similarity such as 0.6")
    if values["threshold_method"] not in METHODS:
        raise InputError(f"{name('threshold_method')} {values['threshold_method']!r}: expected one of "
                         f"{', '.join(METHODS)}{did_you_mean(str(values['threshold_method']), METHODS)}")
    topo = values["topology"]
    if topo is not None and not isinstance(topo, (str, Path, Mapping)):
        raise InputError(f"{name('topology')} {topo!r}: expected a topology file, 'auto' or a mapping with 'links'")
    if isinstance(topo, str) and topo != "auto" and not topo.strip():
        raise InputError(f"{name('topology')}: empty; expected a topology file or 'auto'")
    for key, what in (("max_gap", "seconds such as 60"), ("revisit_gap", "seconds such as 3"),
                      ("fps", "frames per second such as 25"),
                      ("window", "seconds such as 900 (a person's tracks all lie within it)")):
        v = values[key]
        if v is not None and not (_is_number(v) and v > 0):
            raise InputError(f"{name(key)} {v!r}: expected a positive number of {what}, or none")
    k = values["k"]
    if not (_is_count(k) and 1 <= k <= MAX_K):
        raise InputError(f"{name('k')} {k!r}: expected a whole number of neighbours from 1 to {MAX_K} (default 20)")
    if values["linkage"] not in LINKAGES:
        raise InputError(f"{name('linkage')} {values['linkage']!r}: expected one of {', '.join(LINKAGES)}"
                         f"{did_you_mean(str(values['linkage']), LINKAGES)}")
    for key in ("debias", "rerank", "set_similarity", "motion_gate"):
        if not isinstance(values[key], bool):
            raise InputError(f"{name(key)} {values[key]!r}: expected true or false")
    if values["centralize"] not in (None, "nfc"):
        raise InputError(f"{name('centralize')} {values['centralize']!r}: expected none or 'nfc'")
    h = values["hub_k"]
    if not (_is_count(h) and 0 <= h <= MAX_K):
        raise InputError(f"{name('hub_k')} {h!r}: expected a number of neighbours such as 10, or 0 (off)")
    c = values["corrections"]
    if c is not None and not isinstance(c, (str, Path)) and type(c).__name__ != "Corrections":
        raise InputError(f"{name('corrections')} {c!r}: expected a corrections file (the corrections.json "
                         "report.html downloads)")
    m = values["same_camera_margin"]
    if not (_is_number(m) and 0 <= m <= 2):
        raise InputError(f"{name('same_camera_margin')} {m!r}: expected a similarity margin from 0 to 2 such as 0.1 "
                         "(0: same-camera pairs judged like cross-camera ones)")


@dataclass(frozen=True)
class AssociateConfig:
    """How to associate. Defaults chosen by measurement (docs/associate.md)."""

    threshold: float | str = "auto"  # "auto" or a similarity in the graph's scale
    threshold_method: str = "chance"  # how "auto" cuts: one of METHODS (docs/associate.md)
    topology: Path | str | Mapping[str, Any] | None = None  # file or dict with 'links', or "auto" (learned)
    max_gap: float | None = None  # seconds
    revisit_gap: float | None = REVISIT_GAP  # seconds between a person's tracks in one camera; None: no limit
    fps: float | None = None  # for cameras whose input gives none
    k: int = 20  # neighbours per track in the similarity graph
    linkage: str = "average"
    debias: bool = True
    rerank: bool = False
    set_similarity: bool = False
    centralize: str | None = None  # None or "nfc"
    motion_gate: bool = True  # a camera's tracks join only if they continue each other's motion (needs boxes)
    hub_k: int = 0  # hubness correction (CSLS, per camera: k best matches of a track in each camera); 0: off
    same_camera_margin: float = SAME_CAMERA_MARGIN  # lowers every same-camera similarity by this; 0: off
    # a reviewer's decisions (trackreid.associate.corrections); a path is read at once
    corrections: Corrections | Path | str | None = None
    # seconds: a track is compared only with tracks within this time of it, in time shards (.shards); None: all
    window: float | None = None

    def __post_init__(self) -> None:
        _check(self._values(), lambda f: FLAGS.get(f, f))
        if isinstance(self.corrections, (str, Path)):
            from trackreid.associate.corrections import load_corrections

            object.__setattr__(self, "corrections", load_corrections(self.corrections, "--corrections"))

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_mapping(cls, raw: object, where: str, base: Path | None = None) -> AssociateConfig:
        """A config from a mapping such as site.yml's ``associate:`` (``where`` names it in errors).

        ``none``/``null`` turn off ``max_gap``, ``revisit_gap`` and ``fps``; a ``topology`` path is
        relative to ``base`` (the site file's folder) and is read now, so the config holds its
        content (and a changed file changes the config).
        """
        if not isinstance(raw, Mapping):
            raise InputError(f"{where}: expected a mapping of association options (threshold, max_gap, topology, "
                             f"...), got {raw!r}")
        known = [f.name for f in fields(cls)]
        values: dict[str, Any] = cls()._values()
        for key, v in raw.items():
            if key not in known:
                raise InputError(f"{where}: unknown key {key!r}{did_you_mean(str(key), known)}; known keys: "
                                 f"{', '.join(known)}")
            if key in ("max_gap", "revisit_gap", "fps", "centralize", "window") and isinstance(v, str) \
                    and v.strip().lower() in ("none", "null", "off", ""):
                v = None
            values[key] = v
        _check(values, lambda f: f"{where}: {f}")
        topo = values["topology"]
        if isinstance(topo, (str, Path)) and str(topo) != "auto":
            from trackreid.associate.constraints import load_topology

            values["topology"] = load_topology(Path(topo) if base is None else base / Path(topo),
                                               f"{where}: topology")
        c = values["corrections"]
        if isinstance(c, (str, Path)):
            from trackreid.associate.corrections import load_corrections

            values["corrections"] = load_corrections(Path(c) if base is None else base / Path(c),
                                                     f"{where}: corrections")
        return cls(**values)

    @property
    def learns_topology(self) -> bool:
        """``topology="auto"``: the transit windows are learned from a first association (:mod:`.transit`)."""
        return isinstance(self.topology, str) and self.topology == "auto"

    def time_constraints(self) -> list[str]:
        """The options in force that need each camera's times in seconds (for the error when an fps is unknown)."""
        out = [flag for flag, v in (("--topology", self.topology), ("--max-gap", self.max_gap)) if v is not None]
        if self.revisit_gap is not None:
            out.append(f"the revisit gap ({self.revisit_gap:g} s; --revisit-gap none turns it off)")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(replace(self, corrections=None))
        if isinstance(self.topology, Path):
            d["topology"] = str(self.topology)
        c = self.corrections
        d["corrections"] = None if c is None or isinstance(c, (str, Path)) else c.describe()
        return d
