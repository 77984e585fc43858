"""WF-02 probes the bytes the cloud stored, not the bench's own source (issue #19 point 12).

A device whose upload loses the recorded timecode: the bench's source file still has it (the
old step probed that file and passed); the cloud's copy does not, and the step now fails.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.bdd.bench import Capture
from harness.bdd.steps import media_oracle_steps as steps
from harness.faults.media.manifest import MediaKit


def _shift_time_reference(data: bytes, by: int) -> bytes:
    """The same WAV with its BWF TimeReference moved by `by` samples."""
    at = data.index(b"bext") + 8 + 338
    (ref,) = struct.unpack_from("<Q", data, at)
    return data[:at] + struct.pack("<Q", ref + by) + data[at + 8:]


@dataclass
class FakeCloud:
    copies: dict[str, tuple[str, bytes]]

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return [{"asset_id": a, "name": n, "completed_at": 1.0} for a, (n, _) in self.copies.items()]

    def asset_content(self, asset_id: str, dest: Path) -> Path:
        dest.write_bytes(self.copies[asset_id][1])
        return dest


@dataclass
class Verdict:
    name: str
    outcome: str
    assets: list[str]


@dataclass
class FakeState:
    captures: list[Capture]


@dataclass
class FakeBench:
    cloud: FakeCloud
    state: FakeState
    tmp: Path
    measured: list[tuple[str, str, float]] = field(default_factory=list)

    def ledger(self, *, drained: bool = True) -> Any:
        files = [Verdict(c.name, "intact", [c.name]) for c in self.state.captures]
        return type("L", (), {"files": files})()

    def cloud_device_id(self) -> str:
        return "dev"

    def scratch(self, name: str = "x") -> Path:
        path = self.tmp / f"{name}-{len(list(self.tmp.iterdir()))}"
        path.mkdir()
        return path

    def measure(self, item: str, name: str, value: float, **context: float) -> bool:
        self.measured.append((item, name, value))
        return value == 0

    def exercised(self, what: str) -> None:
        pass


def _bench(tmp_path: Path, shift: int) -> FakeBench:
    with MediaKit(seed=3, stash_dir=tmp_path / "stash") as kit:
        entry = kit.generate(["wav"], tmp_path)[0]
    src = Path(entry["path"])
    cap = Capture(name=src.name, path=src, sha256=entry.get("sha256"), size=src.stat().st_size, captured_at=0.0)
    data = src.read_bytes()
    copy = _shift_time_reference(data, shift) if shift else data
    work = tmp_path / "work"
    work.mkdir()
    return FakeBench(FakeCloud({src.name: (src.name, copy)}), FakeState([cap]), work)


def test_timecode_kept_in_the_cloud_copy_passes(tmp_path: Path) -> None:
    bench = _bench(tmp_path, 0)
    steps._timecode(bench)  # type: ignore[arg-type]
    assert bench.measured == [("C2C-WF-02", "timecode_mismatches", 0)]


def test_timecode_lost_in_the_cloud_copy_fails_although_the_source_has_it(tmp_path: Path) -> None:
    bench = _bench(tmp_path, 48000)
    assert steps._timecode_of(steps._probe(bench, bench.state.captures[0])) is not None  # what the old step saw
    with pytest.raises(AssertionError, match="timecode not kept"):
        steps._timecode(bench)  # type: ignore[arg-type]
    assert bench.measured == [("C2C-WF-02", "timecode_mismatches", 1)]
