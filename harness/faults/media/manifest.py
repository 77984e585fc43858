"""`MediaKit`: the `harness.protocols.Media` implementation, and the run's media manifest.

Every generated file and every corruption lands in one manifest (a JSON list of entries:
name, path, size, SHA-256, capture time, format, metadata, intended corruption or null),
rewritten atomically after each call when a path is given, so a power-cut harness still
leaves a manifest that matches what is on disk.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import MediaError
from harness.faults.media import corrupt as corruptors
from harness.faults.media.generate import FixtureGenerator, expand_kinds

MANIFEST_SCHEMA = "c2c-media-manifest/1"


class MediaKit:
    """Makes fixtures, corrupts them and keeps the manifest.

    >>> kit = MediaKit(seed=7, manifest_path=run_dir / "media-manifest.json")
    >>> kit.generate(["jpg", "mov"], media_dir, count=3)
    >>> kit.corrupt(media_dir / "A001_C002_0704XL.MOV", "truncate", keep=0.5)
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        manifest_path: Path | None = None,
        stash_dir: Path | None = None,
        hostile_names: bool = False,
        media_seconds: float = 1.0,
    ) -> None:
        self.seed = seed
        self.generator = FixtureGenerator(
            seed, hostile_names=hostile_names, media_seconds=media_seconds
        )
        self.manifest_path = Path(manifest_path) if manifest_path else None
        self.stash_dir = (
            Path(stash_dir) if stash_dir else Path(tempfile.mkdtemp(prefix="c2c-media-stash-"))
        )
        self._entries: list[dict[str, Any]] = []
        self._growers: dict[str, corruptors.Grower] = {}
        self._scheduled: list[corruptors.ScheduledFault] = []
        self._lock = threading.Lock()

    # --- harness.protocols.Media ---------------------------------------------------------
    def generate(
        self, kinds: Sequence[str], directory: Path, *, count: int = 1
    ) -> list[dict[str, Any]]:
        """`count` files of each kind (kinds may include "all"); returns their manifest entries."""
        if count < 1:
            raise MediaError(f"count must be >= 1, got {count}")
        out = []
        for kind in expand_kinds(kinds):
            for _ in range(count):
                out.append(self._add(self.generator.generate(kind, Path(directory)).to_dict()))
        return out

    def corrupt(self, path: Path, how: str, **params: Any) -> dict[str, Any]:
        """Apply corruption `how` now (see corrupt.HOWS); returns and records its entry."""
        path = Path(path)
        how = corruptors.normalise_how(how)
        stash = self.stash_dir
        if how == "grow":
            record, grower = corruptors.grow(path, stash, **params)
            with self._lock:
                self._growers[str(path)] = grower
        else:
            try:
                record = corruptors.ONE_SHOT[how](path, stash, **params)
            except TypeError as exc:
                raise MediaError(f"bad parameters for corruption {how!r}: {exc}") from exc
        return self._add(self._entry_for(record))

    def manifest(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    # --- extras ---------------------------------------------------------------------------
    def large(self, directory: Path, size: int, *, name: str | None = None) -> dict[str, Any]:
        """A `size`-byte data file (.bin), fast, with its SHA-256."""
        return self._add(self.generator.large(Path(directory), size, name=name).to_dict())

    def generate_named(self, kind: str, directory: Path, name: str) -> dict[str, Any]:
        """One fixture with an exact file name (hostile-name scenarios)."""
        return self._add(self.generator.generate(kind, Path(directory), name=name).to_dict())

    def schedule(
        self,
        path: Path,
        how: str,
        *,
        delay: float | None = None,
        when: Callable[[], bool] | None = None,
        timeout: float = 60.0,
        **params: Any,
    ) -> corruptors.ScheduledFault:
        """Fire `corrupt(path, how)` later: after `delay` s or once `when()` is true."""
        corruptors.normalise_how(how)
        fault = corruptors.ScheduledFault(
            lambda: self.corrupt(path, how, **params), delay=delay, when=when, timeout=timeout
        ).start()
        with self._lock:
            self._scheduled.append(fault)
        return fault

    def stop_growing(self, path: Path) -> int:
        """Stop the writer started by corrupt(path, "grow"); returns bytes appended."""
        with self._lock:
            grower = self._growers.pop(str(Path(path)), None)
        if grower is None:
            raise MediaError(f"no growing writer on {str(path)!r}")
        appended = grower.stop()
        with self._lock:
            for e in self._entries:
                if e["corruption"] and e["corruption"]["how"] == "grow" and e["path"] == str(path):
                    e["corruption"]["appended_bytes"] = appended
        self._write()
        return appended

    def restore(self, entry: dict[str, Any]) -> None:
        """Put the original bytes back for a corruption entry."""
        if not entry.get("corruption"):
            raise MediaError(f"{entry.get('name')!r} is not a corruption entry")
        corruptors.restore({**entry["corruption"], "path": entry["path"]})

    def close(self) -> None:
        """Stop every grower and pending scheduled fault (idempotent)."""
        with self._lock:
            growers, self._growers = list(self._growers.items()), {}
            scheduled, self._scheduled = list(self._scheduled), []
        for fault in scheduled:
            fault.cancel()
        for path, grower in growers:
            appended = grower.stop()
            for e in self._entries:
                if e["corruption"] and e["corruption"]["how"] == "grow" and e["path"] == path:
                    e["corruption"]["appended_bytes"] = appended
        self._write()

    def __enter__(self) -> MediaKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_manifest(self, path: Path) -> Path:
        """Write the manifest atomically (temp file + fsync + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"schema": MANIFEST_SCHEMA, "seed": self.seed, "entries": self.manifest()}
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    # --- internals ------------------------------------------------------------------------
    def _entry_for(self, record: dict[str, Any]) -> dict[str, Any]:
        original = self._find(record["path"])
        entry = {
            "name": Path(record["path"]).name,
            "path": record["path"],
            "kind": original["kind"] if original else None,
            "format": original["format"] if original else None,
            "size": record.get("size"),
            "sha256": record.get("sha256"),
            "capture_time": original["capture_time"] if original else None,
            "capture_time_iso": original["capture_time_iso"] if original else None,
            "metadata": original["metadata"] if original else {},
            "corruption": {
                k: v for k, v in record.items() if k not in ("path", "name", "size", "sha256")
            },
        }
        return entry

    def _find(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            for e in self._entries[::-1]:
                if e["path"] == path and e["corruption"] is None:
                    return e
        return None

    def _add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._entries.append(entry)
        self._write()
        return dict(entry)

    def _write(self) -> None:
        if self.manifest_path is not None:
            self.write_manifest(self.manifest_path)


def load_manifest(path: Path) -> list[dict[str, Any]]:
    """Read a manifest written by MediaKit; a clear error if it is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot read media manifest {str(path)!r}: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != MANIFEST_SCHEMA
        or not isinstance(doc.get("entries"), list)
        or not all(isinstance(e, dict) for e in doc["entries"])
    ):
        raise MediaError(f"{str(path)!r} is not a {MANIFEST_SCHEMA} manifest")
    entries: list[dict[str, Any]] = doc["entries"]
    return entries
