"""The index's track metadata in SQLite: cameras, tracks, identities, the model and its preprocessing.

One database file per index version (``meta.sqlite``). Row ``row`` of ``tracks`` is vector
``row`` of the FAISS index beside it, so a filter by camera or time is one SQL query that
gives the vector ids a search may return. Nothing in it is pickled: settings are JSON text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackreid.errors import InputError

FORMAT = "trackreid-search-index"
FORMAT_VERSION = 1

SCHEMA = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cameras (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, fps REAL, time_offset REAL NOT NULL,
                      source TEXT NOT NULL);
CREATE TABLE tracks (row INTEGER PRIMARY KEY, camera_id INTEGER NOT NULL REFERENCES cameras(id),
                     track_id INTEGER NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
                     first_frame INTEGER NOT NULL, last_frame INTEGER NOT NULL, identity INTEGER,
                     crops TEXT NOT NULL, UNIQUE (camera_id, track_id));
CREATE INDEX tracks_time ON tracks (camera_id, start_s, end_s);
CREATE INDEX tracks_identity ON tracks (identity);
"""


@dataclass
class TrackRow:
    """One indexed track (``row`` is its vector id in FAISS)."""

    row: int
    camera: str
    track_id: int
    start_s: float
    end_s: float
    first_frame: int
    last_frame: int
    identity: int | None
    crops: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"camera": self.camera, "track_id": self.track_id, "identity": self.identity,
                "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "first_frame": self.first_frame, "last_frame": self.last_frame, "crops": self.crops}


_SELECT = ("SELECT t.row, c.name, t.track_id, t.start_s, t.end_s, t.first_frame, t.last_frame, t.identity, t.crops "
           "FROM tracks t JOIN cameras c ON c.id = t.camera_id")


def _row(r: Sequence[Any]) -> TrackRow:
    return TrackRow(int(r[0]), str(r[1]), int(r[2]), float(r[3]), float(r[4]), int(r[5]), int(r[6]),
                    None if r[7] is None else int(r[7]), list(json.loads(r[8])))


class Store:
    """An open ``meta.sqlite`` (read-only unless created with :meth:`create`)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn, self.path = conn, path

    @classmethod
    def create(cls, path: Path) -> Store:
        conn = sqlite3.connect(str(path))
        conn.executescript(SCHEMA)
        return cls(conn, path)

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open read-only and check it is an index database; a corrupt file is one clear error."""
        if not path.is_file():
            raise InputError(f"{path}: missing; the index is incomplete: rebuild it with `trackreid index build`")
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            rows = dict(conn.execute("SELECT key, value FROM settings").fetchall())
            conn.execute("SELECT count(*) FROM tracks").fetchone()
        except sqlite3.DatabaseError as e:
            raise InputError(f"{path}: not a readable index database ({e}); rebuild the index with "
                             "`trackreid index build`") from None
        fmt = rows.get("format")
        if fmt != json.dumps(FORMAT):
            raise InputError(f"{path}: not a trackreid search index (format {fmt!r}); "
                             "build one with `trackreid index build`")
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    # settings: JSON values
    def set(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def get(self, key: str, default: Any = None) -> Any:
        r = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if r is None else json.loads(r[0])

    def settings(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM settings")}

    def copy_to(self, path: Path) -> Store:
        """A writable copy at ``path`` (SQLite's online backup: consistent even while others read)."""
        dst = sqlite3.connect(str(path))
        self.conn.backup(dst)
        return Store(dst, path)

    def commit(self) -> None:
        self.conn.commit()

    # cameras
    def camera_id(self, name: str, fps: float | None, time_offset: float, source: str) -> int:
        r = self.conn.execute("SELECT id FROM cameras WHERE name = ?", (name,)).fetchone()
        if r is not None:
            return int(r[0])
        cur = self.conn.execute("INSERT INTO cameras (name, fps, time_offset, source) VALUES (?, ?, ?, ?)",
                                (name, fps, time_offset, source))
        return int(cur.lastrowid or 0)

    def cameras(self) -> list[dict[str, Any]]:
        q = ("SELECT c.name, c.fps, c.time_offset, c.source, count(t.row), min(t.start_s), max(t.end_s) "
             "FROM cameras c LEFT JOIN tracks t ON t.camera_id = c.id GROUP BY c.id ORDER BY c.id")
        return [{"name": r[0], "fps": r[1], "time_offset": r[2], "source": r[3], "tracks": r[4],
                 "start_s": r[5], "end_s": r[6]} for r in self.conn.execute(q)]

    def camera_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM cameras ORDER BY id")]

    # tracks
    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM tracks").fetchone()[0])

    def identities(self) -> int:
        return int(self.conn.execute("SELECT count(DISTINCT identity) FROM tracks").fetchone()[0])

    def has_track(self, camera_id: int, track_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM tracks WHERE camera_id = ? AND track_id = ?",
                                 (camera_id, track_id)).fetchone() is not None

    def insert_tracks(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """``(row, camera_id, track_id, start_s, end_s, first_frame, last_frame, identity, crops json)``."""
        self.conn.executemany("INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def track(self, camera: str, track_id: int) -> TrackRow | None:
        r = self.conn.execute(_SELECT + " WHERE c.name = ? AND t.track_id = ?", (camera, track_id)).fetchone()
        return None if r is None else _row(r)

    def rows(self, ids: Sequence[int]) -> dict[int, TrackRow]:
        out: dict[int, TrackRow] = {}
        for s in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[s:s + 500]]
            q = _SELECT + f" WHERE t.row IN ({','.join('?' * len(chunk))})"  # noqa: S608 - placeholders only
            out.update((t.row, t) for t in map(_row, self.conn.execute(q, chunk)))
        return out

    def identity_rows(self, identity: int) -> list[int]:
        return [int(r[0]) for r in self.conn.execute("SELECT row FROM tracks WHERE identity = ? ORDER BY row",
                                                     (identity,))]

    def filtered_rows(self, cameras: Sequence[str] = (), after: float | None = None,
                      before: float | None = None) -> list[int]:
        """Vector ids of the tracks in ``cameras`` (all when empty) that overlap [after, before] seconds."""
        where: list[str] = []
        args: list[Any] = []
        if cameras:
            where.append(f"c.name IN ({','.join('?' * len(cameras))})")
            args += list(cameras)
        if after is not None:
            where.append("t.end_s >= ?")
            args.append(after)
        if before is not None:
            where.append("t.start_s <= ?")
            args.append(before)
        q = "SELECT t.row FROM tracks t JOIN cameras c ON c.id = t.camera_id"
        if where:
            q += " WHERE " + " AND ".join(where)
        return [int(r[0]) for r in self.conn.execute(q, args)]
