"""The emulator's shared state: settings, clock, store, blobs, signer, faults, sockets.

One `CloudCore` per server process, reached from handlers as `request.app.state.core`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cloud.blobs import BlobStore
from harness.cloud.ca import CertPaths, ensure_certs
from harness.cloud.fault_responses import ALL_KINDS
from harness.cloud.paths import TOKEN_PATH
from harness.cloud.settings import CloudSettings, dump_toml
from harness.cloud.store import Store, new_id
from harness.errors import ConfigError

FAULT_KINDS = (*ALL_KINDS, "slow_down")  # the shared table's answers, and the poll slow_down
# Kinds answered by a route handler rather than FaultMiddleware: they need the parsed body.
HANDLER_KINDS = ("slow_down",)
# Bounds of the in-memory witness records (an 8-hour shift of 30 s tokens is ~1000 pairs).
MAX_TOKENS_PER_DEVICE = 4000
MAX_POLL_RECORDS = 20000


@dataclass
class FaultRule:
    id: str
    target: str
    path: str | None
    method: str | None
    count: int
    kind: str
    retry_after: int | None
    hits: int = 0

    def matches(self, target: str, method: str, path: str, in_handler: bool = False) -> bool:
        if self.count <= 0 or self.target != target:
            return False
        if (self.kind in HANDLER_KINDS) != in_handler:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_fault(rule: Any) -> FaultRule:
    if not isinstance(rule, dict):
        raise ConfigError("fault rule must be a JSON object")
    target = rule.get("target")
    kind = rule.get("kind")
    count = rule.get("count", 1)
    if target not in ("s3", "api"):
        raise ConfigError("fault target must be 's3' or 'api'")
    if kind not in FAULT_KINDS:
        raise ConfigError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
    if kind == "slow_down" and target != "api":
        raise ConfigError("fault kind slow_down answers device-code polls: target must be 'api'")
    if kind.startswith("conflict_") and target != "api":
        raise ConfigError(f"fault kind {kind} is a 409 on asset creation that S3 never sends: "
                          "target must be 'api'")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError("fault count must be an integer >= 1")
    path = rule.get("path")
    if path is not None:
        if not isinstance(path, str):
            raise ConfigError("fault path must be a regular expression string")
        try:
            re.compile(path)
        except re.error as exc:
            raise ConfigError(f"fault path is not a valid regular expression: {exc}") from exc
        if kind == "slow_down" and re.search(path, TOKEN_PATH) is None:
            raise ConfigError(f"fault kind slow_down only answers {TOKEN_PATH}; "
                              "this path never matches it")
    method = rule.get("method")
    if method is not None and not isinstance(method, str):
        raise ConfigError("fault method must be a string like 'PUT'")
    retry_after = rule.get("retry_after")
    if retry_after is not None and (isinstance(retry_after, bool)
                                    or not isinstance(retry_after, int) or retry_after < 0):
        raise ConfigError("fault retry_after must be an integer >= 0")
    return FaultRule(new_id(), target, path, method, count, kind, retry_after)


class CloudCore:
    def __init__(self, data_dir: Path, base_settings: CloudSettings,
                 cert_names: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.certs: CertPaths = ensure_certs(self.data_dir, cert_names)
        self.store = Store(self.data_dir / "state.sqlite3")
        self.blobs = BlobStore(self.data_dir / "blobs")
        self.base_settings = base_settings
        saved = self.store.get_meta("settings")
        self.settings = base_settings.updated(json.loads(saved)) if saved else base_settings
        self.clock_offset = float(self.store.get_meta("clock_offset", "0") or 0)
        self.signing_key = self._signing_key()
        self.client_secret_file = self.data_dir / "bench-client.toml"
        self._ensure_bench_client()
        self.faults: list[FaultRule] = [
            FaultRule(**{k: r[k] for k in ("id", "target", "path", "method", "count", "kind",
                                           "retry_after", "hits")})
            for r in self.store.all("SELECT * FROM faults ORDER BY created_at")
        ]
        self.journal_buffer: list[tuple[Any, ...]] = []
        # Witness records for the bench, in memory only (never on disk, so the database
        # still holds no usable credential): the tokens issued to each device, so the bench
        # can search a device's logs for their exact values (C2C-SEC-04), and every answer
        # to a device-code poll with the client that sent it (C2C-AUTH-04).
        self.issued_tokens: dict[str, deque[dict[str, Any]]] = {}
        self.token_polls: deque[dict[str, Any]] = deque(maxlen=MAX_POLL_RECORDS)
        self.sockets: dict[str, set[Any]] = {}
        self.asset_locks: dict[str, asyncio.Lock] = {}
        self.store.flush()

    # --- clock ---------------------------------------------------------------------------
    def now(self) -> float:
        """Emulator time: wall clock plus the offset the control API advanced."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> float:
        self.clock_offset += seconds
        self.store.set_meta("clock_offset", repr(self.clock_offset))
        return self.clock_offset

    # --- settings ------------------------------------------------------------------------
    def update_settings(self, changes: dict[str, Any]) -> CloudSettings:
        self.settings = self.settings.updated(changes)
        delta = {k: v for k, v in self.settings.to_dict().items()
                 if self.base_settings.to_dict()[k] != v}
        self.store.set_meta("settings", json.dumps(delta))
        return self.settings

    # --- secrets -------------------------------------------------------------------------
    def _signing_key(self) -> bytes:
        path = self.data_dir / "s3-signing.key"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(secrets.token_bytes(32))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_bytes()

    def _ensure_bench_client(self) -> None:
        if self.client_secret_file.exists():
            return
        secret = secrets.token_urlsafe(32)
        self.store.add_client("c2c-bench", secret, self.now())
        self.store.flush()  # registered on disk before the file that names it exists
        text = dump_toml({"client_id_prefix": "c2c-bench-", "client_secret": secret})
        tmp = self.client_secret_file.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.client_secret_file)

    # --- faults --------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> None:
        self.faults.append(rule)
        self.store.run(
            "INSERT INTO faults (id, target, path, method, count, kind, retry_after, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            rule.id, rule.target, rule.path, rule.method, rule.count, rule.kind,
            rule.retry_after, self.now(),
        )

    def delete_faults(self, fault_id: str | None = None) -> int:
        before = len(self.faults)
        self.faults = [f for f in self.faults if fault_id is not None and f.id != fault_id]
        if fault_id is None:
            self.store.run("DELETE FROM faults")
        else:
            self.store.run("DELETE FROM faults WHERE id=?", fault_id)
        return before - len(self.faults)

    def take_fault(self, target: str, method: str, path: str,
                   in_handler: bool = False) -> FaultRule | None:
        """The first live rule matching this request, with one use consumed.

        `in_handler` asks for the kinds a route handler answers (HANDLER_KINDS), which
        FaultMiddleware never takes.
        """
        for rule in self.faults:
            if rule.matches(target, method, path, in_handler):
                rule.count -= 1
                rule.hits += 1
                self.store.run("UPDATE faults SET count=?, hits=? WHERE id=?",
                               rule.count, rule.hits, rule.id)
                return rule
        return None

    # --- journal -------------------------------------------------------------------------
    def flush_journal(self) -> None:
        """Move buffered journal rows into the store (committed with the next batch)."""
        rows, self.journal_buffer = self.journal_buffer, []
        self.store.add_journal(rows)

    # --- witness records ------------------------------------------------------------------
    def remember_tokens(self, device_pk: str, access: str, refresh: str) -> None:
        """Keep the values just issued to `device_pk` (memory only) for the bench's leak scan."""
        issued = self.issued_tokens.setdefault(device_pk, deque(maxlen=MAX_TOKENS_PER_DEVICE))
        now = self.now()
        issued.append({"kind": "access", "value": access, "issued_at": now})
        issued.append({"kind": "refresh", "value": refresh, "issued_at": now})

    def note_poll(self, client_id: str, started_at: float, answer: str) -> None:
        """One device-code poll: who sent it, when it arrived, what it was answered."""
        self.token_polls.append({"client_id": client_id[:255], "started_at": started_at,
                                 "t": self.now(), "answer": answer})

    def reset(self) -> None:
        self.flush_journal()
        self.issued_tokens.clear()
        self.token_polls.clear()
        self.store.reset()
        self.blobs.reset()
        self.faults = []
        self.clock_offset = 0.0
        self.settings = self.base_settings
        self.asset_locks.clear()

    def asset_lock(self, asset_id: str) -> asyncio.Lock:
        lock = self.asset_locks.get(asset_id)
        if lock is None:
            lock = self.asset_locks[asset_id] = asyncio.Lock()
        return lock
