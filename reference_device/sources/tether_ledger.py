"""The tether source's durable memory: which camera files were already downloaded.

"No lost frame" across unplugs and power cuts means that on every (re)connect the
source lists the card and downloads whatever it has not got yet. This ledger is that
"got": an append-only JSON-lines file in the state dir, fsynced per line. A torn last
line (power cut mid-write) is ignored on load; at worst that file is downloaded again,
never lost.

A camera file is identified by folder/name + size + mtime, because cameras (and the
virtual camera after a re-init) reuse names.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from reference_device.sources.camera import CameraFileInfo, CameraPath

LEDGER_NAME = "tether-ledger.jsonl"


def identity(path: CameraPath, info: CameraFileInfo) -> str:
    return f"{path.full}|{info.size}|{info.mtime}"


@dataclass
class LedgerEntry:
    key: str
    camera_path: str
    state: str  # downloaded | preexisting | deleted
    local: str | None = None
    sha256: str | None = None
    size: int = 0


class TetherLedger:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LEDGER_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.entries: dict[str, LedgerEntry] = {}
        self.torn_lines = 0
        self.existed = self.path.exists()
        if self.existed:
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            # A torn last line: end it, so the next append starts on a line of its own.
            with open(self.path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                entry = LedgerEntry(**json.loads(line))
            except (ValueError, TypeError):
                self.torn_lines += 1
                continue
            self.entries[entry.key] = entry

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self.entries

    def by_local(self, local: Path) -> LedgerEntry | None:
        with self._lock:
            for entry in self.entries.values():
                if entry.local == str(local) and entry.state == "downloaded":
                    return entry
        return None

    def owns(self, local: Path) -> bool:
        """Some camera file was downloaded to `local` (so it holds that frame)."""
        with self._lock:
            return any(e.local == str(local) for e in self.entries.values())

    def downloaded(self) -> list[LedgerEntry]:
        with self._lock:
            return [
                e for e in self.entries.values() if e.state in ("downloaded", "deleted") and e.local
            ]

    def record(self, entry: LedgerEntry) -> None:
        line = json.dumps(asdict(entry), ensure_ascii=False) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            self.entries[entry.key] = entry
