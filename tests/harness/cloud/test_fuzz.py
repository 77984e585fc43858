"""Hostile values in every field: always a 4xx in the documented shape, never a 500."""

from __future__ import annotations

import random

import httpx

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice

from .conftest import assert_detailed

NASTY = [None, True, False, 0, -1, 1.5, -1e308, 1e308, 10**40, -(10**40), "", " ", "1",
         "-5", "1e999", "NaN", "../../etc/passwd", "\x00", "é" * 300, "x" * 10_000, [], [1],
         {}, {"a": 1}, "video/mp4", ".mp4", "true"]
FIELDS = ["name", "filetype", "filesize", "offset", "channel", "parts", "is_realtime_upload",
          "extension"]


def test_asset_create_never_500(api: httpx.Client, cloud: CloudControl,
                                paired_device: PairedDevice) -> None:
    rng = random.Random(1234)
    base = {"name": "a.mp4", "filetype": "video/mp4", "filesize": 10}
    for _ in range(150):
        body = dict(base)
        for field in rng.sample(FIELDS, rng.randint(1, 3)):
            body[field] = rng.choice(NASTY)
        answer = api.post("/v2/devices/assets", json=body, headers=paired_device.headers)
        assert answer.status_code < 500, (body, answer.text)
        if answer.status_code >= 400:
            assert_detailed(answer, answer.status_code)


def test_realtime_parts_never_500(api: httpx.Client, cloud: CloudControl,
                                  paired_device: PairedDevice) -> None:
    asset = api.post("/v2/devices/assets", headers=paired_device.headers, json={
        "name": "live.mp4", "filetype": "video/mp4", "is_realtime_upload": True}).json()
    rng = random.Random(99)
    for _ in range(100):
        item = {k: rng.choice([*NASTY, 1, 5 * 1024 * 1024]) for k in ("number", "size", "is_final")}
        body = {"parts": rng.choice([[item], item, rng.choice(NASTY)]),
                "asset_filesize": rng.choice(NASTY), "asset_name": rng.choice(NASTY)}
        answer = api.post(f"/v2/devices/assets/{asset['id']}/realtime_upload/parts",
                          json=body, headers=paired_device.headers)
        assert answer.status_code < 500, (body, answer.text)
        if answer.status_code >= 400:
            assert_detailed(answer, answer.status_code)


def test_control_api_never_500(api: httpx.Client, cloud: CloudControl) -> None:
    rng = random.Random(7)
    targets = [("POST", "/projects"), ("PUT", "/settings"), ("POST", "/faults"),
               ("POST", "/clock/advance"), ("POST", "/clients"), ("POST", "/tokens/expire")]
    for _ in range(100):
        method, path = rng.choice(targets)
        body = {rng.choice(["name", "seconds", "target", "kind", "device_id", "offset_sign",
                            "count", "path", "socket_status"]): rng.choice(NASTY)}
        answer = api.request(method, "/_bench/v1" + path, json=body, auth=cloud.auth)
        assert answer.status_code < 500, (method, path, body, answer.text)
    assert api.get("/health").status_code == 200
