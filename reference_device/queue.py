"""The durable upload queue: SQLite in WAL mode with synchronous=FULL.

Every state change and every acknowledged part is committed before the uploader moves on,
so after a power cut `reconcile()` puts interrupted files back in the queue and the
uploader resumes from the last acknowledged part. Upload URLs are pre-signed (not secrets)
but are kept out of logs and status.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_device.errors import DeviceError

STATES = ("queued", "uploading", "paused", "done", "failed", "cancelled", "quarantined", "held")
TERMINAL = ("done", "cancelled", "held")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY, path TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL DEFAULT 0, captured_at REAL NOT NULL,
  filetype TEXT NOT NULL, ext TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL, reason TEXT, asset_id TEXT, realtime INTEGER NOT NULL DEFAULT 0,
  selected INTEGER NOT NULL DEFAULT 0, urls_created_at REAL, added_at REAL NOT NULL,
  done_at REAL, origin TEXT NOT NULL DEFAULT 'watch', dedupe TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE INDEX IF NOT EXISTS files_path ON files(path);
CREATE TABLE IF NOT EXISTS parts (
  file_id TEXT NOT NULL, number INTEGER NOT NULL, offset INTEGER NOT NULL,
  size INTEGER NOT NULL, url TEXT, is_final INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'pending', PRIMARY KEY (file_id, number)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class FileRecord:
    id: str
    path: str
    name: str
    size: int
    mtime_ns: int
    inode: int
    captured_at: float
    filetype: str
    ext: str
    priority: int
    state: str
    reason: str | None
    asset_id: str | None
    realtime: bool
    selected: bool
    urls_created_at: float | None
    added_at: float
    done_at: float | None
    origin: str


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int
    url: str | None
    is_final: bool
    done: bool


_COLS = [f for f in FileRecord.__dataclass_fields__]


def _record(row: sqlite3.Row) -> FileRecord:
    values = {c: row[c] for c in _COLS}
    values["realtime"] = bool(values["realtime"])
    values["selected"] = bool(values["selected"])
    return FileRecord(**values)


class FileQueue:
    """Thread-safe durable queue. One connection guarded by a lock; every write commits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DeviceError(
                f"upload queue {path} is unreadable ({exc}); it was left untouched - move it "
                "aside to start with an empty queue"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- intake ----------------------------------------------------------------------------
    def add(
        self,
        path: Path,
        *,
        size: int,
        mtime_ns: int,
        inode: int,
        captured_at: float,
        filetype: str,
        realtime: bool = False,
        origin: str = "watch",
        state: str = "queued",
        reason: str | None = None,
        selected: bool = False,
    ) -> tuple[FileRecord, bool]:
        """Queue a file once. Returns (record, created); a file seen twice is not re-queued."""
        spath = str(path)
        key = f"{spath}|{inode}|{size}|{mtime_ns}" if not realtime else f"{spath}|{inode}|rt|{captured_at}"
        with self._tx() as db:
            row = db.execute("SELECT * FROM files WHERE dedupe=?", (key,)).fetchone()
            if row is not None:
                return _record(row), False
            same = db.execute(
                "SELECT * FROM files WHERE path=? AND inode=? ORDER BY added_at DESC LIMIT 1",
                (spath, inode),
            ).fetchone()
            if same is not None and (same["realtime"] or same["state"] == "uploading"):
                return _record(same), False  # the real-time/in-flight entry owns this file
            if same is not None and same["state"] in ("queued", "quarantined") and not same["asset_id"]:
                db.execute(
                    "UPDATE files SET size=?, mtime_ns=?, dedupe=?, state=?, reason=?, captured_at=?,"
                    " selected=MAX(selected, ?) WHERE id=?",
                    (size, mtime_ns, key, state, reason, captured_at, int(selected), same["id"]),
                )
                return _record(db.execute("SELECT * FROM files WHERE id=?", (same["id"],)).fetchone()), False
            fid = uuid.uuid4().hex[:16]
            db.execute(
                "INSERT INTO files (id, path, name, size, mtime_ns, inode, captured_at, filetype, ext,"
                " state, reason, realtime, added_at, origin, dedupe, selected)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (fid, spath, path.name, size, mtime_ns, inode, captured_at, filetype,
                 path.suffix.lower(), state, reason, int(realtime), time.time(), origin, key,
                 int(selected)),
            )
            return _record(db.execute("SELECT * FROM files WHERE id=?", (fid,)).fetchone()), True

    # --- reading ---------------------------------------------------------------------------
    def known(self, path: Path, *, size: int, mtime_ns: int, inode: int) -> bool:
        """This exact file (path, inode, size, mtime) is already queued: `add` would be a no-op."""
        key = f"{path}|{inode}|{size}|{mtime_ns}"
        with self._lock:
            return self._db.execute("SELECT 1 FROM files WHERE dedupe=?", (key,)).fetchone() is not None

    def get(self, file_id: str) -> FileRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()
        return _record(row) if row else None

    def all(self) -> list[FileRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM files ORDER BY added_at").fetchall()
        return [_record(r) for r in rows]

    def filetype_priorities(self, defaults: dict[str, int]) -> dict[str, int]:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key='filetype_priorities'").fetchone()
        merged = dict(defaults)
        if row:
            merged.update(json.loads(row["value"]))
        return merged

    def ordered(self, defaults: dict[str, int], states: Sequence[str] = ("queued",)) -> list[FileRecord]:
        """Upload order: queue priority, then file-type priority, then capture time."""
        prio = self.filetype_priorities(defaults)
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM files WHERE state IN ({marks})", tuple(states)).fetchall()
        records = [_record(r) for r in rows]
        records.sort(key=lambda r: (-r.priority, -prio.get(r.ext, 0), r.captured_at, r.added_at))
        return records

    def next_ready(self, defaults: dict[str, int], *, manual: bool, exclude: set[str]) -> FileRecord | None:
        for rec in self.ordered(defaults):
            if rec.id in exclude or (manual and not rec.selected):
                continue
            return rec
        return None

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) AS n FROM files GROUP BY state").fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({r["state"]: r["n"] for r in rows})
        return counts

    def parts(self, file_id: str) -> list[Part]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM parts WHERE file_id=? ORDER BY number", (file_id,)
            ).fetchall()
        return [Part(r["number"], r["offset"], r["size"], r["url"], bool(r["is_final"]), r["state"] == "done")
                for r in rows]

    def bytes_done(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT file_id, SUM(size) AS n FROM parts WHERE state='done' GROUP BY file_id"
            ).fetchall()
        return {r["file_id"]: int(r["n"] or 0) for r in rows}

    # --- writing ---------------------------------------------------------------------------
    def set_state(self, file_id: str, state: str, reason: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        with self._tx() as db:
            db.execute(
                "UPDATE files SET state=?, reason=?, done_at=? WHERE id=?",
                (state, reason, time.time() if state == "done" else None, file_id),
            )

    def transition(self, file_id: str, from_states: Sequence[str], state: str, reason: str | None = None) -> bool:
        """Change state only from one of `from_states` (atomic compare-and-set)."""
        marks = ",".join("?" * len(from_states))
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE files SET state=?, reason=?, done_at=? WHERE id=? AND state IN ({marks})",
                (state, reason, time.time() if state == "done" else None, file_id, *from_states),
            )
            return cur.rowcount == 1

    def set_asset(self, file_id: str, asset_id: str, parts: Sequence[tuple[int, int, int, str | None, bool]]) -> None:
        """Record a (new) asset and its parts (number, offset, size, url, is_final); old parts go."""
        with self._tx() as db:
            db.execute("DELETE FROM parts WHERE file_id=?", (file_id,))
            db.execute(
                "UPDATE files SET asset_id=?, urls_created_at=? WHERE id=?",
                (asset_id, time.time(), file_id),
            )
            db.executemany(
                "INSERT INTO parts (file_id, number, offset, size, url, is_final) VALUES (?,?,?,?,?,?)",
                [(file_id, n, o, s, u, int(f)) for n, o, s, u, f in parts],
            )

    def add_parts(self, file_id: str, parts: Sequence[tuple[int, int, int, str | None, bool]]) -> None:
        """Add or replace registered real-time parts (keeps acknowledged ones)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO parts (file_id, number, offset, size, url, is_final) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(file_id, number) DO UPDATE SET url=excluded.url, size=excluded.size,"
                " offset=excluded.offset, is_final=excluded.is_final",
                [(file_id, n, o, s, u, int(f)) for n, o, s, u, f in parts],
            )

    def set_part_url(self, file_id: str, number: int, url: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE parts SET url=? WHERE file_id=? AND number=?", (url, file_id, number))

    def ack_part(self, file_id: str, number: int) -> None:
        """Durably mark one part as received by S3 (committed before the next step)."""
        with self._tx() as db:
            db.execute("UPDATE parts SET state='done' WHERE file_id=? AND number=?", (file_id, number))

    def set_size(self, file_id: str, size: int, mtime_ns: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE files SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, file_id))

    def set_realtime(self, file_id: str, realtime: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE files SET realtime=? WHERE id=?", (int(realtime), file_id))

    def set_priority(self, file_id: str, priority: int) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE files SET priority=? WHERE id=?", (priority, file_id)).rowcount == 1

    def set_filetype_priority(self, ext: str, priority: int) -> None:
        with self._tx() as db:
            row = db.execute("SELECT value FROM settings WHERE key='filetype_priorities'").fetchone()
            current: dict[str, Any] = json.loads(row["value"]) if row else {}
            current[ext] = priority
            db.execute(
                "INSERT INTO settings (key, value) VALUES ('filetype_priorities', ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (json.dumps(current),),
            )

    def get_setting(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else None

    def put_setting(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def select(self, ids: Sequence[str] | None) -> int:
        """Mark files for upload in manual mode (None = every queued file)."""
        with self._tx() as db:
            if ids is None:
                return db.execute("UPDATE files SET selected=1 WHERE state='queued'").rowcount
            return sum(db.execute("UPDATE files SET selected=1 WHERE id=?", (i,)).rowcount for i in ids)

    def ids_in(self, states: Sequence[str]) -> list[str]:
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(f"SELECT id FROM files WHERE state IN ({marks})", tuple(states)).fetchall()
        return [r["id"] for r in rows]

    def reconcile(self) -> int:
        """After a power cut: interrupted uploads go back to the queue, keeping their parts."""
        with self._tx() as db:
            return db.execute(
                "UPDATE files SET state='queued', selected=1 WHERE state='uploading'"
            ).rowcount
