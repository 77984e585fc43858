"""The mid-file power cut (harness/bdd/steps/power_steps.py): it lands while the cloud holds some
parts of a file and not all, retries on another file (the cloud taking parts in more slowly) when
the device was too fast, says "bench error" after a bounded number of misses, and the re-sent
bytes measure judges only the files a cut landed in."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.bdd.bench import Bench, Capture, ScenarioState, SessionBench
from harness.bdd.steps import power_steps, transfer_oracle_steps
from harness.errors import BenchFailure
from harness.items.checklist import load_checklist
from harness.timeline import Timeline

MIB = 1024 * 1024
PARTS = 8


class Upload:
    """One file going up in the fake cloud: `step` parts land per ledger read while powered."""

    def __init__(self, name: str, step: int, *, lands_at_cut: bool = False) -> None:
        self.name, self.step, self.lands_at_cut = name, step, lands_at_cut
        self.parts = 0

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "asset_id": f"asset-{self.name}", "parts_expected": PARTS,
                "parts_received": self.parts, "filesize": PARTS * 5 * MIB,
                "completed_at": 1.0 if self.parts >= PARTS else None}


class FakeRig:
    """Cloud, power and device of a scenario: uploads advance while the power is on."""

    def __init__(self, steps: list[int], *, lands_at_cut: bool = False) -> None:
        self.steps = steps  # per file, in capture order: parts landing per ledger read
        self.lands_at_cut = lands_at_cut
        self.uploads: list[Upload] = []
        self.powered = True
        self.events: list[str] = []
        self.settings: dict[str, Any] = {"serial_ingest_rate": 0}
        self.journal_rows: list[dict[str, Any]] = []

    # cloud
    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        for u in self.uploads:
            if self.powered:
                u.parts = min(PARTS, u.parts + u.step)
        return [u.row() for u in self.uploads]

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return [r for r in self.journal_rows if r["id"] > since]

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        self.settings.update(changes)
        if changes:
            self.events.append(f"ingest {changes.get('serial_ingest_rate')}")
        return dict(self.settings)

    def devices(self) -> list[dict[str, Any]]:
        return []

    def clear_faults(self) -> None:
        self.events.append("faults cleared")

    # device
    def power(self) -> FakeRig:
        return self

    def off(self) -> None:
        if self.lands_at_cut:  # the last parts were already on the wire: they land as it dies
            for u in self.uploads:
                u.parts = PARTS
        self.powered = False
        self.events.append("off")

    def on(self) -> None:
        self.powered = True
        self.events.append("on")

    def capture(self, paths: list[Path]) -> list[Path]:
        for p in paths:
            self.uploads.append(Upload(p.name, self.steps[len(self.uploads)]))
        return paths

    def status(self) -> dict[str, Any]:
        return {}


class FakeMedia:
    def __init__(self) -> None:
        self.made = 0

    def large(self, directory: Path, size: int) -> dict[str, Any]:
        self.made += 1
        path = directory / f"RETRY_{self.made}.bin"
        return {"name": path.name, "path": str(path), "size": size, "sha256": None}

    def manifest(self) -> list[dict[str, Any]]:
        return []


def _bench(tmp_path: Path, rig: FakeRig) -> Bench:
    profile = SimpleNamespace(status=SimpleNamespace(driver="none"), capabilities=[], name="fake")
    session = SessionBench(profile=profile, workdir=tmp_path, seed=1, prompt=None,  # type: ignore[arg-type]
                           timeline=Timeline(), checklist=load_checklist())
    session._cloud = rig  # type: ignore[assignment]
    session._device = rig  # type: ignore[assignment]
    session._media = FakeMedia()  # type: ignore[assignment]
    bench = Bench(session, ScenarioState())
    rig.capture([tmp_path / "BIG.bin"])
    bench.state.captures.append(Capture(name="BIG.bin", path=tmp_path / "BIG.bin", sha256=None,
                                        size=PARTS * 5 * MIB, captured_at=time.time()))
    return bench


def _cuts(bench: Bench) -> int:
    return sum(1 for w in bench.timeline.windows() if w["layer"] == "power")


def test_a_slow_device_is_cut_after_two_parts_and_before_the_last(tmp_path: Path) -> None:
    rig = FakeRig([1])
    bench = _bench(tmp_path, rig)
    power_steps._cut_mid_upload(bench)
    (row,) = [u.row() for u in rig.uploads]
    assert 2 <= row["parts_received"] < PARTS and not rig.powered
    assert rig.events == ["off"] and bench.state.power_cut_hits == ["BIG.bin"]
    assert bench.state.exercised == []


def test_a_device_too_fast_for_the_cut_gets_another_file_and_a_slower_cloud(tmp_path: Path) -> None:
    rig = FakeRig([PARTS, 1])  # the first file lands whole at once, the second part by part
    bench = _bench(tmp_path, rig)
    power_steps._serial_ingest(bench, 4)
    power_steps._cut_mid_upload(bench)
    # no cut was spent on the finished file; the cloud was slowed before the second one
    assert rig.events == [f"ingest {4 * MIB}", f"ingest {2 * MIB}", "off"]
    assert [c.name for c in bench.state.captures] == ["BIG.bin", "RETRY_1.bin"]
    assert bench.state.captures[1].size == bench.state.captures[0].size
    assert bench.state.power_cut_hits == ["RETRY_1.bin"]
    assert "attempt 2" in bench.state.exercised[0] and "BIG.bin complete" in bench.state.exercised[0]
    assert bench.state.restore_settings == {"serial_ingest_rate": 0}
    bench.cleanup()
    assert rig.settings["serial_ingest_rate"] == 0 and rig.events[-1] == "ingest 0"


def test_a_cut_that_lands_after_the_file_completed_powers_back_on_and_retries(tmp_path: Path) -> None:
    rig = FakeRig([1] * power_steps.CUT_ATTEMPTS, lands_at_cut=True)
    bench = _bench(tmp_path, rig)
    with pytest.raises(BenchFailure, match="complete at the moment of the cut"):
        power_steps._cut_mid_upload(bench)
    # every attempt cut and restored the power (the device must be up to upload the next file);
    # the knob, off in this scenario, was switched on for the retries and then slowed down
    assert rig.events.count("off") == rig.events.count("on") == power_steps.CUT_ATTEMPTS
    assert f"ingest {power_steps.RETRY_INGEST_RATE}" in rig.events
    assert f"ingest {power_steps.RETRY_INGEST_RATE // 2}" in rig.events
    assert bench.state.power_cut_hits == []


def test_a_cut_that_never_lands_mid_file_is_a_bench_error_after_the_bounded_attempts(tmp_path: Path) -> None:
    rig = FakeRig([PARTS] * power_steps.CUT_ATTEMPTS)
    bench = _bench(tmp_path, rig)
    with pytest.raises(BenchFailure, match=f"never landed mid-transfer in {power_steps.CUT_ATTEMPTS} attempts"):
        power_steps._cut_mid_upload(bench)
    assert len(bench.state.captures) == power_steps.CUT_ATTEMPTS and "off" not in rig.events


def test_a_file_sent_as_one_part_is_a_bench_error_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Upload, "row", lambda self: {"name": self.name, "parts_expected": 1,
                                                     "parts_received": 1, "completed_at": 1.0})
    rig = FakeRig([1])
    bench = _bench(tmp_path, rig)
    with pytest.raises(BenchFailure, match="as one part"):
        power_steps._cut_mid_upload(bench)
    assert rig.events == [] and len(bench.state.captures) == 1


def test_a_two_part_file_is_cut_after_its_first_part() -> None:
    assert power_steps.parts_needed({"parts_expected": 2}) == 1
    assert power_steps.parts_needed({"parts_expected": 3}) == 2
    assert power_steps.parts_needed({"parts_expected": 8}) == 2


def _put(rig: FakeRig, asset: str, part: int, nbytes: int, status: int = 200) -> None:
    rig.journal_rows.append({"id": len(rig.journal_rows) + 1, "method": "PUT", "status": status,
                             "path": f"/s3/parts/{asset}/{part}/0", "bytes_in": nbytes})


def test_resent_bytes_are_judged_on_the_file_the_cut_landed_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A miss cut and a hit cut: the hit file's re-sent bytes over one cut, not over two."""
    rig = FakeRig([PARTS, PARTS])
    bench = _bench(tmp_path, rig)
    rig.capture([tmp_path / "HIT.bin"])
    bench.state.captures.append(Capture(name="HIT.bin", path=tmp_path / "HIT.bin", sha256=None,
                                        size=PARTS * 5 * MIB, captured_at=time.time()))
    big, hit = "asset-BIG.bin", "asset-HIT.bin"
    rig.journal_rows.clear()
    for n in range(1, PARTS + 1):
        _put(rig, big, n, 5 * MIB)
    for n in (1, 2, 3):  # stored before the cut, then re-sent from zero after it
        _put(rig, hit, n, 5 * MIB)
    for n in range(1, PARTS + 1):
        _put(rig, hit, n, 5 * MIB)
    for _ in range(2):  # two power windows: the miss and the hit
        power_steps._cut(bench)
        power_steps._restore(bench)
    bench.state.power_cut_hits = ["HIT.bin"]
    bench.state.started_at = 0.0
    monkeypatch.setattr(Bench, "ledger", lambda self, drained=True: SimpleNamespace(files=["x"]))
    transfer_oracle_steps._resent(bench)
    (m,) = bench.state.measurements
    assert m["value"] == 3 * 5 * MIB and not m["passed"]  # 3 parts re-sent by one cut: over one part
    bench.state.measurements.clear()
    bench.state.power_cut_hits = []
    transfer_oracle_steps._resent(bench)
    assert bench.state.measurements[0]["value"] == 1.5 * 5 * MIB  # diluted over both cuts
