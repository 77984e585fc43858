"""The engine in-process against the real emulator (real TLS, real TCP, real SQLite)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reference_device.config import load_config
from reference_device.engine import Engine
from reference_device.testing import write_config
from tests.reference_device.conftest import approve_pending, device_config, sha256, wait_until


def make_engine(cloud: Any, control: Any, tmp_path: Path, **extra: Any) -> Engine:
    values = device_config(cloud, tmp_path, **extra)
    path = write_config(tmp_path / "device.toml", values)
    cfg = load_config(path, env={"C2C_CLIENT_SECRET": control.client_secret()})
    return Engine(cfg)


def pair(engine: Engine, control: Any, project_name: str = "Proj") -> dict[str, Any]:
    project = control.create_project(project_name)
    wait_until(lambda: engine.snapshot()["pairing"]["state"] == "showing_code", 20, "code shown")
    approve_pending(control, project["id"])
    wait_until(lambda: engine.snapshot()["pairing"]["state"] == "paired", 20, "paired")
    wait_until(lambda: engine.snapshot()["project"]["name"] == project_name, 10, "project name")
    return project


def test_pair_and_upload_mixed_files(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    media = tmp_path / "media"
    files = {
        "a.jpg": b"\xff\xd8" + os.urandom(3000) + b"\xff\xd9",
        "b.bin": os.urandom(70_000),
        "c.cube": b"TITLE test\n",
    }
    for name, data in files.items():
        (media / name).write_bytes(data)
    engine.start()
    try:
        snap = engine.snapshot()
        assert snap["schema"] == "c2c-status/1"
        pair(engine, control)
        wait_until(lambda: engine.snapshot()["queue"]["completed"] == len(files), 30, "all uploaded")
        ledger = control.ledger()
        by_name = {row["name"]: row for row in ledger if row["state"] in ("complete", "completed", "done")}
        for name in files:
            assert by_name[name]["sha256"] == sha256(media / name), name
        snap = engine.snapshot()
        assert snap["queue"]["remaining_count"] == 0
        assert snap["token"]["state"] == "valid"
    finally:
        engine.stop()


def _code_shown(engine: Engine) -> str | None:
    p = engine.snapshot()["pairing"]
    return p["user_code"] if p["state"] == "showing_code" else None


def test_pairing_denied_then_restart_on_request(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        code = wait_until(lambda: _code_shown(engine), 20, "code shown")
        p = engine.snapshot()["pairing"]
        assert len(code) == 6 and code.isdigit() and p["verification_uri_complete"]
        control.deny(code)
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "denied", 20, "denied state")
        assert engine.control("pairing/start") == {"ok": True, "started": True}
        project = control.create_project("After deny")
        new_code = wait_until(lambda: _code_shown(engine), 20, "new code")
        assert new_code != code
        control.approve(new_code, project["id"])
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "paired", 20, "paired")
    finally:
        engine.stop()


def test_expired_code_is_replaced_automatically(cloud: Any, control: Any, tmp_path: Path) -> None:
    control.update_settings(device_code_lifetime=2)
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        first = wait_until(lambda: _code_shown(engine), 20, "code shown")
        second = wait_until(lambda: (c := _code_shown(engine)) and c != first and c, 20, "a new code")
        project = control.create_project("P")
        control.update_settings(device_code_lifetime=120)
        third = wait_until(lambda: (c := _code_shown(engine)) and c not in (first, second) and c, 20, "a long-lived code")
        control.approve(third, project["id"])
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "paired", 20, "paired")
    finally:
        engine.stop()


def test_invalid_client_is_a_clear_error(cloud: Any, control: Any, tmp_path: Path) -> None:
    values = device_config(cloud, tmp_path)
    cfg = load_config(write_config(tmp_path / "d.toml", values), env={"C2C_CLIENT_SECRET": "wrong-secret-123"})
    engine = Engine(cfg)
    engine.start()
    try:
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "error", 20, "error state")
        assert "invalid_client" in engine.snapshot()["pairing"]["error"]
        assert "wrong-secret-123" not in str(engine.snapshot())
    finally:
        engine.stop()


def test_cancel_while_showing_code_stops_polling(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        wait_until(lambda: _code_shown(engine), 20, "code shown")
        wait_until(lambda: any(j["path"] == "/v2/auth/token" for j in control.journal()), 10, "a poll")
        assert engine.control("pairing/cancel")["ok"]
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "cancelled", 10, "cancelled")
        last = control.journal()[-1]["id"]
        # the poll interval is 1 s: three intervals without a poll show polling stopped
        with pytest.raises(AssertionError):
            wait_until(lambda: [j for j in control.journal(since=last) if j["path"] == "/v2/auth/token"],
                       3.0, "a poll after cancel")
    finally:
        engine.stop()


def test_headers_project_rename_and_socket(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        project = pair(engine, control, "Old name")
        wait_until(lambda: engine.snapshot()["socket"]["connected"], 20, "socket connected")
        assert engine.snapshot()["socket"]["kind"] == "websocket"
        control.rename_project(project["id"], "New name")
        wait_until(lambda: engine.snapshot()["project"]["name"] == "New name", 20, "renamed project")
        assert engine.snapshot()["project"]["id"] == project["id"]
        entries = [j for j in control.journal() if not j["path"].startswith("/_bench")]
        assert entries and all(j["client_version"] == "1.4.0" for j in entries), entries[:3]
        assert control.websockets()
    finally:
        engine.stop()


def test_http_heartbeats_when_websocket_off(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, websocket=False, heartbeat_interval=0.5)
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: len([j for j in control.journal() if j["path"] == "/v2/devices/heartbeat"
                                and j["status"] == 204]) >= 3, 20, "three heartbeats")
        sock = engine.snapshot()["socket"]
        assert sock["kind"] == "heartbeat" and sock["connected"] and sock["last_beat_at"] > 0
        assert not control.websockets()
        assert control.plain_http_attempts() == []
    finally:
        engine.stop()


def test_untrusted_tls_is_refused(cloud: Any, control: Any, tmp_path: Path) -> None:
    """Without the bench CA (system trust only) the emulator's certificate is refused."""
    values = device_config(cloud, tmp_path)
    values.pop("ca_bundle")
    cfg = load_config(write_config(tmp_path / "d.toml", values),
                      env={"C2C_CLIENT_SECRET": control.client_secret()})
    engine = Engine(cfg)
    mark = control.journal()[-1]["id"] if control.journal() else 0
    engine.start()
    try:
        wait_until(lambda: engine.snapshot()["network"]["health"] == "down", 20, "network down")
        snap = engine.snapshot()
        assert snap["pairing"]["state"] == "requesting_code" and snap["pairing"]["user_code"] is None
        assert "connection" in (snap["network"]["last_error"] or "")
        assert not [j for j in control.journal(since=mark) if j["path"].startswith("/v2/")]
    finally:
        engine.stop()
