"""Regressions found by the certification harness (C2C-OPT-03, C2C-OPT-06, C2C-CTL-02).

Each runs through the real stack: the device as a real process (or the engine in-process)
against the real emulator over TLS, driven through the local control API as the harness is.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_device.testing import DeviceProcess
from tests.reference_device.conftest import device_config, sha256, wait_until
from tests.reference_device.media_samples import jpeg, wav
from tests.reference_device.test_device_process import _paired
from tests.reference_device.test_engine_e2e import make_engine, pair
from tests.reference_device.test_engine_faults import complete_rows, file_state

MIB = 1024 * 1024


def post(dev: DeviceProcess, action: str, body: dict[str, Any]) -> dict[str, Any]:
    url = (dev.state_dir / "status-url").read_text().strip()
    answer = httpx.post(f"{url}/api/{action}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def drop(media: Path, name: str, data: bytes) -> Path:
    """Place a finished file atomically (written outside, renamed in), as the harness does."""
    tmp = media.parent / f".{name}.part"
    tmp.write_bytes(data)
    dest = media / name
    os.replace(tmp, dest)
    return dest


def watch_tracked(status: dict[str, Any] | None) -> int:
    return sum(int(s.get("tracked") or 0) for s in (status or {}).get("sources", []) if s.get("kind") == "watch")


def test_filetype_priority_then_upload_all_uploads_everything_in_order(
    cloud: Any, control: Any, tmp_path: Path
) -> None:
    """C2C-OPT-03: priority + "upload all" sent before the device has queued the files."""
    rng = random.Random(3)
    # the config ranks .jpg above .wav, so only the API call can put the .wav files first
    values = device_config(cloud, tmp_path, mode="manual", parallel_files=2, quiet_period=1.0,
                           filetype_priorities={".jpg": 50, ".wav": 10})
    media = tmp_path / "media"
    project = control.create_project("Priorities")
    dev = DeviceProcess(values, client_secret=control.client_secret())
    try:
        dev.start()
        _paired(dev, control, project["id"])
        wait_until(lambda: (dev.state_dir / "status-url").exists(), 10, "status url")
        files = [drop(media, f"still{i}.jpg", jpeg(rng, 30_000 + i)) for i in range(3)]
        # the jpgs are seen (and settle) before the wavs exist: a device that starts on the
        # first settled files would upload a jpg first
        dev.wait_for(lambda s: watch_tracked(s) >= 3, 10, "the jpgs seen by the watch folder")
        files += [drop(media, f"sound{i}.wav", wav(rng, 40_000 + i)) for i in range(2)]
        post(dev, "priority", {"filetype": ".wav", "priority": 100})
        post(dev, "upload", {"all": True})
        dev.wait_for(lambda s: s["queue"]["completed"] == 5, 60, "all five files uploaded")
        rows = sorted((r for r in control.ledger() if r["state"] == "complete"), key=lambda r: r["created_at"])
        assert sorted(r["name"] for r in rows) == sorted(p.name for p in files)
        by_name = {r["name"]: r for r in rows}
        for p in files:
            assert by_name[p.name]["sha256"] == sha256(p), p.name
        order = [r["name"] for r in rows]
        assert all(n.endswith(".wav") for n in order[:2]), f"upload order {order} does not put .wav first"
    finally:
        dev.stop()


def test_upload_all_does_not_select_files_placed_afterwards(cloud: Any, control: Any, tmp_path: Path) -> None:
    """Manual mode: "upload all" covers what is in storage then, not later captures."""
    engine = make_engine(cloud, control, tmp_path, mode="manual", quiet_period=0.5)
    media = tmp_path / "media"
    rng = random.Random(4)
    engine.start()
    try:
        pair(engine, control)
        drop(media, "before.jpg", jpeg(rng, 5000))
        assert engine.control("upload", all=True)["ok"]
        wait_until(lambda: (f := file_state(engine, "before.jpg")) and f["state"] == "done", 30, "before.jpg uploaded")
        drop(media, "after.jpg", jpeg(rng, 5000))
        wait_until(lambda: file_state(engine, "after.jpg"), 20, "after.jpg queued")
        mark = control.journal()[-1]["id"]
        with pytest.raises(AssertionError):  # three worker wake-ups: an unselected file stays
            wait_until(lambda: [j for j in control.journal(since=mark) if j["path"] == "/v2/devices/assets"],
                       1.5, "an asset create")
        assert file_state(engine, "after.jpg")["state"] == "queued"  # type: ignore[index]
    finally:
        engine.stop()


def _pause_window(control: Any) -> dict[str, Any]:
    return control.devices()[0]["pause_windows"][-1]


def test_offset_is_precise_against_pause_windows(cloud: Any, control: Any, tmp_path: Path) -> None:
    """C2C-CTL-02: a sub-second offset decides held vs uploaded with 0.5 s margins."""
    # a 1 s quiet period makes every "wait until queued" last over 1 s: the pause window is
    # longer than the margins, and capture times set in the past are in the past
    engine = make_engine(cloud, control, tmp_path, mode="manual", quiet_period=1.0)
    media = tmp_path / "media"
    rng = random.Random(5)
    captures: dict[str, float] = {}

    def capture(name: str, when: float) -> None:
        path = media.parent / f".{name}.part"
        path.write_bytes(jpeg(rng, 4000))
        os.utime(path, (when, when))
        os.replace(path, media / name)
        captures[name] = when
        wait_until(lambda: file_state(engine, name), 20, f"{name} queued")

    engine.start()
    try:
        pair(engine, control)
        device = control.devices()[0]
        control.pause_device(device["id"])
        wait_until(lambda: engine.snapshot()["cloud_status"] == "paused", 20, "device sees pause")
        start = float(_pause_window(control)["start"])
        capture("before.jpg", start - 0.5)
        capture("in_pause.jpg", start + 0.5)
        control.resume_device(device["id"])
        wait_until(lambda: engine.snapshot()["cloud_status"] == "online", 20, "device sees resume")
        end = float(_pause_window(control)["end"])
        assert end - start > 1.0
        capture("late_pause.jpg", end - 0.5)
        capture("after.jpg", end + 0.5)
        assert engine.control("upload", all=True)["ok"]
        wait_until(lambda: all(file_state(engine, n)["state"] in ("done", "held")  # type: ignore[index]
                               for n in captures), 30, "every file uploaded or held")
        states = {n: file_state(engine, n)["state"] for n in captures}  # type: ignore[index]
        assert states == {"before.jpg": "done", "in_pause.jpg": "held", "late_pause.jpg": "held",
                          "after.jpg": "done"}, states
        rows = {r["name"]: r for r in control.ledger()}
        for name in ("before.jpg", "after.jpg"):
            row = rows[name]
            # whole-second offsets would be up to 0.5 s off; ms offsets only by the latency
            assert abs(row["capture_time"] - captures[name]) < 0.2, (name, row, captures[name])
        assert not complete_rows(control, "in_pause.jpg") and not complete_rows(control, "late_pause.jpg")
        assert (media / "in_pause.jpg").exists()  # held media stays on the device
    finally:
        engine.stop()


def _puts_for(control: Any, asset_id: str, since: int = 0) -> list[dict[str, Any]]:
    return [j for j in control.journal(since=since) if j["method"] == "PUT" and asset_id in j["path"]]


def test_cancel_all_stops_parts_and_survives_power_cut(cloud: Any, control: Any, tmp_path: Path) -> None:
    """C2C-OPT-06: cancel-all stops in-flight parts at once, and a restart does not resume them."""
    rng = random.Random(6)
    values = device_config(cloud, tmp_path, parallel_files=1, parallelism=2, part_size=5 * MIB,
                           max_upload_rate=3 * MIB, quiet_period=0.3)
    media = tmp_path / "media"
    project = control.create_project("Cancel")
    dev = DeviceProcess(values, client_secret=control.client_secret())
    try:
        dev.start()
        _paired(dev, control, project["id"])
        wait_until(lambda: (dev.state_dir / "status-url").exists(), 10, "status url")
        drop(media, "long.bin", rng.randbytes(16 * MIB))
        # queued.bin arrives only once long.bin holds the single file slot: dropped together,
        # both can settle in one scan and the small one may be taken first
        dev.wait_for(lambda s: any(f["name"] == "long.bin" and f.get("bytes_done", 0) > 0 for f in s["files"]),
                     30, "long.bin started")
        drop(media, "queued.bin", rng.randbytes(2 * MIB))

        def under_way(s: dict[str, Any]) -> bool:
            files = {f["name"]: f for f in s["files"]}
            return ("queued.bin" in files and files["queued.bin"]["state"] == "queued"
                    and "long.bin" in files and files["long.bin"]["bytes_done"] > MIB)
        dev.wait_for(under_way, 30, "long.bin under way, queued.bin waiting")
        before_cancel = control.journal()[-1]["id"]
        assert post(dev, "cancel", {"all": True})["cancelled"] == 2
        dev.kill()  # power cut straight after the answer: the cancel must already be committed
        dev.start()
        st = dev.wait_for(lambda s: s["queue"]["cancelled"] == 2 and s["pairing"]["state"] == "paired",
                          30, "both files cancelled after restart")
        assert st["queue"]["queued"] == 0 and st["queue"]["uploading"] == 0
        asset = next(f["asset_id"] for f in st["files"] if f["name"] == "long.bin")
        assert asset
        # only the parts in flight at the cancel were journaled (aborted), none accepted
        late = _puts_for(control, asset, since=before_cancel)
        assert len(late) <= 2 and all(j["status"] != 200 for j in late), late
        mark = control.journal()[-1]["id"]
        drop(media, "next.bin", rng.randbytes(4000))  # the queue goes on
        dev.wait_for(lambda s: any(f["name"] == "next.bin" and f["state"] == "done" for f in s["files"]),
                     30, "next.bin uploaded")
        assert not _puts_for(control, asset, since=mark), "parts of a cancelled file after restart"
        assert not complete_rows(control, "long.bin") and not complete_rows(control, "queued.bin")
        assert not [r for r in control.ledger() if r["name"] == "queued.bin"]
    finally:
        dev.stop()


def test_offset_is_recomputed_when_the_create_is_retried(cloud: Any, control: Any, tmp_path: Path) -> None:
    """A create retried after a 429 (Retry-After: 1 s) sends the offset of that moment."""
    engine = make_engine(cloud, control, tmp_path, quiet_period=0.3)
    media = tmp_path / "media"
    engine.start()
    try:
        pair(engine, control)
        control.add_fault({"target": "api", "path": "/v2/devices/assets$", "method": "POST", "count": 1,
                           "kind": "too_many_requests", "retry_after": 1})
        captured = time.time() - 5.0
        path = media.parent / ".retried.jpg.part"
        path.write_bytes(jpeg(random.Random(7), 4000))
        os.utime(path, (captured, captured))
        os.replace(path, media / "retried.jpg")
        wait_until(lambda: (f := file_state(engine, "retried.jpg")) and f["state"] == "done", 30, "uploaded")
        creates = [j for j in control.journal() if j["path"] == "/v2/devices/assets" and j["method"] == "POST"]
        assert len(creates) == 2 and creates[0]["status"] == 429 and creates[1]["status"] < 300, creates
        row = next(r for r in control.ledger() if r["name"] == "retried.jpg")
        assert abs(row["capture_time"] - captured) < 0.2, (row, captured)
    finally:
        engine.stop()
