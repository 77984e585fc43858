"""The upload queue as one durable JSON document (temp + fsync + rename + fsync(dir)).

Every change that matters after a power cut is saved before the device acts on it: a file
seen stable is queued, an asset created with its upload URLs, each part the cloud answered
200 for. After a cut the device re-PUTs only the parts not recorded, to the same asset.
Two seeded defects live here on purpose (the mutant matrix needs them, the correct build
never sets them): `durable=False` keeps the queue in memory only (forget-queue) and
`durable_parts=False` never records finished parts on disk (restart-from-zero).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.console_device.sealed import atomic_write

QUEUED, UPLOADING, DONE, FAILED, HELD = "queued", "uploading", "done", "failed", "held"


@dataclass
class Entry:
    """One captured file and how far its upload got."""

    key: str  # path relative to the watch folder
    name: str
    size: int
    mtime: float
    filetype: str
    state: str = QUEUED
    asset_id: str | None = None
    urls: list[str] = field(default_factory=list)
    parts_done: list[int] = field(default_factory=list)
    reason: str | None = None

    def reset_asset(self) -> None:
        self.asset_id, self.urls, self.parts_done = None, [], []


class DurableQueue:
    """Entries in capture order; every mutation is saved before it returns."""

    def __init__(self, path: Path, *, durable: bool = True, durable_parts: bool = True) -> None:
        self.path = path
        self.durable, self.durable_parts = durable, durable_parts
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        if durable:
            self._load()

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # never silently start over: the old file stays for a person to inspect
            self.path.rename(self.path.with_suffix(".unreadable"))
            print(f"QUEUE: {self.path.name} unreadable ({type(exc).__name__}); kept as .unreadable", flush=True)
            return
        for raw in doc.get("entries", []):
            e = Entry(**raw)
            if e.state == UPLOADING:
                e.state = QUEUED  # the process died mid-upload: resume it
            self._entries[e.key] = e

    def _save(self) -> None:
        if not self.durable:
            return
        rows: list[dict[str, Any]] = []
        for e in self._entries.values():
            row = asdict(e)
            if not self.durable_parts and e.state != DONE:
                row["parts_done"] = []
            rows.append(row)
        atomic_write(self.path, json.dumps({"v": 1, "entries": rows}).encode("utf-8"))

    def known(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._entries[entry.key] = entry
            self._save()

    def next_queued(self) -> Entry | None:
        with self._lock:
            return next((e for e in self._entries.values() if e.state == QUEUED), None)

    def update(self, entry: Entry, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(entry, k, v)
            self._save()

    def ack_part(self, entry: Entry, index: int) -> None:
        with self._lock:
            if index not in entry.parts_done:
                entry.parts_done.append(index)
            self._save()

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for e in self._entries.values():
                out[e.state] = out.get(e.state, 0) + 1
            return out
