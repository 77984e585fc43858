"""Valid capture fixtures in every checklist format, deterministic for a seed.

Kinds: jpg (EXIF), heic, tiff, dng, wav (broadcast WAV with bext timecode), mp4 (H.264 +
AAC, faststart), mov (H.264 + PCM), prores (ProRes 422 Proxy MOV), cube (3D LUT), and bin.

Large files: a real video of N bytes would take seconds to minutes to encode, and a
small video followed by padding is *not* a valid video (a full decode rejects it), so
large fixtures are kind "bin": seeded pseudo-random bytes written in 8 MiB blocks
(~1 GB/s), with the SHA-256 recorded while writing. The cloud treats them as data files;
upload-size scenarios do not need decodable pictures, only exact bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import MediaError
from harness.faults.media import encoders
from harness.faults.media.names import Naming

KINDS: tuple[str, ...] = (
    "jpg",
    "heic",
    "tiff",
    "dng",
    "wav",
    "mp4",
    "mov",
    "prores",
    "cube",
    "bin",
)
ALIASES: dict[str, str] = {
    "jpeg": "jpg",
    "heif": "heic",
    "tif": "tiff",
    "raw": "dng",
    "bwf": "wav",
    "h264": "mp4",
    "prores_mov": "prores",
    "lut": "cube",
    "data": "bin",
}
EXTENSIONS: dict[str, str] = {
    "jpg": ".JPG",
    "heic": ".HEIC",
    "tiff": ".TIF",
    "dng": ".DNG",
    "wav": ".WAV",
    "mp4": ".MP4",
    "mov": ".MOV",
    "prores": ".MOV",
    "cube": ".cube",
    "bin": ".bin",
}
FORMATS: dict[str, str] = {
    "jpg": "jpeg",
    "heic": "heif",
    "tiff": "tiff",
    "dng": "dng",
    "wav": "bwf",
    "mp4": "mp4-h264",
    "mov": "mov-h264",
    "prores": "mov-prores",
    "cube": "cube-lut",
    "bin": "data",
}
BLOCK = 8 * 1024 * 1024


def normalise_kind(kind: str) -> str:
    k = kind.strip().lower().lstrip(".")
    k = ALIASES.get(k, k)
    if k not in KINDS:
        raise MediaError(f"unknown media kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return k


def expand_kinds(kinds: Sequence[str]) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        if kind.strip().lower() == "all":
            out += [k for k in KINDS if k != "bin"]
        else:
            out.append(normalise_kind(kind))
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            h.update(block)
    return h.hexdigest()


@dataclass
class Fixture:
    """One generated file and what it claims to be."""

    path: Path
    kind: str
    format: str
    size: int
    sha256: str
    capture_time: datetime
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.path.name,
            "path": str(self.path),
            "kind": self.kind,
            "format": self.format,
            "size": self.size,
            "sha256": self.sha256,
            "capture_time": self.capture_time.timestamp(),
            "capture_time_iso": self.capture_time.isoformat(),
            "metadata": self.metadata,
            "corruption": None,
        }


class FixtureGenerator:
    """Makes valid fixtures; the same seed gives the same names, metadata and content."""

    def __init__(
        self, seed: int = 0, *, hostile_names: bool = False, media_seconds: float = 1.0
    ) -> None:
        self.seed = seed
        self.naming = Naming(seed=seed, hostile=hostile_names)
        self.media_seconds = media_seconds
        self._rng = np.random.default_rng(seed)

    def _name_for(self, kind: str, when: datetime) -> str:
        ext = EXTENSIONS[kind]
        if kind in ("jpg", "heic", "tiff", "dng"):
            return self.naming.still_name(ext)
        if kind == "wav":
            return self.naming.audio_name(ext)
        if kind == "cube":
            return self.naming.lut_name()
        if kind == "bin":
            return self.naming.data_name()
        return self.naming.clip_name(ext, when)

    def generate(
        self, kind: str, directory: Path, *, name: str | None = None, size: int | None = None
    ) -> Fixture:
        """Write one fixture of `kind` into `directory` (atomically: temp file, then rename)."""
        kind = normalise_kind(kind)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        when = self.naming.next_capture_time()
        filename = name if name is not None else self._name_for(kind, when)
        _check_name(filename)
        target = directory / filename
        meta = self.naming.camera_meta(kind)
        rng = np.random.default_rng(self._rng.integers(0, 2**63))
        tc = f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}:00"
        fd, tmp_name = tempfile.mkstemp(prefix=".c2c-gen-", suffix=EXTENSIONS[kind], dir=directory)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            digest: str | None = None
            if kind == "jpg":
                info = encoders.write_jpeg(tmp, when, meta, rng)
            elif kind == "heic":
                info = encoders.write_heic(tmp, when, meta, rng)
            elif kind == "tiff":
                info = encoders.write_tiff(tmp, when, meta, rng)
            elif kind == "dng":
                info = encoders.write_dng(tmp, when, meta, rng)
            elif kind == "wav":
                info = encoders.write_wav(
                    tmp, when, meta, rng, timecode=tc, title=target.stem, seconds=self.media_seconds
                )
            elif kind in ("mp4", "mov", "prores"):
                info = encoders.write_video(
                    tmp,
                    kind,
                    when,
                    meta,
                    rng,
                    timecode=tc,
                    title=target.stem,
                    seconds=self.media_seconds,
                )
            elif kind == "cube":
                info = encoders.write_cube(tmp, meta, rng)
            else:
                digest, info = _write_data(tmp, size if size is not None else 64 * 1024, rng)
            os.utime(tmp, (when.timestamp(), when.timestamp()))
            _fsync(tmp)
            os.replace(tmp, target)
        except MediaError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise MediaError(f"could not generate {kind} fixture {filename!r}: {exc}") from exc
        stat = target.stat()
        return Fixture(
            path=target,
            kind=kind,
            format=FORMATS[kind],
            size=stat.st_size,
            sha256=digest or sha256_file(target),
            capture_time=when,
            metadata={**meta, **info, "seed": self.seed},
        )

    def large(self, directory: Path, size: int, *, name: str | None = None) -> Fixture:
        """A data file of exactly `size` bytes, fast (see the module docstring for why .bin)."""
        if size < 0:
            raise MediaError(f"size must be >= 0, got {size}")
        return self.generate("bin", directory, name=name, size=size)


def _write_data(path: Path, size: int, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    h = hashlib.sha256()
    left = size
    with open(path, "wb") as f:
        while left > 0:
            block = rng.bytes(min(BLOCK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest(), {"bytes": size}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise MediaError(f"invalid fixture file name {name!r}: must be a single path component")
    if len(name.encode("utf-8")) > 255:
        raise MediaError(
            f"fixture file name too long ({len(name.encode())} bytes > 255): {name[:40]!r}..."
        )
