"""Synthetic multi-camera sites with exact ground truth (tests, benchmarks, the demo).

>>> from trackreid.synth import SiteSpec, cuhk03_people, make_site
>>> site = make_site("runs/site", SiteSpec(cameras=2, identities=24), cuhk03_people("../shared/data/cuhk03/val"))
"""

from trackreid.synth.people import PeopleSource, cuhk03_people, drawn_people
from trackreid.synth.site import Site, SiteCamera, SiteSpec, make_site

__all__ = ["PeopleSource", "Site", "SiteCamera", "SiteSpec", "cuhk03_people", "drawn_people", "make_site"]
