"""``trackreid run``: a whole site of cameras, extracted segment by segment, then associated.

site (site.yml schema) -> plan (videos -> segments) -> engines (local processes or Ray) ->
store (part files, done markers, merge) -> associate. Names load lazily, so that a worker
process can set its environment (:mod:`trackreid.runtime`) before torch is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackreid.run.runner import RunResult, run_site
    from trackreid.run.site import Camera, Site, SiteOptions, read_site

__all__ = ["Camera", "RunResult", "Site", "SiteOptions", "read_site", "run_site"]


def __getattr__(name: str) -> Any:
    if name in ("RunResult", "run_site"):
        from trackreid.run import runner

        return getattr(runner, name)
    if name in ("Camera", "Site", "SiteOptions", "read_site"):
        from trackreid.run import site

        return getattr(site, name)
    raise AttributeError(name)
