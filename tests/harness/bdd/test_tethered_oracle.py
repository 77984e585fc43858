"""The tethered scenario's delivery verdict against a stand-in bench: one asset per shutter
press, judged only once the device has settled (a late second copy must reach the verdict)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.bdd.bench import Capture
from harness.bdd.state import ScenarioState
from harness.bdd.steps.tethered_steps import _every_frame_once, _wait_settled
from harness.errors import DeliveryFailure, DeviceTimeout
from harness.items.checklist import load_checklist

T0 = 1_800_000_000.0


def State() -> ScenarioState:
    return ScenarioState(items=["C2C-UPL-01"])


class Cloud:
    """Serves `rows`; `later` rows join after `after` calls (an upload that comes late)."""

    def __init__(self, rows: list[dict[str, Any]], later: list[dict[str, Any]] | None = None,
                 after: int = 0) -> None:
        self.rows, self.later, self.after, self.calls = rows, later or [], after, 0

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        self.calls += 1
        return self.rows + (self.later if self.calls > self.after else [])


class FakeBench:
    checklist = load_checklist()
    has_status = False

    def __init__(self, tmp_path: Path, cloud: Cloud, shots: int) -> None:
        card = tmp_path / "vcam"
        card.mkdir()
        (card / "DSC_0001.JPG").write_bytes(b"the frame")
        self.device = SimpleNamespace(vcamera_dir=card, status=lambda: {})
        self.session = SimpleNamespace(checklist=self.checklist)
        self.cloud = cloud
        self.state = State()
        self.state.tether_shots = shots

    def journal(self) -> list[dict[str, Any]]:
        return [{"t": T0 + 1, "started_at": T0, "method": "POST"}]

    def cloud_device_id(self) -> str:
        return "dev-1"

    def measure(self, item: str, name: str, value: float, **context: float) -> bool:
        passed = self.checklist[item].measurement(name).check(value, **context)
        self.state.measurements.append({"item": item, "name": name, "value": value, "passed": passed,
                                        "limits": "== 0 files"})
        return passed


SHA = hashlib.sha256(b"the frame").hexdigest()


def asset(name: str, at: float = T0 + 2, state: str = "complete") -> dict[str, Any]:
    return {"name": name, "asset_id": f"id-{name}", "sha256": SHA, "state": state, "created_at": at,
            "completed_at": at + 0.1 if state == "complete" else None}


def _bench(tmp_path: Path, cloud: Cloud, names: list[str]) -> FakeBench:
    bench = FakeBench(tmp_path, cloud, shots=len(names))
    bench.state.captures = [Capture(name=n, path=tmp_path / n, sha256=SHA, size=9, captured_at=T0) for n in names]
    return bench


def test_one_asset_per_press_passes(tmp_path: Path) -> None:
    names = ["GPH_0099.JPG", "GPH_0101.JPG", "GPH_0099_1.JPG"]  # the camera reused a name after a restart
    bench = _bench(tmp_path, Cloud([asset(n) for n in names]), names)
    _every_frame_once(bench)  # type: ignore[arg-type]
    assert bench.state.measurements == []


def test_a_frame_again_under_a_new_name_is_a_duplicate(tmp_path: Path) -> None:
    names = ["GPH_0099.JPG", "GPH_0101.JPG"]
    earlier = {**asset("OLD.JPG", at=T0 - 50)}  # another scenario's: outside the window
    bench = _bench(tmp_path, Cloud([earlier, *(asset(n) for n in names), asset("GPH_0101_1.JPG")]), names)
    with pytest.raises(DeliveryFailure, match=r"files_duplicated=1 .*3 assets of the camera's frame for 2 shutter "
                                              r"presses: GPH_0101_1.JPG: a camera frame uploaded under a name"):
        _every_frame_once(bench)  # type: ignore[arg-type]
    assert [(m["name"], m["value"]) for m in bench.state.measurements] == [("files_duplicated", 1)]


def test_a_missing_frame_fails(tmp_path: Path) -> None:
    names = ["GPH_0099.JPG", "GPH_0101.JPG"]
    bench = _bench(tmp_path, Cloud([asset("GPH_0099.JPG")]), names)
    with pytest.raises(DeliveryFailure, match=r"1 assets of the camera's frame for 2 shutter presses: "
                                              r"GPH_0101\.JPG: never uploaded"):
        _every_frame_once(bench)  # type: ignore[arg-type]


def test_settling_waits_for_a_late_copy_and_then_for_quiet(tmp_path: Path) -> None:
    """The copy appears after the first polls; settling returns only once it is complete and
    nothing changed for the quiet period, so the verdict that follows sees it."""
    cloud = Cloud([asset("GPH_0099.JPG")], later=[asset("GPH_0099_1.JPG", state="uploading")], after=2)
    bench = _bench(tmp_path, cloud, ["GPH_0099.JPG"])
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="settle"):  # the late copy never completes
        _wait_settled(bench, timeout=1.5, quiet=0.6)  # type: ignore[arg-type]
    cloud.later = [asset("GPH_0099_1.JPG")]
    _wait_settled(bench, timeout=5.0, quiet=0.6)  # type: ignore[arg-type]
    assert time.monotonic() - start >= 2.1
    with pytest.raises(DeliveryFailure, match=r"GPH_0099_1\.JPG"):
        _every_frame_once(bench)  # type: ignore[arg-type]


def test_an_empty_asset_left_by_a_cut_does_not_keep_the_rig_busy(tmp_path: Path) -> None:
    """A cut between the create answer and the device recording it leaves an empty asset of a name
    that a later asset delivers: settled. The same asset with bytes on it is an upload in flight."""
    empty = {**asset("GPH_0107.JPG", state="created"), "asset_id": "id-abandoned", "bytes_received": 0}
    cloud = Cloud([empty, asset("GPH_0107.JPG")])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _wait_settled(_bench(tmp_path / "a", cloud, ["GPH_0107.JPG"]), timeout=5.0, quiet=0.3)  # type: ignore[arg-type]
    partial = {**empty, "bytes_received": 21168}
    with pytest.raises(DeviceTimeout, match="settle"):
        _wait_settled(_bench(tmp_path / "b", Cloud([partial, asset("GPH_0107.JPG")]), ["GPH_0107.JPG"]),  # type: ignore[arg-type]
                      timeout=1.0, quiet=0.3)


def test_an_empty_asset_left_by_a_cut_is_no_second_upload(tmp_path: Path) -> None:
    names = ["GPH_0105.JPG", "GPH_0107.JPG"]
    empty = {**asset("GPH_0107.JPG", state="created"), "asset_id": "id-abandoned", "bytes_received": 0, "sha256": None}
    bench = _bench(tmp_path, Cloud([asset("GPH_0105.JPG"), empty, asset("GPH_0107.JPG")]), names)
    _every_frame_once(bench)  # type: ignore[arg-type]
    assert bench.state.measurements == []
