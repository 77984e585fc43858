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

import numpy as np

from harness.cloud.runner import SECRET_FILES

GRAM = 8
"""Bytes of the windows `Needles` compares (one little-endian uint64)."""
LONG = 2 * GRAM - 1
"""A secret this long holds a whole aligned window wherever it lies in the data."""
TABLE_BITS = 20
"""Bits of the hash table that screens windows before the exact check (1 MB; ~0.1 % false hits)."""
CHUNK = 16 << 20
"""Bytes screened at once, which bounds the temporary arrays (~3x this)."""
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(64 - TABLE_BITS)


@dataclass(frozen=True)
class SecretScan:
    """What was searched and where a secret was found (paths relative to the reports folder)."""

    files: int
    secrets: int
    hits: tuple[str, ...] = field(default_factory=tuple)

    def row(self) -> dict[str, object]:
        return {"files": self.files, "secrets": self.secrets, "hits": list(self.hits)}


def _slots(keys: np.ndarray) -> np.ndarray:
    """Each window's slot in the screening table (multiplicative hashing; uint64 wraps)."""
    return ((keys * _MIX) >> _SHIFT).astype(np.intp)


class Needles:
    """Whether any of many secrets occurs in some bytes, in one pass over them.

    A run ends with ~100 secrets (the client secret and every token the emulator issued) and
    a shard's folder holds ~200 MB (media, stored parts): a search per secret cost a second of
    CPU per shard. A secret of LONG bytes or more, wherever it lies, covers a whole window of
    GRAM bytes that starts at a multiple of GRAM, equal to its own window at one of the
    offsets 0..GRAM-1. So only the aligned windows of the data are looked up: screened by a
    hash table of those windows, checked exactly, and each hit is confirmed by a plain search
    around it. Shorter secrets are searched for one by one.
    """

    def __init__(self, needles: Iterable[bytes]) -> None:
        unique = sorted(set(needles))
        self.long = [n for n in unique if len(n) >= LONG]
        self.short = [n for n in unique if len(n) < LONG]
        grams = {int.from_bytes(n[o:o + GRAM], "little") for n in self.long for o in range(GRAM)}
        self._grams = np.array(sorted(grams), dtype=np.uint64)
        self._table = np.zeros(1 << TABLE_BITS, dtype=bool)
        self._table[_slots(self._grams)] = True
        self._longest = max(map(len, self.long), default=0)

    def __len__(self) -> int:
        return len(self.long) + len(self.short)

    def found_in(self, data: bytes) -> bool:
        if any(n in data for n in self.short):
            return True
        if not self.long:
            return False
        if len(data) < CHUNK:
            return self._in_chunk(data, 0, len(data))
        # chunks start at multiples of GRAM and overlap by the longest secret: each occurrence
        # lies whole inside one of them
        return any(self._in_chunk(data, start, min(len(data), start + CHUNK + self._longest))
                   for start in range(0, len(data), CHUNK))

    def _in_chunk(self, data: bytes, start: int, end: int) -> bool:
        keys = np.frombuffer(data, dtype="<u8", count=(end - start) // GRAM, offset=start)
        screened = np.flatnonzero(self._table[_slots(keys)])
        exact = screened[np.isin(keys[screened], self._grams)]
        for index in exact.tolist():
            at = start + index * GRAM
            window = data[max(0, at - GRAM + 1):at + self._longest]
            if any(n in window for n in self.long):
                return True
        return False


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
    needles = Needles(s.encode() for s in secrets if s and len(s) >= 8)
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
        if needles.found_in(data):
            hits.append(str(path.relative_to(root)))
    return SecretScan(files=files, secrets=len(needles), hits=tuple(hits))
