"""Replays fixtures/traffic/*.json (what real cameras send) against the real emulator.

Each flow is data (format in fixtures/traffic/README.md); this file is its interpreter. A flow
passes when every answer is the one the flow expects and the ledger says every file landed
intact, with re-sent bytes counted as duplicates and never as a corrupt file.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice

from .conftest import status_socket

TRAFFIC = Path(__file__).resolve().parents[3] / "fixtures" / "traffic"
FLOWS = sorted(TRAFFIC.glob("*.json"))


@dataclass
class SavedAsset:
    """An asset-create answer a later step refers to by label."""

    asset_id: str
    urls: list[str]
    filetype: str
    file: str


@dataclass
class Replay:
    """One flow's state while it runs: generated files, saved assets, the open socket."""

    cloud: CloudControl
    api: httpx.Client
    device: PairedDevice
    files: dict[str, bytes] = field(default_factory=dict)
    assets: dict[str, SavedAsset] = field(default_factory=dict)
    socket: ClientConnection | None = None
    closing: ExitStack = field(default_factory=ExitStack)
    headers: dict[str, str] = field(default_factory=dict)  # the flow's own, on every API call

    def fill(self, value: Any) -> Any:
        """Placeholders in strings, recursively: {device_uuid}, {device_id}."""
        if isinstance(value, str):
            return value.replace("{device_uuid}", self.device.device_uuid).replace(
                "{device_id}", self.device.device_id)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def ledger_row(self, label: str) -> dict[str, Any]:
        asset_id = self.assets[label].asset_id
        rows = [r for r in self.cloud.ledger() if r["asset_id"] == asset_id]
        assert len(rows) == 1, f"ledger has no row for asset {label!r}"
        return rows[0]


def generated(size: int, seed: int) -> bytes:
    """Deterministic bytes standing in for the camera's file (a JPEG's bytes are opaque here)."""
    return random.Random(seed).randbytes(size)


def subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: {key!r} missing in {actual!r}"
            subset(value, actual[key], f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def do_request(r: Replay, step: dict[str, Any]) -> None:
    headers = {**(r.device.headers if step.get("auth", True) else {}), **r.headers}
    answer = r.api.request(step["method"], r.fill(step["path"]), headers=headers,
                           json=r.fill(step["json"]) if "json" in step else None)
    assert answer.status_code == step.get("expect_status", 200), answer.text
    body = answer.json() if answer.content else None
    if "expect_json" in step:
        subset(step["expect_json"], body, step["path"])
    if "expect_upload_urls" in step:
        assert len(body["upload_urls"]) == step["expect_upload_urls"], body["upload_urls"]
    if "save_asset" in step:
        r.assets[step["save_asset"]] = SavedAsset(body["id"], list(body.get("upload_urls") or []),
                                                  step["json"]["filetype"], step["file"])


def do_put_parts(r: Replay, step: dict[str, Any]) -> None:
    saved = r.assets[step["asset"]]
    data = r.files[step.get("file", saved.file)]
    # §5.1's even split, unless the flow gives the camera's own part size (part_lengths.py)
    chunk = step.get("part_size") or (math.ceil(len(data) / len(saved.urls)) if data else 0)
    for number in step["parts"]:
        body = data[(number - 1) * chunk:number * chunk]
        headers = {"content-type": saved.filetype, "x-amz-acl": "private",
                   "content-length": str(len(body))}
        answer = r.api.put(saved.urls[number - 1], content=body, headers=headers)
        assert answer.status_code == step.get("expect_status", 200), answer.text


def do_expect_ledger(r: Replay, step: dict[str, Any]) -> None:
    row = r.ledger_row(step["asset"])
    for key in ("state", "bytes_duplicate", "parts_received", "filetype"):
        if key in step:
            assert row[key] == step[key], f"ledger {key}: {row[key]!r} != {step[key]!r} ({row})"
    if step.get("intact"):
        data = r.files[r.assets[step["asset"]].file]
        assert row["sha256"] == hashlib.sha256(data).hexdigest(), "file not intact"
        assert row["filesize"] == len(data)
    if "extra" in step:
        subset(step["extra"], row["extra"], "ledger extra")


def do_expect_assets(r: Replay, step: dict[str, Any]) -> None:
    rows = [x for x in r.cloud.ledger() if x["name"] == step["name"]]
    assert len(rows) == step["count"], rows


def do_socket(r: Replay, step: dict[str, Any]) -> None:
    kind = step["do"]
    if kind == "socket_open":
        r.socket = r.closing.enter_context(status_socket(r.cloud, r.device.access_token, open_timeout=10))
        return
    assert r.socket is not None, f"{kind} before socket_open"
    if kind == "socket_send":
        r.socket.send(json.dumps(r.fill(step["message"])))
    elif kind == "socket_receive":
        subset(r.fill(step["expect"]), json.loads(r.socket.recv(timeout=10)), "socket frame")
    elif kind == "socket_close":
        r.socket.close()
        r.socket = None
        sessions = [s for s in r.cloud.websockets() if s["device_id"] == r.device.device_id]
        assert sessions and sessions[0]["last_heartbeat_at"], sessions


def do_control(r: Replay, step: dict[str, Any]) -> None:
    action = {"pause": r.cloud.pause_device, "resume": r.cloud.resume_device}[step["action"]]
    action(r.device.device_id)


STEPS = {"request": do_request, "put_parts": do_put_parts, "expect_ledger": do_expect_ledger,
         "expect_assets": do_expect_assets, "socket_open": do_socket, "socket_send": do_socket,
         "socket_receive": do_socket, "socket_close": do_socket, "control": do_control}


def test_there_are_flows_and_every_step_is_known() -> None:
    assert len(FLOWS) >= 5
    for path in FLOWS:
        flow = json.loads(path.read_text(encoding="utf-8"))
        assert flow["evidence"] in {"DOC", "SPEC", "SDK", "OBS", "INF"}, path.name
        for step in flow["steps"]:
            assert step["do"] in STEPS, f"{path.name}: unknown step {step['do']!r}"


@pytest.mark.parametrize("path", FLOWS, ids=[p.stem for p in FLOWS])
def test_replay(path: Path, api: httpx.Client, cloud: CloudControl,
                paired_device: PairedDevice) -> None:
    flow = json.loads(path.read_text(encoding="utf-8"))
    r = Replay(cloud, api, paired_device,
               files={k: generated(v["size"], v["seed"]) for k, v in flow["files"].items()},
               headers=flow.get("headers", {}))
    already = len(cloud.journal())
    with r.closing:
        for i, step in enumerate(flow["steps"]):
            try:
                STEPS[step["do"]](r, step)
            except AssertionError as exc:
                raise AssertionError(f"{path.name} step {i} ({step['do']}): {exc}") from None
    rows = cloud.journal()[already:]
    version = r.headers.get("x-client-version")
    if version is not None:  # the camera's own version string (Fujifilm: "1.00") is accepted
        calls = [row for row in rows if row["path"].startswith("/v2/")]
        assert calls and all(row["client_version"] == version for row in calls), calls
    puts = [row for row in rows if row["method"] == "PUT"]
    for row in puts:  # what cameras send: a length, never chunked
        names = {k.lower() for k in (row.get("headers") or {})}
        assert "content-length" in names and "transfer-encoding" not in names, row
