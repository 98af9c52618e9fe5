"""Search tracked people: an index of a site's tracks (FAISS vectors, SQLite metadata) and queries on it.

``Index.build(cameras, "runs/index")``, then ``Index.open("runs/index").search(images=[...])``;
see docs/search.md. Names load lazily (FAISS is the optional extra ``trackreid[search]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackreid.search.index import Index, SearchResult
    from trackreid.search.sources import RunSource, read_run

__all__ = ["Index", "RunSource", "SearchResult", "read_run"]


def __getattr__(name: str) -> Any:
    if name in ("Index", "SearchResult"):
        from trackreid.search import index

        return getattr(index, name)
    if name in ("RunSource", "read_run"):
        from trackreid.search import sources

        return getattr(sources, name)
    raise AttributeError(name)
