"""Named OSNet variants, their defaults, and the known pretrained files (the zoo).

``ARCHITECTURES`` maps an architecture name (``osnet_x1_0``...) to its :class:`ArchSpec`.
``ZOO`` lists pretrained files by a short name with the facts a user needs to choose one
(training set, reported accuracy) and to verify a download (sha256 where it is known).
:func:`create_model` builds a network by name; options left unset keep the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trackreid.errors import ModelError
from trackreid.models.osnet import ArchSpec, OSNet
from trackreid.suggest import did_you_mean

_WIDTHS = {
    "x1_0": (64, 256, 384, 512),
    "x0_75": (48, 192, 288, 384),
    "x0_5": (32, 128, 192, 256),
    "x0_25": (16, 64, 96, 128),
}

ARCHITECTURES: dict[str, ArchSpec] = {}
for _w, _c in _WIDTHS.items():
    ARCHITECTURES[f"osnet_{_w}"] = ArchSpec("osnet", _c)
    ARCHITECTURES[f"osnet_ain_{_w}"] = ArchSpec("osnet_ain", _c)
ARCHITECTURES["osnet_ibn_x1_0"] = ArchSpec("osnet", _WIDTHS["x1_0"], ibn=True)
# Not a published model: a network small enough for fast tests (0.05 GMAC at 256x128).
ARCHITECTURES["osnet_tiny"] = ArchSpec("osnet", (8, 64, 64, 64), layers=(1, 1, 1))


@dataclass(frozen=True)
class Preprocess:
    """How crops become network input. The one description every backend follows."""

    height: int = 256
    width: int = 128
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"  # "bilinear" (torchreid) or "bicubic" (FastReID)
    channel_order: str = "RGB"

    def to_dict(self) -> dict[str, object]:
        return {
            "height": self.height,
            "width": self.width,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "channel_order": self.channel_order,
            "scale": "1/255 then (x - mean) / std",
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Preprocess:
        def triple(v: object) -> tuple[float, float, float]:
            seq = list(v)  # type: ignore[call-overload]
            return (float(seq[0]), float(seq[1]), float(seq[2]))

        return cls(
            height=int(d.get("height", 256)),  # type: ignore[call-overload]
            width=int(d.get("width", 128)),  # type: ignore[call-overload]
            mean=triple(d.get("mean", cls.mean)),
            std=triple(d.get("std", cls.std)),
            interpolation=str(d.get("interpolation", "bilinear")),
            channel_order=str(d.get("channel_order", "RGB")),
        )


@dataclass(frozen=True)
class ZooEntry:
    """A published pretrained file.

    ``url`` is the publisher's own address (torchreid's model zoo is on Google Drive; fetched
    with gdown, the ``trackreid[zoo]`` extra). ``sha256`` is set only where the file's
    provenance makes it certain; ``None`` means no verified sha256 is known, and a download
    is then kept unverified, saying so.
    """

    name: str
    arch: str
    dataset: str
    file_name: str
    rank1: float | None = None
    mAP: float | None = None
    sha256: str | None = None
    url: str | None = None
    source: str = "torchreid model zoo"
    aliases: tuple[str, ...] = field(default_factory=tuple)


def drive_url(file_id: str) -> str:
    """The direct-download form of a Google Drive file id."""
    return f"https://drive.google.com/uc?id={file_id}"


# Reported numbers: torchreid's model zoo (REFERENCE.md). Addresses: the Google Drive file ids
# that torchreid's docs/MODEL_ZOO.md links for each model (same-domain table; osnet_ain_x1_0 from
# its "MSMT17 (combineall=True)" table); boxmot's TRAINED_URLS lists the same ids for its `.pt`
# aliases. sha256: only the two x0_25 files whose bytes we hold (../shared/data/weights), which are
# byte copies, through Yolov5_StrongSORT_OSNet forks, of the files those forks fetch from these
# Drive ids. For the others no verified sha256 is known (torchreid publishes none).
ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "osnet_x1_0_market1501", "osnet_x1_0", "Market-1501",
            "osnet_x1_0_market_256x128_amsgrad_ep150_stp60_lr0.0015_b64_fb10_softmax_labelsmooth_flip.pth",
            94.2, 82.6, url=drive_url("1vduhq5DpN2q1g4fYEZfPI17MJeh9qyrA"), aliases=("osnet_x1_0_market1501.pt",),
        ),
        ZooEntry(
            "osnet_x1_0_dukemtmcreid", "osnet_x1_0", "DukeMTMC-reID",
            "osnet_x1_0_duke_256x128_amsgrad_ep150_stp60_lr0.0015_b64_fb10_softmax_labelsmooth_flip.pth",
            87.0, 70.2, url=drive_url("1QZO_4sNf4hdOKKKzKc-TZU9WW1v6zQbq"), aliases=("osnet_x1_0_dukemtmcreid.pt",),
        ),
        ZooEntry(
            "osnet_x1_0_msmt17", "osnet_x1_0", "MSMT17",
            "osnet_x1_0_msmt17_256x128_amsgrad_ep150_stp60_lr0.0015_b64_fb10_softmax_labelsmooth_flip.pth",
            74.9, 43.8, url=drive_url("112EMUfBPYeYg70w-syK6V6Mx8-Qb9Q1M"), aliases=("osnet_x1_0_msmt17.pt",),
        ),
        ZooEntry(
            "osnet_x0_25_market1501", "osnet_x0_25", "Market-1501",
            "osnet_x0_25_market_256x128_amsgrad_ep180_stp80_lr0.003_b128_fb10_softmax_labelsmooth_flip.pth",
            91.2, 75.0,
            sha256="c0ff09177a21417a19bc73bbf5af4eb5d2b097c2074ed35e67819ee6cd93612c",
            url=drive_url("1z1UghYvOTtjx7kEoRfmqSMu-z62J6MAj"),
            aliases=("osnet_x0_25_market1501.pth", "osnet_x0_25_market1501.pt"),
        ),
        ZooEntry(
            "osnet_x0_25_dukemtmcreid", "osnet_x0_25", "DukeMTMC-reID",
            "osnet_x0_25_duke_256x128_amsgrad_ep180_stp80_lr0.003_b128_fb10_softmax_labelsmooth_flip.pth",
            82.0, 61.4, url=drive_url("1eumrtiXT4NOspjyEV4j8cHmlOaaCGk5l"), aliases=("osnet_x0_25_dukemtmcreid.pt",),
        ),
        ZooEntry(
            "osnet_x0_25_msmt17", "osnet_x0_25", "MSMT17",
            "osnet_x0_25_msmt17_256x128_amsgrad_ep180_stp80_lr0.003_b128_fb10_softmax_labelsmooth_flip.pth",
            61.4, 29.5,
            sha256="6f57607fed9f502b9efed546108132ee715df5a5b6e6932c6269bacb47f59f99",
            url=drive_url("1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF"),
            aliases=("osnet_x0_25_msmt17.pth", "osnet_x0_25_msmt17.pt"),
        ),
        ZooEntry(
            "osnet_ain_x1_0_msmt17", "osnet_ain_x1_0", "MSMT17 (cross-domain to Market: 70.1 / 43.3)",
            "osnet_ain_x1_0_msmt17_256x128_amsgrad_ep50_lr0.0015_coslr_b64_fb10_softmax_labsmth_flip_jitter.pth",
            url=drive_url("1SigwBE6mPdqiJMqhuIY4aqC7--5CsMal"), aliases=("osnet_ain_x1_0_msmt17.pt",),
        ),
    ]
}


def zoo_lookup(name: str) -> ZooEntry | None:
    """Find a zoo entry by short name, file name or alias."""
    if name in ZOO:
        return ZOO[name]
    for e in ZOO.values():
        if name == e.file_name or name in e.aliases:
            return e
    return None


def arch_spec(name: str) -> ArchSpec:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ModelError(
            f"unknown architecture {name!r}{did_you_mean(name, ARCHITECTURES)}; "
            f"known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def create_model(
    name: str, *, feature_dim: int | None = None, neck: bool = False, num_classes: int = 0,
    no_fc: bool = False,
) -> OSNet:
    """Build an (untrained) OSNet by architecture name.

    ``feature_dim`` defaults to 512 (128 for ``osnet_tiny``); ``no_fc`` drops the ``fc``
    embedding layer (FastReID backbones); ``neck`` adds a BNNeck; ``num_classes`` > 0 adds an
    identity classifier for training.
    """
    spec = arch_spec(name)
    dim = None if no_fc else (feature_dim or (128 if name == "osnet_tiny" else 512))
    return OSNet(spec, feature_dim=dim, neck=neck, num_classes=num_classes)
