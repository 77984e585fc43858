"""The bench checks its own records: no secret it knows of lies anywhere under the reports.

At the end of a run, while the emulator still answers, every file under the reports folder
(Allure attachments, operator evidence, the run's scratch with the device's state and logs) is
searched for the client secret and every token the emulator issued, verbatim. The emulator's
own secret files are skipped: they are deleted when its data dir is closed.

A sharded run has one run folder per shard under the same work folder, each holding its own
emulator's blobs and its device's media. A shard searches its own run folder and the shared
files, not the other shards' run folders: their secrets are their own emulators', and their own
shards search them. (Every shard searching everything cost more CPU than the scenarios did.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
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


def _files(root: Path, own_run: Path | None) -> Iterator[Path]:
    """Every regular file under `root`, minus the run folders beside `own_run` (when given)."""
    work, own = (own_run.parent.resolve(), own_run.resolve()) if own_run is not None else (None, None)
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        if work is not None and here.resolve() == work:
            dirs[:] = [d for d in dirs if (here / d).resolve() == own]
        dirs.sort()
        for name in sorted(names):
            path = here / name
            if path.is_file() and not path.is_symlink():
                yield path


def scan_reports(root: Path, secrets: Iterable[str], cloud_dirs: Iterable[Path] = (),
                 own_run: Path | None = None) -> SecretScan:
    """Search every file under `root` for any of `secrets` (never reported: only where they were).

    With `own_run` (this shard's run folder), the other run folders beside it are left out."""
    needles = sorted({s.encode() for s in secrets if s and len(s) >= 8})
    own = {(d / name).resolve() for d in cloud_dirs for name in SECRET_FILES}
    files, hits = 0, []
    for path in _files(root, own_run):
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
