"""Durable emulator state in SQLite (WAL; commits fsync'd by WalSync before any answer): the oracle.

Group commit: each request's writes run at once inside a savepoint of a shared
transaction, and the request's answer waits for `durable()`, which commits every request
that wrote since the last COMMIT (at the end of the event-loop turn, or when the fsync in
flight ends), then waits for the WAL fsync that covers that commit (harness/cloud/walsync.py:
the fsync runs in a thread, so the event loop never blocks on the disk). Nothing is
acknowledged before it is on disk, and 32 concurrent requests cost one fsync instead of 32.

Tokens and device codes are stored as SHA-256 digests only, so neither the database nor
a backup ever holds a usable credential.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.cloud.walsync import WalSync

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE,
  min_firmware TEXT, socket_status INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
  device_code_hash TEXT PRIMARY KEY, user_code TEXT NOT NULL, client_id TEXT NOT NULL,
  client_pk TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
  interval REAL NOT NULL, last_poll_at REAL, state TEXT NOT NULL, project_id TEXT,
  device_pk TEXT, url_pairing INTEGER NOT NULL DEFAULT 0, verification_uri_complete TEXT);
CREATE INDEX IF NOT EXISTS codes_user ON codes(user_code);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY, device_id TEXT NOT NULL, client_id TEXT NOT NULL, client_pk TEXT NOT NULL,
  name TEXT NOT NULL, project_id TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
  last_seen_at REAL, firmware_versions TEXT NOT NULL DEFAULT '[]', last_firmware TEXT,
  paused INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
  timezone TEXT NOT NULL DEFAULT 'UTC', creator_id TEXT NOT NULL, authorization_id TEXT);
CREATE INDEX IF NOT EXISTS devices_client ON devices(client_id);
CREATE TABLE IF NOT EXISTS channels (
  id TEXT PRIMARY KEY, device_pk TEXT NOT NULL, external_index INTEGER NOT NULL,
  name TEXT NOT NULL, asset_type TEXT NOT NULL, client_id TEXT, device_model_id TEXT,
  connected INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
  id TEXT PRIMARY KEY, device_pk TEXT NOT NULL, client_id TEXT NOT NULL, created_at REAL NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0, refresh_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, grant_id TEXT NOT NULL, device_pk TEXT NOT NULL,
  issued_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL);
CREATE INDEX IF NOT EXISTS tokens_grant ON tokens(grant_id);
CREATE TABLE IF NOT EXISTS pause_windows (
  id INTEGER PRIMARY KEY, device_pk TEXT NOT NULL, start REAL NOT NULL, end REAL);
CREATE TABLE IF NOT EXISTS assets (
  id TEXT PRIMARY KEY, device_pk TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL,
  filetype TEXT NOT NULL, filesize INTEGER, offset REAL NOT NULL, capture_time REAL NOT NULL,
  channel INTEGER NOT NULL, realtime INTEGER NOT NULL, extension TEXT, state TEXT NOT NULL,
  parts_expected INTEGER, part_size INTEGER, final_number INTEGER, created_at REAL NOT NULL,
  completed_at REAL, sha256 TEXT, tree_path TEXT NOT NULL, asset_type TEXT NOT NULL,
  extra TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS assets_device ON assets(device_pk);
CREATE TABLE IF NOT EXISTS parts (
  asset_id TEXT NOT NULL, number INTEGER NOT NULL, gen INTEGER NOT NULL DEFAULT 1,
  size INTEGER NOT NULL, is_final INTEGER NOT NULL DEFAULT 0, stored INTEGER NOT NULL DEFAULT 0,
  stored_gen INTEGER, md5 TEXT, bytes_received INTEGER NOT NULL DEFAULT 0,
  bytes_duplicate INTEGER NOT NULL DEFAULT 0, bytes_incomplete INTEGER NOT NULL DEFAULT 0,
  put_attempts INTEGER NOT NULL DEFAULT 0, put_ok INTEGER NOT NULL DEFAULT 0,
  first_put_at REAL, stored_at REAL, PRIMARY KEY (asset_id, number));
CREATE TABLE IF NOT EXISTS part_gens (
  asset_id TEXT NOT NULL, number INTEGER NOT NULL, gen INTEGER NOT NULL, size INTEGER NOT NULL,
  is_final INTEGER NOT NULL, PRIMARY KEY (asset_id, number, gen));
CREATE TABLE IF NOT EXISTS comments (
  id TEXT PRIMARY KEY, asset_id TEXT NOT NULL, device_pk TEXT NOT NULL, text TEXT NOT NULL,
  timestamp REAL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS triggers (
  id INTEGER PRIMARY KEY, device_pk TEXT NOT NULL, channel_id TEXT NOT NULL,
  input_index INTEGER NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
  id INTEGER PRIMARY KEY, t REAL NOT NULL, scheme TEXT, method TEXT, path TEXT, status INTEGER,
  bytes_in INTEGER, bytes_out INTEGER, client TEXT, device_id TEXT, client_version TEXT,
  headers TEXT, started_at REAL, duration_ms REAL);
CREATE TABLE IF NOT EXISTS plain_http (
  id INTEGER PRIMARY KEY, t REAL NOT NULL, method TEXT, path TEXT, headers TEXT, client TEXT);
CREATE TABLE IF NOT EXISTS ws_sessions (
  id INTEGER PRIMARY KEY, device_pk TEXT, connected_at REAL NOT NULL, last_heartbeat_at REAL,
  closed_at REAL, topic TEXT, close_reason TEXT);
CREATE TABLE IF NOT EXISTS ws_beats (
  id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, device_pk TEXT, t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ws_beats_device ON ws_beats(device_pk, t);
CREATE TABLE IF NOT EXISTS faults (
  id TEXT PRIMARY KEY, target TEXT NOT NULL, path TEXT, method TEXT, count INTEGER NOT NULL,
  kind TEXT NOT NULL, retry_after INTEGER, created_at REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0,
  client_id TEXT, hold_s REAL);
"""

# Columns added after a table's first release: (table, column, SQL type). A data dir made
# by an older emulator gets them on open (ALTER TABLE ... ADD COLUMN; old rows hold NULL).
ADDED_COLUMNS = (
    ("journal", "started_at", "REAL"),
    ("journal", "duration_ms", "REAL"),
    ("codes", "verification_uri_complete", "TEXT"),
    ("faults", "client_id", "TEXT"),
    ("faults", "hold_s", "REAL"),
)

RESET_TABLES = (
    "projects", "codes", "devices", "channels", "grants", "tokens", "pause_windows", "assets",
    "parts", "part_gens", "comments", "triggers", "journal", "plain_http", "ws_sessions", "ws_beats",
    "faults",
)


def digest(secret: str) -> str:
    """SHA-256 hex of a credential: what we keep instead of the credential."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_id() -> str:
    return str(uuid.uuid4())


class Store:
    """SQLite-backed state. Not thread-safe: used from the server's event loop only."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a COMMIT does not fsync; WalSync does, off the loop, before any answer.
        # Checkpoints stay synced (NORMAL and the checkpoint thread's FULL both sync them).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self.db.execute("PRAGMA journal_size_limit=67108864")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        self._migrate()
        self.wal = WalSync(self.path)
        self._in_tx = False
        self._commit_future: asyncio.Future[int] | None = None

    def _migrate(self) -> None:
        """Add the columns an older data dir lacks (committed before any request runs)."""
        for table, column, kind in ADDED_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.flush()
        self.wal.close()
        self.db.close()  # the closing checkpoint is synced (synchronous=NORMAL)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One request's writes: a savepoint in the shared transaction (see `durable`)."""
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        self.db.execute("SAVEPOINT w")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK TO w")
            self.db.execute("RELEASE w")
            raise
        self.db.execute("RELEASE w")

    def flush(self) -> None:
        """Commit now and fsync, blocking. Used outside requests (startup, control, close)."""
        self._commit()
        self.wal.sync_now()

    def _commit(self) -> int:
        """COMMIT the shared transaction (no fsync); returns the latest commit's number."""
        if self._in_tx:
            self._in_tx = False
            try:
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # the batch failed as a whole: every waiter hears it
                    self.db.execute("ROLLBACK")
                raise
            return self.wal.note_commit()
        return self.wal.committed

    async def durable(self) -> None:
        """Wait until every write made so far is committed and fsync'd; batches callers.

        While an fsync is in flight nothing written now could be acknowledged before the
        next one anyway, so the COMMIT waits for it too: one COMMIT per fsync, not per turn.
        """
        if self._in_tx:
            if self._commit_future is None:
                loop = asyncio.get_running_loop()
                self._commit_future = loop.create_future()
                if self.wal.busy:
                    self.wal.after_sync(self._commit_batch)
                else:
                    loop.call_soon(self._commit_batch)
            seq = await asyncio.shield(self._commit_future)
        else:
            seq = self.wal.committed
        await self.wal.wait(seq)

    def _commit_batch(self) -> None:
        future, self._commit_future = self._commit_future, None
        try:
            seq = self._commit()
        except Exception as exc:  # surfaced to every waiting request
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(seq)

    def one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        row = self.db.execute(sql, args).fetchone()
        return dict(row) if row else None

    def all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def run(self, sql: str, *args: Any) -> int:
        with self.tx() as db:
            return db.execute(sql, args).rowcount

    # --- meta ----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key=?", key)
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.run("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", key, value)

    def reset(self) -> None:
        with self.tx() as db:
            for table in RESET_TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key IN ('clock_offset', 'settings')")

    # --- clients -------------------------------------------------------------------------
    def add_client(
        self, name: str, secret: str, now: float, min_firmware: str | None = None,
        socket_status: bool = True,
    ) -> dict[str, Any]:
        row = {
            "id": new_id(), "name": name, "secret_hash": digest(secret),
            "min_firmware": min_firmware, "socket_status": int(socket_status), "created_at": now,
        }
        self._insert("clients", row)
        return row

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.run(f"INSERT INTO {table} ({cols}) VALUES ({marks})", *row.values())

    def client_by_secret(self, secret: str | None) -> dict[str, Any] | None:
        if not secret:
            return None
        return self.one("SELECT * FROM clients WHERE secret_hash=?", digest(secret))

    def clients(self) -> list[dict[str, Any]]:
        return self.all(
            "SELECT id, name, min_firmware, socket_status, created_at FROM clients ORDER BY created_at"
        )

    # --- projects ------------------------------------------------------------------------
    def create_project(self, name: str, now: float) -> dict[str, Any]:
        row = {"id": new_id(), "name": name, "created_at": now}
        self._insert("projects", row)
        return row

    def project(self, project_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM projects WHERE id=?", project_id)

    # --- device codes --------------------------------------------------------------------
    def create_code(
        self, *, client_id: str, client_pk: str, name: str, now: float, lifetime: float,
        interval: float, url_pairing: bool,
    ) -> tuple[str, str]:
        """Returns (device_code, user_code); only the device code's digest is stored."""
        device_code = new_id()
        with self.tx() as db:
            live = {
                r[0] for r in db.execute(
                    "SELECT user_code FROM codes WHERE expires_at > ? AND state IN ('pending','approved')",
                    (now,),
                )
            }
            while True:
                user_code = f"{secrets.randbelow(1_000_000):06d}"
                if user_code not in live:
                    break
            db.execute(
                "INSERT INTO codes (device_code_hash, user_code, client_id, client_pk, name,"
                " created_at, expires_at, interval, state, url_pairing)"
                " VALUES (?,?,?,?,?,?,?,?,'pending',?)",
                (digest(device_code), user_code, client_id, client_pk, name, now, now + lifetime,
                 interval, int(url_pairing)),
            )
        return device_code, user_code

    def live_code(self, user_code: str, now: float) -> dict[str, Any] | None:
        return self.one(
            "SELECT * FROM codes WHERE user_code=? AND expires_at > ? AND state='pending'"
            " ORDER BY created_at DESC", user_code, now,
        )

    def code_by_device_code(self, device_code: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM codes WHERE device_code_hash=?", digest(device_code))

    # --- devices -------------------------------------------------------------------------
    def device(self, device_pk: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM devices WHERE id=?", device_pk)

    def device_by_any_id(self, some_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM devices WHERE id=? OR device_id=?", some_id, some_id)

    def attach_device(
        self, *, client_id: str, client_pk: str, project_id: str, name: str, now: float
    ) -> dict[str, Any]:
        """Approving a code: one project device per client_id; re-pairing moves and revives it."""
        existing = self.one("SELECT * FROM devices WHERE client_id=?", client_id)
        with self.tx() as db:
            if existing:
                db.execute(
                    "UPDATE devices SET project_id=?, revoked=0, updated_at=?, client_pk=?"
                    " WHERE id=?", (project_id, now, client_pk, existing["id"]),
                )
                db.execute("UPDATE grants SET revoked=1 WHERE device_pk=?", (existing["id"],))
                pk = existing["id"]
            else:
                pk = new_id()
                db.execute(
                    "INSERT INTO devices (id, device_id, client_id, client_pk, name, project_id,"
                    " created_at, updated_at, creator_id, authorization_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (pk, new_id(), client_id, client_pk, name, project_id, now, now, new_id(),
                     new_id()),
                )
                db.execute(
                    "INSERT INTO channels (id, device_pk, external_index, name, asset_type,"
                    " created_at, updated_at) VALUES (?,?,0,?,'video',?,?)",
                    (new_id(), pk, name, now, now),
                )
        device = self.device(pk)
        assert device is not None
        return device

    def channels(self, device_pk: str, connected_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM channels WHERE device_pk=?"
        if connected_only:
            sql += " AND connected=1"
        return self.all(sql + " ORDER BY external_index", device_pk)

    def note_seen(self, device_pk: str, now: float, version: str | None) -> dict[str, Any] | None:
        """Record a device's activity; returns its row as it now stands (None: no device)."""
        device = self.device(device_pk)
        if device is None:
            return None
        versions = json.loads(device["firmware_versions"])
        changed = version is not None and version not in versions
        if changed:
            versions.append(version)
        if changed or device["last_seen_at"] is None or now - device["last_seen_at"] >= 1.0 or (
            version is not None and version != device["last_firmware"]
        ):
            self.run(
                "UPDATE devices SET last_seen_at=?, firmware_versions=?,"
                " last_firmware=COALESCE(?, last_firmware) WHERE id=?",
                now, json.dumps(versions), version, device_pk,
            )
            device.update(last_seen_at=now, firmware_versions=json.dumps(versions))
            if version is not None:
                device["last_firmware"] = version
        return device

    # --- grants and tokens ---------------------------------------------------------------
    def issue_tokens(
        self, *, device_pk: str, client_id: str, grant_id: str | None, now: float,
        access_lifetime: float, refresh_lifetime: float,
    ) -> tuple[str, str]:
        """New access + refresh token pair (a new grant unless `grant_id` is rotated)."""
        access = secrets.token_urlsafe(32)
        refresh = new_id()
        with self.tx() as db:
            if grant_id is None:
                grant_id = new_id()
                db.execute(
                    "INSERT INTO grants (id, device_pk, client_id, created_at) VALUES (?,?,?,?)",
                    (grant_id, device_pk, client_id, now),
                )
            else:
                db.execute(
                    "UPDATE grants SET refresh_count = refresh_count + 1 WHERE id=?", (grant_id,)
                )
                db.execute("UPDATE tokens SET used_at=? WHERE grant_id=? AND used_at IS NULL",
                           (now, grant_id))
            db.execute(
                "INSERT INTO tokens VALUES (?,?,?,?,?,?,NULL)",
                (digest(access), "access", grant_id, device_pk, now, now + access_lifetime),
            )
            db.execute(
                "INSERT INTO tokens VALUES (?,?,?,?,?,?,NULL)",
                (digest(refresh), "refresh", grant_id, device_pk, now, now + refresh_lifetime),
            )
        return access, refresh

    def token(self, token: str) -> dict[str, Any] | None:
        return self.one(
            "SELECT t.*, g.revoked AS grant_revoked, g.client_id AS client_id,"
            " d.revoked AS device_revoked FROM tokens t JOIN grants g ON g.id = t.grant_id"
            " JOIN devices d ON d.id = t.device_pk WHERE t.hash=?", digest(token),
        )

    # --- journal, plain http, websockets ---------------------------------------------------
    def add_journal(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self.tx() as db:
                db.executemany(
                    "INSERT INTO journal (t, scheme, method, path, status, bytes_in, bytes_out,"
                    " client, device_id, client_version, headers, started_at, duration_ms)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )

    def journal(self, since: int, limit: int) -> list[dict[str, Any]]:
        rows = self.all("SELECT * FROM journal WHERE id > ? ORDER BY id LIMIT ?", since, limit)
        for row in rows:
            row["headers"] = json.loads(row["headers"] or "{}")
        return rows
