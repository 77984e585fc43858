"""The bench checks its own records: no secret it knows of lies anywhere under the reports.

At the end of a run, while the emulator still answers, every file under the reports folder
(Allure attachments, operator evidence, the run's scratch with the device's state and logs) is
searched for the client secret and every token the emulator issued, verbatim. The emulator's
own secret files are skipped: they are deleted when its data dir is closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.cloud.runner import SECRET_FILES


@dataclass(frozen=True)
class SecretScan:
    """What was searched and where a secret was found (paths relative to the reports folder)."""

    files: int
    secrets: int
    hits: tuple[str, ...] = field(default_factory=tuple)

    def row(self) -> dict[str, object]:
        return {"files": self.files, "secrets": self.secrets, "hits": list(self.hits)}


def scan_reports(root: Path, secrets: Iterable[str], cloud_dirs: Iterable[Path] = ()) -> SecretScan:
    """Search every file under `root` for any of `secrets` (never reported: only where they were)."""
    needles = sorted({s.encode() for s in secrets if s and len(s) >= 8})
    own = {(d / name).resolve() for d in cloud_dirs for name in SECRET_FILES}
    files, hits = 0, []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.resolve() in own:
            continue
        files += 1
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(n in data for n in needles):
            hits.append(str(path.relative_to(root)))
    return SecretScan(files=files, secrets=len(needles), hits=tuple(hits))
