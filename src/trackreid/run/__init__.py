"""``trackreid run``: a whole site of cameras, extracted segment by segment, then associated.

site (site.yml schema) -> plan (videos -> segments) -> engines (local processes or Ray) ->
store (part files, done markers, merge) -> associate.
"""

from trackreid.run.runner import RunResult, run_site
from trackreid.run.site import Camera, Site, SiteOptions, read_site

__all__ = ["Camera", "RunResult", "Site", "SiteOptions", "read_site", "run_site"]
