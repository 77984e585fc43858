""""The user uploads all files" selects what the device lists, as a user does: a capture the
device has not picked up yet must not be left unselected (a full matrix failed C2C-OPT-01 on a
correct device that way: its watch folder saw the third JPEG after the bulk selection)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.bdd.state import Capture, ScenarioState
from harness.bdd.steps import device_steps
from harness.errors import DeviceTimeout
from harness.timeline import Timeline


class SlowWatchDevice:
    """Lists one more capture each status read; records when the bulk selection came."""

    def __init__(self, names: list[str], shown_at_start: int, drops_done: frozenset[str] = frozenset()) -> None:
        self.names, self.shown, self.drops_done = names, shown_at_start, drops_done
        self.selected_with: list[str] | None = None

    def status(self) -> dict[str, Any]:
        listed = [n for n in self.names[:self.shown] if n not in self.drops_done]
        self.shown += 1
        return {"files": [{"id": n, "name": n, "state": "queued"} for n in listed]}

    def control(self, action: str, **args: Any) -> bool:
        assert action == "upload" and args == {"all": True}
        self.selected_with = [f["name"] for f in self.status()["files"]]
        return True


class Cloud:
    def __init__(self, delivered: set[str]) -> None:
        self.delivered = delivered

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return [{"name": n} for n in sorted(self.delivered)]


class FakeBench:
    has_status = True

    def __init__(self, device: SlowWatchDevice, cloud: Cloud, names: list[str]) -> None:
        self.device, self.cloud, self.timeline = device, cloud, Timeline()
        self.state = ScenarioState()
        self.state.captures = [Capture(name=n, path=Path(n), sha256=None, size=1, captured_at=time.time(),
                                       paused=False) for n in names]

    def cloud_device_id(self) -> str:
        return "dev-1"


NAMES = ["_DSC0025.JPG", "_DSC0026.JPG", "_DSC0027.JPG"]


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    real = device_steps.wait_until
    monkeypatch.setattr(device_steps, "wait_until", lambda cond, timeout, what, **kw: real(cond, timeout, what,
                                                                                          interval=0.01))


def test_the_bulk_selection_waits_for_the_device_to_list_every_capture() -> None:
    device = SlowWatchDevice(NAMES, shown_at_start=2)
    device_steps._upload_all(FakeBench(device, Cloud(set()), NAMES))  # type: ignore[arg-type]
    assert device.selected_with is not None and set(NAMES) <= set(device.selected_with)


def test_a_file_the_device_dropped_from_its_list_counts_once_the_cloud_holds_it() -> None:
    device = SlowWatchDevice(NAMES, shown_at_start=3, drops_done=frozenset({"_DSC0025.JPG"}))
    device_steps._upload_all(FakeBench(device, Cloud({"_DSC0025.JPG"}), NAMES))  # type: ignore[arg-type]
    assert device.selected_with == ["_DSC0026.JPG", "_DSC0027.JPG"]


def test_a_capture_the_device_never_lists_is_the_devices_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    real = device_steps.wait_until
    monkeypatch.setattr(device_steps, "wait_until", lambda cond, timeout, what, **kw: real(cond, 0.2, what,
                                                                                          interval=0.01))
    device = SlowWatchDevice(NAMES[:2], shown_at_start=2)
    with pytest.raises(DeviceTimeout, match=r"_DSC0027\.JPG"):
        device_steps._upload_all(FakeBench(device, Cloud(set()), NAMES))  # type: ignore[arg-type]
    assert device.selected_with is None
