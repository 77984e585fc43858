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

FAULT_KINDS = (*ALL_KINDS, "slow_down", "hold")
"""The shared table's answers, the poll slow_down, and `hold` (the real answer, held back)."""
# Kinds answered by a route handler rather than FaultMiddleware: they need the parsed body.
HANDLER_KINDS = ("slow_down",)
HOLD_S = 10.0
"""How long a `hold` rule keeps an answer back when nobody releases it (the default)."""
MAX_HOLD_S = 300.0
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
    client_id: str | None = None
    """Only this device's requests (the client id it paired with); None: every device's."""
    hold_s: float | None = None
    """Kind `hold`: the longest the answer waits for a release."""
    hits: int = 0
    arrived_at: float | None = None
    """Kind `hold`: emulator time the last matching request arrived (memory only)."""
    released_at: float | None = None
    """Kind `hold`: emulator time its held answers were let go (release, removal or timeout)."""

    def matches(self, target: str, method: str, path: str, in_handler: bool = False) -> bool:
        """The request's target, method and path fit (whoever sent it: see `serves`)."""
        if self.count <= 0 or self.target != target:
            return False
        if (self.kind in HANDLER_KINDS) != in_handler:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None

    def serves(self, client_id: str | None) -> bool:
        """A rule without a device answers everyone; one with a device only that device."""
        return self.client_id is None or self.client_id == client_id

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
    client_id = rule.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not client_id.strip()
                                  or len(client_id) > 255):
        raise ConfigError("fault client_id must be a device's client id (1..255 characters)")
    return FaultRule(new_id(), target, path, method, count, kind, retry_after, client_id,
                     _hold_s(kind, target, rule.get("hold_s")))


def _hold_s(kind: str, target: str, value: Any) -> float | None:
    """A `hold` rule's timeout (HOLD_S unless given); None for every other kind."""
    if kind != "hold":
        if value is not None:
            raise ConfigError("fault hold_s belongs to kind 'hold' only")
        return None
    if value is None:
        return HOLD_S
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_HOLD_S:
        raise ConfigError(f"fault hold_s must be a number of seconds in (0, {MAX_HOLD_S:g}]")
    return float(value)


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
                                           "retry_after", "client_id", "hold_s", "hits")})
            for r in self.store.all("SELECT * FROM faults ORDER BY created_at")
        ]
        self.hold_gates: dict[str, asyncio.Event] = {}
        """Per `hold` rule: set once its held answers may go (memory only)."""
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
            "INSERT INTO faults (id, target, path, method, count, kind, retry_after, client_id,"
            " hold_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rule.id, rule.target, rule.path, rule.method, rule.count, rule.kind,
            rule.retry_after, rule.client_id, rule.hold_s, self.now(),
        )

    def delete_faults(self, fault_id: str | None = None, client_id: str | None = None) -> int:
        """Remove one rule (`fault_id`), one device's rules (`client_id`) or every rule; a
        removed `hold` rule lets its held answers go."""
        def doomed(rule: FaultRule) -> bool:
            if fault_id is not None:
                return rule.id == fault_id
            return client_id is None or rule.client_id == client_id
        gone = [f for f in self.faults if doomed(f)]
        self.faults = [f for f in self.faults if not doomed(f)]
        for rule in gone:
            self.release_hold(rule)
        if fault_id is not None:
            self.store.run("DELETE FROM faults WHERE id=?", fault_id)
        elif client_id is not None:
            self.store.run("DELETE FROM faults WHERE client_id=?", client_id)
        else:
            self.store.run("DELETE FROM faults")
        return len(gone)

    def scoped_faults(self, target: str, method: str, path: str, in_handler: bool = False) -> bool:
        """Whether a live rule for one device fits this request: only then must the caller find
        out who sent it (a token lookup, a form read) before `take_fault`."""
        return any(r.client_id is not None and r.matches(target, method, path, in_handler)
                   for r in self.faults)

    def take_fault(self, target: str, method: str, path: str, in_handler: bool = False,
                   client_id: str | None = None) -> FaultRule | None:
        """The first live rule matching this request, with one use consumed.

        `in_handler` asks for the kinds a route handler answers (HANDLER_KINDS), which
        FaultMiddleware never takes. `client_id`: the device that sent the request (None:
        unknown), so a rule for another device is passed over.
        """
        for rule in self.faults:
            if rule.matches(target, method, path, in_handler) and rule.serves(client_id):
                rule.count -= 1
                rule.hits += 1
                self.store.run("UPDATE faults SET count=?, hits=? WHERE id=?",
                               rule.count, rule.hits, rule.id)
                return rule
        return None

    def asset_client(self, asset_id: str) -> str | None:
        """The client id of the device that created `asset_id` (who sends its part PUTs)."""
        row = self.store.one("SELECT d.client_id AS client_id FROM assets a JOIN devices d"
                             " ON d.id = a.device_pk WHERE a.id=?", asset_id)
        return None if row is None else str(row["client_id"])

    def hold_gate(self, rule: FaultRule) -> asyncio.Event:
        """A request matched the `hold` rule: note its arrival; the gate opens on release."""
        rule.arrived_at = self.now()
        gate = self.hold_gates.get(rule.id)
        if gate is None:
            gate = self.hold_gates[rule.id] = asyncio.Event()
        return gate

    def release_hold(self, rule: FaultRule) -> bool:
        """Let the answers the rule holds go; False if none was held. (A later arrival, if
        the rule has uses left, is held again.)"""
        gate = self.hold_gates.pop(rule.id, None)
        if gate is None:
            return False
        gate.set()
        rule.released_at = self.now()
        return True

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
        for rule in self.faults:
            self.release_hold(rule)
        self.faults = []
        self.clock_offset = 0.0
        self.settings = self.base_settings
        self.asset_locks.clear()

    def asset_lock(self, asset_id: str) -> asyncio.Lock:
        lock = self.asset_locks.get(asset_id)
        if lock is None:
            lock = self.asset_locks[asset_id] = asyncio.Lock()
        return lock
