"""Retry taxonomy, pause, corrupt media, tokens and controls through the real emulator."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from reference_device.engine import Engine
from tests.reference_device.conftest import sha256, wait_until
from tests.reference_device.test_engine_e2e import make_engine, pair


def complete_rows(control: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in control.ledger() if r["name"] == name and r["state"] == "complete"]


def file_state(engine: Engine, name: str) -> dict[str, Any] | None:
    return next((f for f in engine.snapshot()["files"] if f["name"] == name), None)


def drop_and_check(engine: Engine, control: Any, media: Path, name: str, size: int) -> None:
    path = media / name
    path.write_bytes(os.urandom(size))
    wait_until(lambda: (f := file_state(engine, name)) and f["state"] == "done", 30,
               f"{name} uploaded")
    rows = complete_rows(control, name)
    assert len(rows) == 1, f"{name}: {rows}"
    assert rows[0]["sha256"] == sha256(path), name


def test_each_retryable_error_recovers(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    media = tmp_path / "media"
    engine.start()
    try:
        pair(engine, control)
        s3_kinds = ["slowdown", "internal_error", "request_timeout", "expired_url",
                    "too_many_requests", "unauthorized", "drop"]
        api_kinds = ["slowdown", "internal_error", "request_timeout", "too_many_requests",
                     "unauthorized", "drop"]
        rules = {}
        for target, kinds, path in (("s3", s3_kinds, "/s3/"), ("api", api_kinds, "/v2/devices/assets")):
            for kind in kinds:
                rule = {"target": target, "path": path, "count": 1, "kind": kind, "retry_after": 1}
                rules[control.add_fault(rule)] = (target, kind)
        names = [f"f{i}.bin" for i in range(4)]
        for name in names:
            (media / name).write_bytes(os.urandom(40_000))
        wait_until(lambda: engine.snapshot()["queue"]["completed"] == len(names), 60, "all uploaded")
        for name in names:
            rows = complete_rows(control, name)
            assert len(rows) == 1 and rows[0]["sha256"] == sha256(media / name), name
        left = {f["id"]: f["count"] for f in control.faults()}
        unused = [rules[i] for i in rules if left.get(i, 0) > 0]
        assert not unused, f"fault rules never hit: {unused}"
        snap = engine.snapshot()
        assert snap["queue"]["failed"] == 0 and snap["token"]["state"] == "valid"
        assert snap["token"]["refresh_count"] >= 1  # the API 401 was answered by a refresh
    finally:
        engine.stop()


def test_fatal_error_surfaces_and_queue_continues(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    media = tmp_path / "media"
    engine.start()
    try:
        pair(engine, control)
        control.update_settings(max_name_length=20)
        (media / ("x" * 40 + ".bin")).write_bytes(b"data" * 100)
        drop_and_check(engine, control, media, "ok.bin", 5000)
        bad = wait_until(lambda: (f := file_state(engine, "x" * 40 + ".bin")) and f["state"] == "failed" and f,
                         20, "long name failed")
        assert "HTTP 4" in bad["reason"]
        assert engine.snapshot()["queue"]["failed"] == 1
    finally:
        engine.stop()


def _truncated_mp4() -> bytes:
    return struct.pack(">I4s", 16, b"ftyp") + b"isom0000" + struct.pack(">I4s", 5000, b"mdat") + b"x" * 100


def test_corrupt_media_never_blocks(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, mode="manual")
    media = tmp_path / "media"
    (media / "zero.mov").write_bytes(b"")
    (media / "trunc.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"x" * 500)
    (media / "trunc.mp4").write_bytes(_truncated_mp4())
    (media / "vanish.bin").write_bytes(os.urandom(1000))
    good = {f"good{i}.jpg": b"\xff\xd8" + os.urandom(2000) + b"\xff\xd9" for i in range(3)}
    for name, data in good.items():
        (media / name).write_bytes(data)
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: len(engine.snapshot()["files"]) == 7, 20, "all files seen")
        (media / "vanish.bin").unlink()
        assert engine.control("upload", all=True)["ok"]
        wait_until(lambda: engine.snapshot()["queue"]["completed"] == 3, 30, "good files uploaded")
        wait_until(lambda: engine.snapshot()["queue"]["quarantined"] == 4, 20, "bad files quarantined")
        reasons = {f["name"]: f["reason"] for f in engine.snapshot()["files"] if f["state"] == "quarantined"}
        assert reasons["zero.mov"].startswith("zero_length")
        assert reasons["trunc.jpg"].startswith("corrupt")
        assert reasons["trunc.mp4"].startswith("corrupt")
        assert reasons["vanish.bin"].startswith("vanished")
        for name in good:
            assert complete_rows(control, name)[0]["sha256"] == sha256(media / name)
        assert (media / "trunc.jpg").exists()  # media is never moved or deleted
    finally:
        engine.stop()


def test_pause_holds_media_captured_while_paused(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, mode="manual")
    media = tmp_path / "media"
    engine.start()
    try:
        pair(engine, control)
        (media / "before.bin").write_bytes(os.urandom(3000))
        wait_until(lambda: file_state(engine, "before.bin"), 20, "before.bin queued")
        device = control.devices()[0]
        control.pause_device(device["id"])
        wait_until(lambda: engine.snapshot()["cloud_status"] == "paused", 20, "device sees pause")
        (media / "during.bin").write_bytes(os.urandom(3000))
        wait_until(lambda: file_state(engine, "during.bin"), 20, "during.bin queued")
        mark = control.journal()[-1]["id"]
        engine.control("mode", mode="auto")
        # while the cloud says paused, no new asset is created (two worker wake-ups' worth)
        with pytest.raises(AssertionError):
            wait_until(lambda: [j for j in control.journal(since=mark)
                                if j["path"] == "/v2/devices/assets"], 1.5, "an asset create")
        assert file_state(engine, "before.bin")["state"] == "queued"  # type: ignore[index]
        control.resume_device(device["id"])
        wait_until(lambda: engine.snapshot()["cloud_status"] == "online", 20, "device sees resume")
        wait_until(lambda: file_state(engine, "during.bin")["state"] == "held", 20, "during.bin held")  # type: ignore[index]
        drop_and_check(engine, control, media, "after.bin", 3000)
        wait_until(lambda: file_state(engine, "before.bin")["state"] == "done", 20, "before.bin uploaded")  # type: ignore[index]
        assert not complete_rows(control, "during.bin")
        assert (media / "during.bin").exists()
    finally:
        engine.stop()


def test_short_tokens_refresh_and_revoke_needs_repair(cloud: Any, control: Any, tmp_path: Path) -> None:
    control.update_settings(access_token_lifetime=3)
    engine = make_engine(cloud, control, tmp_path)
    media = tmp_path / "media"
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: engine.snapshot()["token"]["refresh_count"] >= 3, 30, "three refreshes")
        drop_and_check(engine, control, media, "one.bin", 2000)
        control.expire_tokens()
        drop_and_check(engine, control, media, "two.bin", 2000)
        control.update_settings(access_token_lifetime=3600)
        wait_until(lambda: engine.snapshot()["token"]["state"] == "valid", 10, "valid token")
        control.revoke_device(control.devices()[0]["id"])
        (media / "three.bin").write_bytes(os.urandom(2000))
        wait_until(lambda: engine.snapshot()["token"]["state"] == "repair_needed", 30, "repair needed")
        # the pairing face follows on the auth loop's next turn (a second at most)
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "repair_needed", 10, "pairing shows repair")
        wait_until(lambda: file_state(engine, "three.bin"), 10, "three.bin kept in queue")
        assert file_state(engine, "three.bin")["state"] == "queued"  # type: ignore[index]
    finally:
        engine.stop()


def test_controls_cancel_priority_logout(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, mode="manual", parallel_files=1)
    media = tmp_path / "media"
    for name in ("a.jpg", "b.dat", "c.bin"):
        (media / name).write_bytes(b"\xff\xd8" + os.urandom(1000) + b"\xff\xd9" if name.endswith(".jpg")
                                   else os.urandom(1000))
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: len(engine.snapshot()["files"]) == 3, 20, "files seen")
        ids = {f["name"]: f["id"] for f in engine.snapshot()["files"]}
        assert engine.control("bogus")["ok"] is False
        assert engine.control("cancel", ids="nope")["ok"] is False
        assert engine.control("cancel", ids=[ids["c.bin"]]) == {"ok": True, "cancelled": 1}
        assert engine.control("priority", filetype=".dat", priority=100)["ok"]
        assert engine.control("upload", ids=[ids["a.jpg"], ids["b.dat"]])["ok"]
        wait_until(lambda: engine.snapshot()["queue"]["completed"] == 2, 20, "selected uploaded")
        order = sorted((r for r in control.ledger() if r["state"] == "complete"), key=lambda r: r["created_at"])
        assert [r["name"] for r in order] == ["b.dat", "a.jpg"]
        assert file_state(engine, "c.bin")["state"] == "cancelled"  # type: ignore[index]
        assert not complete_rows(control, "c.bin")
        assert engine.control("logout")["revoked"] is True
        snap = engine.snapshot()
        assert snap["pairing"]["state"] == "unpaired" and snap["token"]["state"] == "none"
        assert any(j["path"] == "/v2/auth/revoke" for j in control.journal())
    finally:
        engine.stop()


def test_cancel_in_flight_upload_stops_parts(cloud: Any, control: Any, tmp_path: Path) -> None:
    mib = 1024 * 1024
    engine = make_engine(cloud, control, tmp_path, max_upload_rate=3 * mib, part_size=5 * mib,
                         parallelism=2)
    media = tmp_path / "media"
    engine.start()
    try:
        pair(engine, control)
        (media / "long.bin").write_bytes(os.urandom(12 * mib))
        entry = wait_until(lambda: (f := file_state(engine, "long.bin")) and f["bytes_done"] > mib and f,
                           30, "upload under way")
        assert engine.control("cancel", ids=[entry["id"]]) == {"ok": True, "cancelled": 1}
        wait_until(lambda: file_state(engine, "long.bin")["state"] == "cancelled", 10, "cancelled")  # type: ignore[index]
        last = control.journal()[-1]["id"]
        (media / "next.bin").write_bytes(os.urandom(1000))  # the queue goes on
        wait_until(lambda: (f := file_state(engine, "next.bin")) and f["state"] == "done", 20, "next uploaded")
        asset = file_state(engine, "long.bin")["asset_id"]  # type: ignore[index]
        late = [j for j in control.journal(since=last) if j["method"] == "PUT" and asset in j["path"]]
        # at most the aborted in-flight parts are journaled late; none was accepted
        assert len(late) <= 2 and all(j["status"] != 200 for j in late), late
        assert not complete_rows(control, "long.bin")
    finally:
        engine.stop()
